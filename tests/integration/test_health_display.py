"""Health as the front doors show it, over real containers: ``dct status`` (the HEALTH column, the
``health`` object of ``--json``, the line when nobody probes), the Ansible ``info`` facts and the
TUI's real backend; the check they show is the one being probed (the given spec's, else the last
probe's, else the created one's).

The containers are made as ``dct apply`` makes them (``reconcile.convert.to_runtime`` of a spec
loaded with its ``health:``, or ``dct apply`` itself), and most records are written by
``health.record.store`` as the prober writes them (no probe runs in those tests).
"""

from __future__ import annotations

import importlib
import json
import re
import sys
import time
from pathlib import Path

import pytest
import yaml

import dct_cli
from ansible_collection import link_tree
from conftest import unique_id
from declarative_ct.health import record
from declarative_ct.health.check import HealthCheck
from declarative_ct.health.prober import Prober, Target
from declarative_ct.reconcile import convert
from declarative_ct.runtime import Runtime
from declarative_ct.service.supervisor import Supervisor
from declarative_ct.spec.load import load_mapping
from dct_cli import Dct

pytestmark = pytest.mark.integration

LOOP = ["/bin/sh", "-c", "trap 'exit 0' TERM; while :; do sleep 0.2; done"]
HTTP = {"http": {"port": 8080, "path": "/healthz"}, "interval": "2s", "timeout": "1s"}  # as a spec says it


def _managed(runtime, rootfs: str, health: dict | None, prefix: str = "hv"):
    """A running container made as apply makes it from a spec declaring ``health`` (or none)."""
    name = unique_id(prefix)
    source = f"/specs/{name}.yaml"
    fields = {"name": name, "rootfs": rootfs, "process": {"args": LOOP}, "stop_timeout": 1}
    doc = load_mapping({**fields, "health": health} if health else fields, source)
    config, process = convert.to_runtime(doc.spec.desired(), source, runtime)
    c = runtime.create(name, config)
    c.run(process)
    return c


def _unhealthy(c, streak: int = 3) -> dict:
    """The record of ``c``'s run after one pass and ``streak`` failures, as the prober keeps it."""
    check = HealthCheck("http", port=8080, path="/healthz", interval=2.0, timeout=1.0)
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


def test_the_tui_backend_reads_the_record_once_per_change(runtime, busybox_rootfs):
    from tui.backend.real import RealBackend

    probed, plain = _managed(runtime, busybox_rootfs, HTTP), _managed(runtime, busybox_rootfs, None)
    backend = RealBackend(runtime.root)
    try:
        first = {r.id: r for r in backend.sample()}
        assert first[probed.id].health["status"] == "starting" and first[probed.id].health["stale"] is True
        assert first[probed.id].health_check.describe() == "http GET :8080/healthz"
        assert first[plain.id].health is None and first[plain.id].health_check is None
        assert backend._kept[plain.id].record is None  # no record, no check: nothing shown

        assert record.store(probed.state_dir, _unhealthy(probed))
        second = {r.id: r for r in backend.sample()}
        assert (second[probed.id].health["status"], second[probed.id].health["failing_streak"]) == ("unhealthy", 3)
        kept = backend._kept[probed.id]
        parsed = kept.record
        backend.sample()
        assert kept.record is parsed  # the file did not change: not read again
    finally:
        backend.close()


SLEEP = ["/bin/sh", "-c", "trap 'exit 0' TERM; while :; do sleep 0.1; done"]


@pytest.fixture
def dct(state_root):
    yield from dct_cli.runner(dct_cli.Dct, state_root, unique_id)


def _write(path: Path, *docs: dict) -> str:
    path.write_text("---\n".join(yaml.safe_dump(d, sort_keys=False) for d in docs))
    return str(path)


def _rows(dct: Dct, *paths: str) -> dict:
    return {r["name"]: r for r in json.loads(dct.ok("status", "--json", *paths).stdout)}


def _probe_until_healthy(rt: Runtime, name: str, check: HealthCheck) -> None:
    """Run the prober on ``name`` as ``dct watch`` does for its spec, until its record is healthy."""
    with Prober(rt) as prober:
        prober.add(Target(name, check))
        deadline = time.monotonic() + 10
        while (record.read(rt.load(name).state_dir) or {}).get("status") != "healthy" and time.monotonic() < deadline:
            time.sleep(0.05)
    assert record.read(rt.load(name).state_dir)["status"] == "healthy"


def test_health_added_to_a_running_container_is_shown_as_probed(dct, busybox_rootfs, tmp_path):
    """Regression (review of issue 16, A1): health is a mutable field, so the label keeps the
    creation-time spec; dct status read the check from it and showed no HEALTH for a container the
    supervisor probed; the TUI and the Ansible facts did the same."""
    name = dct.new_id("late")
    base = {"name": name, "rootfs": busybox_rootfs, "process": {"args": SLEEP}, "stop_timeout": 1}
    path = tmp_path / "spec.yaml"
    dct.ok("apply", _write(path, base))
    _write(path, {**base, "health": {"exec": ["true"], "interval": "500ms"}})
    assert "nothing to do" in dct.ok("apply", str(path)).stdout  # health is mutable: no recreate
    rt = Runtime(dct.root)
    _probe_until_healthy(rt, name, HealthCheck("exec", command=("true",), interval=0.5))

    for rows in (_rows(dct, str(path)), _rows(dct)):  # the spec's check; without it, the record's
        health = rows[name]["health"]
        assert health is not None, "probed and healthy, but dct status --json says no health"
        assert (health["status"], health["check"]) == ("healthy", "exec true")

    from tui.backend.real import RealBackend

    for paths in ([], [str(path)]):
        backend = RealBackend(rt.root, paths)
        try:
            backend.desired()  # loads the specs, as the app's first refresh does
            reading = {r.id: r for r in backend.sample()}[name]
        finally:
            backend.close()
        assert reading.health["status"] == "healthy" and reading.health_check.interval == 0.5, paths


def test_health_removed_from_the_spec_is_no_longer_shown(dct, busybox_rootfs, tmp_path):
    """A spec that no longer declares health: its old record is not shown as ``healthy?`` forever
    by a status of that spec (nothing probes it any more)."""
    name = dct.new_id("gone")
    base = {"name": name, "rootfs": busybox_rootfs, "process": {"args": SLEEP}, "stop_timeout": 1}
    path = tmp_path / "spec.yaml"
    dct.ok("apply", _write(path, {**base, "health": {"exec": ["true"], "interval": "500ms"}}))
    rt = Runtime(dct.root)
    _probe_until_healthy(rt, name, HealthCheck("exec", command=("true",), interval=0.5))
    assert _rows(dct, str(path))[name]["health"]["status"] == "healthy"

    _write(path, base)
    assert "nothing to do" in dct.ok("apply", str(path)).stdout
    assert _rows(dct, str(path))[name]["health"] is None
    table = dct.ok("status", str(path)).stdout.splitlines()
    assert _health_cell(table, name) == "-" and not any("nothing probes" in line for line in table)

    from tui.backend.real import RealBackend

    backend = RealBackend(rt.root, [str(path)])
    try:
        backend.desired()
        reading = {r.id: r for r in backend.sample()}[name]
    finally:
        backend.close()
    assert reading.health is None and reading.health_check is None


def test_a_changed_interval_judges_staleness_by_the_new_one(dct, busybox_rootfs, tmp_path):
    """The record's last result is 60 s old, made by a 2 s check: late for it; the spec now says
    every 1h (the check the supervisor runs): on time. Without the spec, the probe's check judges."""
    name = dct.new_id("slow")
    base = {"name": name, "rootfs": busybox_rootfs, "process": {"args": SLEEP}, "stop_timeout": 1}
    path = tmp_path / "spec.yaml"
    often = {"exec": ["true"], "interval": "2s", "timeout": "1s"}
    dct.ok("apply", _write(path, {**base, "health": often}))
    rt = Runtime(dct.root)
    c = rt.load(name)
    check = HealthCheck("exec", command=("true",), interval=2.0, timeout=1.0)
    t0 = time.time() - 61
    assert record.store(c.state_dir, record.add_result(record.new(c.state().created, t0, t0),
                                                       record.result(t0 + 0.5, t0 + 1, 0, ""), check))
    supervisor = Supervisor.acquire(rt.root, [str(path)], rt.data_root)  # as if it probed: only lateness counts
    try:
        assert _rows(dct, str(path))[name]["health"]["stale"] is True
        _write(path, {**base, "health": {**often, "interval": "1h"}})
        assert "nothing to do" in dct.ok("apply", str(path)).stdout
        assert _rows(dct, str(path))[name]["health"]["stale"] is False
        assert _rows(dct)[name]["health"]["stale"] is True  # no spec: judged by the check that probed it
    finally:
        supervisor.release()
