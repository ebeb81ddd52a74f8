"""cgroup v1 driver: one directory per mounted controller, ``<mount>/<parent>/<id>``."""

from __future__ import annotations

import os
import time

import errno

from ...configs import pair_memory_swap
from ...errors import CgroupWriteError, ConfigInvalid, SystemError
from . import FREEZING, FROZEN, THAWED, Manager, check_cpuset, fs

# Which controller (and, where the kernel may lack it, which file) each Resources field needs.
_NEEDS = {
    "memory": ("memory", "memory.limit_in_bytes", ""),
    "memory_reservation": ("memory", "memory.soft_limit_in_bytes", ""),
    "memory_swap": ("memory", "memory.memsw.limit_in_bytes",
                    "swap accounting is off: boot the kernel with swapaccount=1"),
    "cpu_shares": ("cpu", "cpu.shares", ""),
    "cpu_weight": ("cpu", "", "cpu_weight is a cgroup v2 setting; use cpu_shares on v1"),
    "cpu_quota": ("cpu", "cpu.cfs_quota_us", "the kernel lacks CONFIG_CFS_BANDWIDTH"),
    "cpu_period": ("cpu", "cpu.cfs_period_us", "the kernel lacks CONFIG_CFS_BANDWIDTH"),
    "cpuset_cpus": ("cpuset", "cpuset.cpus", ""),
    "cpuset_mems": ("cpuset", "cpuset.mems", ""),
    "pids_limit": ("pids", "pids.max", ""),
    "blkio_weight": ("blkio", "", ""),  # blkio.weight (CFQ) or blkio.bfq.weight (BFQ), checked below
}
_THROTTLE_FILES = {
    "blkio_throttle_read_bps_device": "blkio.throttle.read_bps_device",
    "blkio_throttle_write_bps_device": "blkio.throttle.write_bps_device",
    "blkio_throttle_read_iops_device": "blkio.throttle.read_iops_device",
    "blkio_throttle_write_iops_device": "blkio.throttle.write_iops_device",
}
_CLK_TCK = os.sysconf("SC_CLK_TCK")

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
            fs.make_leaf(path)
            if controller == "cpuset":
                self._inherit_cpuset(path)
        if "devices" in self._paths and self._device_rules:
            self._apply_devices(self._paths["devices"])

    @staticmethod
    def _inherit_cpuset(path: str) -> None:
        # A new v1 cpuset starts empty; a task cannot join it until cpus and mems are set. Both
        # are looked at: a concurrent create may have filled a new parent's cpus but not yet its
        # mems (an empty mems copied down made the join fail with ENOSPC).
        chain = []
        cur = path
        while os.path.exists(os.path.join(cur, "cpuset.cpus")) and "" in (
                fs.read(cur, "cpuset.cpus"), fs.read(cur, "cpuset.mems")):
            chain.append(cur)
            cur = os.path.dirname(cur)
        for d in reversed(chain):
            parent = os.path.dirname(d)
            for name in ("cpuset.cpus", "cpuset.mems"):
                if fs.read(d, name) == "":
                    fs.write(d, name, fs.read(parent, name))

    def _apply_devices(self, path: str) -> None:
        # In order, each run of rules for one file through one open file (runc writes them one by one).
        runs: list[tuple[str, list[str]]] = []
        for rule in self._device_rules:
            major = "*" if rule.major < 0 else str(rule.major)
            minor = "*" if rule.minor < 0 else str(rule.minor)
            entry = "a" if rule.type == "a" else f"{rule.type} {major}:{minor} {rule.permissions}"
            name = "devices.allow" if rule.allow else "devices.deny"
            if runs and runs[-1][0] == name:
                runs[-1][1].append(entry)
            else:
                runs.append((name, [entry]))
        for name, entries in runs:
            fs.write_each(path, name, entries)

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

    _SELF_FREEZE = ("freezer.self_freezing", "freezer.state", THAWED)

    def _freezer_dir(self) -> str | None:
        return self._paths.get("freezer")

    def _require_freezer(self) -> str:
        if "freezer" not in self._paths:
            raise SystemError("the freezer cgroup controller is not mounted; pause/resume need it "
                              "(mount it at /sys/fs/cgroup/freezer)")
        return self._paths["freezer"]

    def can_freeze(self) -> bool:
        return "freezer" in self._paths

    # -- resources -----------------------------------------------------------------------
    def check(self, resources) -> None:
        for name, value in resources.limits().items():
            controller, filename, why = _NEEDS.get(name) or ("blkio", _THROTTLE_FILES[name], "")
            path = self._paths.get(controller)
            if path is None:
                raise ConfigInvalid.at(f"resources.{name}", f"the {controller} cgroup controller is not mounted here "
                                       f"(mount it at /sys/fs/cgroup/{controller}, or leave {name} unset)")
            with fs.files_of(path) as base:
                if name == "blkio_weight":
                    if self._weight_file(base) is None:
                        raise ConfigInvalid.at("resources.blkio_weight", "no blkio.weight or blkio.bfq.weight here "
                                            "(the disk's IO scheduler must be BFQ or CFQ)")
                elif not filename or not os.path.exists(os.path.join(base, filename)):
                    raise ConfigInvalid.at(f"resources.{name}", f"{filename or name} is not available "
                                           f"({why or 'kernel too old'})")
        if "cpuset" in self._paths and (resources.cpuset_cpus or resources.cpuset_mems):
            parent = os.path.dirname(self._paths["cpuset"])
            parent = fs.nearest_existing(parent)  # a per-root parent is made with the first container
            check_cpuset(resources, _read_or_none(parent, "cpuset.cpus"), _read_or_none(parent, "cpuset.mems"))

    @staticmethod
    def _weight_file(path: str) -> str | None:
        for name in ("blkio.weight", "blkio.bfq.weight"):
            if os.path.exists(os.path.join(path, name)):
                return name
        return None

    def _apply(self, r, tx) -> None:
        self._apply_memory(r, tx)
        cpu = self._paths.get("cpu")
        if r.cpu_shares is not None:
            tx.write(cpu, "cpu.shares", str(r.cpu_shares))
        # runc's fs/cpu.go: a smaller period can be refused (EINVAL) while the old quota is in force.
        pending_period = r.cpu_period
        if r.cpu_period is not None:
            try:
                tx.write(cpu, "cpu.cfs_period_us", str(r.cpu_period))
                pending_period = None
            except CgroupWriteError as err:
                if err.errno != errno.EINVAL or r.cpu_quota is None:
                    raise
        if r.cpu_quota is not None:
            tx.write(cpu, "cpu.cfs_quota_us", str(r.cpu_quota))
        if pending_period is not None:
            tx.write(cpu, "cpu.cfs_period_us", str(pending_period))
        for name, filename in (("cpuset_cpus", "cpuset.cpus"), ("cpuset_mems", "cpuset.mems")):
            if getattr(r, name) is not None:
                tx.write(self._paths["cpuset"], filename, getattr(r, name))
        if r.pids_limit is not None:
            tx.write(self._paths["pids"], "pids.max", "max" if r.pids_limit == -1 else str(r.pids_limit))
        blkio = self._paths.get("blkio")
        if r.blkio_weight is not None:
            tx.write(blkio, self._weight_file(blkio), str(r.blkio_weight))
        for name, filename in _THROTTLE_FILES.items():
            devices = getattr(r, name)
            if devices is None:
                continue
            wanted = {f"{d.major}:{d.minor}": d.rate for d in devices}
            for dev in fs.device_entries(fs.read(blkio, filename)):
                wanted.setdefault(dev, 0)  # the list is the whole set: others go
            for dev, rate in wanted.items():
                tx.write(blkio, filename, f"{dev} {rate}")

    def _apply_memory(self, r, tx) -> None:
        mem = self._paths.get("memory")
        if os.path.exists(os.path.join(mem, "memory.memsw.limit_in_bytes")):  # (without swap accounting: no pair)
            r = pair_memory_swap(r)  # unlimited memory lifts the memory+swap limit too
        memory, swap = r.memory, r.memory_swap
        order = []
        if memory is not None and swap is not None:
            # memsw must stay >= memory at every step: raise memsw first, lower memory first.
            current = int(fs.read(mem, "memory.limit_in_bytes"))
            order = [("memory.memsw.limit_in_bytes", swap), ("memory.limit_in_bytes", memory)]
            if swap != -1 and current >= swap:
                order.reverse()
        elif memory is not None:
            order = [("memory.limit_in_bytes", memory)]
        elif swap is not None:
            order = [("memory.memsw.limit_in_bytes", swap)]
        for filename, value in order:
            try:
                tx.write(mem, filename, str(value))
            except CgroupWriteError as err:
                hint = _memory_hint(err, filename, value, mem)
                if hint is err:
                    raise
                raise hint from err
        if r.memory_reservation is not None:
            tx.write(mem, "memory.soft_limit_in_bytes", str(r.memory_reservation))

    def oom_kill_count(self) -> int | None:
        path = self._paths.get("memory")
        raw = fs.read_raw(os.path.join(path, "memory.oom_control")) if path else None
        if raw is None:
            return None
        return _flat_keyed(raw).get("oom_kill")

    def stats(self):
        from ..stats import BlkioStatEntry, BlkioStats, CgroupStats, CpuStats, MemoryStats, PidsStats, ThrottlingData

        read = self.files.read
        out = CgroupStats()
        cpuacct = self._paths.get("cpuacct")
        if cpuacct:
            out.cpu_stats = _cpuacct_usage(read, cpuacct)
        cpu = self._paths.get("cpu")
        raw = read(cpu, "cpu.stat") if cpu else None
        if raw is not None:
            st = _flat_keyed(raw)
            out.cpu_stats = out.cpu_stats or CpuStats()  # cpu without cpuacct: throttling only
            out.cpu_stats.throttling_data = ThrottlingData(st.get("nr_periods", 0), st.get("nr_throttled", 0),
                                                           st.get("throttled_time", 0))
        mem = self._paths.get("memory")
        raw = read(mem, "memory.stat") if mem else None
        if raw is not None:
            raw_stats = _flat_keyed(raw)
            out.memory_stats = MemoryStats(cache=raw_stats.get("cache", 0), usage=_memory_data(read, mem, "memory"),
                                           swap_usage=_memory_data(read, mem, "memory.memsw"),
                                           kernel_usage=_memory_data(read, mem, "memory.kmem"),
                                           stats=raw_stats)
        pids = self._paths.get("pids")
        raw = read(pids, "pids.current") if pids else None
        if raw is not None:
            limit = read(pids, "pids.max") or b"max"
            out.pids_stats = PidsStats(int(raw), 0 if limit.strip() == b"max" else int(limit))
        blkio = self._paths.get("blkio")
        if blkio:
            out.blkio_stats = BlkioStats(*(
                [BlkioStatEntry(*e) for e in _blkio_entries(read, blkio, kind)] for kind in ("io_service_bytes",
                                                                                        "io_serviced")))
        return out

    def destroy(self) -> None:
        errors = []
        for path in self._paths.values():
            try:
                fs.remove_tree(path)
                fs.prune_root_parent(path)
            except SystemError as err:
                errors.append(str(err))
        if errors:
            raise SystemError("; ".join(errors))


def _read_or_none(directory: str, name: str) -> str | None:
    raw = fs.read_raw(os.path.join(directory, name))
    return raw.decode().strip() if raw is not None else None


def _flat_keyed(raw: bytes) -> dict[str, int]:
    """``{"key": int}`` from a "key value" per line file (memory.stat, cpu.stat, memory.oom_control)."""
    words = raw.decode().split()
    return dict(zip(words[::2], map(int, words[1::2])))


def _cpuacct_usage(read, path: str):
    """``CpuStats`` with the usage from cpuacct: exact per-CPU ns (``usage_percpu``), total = their sum.

    The user/kernel split comes from ``usage_all`` (ns per CPU, tick-sampled as ``cpuacct.stat``
    is, which runc converts from ticks); ``cpuacct.stat`` only where ``usage_all`` is missing
    (kernels before 4.7). One file fewer per figure: stats sweeps read every container each tick.
    """
    from ..stats import CpuStats, CpuUsage

    per = read(path, "cpuacct.usage_percpu")
    if per is None:
        return None
    usage = CpuUsage(percpu_usage=[int(v) for v in per.split()])
    usage.total_usage = sum(usage.percpu_usage)
    split = read(path, "cpuacct.usage_all")
    if split:  # "cpu user system" then one line per CPU
        words = split.split()[3:]
        usage.percpu_usage_in_usermode = [int(v) for v in words[1::3]]
        usage.percpu_usage_in_kernelmode = [int(v) for v in words[2::3]]
        usage.usage_in_usermode = sum(usage.percpu_usage_in_usermode)
        usage.usage_in_kernelmode = sum(usage.percpu_usage_in_kernelmode)
    else:
        ticks = _flat_keyed(read(path, "cpuacct.stat") or b"")
        usage.usage_in_usermode = ticks.get("user", 0) * 1_000_000_000 // _CLK_TCK
        usage.usage_in_kernelmode = ticks.get("system", 0) * 1_000_000_000 // _CLK_TCK
    return CpuStats(cpu_usage=usage)


_MEMORY_DATA_FILES = {prefix: tuple(f"{prefix}.{n}" for n in ("usage_in_bytes", "max_usage_in_bytes", "failcnt",
                                                                "limit_in_bytes"))
                      for prefix in ("memory", "memory.memsw", "memory.kmem")}
_BLKIO_FILES = {kind: tuple(f"{prefix}{kind}_recursive" for prefix in ("blkio.bfq.", "blkio.", "blkio.throttle."))
                for kind in ("io_service_bytes", "io_serviced")}


def _memory_data(read, path: str, prefix: str):
    """``MemoryData`` from ``<prefix>.usage_in_bytes`` and its siblings; None when absent (no swap accounting)."""
    from ..stats import MemoryData

    names = _MEMORY_DATA_FILES[prefix]
    usage = read(path, names[0])
    if usage is None:
        return None
    values = [read(path, n) for n in names[1:]]
    return MemoryData(int(usage), *(int(v) if v else 0 for v in values))


def _blkio_entries(read, path: str, kind: str) -> list[tuple[int, int, str, int]]:
    """``(major, minor, op, value)`` from the first ``<kind>_recursive`` file with device lines.

    runc's order (fs/blkio.go): BFQ, then CFQ, then the throttle counters; a file holding only
    ``Total 0`` (a scheduler loaded but not used by any disk) is skipped.
    """
    for name in _BLKIO_FILES[kind]:
        raw = read(path, name)
        if raw is None:
            continue
        out = []
        for line in raw.decode().splitlines():
            parts = line.split()
            if len(parts) == 3 and ":" in parts[0]:
                major, minor = parts[0].split(":")
                out.append((int(major), int(minor), parts[1], int(parts[2])))
        if out:
            return out
    return []


def _memory_hint(err: CgroupWriteError, filename: str, value: int, path: str) -> CgroupWriteError:
    """The kernel's refusal of a memory limit, with the field and what it means for the user."""
    if filename == "memory.limit_in_bytes" and err.errno == errno.EBUSY:
        usage = _read_or_none(path, "memory.usage_in_bytes")
        return CgroupWriteError(err.path, err.value, err.errno, "resources.memory",
                                f"{value} bytes is below what the container uses now ({usage} bytes) "
                                "and the kernel could not reclaim enough")
    if err.errno == errno.EINVAL and filename == "memory.limit_in_bytes":
        return CgroupWriteError(err.path, err.value, err.errno, "resources.memory",
                                f"{value} bytes is above memory_swap (memory+swap limit "
                                f"{_read_or_none(path, 'memory.memsw.limit_in_bytes')}); raise memory_swap too")
    if err.errno == errno.EINVAL:
        return CgroupWriteError(err.path, err.value, err.errno, "resources.memory_swap",
                                f"{value} bytes is below memory ({_read_or_none(path, 'memory.limit_in_bytes')} bytes)")
    return err
