"""Networking with real containers, every one of them inside a network namespace the test makes.

The ``netns_host`` fixture creates a named namespace (``ip netns add``) that stands in for the
host: the test body runs with its thread inside it (``netns.entered``), so the bridge, the veth
host ends and the nftables table are made there and never in the machine's own namespace.
Request ``netns_host`` before ``runtime``/``state_root`` so that the containers are destroyed
(and their network released) before the namespace goes.
"""

from __future__ import annotations

import concurrent.futures
import json
import os
import socket
import subprocess
import uuid

import pytest
from conftest import exec_in, wait_for
from dct_cli import DCT, Dct

from declarative_ct.configs import Config, Namespace, Network, PortMapping, Route
from declarative_ct.errors import ConfigInvalid, ContainerError
from declarative_ct.runtime import Process, Runtime, Status, network
from declarative_ct.runtime.network import nat, netns

pytestmark = pytest.mark.integration

SERVE = "while :; do nc -l -p 9000 -e echo hi; done"  # busybox nc: one line to each client
SUBNET = "10.231.0.0/24"


@pytest.fixture
def netns_host():
    """A private network namespace (``/run/netns/t-…``) with ``lo`` up; deleted at teardown."""
    name = f"t-{uuid.uuid4().hex[:10]}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    path = f"/run/netns/{name}"
    try:
        subprocess.run(["ip", "-n", name, "link", "set", "lo", "up"], check=True)
        with netns.entered(path):
            yield path
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False)


def _bridge_config(busybox_rootfs: str, **net: object) -> Config:
    ports = net.pop("ports", [])
    routes = net.pop("routes", [])
    return Config(rootfs=busybox_rootfs, hostname="box", networks=[Network(subnet=SUBNET, **net)],
                  ports=ports, routes=routes)


def _run(runtime: Runtime, cid: str, config: Config, script: str = "sleep 1000"):
    c = runtime.create(cid, config)
    c.run(Process(["sh", "-c", script]))
    return c


def _links() -> list[str]:
    out = subprocess.run(["ip", "-j", "link"], capture_output=True, text=True, check=True).stdout
    return [link["ifname"] for link in json.loads(out)]


def _leases(root: str) -> dict:
    try:
        with open(os.path.join(root, network.NETWORK_DIR, "state.json")) as f:
            data = json.load(f)
    except FileNotFoundError:
        return {}
    return {ip: owner for leases in data["leases"].values() for ip, owner in leases.items()}


def _address(c) -> str:
    return network.load(os.path.join(c._root, c.id))["address"].split("/")[0]


def _nc(container, address: str, port: int = 9000) -> str:
    return exec_in(container, ["nc", "-w", "3", address, str(port)])[1]


def _ask(host: str, port: int) -> bytes | None:
    """What the server at ``host:port`` says first; None when nothing listens yet."""
    try:
        with socket.create_connection((host, port), timeout=5) as s:
            return s.recv(64)
    except ConnectionRefusedError:
        return None


def test_two_bridge_containers_reach_each_other(netns_host, runtime, busybox_rootfs, unique_id):
    a = _run(runtime, unique_id("na"), _bridge_config(busybox_rootfs), SERVE)
    b = _run(runtime, unique_id("nb"), _bridge_config(busybox_rootfs), SERVE)
    addr_a, addr_b = _address(a), _address(b)
    assert addr_a != addr_b and addr_a.startswith("10.231.0.")
    assert wait_for(lambda: _nc(b, addr_a) == "hi\n", timeout=5)
    assert wait_for(lambda: _nc(a, addr_b) == "hi\n", timeout=5)
    # eth0 inside, with the leased address and a default route through the bridge's address.
    code, routes = exec_in(a, ["ip", "route"])
    assert code == 0 and "default via 10.231.0.1 dev eth0" in routes
    assert "dct0" in _links()


def test_published_port_answers_from_the_host_namespace(netns_host, runtime, busybox_rootfs, unique_id):
    c = _run(runtime, unique_id("np"), _bridge_config(
        busybox_rootfs, ports=[PortMapping(18080, 9000), PortMapping(18081, 9000, host_ip="127.0.0.1")]), SERVE)
    # (nc serves one client at a time: between two, the port is briefly closed)
    assert wait_for(lambda: _ask("127.0.0.1", 18080) == b"hi\n", timeout=5)
    assert wait_for(lambda: _ask("127.0.0.1", 18081) == b"hi\n", timeout=5)
    assert wait_for(lambda: _ask("10.231.0.1", 18080) == b"hi\n", timeout=5)  # 0.0.0.0: the bridge's address too
    tag = network.owner_tag(runtime.root, c.id)
    assert len(nat.rules(tag)) == 6  # prerouting + output DNAT, localhost masquerade, per port
    # The handles kept for delete are those rules (so delete needs no listing).
    record = network.load(os.path.join(runtime.root, c.id))
    assert sorted(map(tuple, record["nat_handles"])) == sorted((chain, h) for chain, h, _ in nat.rules(tag))


def test_container_mode_shares_lo_and_eth0(netns_host, runtime, busybox_rootfs, unique_id):
    owner = _run(runtime, unique_id("no"), _bridge_config(busybox_rootfs), SERVE)
    pid = owner.state().init_process_pid
    joined_cfg = Config(rootfs=busybox_rootfs, hostname="box", namespaces=[
        Namespace(t, f"/proc/{pid}/ns/net" if t == "NEWNET" else "")
        for t in ("NEWNS", "NEWUTS", "NEWIPC", "NEWPID", "NEWNET")])
    joined = _run(runtime, unique_id("nj"), joined_cfg)
    assert wait_for(lambda: _nc(joined, "127.0.0.1") == "hi\n", timeout=5)  # the owner's lo
    assert _address(owner) in exec_in(joined, ["ip", "addr", "show", "eth0"])[1]


def test_interface_stats_grow_after_traffic(netns_host, runtime, busybox_rootfs, unique_id):
    c = _run(runtime, unique_id("ns"), _bridge_config(busybox_rootfs, ports=[PortMapping(18090, 9000)]), SERVE)
    host_end = network.load(os.path.join(runtime.root, c.id))["host_interface_name"]
    before = c.stats().interfaces
    assert [i.Name for i in before] == [host_end]
    assert wait_for(lambda: _ask("127.0.0.1", 18090) == b"hi\n", timeout=5)
    for _ in range(5):
        wait_for(lambda: _ask("127.0.0.1", 18090) == b"hi\n", timeout=5)
    after = runtime.load(c.id).stats().interfaces[0]
    # The container received the connections (rx) and sent "hi" back (tx): rx/tx are its view.
    assert after.RxPackets >= before[0].RxPackets + 10 and after.RxBytes > before[0].RxBytes
    assert after.TxPackets >= before[0].TxPackets + 10 and after.TxBytes > before[0].TxBytes
    # From another namespace (the machine's own), the same counters come from the container end.
    holder = {}
    with netns.entered("/proc/self/ns/net"):  # the main thread's namespace: not the one holding the veth
        holder["stats"] = runtime.load(c.id).stats().interfaces
    assert holder["stats"] and holder["stats"][0].RxPackets >= after.RxPackets


def test_destroy_leaves_no_veth_lease_or_rule(netns_host, runtime, busybox_rootfs, unique_id):
    c = _run(runtime, unique_id("nd"), _bridge_config(busybox_rootfs, ports=[PortMapping(18100, 9000)]))
    record = network.load(os.path.join(runtime.root, c.id))
    assert record["host_interface_name"] in _links() and _leases(runtime.root)
    tag = network.owner_tag(runtime.root, c.id)
    assert nat.rules(tag)
    c.signal(9, all=True)
    wait_for(lambda: c.status() == Status.STOPPED)
    c.destroy()
    assert record["host_interface_name"] not in _links()
    assert _leases(runtime.root) == {} and nat.rules(tag) == []
    assert not os.path.exists(os.path.join(runtime.root, c.id))
    ls = subprocess.run([*DCT, "--root", runtime.root, "network", "ls"], capture_output=True, text=True, env=Dct.env())
    assert ls.stdout.splitlines()[1].split() == ["dct0", SUBNET, "10.231.0.1", "0", "yes"]


def test_a_create_killed_half_way_is_released_by_the_next_delete(netns_host, runtime, busybox_rootfs, unique_id):
    cid = unique_id("nk")
    state_dir = os.path.join(runtime.root, cid)
    os.makedirs(state_dir)
    config = _bridge_config(busybox_rootfs, ports=[PortMapping(18110, 9000)])
    record = network.reserve(runtime.root, state_dir, cid, config)  # as far as a create got before dying
    assert _leases(runtime.root) == {record["address"].split("/")[0]: cid}
    assert runtime.cleanup(cid)
    assert _leases(runtime.root) == {} and not os.path.exists(state_dir)
    # The port and the address are free again.
    c = _run(runtime, cid, config)
    assert _address(c) == record["address"].split("/")[0]


def test_fifty_cycles_leak_nothing(netns_host, runtime, busybox_rootfs, unique_id):
    links_before = set(_links())
    for i in range(50):
        c = runtime.create(unique_id("ncy"), _bridge_config(busybox_rootfs, ports=[PortMapping(18200, 9000)]))
        c.run(Process(["true"]))
        wait_for(lambda: c.status() == Status.STOPPED, timeout=5)
        c.destroy()
    assert set(_links()) - links_before <= {"dct0"}
    assert _leases(runtime.root) == {} and nat.rules() == [r for r in nat.rules() if r[2].startswith("bridge:")]
    assert len(nat.rules()) == 1  # only the bridge's masquerade rule is left


def test_concurrent_creates_never_share_an_address(netns_host, runtime, busybox_rootfs, unique_id):
    ids = [unique_id("ncc") for _ in range(8)]

    def create(cid: str) -> str:
        with netns.entered(netns_host):  # each worker thread enters the test's namespace itself
            return _address(_run(runtime, cid, _bridge_config(busybox_rootfs)))

    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        addresses = list(pool.map(create, ids))
    assert len(set(addresses)) == len(ids)
    assert sorted(_leases(runtime.root).values()) == sorted(ids)


# -- bad input: a clear error and nothing created ----------------------------------------------
def _assert_nothing_made(runtime: Runtime, cid: str, links_before: set[str]) -> None:
    assert not os.path.exists(os.path.join(runtime.root, cid))
    assert cid not in _leases(runtime.root).values()
    assert set(_links()) - links_before <= {"dct0"}
    assert not nat.rules(network.owner_tag(runtime.root, cid))


@pytest.mark.parametrize("net, message", [
    ({"address": "10.9.0.5/24"}, "networks[0].address: 10.9.0.5/24 is not a host address of the subnet"),
    ({"subnet": "10.231.0.0/33"}, "networks[0].subnet: '10.231.0.0/33' is not a valid CIDR subnet"),
    ({"subnet": "10.231.0.1/24"}, "host bits set"),
    ({"bridge": "a-very-long-bridge"}, "networks[0].bridge: 'a-very-long-bridge' must be 1 to 15 characters"),
    ({"host_interface_name": "veth-much-too-long"}, "must be 1 to 15 characters"),
    ({"mac_address": "01:00:00:00:00:01"}, "is not a unicast MAC"),
])
def test_static_bad_network_config_is_refused(netns_host, runtime, busybox_rootfs, unique_id, net, message):
    links = set(_links())
    cid = unique_id("nbad")
    config = Config(rootfs=busybox_rootfs, networks=[Network(**{"subnet": SUBNET, **net})])
    with pytest.raises(ConfigInvalid) as err:
        runtime.check(cid, config)
    assert message in str(err.value)
    with pytest.raises(ConfigInvalid):
        runtime.create(cid, config)
    _assert_nothing_made(runtime, cid, links)


def test_host_state_conflicts_are_refused_before_anything_exists(netns_host, runtime, busybox_rootfs, unique_id):
    first = _run(runtime, unique_id("nf"), _bridge_config(busybox_rootfs, address="10.231.0.7/24",
                                                          ports=[PortMapping(18300, 9000)]))
    links = set(_links())
    cases = [
        (_bridge_config(busybox_rootfs, address="10.231.0.7"), f"address: 10.231.0.7 is already leased to {first.id}"),
        (_bridge_config(busybox_rootfs, address="10.231.0.1/24"), "10.231.0.1/24 is the gateway's (the bridge's own"),
        (Config(rootfs=busybox_rootfs, networks=[Network(address="10.231.0.1")]),  # no subnet: the bridge's
         "10.231.0.1 is already leased to the bridge (it is the gateway)"),
        (_bridge_config(busybox_rootfs, ports=[PortMapping(18300, 80)]),
         f"host port 18300/tcp is already published by {first.id}"),
        (Config(rootfs=busybox_rootfs, networks=[Network(subnet="10.232.0.0/24")]),
         f"bridge dct0 has the subnet 10.231.0.0/24, not 10.232.0.0/24, and containers use it ({first.id})"),
    ]
    for config, message in cases:
        cid = unique_id("nc")
        with pytest.raises(ConfigInvalid) as err:
            runtime.check(cid, config)
        assert message in str(err.value)
        with pytest.raises(ConfigInvalid) as err:
            runtime.create(cid, config).run(Process(["true"]))
        assert message in str(err.value)
        _assert_nothing_made(runtime, cid, links)
    # A local listener on the host port: refused too.
    with socket.socket() as s:
        s.bind(("0.0.0.0", 18301))
        s.listen()
        cid = unique_id("nl")
        with pytest.raises(ConfigInvalid, match="host port 18301/tcp is in use on this host"):
            runtime.create(cid, _bridge_config(busybox_rootfs, ports=[PortMapping(18301, 80)])).run(Process(["true"]))
        _assert_nothing_made(runtime, cid, links)


def test_subnet_overlapping_a_host_route_is_refused(netns_host, runtime, busybox_rootfs, unique_id):
    # a route of the test's host: 10.240.0.0/16 on an interface of its own (a veth pair; no dummy module here)
    subprocess.run(["ip", "link", "add", "t-lan0", "type", "veth", "peer", "name", "t-lan1"], check=True)
    subprocess.run(["ip", "addr", "add", "10.240.0.1/16", "dev", "t-lan0"], check=True)
    for name in ("t-lan0", "t-lan1"):
        subprocess.run(["ip", "link", "set", name, "up"], check=True)
    links = set(_links())
    cid = unique_id("nov")
    config = Config(rootfs=busybox_rootfs, networks=[Network(bridge="dct9", subnet="10.240.3.0/24")])
    with pytest.raises(ConfigInvalid, match=r"10.240.3.0/24 overlaps the host route 10.240.0.0/16 dev t-lan0"):
        runtime.create(cid, config).run(Process(["true"]))
    _assert_nothing_made(runtime, cid, links)
    assert "dct9" not in _links()


def test_joining_a_missing_container_namespace_is_refused(netns_host, runtime, busybox_rootfs, unique_id):
    cid = unique_id("nm")
    config = Config(rootfs=busybox_rootfs, namespaces=[
        Namespace(t, "/proc/999999999/ns/net" if t == "NEWNET" else "") for t in ("NEWNS", "NEWPID", "NEWNET")])
    with pytest.raises(ConfigInvalid, match="NEWNET path /proc/999999999/ns/net cannot be opened: No such file"):
        runtime.create(cid, config)
    assert not os.path.exists(os.path.join(runtime.root, cid))


def test_network_rm_refuses_a_bridge_in_use_then_removes_it(netns_host, runtime, busybox_rootfs, unique_id):
    c = _run(runtime, unique_id("nr"), _bridge_config(busybox_rootfs))
    with pytest.raises(ContainerError, match=f"network dct0: still used by {c.id}"):
        network.remove_bridge(runtime.root, "dct0")
    c.signal(9, all=True)
    wait_for(lambda: c.status() == Status.STOPPED)
    c.destroy()
    network.remove_bridge(runtime.root, "dct0")
    assert "dct0" not in _links() and nat.rules() == [] and network.bridges(runtime.root) == []


def test_extra_routes_and_static_mac_mtu(netns_host, runtime, busybox_rootfs, unique_id):
    c = _run(runtime, unique_id("nx"), _bridge_config(
        busybox_rootfs, mac_address="02:00:0a:e7:00:09", mtu=1400, ipv6_address="fd00:dc::5/64",
        ipv6_gateway="fd00:dc::1", routes=[Route("192.0.2.0/24", gateway="10.231.0.1")]))
    code, out = exec_in(c, ["ip", "addr", "show", "eth0"])
    assert "02:00:0a:e7:00:09" in out and "mtu 1400" in out and "inet6 fd00:dc::5/64" in out
    assert "default via fd00:dc::1 dev eth0" in exec_in(c, ["ip", "-6", "route"])[1]
    assert "192.0.2.0/24 via 10.231.0.1 dev eth0" in exec_in(c, ["ip", "route"])[1]


def test_host_mode_takes_the_callers_namespace_not_the_monitors(netns_host, runtime, busybox_rootfs, unique_id):
    """The root's monitor starts in the namespace of the first create; a later host-network
    container created from another namespace must still get its caller's."""
    _run(runtime, unique_id("nh0"), _bridge_config(busybox_rootfs))  # the monitor starts in the test's namespace
    here = os.stat("/proc/thread-self/ns/net").st_ino
    other = f"t-{uuid.uuid4().hex[:10]}"
    subprocess.run(["ip", "netns", "add", other], check=True)
    try:
        with netns.entered(f"/run/netns/{other}"):
            host_cfg = Config(rootfs=busybox_rootfs, namespaces=[
                Namespace(t) for t in ("NEWNS", "NEWUTS", "NEWIPC", "NEWPID")], hostname="box")
            c = _run(runtime, unique_id("nh"), host_cfg)
            inode = os.stat(f"/proc/{c.state().init_process_pid}/ns/net").st_ino
            assert inode == os.stat(f"/run/netns/{other}").st_ino != here
            c.signal(9, all=True)
            wait_for(lambda: c.status() == Status.STOPPED)
            c.destroy()
    finally:
        subprocess.run(["ip", "netns", "del", other], check=False)


def test_a_bridge_of_another_root_is_never_used_nor_removed(netns_host, runtime, busybox_rootfs, unique_id, tmp_path,
                                                            register_state_root):
    other = Runtime(register_state_root(tmp_path / "other-root"))
    mine = _run(other, unique_id("nb1"), _bridge_config(busybox_rootfs))
    cid = unique_id("nb2")
    with pytest.raises(ConfigInvalid, match="dct0 exists but was not made by declarative-ct \\(this state root\\)"):
        runtime.create(cid, _bridge_config(busybox_rootfs)).run(Process(["true"]))
    assert not os.path.exists(os.path.join(runtime.root, cid))
    # Two roots racing to make the same new bridge: the loser is refused, never shares it.
    ids = [unique_id("nrace") for _ in range(2)]
    roots = [runtime, Runtime(register_state_root(tmp_path / "third-root"))]

    def create(i: int) -> str:
        with netns.entered(netns_host):
            try:
                _run(roots[i], ids[i], Config(rootfs=busybox_rootfs,
                                              networks=[Network(bridge="dctr", subnet="10.235.0.0/24")]))
                return "ok"
            except (ConfigInvalid, ContainerError) as err:
                return str(err)

    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        results = list(pool.map(create, range(2)))
    assert results.count("ok") == 1, results
    assert any("another state root" in r or "not made by declarative-ct" in r for r in results), results
    assert mine.status() == Status.RUNNING


def test_a_changed_subnet_readdresses_a_bridge_no_one_else_uses(netns_host, runtime, busybox_rootfs, unique_id):
    c = _run(runtime, unique_id("nsub"), _bridge_config(busybox_rootfs))
    c.signal(9, all=True)
    wait_for(lambda: c.status() == Status.STOPPED)
    c.destroy()
    d = _run(runtime, unique_id("nsub"), Config(rootfs=busybox_rootfs, networks=[Network(subnet="10.234.0.0/24")]))
    assert _address(d).startswith("10.234.0.")
    out = subprocess.run(["ip", "-4", "-o", "addr", "show", "dct0"], capture_output=True, text=True).stdout
    assert "10.234.0.1/24" in out and "10.231.0.1" not in out
    assert [r[2] for r in nat.rules()] == ["bridge:dct0"]  # one masquerade rule, for the new subnet
    assert network.bridges(runtime.root)[0]["subnet"] == "10.234.0.0/24"


def test_an_unreachable_route_gateway_is_named(netns_host, runtime, busybox_rootfs, unique_id):
    links = set(_links())
    cid = unique_id("nrt")
    config = _bridge_config(busybox_rootfs, routes=[Route("192.168.5.0/24", gateway="172.16.9.9")])
    with pytest.raises(ConfigInvalid, match=r"routes\[0\]: 192.168.5.0/24 via 172.16.9.9: Network is unreachable"):
        runtime.create(cid, config).run(Process(["true"]))
    _assert_nothing_made(runtime, cid, links)


def test_the_last_network_rm_leaves_no_table(netns_host, runtime, busybox_rootfs, unique_id):
    c = _run(runtime, unique_id("ntb"), _bridge_config(busybox_rootfs, ports=[PortMapping(18400, 80)]))
    c.signal(9, all=True)
    wait_for(lambda: c.status() == Status.STOPPED)
    c.destroy()
    network.remove_bridge(runtime.root, "dct0")
    assert subprocess.run(["nft", "list", "table", "ip", "dct"], capture_output=True).returncode != 0


def test_a_bridge_left_in_another_namespace_is_not_orphaned(netns_host, runtime, busybox_rootfs, unique_id):
    c = _run(runtime, unique_id("nn"), _bridge_config(busybox_rootfs))
    c.signal(9, all=True)
    wait_for(lambda: c.status() == Status.STOPPED)
    c.destroy()  # no container on dct0 any more, but the bridge stays in the test's namespace
    other = f"t-{uuid.uuid4().hex[:10]}"
    subprocess.run(["ip", "netns", "add", other], check=True)
    try:
        with netns.entered(f"/run/netns/{other}"):
            cid = unique_id("nn2")
            with pytest.raises(ConfigInvalid, match="dct0 of this state root is in another network namespace; "
                                                    "remove it there"):
                runtime.create(cid, _bridge_config(busybox_rootfs)).run(Process(["true"]))
            assert not os.path.exists(os.path.join(runtime.root, cid))
            network.remove_bridge(runtime.root, "dct0")  # from here: it goes where it lives
        assert "dct0" not in _links()
    finally:
        subprocess.run(["ip", "netns", "del", other], check=False)


def test_destroying_an_owner_whose_namespace_a_joiner_holds_still_removes_its_veth(
        netns_host, runtime, busybox_rootfs, unique_id):
    """The kernel removes a dead container's veth with its namespace; one held by a joined
    container stays, and destroy deletes it after a grace period."""
    owner = _run(runtime, unique_id("nho"), _bridge_config(busybox_rootfs))
    pid = owner.state().init_process_pid
    _run(runtime, unique_id("nhj"), Config(rootfs=busybox_rootfs, hostname="box", namespaces=[
        Namespace(t, f"/proc/{pid}/ns/net" if t == "NEWNET" else "") for t in ("NEWNS", "NEWUTS", "NEWPID", "NEWNET")]))
    host_end = network.load(os.path.join(runtime.root, owner.id))["host_interface_name"]
    owner.signal(9, all=True)
    wait_for(lambda: owner.status() == Status.STOPPED)
    assert host_end in _links()  # the joiner keeps the namespace, and so the veth, alive
    owner.destroy()
    assert host_end not in _links() and _leases(runtime.root) == {}
