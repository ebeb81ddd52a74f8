"""Spec values the runtime would refuse at create are refused by the model already (validate, plan)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from declarative_ct.spec.model import ContainerSpec


@pytest.mark.parametrize("fields, message", [
    ({"resources": {"memory": 0}}, "memory: 0 must be positive"),
    ({"resources": {"memory": 4096}}, "below 1Mi"),
    ({"resources": {"memory": 10 ** 23}}, "too large"),
    ({"resources": {"pids": 10 ** 20}}, "pids: 100000000000000000000 is too large (at most 4194304)"),
    ({"process": {"args": ["/bin/true"], "user": "4294967296"}}, "ids must be below 4294967295"),
    ({"process": {"args": ["a\0b"]}}, "NUL"),
    ({"process": {"args": ["x"], "env": {"A": "x\0y"}}}, "NUL"),
    ({"mounts": [{"source": "/tmp", "destination": "/proc"}]}, "cannot be a mount destination"),
    ({"mounts": [{"source": "/tmp", "destination": "/"}]}, "cannot be a mount destination"),
])
def test_values_create_would_refuse(fields, message):
    with pytest.raises(ValidationError) as info:
        ContainerSpec.model_validate({"name": "x", "process": {"args": ["/bin/true"]}, **fields})
    assert message in str(info.value)


def test_arguments_execve_would_refuse():
    with pytest.raises(ValidationError, match="MAX_ARG_STRLEN"):
        ContainerSpec.model_validate({"name": "x", "process": {"args": ["/bin/echo", "a" * 131072]}})
    with pytest.raises(ValidationError, match="more than 1024 KiB"):
        ContainerSpec.model_validate({"name": "x", "process": {"args": ["/bin/echo"] + ["a" * 100000] * 11}})


def test_a_fifo_given_by_name_is_refused_not_read(tmp_path):
    """Regression: validate blocked forever opening a FIFO given as a spec path."""
    import os

    from declarative_ct.spec.load import SpecErrors, load_paths

    fifo = tmp_path / "p.yaml"
    os.mkfifo(fifo)
    with pytest.raises(SpecErrors, match="not a regular file"):
        load_paths([str(fifo)])


def test_an_environment_execve_would_refuse():
    with pytest.raises(ValidationError, match="MAX_ARG_STRLEN"):
        ContainerSpec.model_validate({"name": "x", "process": {"args": ["x"], "env": {"A": "a" * 131072}}})


# -- network -------------------------------------------------------------------------------------------
def _net(**network: object) -> ContainerSpec:
    return ContainerSpec.model_validate({"name": "x", "process": {"args": ["/bin/true"]}, "network": network})


@pytest.mark.parametrize("network, message", [
    ({"mode": "bridge", "subnet": "10.88.0.0/33"}, "subnet: '10.88.0.0/33' is not a valid CIDR subnet"),
    ({"mode": "bridge", "subnet": "10.88.0.0/16", "address": "10.99.0.5"},
     "address: 10.99.0.5 is not a host address of the subnet 10.88"),
    ({"mode": "bridge", "subnet": "10.88.0.0/16", "address": "10.88.0.1"}, "address: 10.88.0.1 is the gateway's"),
    ({"mode": "bridge", "ipv6_gateway": "fd00::1"}, "ipv6_gateway: needs an ipv6_address"),
    ({"mode": "bridge", "routes": [{"destination": "10.1.0.0/16", "interface": "eth9"}]},
     "routes[0].interface: 'eth9' is not an interface of the container"),
    ({"mode": "bridge", "bridge": "sixteen-chars-xx"}, "bridge: 'sixteen-chars-xx' must be 1 to 15 characters"),
    ({"mode": "bridge", "ports": ["70000:80"]}, "port 70000 is outside 1..65535"),
    ({"mode": "bridge", "ports": ["localhost:80:80"]}, "is not [host_ip:][host_port:]container_port"),
    ({"mode": "bridge", "ports": ["80", "80/tcp"]}, "host port 80/tcp is published twice"),
    ({"mode": "bridge", "mac": "zz:00:00:00:00:01"}, "is not a unicast MAC"),
    ({"mode": "none", "ports": ["80:80"]}, "ports: only for mode bridge (mode is none)"),
    ({"mode": "container:"}, "must be none, host, bridge or container:<name>"),
    ({"mode": "container:x"}, "a container cannot join its own network namespace"),
])
def test_bad_network_specs(network, message):
    with pytest.raises(ValidationError) as info:
        _net(**network)
    assert message in str(info.value)


def test_ports_and_addresses_normalize_so_equal_specs_compare_equal():
    a = _net(mode="bridge", ports=["8080:80", "127.0.0.1:9000:9000/udp"], address="10.88.0.5", mac="02:AA:00:00:00:01")
    b = _net(mode="bridge", ports=["127.0.0.1:9000:9000/udp", "0.0.0.0:8080:80/tcp"], address="10.88.0.5",
             mac="02:aa:00:00:00:01")
    assert a.normalized() == b.normalized()
    assert a.normalized()["network"]["ports"] == ["0.0.0.0:8080:80/tcp", "127.0.0.1:9000:9000/udp"]
    net = a.network.to_network()
    assert (net.address, net.bridge, net.subnet) == ("10.88.0.5", "dct0", "")  # subnet: the bridge's
    assert [(p.host_ip, p.host_port, p.container_port, p.protocol) for p in a.network.to_ports()] == [
        ("0.0.0.0", 8080, 80, "tcp"), ("127.0.0.1", 9000, 9000, "udp")]
    # Outside bridge mode the bridge defaults do not count: none/host compare as before networking.
    assert _net(mode="none").normalized()["network"] == {"mode": "none"}


def test_container_mode_is_a_dependency():
    spec = ContainerSpec.model_validate({"name": "side", "process": {"args": ["a"]}, "depends_on": ["db"],
                                         "network": {"mode": "container:web"}})
    assert spec.dependencies() == ["db", "web"]
