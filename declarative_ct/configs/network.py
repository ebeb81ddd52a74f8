"""Static checks of a config's ``networks``, ``routes`` and ``ports`` (no host state is read).

What depends on the host (a leased address, a published port, an overlapping route) is checked by
``declarative_ct.runtime.network`` at create time.
"""

from __future__ import annotations

import ipaddress
import re

from ..errors import ConfigInvalid

IFNAMSIZ = 16  # the kernel's limit, NUL included: names are at most 15 bytes
_IFNAME_RE = re.compile(r"^[A-Za-z0-9_.\-]+\Z")
_MAC_RE = re.compile(r"^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}\Z")


def check_ifname(name: str, field: str) -> None:
    """An interface or bridge name the kernel takes: 1..15 bytes, no '/', ':' or whitespace.

    Raises:
        ConfigInvalid: naming ``field``.
    """
    if not name or len(name.encode()) >= IFNAMSIZ:
        raise ConfigInvalid.at(field, f"{name!r} must be 1 to {IFNAMSIZ - 1} characters (the kernel's IFNAMSIZ)")
    if not _IFNAME_RE.match(name) or name in (".", ".."):
        raise ConfigInvalid.at(field, f"{name!r} may hold only letters, digits, '.', '_' and '-'")


def interface(text: str, field: str, version: int = 4) -> ipaddress.IPv4Interface | ipaddress.IPv6Interface:
    """``10.88.0.5/16`` as an interface of IP ``version``. Raises ConfigInvalid naming ``field``."""
    try:
        value = ipaddress.ip_interface(text)
    except ValueError as err:
        raise ConfigInvalid.at(field, f"{text!r} is not an address with a prefix length ({err})") from None
    if value.version != version:
        raise ConfigInvalid.at(field, f"{text!r} is not an IPv{version} address")
    return value


def network(text: str, field: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    """A subnet in CIDR (``10.88.0.0/16``; host bits must be zero). Raises ConfigInvalid naming ``field``."""
    try:
        return ipaddress.ip_network(text)
    except ValueError as err:
        raise ConfigInvalid.at(field, f"{text!r} is not a valid CIDR subnet ({err})") from None


def address(text: str, field: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    """A plain address. Raises ConfigInvalid naming ``field``."""
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        raise ConfigInvalid.at(field, f"{text!r} is not an IP address") from None


DEFAULT_SUBNET = "10.88.0.0/16"  # a new bridge's subnet when none is given (podman's default network)


def host_address(text: str, subnet: ipaddress.IPv4Network, field: str) -> ipaddress.IPv4Address:
    """``text`` (``10.88.0.5`` or ``10.88.0.5/16``) as a host address of ``subnet``.

    Raises:
        ConfigInvalid: naming ``field``: not an address, outside the subnet (or another prefix
            length), or the subnet's network or broadcast address.
    """
    if "/" in text:
        iface = interface(text, field)
        ip, inside = iface.ip, iface.network == subnet
    else:
        ip = address(text, field)
        inside = ip in subnet
    if not inside or ip in (subnet.network_address, subnet.broadcast_address):
        raise ConfigInvalid.at(field, f"{text} is not a host address of the subnet {subnet}")
    return ip


def validate_network(config) -> None:  # noqa: ANN001 - configs.Config (import cycle)
    """Check ``config.networks`` / ``routes`` / ``ports`` on their own.

    An empty ``subnet`` means the bridge's own (or :data:`DEFAULT_SUBNET` for a new bridge): the
    address is then checked against it at create time.

    Raises:
        ConfigInvalid: naming the field (``networks[0].address``…) and the reason: an invalid
            CIDR, an address or gateway outside the subnet (or the subnet's network/broadcast
            address), an address that is the gateway's, a name longer than 15 bytes, a bad MAC or
            MTU, an IPv6 gateway without an IPv6 address, ports without a network, a port out of
            1..65535, the same host port twice, or networks without a new network namespace.
    """
    if (config.networks or config.routes) and not config.private_namespace("NEWNET"):
        raise ConfigInvalid.at("networks", "a veth interface needs a new network namespace (NEWNET without a path)")
    if len(config.networks) > 1:
        raise ConfigInvalid.at("networks", "one interface per container is supported")
    names = set()
    for i, net in enumerate(config.networks):
        where = f"networks[{i}]"
        if net.type != "veth":
            raise ConfigInvalid.at(f"{where}.type", f"{net.type!r} is not supported (veth)")
        check_ifname(net.bridge, f"{where}.bridge")
        check_ifname(net.name, f"{where}.name")
        if net.host_interface_name:
            check_ifname(net.host_interface_name, f"{where}.host_interface_name")
        names.add(net.name)
        subnet = network(net.subnet, f"{where}.subnet") if net.subnet else None
        if subnet is not None and (subnet.version != 4 or subnet.prefixlen > 30):
            raise ConfigInvalid.at(f"{where}.subnet",
                                   f"{net.subnet} must be an IPv4 subnet of at least 4 addresses (/30)")
        addr = gw = None
        if net.address:
            if subnet is not None:
                addr = host_address(net.address, subnet, f"{where}.address")
            elif "/" in net.address:
                addr = interface(net.address, f"{where}.address").ip
            else:
                addr = address(net.address, f"{where}.address")
            if addr.version != 4:
                raise ConfigInvalid.at(f"{where}.address", f"{net.address} is not an IPv4 address")
        if net.gateway:
            gw = host_address(net.gateway, subnet, f"{where}.gateway") if subnet else \
                address(net.gateway, f"{where}.gateway")
        elif subnet is not None:
            gw = next(subnet.hosts())  # the bridge's address by default
        if addr is not None and addr == gw:
            raise ConfigInvalid.at(f"{where}.address", f"{net.address} is the gateway's (the bridge's own address)")
        if net.ipv6_address:
            interface(net.ipv6_address, f"{where}.ipv6_address", version=6)
        if net.ipv6_gateway:
            if address(net.ipv6_gateway, f"{where}.ipv6_gateway").version != 6:
                raise ConfigInvalid.at(f"{where}.ipv6_gateway", f"{net.ipv6_gateway!r} is not an IPv6 address")
            if not net.ipv6_address:
                raise ConfigInvalid.at(f"{where}.ipv6_gateway", "needs an ipv6_address (the route goes through it)")
        if net.mac_address and (not _MAC_RE.match(net.mac_address) or int(net.mac_address[:2], 16) & 1):
            raise ConfigInvalid.at(f"{where}.mac_address",
                                   f"{net.mac_address!r} is not a unicast MAC (aa:bb:cc:dd:ee:ff)")
        if net.mtu and not 68 <= net.mtu <= 65535:
            raise ConfigInvalid.at(f"{where}.mtu", f"{net.mtu} is outside 68..65535")
    for i, route in enumerate(config.routes):
        where = f"routes[{i}]"
        network(route.destination, f"{where}.destination")
        for name in ("gateway", "source"):
            if getattr(route, name):
                address(getattr(route, name), f"{where}.{name}")
        if route.interface_name and route.interface_name not in names | {"lo"}:
            raise ConfigInvalid.at(f"{where}.interface_name", f"{route.interface_name!r} is not an interface "
                                   "of the container")
    seen = set()
    for i, port in enumerate(config.ports):
        where = f"ports[{i}]"
        if not config.networks:
            raise ConfigInvalid.at(where, "publishing a port needs a bridge network")
        if port.protocol not in ("tcp", "udp"):
            raise ConfigInvalid.at(f"{where}.protocol", f"{port.protocol!r} must be tcp or udp")
        for name in ("host_port", "container_port"):
            value = getattr(port, name)
            if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 65535:
                raise ConfigInvalid.at(f"{where}.{name}", f"{value!r} is outside 1..65535")
        if address(port.host_ip, f"{where}.host_ip").version != 4:
            raise ConfigInvalid.at(f"{where}.host_ip",
                                   f"{port.host_ip} must be IPv4 (IPv6 ports are not published yet)")
        key = (port.host_port, port.protocol)
        if key in seen:
            raise ConfigInvalid.at(where, f"host port {port.host_port}/{port.protocol} is published twice")
        seen.add(key)
