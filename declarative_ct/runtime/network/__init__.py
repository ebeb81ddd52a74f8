"""Container networking, parent side: bridge, veth, leases, routes, published ports, interface stats.

Network modes, as a config expresses them: ``none`` = a new network namespace without
``networks`` (init brings ``lo`` up); ``host`` = no NEWNET; ``container:<id>`` = NEWNET with the
other init's ``/proc/<pid>/ns/net`` path; ``bridge`` = a new namespace and one
:class:`~declarative_ct.configs.Network` (runc's former veth strategy, which runc dropped).

Lifecycle (``Container`` calls these):

1. :func:`reserve` before anything of the container exists: host checks, an address leased
   (IPAM), ports reserved, and ``<state dir>/network.json`` written;
2. :func:`.attach.attach` once init is ready (its namespace exists, the program has not run): bridge
   made if missing, veth pair with the container end created inside as ``eth0``, addresses,
   routes, then the NAT rules;
3. :func:`release` from destroy or from the clean-up of a create that died half-way: NAT rules,
   the veth if still there, the lease and ports. Repeating it is harmless.

Host-side objects are made in the namespace of the thread that creates the container (a test's
private namespace, or the host's); ``network.json`` records which one, and :func:`release`
only touches that namespace (found again under /run/netns or as the caller's own), never
another. Records of the state root live in ``<root>/#network/state.json`` under a lock:
``bridges`` (subnet, gateway, namespace), ``leases`` (bridge → address → container id) and
``ports`` (``tcp:8080`` → container id).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import ipaddress
import os
import socket
import time
from typing import Iterator

from ...configs.network import DEFAULT_SUBNET, host_address
from ...errors import ConfigInvalid, ContainerError
from .. import store
from . import nat, netns

NETWORK_FILE = "network.json"  # in the container's state dir
NETWORK_DIR = store.MANAGER_PREFIX + "network"  # in the state root
_STATE = "state.json"
_LOCK = "lock"


# -- the root's records -------------------------------------------------------------------------
@contextlib.contextmanager
def _records(root: str) -> Iterator[dict]:
    """The root's network records, locked; saved atomically when the body ends without error."""
    directory = os.path.join(root, NETWORK_DIR)
    os.makedirs(directory, mode=0o700, exist_ok=True)
    fd = os.open(os.path.join(directory, _LOCK), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        path = os.path.join(directory, _STATE)
        try:
            data = store.read_json(path)
        except FileNotFoundError:
            data = {}
        for key in ("bridges", "leases", "ports"):
            data.setdefault(key, {})
        before = repr(data)
        yield data
        if repr(data) != before:
            store.write_json_atomic(path, data)
    finally:
        os.close(fd)


def _read_records(root: str) -> dict:
    try:
        data = store.read_json(os.path.join(root, NETWORK_DIR, _STATE))
    except (FileNotFoundError, ValueError):
        data = {}
    return {key: data.get(key, {}) for key in ("bridges", "leases", "ports")}


def owner_tag(root: str, container_id: str) -> str:
    """The comment on a container's NAT rules: unique per state root and id."""
    return f"dct:{hashlib.sha256(os.path.abspath(root).encode()).hexdigest()[:8]}:{container_id}"


def host_interface_name(root: str, container_id: str) -> str:
    """Default host end of the veth: ``veth`` + 8 hex of root and id (15 bytes at most)."""
    return "veth" + hashlib.sha256(f"{os.path.abspath(root)}\0{container_id}".encode()).hexdigest()[:8]


# -- checks -------------------------------------------------------------------------------------
def bridge_alias(root: str) -> str:
    """The ``ifalias`` a root sets on the bridges it makes: how it tells its own from others'."""
    return "dct:" + hashlib.sha256(os.path.abspath(root).encode()).hexdigest()[:8]


def _link_owner(name: str) -> str | None:
    """The ``ifalias`` of link ``name`` in the caller's namespace ("" when unset), None when absent."""
    with netns.iproute() as ipr:
        found = ipr.link_lookup(ifname=name)
        return (ipr.get_links(found[0])[0].get_attr("IFLA_IFALIAS") or "") if found else None


def _overlapping_route(subnet: ipaddress.IPv4Network, bridge: str) -> str | None:
    """A route of the main table (other than a default route or one through ``bridge``) that overlaps ``subnet``."""
    with netns.iproute() as ipr:
        names = {link["index"]: link.get_attr("IFLA_IFNAME") for link in ipr.get_links()}
        for route in ipr.get_routes(family=socket.AF_INET, table=254):
            if route["dst_len"] == 0 or names.get(route.get_attr("RTA_OIF")) == bridge:
                continue
            dst = ipaddress.ip_network(f"{route.get_attr('RTA_DST')}/{route['dst_len']}", strict=False)
            if dst.overlaps(subnet):
                return f"{dst} dev {names.get(route.get_attr('RTA_OIF'), '?')}"
    return None


def _port_in_use(host_ip: str, port: int, protocol: str) -> bool:
    """True when a local socket holds ``host_ip:port`` (a listener we would shadow)."""
    kind = socket.SOCK_STREAM if protocol == "tcp" else socket.SOCK_DGRAM
    with socket.socket(socket.AF_INET, kind) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host_ip, port))
        except OSError as err:
            if err.errno == errno.EADDRINUSE:
                return True
            if err.errno == errno.EADDRNOTAVAIL:
                raise ConfigInvalid(f"ports: host address {host_ip} is not an address of this host") from None
            raise
    return False


def _plan(records: dict, root: str, container_id: str, config) -> dict:  # noqa: ANN001 - configs.Config
    """What :func:`reserve` would record for ``config``; raises ConfigInvalid on a conflict. Writes nothing
    but may update ``records`` (the caller decides whether to save)."""
    net = config.networks[0]
    here = list(netns.current())
    requested = ipaddress.ip_network(net.subnet) if net.subnet else None
    bridge = records["bridges"].get(net.bridge)
    leases = records["leases"].get(net.bridge, {})
    others = {ip: owner for ip, owner in leases.items() if owner != container_id}
    if bridge is not None and bridge["netns"] != here:
        if others or netns.find(bridge["netns"]) is not None:
            raise ConfigInvalid(f"networks[0].bridge: {net.bridge} of this state root is in another network "
                                f"namespace; remove it there (dct network rm {net.bridge}) or choose another "
                                f"bridge name")
        bridge = None  # its namespace is gone, and the bridge with it: start afresh
    readdress = False
    if bridge is None:
        owner = _link_owner(net.bridge)
        if owner is not None and owner != bridge_alias(root):
            raise ConfigInvalid(f"networks[0].bridge: {net.bridge} exists but was not made by declarative-ct "
                                f"(this state root); choose another bridge name")
        bridge = _new_bridge(net, requested or ipaddress.ip_network(DEFAULT_SUBNET), here)
    elif requested is not None and requested != ipaddress.ip_network(bridge["subnet"]):
        if others:
            raise ConfigInvalid(f"networks[0].subnet: bridge {net.bridge} has the subnet {bridge['subnet']}, not "
                                f"{net.subnet}, and containers use it ({', '.join(sorted(set(others.values())))}); "
                                f"choose another bridge name")
        bridge, readdress = _new_bridge(net, requested, here), True  # no one else on it: give it the new subnet
    subnet = ipaddress.ip_network(bridge["subnet"])
    if net.gateway and net.gateway != bridge["gateway"]:
        raise ConfigInvalid(f"networks[0].gateway: bridge {net.bridge} has the gateway {bridge['gateway']}")
    taken = set(others) | {bridge["gateway"]}
    if net.address:
        ip = str(host_address(net.address, subnet, "networks[0].address"))
        if ip in taken:
            holder = others.get(ip, "the bridge (it is the gateway)")
            raise ConfigInvalid(f"networks[0].address: {net.address} is already leased to {holder}")
        address = ip
    else:
        address = next((str(ip) for ip in subnet.hosts() if str(ip) not in taken), None)
        if address is None:
            raise ConfigInvalid(f"networks[0].subnet: no free address left in {subnet} (bridge {net.bridge})")
    for i, port in enumerate(config.ports):
        key = f"{port.protocol}:{port.host_port}"
        holder = records["ports"].get(key)
        if holder is not None and holder["container"] != container_id:
            raise ConfigInvalid(f"ports[{i}]: host port {port.host_port}/{port.protocol} is already published "
                                f"by {holder['container']}")
        if holder is None and _port_in_use(port.host_ip, port.host_port, port.protocol):
            raise ConfigInvalid(f"ports[{i}]: host port {port.host_port}/{port.protocol} is in use on this host")
    records["bridges"][net.bridge] = bridge
    return {"netns": here, "bridge": net.bridge, "subnet": str(subnet), "gateway": bridge["gateway"],
            "address": f"{address}/{subnet.prefixlen}", "name": net.name, "mac_address": net.mac_address,
            "mtu": net.mtu, "ipv6_address": net.ipv6_address, "ipv6_gateway": net.ipv6_gateway,
            "host_interface_name": net.host_interface_name or host_interface_name(root, container_id),
            "routes": [vars(r) for r in config.routes], "ports": [vars(p) for p in config.ports],
            "tag": owner_tag(root, container_id), "alias": bridge_alias(root), "readdress": readdress}


def _new_bridge(net, subnet: ipaddress.IPv4Network, here: list[int]) -> dict:  # noqa: ANN001 - configs.Network
    """The record of a bridge to make (or re-address) with ``subnet``; refuses one that overlaps a host route."""
    overlap = _overlapping_route(subnet, net.bridge)
    if overlap:
        raise ConfigInvalid(f"networks[0].subnet: {subnet} overlaps the host route {overlap}")
    gateway = host_address(net.gateway, subnet, "networks[0].gateway") if net.gateway else next(subnet.hosts())
    return {"subnet": str(subnet), "gateway": str(gateway), "netns": here}


def check(root: str, container_id: str, config) -> None:  # noqa: ANN001 - configs.Config
    """Everything :func:`reserve` would refuse for ``config``, without writing anything.

    Raises:
        ConfigInvalid: an address outside the bridge's subnet or leased to another container, a
            host port published by another container or held by a local socket, a subnet that
            overlaps a host route, a bridge that is not ours.
    """
    if config.networks:
        _plan(_read_records(root), root, container_id, config)


def reserve(root: str, state_dir: str, container_id: str, config) -> dict | None:  # noqa: ANN001
    """Lease an address and reserve the ports of ``config.networks``; write ``network.json``.

    Returns the record (``address`` as CIDR, ``gateway``, ``host_interface_name``…) or None
    when the config has no network. Raises ConfigInvalid as :func:`check`; nothing is recorded
    then.
    """
    if not config.networks:
        return None
    with _records(root) as records:
        record = _plan(records, root, container_id, config)
        # network.json first: a crash right after the lease is found and released by delete.
        store.write_json_atomic(os.path.join(state_dir, NETWORK_FILE), record)
        records["leases"].setdefault(record["bridge"], {})[record["address"].split("/")[0]] = container_id
        for port in config.ports:
            records["ports"][f"{port.protocol}:{port.host_port}"] = {"container": container_id,
                                                                      "host_ip": port.host_ip}
    return record


def load(state_dir: str) -> dict | None:
    """The container's ``network.json`` record, or None (no bridge network)."""
    try:
        return store.read_json(os.path.join(state_dir, NETWORK_FILE))
    except (FileNotFoundError, ValueError):
        return None


# -- release --------------------------------------------------------------------------------------
def release(state_dir: str) -> None:
    """Undo :func:`reserve` and :func:`attach` for the container in ``state_dir`` (idempotent).

    NAT rules and the veth are removed in the namespace recorded at reserve, if it still exists
    (when it is gone, so are they); the lease and ports are released; ``network.json`` goes last.
    Raises SystemError when nft refuses to delete a rule (the record stays, a later delete retries).
    """
    record = load(state_dir)
    if record is None:
        return
    path = netns.find(record["netns"])
    if path is not None:
        with netns.entered(path):
            if record["ports"]:
                nat.remove(record["tag"], record.get("nat_handles"))
            with contextlib.suppress(OSError, ImportError), netns.iproute() as ipr:
                from pyroute2 import NetlinkError

                with contextlib.suppress(NetlinkError):
                    for index in _outliving(ipr, record["host_interface_name"]):
                        ipr.link("del", index=index)
    root, container_id = os.path.dirname(os.path.abspath(state_dir)), os.path.basename(os.path.abspath(state_dir))
    with _records(root) as records:
        leases = records["leases"].get(record["bridge"], {})
        for ip in [ip for ip, owner in leases.items() if owner == container_id]:
            del leases[ip]
        for key in [k for k, v in records["ports"].items() if v["container"] == container_id]:
            del records["ports"][key]
    with contextlib.suppress(FileNotFoundError):
        os.unlink(os.path.join(state_dir, NETWORK_FILE))


_VETH_GRACE = 0.2  # seconds the kernel gets to remove a dead container's veth itself


def _outliving(ipr, name: str) -> list[int]:  # noqa: ANN001 - IPRoute
    """The indexes of link ``name`` once the kernel had its chance to remove it.

    A veth goes with the network namespace of its other end: when the container's processes are
    dead, the kernel's namespace clean-up removes it within milliseconds, off our path. Deleting
    it ourselves meanwhile would wait on that same clean-up (about 25 ms here). So: wait for it
    to go, and delete only one that stays (its namespace is held: a container joined it).
    """
    deadline = time.monotonic() + _VETH_GRACE
    while True:
        found = ipr.link_lookup(ifname=name)
        if not found or time.monotonic() > deadline:
            return found
        time.sleep(0.001)


# -- stats ---------------------------------------------------------------------------------------
_DEV_FIELDS = ("RxBytes", "RxPackets", "RxErrors", "RxDropped", "TxBytes", "TxPackets", "TxErrors", "TxDropped")


def _net_dev(path: str) -> dict[str, list[int]]:
    out = {}
    with open(path) as f:
        for line in f.readlines()[2:]:
            name, _, rest = line.partition(":")
            values = [int(v) for v in rest.split()]
            out[name.strip()] = values[0:4] + values[8:12]  # rx bytes packets errs drop, tx the same
    return out


def interface_counters(record: dict, init_pid: int) -> dict[str, int] | None:
    """libcontainer ``NetworkInterface`` fields for the container's veth, from the container's view.

    Read from the host end with rx and tx swapped, as libcontainer does, when the caller is in
    the namespace that holds it; otherwise (another namespace) from the container end as is.
    None when neither can be read (the container is gone).
    """
    name = record["host_interface_name"]
    try:
        if list(netns.current()) == record["netns"]:
            values = _net_dev("/proc/thread-self/net/dev").get(name)
            if values is not None:
                return dict(zip(_DEV_FIELDS, values[4:] + values[:4], strict=True))
        values = _net_dev(f"/proc/{init_pid}/net/dev").get(record["name"])
    except OSError:
        return None
    return None if values is None else dict(zip(_DEV_FIELDS, values, strict=True))


# -- bridges ------------------------------------------------------------------------------------
def bridges(root: str) -> list[dict]:
    """The bridges this root made: ``{name, subnet, gateway, leases, present}`` (present: the link
    exists in the caller's namespace, where it was made)."""
    records = _read_records(root)
    out = []
    for name, b in sorted(records["bridges"].items()):
        present = b["netns"] == list(netns.current()) and _link_owner(name) == bridge_alias(root)
        out.append({"name": name, "subnet": b["subnet"], "gateway": b["gateway"],
                    "leases": len(records["leases"].get(name, {})), "present": present})
    return out


def remove_bridge(root: str, name: str) -> None:
    """Delete bridge ``name`` made by this root: its link, masquerade rule and record.

    Raises:
        ContainerError: unknown bridge, or containers still hold leases on it.
    """
    with _records(root) as records:
        bridge = records["bridges"].get(name)
        if bridge is None:
            raise ContainerError(f"network {name}: no such bridge made by declarative-ct in {root}")
        holders = sorted(set(records["leases"].get(name, {}).values()))
        if holders:
            raise ContainerError(f"network {name}: still used by {', '.join(holders)} "
                                 f"(dct delete --force removes a container, even one whose create was cut short)")
        path = netns.find(bridge["netns"])
        if path is not None:
            with netns.entered(path):
                nat.remove(f"bridge:{name}")
                nat.drop_if_empty()
                with netns.iproute() as ipr:
                    for index in ipr.link_lookup(ifname=name):
                        if (ipr.get_links(index)[0].get_attr("IFLA_IFALIAS") or "") == bridge_alias(root):
                            ipr.link("del", index=index)  # never one that another root (or the admin) owns
        del records["bridges"][name]
        records["leases"].pop(name, None)
