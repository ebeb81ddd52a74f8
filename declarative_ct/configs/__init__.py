"""The container ``Config``: libcontainer's ``configs.Config`` as plain dataclasses.

Field names and JSON keys follow ``libcontainer/configs`` (``rootfs``, ``namespaces``, ``mask_paths``,
``capabilities.Bounding``…), so ``state.json`` reads like runc's. Stdlib only: the container init imports
this module. Its parts with their own seams (:mod:`.namespaces`, :mod:`.mount`, :mod:`.cgroup`: resources
and device rules) are re-exported here; :mod:`.network` checks the network fields.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field

from ..errors import ConfigInvalid
from .cgroup import (LIMIT_FIELDS, MAX_CPU_SHARES, MAX_INT64, THROTTLE_FIELDS, Cgroup, DeviceRule, Resources,
                     ThrottleDevice, default_device_rules, format_cpu_list, is_int, pair_memory_swap, parse_cpu_list)
from .mount import Mount, default_mounts
from .namespaces import (IPC_SYSCTLS, MAX_ID, MAX_ID_MAPS, NAMESPACE_PROC_NAMES, NAMESPACE_TYPES, SUPPORTED_NAMESPACES,
                         IDMap, Namespace, namespace_path_problem)
from .seccomp import Seccomp

__all__ = ["CAPABILITIES", "DEFAULT_CAPABILITIES", "DEFAULT_ENV", "DEFAULT_MASK_PATHS", "DEFAULT_READONLY_PATHS",
           "HOOK_NAMES", "HOST_ROOTFS", "IPC_SYSCTLS", "LIMIT_FIELDS", "MAX_CPU_SHARES", "MAX_ID", "MAX_ID_MAPS",
           "MAX_INT64", "NAMESPACE_PROC_NAMES", "NAMESPACE_TYPES", "OCI_VERSION", "SUPPORTED_NAMESPACES",
           "THROTTLE_FIELDS", "Capabilities", "Cgroup", "Config", "Device", "DeviceRule", "Hook", "IDMap", "Mount",
           "Namespace", "Network", "PortMapping", "Resources", "Rlimit", "Route", "ThrottleDevice",
           "default_device_rules", "default_mounts", "format_cpu_list", "namespace_path_problem", "pair_memory_swap",
           "parse_cpu_list"]

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
                if not is_int(getattr(dev, name)) or getattr(dev, name) < 0:
                    raise ConfigInvalid(f"{where}.{name}: {getattr(dev, name)!r} must be a non-negative integer")
            if dev.file_mode & ~0o7777:
                raise ConfigInvalid(f"{where}.file_mode: {dev.file_mode:#o} has bits beyond the permissions (0o7777)")
        for name, hooks in self.hooks.items():
            if name not in HOOK_NAMES:
                raise ConfigInvalid(f"hooks.{name}: unknown hook point (one of {', '.join(HOOK_NAMES)})")
            for i, hook in enumerate(hooks):
                if not os.path.isabs(hook.path):
                    raise ConfigInvalid(f"hooks.{name}[{i}].path: {hook.path!r} must be an absolute path")
                if hook.timeout is not None and (not is_int(hook.timeout) or hook.timeout <= 0):
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
