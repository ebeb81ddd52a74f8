"""Container statistics in libcontainer's shape (``libcontainer.Stats``, ``cgroups.Stats``).

Field names are the JSON keys of ``cgroups/stats.go`` (``cpu_stats.cpu_usage.total_usage``…);
CPU times are nanoseconds, memory is bytes. A controller that is not there leaves its part None.
:func:`events_data` re-maps a :class:`Stats` to ``runc events --stats``' ``types.Stats`` JSON.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields


@dataclass
class CpuUsage:
    """``cgroups.CpuUsage``: ns; per-CPU lists only on v1 (``cpuacct.usage_all``)."""

    total_usage: int = 0
    percpu_usage: list[int] = field(default_factory=list)
    percpu_usage_in_kernelmode: list[int] = field(default_factory=list)
    percpu_usage_in_usermode: list[int] = field(default_factory=list)
    usage_in_kernelmode: int = 0
    usage_in_usermode: int = 0


@dataclass
class ThrottlingData:
    """``cgroups.ThrottlingData``: CFS periods, periods throttled, time throttled (ns)."""

    periods: int = 0
    throttled_periods: int = 0
    throttled_time: int = 0


@dataclass
class CpuStats:
    """``cgroups.CpuStats``."""

    cpu_usage: CpuUsage = field(default_factory=CpuUsage)
    throttling_data: ThrottlingData = field(default_factory=ThrottlingData)


@dataclass
class MemoryData:
    """``cgroups.MemoryData`` (bytes): ``limit`` reads as a huge number when unlimited."""

    usage: int = 0
    max_usage: int = 0
    failcnt: int = 0
    limit: int = 0


@dataclass
class MemoryStats:
    """``cgroups.MemoryStats``: ``stats`` is the raw ``memory.stat``; ``swap_usage`` is memory+swap (runc)."""

    cache: int = 0
    usage: MemoryData = field(default_factory=MemoryData)
    swap_usage: MemoryData | None = None
    kernel_usage: MemoryData | None = None
    stats: dict[str, int] = field(default_factory=dict)


@dataclass
class PidsStats:
    """``cgroups.PidsStats``: ``limit`` 0 means unlimited."""

    current: int = 0
    limit: int = 0


@dataclass
class BlkioStatEntry:
    """``cgroups.BlkioStatEntry``: ``op`` is Read/Write/Sync/Async/Discard/Total."""

    major: int
    minor: int
    op: str
    value: int


@dataclass
class BlkioStats:
    """``cgroups.BlkioStats`` (the two lists both v1 and v2 provide)."""

    io_service_bytes_recursive: list[BlkioStatEntry] = field(default_factory=list)
    io_serviced_recursive: list[BlkioStatEntry] = field(default_factory=list)


@dataclass
class CgroupStats:
    """``cgroups.Stats``."""

    cpu_stats: CpuStats | None = None
    memory_stats: MemoryStats | None = None
    pids_stats: PidsStats | None = None
    blkio_stats: BlkioStats | None = None


@dataclass
class NetworkInterface:
    """``types.NetworkInterface`` (Go names, as its JSON has no tags); filled by networking."""

    Name: str
    RxBytes: int = 0
    RxPackets: int = 0
    RxErrors: int = 0
    RxDropped: int = 0
    TxBytes: int = 0
    TxPackets: int = 0
    TxErrors: int = 0
    TxDropped: int = 0


@dataclass
class Stats:
    """``libcontainer.Stats``: cgroup statistics and the container's network interfaces."""

    cgroup_stats: CgroupStats = field(default_factory=CgroupStats)
    interfaces: list[NetworkInterface] = field(default_factory=list)

    def to_dict(self) -> dict[str, object]:
        """A JSON-ready dict with these field names (Go's ``Stats`` has no tags: runc's own JSON says
        ``CgroupStats``/``Interfaces``); absent parts left out."""
        return _plain(self)


def _plain(obj: object) -> object:
    if hasattr(obj, "__dataclass_fields__"):
        return {f.name: _plain(getattr(obj, f.name)) for f in fields(obj) if getattr(obj, f.name) is not None}
    if isinstance(obj, list):
        return [_plain(v) for v in obj]
    if isinstance(obj, dict):
        return dict(obj)
    return obj


def events_data(stats: Stats) -> dict[str, object]:
    """``runc events --stats`` ``data``: ``{cpu, memory, pids, blkio, network_interfaces}`` (types/events.go)."""
    cg = stats.cgroup_stats
    out: dict[str, object] = {}
    if cg.cpu_stats is not None:
        u, t = cg.cpu_stats.cpu_usage, cg.cpu_stats.throttling_data
        usage: dict[str, object] = {"total": u.total_usage, "kernel": u.usage_in_kernelmode,
                                    "user": u.usage_in_usermode}
        for key, values in (("percpu", u.percpu_usage), ("percpu_kernel", u.percpu_usage_in_kernelmode),
                            ("percpu_user", u.percpu_usage_in_usermode)):
            if values:
                usage[key] = values
        out["cpu"] = {"usage": usage, "throttling": {"periods": t.periods, "throttledPeriods": t.throttled_periods,
                                                     "throttledTime": t.throttled_time}}
    if cg.memory_stats is not None:
        m = cg.memory_stats
        memory: dict[str, object] = {"cache": m.cache, "usage": _memory_entry(m.usage)}
        if m.swap_usage is not None:
            memory["swap"] = _memory_entry(m.swap_usage)
        if m.kernel_usage is not None:
            memory["kernel"] = _memory_entry(m.kernel_usage)
        memory["raw"] = m.stats
        out["memory"] = memory
    if cg.pids_stats is not None:
        out["pids"] = {"current": cg.pids_stats.current, "limit": cg.pids_stats.limit}
    if cg.blkio_stats is not None:
        b = cg.blkio_stats
        out["blkio"] = {"ioServiceBytesRecursive": _plain(b.io_service_bytes_recursive),
                        "ioServicedRecursive": _plain(b.io_serviced_recursive)}
    out["network_interfaces"] = _plain(stats.interfaces) if stats.interfaces else None
    return out


def _memory_entry(d: MemoryData) -> dict[str, int]:
    return {"limit": d.limit, "usage": d.usage, "max": d.max_usage, "failcnt": d.failcnt}
