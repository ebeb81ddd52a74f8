"""cgroup v2 driver: one unified directory, ``<mount>/<parent>/<id>``."""

from __future__ import annotations

import os
import signal
import time

import math

from ...configs import pair_memory_swap
from ...errors import ConfigInvalid, SystemError
from . import FREEZING, FROZEN, THAWED, Manager, check_cpuset, fs
from .v1 import _flat_keyed, _read_or_none

# The controller each Resources field needs on v2.
_CONTROLLER = {"memory": "memory", "memory_reservation": "memory", "memory_swap": "memory",
               "cpu_shares": "cpu", "cpu_weight": "cpu", "cpu_quota": "cpu", "cpu_period": "cpu",
               "cpuset_cpus": "cpuset", "cpuset_mems": "cpuset", "pids_limit": "pids", "blkio_weight": "io"}
_IO_MAX_KEYS = {"blkio_throttle_read_bps_device": "rbps", "blkio_throttle_write_bps_device": "wbps",
                "blkio_throttle_read_iops_device": "riops", "blkio_throttle_write_iops_device": "wiops"}
DEFAULT_CPU_PERIOD = 100000  # µs, the kernel's default for cpu.max
MAX_UINT64 = (1 << 64) - 1  # runc reports an unlimited v2 memory.max as math.MaxUint64


def cpu_shares_to_weight(shares: int) -> int:
    """v1 ``cpu.shares`` (2..262144) → v2 ``cpu.weight`` (1..10000), runc's ``ConvertCPUSharesToCgroupV2Value``.

    The log-quadratic map runc uses since 1.3: it keeps 2 → 1, 1024 → 100 (both defaults) and
    262144 → 10000, where the older linear formula sent the default 1024 to 39.
    """
    if shares <= 2:
        return 1
    if shares >= 262144:
        return 10000
    exp = math.log2(shares)
    return math.ceil(10 ** ((exp * exp + 125 * exp) / 612.0 - 7.0 / 34.0))


def blkio_weight_to_io_weight(weight: int) -> int:
    """v1 ``blkio.weight`` (10..1000) → v2 ``io.weight`` (1..10000): runc's ``1 + (w - 10) * 9999 / 990``."""
    return 1 + (weight - 10) * 9999 // 990


def swap_to_v2(memory: int, memory_swap: int) -> str:
    """``memory.swap.max`` from runc's memory+swap figure: swap − memory; ``max`` when unlimited.

    Raises:
        ConfigInvalid: memory_swap below memory (runc's ``ConvertMemorySwapToCgroupV2Value``).
    """
    if memory_swap == -1:
        return "max"
    if memory == -1:
        raise ConfigInvalid.at("resources.memory_swap", "a swap limit needs a memory limit (memory is unlimited)")
    if memory_swap < memory:
        raise ConfigInvalid.at("resources.memory_swap", f"{memory_swap} is below memory {memory}", memory_swap)
    return str(memory_swap - memory)

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
        cur = fs.nearest_existing(self._path)  # the cgroup (and a per-root parent) may not exist yet
        while True:
            parent = os.path.dirname(cur)
            if parent == cur or not os.path.exists(os.path.join(parent, "cgroup.controllers")):
                return cur
            cur = parent

    def create(self) -> None:
        if self.exists() and fs.pids_recursive(self._path):
            raise SystemError(f"container's cgroup is not empty: {self._path} has processes")
        fs.make_leaf(self._path)
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

    # A descendant's own cgroup.freeze 1 keeps it frozen whatever its ancestors say.
    _SELF_FREEZE = ("cgroup.freeze", "cgroup.freeze", "0")

    def _freezer_dir(self) -> str | None:
        return self._path

    def kill_all(self, sig: int) -> None:
        if sig == signal.SIGKILL and os.path.exists(os.path.join(self._path, "cgroup.kill")):
            fs.write(self._path, "cgroup.kill", "1")  # kernel >= 5.14: atomic, no freeze needed
            self.thaw_descendants()
            if self.freezer_state() != THAWED:
                self.thaw()  # killed tasks of a frozen cgroup only die once it thaws
            return
        super().kill_all(sig)

    def destroy(self) -> None:
        fs.remove_tree(self._path)
        fs.prune_root_parent(self._path)

    # -- resources -----------------------------------------------------------------------
    def _controllers(self) -> tuple[str, set[str]]:
        """(the directory whose controllers count, the controllers it has): our own cgroup once made."""
        directory = fs.nearest_existing(self._path)
        return directory, set((_read_or_none(directory, "cgroup.controllers") or "").split())

    def check(self, resources) -> None:
        directory, available = self._controllers()
        for name in resources.limits():
            controller = _CONTROLLER.get(name, "io")
            if controller not in available:
                root = self._mount_root()
                if controller not in (_read_or_none(root, "cgroup.controllers") or "").split():
                    raise ConfigInvalid.at(
                        f"resources.{name}", f"this cgroup2 mount ({root}) has no {controller} controller at all: "
                        f"it is bound to a cgroup v1 hierarchy or disabled at boot (cgroup_disable=)")
                parent = os.path.dirname(self._path)
                raise ConfigInvalid.at(
                    f"resources.{name}", f"the {controller} controller is not enabled for {directory} "
                    f"(it has: {' '.join(sorted(available)) or 'none'}); enable it with "
                    f"'echo +{controller} > {parent}/cgroup.subtree_control' in every ancestor, or under "
                    f"systemd give the unit Delegate=yes")
        if resources.memory_swap is not None and resources.memory_swap != -1:
            swap_to_v2(resources.memory if resources.memory is not None else -1, resources.memory_swap)
        if self.exists():  # a cgroup not made yet has no files to look at (set() checks again at create)
            self._check_files(resources)
        if resources.cpuset_cpus or resources.cpuset_mems:
            parent = fs.nearest_existing(os.path.dirname(self._path))  # a per-root parent may not exist yet
            check_cpuset(resources, _read_or_none(parent, "cpuset.cpus.effective"),
                         _read_or_none(parent, "cpuset.mems.effective"))

    def _check_files(self, r) -> None:
        """Refuse fields whose file the kernel does not offer although the controller is enabled."""
        needs = []
        if r.memory_swap not in (None, -1):
            needs.append(("memory_swap", ("memory.swap.max",), "swap accounting is off (boot with swapaccount=1)"))
        if r.cpu_quota is not None or r.cpu_period is not None:
            needs.append(("cpu_quota" if r.cpu_quota is not None else "cpu_period", ("cpu.max",),
                          "the kernel lacks CONFIG_CFS_BANDWIDTH"))
        if r.blkio_weight is not None:
            needs.append(("blkio_weight", ("io.bfq.weight", "io.weight"),
                          "the disk's IO scheduler must be BFQ, or io.cost must be enabled"))
        for name in _IO_MAX_KEYS:
            if getattr(r, name) is not None:
                needs.append((name, ("io.max",), "the kernel lacks CONFIG_BLK_DEV_THROTTLING"))
        for name, files, why in needs:
            if not any(os.path.exists(os.path.join(self._path, f)) for f in files):
                raise ConfigInvalid.at(f"resources.{name}", f"{' or '.join(files)} is not available here ({why})")

    def _apply(self, r, tx) -> None:
        d = self._path
        memory = r.memory
        if memory is not None:
            tx.write(d, "memory.max", "max" if memory == -1 else str(memory))
        swap = pair_memory_swap(r).memory_swap  # unlimited memory lifts the swap limit too
        if swap is not None and (swap != -1 or os.path.exists(os.path.join(d, "memory.swap.max"))):
            tx.write(d, "memory.swap.max", swap_to_v2(memory if memory is not None else -1, swap))
        if r.memory_reservation is not None:  # "no reservation" is 0 protection, not "max"
            tx.write(d, "memory.low", "0" if r.memory_reservation == -1 else str(r.memory_reservation))
        weight = r.cpu_weight if r.cpu_weight is not None else (
            cpu_shares_to_weight(r.cpu_shares) if r.cpu_shares is not None else None)
        if weight is not None:
            tx.write(d, "cpu.weight", str(weight))
        if r.cpu_quota is not None or r.cpu_period is not None:
            quota, period = (fs.read(d, "cpu.max").split() + [str(DEFAULT_CPU_PERIOD)])[:2]
            if r.cpu_quota is not None:
                quota = "max" if r.cpu_quota == -1 else str(r.cpu_quota)
            if r.cpu_period is not None:
                period = str(r.cpu_period)
            tx.write(d, "cpu.max", f"{quota} {period}")
        for name, filename in (("cpuset_cpus", "cpuset.cpus"), ("cpuset_mems", "cpuset.mems")):
            if getattr(r, name) is not None:
                tx.write(d, filename, getattr(r, name))
        if r.pids_limit is not None:
            tx.write(d, "pids.max", "max" if r.pids_limit == -1 else str(r.pids_limit))
        if r.blkio_weight is not None:
            if os.path.exists(os.path.join(d, "io.bfq.weight")):
                tx.write(d, "io.bfq.weight", str(r.blkio_weight))
            else:
                tx.write(d, "io.weight", f"default {blkio_weight_to_io_weight(r.blkio_weight)}")
        self._apply_io_max(r, tx)

    def _apply_io_max(self, r, tx) -> None:
        per_device: dict[str, dict[str, str]] = {}
        current = fs.device_entries(fs.read(self._path, "io.max")) if any(
            getattr(r, name) is not None for name in _IO_MAX_KEYS) else {}
        for name, key in _IO_MAX_KEYS.items():
            devices = getattr(r, name)
            if devices is None:
                continue
            for dev in current:  # the list is the whole set: devices left out lose this limit
                per_device.setdefault(dev, {})[key] = "max"
            for d in devices:
                per_device.setdefault(f"{d.major}:{d.minor}", {})[key] = str(d.rate) if d.rate else "max"
        for dev, keys in per_device.items():
            tx.write(self._path, "io.max", f"{dev} " + " ".join(f"{k}={v}" for k, v in keys.items()))

    def oom_kill_count(self) -> int | None:
        raw = fs.read_raw(os.path.join(self._path, "memory.events"))
        return None if raw is None else _flat_keyed(raw).get("oom_kill")

    def stats(self):
        from ..stats import (BlkioStatEntry, BlkioStats, CgroupStats, CpuStats, CpuUsage, MemoryData,
                             MemoryStats, PidsStats, ThrottlingData)

        d = self._path
        read = self.files.read
        out = CgroupStats()
        raw = read(d, "cpu.stat")  # always there: core accounting, no controller needed
        if raw is not None:
            st = _flat_keyed(raw)
            out.cpu_stats = CpuStats(
                CpuUsage(total_usage=st.get("usage_usec", 0) * 1000, usage_in_usermode=st.get("user_usec", 0) * 1000,
                         usage_in_kernelmode=st.get("system_usec", 0) * 1000),
                ThrottlingData(st.get("nr_periods", 0), st.get("nr_throttled", 0), st.get("throttled_usec", 0) * 1000))
        raw = read(d, "memory.stat")
        if raw is not None:
            raw_stats = _flat_keyed(raw)
            usage = int(read(d, "memory.current") or 0)
            peak = read(d, "memory.peak")  # kernel >= 5.19
            events = _flat_keyed(read(d, "memory.events") or b"")
            mem = MemoryData(usage, int(peak) if peak else 0, events.get("max", 0), _limit(read, d, "memory.max"))
            swap = None
            swap_raw = read(d, "memory.swap.current")
            if swap_raw is not None:  # runc reports memory + swap, as v1's memsw did
                swap_limit = _limit(read, d, "memory.swap.max")
                swap = MemoryData(usage + int(swap_raw), 0, 0,
                                  swap_limit if swap_limit == MAX_UINT64 or mem.limit == MAX_UINT64
                                  else swap_limit + mem.limit)
            out.memory_stats = MemoryStats(cache=raw_stats.get("file", 0), usage=mem, swap_usage=swap,
                                           stats=raw_stats)
        raw = read(d, "pids.current")
        if raw is not None:
            limit = read(d, "pids.max") or b"max"
            out.pids_stats = PidsStats(int(raw), 0 if limit.strip() == b"max" else int(limit))
        raw = read(d, "io.stat")
        if raw is not None:
            out.blkio_stats = _io_stats(raw, BlkioStats, BlkioStatEntry)
        return out


def _limit(read, directory: str, name: str) -> int:
    raw = (read(directory, name) or b"max").strip()
    return MAX_UINT64 if raw == b"max" else int(raw)


def _io_stats(raw: bytes, stats_type, entry_type):
    """``io.stat`` lines ``MAJ:MIN rbytes=.. wbytes=.. rios=.. wios=..`` as runc's Read/Write entries."""
    out = stats_type()
    for line in raw.decode().splitlines():
        dev, *pairs = line.split()
        major, minor = (int(x) for x in dev.split(":"))
        values = dict(p.split("=", 1) for p in pairs)
        for key, op, target in (("rbytes", "Read", out.io_service_bytes_recursive),
                                ("wbytes", "Write", out.io_service_bytes_recursive),
                                ("rios", "Read", out.io_serviced_recursive),
                                ("wios", "Write", out.io_serviced_recursive)):
            if key in values:
                target.append(entry_type(major, minor, op, int(values[key])))
    return out
