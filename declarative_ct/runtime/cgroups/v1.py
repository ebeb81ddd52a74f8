"""cgroup v1 driver: one directory per mounted controller, ``<mount>/<parent>/<id>``."""

from __future__ import annotations

import os
import time

from ...errors import SystemError
from . import FREEZING, FROZEN, THAWED, Manager, fs

# runc's fs/freezer.go: retry while FREEZING, thawing now and then to unstick it.
_FREEZE_ATTEMPTS = 1000
_THAW_EVERY = 50


class V1Manager(Manager):
    """cgroup v1 :class:`~declarative_ct.runtime.cgroups.Manager` over ``{controller: dir}``.

    ``device_rules`` (``DeviceRule`` objects) are written to ``devices.deny``/``devices.allow``
    when the cgroup is created, as runc's ``fs/devices.go`` does.
    """

    def __init__(self, paths: dict[str, str], device_rules: list | None = None) -> None:
        self._paths = dict(paths)
        self._device_rules = device_rules or []

    def paths(self) -> dict[str, str]:
        return dict(self._paths)

    def enforces_devices(self) -> bool:
        return "devices" in self._paths

    def _any(self) -> str:
        # freezer or pids list every task; any hierarchy would do.
        for name in ("freezer", "pids", "memory", "cpu"):
            if name in self._paths:
                return self._paths[name]
        return next(iter(self._paths.values()))

    def exists(self) -> bool:
        return os.path.isdir(self._any())

    def create(self) -> None:
        # Check every hierarchy before making anything: a populated cgroup is another container's.
        for path in self._paths.values():
            if os.path.isdir(path) and fs.pids_recursive(path):
                raise SystemError(f"container's cgroup is not empty: {path} has processes")
        for controller, path in self._paths.items():
            os.makedirs(path, exist_ok=True)
            if controller == "cpuset":
                self._inherit_cpuset(path)
        if "devices" in self._paths and self._device_rules:
            self._apply_devices(self._paths["devices"])

    @staticmethod
    def _inherit_cpuset(path: str) -> None:
        # A new v1 cpuset starts empty; a task cannot join it until cpus and mems are set.
        chain = []
        cur = path
        while os.path.exists(os.path.join(cur, "cpuset.cpus")) and fs.read(cur, "cpuset.cpus") == "":
            chain.append(cur)
            cur = os.path.dirname(cur)
        for d in reversed(chain):
            parent = os.path.dirname(d)
            for name in ("cpuset.cpus", "cpuset.mems"):
                fs.write(d, name, fs.read(parent, name))

    def _apply_devices(self, path: str) -> None:
        for rule in self._device_rules:
            major = "*" if rule.major < 0 else str(rule.major)
            minor = "*" if rule.minor < 0 else str(rule.minor)
            entry = "a" if rule.type == "a" else f"{rule.type} {major}:{minor} {rule.permissions}"
            fs.write(path, "devices.allow" if rule.allow else "devices.deny", entry)

    def add(self, pid: int) -> None:
        for path in self._paths.values():
            fs.write(path, "cgroup.procs", str(pid))

    def get_all_pids(self) -> list[int]:
        return sorted(set(fs.pids_recursive(self._any())))

    def freezer_state(self) -> str:
        path = self._paths.get("freezer")
        if path is None:
            return THAWED
        try:
            return fs.read(path, "freezer.state")
        except FileNotFoundError:
            return THAWED

    def freeze(self) -> None:
        path = self._require_freezer()
        for i in range(_FREEZE_ATTEMPTS):
            if i and i % _THAW_EVERY == 0:
                fs.write(path, "freezer.state", THAWED)
                time.sleep(0.01)
            fs.write(path, "freezer.state", FROZEN)
            if fs.read(path, "freezer.state") == FROZEN:
                return
            time.sleep(0.001)
        # Never leave it half-frozen (runc: "bad and dangerous").
        fs.write(path, "freezer.state", THAWED)
        raise SystemError(f"unable to freeze {path}: still {FREEZING}")

    def thaw(self) -> None:
        fs.write(self._require_freezer(), "freezer.state", THAWED)

    def _require_freezer(self) -> str:
        if "freezer" not in self._paths:
            raise SystemError("the freezer cgroup controller is not mounted; pause/resume need it "
                              "(mount it at /sys/fs/cgroup/freezer)")
        return self._paths["freezer"]

    def can_freeze(self) -> bool:
        return "freezer" in self._paths

    def destroy(self) -> None:
        errors = []
        for path in self._paths.values():
            try:
                fs.remove_tree(path)
            except SystemError as err:
                errors.append(str(err))
        if errors:
            raise SystemError("; ".join(errors))
