"""The container's cgroup in the ``Config`` (libcontainer's ``configs/cgroup_linux.go``): :class:`Cgroup`,
its :class:`Resources` (limits with libcontainer's names and units, their checks, the memory↔swap
pairing) and the device rules. Stdlib only."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from ..errors import ConfigInvalid


@dataclass
class DeviceRule:
    """``devices.Rule``: ``type`` is ``a``/``b``/``c``; major/minor ``-1`` is the wildcard; ``permissions`` is rwm."""

    type: str = "a"
    major: int = -1
    minor: int = -1
    permissions: str = "rwm"
    allow: bool = False


@dataclass
class ThrottleDevice:
    """``configs.ThrottleDevice``: ``rate`` (bytes/s or IO/s) for the block device ``major:minor``; 0 removes it."""

    major: int
    minor: int
    rate: int


THROTTLE_FIELDS = ("blkio_throttle_read_bps_device", "blkio_throttle_write_bps_device",
                   "blkio_throttle_read_iops_device", "blkio_throttle_write_iops_device")
"""The ``Resources`` fields holding :class:`ThrottleDevice` lists."""

LIMIT_FIELDS = ("memory", "memory_reservation", "memory_swap", "cpu_shares", "cpu_weight", "cpu_quota",
                "cpu_period", "cpuset_cpus", "cpuset_mems", "pids_limit", "blkio_weight") + THROTTLE_FIELDS
"""Every ``Resources`` field that :meth:`Container.set` applies live (all but ``devices``)."""

MAX_CPU_SHARES = 262144  # the kernel's MAX_SHARES (v1 clamps silently; runc reports it)
MAX_INT64 = (1 << 63) - 1  # libcontainer's int64 fields; the kernel parses limits as signed 64-bit
_MAX_LIMITS = {"pids_limit": 4194304}  # PID_MAX_LIMIT: pids.max accepts no more


@dataclass
class Resources:
    """``cgroups.Resources``: the limits of the container's cgroup, with libcontainer's names and units.

    ``None`` means "not set": at create the kernel default stays, on :meth:`Container.set` the
    current value is kept. ``-1`` (:data:`~declarative_ct.units.UNLIMITED`) removes a limit.

    - ``memory``, ``memory_reservation`` (bytes): v1 ``memory.limit_in_bytes``/``soft_limit_in_bytes``,
      v2 ``memory.max``/``memory.low``.
    - ``memory_swap`` (bytes, memory + swap as runc counts it): v1 ``memory.memsw.limit_in_bytes``,
      v2 ``memory.swap.max`` = swap − memory.
    - ``cpu_shares`` (2..262144, v1 ``cpu.shares``); ``cpu_weight`` (1..10000, v2 ``cpu.weight``,
      derived from the shares when unset); ``cpu_quota``/``cpu_period`` (µs per period: v1
      ``cpu.cfs_*_us``, v2 ``cpu.max``).
    - ``cpuset_cpus``/``cpuset_mems``: lists such as ``"0-1,3"``.
    - ``pids_limit``: tasks (``pids.max``).
    - ``blkio_weight`` (10..1000): v1 ``blkio.weight`` or ``blkio.bfq.weight``, v2 ``io.bfq.weight`` or
      ``io.weight``; throttles: v1 ``blkio.throttle.*_device``, v2 ``io.max``.
    - ``devices``: the device allow-list, fixed at create.
    """

    devices: list[DeviceRule] = field(default_factory=lambda: default_device_rules())
    memory: int | None = None
    memory_reservation: int | None = None
    memory_swap: int | None = None
    cpu_shares: int | None = None
    cpu_weight: int | None = None
    cpu_quota: int | None = None
    cpu_period: int | None = None
    cpuset_cpus: str | None = None
    cpuset_mems: str | None = None
    pids_limit: int | None = None
    blkio_weight: int | None = None
    blkio_throttle_read_bps_device: list[ThrottleDevice] | None = None
    blkio_throttle_write_bps_device: list[ThrottleDevice] | None = None
    blkio_throttle_read_iops_device: list[ThrottleDevice] | None = None
    blkio_throttle_write_iops_device: list[ThrottleDevice] | None = None

    def limits(self) -> dict[str, object]:
        """``{field: value}`` of the live-settable fields that are set (not None)."""
        return {name: getattr(self, name) for name in LIMIT_FIELDS if getattr(self, name) is not None}

    def merged(self, update: "Resources") -> "Resources":
        """A copy of ``self`` with every field that ``update`` sets taken from ``update`` (devices kept)."""
        return dataclasses.replace(self, **update.limits())

    def validate(self) -> None:
        """Check values and their relations, as runc's update and the kernel would.

        Raises:
            ConfigInvalid: naming the field (``resources.memory_swap: 32Mi is below memory 64Mi``…).
        """
        def bad(name: str, message: str) -> ConfigInvalid:
            value = getattr(self, name)
            return ConfigInvalid.at(f"resources.{name}", f"{value!r} {message}", value)

        for name in ("memory", "memory_reservation", "memory_swap", "cpu_quota", "pids_limit"):
            value = getattr(self, name)
            if value is None:
                continue
            if not is_int(value) or (value < 0 and value != -1):
                raise bad(name, "must be a non-negative integer, or -1 for unlimited")
            if value == 0 and name != "cpu_quota":
                raise bad(name, "must be positive (-1 means unlimited)")
            if value > _MAX_LIMITS.get(name, MAX_INT64):
                raise bad(name, f"is too large (at most {_MAX_LIMITS.get(name, MAX_INT64)})")
        if self.memory is not None and 0 < self.memory < 1 << 20:
            raise bad("memory", "bytes is below 1Mi: the container could not even start (a unit missing? 64Mi)")
        if self.memory_swap not in (None, -1):
            if self.memory is None:
                raise bad("memory_swap", "needs memory to be set too (it counts memory + swap)")
            if self.memory == -1:
                raise bad("memory_swap", "limits memory + swap, so it needs a memory limit (memory is unlimited)")
            if self.memory_swap < self.memory:
                from ..units import format_size
                raise ConfigInvalid.at("resources.memory_swap", f"{format_size(self.memory_swap)} is below memory "
                                       f"{format_size(self.memory)} (memory_swap counts memory + swap; use -1 for "
                                       "unlimited swap)", self.memory_swap)
        ranges = {"cpu_shares": (2, MAX_CPU_SHARES), "cpu_weight": (1, 10000), "cpu_period": (1000, 1000000),
                  "blkio_weight": (10, 1000)}
        for name, (low, high) in ranges.items():
            value = getattr(self, name)
            if value is not None and (not is_int(value) or not low <= value <= high):
                raise bad(name, f"must be an integer in [{low}, {high}]")
        if self.cpu_quota is not None and 0 <= self.cpu_quota < 1000:
            raise bad("cpu_quota", "must be at least 1000 µs, or -1 for unlimited")
        for name in ("cpuset_cpus", "cpuset_mems"):
            value = getattr(self, name)
            if value is not None:
                try:
                    if not parse_cpu_list(value):
                        raise ValueError("is empty")
                except ValueError as err:
                    raise bad(name, str(err)) from None
        for name in THROTTLE_FIELDS:
            for dev in getattr(self, name) or []:
                if not all(is_int(v) and v >= 0 for v in (dev.major, dev.minor, dev.rate)):
                    raise ConfigInvalid.at(f"resources.{name}", f"{dev.major}:{dev.minor} {dev.rate!r} must be "
                                           "non-negative integers", dev)


def pair_memory_swap(update: Resources, current: Resources | None = None) -> Resources:
    """``update`` with the half of the memory/memory_swap pair it leaves out filled in (they are one pair:
    ``memory_swap`` counts memory + swap, so it is ``>= memory``; -1 is unlimited).

    Unlimited memory lifts the swap limit too (runc; the kernel does so as well: the config keeps in
    step). With ``current``, the limits in force (a live update, ``runc update``): changing one half
    keeps the other as it was (v2's ``memory.swap.max`` is their difference).

    Raises:
        ConfigInvalid: the kept half makes the pair impossible (named, with what to give).
    """
    if update.memory == -1 and update.memory_swap is None:
        return dataclasses.replace(update, memory_swap=-1)
    if current is None:
        return update
    if update.memory not in (None, -1) and update.memory_swap is None and current.memory_swap not in (None, -1):
        if update.memory > current.memory_swap:
            from ..units import format_size
            raise ConfigInvalid.at("resources.memory", f"{format_size(update.memory)} is above the container's "
                                   f"memory + swap limit {format_size(current.memory_swap)}; give {{0}} too "
                                   "(-1 for unlimited swap)", update.memory, refs=("resources.memory_swap",))
        return dataclasses.replace(update, memory_swap=current.memory_swap)
    if update.memory_swap not in (None, -1) and update.memory is None:
        if current.memory in (None, -1):
            raise ConfigInvalid.at("resources.memory_swap", "the container has no memory limit; give {0} too "
                                   "(memory + swap needs both)", update.memory_swap, refs=("resources.memory",))
        return dataclasses.replace(update, memory=current.memory)
    return update


def parse_cpu_list(text: str) -> set[int]:
    """``"0-2,5"`` → ``{0, 1, 2, 5}`` (the kernel's cpuset list format). Raises ValueError."""
    if not isinstance(text, str):
        raise ValueError("must be a list such as \"0-1,3\"")
    out: set[int] = set()
    text = text.replace(" ", "")
    for part in text.split(",") if text else []:
        low, sep, high = part.partition("-")
        if not low.isdigit() or (sep and not high.isdigit()):
            raise ValueError("must be a list such as \"0-1,3\"")
        if sep and int(high) < int(low):
            raise ValueError(f"has a reversed range {part}")
        out.update(range(int(low), int(high if sep else low) + 1))
    return out


def format_cpu_list(cpus: set[int]) -> str:
    """``{0, 1, 2, 5}`` → ``"0-2,5"`` (the kernel's own spelling of a cpuset list)."""
    out, ordered = [], sorted(cpus)
    i = 0
    while i < len(ordered):
        j = i
        while j + 1 < len(ordered) and ordered[j + 1] == ordered[j] + 1:
            j += 1
        out.append(str(ordered[i]) if i == j else f"{ordered[i]}-{ordered[j]}")
        i = j + 1
    return ",".join(out)


def is_int(value: object) -> bool:
    """A JSON integer: an ``int`` that is not a ``bool`` (``true`` is not a number)."""
    return isinstance(value, int) and not isinstance(value, bool)


@dataclass
class Cgroup:
    """``cgroups.Cgroup``: the cgroup is ``<mount>/<parent>/<id>`` (v1 per controller, v2 once).

    The default ``parent`` is replaced at create by the state root's (``Runtime.cgroup_parent``:
    ``dct`` for /run/dct, ``dct-<hash>`` for others).

    A non-empty ``path`` (OCI ``linux.cgroupsPath``) is used instead: an absolute one below each
    mount, a relative one below the creating process's own cgroup in each hierarchy (as runc's
    fs drivers place it).
    """

    name: str = ""
    parent: str = "dct"
    path: str = ""
    resources: Resources = field(default_factory=Resources)


def default_device_rules() -> list[DeviceRule]:
    """runc's device cgroup default: deny all, then allow mknod of anything and the standard nodes."""
    rules = [DeviceRule("a", -1, -1, "rwm", False),
             DeviceRule("c", -1, -1, "m", True), DeviceRule("b", -1, -1, "m", True)]
    for major, minor in ((1, 3), (1, 5), (1, 7), (1, 8), (1, 9), (5, 0), (5, 1), (5, 2), (136, -1)):
        rules.append(DeviceRule("c", major, minor, "rwm", True))
    return rules
