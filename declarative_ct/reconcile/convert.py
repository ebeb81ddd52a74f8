"""A spec as the runtime's ``Config`` and ``Process``, with the labels that make the container ours.

Labels (libcontainer ``labels``, ``key=value``; saved in state.json):

- ``dct.manager=declarative-ct``: made by the reconciler (prune and recreate touch only these);
- ``dct.source=<absolute spec file>``: which file declared it (prune is scoped to the given paths);
- ``dct.hash=<sha256>``: of the fields that can only change by recreating the container;
- ``dct.spec=<json>``: the normalized spec as applied (field-level diffs, the TUI's spec view).
"""

from __future__ import annotations

import hashlib
import json

from ..configs import Config, Mount, Namespace, Resources, default_mounts
from ..errors import ConfigInvalid
from ..configs.mountflags import MS_BIND, MS_RDONLY, MS_REC
from ..runtime.process import Process
from ..spec import forms
from . import last_applied
from .last_applied import LABEL_SPEC  # noqa: F401 - importers take the label's name from here too

MANAGER = "declarative-ct"
LABEL_MANAGER, LABEL_SOURCE, LABEL_HASH = "dct.manager", "dct.source", "dct.hash"


def made_by_apply(config: Config) -> bool:
    """Whether ``config`` (a container's) carries the reconciler's ``dct.manager`` label: ``dct
    apply``/``watch`` made it, so its name's logs and restart record outlive it (a delete by hand is
    followed by a recreate); any other container's logs go with it (``docker rm``)."""
    return config.label(LABEL_MANAGER) == MANAGER

# Fields a running container can take without being recreated: the rest needs a new container
# (``logging`` too: the monitor's copier takes its rotation limits when the container starts);
# ``health``: the supervisor probes with the spec's probe of the moment.
MUTABLE_FIELDS = frozenset({"resources", "state", "restart", "reload_signal", "reload_on", "depends_on",
                            "stop_signal", "stop_timeout", "health"})
_NAMESPACE_TYPES = {"pid": "NEWPID", "mount": "NEWNS", "uts": "NEWUTS", "ipc": "NEWIPC", "net": "NEWNET",
                    "cgroup": "NEWCGROUP"}


def immutable_part(normalized: dict[str, object]) -> dict[str, object]:
    """The fields of a normalized spec that only a recreate can change."""
    return {k: v for k, v in normalized.items() if k not in MUTABLE_FIELDS}


def spec_hash(normalized: dict[str, object]) -> str:
    """sha256 of :func:`immutable_part` in canonical JSON (sorted keys)."""
    text = json.dumps(immutable_part(normalized), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def to_runtime(spec, source: str, runtime=None) -> tuple[Config, Process]:  # noqa: ANN001 - Runtime
    """``(Config, Process)`` for a spec with absolute paths: a
    :class:`~declarative_ct.spec.desired.DesiredSpec` (what apply passes) or anything else whose
    ``normalized()`` gives the normalized form; only that form is read.

    Namespaces map to libcontainer's (``mount`` → NEWNS…; ``network.mode: host`` drops NEWNET,
    ``container:<name>`` joins that container's ``/proc/<init pid>/ns/net``, looked up in
    ``runtime``); ``bridge`` gives one ``Network`` with its routes and ports; mounts are recursive
    binds (``readonly`` adds MS_RDONLY) after runc's default mounts; resources are libcontainer's
    fields (bytes, shares, µs); env gets the default PATH unless set; ``seccomp`` is
    :func:`seccomp_of`.

    Raises:
        ConfigInvalid: ``container:<name>`` names a container that is missing or not running
            (or no ``runtime`` was given to look it up); a seccomp profile file is bad (see :func:`seccomp_of`).
    """
    normalized = spec.normalized()
    network = normalized["network"]
    joined = forms.joined_container(network)
    netns_path = _netns_of(runtime, joined) if joined else ""
    namespaces = [Namespace(_NAMESPACE_TYPES[n], netns_path if n == "net" else "") for n in normalized["namespaces"]
                  if not (n == "net" and network["mode"] == "host")]
    mounts = default_mounts() + [
        Mount(m["source"], m["destination"], "bind", MS_BIND | MS_REC | (MS_RDONLY if m["readonly"] else 0))
        for m in normalized["mounts"]]
    labels = [f"{k}={v}" for k, v in sorted(normalized["labels"].items())] + [
        f"{LABEL_MANAGER}={MANAGER}", f"{LABEL_SOURCE}={source}", f"{LABEL_HASH}={spec_hash(normalized)}",
        last_applied.label(normalized)]
    config = Config(rootfs=normalized["rootfs"],
                    hostname=normalized["hostname"] if "uts" in normalized["namespaces"] else "",
                    mounts=mounts, namespaces=namespaces, labels=labels)
    config.seccomp = seccomp_of(normalized.get("seccomp", "default"), config.capabilities.Bounding)
    config.cgroups.resources = Resources(**normalized["resources"])
    if network["mode"] == "bridge":
        config.networks = [forms.network_of(network)]
        config.routes, config.ports = forms.routes_of(network), forms.ports_of(network)
    return config, process_of(normalized)


def seccomp_of(seccomp: object, bounding: list[str]):  # noqa: ANN201 - configs.Seccomp | None
    """The filter of a normalized ``seccomp``: ``default`` (the default profile resolved for the
    ``bounding`` capabilities), ``unconfined`` (None) or ``{"path", "sha256"}`` (the file as it is
    now, checked against the digest of the bytes it was parsed from).

    Raises:
        ConfigInvalid: the profile file is missing, unreadable, malformed, or changed since the spec
            was read (its sha256 differs).
    """
    from ..configs.seccomp import read_profile

    if seccomp == "unconfined":
        return None
    if seccomp == "default":
        from ..runtime.seccomp_profile import default_profile

        return default_profile(bounding)
    profile, digest = read_profile(seccomp["path"])
    if digest != seccomp["sha256"]:
        raise ConfigInvalid(f"seccomp: {seccomp['path']} changed while it was read; plan again")
    return profile


def process_of(normalized: dict) -> Process:
    """The init ``Process`` of a normalized spec (``process``: args, env, cwd, user ``"uid:gid"``);
    env gets the default PATH unless it sets one (:func:`.last_applied.process`)."""
    return last_applied.process(normalized)


def _netns_of(runtime, name: str) -> str:  # noqa: ANN001 - Runtime
    """``/proc/<pid>/ns/net`` of container ``name``'s init. Raises ConfigInvalid when it is missing or stopped."""
    from ..errors import ContainerNotExists
    from ..runtime.state import Status

    where = f"network.mode: container:{name}"
    if runtime is None:
        raise ConfigInvalid(f"{where}: no runtime to look the container up in")
    try:
        container = runtime.load(name)
    except ContainerNotExists:
        raise ConfigInvalid(f"{where}: no such container") from None
    if container.status() in (Status.STOPPED,):
        raise ConfigInvalid(f"{where}: the container is stopped (its network namespace is gone)")
    return f"/proc/{container.state().init_process_pid}/ns/net"
