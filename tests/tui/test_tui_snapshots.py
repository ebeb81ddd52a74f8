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


def _app() -> DctApp:
    backend = _backend()
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
