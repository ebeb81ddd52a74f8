"""The container ``Config``: libcontainer's ``configs.Config`` as plain dataclasses.

Field names and JSON keys follow ``libcontainer/configs`` (``rootfs``, ``namespaces``,
``mask_paths``, ``capabilities.Bounding``…), so ``state.json`` reads like runc's. Stdlib only:
the container init imports this module.
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, field

from ..errors import ConfigInvalid
from .mountflags import MS_NODEV, MS_NOEXEC, MS_NOSUID, MS_RDONLY, MS_STRICTATIME
from .seccomp import Seccomp

# Namespace types as libcontainer names them (configs/namespaces_linux.go), in its canonical order.
NAMESPACE_TYPES = ("NEWUSER", "NEWIPC", "NEWUTS", "NEWNET", "NEWPID", "NEWNS", "NEWCGROUP")
NAMESPACE_PROC_NAMES = {"NEWUSER": "user", "NEWIPC": "ipc", "NEWUTS": "uts", "NEWNET": "net",
                        "NEWPID": "pid", "NEWNS": "mnt", "NEWCGROUP": "cgroup"}
SUPPORTED_NAMESPACES = frozenset(NAMESPACE_TYPES)
MAX_ID_MAPS = 340  # the kernel's limit of lines in uid_map/gid_map (Linux 4.15+)
MAX_ID = 2**32 - 1
"""Ids are below this: it is ``(uid_t)-1``, which the set*id(2) calls read as "leave unchanged"."""
_CLONE_NEW = {"NEWNS": 0x00020000, "NEWCGROUP": 0x02000000, "NEWUTS": 0x04000000, "NEWIPC": 0x08000000,
              "NEWUSER": 0x10000000, "NEWPID": 0x20000000, "NEWNET": 0x40000000}
_NS_WORDS = {"NEWNS": "mount", "NEWCGROUP": "cgroup", "NEWUTS": "uts", "NEWIPC": "ipc", "NEWUSER": "user",
             "NEWPID": "pid", "NEWNET": "network"}  # the OCI names, for messages
_NS_GET_NSTYPE = 0xB703  # ioctl(2) on an nsfs file: its CLONE_NEW* type (Linux 4.11)


def namespace_path_problem(ns_type: str, path: str) -> str | None:
    """Why ``path`` cannot be joined as a namespace of ``ns_type`` (``NEWNET``…), or None when it
    is a namespace file of that type: it cannot be opened (the reason), is not a namespace file,
    or is one of another type (``ioctl(NS_GET_NSTYPE)``)."""
    import fcntl  # only configs that join a namespace by path pay for it

    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError as err:
        return f"cannot be opened: {err.strerror}"
    try:
        try:
            found = fcntl.ioctl(fd, _NS_GET_NSTYPE)
        except OSError:
            return "is not a namespace file (/proc/<pid>/ns/... or a bind mount of one)"
    finally:
        os.close(fd)
    if found != _CLONE_NEW[ns_type]:
        other = next((word for t, word in _NS_WORDS.items() if _CLONE_NEW[t] == found), hex(found))
        return f"is a {other} namespace, not a {_NS_WORDS[ns_type]} one"
    return None

# capability(7) numbers, as in <linux/capability.h>.
CAPABILITIES = {name: i for i, name in enumerate((
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL",
    "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE", "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK", "CAP_IPC_OWNER",
    "CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE", "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE", "CAP_SYS_RESOURCE", "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE", "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP", "CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG", "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF", "CAP_CHECKPOINT_RESTORE"))}

# Docker's default capability set (moby oci/caps/defaults.go).
DEFAULT_CAPABILITIES = [
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW",
    "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
]

# runc spec's masked and read-only paths (libcontainer/specconv/example.go).
DEFAULT_MASK_PATHS = [
    "/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
    "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi", "/sys/firmware",
    "/sys/devices/virtual/powercap",
]
DEFAULT_READONLY_PATHS = ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]

DEFAULT_ENV = ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]

OCI_VERSION = "1.2.0"
"""The runtime-spec version we write (``dct spec``) and report when a config has none."""

HOST_ROOTFS = "host"
"""Special ``rootfs`` value: a read-only view of the host's /usr, /bin, /lib*, a minimal /etc, private /tmp."""


@dataclass
class Namespace:
    """``configs.Namespace``: ``type`` is NEWPID/NEWNS/…; a non-empty ``path`` joins that namespace."""

    type: str
    path: str = ""


@dataclass
class IDMap:
    """``configs.IDMap``: ``size`` ids from ``container_id`` in the container's user namespace are
    ``host_id`` … on the host (one line of ``/proc/<pid>/uid_map``; OCI ``containerID``/``hostID``/``size``)."""

    container_id: int
    host_id: int
    size: int


@dataclass
class Mount:
    """``configs.Mount``. ``device`` is the filesystem type (``bind`` for bind mounts); ``flags`` are MS_* bits.

    ``rec_attr_set``/``rec_attr_clr`` are ``MOUNT_ATTR_*`` bits applied with ``mount_setattr(AT_RECURSIVE)``
    to the mount and all below it (runc's ``RecAttr``: ``rro``, ``rnosuid``…); ``extensions`` holds
    ``EXT_COPYUP`` (``tmpcopyup``). A ``cgroup`` (or ``cgroup2``) mount gets the container's own cgroups.
    """

    source: str
    destination: str
    device: str = "bind"
    flags: int = 0
    data: str = ""
    propagation_flags: list[int] = field(default_factory=list)
    rec_attr_set: int = 0
    rec_attr_clr: int = 0
    extensions: int = 0


@dataclass
class Capabilities:
    """``configs.Capabilities``: lists of ``CAP_*`` names per set (JSON keys capitalised, as runc)."""

    Bounding: list[str] = field(default_factory=lambda: list(DEFAULT_CAPABILITIES))
    Effective: list[str] = field(default_factory=lambda: list(DEFAULT_CAPABILITIES))
    Permitted: list[str] = field(default_factory=lambda: list(DEFAULT_CAPABILITIES))
    Inheritable: list[str] = field(default_factory=list)
    Ambient: list[str] = field(default_factory=list)


@dataclass
class Rlimit:
    """``configs.Rlimit``: ``type`` is the ``RLIMIT_*`` number; ``hard``/``soft`` in the limit's unit."""

    type: int
    hard: int
    soft: int


@dataclass
class DeviceRule:
    """``devices.Rule``: ``type`` is ``a``/``b``/``c``; major/minor ``-1`` is the wildcard; ``permissions`` is rwm."""

    type: str = "a"
    major: int = -1
    minor: int = -1
    permissions: str = "rwm"
    allow: bool = False


@dataclass
class Device:
    """``devices.Device``: a node made in the container's ``/dev`` (OCI ``linux.devices[]``).

    ``type`` is ``c`` (``u`` counts as ``c``), ``b`` or ``p`` (a FIFO: major/minor unused);
    ``path`` is absolute inside the container; ``file_mode`` the permission bits (default 0666);
    ``uid``/``gid`` its owner. Making the node does not allow it: the device cgroup's rules
    (``Resources.devices``) decide whether it can be opened, as in runc.
    """

    path: str
    type: str = "c"
    major: int = 0
    minor: int = 0
    file_mode: int = 0o666
    uid: int = 0
    gid: int = 0


HOOK_NAMES = ("prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop")
"""The runtime-spec hook points, in the order they run (libcontainer ``configs.HookName``)."""


@dataclass
class Hook:
    """One runtime-spec hook (libcontainer ``configs.Command``): ``path`` (absolute, run as is, not
    looked up in PATH), ``args`` (argv, ``args[0]`` included; empty means ``[path]``), ``env``
    (``KEY=value``; the hook gets nothing else), ``timeout`` (seconds; None waits for ever). It
    gets the container's OCI state JSON on stdin."""

    path: str
    args: list[str] = field(default_factory=list)
    env: list[str] = field(default_factory=list)
    timeout: int | None = None


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
            if not _is_int(value) or (value < 0 and value != -1):
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
            if value is not None and (not _is_int(value) or not low <= value <= high):
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
                if not all(_is_int(v) and v >= 0 for v in (dev.major, dev.minor, dev.rate)):
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


def _is_int(value: object) -> bool:
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


@dataclass
class Network:
    """libcontainer ``configs.Network`` of type ``veth``: one interface inside the container.

    The host end (``host_interface_name``, default ``veth`` + 8 hex of the id) is attached to
    ``bridge``; the container end is created as ``name`` (``eth0``). ``subnet`` (CIDR) is the
    bridge's: empty means the existing bridge's, or ``10.88.0.0/16`` for a new one (our addition,
    as is leasing: libcontainer takes addresses as given). ``address`` is ``10.88.0.5`` or
    ``10.88.0.5/16``; empty means "lease one from the subnet". ``gateway`` empty means the
    subnet's first host (the bridge's address). ``mtu`` 0 keeps the kernel's (1500);
    ``mac_address`` empty lets the kernel pick. Interface names are at most 15 bytes (IFNAMSIZ - 1).
    """

    bridge: str = "dct0"
    subnet: str = ""
    address: str = ""
    gateway: str = ""
    ipv6_address: str = ""
    ipv6_gateway: str = ""
    mac_address: str = ""
    mtu: int = 0
    name: str = "eth0"
    host_interface_name: str = ""
    type: str = "veth"


@dataclass
class Route:
    """libcontainer ``configs.Route``, added inside the container's network namespace.

    ``destination`` is CIDR (``0.0.0.0/0`` for a default route), ``gateway`` and ``source``
    are addresses (empty: none), ``interface_name`` defaults to the container's interface.
    """

    destination: str
    gateway: str = ""
    source: str = ""
    interface_name: str = ""


@dataclass
class PortMapping:
    """A published port (docker's ``-p host_ip:host_port:container_port/protocol``; not in libcontainer).

    Traffic to ``host_ip:host_port`` (``0.0.0.0``: any local address) in the namespace that created
    the container is DNATed to the container's address and ``container_port``. ``protocol`` is
    ``tcp`` or ``udp``.
    """

    host_port: int
    container_port: int
    protocol: str = "tcp"
    host_ip: str = "0.0.0.0"


# The IPC namespace's sysctls (runc's validator's list; plus every fs.mqueue.* key).
IPC_SYSCTLS = frozenset({"kernel.msgmax", "kernel.msgmnb", "kernel.msgmni", "kernel.sem", "kernel.shmall",
                         "kernel.shmmax", "kernel.shmmni", "kernel.shm_rmid_forced"})


def default_mounts() -> list[Mount]:
    """The standard mounts of ``runc spec`` (/proc, /dev, /dev/pts, /dev/shm, /dev/mqueue, /sys read-only)."""
    nse = MS_NOSUID | MS_NOEXEC | MS_NODEV
    return [
        Mount("proc", "/proc", "proc", nse),
        Mount("tmpfs", "/dev", "tmpfs", MS_NOSUID | MS_STRICTATIME, "mode=755,size=65536k"),
        Mount("devpts", "/dev/pts", "devpts", MS_NOSUID | MS_NOEXEC, "newinstance,ptmxmode=0666,mode=0620,gid=5"),
        Mount("shm", "/dev/shm", "tmpfs", nse, "mode=1777,size=65536k"),
        Mount("mqueue", "/dev/mqueue", "mqueue", nse),
        Mount("sysfs", "/sys", "sysfs", nse | MS_RDONLY),
    ]


def default_device_rules() -> list[DeviceRule]:
    """runc's device cgroup default: deny all, then allow mknod of anything and the standard nodes."""
    rules = [DeviceRule("a", -1, -1, "rwm", False),
             DeviceRule("c", -1, -1, "m", True), DeviceRule("b", -1, -1, "m", True)]
    for major, minor in ((1, 3), (1, 5), (1, 7), (1, 8), (1, 9), (5, 0), (5, 1), (5, 2), (136, -1)):
        rules.append(DeviceRule("c", major, minor, "rwm", True))
    return rules


@dataclass
class Config:
    """libcontainer's ``configs.Config``, as far as this release implements it.

    ``rootfs`` is an absolute directory (not a symlink) or :data:`HOST_ROOTFS`. Namespaces absent
    from ``namespaces`` are shared with the host. ``labels`` are ``"key=value"`` strings and carry
    ``bundle=<dir>`` plus the OCI annotations, as runc stores them.
    """

    rootfs: str
    readonlyfs: bool = False
    root_propagation: int = 0  # MS_SLAVE/MS_PRIVATE (|MS_REC) for "/" after pivot_root; 0 keeps rslave
    no_pivot_root: bool = False  # libcontainer NoPivotRoot (--no-pivot): MS_MOVE onto / and chroot instead
    hostname: str = ""
    domainname: str = ""
    mounts: list[Mount] = field(default_factory=default_mounts)
    namespaces: list[Namespace] = field(default_factory=lambda: [
        Namespace(t) for t in ("NEWNS", "NEWUTS", "NEWIPC", "NEWPID", "NEWNET", "NEWCGROUP")])
    capabilities: Capabilities = field(default_factory=Capabilities)
    rlimits: list[Rlimit] = field(default_factory=list)
    oom_score_adj: int | None = None  # -1000..1000, written to /proc/self/oom_score_adj (OCI oomScoreAdj)
    mask_paths: list[str] = field(default_factory=lambda: list(DEFAULT_MASK_PATHS))  # linux.maskedPaths
    readonly_paths: list[str] = field(default_factory=lambda: list(DEFAULT_READONLY_PATHS))  # linux.readonlyPaths
    sysctl: dict[str, str] = field(default_factory=dict)  # dotted keys ("net.ipv4.ip_forward"), namespaced only
    no_new_privileges: bool = True
    no_new_keyring: bool = False  # libcontainer NoNewKeyring (runc --no-new-keyring): keep the caller's session keyring
    seccomp: Seccomp | None = None  # linux.seccomp; None runs unfiltered (as runc without one)
    cgroups: Cgroup = field(default_factory=Cgroup)
    labels: list[str] = field(default_factory=list)
    version: str = OCI_VERSION
    networks: list[Network] = field(default_factory=list)  # veth interfaces (needs a new NEWNET)
    routes: list[Route] = field(default_factory=list)
    ports: list[PortMapping] = field(default_factory=list)  # published ports (needs networks)
    devices: list[Device] = field(default_factory=list)  # linux.devices: nodes made in /dev
    hooks: dict[str, list[Hook]] = field(default_factory=dict)  # HOOK_NAMES -> hooks, in order
    uid_mappings: list[IDMap] = field(default_factory=list)  # linux.uidMappings, for a new user namespace
    gid_mappings: list[IDMap] = field(default_factory=list)  # linux.gidMappings

    # -- helpers -------------------------------------------------------------------------
    def namespace(self, ns_type: str) -> Namespace | None:
        """The entry for ``ns_type`` (``NEWPID``…), or None when that namespace is the host's."""
        return next((n for n in self.namespaces if n.type == ns_type), None)

    def label(self, key: str) -> str | None:
        """The value of label ``key`` (``bundle`` and annotations live here), or None."""
        prefix = key + "="
        return next((lb[len(prefix):] for lb in self.labels if lb.startswith(prefix)), None)

    def to_dict(self) -> dict[str, object]:
        """The config as libcontainer's JSON object (what ``state.json`` stores under ``config``)."""
        # Every part is a plain dataclass of JSON types: the C encoder walks it ~4x faster than asdict.
        return json.loads(json.dumps(self, default=vars))

    @classmethod
    def from_dict(cls, raw: dict[str, object]) -> "Config":
        """Rebuild a Config saved by :meth:`to_dict`. Raises ConfigInvalid on a malformed object."""
        try:
            raw = dict(raw)
            raw["mounts"] = [Mount(**m) for m in raw.get("mounts", [])]
            raw["namespaces"] = [Namespace(**n) for n in raw.get("namespaces", [])]
            raw["capabilities"] = Capabilities(**raw.get("capabilities", {}))
            raw["rlimits"] = [Rlimit(**r) for r in raw.get("rlimits", [])]
            raw["networks"] = [Network(**n) for n in raw.get("networks", [])]
            raw["routes"] = [Route(**r) for r in raw.get("routes", [])]
            raw["ports"] = [PortMapping(**p) for p in raw.get("ports", [])]
            raw["devices"] = [Device(**d) for d in raw.get("devices", [])]
            for name in ("uid_mappings", "gid_mappings"):
                raw[name] = [IDMap(**m) for m in raw.get(name, [])]
            raw["hooks"] = {name: [Hook(**h) for h in hooks] for name, hooks in (raw.get("hooks") or {}).items()}
            if raw.get("seccomp") is not None:
                raw["seccomp"] = Seccomp.from_dict(raw["seccomp"])
            cg = dict(raw.get("cgroups", {}))
            res = dict(cg.get("resources", {}))
            res["devices"] = [DeviceRule(**d) for d in res.get("devices", [])]
            for name in THROTTLE_FIELDS:
                if res.get(name) is not None:
                    res[name] = [ThrottleDevice(**t) for t in res[name]]
            cg["resources"] = Resources(**res)
            raw["cgroups"] = Cgroup(**cg)
            return cls(**raw)
        except (TypeError, KeyError, AttributeError) as err:
            raise ConfigInvalid(f"malformed saved config: {err}") from err

    def validate(self) -> None:
        """Check the config as libcontainer's ``validate.Validate`` does.

        Raises:
            ConfigInvalid: naming the field and the reason (missing or symlinked rootfs, relative
                mount destination, unknown namespace or capability, hostname without a UTS namespace,
                a seccomp action or architecture that does not exist…).
        """
        if self.rootfs != HOST_ROOTFS:
            if not os.path.isabs(self.rootfs):
                raise ConfigInvalid(f"rootfs: {self.rootfs!r} must be an absolute path")
            if os.path.islink(self.rootfs):
                raise ConfigInvalid(f"rootfs: {self.rootfs} is a symlink; give the real directory")
            if not os.path.isdir(self.rootfs):
                raise ConfigInvalid(f"rootfs: {self.rootfs} does not exist or is not a directory")
        seen = set()
        for ns in self.namespaces:
            if ns.type not in SUPPORTED_NAMESPACES:
                raise ConfigInvalid(f"namespaces: {ns.type!r} is not supported "
                                    f"(supported: {', '.join(sorted(SUPPORTED_NAMESPACES))})")
            if ns.type in seen:
                raise ConfigInvalid(f"namespaces: {ns.type} listed twice")
            seen.add(ns.type)
            problem = namespace_path_problem(ns.type, ns.path) if ns.path else None
            if problem:
                raise ConfigInvalid(f"namespaces: {ns.type} path {ns.path} {problem}")
        self.validate_id_mappings()
        for name in ("hostname", "domainname"):
            if len(getattr(self, name).encode()) > 64:  # HOST_NAME_MAX
                raise ConfigInvalid(f"{name}: {getattr(self, name)!r} is longer than 64 bytes")
        if (self.hostname or self.domainname) and not self.private_namespace("NEWUTS"):
            raise ConfigInvalid("hostname: setting a hostname needs a new UTS namespace")
        if self.namespace("NEWNS") is None:
            # A joined one (a path) is allowed, as runc: the rootfs is set up inside it.
            raise ConfigInvalid("namespaces: a mount namespace (NEWNS) is required")
        for m in self.mounts:
            if not os.path.isabs(m.destination):
                raise ConfigInvalid(f"mounts: destination {m.destination!r} must be absolute")
            if os.path.normpath(m.destination) == "/":
                raise ConfigInvalid("mounts: destination '/' would mount over the container's root (that is rootfs)")
            if m.device == "bind" and not os.path.exists(m.source):
                raise ConfigInvalid(f"mounts: bind source {m.source} does not exist")
        for i, dev in enumerate(self.devices):
            where = f"devices[{i}]"
            if dev.type not in ("c", "b", "p"):
                raise ConfigInvalid(f"{where}.type: {dev.type!r} must be c, b or p")
            if not os.path.isabs(dev.path) or os.path.normpath(dev.path) == "/":
                raise ConfigInvalid(f"{where}.path: {dev.path!r} must be an absolute path below /")
            for name in ("major", "minor", "uid", "gid", "file_mode"):
                if not _is_int(getattr(dev, name)) or getattr(dev, name) < 0:
                    raise ConfigInvalid(f"{where}.{name}: {getattr(dev, name)!r} must be a non-negative integer")
            if dev.file_mode & ~0o7777:
                raise ConfigInvalid(f"{where}.file_mode: {dev.file_mode:#o} has bits beyond the permissions (0o7777)")
        for name, hooks in self.hooks.items():
            if name not in HOOK_NAMES:
                raise ConfigInvalid(f"hooks.{name}: unknown hook point (one of {', '.join(HOOK_NAMES)})")
            for i, hook in enumerate(hooks):
                if not os.path.isabs(hook.path):
                    raise ConfigInvalid(f"hooks.{name}[{i}].path: {hook.path!r} must be an absolute path")
                if hook.timeout is not None and (not _is_int(hook.timeout) or hook.timeout <= 0):
                    raise ConfigInvalid(f"hooks.{name}[{i}].timeout: {hook.timeout!r} must be a positive "
                                        "number of seconds")
        for set_name in ("Bounding", "Effective", "Permitted", "Inheritable", "Ambient"):
            for cap in getattr(self.capabilities, set_name):
                if cap not in CAPABILITIES:
                    raise ConfigInvalid(f"capabilities.{set_name}: unknown capability {cap!r}")
        for key in self.sysctl:
            self._check_sysctl(key)
        if self.oom_score_adj is not None and not -1000 <= self.oom_score_adj <= 1000:
            raise ConfigInvalid(f"oom_score_adj: {self.oom_score_adj} is outside [-1000, 1000]")
        if self.seccomp is not None:
            self.seccomp.validate()
        self.cgroups.resources.validate()
        if self.networks or self.routes or self.ports:
            self.validate_network_only()

    def validate_network_only(self) -> None:
        """:meth:`validate` of ``networks``/``routes``/``ports`` alone. Raises ConfigInvalid."""
        from .network import validate_network  # ipaddress: only for configs that have networks

        validate_network(self)

    def _check_sysctl(self, key: str) -> None:
        """``key`` is set in a namespace of the container's own, never the host's (runc's
        validator: a sysctl of a namespace the container shares with the host changes the host)."""
        if key in IPC_SYSCTLS or key.startswith("fs.mqueue."):
            needed = "NEWIPC"
        elif key.startswith("net."):
            needed = "NEWNET"
        elif key == "kernel.domainname":
            needed = "NEWUTS"
        elif key == "kernel.hostname":
            raise ConfigInvalid("sysctl: kernel.hostname is not allowed: set hostname instead")
        else:
            raise ConfigInvalid(f"sysctl: {key} is not namespaced and cannot be set in a container")
        if not self.private_namespace(needed):
            kind = {"NEWIPC": "IPC", "NEWNET": "network", "NEWUTS": "UTS"}[needed]
            raise ConfigInvalid(f"sysctl: {key} needs a new {kind} namespace (it would change the host's)")

    def validate_id_mappings(self, names: tuple[str, str] = ("uid_mappings", "gid_mappings")) -> None:
        """runc's ``usernamespace`` validator, plus what the kernel would refuse later: mappings only
        with a user namespace, and a new one needs both, with the container's root mapped (init
        becomes it before anything else); at most 340 ranges, none overlapping on either side.

        Raises:
            ConfigInvalid: naming the field as ``names`` give it (the OCI loader passes
                ``linux.uidMappings``…) and the entry.
        """
        userns = self.namespace("NEWUSER")
        for name, maps in zip(names, (self.uid_mappings, self.gid_mappings)):
            if maps and userns is None:
                hint = '{"type": "user"} to linux.namespaces' if name.startswith("linux.") else "NEWUSER to namespaces"
                raise ConfigInvalid(f"{name}: given without a user namespace (add {hint})")
            if userns is not None and not userns.path and not maps:
                raise ConfigInvalid(f"{name}: a new user namespace needs mappings (none given)")
            if len(maps) > MAX_ID_MAPS:
                raise ConfigInvalid(f"{name}: {len(maps)} entries; the kernel takes at most {MAX_ID_MAPS}")
            spans = []
            for i, m in enumerate(maps):
                for key in ("container_id", "host_id", "size"):
                    value = getattr(m, key)
                    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < 1 << 32:
                        raise ConfigInvalid(f"{name}[{i}].{key}: {value!r} must be an integer in [0, 2^32)")
                if m.size == 0 or m.container_id + m.size > 1 << 32 or m.host_id + m.size > 1 << 32:
                    raise ConfigInvalid(f"{name}[{i}]: size {m.size} from {m.container_id}/{m.host_id} "
                                        "must be positive and stay below 2^32")
                spans.append((m.container_id, m.container_id + m.size, "container", i))
                spans.append((m.host_id, m.host_id + m.size, "host", i))
            for side in ("container", "host"):  # the kernel refuses overlapping ranges on either side
                ranges = sorted(span for span in spans if span[2] == side)
                for (_, end, _, i), (start, _, _, j) in zip(ranges, ranges[1:]):
                    if start < end:
                        raise ConfigInvalid(f"{name}[{i}] and [{j}]: their {side} ids overlap")
            if userns is not None and not userns.path and not any(m.container_id == 0 for m in maps):
                raise ConfigInvalid(f"{name}: the container's root (id 0) must be mapped")

    def private_namespace(self, ns_type: str) -> bool:
        """True when the container gets a new namespace of ``ns_type`` (listed, without a path)."""
        ns = self.namespace(ns_type)
        return ns is not None and not ns.path
