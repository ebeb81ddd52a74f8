"""The reconciler with networks, through the CLI, inside a network namespace the test makes.

``dct apply`` runs as a subprocess forked from a thread inside the test's namespace (see
``test_network.netns_host``), so bridges, veths and NAT rules never reach the machine's own.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

import pytest
from conftest import wait_for
from test_cli_desired import Dct
from test_network import _ask, netns_host  # noqa: F401 - the fixture, shared

import dct_cli

pytestmark = pytest.mark.integration

SERVE = ["/bin/sh", "-c", "while :; do nc -l -p 9000 -e echo hi; done"]


@pytest.fixture
def dct(netns_host, state_root: str, unique_id: Callable[[str], str], busybox_rootfs: str,  # noqa: F811
        tmp_path: Path) -> Dct:
    for d in dct_cli.runner(Dct, state_root, unique_id):
        d.rootfs, d.specs = busybox_rootfs, tmp_path / "specs"
        yield d


def _netns(dct: Dct, cid: str) -> int:
    return os.stat(f"/proc/{dct.pid(cid)}/ns/net").st_ino


def test_bridge_ports_and_a_joined_container_converge_and_follow_their_owner(dct: Dct) -> None:
    web, side = dct.new_id("web"), dct.new_id("side")

    def write(port: int) -> str:
        return dct.write("app.yaml", dct.spec(web, process={"args": SERVE}, network={
            "mode": "bridge", "bridge": "dct7", "subnet": "10.233.0.0/24", "ports": [f"127.0.0.1:{port}:9000"]}),
            dct.spec(side, network={"mode": f"container:{web}"}))

    f = write(18600)
    assert dct.out("apply", f) == [f"{web}: create (not created yet): ok",  # the owner first
                                   f"{side}: create (not created yet): ok", "2 done, 0 failed, 0 skipped"]
    assert wait_for(lambda: _ask("127.0.0.1", 18600) == b"hi\n", timeout=5)
    assert _netns(dct, side) == _netns(dct, web)
    assert dct.out("plan", f) == []  # idempotent: bridge defaults and port forms compare equal

    f = write(18601)
    assert dct.out("plan", f, rc=2) == [f"{web}: recreate (network.ports changed)",
                                        f"{side}: recreate (network namespace owner {web} is made anew)"]
    dct.out("apply", f)
    assert wait_for(lambda: _ask("127.0.0.1", 18601) == b"hi\n", timeout=5)
    assert _ask("127.0.0.1", 18600) is None  # the old rule went with the old container
    assert _netns(dct, side) == _netns(dct, web)
    assert dct.out("plan", f) == []
    assert dct.out("network", "ls")[1].split() == ["dct7", "10.233.0.0/24", "10.233.0.1", "1", "yes"]


def test_bad_network_specs_touch_nothing(dct: Dct) -> None:
    name = dct.new_id("bad")
    f = dct.write("bad.yaml", dct.spec(name, network={"mode": "bridge", "subnet": "10.233.0.0/24",
                                                      "address": "10.9.9.9"}))
    (line,) = dct.bad_input("apply", f)
    assert line.endswith("network.address: 10.9.9.9 is not a host address of the subnet 10.233.0.0/24")
    g = dct.write("bad2.yaml", dct.spec(name, network={"mode": "bridge", "bridge": "much-too-long-name"}))
    (line,) = dct.bad_input("validate", g)
    assert "network.bridge: 'much-too-long-name' must be 1 to 15 characters" in line
    assert dct.out("list", "-q") == []
    assert not os.path.exists(os.path.join(dct.root, "#network"))
