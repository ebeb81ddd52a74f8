"""The health view the front doors show (declarative_ct.service.health_view): hand-written records
in a state root's layout (``<root>/<id>/health.json`` beside ``state.json``), read as ``dct
status``, the TUI and the Ansible module read them; starting without a record, another run's record
ignored, stale when nobody probes or the last result is old; the cell and the note."""

from __future__ import annotations

import json
import os

import pytest

from declarative_ct.health import record
from declarative_ct.health.check import HealthCheck
from declarative_ct.service import health_view
from declarative_ct.service.supervisor import Supervisor
from declarative_ct.units import format_time

NOW = 1_800_000_000.0
RUN = format_time(NOW - 60)  # the container state's created time: identifies its run
HEALTH = {"exec": ["test", "-f", "/tmp/ready"], "http": None, "tcp": None, "interval": 2.0, "timeout": 1.0,
          "retries": 3, "start_period": 0.0, "on_unhealthy": "none"}
CHECK = HealthCheck.from_normalized(HEALTH)


def _result(ago: float, code: int, output: str = "") -> dict:
    return {"start": format_time(NOW - ago - 0.05), "end": format_time(NOW - ago), "exit_code": code,
            "output": output}


def _record(status: str, streak: int, *results: dict, run: str = RUN) -> dict:
    return {"status": status, "failing_streak": streak, "since": results[-1]["end"] if results else format_time(NOW),
            "run": run, "started_at": RUN, "check": CHECK.describe(), "log": list(results)}


@pytest.fixture
def state_dir(tmp_path) -> str:
    """A container's state directory in a state root (``<root>/web``, with a state.json)."""
    path = tmp_path / "root" / "web"
    path.mkdir(parents=True)
    (path / "state.json").write_text(json.dumps({"id": "web", "created": RUN}))
    return str(path)


def _write(state_dir: str, data: object) -> None:
    with open(os.path.join(state_dir, record.RECORD_FILE), "w") as f:
        f.write(data if isinstance(data, str) else json.dumps(data))


def _view(state_dir: str, status: str = "running", probing: bool = True, applied: dict | None = None,
          now: float = NOW) -> dict | None:
    check = health_view.check_of({"health": HEALTH} if applied is None else applied)
    return health_view.view(check, record.read(state_dir), status, RUN, probing, now)


def test_no_check_no_view_whatever_the_record(state_dir):
    _write(state_dir, _record("healthy", 0, _result(1, 0)))
    assert _view(state_dir, applied={}) is None
    assert _view(state_dir, applied={"health": None}) is None
    assert health_view.check_of({"health": {"exec": ["true"], "tcp": {"port": 1}}}) is None  # unreadable: none


def test_declared_without_record_is_starting_while_it_runs(state_dir):
    assert _view(state_dir, now=NOW - 55) == {"status": "starting", "failing_streak": 0, "since": None,
                                "check": "exec test -f /tmp/ready", "log": [], "stale": False}
    assert _view(state_dir, status="paused")["status"] == "starting"
    assert _view(state_dir, status="created") is None  # not started: nothing starts yet
    assert _view(state_dir, status="stopped") is None


def test_the_record_as_it_is(state_dir):
    _write(state_dir, _record("unhealthy", 3, _result(7, 0, "ok"), _result(5, 1, "no"), _result(3, 1, "no"),
                              _result(1, 1, "missing\n")))
    view = _view(state_dir)
    assert (view["status"], view["failing_streak"], view["stale"]) == ("unhealthy", 3, False)
    assert [e["exit_code"] for e in view["log"]] == [0, 1, 1, 1] and view["log"][-1]["output"] == "missing\n"
    assert view["since"] == view["log"][-1]["end"] and view["check"] == CHECK.describe()
    assert health_view.cell(view) == "unhealthy (3)"
    assert health_view.last_seen(view, NOW) == "1s ago"
    stopped = _view(state_dir, status="stopped")  # the last record of a run that ended: kept, not stale
    assert stopped["status"] == "unhealthy" and stopped["stale"] is False


def test_a_record_of_another_run_or_unreadable_reads_as_none(state_dir):
    _write(state_dir, _record("unhealthy", 3, _result(1, 1), run=format_time(NOW - 3600)))
    assert _view(state_dir)["status"] == "starting" and _view(state_dir)["log"] == []
    for junk in ("{not json", "[]", json.dumps({"status": "sick"})):
        _write(state_dir, junk)
        assert _view(state_dir)["status"] == "starting"


def test_stale_when_nobody_probes_or_the_last_result_is_old(state_dir):
    _write(state_dir, _record("healthy", 0, _result(1, 0)))
    assert _view(state_dir, probing=False)["stale"] is True
    assert health_view.cell(_view(state_dir, probing=False)) == "healthy?"
    late = health_view.stale_after(CHECK)  # 3 intervals + timeout + grace
    assert late == 3 * 2.0 + 1.0 + health_view.STALE_GRACE
    assert _view(state_dir, now=NOW - 1 + late - 0.5)["stale"] is False
    assert _view(state_dir, now=NOW - 1 + late + 0.5)["stale"] is True  # a supervisor that does not probe it
    assert _view(state_dir, status="paused", probing=False)["stale"] is False  # not probed while paused
    os.unlink(os.path.join(state_dir, record.RECORD_FILE))  # no probe yet: counted from the run's start
    assert _view(state_dir, now=NOW - 60 + late - 1)["stale"] is False
    assert _view(state_dir, now=NOW - 60 + late + 1)["stale"] is True


def test_read_of_a_container_reads_its_state_dir(state_dir):
    class Loaded:  # what health_view.read uses of a runtime Container
        def __init__(self, path: str) -> None:
            self.state_dir = path

        def state(self):
            return type("State", (), {"created": RUN})()

        def status(self):
            return type("Status", (), {"value": "running"})()

    _write(state_dir, _record("healthy", 0, _result(2, 0, "ready")))
    view = health_view.read(Loaded(state_dir), {"health": HEALTH}, True, NOW)
    assert view["status"] == "healthy" and view["log"][0]["output"] == "ready"
    assert health_view.read(Loaded(state_dir), {}, True, NOW) is None


def test_cells():
    assert health_view.cell(None) == "-"
    assert health_view.cell({"status": "starting", "stale": False}) == "starting"
    assert health_view.cell({"status": "unhealthy", "failing_streak": 12, "stale": True}) == "unhealthy (12)?"


def test_the_note_says_why_and_as_of_when():
    fresh = {"status": "healthy", "log": [_result(200, 0)], "stale": True}
    none = {"status": "starting", "log": [], "stale": True}
    ok = {"status": "healthy", "log": [_result(1, 0)], "stale": False}
    assert health_view.stale_note({"a": ok, "b": None}, False, "/run/dct", NOW) is None
    note = health_view.stale_note({"web": fresh, "db": none, "ok": ok}, False, "/run/dct", NOW)
    assert note.startswith("# no supervisor runs on /run/dct: nothing probes")
    assert "(db no probe yet, web 3m20s ago)" in note and "ok" not in note.split("(")[1]
    assert "no recent probe" in health_view.stale_note({"web": fresh}, True, "/run/dct", NOW)


def test_probing_follows_the_supervisor_lock(tmp_path):
    root = str(tmp_path / "root")
    os.makedirs(root)
    assert health_view.probing(root) is False
    supervisor = Supervisor.acquire(root, [], str(tmp_path / "data"))
    try:
        assert health_view.probing(root) is True
    finally:
        supervisor.release()
    assert health_view.probing(root) is False
