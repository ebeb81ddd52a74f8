"""Wiring a container to its bridge network (step 2 of :mod:`..network`'s lifecycle): once init is
ready, the bridge (made if missing), the veth pair with its container end inside, addresses and
routes, then the published ports' NAT rules."""

from __future__ import annotations

import contextlib
import errno
import ipaddress
import os
import socket
from typing import Iterator

from ...errors import ConfigInvalid, SystemError
from .. import store
from . import NETWORK_FILE, nat, netns


def attach(state_dir: str, record: dict, init_pid: int) -> None:
    """Wire the container whose init is ``init_pid`` as ``record`` says (after :func:`reserve`).

    Bridge (made with the gateway address if missing, up, route_localnet for 127.0.0.1 ports,
    masquerading of its subnet, IPv4 forwarding on), veth pair whose peer is created directly in
    the container's namespace, host end enslaved and up; inside: MAC, MTU, address, up, default
    route through the gateway, the extra routes; then the published ports.

    Raises:
        SystemError: a netlink or nft failure, with its message (the caller undoes the create).
    """
    from pyroute2 import NetlinkError

    try:
        _attach_host(record, init_pid)
        with netns.entered(f"/proc/{init_pid}/ns/net"):
            _configure_inside(record)
        if record["ports"]:
            from ...configs import PortMapping

            record["nat_handles"] = nat.publish(record["tag"], [PortMapping(**p) for p in record["ports"]],
                                                record["address"].split("/")[0])
            store.write_json_atomic(os.path.join(state_dir, NETWORK_FILE), record)  # delete needs no listing
    except (NetlinkError, OSError) as err:
        raise SystemError(f"network setup failed: {err}") from None


def _attach_host(record: dict, init_pid: int) -> None:
    from pyroute2 import NetlinkError

    bridge, host = record["bridge"], record["host_interface_name"]
    prefix = ipaddress.ip_network(record["subnet"]).prefixlen
    with netns.iproute() as ipr:
        found = ipr.link_lookup(ifname=bridge)
        made = False
        if not found:
            # Made under a temporary name, marked ours, then renamed: the rename is atomic, so a
            # bridge of this name always carries its maker's mark, and of two racing makers the
            # loser finds the winner's (and leaves, or uses it when the winner is this same root).
            tmp = "dctnew" + os.urandom(4).hex()
            ipr.link("add", ifname=tmp, kind="bridge")
            tmp_index = ipr.link_lookup(ifname=tmp)[0]
            ipr.link("set", index=tmp_index, ifalias=record["alias"])
            try:
                ipr.link("set", index=tmp_index, ifname=bridge)
                made = True
            except NetlinkError as err:
                ipr.link("del", index=tmp_index)
                if err.code != errno.EEXIST:
                    raise
            found = ipr.link_lookup(ifname=bridge)
        index = found[0]
        if (ipr.get_links(index)[0].get_attr("IFLA_IFALIAS") or "") != record["alias"]:
            raise SystemError(f"bridge {bridge} was just made by another state root; choose another bridge name")
        if made:
            _address_bridge(ipr, index, record, prefix)
        elif record["readdress"]:  # its subnet changed while no container used it
            ipr.flush_addr(index=index)
            nat.remove(f"bridge:{bridge}")
            _address_bridge(ipr, index, record, prefix)
        if ipr.link_lookup(ifname=host):  # a leftover of a killed create with the same id
            ipr.link("del", index=ipr.link_lookup(ifname=host)[0])
        ipr.link("add", ifname=host, kind="veth", peer={"ifname": record["name"], "net_ns_pid": init_pid})
        host_index = ipr.link_lookup(ifname=host)[0]
        extra = {"mtu": record["mtu"]} if record["mtu"] else {}
        ipr.link("set", index=host_index, master=index, state="up", **extra)


def _address_bridge(ipr, index: int, record: dict, prefix: int) -> None:  # noqa: ANN001 - IPRoute
    """The bridge's address (the gateway), up, and what published ports and outbound traffic need."""
    bridge = record["bridge"]
    ipr.addr("add", index=index, address=record["gateway"], prefixlen=prefix)
    ipr.link("set", index=index, state="up")
    _sysctl(f"net/ipv4/conf/{bridge}/route_localnet", "1")  # published 127.0.0.1 ports reach it
    _sysctl("net/ipv4/ip_forward", "1")  # what docker and podman do: containers reach past the host
    with contextlib.suppress(SystemError):  # no nft: the bridge works, the containers just stay local
        nat.masquerade(f"bridge:{bridge}", record["subnet"], bridge)


def _configure_inside(record: dict) -> None:
    address = ipaddress.ip_interface(record["address"])
    with netns.iproute() as ipr:
        index = ipr.link_lookup(ifname=record["name"])[0]
        extra = {}
        if record["mac_address"]:
            extra["address"] = record["mac_address"]
        if record["mtu"]:
            extra["mtu"] = record["mtu"]
        if extra:
            ipr.link("set", index=index, **extra)
        ipr.addr("add", index=index, address=str(address.ip), prefixlen=address.network.prefixlen)
        if record["ipv6_address"]:
            v6 = ipaddress.ip_interface(record["ipv6_address"])
            ipr.addr("add", index=index, address=str(v6.ip), prefixlen=v6.network.prefixlen, family=socket.AF_INET6)
        ipr.link("set", index=index, state="up")
        ipr.route("add", dst="0.0.0.0/0", gateway=record["gateway"], oif=index)
        if record["ipv6_gateway"]:
            with _naming("networks[0].ipv6_gateway", record["ipv6_gateway"]):
                ipr.route("add", dst="::/0", gateway=record["ipv6_gateway"], oif=index, family=socket.AF_INET6)
        for i, route in enumerate(record["routes"]):
            oif = ipr.link_lookup(ifname=route["interface_name"])[0] if route["interface_name"] else index
            spec = {"dst": route["destination"], "oif": oif}
            if route["gateway"]:
                spec["gateway"] = route["gateway"]
            if route["source"]:
                spec["prefsrc"] = route["source"]
            family = ipaddress.ip_network(route["destination"]).version
            with _naming(f"routes[{i}]", f"{route['destination']}" + (f" via {route['gateway']}"
                                                                      if route["gateway"] else "")):
                ipr.route("replace", family=socket.AF_INET6 if family == 6 else socket.AF_INET, **spec)


@contextlib.contextmanager
def _naming(field: str, what: str) -> Iterator[None]:
    """A netlink refusal inside the body becomes a ConfigInvalid naming the config's field."""
    from pyroute2 import NetlinkError

    try:
        yield
    except NetlinkError as err:
        reason = os.strerror(err.code) if err.code else str(err)
        raise ConfigInvalid(f"{field}: {what}: {reason} (from inside the container)") from None


def _sysctl(name: str, value: str) -> None:
    with contextlib.suppress(OSError), open(f"/proc/sys/{name}", "w") as f:
        f.write(value)
