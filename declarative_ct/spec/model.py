"""The desired-state document: one YAML document describes one container (pydantic models).

These models are the user-facing contract (``dct schema`` prints their JSON Schema). They are
strict: unknown keys are errors, a string is never coerced from a number or a boolean, sizes
and signals are read once into canonical values (bytes, signal names), so that two specs that
mean the same thing compare equal (:meth:`ContainerSpec.normalized`). Paths are kept as
written; :mod:`declarative_ct.spec.load` resolves them against the file's directory.
"""

from __future__ import annotations

# Size: one job, the schema; its sections (process, mounts, resources, network) validate together.
import os
import re
from typing import Annotated, Literal

from pydantic import AfterValidator, BeforeValidator, Field, WithJsonSchema, field_validator, model_validator

from ..configs import MAX_ID, format_cpu_list, parse_cpu_list
from ..configs.logs import DEFAULT_MAX_FILES, DEFAULT_MAX_SIZE, MAX_MAX_FILES, MAX_MAX_SIZE, MIN_MAX_SIZE
from . import forms
from .desired import DesiredSpec
from .model_base import MAX_ARG_STRLEN, MAX_ARGS, NAME_PATTERN, FieldError, Strict as _Strict, check_argv
from .model_base import Duration, field_name, field_path  # noqa: F401 - importers take them from here too
from .model_health import DependsOn, HealthSpec
from ..units import UNLIMITED, format_size, parse_size

NAMESPACES = ("pid", "mount", "uts", "ipc", "net", "cgroup")
DEFAULT_NAMESPACES = ["pid", "mount", "uts", "ipc", "net"]
RESTART_PATTERN = r"^(never|always|on-failure(:[1-9][0-9]*)?)$"
SECCOMP_KEYWORDS = ("default", "unconfined")
_SPEC_RESOURCE_NAMES = {"pids_limit": "pids"}  # configs.Resources field → the spec's, where they differ
_SPEC_NETWORK_NAMES = {"mac_address": "mac", "interface_name": "interface"}  # configs.Network/Route → the spec's


def _size(value: object) -> int | None:
    if value is None:
        return None
    return parse_size(value, None)  # the loader names the field


def _signal_name(value: object) -> str:
    import signal

    from ..errors import ConfigInvalid
    from ..configs.signals import parse_signal

    if not isinstance(value, (str, int)) or isinstance(value, bool):
        raise ValueError("must be a signal name such as SIGHUP")
    try:
        return signal.Signals(parse_signal(value)).name
    except (ConfigInvalid, ValueError):
        raise ValueError(f"{value!r} is not a signal (e.g. SIGHUP, SIGUSR1)") from None


# WithJsonSchema, not json_schema_extra: an extra "type" would sit beside pydantic's anyOf [integer, null],
# and JSON Schema requires both, so editors would reject "64Mi".
Size = Annotated[int | None, BeforeValidator(_size), WithJsonSchema({
    "type": ["integer", "string", "null"], "description": "bytes, or 64Mi/1Gi/64m/1g, or \"unlimited\""})]
SignalName = Annotated[str, BeforeValidator(_signal_name)]


def _log_size(value: object) -> int:
    """A log file's size limit: a size as ``memory`` takes it (every suffix binary: ``10m`` is ``10Mi``),
    but a limit it must be (no ``unlimited``) and within ``configs.logs``' range."""
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        from .messages import describe_value  # the loader's words for a value (an error path only)

        raise ValueError(f"expected a size (bytes, 10Mi, 1Gi or 10m), got {describe_value(value)}")
    if value == UNLIMITED or isinstance(value, str) and value.strip().lower() in ("unlimited", "max", "-1"):
        raise ValueError("must be a size: a log file is rotated at a limit (e.g. 10Mi)")
    try:
        size = value if isinstance(value, int) else parse_size(value, None)
    except ValueError:
        raise ValueError(f"{value!r} is not a size (give bytes, 10Mi, 1Gi or 10m)") from None
    if size < MIN_MAX_SIZE:
        raise ValueError(f"{format_size(size)} is below {format_size(MIN_MAX_SIZE)} (the least a file is rotated at)")
    if size > MAX_MAX_SIZE:
        raise ValueError(f"{format_size(size)} is too large (at most {format_size(MAX_MAX_SIZE)})")
    return size


LogSize = Annotated[int, BeforeValidator(_log_size), WithJsonSchema({
    "type": ["integer", "string"],
    "description": f"bytes, or 10Mi/1Gi/10m/1g; at least {format_size(MIN_MAX_SIZE)}"})]


def _container_path(value: str) -> str:
    if not value.startswith("/"):
        raise ValueError(f"{value!r} must be an absolute path inside the container")
    return value


ContainerPath = Annotated[str, AfterValidator(_container_path)]


class ProcessSpec(_Strict):
    """What runs: ``args`` (argv), ``env`` (string values), ``cwd``, ``user`` as ``"uid[:gid]"``."""

    args: list[str] = Field(min_length=1)
    env: dict[str, str] = Field(default_factory=dict)
    cwd: ContainerPath = "/"
    user: str = Field("0:0", pattern=r"^[0-9]+(:[0-9]+)?$")

    @field_validator("env")
    @classmethod
    def _env_names(cls, value: dict[str, str]) -> dict[str, str]:
        for key, text in value.items():
            if not key or "=" in key or "\0" in key:
                raise ValueError(f"{key!r} is not a variable name")
            if "\0" in text:
                raise FieldError((key,), "the value holds a NUL character")
            if len(key.encode()) + len(text.encode()) + 1 >= MAX_ARG_STRLEN:
                raise FieldError((key,), f"{MAX_ARG_STRLEN} bytes or longer (the kernel's MAX_ARG_STRLEN)")
        if sum(len(k.encode()) + len(v.encode()) + 2 for k, v in value.items()) > MAX_ARGS:
            raise ValueError(f"the environment takes more than {MAX_ARGS >> 10} KiB (execve would refuse it)")
        return value

    @field_validator("user")
    @classmethod
    def _ids(cls, value: str) -> str:
        if any(int(part) >= MAX_ID for part in value.split(":")):
            raise ValueError(f"{value!r}: ids must be below {MAX_ID}")
        return value

    @field_validator("args")
    @classmethod
    def _no_nul(cls, value: list[str]) -> list[str]:
        return check_argv(value)

    def uid_gid(self) -> tuple[int, int]:
        """``(uid, gid)``; the gid defaults to the uid."""
        uid, _, gid = self.user.partition(":")
        return int(uid), int(gid or uid)


class MountSpec(_Strict):
    """A bind mount of a host path (relative to the spec file) at ``destination`` in the container."""

    source: str
    destination: ContainerPath
    readonly: bool = False

    @field_validator("destination")
    @classmethod
    def _not_reserved(cls, value: str) -> str:
        if os.path.normpath(value) in ("/", "/proc"):
            raise ValueError(f"{value!r} cannot be a mount destination (the root and /proc are the container's own)")
        return value


class ResourcesSpec(_Strict):
    """Limits, in libcontainer's units once read: bytes, CPU shares, µs; "unlimited" removes one.

    ``cpus`` is the docker/compose convenience: ``cpu_quota = cpus × cpu_period`` (period 100000 µs
    unless given); it cannot be combined with ``cpu_quota``.
    """

    memory: Size = None
    memory_reservation: Size = None
    memory_swap: Size = None
    cpus: float | None = Field(None, gt=0, allow_inf_nan=False)
    cpu_shares: int | None = Field(None, ge=2, le=262144)
    cpu_quota: int | None = Field(None, ge=-1)
    cpu_period: int | None = Field(None, ge=1000, le=1000000)
    cpuset_cpus: str | None = None
    cpuset_mems: str | None = None
    pids: int | Literal["unlimited"] | None = None
    blkio_weight: int | None = Field(None, ge=10, le=1000)

    @field_validator("cpus", mode="before")
    @classmethod
    def _cpus_number(cls, value: object) -> object:
        if isinstance(value, int) and not isinstance(value, bool):
            return float(value)
        return value

    @field_validator("pids")
    @classmethod
    def _pids(cls, value: object) -> object:
        if isinstance(value, int) and value < 1 and value != UNLIMITED:
            raise ValueError("must be at least 1, or \"unlimited\"")
        return value

    @model_validator(mode="after")
    def _relations(self) -> "ResourcesSpec":
        if self.cpus is not None and self.cpu_quota is not None:
            raise ValueError("give either cpus or cpu_quota, not both")
        if self.cpus is not None and self.cpus * (self.cpu_period or 100000) < 1000:
            raise FieldError(("cpus",), f"{self.cpus} of a {self.cpu_period or 100000} µs period is below the "
                             "kernel's minimum quota of 1000 µs")
        for name in ("cpuset_cpus", "cpuset_mems"):
            if getattr(self, name) is not None:
                try:
                    parse_cpu_list(getattr(self, name))
                except ValueError as err:
                    raise FieldError((name,), str(err)) from None
        from ..configs import Resources
        from ..errors import ConfigInvalid
        try:  # the runtime's own rules (below 1Mi, above int64, pids above PID_MAX_LIMIT…), in spec names
            Resources(**self.to_libcontainer()).validate()
        except ConfigInvalid as err:
            problem = err.problems[0]
            if problem.field is None:
                raise ValueError(str(err)) from None
            name = problem.field.removeprefix("resources.")
            raise FieldError((_SPEC_RESOURCE_NAMES.get(name, name),), problem.detail()) from None
        return self

    def to_libcontainer(self) -> dict[str, object]:
        """The ``configs.Resources`` fields this spec sets (unset ones left out): bytes, shares, µs."""
        out: dict[str, object] = {}
        for name in ("memory", "memory_reservation", "memory_swap", "cpu_shares", "cpu_period", "blkio_weight"):
            if getattr(self, name) is not None:
                out[name] = getattr(self, name)
        for name in ("cpuset_cpus", "cpuset_mems"):  # one spelling: "0,1" and "0-1" are the same set
            if getattr(self, name) is not None:
                out[name] = format_cpu_list(parse_cpu_list(getattr(self, name)))
        if self.cpus is not None:
            period = self.cpu_period or 100000
            out["cpu_quota"], out["cpu_period"] = max(1000, round(self.cpus * period)), period
        elif self.cpu_quota is not None:
            out["cpu_quota"] = self.cpu_quota
        if self.pids is not None:
            out["pids_limit"] = UNLIMITED if self.pids in ("unlimited", UNLIMITED) else self.pids
        return out


_PORT_RE = re.compile(r"^(?:(?P<ip>\d{1,3}(?:\.\d{1,3}){3}):)?(?:(?P<host>\d{1,5}):)?(?P<ct>\d{1,5})"
                      r"(?:/(?P<proto>tcp|udp))?\Z")


def _port(value: object) -> str:
    """docker's ``[host_ip:][host_port:]container_port[/tcp|udp]`` → canonical ``ip:host:ct/proto``."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        raise ValueError("must be a string such as \"127.0.0.1:8080:80/tcp\"")
    m = _PORT_RE.match(value)
    if not m:
        raise ValueError(f"{value!r} is not [host_ip:][host_port:]container_port[/tcp|udp]")
    ct = int(m["ct"])
    host = int(m["host"]) if m["host"] else ct
    for port in (ct, host):
        if not 1 <= port <= 65535:
            raise ValueError(f"{value!r}: port {port} is outside 1..65535")
    ip = m["ip"] or "0.0.0.0"
    from ..configs.network import address

    try:
        address(ip, "host_ip")
    except Exception as err:  # noqa: BLE001 - ConfigInvalid, re-worded for the spec
        raise ValueError(f"{value!r}: {ip} is not an IPv4 address") from err
    return f"{ip}:{host}:{ct}/{m['proto'] or 'tcp'}"


PortText = Annotated[str, BeforeValidator(_port), WithJsonSchema({
    "type": "string", "description": "[host_ip:][host_port:]container_port[/tcp|udp], e.g. 127.0.0.1:8080:80/tcp"})]


class RouteSpec(_Strict):
    """An extra route inside the container (libcontainer ``Route``)."""

    destination: str
    gateway: str | None = None
    source: str | None = None
    interface: str | None = None


class NetworkSpec(_Strict):
    """``mode``: ``none`` (own namespace, lo up; the default), ``host``, ``bridge`` or ``container:<name>``.

    ``bridge``: a veth on ``bridge`` (created if missing with ``subnet``, default 10.88.0.0/16;
    an existing bridge keeps its own), ``address`` static (``10.88.0.5``) or leased from the
    subnet, ``gateway`` (default: the subnet's first host), ``mtu``, ``mac``,
    ``ipv6_address``/``ipv6_gateway`` (CIDR / address), ``ports`` published, extra ``routes``.
    ``container:<name>`` joins the network namespace of that container (named in the specs).
    """

    mode: str = "none"
    bridge: str = "dct0"
    subnet: str | None = None
    address: str | None = None
    gateway: str | None = None
    mtu: int | None = Field(None, ge=68, le=65535)
    mac: str | None = None
    ipv6_address: str | None = None
    ipv6_gateway: str | None = None
    ports: list[PortText] = Field(default_factory=list)
    routes: list[RouteSpec] = Field(default_factory=list)

    @field_validator("mode")
    @classmethod
    def _mode(cls, value: str) -> str:
        if value in ("none", "host", "bridge"):
            return value
        if value.startswith("container:") and re.match(NAME_PATTERN, value.removeprefix("container:")):
            return value
        raise ValueError(f"{value!r} must be none, host, bridge or container:<name>")

    @model_validator(mode="after")
    def _bridge_fields(self) -> "NetworkSpec":
        bridge_only = [f for f in ("address", "gateway", "mtu", "mac", "ipv6_address", "ipv6_gateway", "ports",
                                   "routes") if getattr(self, f) not in (None, [])]
        if self.mode != "bridge":
            if len(bridge_only) == 1:
                raise FieldError((bridge_only[0],), f"only for mode bridge (mode is {self.mode})")
            if bridge_only:
                raise ValueError(f"{', '.join(bridge_only)}: only for mode bridge (mode is {self.mode})")
            return self
        from ..configs import Config
        from ..errors import ConfigInvalid

        try:
            Config(rootfs="host", networks=[self.to_network()], routes=self.to_routes(),
                   ports=self.to_ports()).validate_network_only()
        except ConfigInvalid as err:  # the runtime's names → the spec's
            problem = err.problems[0]
            if problem.field is None:
                raise ValueError(str(err)) from None
            path = field_path(problem.field)
            if path[:2] == ("networks", 0):
                path = path[2:]
            raise FieldError(tuple(_SPEC_NETWORK_NAMES.get(p, p) for p in path), problem.detail()) from None
        return self

    def container(self) -> str | None:
        """The name given by ``container:<name>``, else None."""
        return forms.joined_container({"mode": self.mode})

    def to_network(self):  # noqa: ANN201 - configs.Network
        """The libcontainer ``Network`` of a bridge spec."""
        return forms.network_of(self.model_dump(mode="json"))

    def to_routes(self) -> list:
        """libcontainer ``Route`` entries."""
        return forms.routes_of(self.model_dump(mode="json"))

    def to_ports(self) -> list:
        """``PortMapping`` entries from the canonical ``ip:host:ct/proto`` strings."""
        return forms.ports_of(self.model_dump(mode="json"))


class LoggingSpec(_Strict):
    """The container's log (the runtime's ``LogConfig``): each run's log file is rotated before it
    would pass ``max_size`` (a size: ``10Mi``, ``10m``; at least 4Ki), and ``max_files`` files are kept
    per run (the current one included, 1 to 100). Logs belong to the container's name: a restart or
    recreate keeps the previous run's; ``state: absent`` and prune delete them. A change recreates the
    container (the monitor's copier takes the limits when the container starts)."""

    max_size: LogSize = DEFAULT_MAX_SIZE
    max_files: int = Field(DEFAULT_MAX_FILES, ge=1, le=MAX_MAX_FILES)


class ContainerSpec(_Strict):
    """One container, as a user writes it; ``name`` becomes the container id."""

    name: str = Field(pattern=NAME_PATTERN)
    rootfs: str = "host"
    process: ProcessSpec
    hostname: str | None = Field(None, max_length=64)
    namespaces: list[Literal["pid", "mount", "uts", "ipc", "net", "cgroup"]] = Field(
        default_factory=lambda: list(DEFAULT_NAMESPACES))
    mounts: list[MountSpec] = Field(default_factory=list)
    resources: ResourcesSpec = Field(default_factory=ResourcesSpec)
    network: NetworkSpec = Field(default_factory=NetworkSpec)
    logging: LoggingSpec = Field(default_factory=LoggingSpec)
    restart: str = Field("never", pattern=RESTART_PATTERN)
    reload_signal: SignalName = "SIGHUP"
    reload_on: list[str] = Field(default_factory=list)
    depends_on: DependsOn = Field(default_factory=dict)
    labels: dict[str, str] = Field(default_factory=dict)
    state: Literal["running", "paused", "stopped", "absent"] = "running"
    stop_signal: SignalName = "SIGTERM"
    stop_timeout: float = Field(10.0, ge=0, allow_inf_nan=False)
    seccomp: str = Field("default", min_length=1, description=(
        "The syscall filter: default (docker's default profile, resolved for the container's capabilities), "
        "unconfined (none), or the path of an OCI seccomp profile (JSON, the shape of linux.seccomp)"))
    health: HealthSpec | None = Field(None, description=(
        "A health check: one probe (exec, http or tcp) the supervisor runs every interval; a change needs "
        "no new container"))

    @field_validator("namespaces")
    @classmethod
    def _namespaces(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError("lists a namespace twice")
        if "mount" not in value:
            raise ValueError("must include mount (every container gets its own mount namespace)")
        return sorted(value, key=NAMESPACES.index)  # order does not matter: one canonical order

    @field_validator("labels")
    @classmethod
    def _labels(cls, value: dict[str, str]) -> dict[str, str]:
        for key in value:
            if not re.match(r"^[A-Za-z0-9][A-Za-z0-9_.\-/]*$", key) or key.startswith("dct."):
                raise ValueError(f"{key!r} is not a label name (letters, digits, . _ - /; dct.* is reserved)")
        return value

    @model_validator(mode="after")
    def _relations(self) -> "ContainerSpec":
        if self.name in self.depends_on:
            raise FieldError(("depends_on",), "a container cannot depend on itself")
        if self.hostname and "uts" not in self.namespaces:
            raise FieldError(("hostname",), "needs the uts namespace")
        if self.network.mode in ("bridge",) or self.network.container():
            if "net" not in self.namespaces:
                raise FieldError(("network",), f"mode {self.network.mode} needs the net namespace in namespaces")
        if self.network.container() == self.name:
            raise FieldError(("network",), "a container cannot join its own network namespace")
        return self

    def dependencies(self) -> list[str]:
        """Containers that must exist first: ``depends_on`` and a ``container:<name>`` network."""
        return forms.dependencies({"depends_on": self.depends_on, "network": {"mode": self.network.mode}})

    def dependency_conditions(self) -> dict[str, str]:
        """Each dependency → its condition (``started | healthy | completed``), as
        :meth:`.desired.DesiredSpec.dependency_conditions`."""
        return forms.dependency_conditions({"depends_on": self.depends_on, "network": {"mode": self.network.mode}})

    def desired(self) -> "DesiredSpec":
        """This spec as the reconciler reads it (:class:`~.desired.DesiredSpec`: frozen, JSON inside)."""
        return DesiredSpec.from_json(self.model_dump(mode="json"), self.normalized())

    def normalized(self) -> dict[str, object]:
        """Every field with its default filled in and in canonical form (JSON-ready): equal specs compare equal."""
        data = self.model_dump(mode="json")
        data["hostname"] = self.hostname or self.name
        data["process"]["user"] = "%d:%d" % self.process.uid_gid()  # "1000" is "1000:1000"
        data["resources"] = self.resources.to_libcontainer()
        data["depends_on"] = dict(sorted(self.depends_on.items()))  # name → condition
        data["health"] = self.health.normalized() if self.health is not None else None
        data["reload_on"] = sorted(set(self.reload_on))
        if self.seccomp not in SECCOMP_KEYWORDS:
            # The file's content, not only its name: an edited profile recreates the container.
            data["seccomp"] = {"path": self.seccomp, "sha256": forms.profile_digest(self.seccomp)}
        net = data["network"]
        if self.network.mode != "bridge":  # bridge settings mean nothing in the other modes
            data["network"] = {"mode": net["mode"]}
        else:
            net["ports"] = sorted(set(net["ports"]))
            net["mac"] = net["mac"].lower() if net["mac"] else None
        return data
