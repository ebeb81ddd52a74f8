"""Snapshot tests (pytest-textual-snapshot) of the key screens, on fixed data.

Fixed: the fake backend's counters, a collector clock that advances 1 s per pass, a wall clock
that stands still (uptimes), no own-CPU figure, and the number of passes (the refresh timer is
an hour; each test makes its passes). After a deliberate change of the look, review the SVGs with
``pytest tests/tui/test_tui_snapshots.py --snapshot-update`` and commit them.
"""

from __future__ import annotations

import os

import pytest

from tui.app import DctApp
from fake_backend import FakeBackend, FakeContainer, fake_fleet
from tui.collector import Collector
from tui.desired import DesiredEntry, DesiredView, PlanView
from tui.processes import ProcInfo
from declarative_ct.health.check import HealthCheck
from declarative_ct.units import format_time

os.environ.setdefault("TEXTUAL_ANIMATIONS", "none")

WALL = 1_700_000_000.0
SPEC = {"name": "c1", "rootfs": "host", "process": {"args": ["sh", "-c", "serve"]}, "state": "running",
        "resources": {"memory": 128 << 20}}


def _backend() -> FakeBackend:
    containers = fake_fleet(3, started=WALL)
    containers.append(FakeContainer("hand-made", started=WALL - 7200, owned=False, mem_limit=None, pids_limit=None))
    desired = DesiredView({
        "c1": DesiredEntry("c1", "drifted", "running", cause="resources.memory 64Mi → 128Mi", action="live",
                           steps=("set",), desired=SPEC, applied={**SPEC, "resources": {"memory": 64 << 20}},
                           observed_resources={"memory": 64 << 20}, live_changes={"memory": 128 << 20},
                           source="/specs/web.yaml", line=1, restarts=0),
        "c2": DesiredEntry("c2", "in-sync", "paused", restarts=0),
        "c3": DesiredEntry("c3", "exited", "running", cause="exited 0, restart: never", restarts=2),
        "hand-made": DesiredEntry("hand-made", "unmanaged"),
        "web": DesiredEntry("web", "missing", "running", cause="not created yet",
                            desired={**SPEC, "name": "web"}),
    })
    plan = PlanView(actions=({"container": "c1", "class": "live", "cause": "resources.memory 64Mi → 128Mi",
                              "steps": ["set"], "resources": {"memory": 128 << 20}},
                             {"container": "web", "class": "create", "cause": "not created yet",
                              "steps": ["create", "start"], "resources": {}},
                             {"container": "c3", "class": "lifecycle", "cause": "restart: exited 1",
                              "steps": ["destroy", "create", "start"], "resources": {}}),
                    notes=("hand-made: unmanaged (not made by declarative-ct), left alone",), fingerprint="f")
    backend = FakeBackend(containers, specs_given=True, desired_view=desired, plan_view=plan)
    backend.procs["c1"] = [ProcInfo(1001, 1, "root", 0.0, 1 << 20, 1, "sleeping", "sh -c serve", 1.0),
                           ProcInfo(1010, 1001, "nobody", 12.5, 24 << 20, 4, "running", "python3 -m http.server",
                                    2.0),
                           ProcInfo(1011, 1010, "nobody", 0.0, 2 << 20, 1, "sleeping", "sleep 30", 3.0)]
    backend.spec_texts["c1"] = ("/specs/web.yaml:1", "name: c1\nrootfs: host\nresources: {memory: 128Mi}\n")
    return backend


def _app(backend: FakeBackend | None = None) -> DctApp:
    backend = backend or _backend()
    t = [0.0]

    def clock() -> float:
        t[0] += 1.0
        return t[0]

    return DctApp(backend, interval=3600,
                  collector=Collector(backend, clock=clock, wall=lambda: WALL, self_usage=lambda: (None, None)))


def _passes(n: int, then: tuple[str, ...] = (), wait_for: str | None = None):
    """``run_before``: wait for the first pass, make ``n`` more, press ``then``, wait for a widget."""

    async def run_before(pilot) -> None:
        app = pilot.app
        while app.ticks < 1:
            await pilot.pause(0.02)
        for _ in range(n):
            want = app.ticks + 1
            while app._collecting:
                await pilot.pause(0.02)
            app.refresh_now()
            while app.ticks < want:
                await pilot.pause(0.02)
        await pilot.press(*then)
        while app._collecting:  # the pass a new screen asks for (the container screen's focus)
            await pilot.pause(0.02)
        if wait_for is not None:
            for _ in range(250):
                if wait_for == "plan" and getattr(app.screen, "plan", None) is not None:
                    break
                if wait_for == "spec" and getattr(app.screen, "spec_title", None) is not None:
                    break
                if wait_for == "logs" and len(getattr(app.screen, "logs", ())) >= 7:
                    break
                await pilot.pause(0.02)
        await pilot.pause()

    return run_before


@pytest.mark.parametrize("size", [(120, 30), (80, 24)], ids=["120x30", "80x24"])
def test_containers_screen(snap_compare, size):
    assert snap_compare(_app(), terminal_size=size, run_before=_passes(2))


def test_container_processes_tab(snap_compare):
    assert snap_compare(_app(), terminal_size=(100, 24), run_before=_passes(1, ("enter",)))


def test_container_stats_tab(snap_compare):
    assert snap_compare(_app(), terminal_size=(100, 36), run_before=_passes(6, ("enter", "i")))


def test_container_spec_tab(snap_compare):
    assert snap_compare(_app(), terminal_size=(100, 24), run_before=_passes(1, ("enter", "d"), wait_for="spec"))


def test_container_logs_tab(snap_compare):
    """Times (dim), stderr lines (red), the run shown, the keys for times and the previous run."""
    app = _app()
    c1 = app.backend.containers["c1"]
    c1.run = 2
    c1.logs = [("stdout", "listening on :8080"), ("stderr", "warn: slow request /api (2.1 s)"),
               ("stdout", "GET /api 200"), ("stderr", "error: upstream timeout"), ("stdout", "GET / 200"),
               ("stdout", "GET /health 200"), ("stdout", "tab\tseparated")]
    assert snap_compare(app, terminal_size=(100, 24), run_before=_passes(1, ("enter", "l"), wait_for="logs"))


def test_plan_modal(snap_compare):
    assert snap_compare(_app(), terminal_size=(120, 30), run_before=_passes(1, ("a",), wait_for="plan"))


HTTP = HealthCheck("http", port=8080, path="/healthz", interval=2, timeout=1, retries=3, start_period=5)
EXEC = HealthCheck("exec", command=("test", "-f", "/tmp/ready"), interval=2, timeout=1, retries=3)


def _result(ago: float, code: int, output: str, took: float = 0.012) -> dict:
    return {"start": format_time(WALL - ago - took), "end": format_time(WALL - ago), "exit_code": code,
            "output": output}


def _health_backend() -> FakeBackend:
    """c1 healthy, c4 unhealthy for three probes (its row highlighted), c5 starting (no probe yet),
    c6 healthy but stale (nobody probes it), c2 paused with a check; c3 and hand-made declare none."""
    backend = _backend()
    c = backend.containers
    c["c1"].health_check = HTTP
    c["c1"].health = {"status": "healthy", "failing_streak": 0, "since": format_time(WALL - 50),
                      "check": HTTP.describe(), "stale": False,
                      "log": [_result(8 - 2 * i, 0, "HTTP/1.1 200 OK") for i in range(5)]}
    c["c2"].health_check = EXEC
    c["c2"].health = {"status": "healthy", "failing_streak": 0, "since": format_time(WALL - 90),
                      "check": EXEC.describe(), "stale": False, "log": [_result(60, 0, "")]}
    c["c4"] = FakeContainer("c4", pid=1004, started=WALL - 600, health_check=HTTP, health={
        "status": "unhealthy", "failing_streak": 3, "since": format_time(WALL - 2), "check": HTTP.describe(),
        "stale": False, "log": [_result(8, 0, "HTTP/1.1 200 OK"), _result(6, 1, "HTTP/1.1 503 Service Unavailable"),
                                _result(4, 1, "connection refused", took=0.002),
                                _result(2, 1, "timed out after 1s", took=1.0)]})
    c["c5"] = FakeContainer("c5", pid=1005, started=WALL - 3, health_check=EXEC, health={
        "status": "starting", "failing_streak": 0, "since": None, "check": EXEC.describe(), "stale": False,
        "log": []})
    c["c6"] = FakeContainer("c6", pid=1006, started=WALL - 900, health_check=EXEC, health={
        "status": "healthy", "failing_streak": 0, "since": format_time(WALL - 800), "check": EXEC.describe(),
        "stale": True, "log": [_result(185, 0, "ready")]})
    return backend


@pytest.mark.parametrize("size", [(120, 30), (80, 24)], ids=["120x30", "80x24"])
def test_containers_screen_health(snap_compare, size):
    """The HEALTH column after STATUS once a container declares a check: healthy, unhealthy with its
    streak (the whole row on red), starting, stale (``?``), ``-`` without a check."""
    assert snap_compare(_app(_health_backend()), terminal_size=size, run_before=_passes(2))


def test_container_health_tab(snap_compare):
    """The probe history of an unhealthy container: status, streak and since, the check and its
    timing, the last results newest first with time, age, duration, exit code and output."""
    assert snap_compare(_app(_health_backend()), terminal_size=(100, 24),
                        run_before=_passes(1, ("down", "down", "down", "enter", "h")))
