"""cgroup v2 driver: one unified directory, ``<mount>/<parent>/<id>``."""

from __future__ import annotations

import os
import signal
import time

from ...errors import SystemError
from . import FREEZING, FROZEN, THAWED, Manager, fs

_FREEZE_POLLS = 1000  # runc's fs2/freezer.go: 10 ms x 1000
_WANTED_CONTROLLERS = ("cpuset", "cpu", "io", "memory", "pids")


class V2Manager(Manager):
    """cgroup v2 :class:`~declarative_ct.runtime.cgroups.Manager` over one directory.

    Controllers are enabled in ``cgroup.subtree_control`` of every ancestor below the mount,
    one at a time, ignoring the ones the kernel refuses (runc's ``fs2/create.go``). Our own
    parent (``dct``) never holds processes, so the "no internal processes" rule holds.
    Device rules need an eBPF program on v2 and are not enforced by this driver.
    """

    def __init__(self, path: str) -> None:
        self._path = path

    def paths(self) -> dict[str, str]:
        return {"": self._path}

    def enforces_devices(self) -> bool:
        return False  # needs a BPF_CGROUP_DEVICE program

    def exists(self) -> bool:
        return os.path.isdir(self._path)

    def _mount_root(self) -> str:
        cur = self._path
        while True:
            parent = os.path.dirname(cur)
            if parent == cur or not os.path.exists(os.path.join(parent, "cgroup.controllers")):
                return cur
            cur = parent

    def create(self) -> None:
        if self.exists() and fs.pids_recursive(self._path):
            raise SystemError(f"container's cgroup is not empty: {self._path} has processes")
        os.makedirs(self._path, exist_ok=True)
        root = self._mount_root()
        ancestors = [root]
        rel = os.path.relpath(os.path.dirname(self._path), root)
        if rel != ".":
            for part in rel.split(os.sep):
                ancestors.append(os.path.join(ancestors[-1], part))
        for directory in ancestors:
            self._enable_controllers(directory)

    @staticmethod
    def _enable_controllers(directory: str) -> None:
        try:
            available = fs.read(directory, "cgroup.controllers").split()
        except OSError:
            return
        for name in _WANTED_CONTROLLERS:
            if name in available:
                try:
                    fs.write(directory, "cgroup.subtree_control", "+" + name)
                except SystemError:
                    pass  # e.g. a controller busy in threaded mode: runc ignores these too

    def add(self, pid: int) -> None:
        fs.write(self._path, "cgroup.procs", str(pid))

    def get_all_pids(self) -> list[int]:
        return sorted(set(fs.pids_recursive(self._path)))

    def freezer_state(self) -> str:
        try:
            wanted = fs.read(self._path, "cgroup.freeze")
        except FileNotFoundError:
            return THAWED
        if wanted != "1":
            return THAWED
        return FROZEN if self._events().get("frozen") == "1" else FREEZING

    def _events(self) -> dict[str, str]:
        try:
            text = fs.read(self._path, "cgroup.events")
        except FileNotFoundError:
            return {}
        return dict(line.split(None, 1) for line in text.splitlines() if " " in line)

    def freeze(self) -> None:
        fs.write(self._path, "cgroup.freeze", "1")
        for _ in range(_FREEZE_POLLS):
            if self._events().get("frozen") == "1":
                return
            time.sleep(0.01)
        fs.write(self._path, "cgroup.freeze", "0")
        raise SystemError(f"unable to freeze {self._path}: cgroup.events never showed frozen 1")

    def thaw(self) -> None:
        fs.write(self._path, "cgroup.freeze", "0")

    def kill_all(self, sig: int) -> None:
        if sig == signal.SIGKILL and os.path.exists(os.path.join(self._path, "cgroup.kill")):
            fs.write(self._path, "cgroup.kill", "1")  # kernel >= 5.14: atomic, no freeze needed
            if self.freezer_state() != THAWED:
                self.thaw()  # killed tasks of a frozen cgroup only die once it thaws
            return
        super().kill_all(sig)

    def destroy(self) -> None:
        fs.remove_tree(self._path)
