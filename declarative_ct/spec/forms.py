"""What a normalized spec (``ContainerSpec.normalized()``, a JSON-ready dict) means for the runtime.

Stdlib and ``configs`` only, no pydantic: the reconciler builds containers from the normalized
form alone, whether it comes from the models or from specs validated in another process (a
background load, the spec cache), and the models use the same functions for their own checks.
"""

from __future__ import annotations

from ..configs import Network, PortMapping, Route
from ..configs.logs import LogConfig


def joined_container(network: dict) -> str | None:
    """The name given by ``network.mode: container:<name>``, else None."""
    mode = network["mode"]
    return mode.removeprefix("container:") if mode.startswith("container:") else None


def dependencies(normalized: dict) -> list[str]:
    """Containers that must exist first: ``depends_on`` and a ``container:<name>`` network; sorted."""
    return list(dependency_conditions(normalized))


def dependency_conditions(normalized: dict) -> dict[str, str]:
    """Each container that must exist first → what it must reach before this one starts: ``started``
    (running), ``healthy`` (its probe passes) or ``completed`` (exited 0); sorted by name.

    ``depends_on`` is the mapping name → condition (a list, as specs normalized before conditions
    existed record it, means ``started`` for each); a ``container:<name>`` network adds that
    container as ``started`` unless ``depends_on`` gives it a condition.
    """
    given = normalized["depends_on"]
    conditions = dict(given) if isinstance(given, dict) else dict.fromkeys(given, "started")
    joined = joined_container(normalized["network"])
    if joined:
        conditions.setdefault(joined, "started")
    return dict(sorted(conditions.items()))


def network_of(network: dict) -> Network:
    """libcontainer's ``Network`` of a bridge network spec (``bridge``, ``subnet``, ``address``,
    ``gateway``, ``mtu``, ``mac``, ``ipv6_address``, ``ipv6_gateway``; unset ones None)."""
    return Network(bridge=network["bridge"], subnet=network["subnet"] or "", address=network["address"] or "",
                   gateway=network["gateway"] or "", mtu=network["mtu"] or 0,
                   mac_address=(network["mac"] or "").lower(), ipv6_address=network["ipv6_address"] or "",
                   ipv6_gateway=network["ipv6_gateway"] or "")


def routes_of(network: dict) -> list[Route]:
    """libcontainer ``Route`` entries of ``network["routes"]`` (destination, gateway, source, interface)."""
    return [Route(r["destination"], r["gateway"] or "", r["source"] or "", r["interface"] or "")
            for r in network["routes"]]


def ports_of(network: dict) -> list[PortMapping]:
    """``PortMapping`` entries from ``network["ports"]``, canonical ``ip:host:container/proto`` strings."""
    out = []
    for text in network["ports"]:
        rest, proto = text.split("/")
        ip, host, ct = rest.split(":")
        out.append(PortMapping(int(host), int(ct), proto, ip))
    return out


def log_config(logging: dict | None) -> LogConfig:
    """The runtime's ``LogConfig`` (rotation: ``max_size`` bytes, ``max_files``) of a normalized
    spec's ``logging``; the defaults for None or missing keys (a spec applied before the field existed).

    Raises:
        ConfigInvalid: a value out of range (a record not made by this code).
    """
    return LogConfig.from_dict(logging or {})


def profile_digest(path: str) -> str | None:
    """sha256 (hex) of the seccomp profile file at ``path``, as ``configs.seccomp.read_profile``
    parsed it, or None when it cannot be read or is not a valid profile (the conversion says why)."""
    from ..configs.seccomp import read_profile
    from ..errors import ConfigInvalid

    try:
        return read_profile(path)[1]
    except ConfigInvalid:
        return None
