"""Health as the front doors show it, over real containers: ``dct status`` (the HEALTH column, the
``health`` object of ``--json``, the line when nobody probes), the Ansible ``info`` facts and the
TUI's real backend.

The containers are made as ``dct apply`` makes them (``reconcile.convert.to_runtime`` of a loaded
spec, whose normalized form gets a ``health`` check here, so that these tests do not wait for the
spec field), and their records are written by ``health.record.store``, as the prober writes them:
no probe runs in these tests.
"""

from __future__ import annotations

import importlib
import json
import re
import sys
import time

import pytest

from ansible_collection import link_tree
from conftest import unique_id
from declarative_ct.health import record
from declarative_ct.health.check import HealthCheck
from declarative_ct.reconcile import convert
from declarative_ct.service.supervisor import Supervisor
from declarative_ct.spec.load import load_mapping
from dct_cli import Dct

pytestmark = pytest.mark.integration

LOOP = ["/bin/sh", "-c", "trap 'exit 0' TERM; while :; do sleep 0.2; done"]
HTTP = {"exec": None, "http": {"port": 8080, "path": "/healthz", "expect_status": None}, "tcp": None,
        "interval": 2.0, "timeout": 1.0, "retries": 3, "start_period": 0.0, "on_unhealthy": "none"}


class _WithHealth:
    """A loaded spec whose normalized form declares ``health`` (what the spec field will give)."""

    def __init__(self, desired, health: dict | None) -> None:
        self._normalized = {**desired.normalized(), "health": health}

    def normalized(self) -> dict:
        return dict(self._normalized)


def _managed(runtime, rootfs: str, health: dict | None, prefix: str = "hv"):
    """A running container made as apply makes it, its spec declaring ``health`` (or none)."""
    name = unique_id(prefix)
    source = f"/specs/{name}.yaml"
    doc = load_mapping({"name": name, "rootfs": rootfs, "process": {"args": LOOP}, "stop_timeout": 1}, source)
    config, process = convert.to_runtime(_WithHealth(doc.spec.desired(), health), source, runtime)
    c = runtime.create(name, config)
    c.run(process)
    return c


def _unhealthy(c, streak: int = 3) -> dict:
    """The record of ``c``'s run after one pass and ``streak`` failures, as the prober keeps it."""
    check = HealthCheck.from_normalized(HTTP)
    t0 = time.time() - 10
    rec = record.new(c.state().created, t0, t0)
    rec = record.add_result(rec, record.result(t0 + 1, t0 + 1.01, 0, "HTTP/1.1 200 OK"), check)
    for i in range(streak):
        rec = record.add_result(rec, record.result(t0 + 3 + i, t0 + 3.5 + i, 1, "connection refused"), check)
    return rec


def _status(dct: Dct) -> tuple[dict, list[str]]:
    rows = {r["name"]: r for r in json.loads(dct.ok("status", "--json").stdout)}
    return rows, dct.ok("status").stdout.splitlines()


def _health_cell(table: list[str], name: str) -> str:
    """The HEALTH cell of ``name``'s line (the column starts under its header)."""
    col = table[0].index("HEALTH")
    line = next(line for line in table if line.startswith(name + " "))
    return line[col:col + 15].strip()


def test_status_shows_starting_then_the_record_and_says_when_nobody_probes(runtime, busybox_rootfs, state_root):
    dct = Dct(state_root, unique_id)
    probed, plain = _managed(runtime, busybox_rootfs, HTTP), _managed(runtime, busybox_rootfs, None)

    # declared, no record yet, no supervisor: starting, stale, and a line saying why
    rows, table = _status(dct)
    assert rows[probed.id]["health"] == {"status": "starting", "failing_streak": 0, "since": None,
                                         "check": "http GET :8080/healthz", "log": [], "stale": True}
    assert rows[plain.id]["health"] is None
    assert _health_cell(table, probed.id) == "starting?" and _health_cell(table, plain.id) == "-"
    assert table[0].split()[:6] == ["NAME", "DESIRED", "STATUS", "DRIFT", "PID", "EXIT"]  # unchanged before it
    assert table[0].split()[-2:] == ["HEALTH", "CAUSE"]
    note = next(line for line in table if line.startswith("# no supervisor runs"))
    assert f"{probed.id} no probe yet" in note and plain.id not in note

    # the prober's record: unhealthy with its streak and the last results (oldest first, at most 5)
    assert record.store(probed.state_dir, _unhealthy(probed))
    rows, table = _status(dct)
    health = rows[probed.id]["health"]
    assert (health["status"], health["failing_streak"], health["stale"]) == ("unhealthy", 3, True)
    assert [e["exit_code"] for e in health["log"]] == [0, 1, 1, 1]
    assert health["log"][-1]["output"] == "connection refused" and health["since"] == health["log"][-1]["end"]
    assert _health_cell(table, probed.id) == "unhealthy (3)?"
    assert re.search(rf"\({probed.id} \d+s ago\)", next(line for line in table if line.startswith("# no supervisor")))

    # a supervisor holds the root: its prober is the one that wrote it, nothing is stale
    supervisor = Supervisor.acquire(runtime.root, [], runtime.data_root)
    try:
        rows, table = _status(dct)
    finally:
        supervisor.release()
    assert rows[probed.id]["health"]["stale"] is False
    assert _health_cell(table, probed.id) == "unhealthy (3)"
    assert not any(line.startswith("#") and "HEALTH" in line for line in table)

    # a record of another run (the container was made anew under this name): not this run's health
    assert record.store(probed.state_dir, {**_unhealthy(probed), "run": "2020-01-01T00:00:00.000Z"})
    rows, _ = _status(dct)
    assert rows[probed.id]["health"]["status"] == "starting" and rows[probed.id]["health"]["log"] == []

    # stopped: the last record stays readable (why it ended), nothing calls it stale
    assert record.store(probed.state_dir, _unhealthy(probed, streak=4))
    probed.signal(9)
    for _ in range(100):
        if probed.status().value == "stopped":
            break
        time.sleep(0.05)
    rows, _ = _status(dct)
    assert rows[probed.id]["status"] == "stopped"
    assert rows[probed.id]["health"]["failing_streak"] == 4 and rows[probed.id]["health"]["stale"] is False


def test_ansible_info_gives_the_same_health_object(runtime, busybox_rootfs, state_root, tmp_path):
    dct = Dct(state_root, unique_id)
    probed, plain = _managed(runtime, busybox_rootfs, HTTP), _managed(runtime, busybox_rootfs, None)
    assert record.store(probed.state_dir, _unhealthy(probed))
    base = str(link_tree(tmp_path / "collections"))
    sys.path.insert(0, base)
    try:
        module = importlib.import_module("ansible_collections.declarative_ct.dct.plugins.module_utils.dct")
        facts = {name: module.facts(runtime, name) for name in (probed.id, plain.id)}
    finally:
        sys.path.remove(base)
        for name in [n for n in sys.modules if n == "ansible_collections" or n.startswith("ansible_collections.")]:
            del sys.modules[name]
    rows, _ = _status(dct)
    assert facts[probed.id]["health"] == rows[probed.id]["health"]
    assert facts[probed.id]["health"]["status"] == "unhealthy" and facts[plain.id]["health"] is None


def test_the_tui_backend_reads_the_record_only_of_containers_with_a_check(runtime, busybox_rootfs):
    from tui.backend.real import RealBackend

    probed, plain = _managed(runtime, busybox_rootfs, HTTP), _managed(runtime, busybox_rootfs, None)
    backend = RealBackend(runtime.root)
    try:
        first = {r.id: r for r in backend.sample()}
        assert first[probed.id].health["status"] == "starting" and first[probed.id].health["stale"] is True
        assert first[probed.id].health_check.describe() == "http GET :8080/healthz"
        assert first[plain.id].health is None and first[plain.id].health_check is None
        assert backend._kept[plain.id].record_id is None  # never looked for: no check declared

        assert record.store(probed.state_dir, _unhealthy(probed))
        second = {r.id: r for r in backend.sample()}
        assert (second[probed.id].health["status"], second[probed.id].health["failing_streak"]) == ("unhealthy", 3)
        kept = backend._kept[probed.id]
        parsed = kept.record
        backend.sample()
        assert kept.record is parsed  # the file did not change: not read again
    finally:
        backend.close()
