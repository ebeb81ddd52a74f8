"""The health view the front doors show (declarative_ct.health.view): hand-written records in a
state root's layout (``<root>/<id>/health.json`` beside ``state.json``), read as ``dct status``,
the TUI and the Ansible module read them; the check shown (the desired spec's, else the last
probe's, else the created one's); starting without a record, another run's or another probe's
record ignored, stale when nobody probes or the last result is old; the cell and the note."""

from __future__ import annotations

import json
import os

import pytest

from declarative_ct.health import record
from declarative_ct.health.check import HealthCheck
from declarative_ct.health import view as health_view
from declarative_ct.service.supervisor import Supervisor, probing
from declarative_ct.units import format_time

NOW = 1_800_000_000.0
RUN = format_time(NOW - 60)  # the container state's created time: identifies its run
HEALTH = {"exec": ["test", "-f", "/tmp/ready"], "http": None, "tcp": None, "interval": 2.0, "timeout": 1.0,
          "retries": 3, "start_period": 0.0, "on_unhealthy": "none"}
CHECK = HealthCheck.from_normalized(HEALTH)


def _result(ago: float, code: int, output: str = "") -> dict:
    return {"start": format_time(NOW - ago - 0.05), "end": format_time(NOW - ago), "exit_code": code,
            "output": output}


def _record(status: str, streak: int, *results: dict, run: str = RUN, check: HealthCheck = CHECK) -> dict:
    return {"status": status, "failing_streak": streak, "since": results[-1]["end"] if results else format_time(NOW),
            "run": run, "started_at": RUN, "check": check.describe(), "probe": check.to_normalized(),
            "log": list(results)}


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
    late = 3 * 2.0 + 1.0 + record.STALE_SHOWN  # 3 intervals + timeout + the display's slack
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
    assert health_view.read(Loaded(state_dir), {}, True, NOW) == view  # created without: the record's probe
    assert health_view.read(Loaded(state_dir), {"health": HEALTH}, True, NOW, desired=None) is None


def test_cells():
    assert health_view.cell(None) == "-"
    assert health_view.cell({"status": "starting", "stale": False}) == "starting"
    assert health_view.cell({"status": "unhealthy", "failing_streak": 12, "stale": True}) == "unhealthy (12)?"


def test_the_note_says_why_and_as_of_when():
    fresh = {"status": "healthy", "log": [_result(200, 0)], "stale": True}
    none = {"status": "starting", "log": [], "stale": True}
    ok = {"status": "healthy", "log": [_result(1, 0)], "stale": False}
    assert health_view.supervisor_note({"a": ok, "b": None}, False, "/run/dct", NOW) is None
    note = health_view.supervisor_note({"web": fresh, "db": none, "ok": ok}, False, "/run/dct", NOW)
    assert note == ("# no supervisor runs on /run/dct: nothing probes, HEALTH is as of the last probe "
                    "(db no probe yet, web 3m20s ago); run `dct watch` (dct service install)")
    assert "no recent probe" in health_view.supervisor_note({"web": fresh}, True, "/run/dct", NOW)
    assert health_view.supervisor_note({"web": ok}, True, "/run/dct", NOW, ["job"]) is None  # it will restart job


def test_one_note_says_what_is_neither_restarted_nor_probed():
    stale = {"status": "healthy", "log": [_result(5, 0)], "stale": True}
    note = health_view.supervisor_note({"web": stale, "job": None}, False, "/run/dct", NOW, ["job", "cron"])
    assert note == ("# no supervisor runs on /run/dct: restarts wait for the next `dct apply` (cron, job); "
                    "nothing probes, HEALTH is as of the last probe (web 5s ago); "
                    "run `dct watch` (dct service install)")
    assert health_view.supervisor_note({"job": None}, False, "/r", NOW, ["job"]) == (
        "# no supervisor runs on /r: restarts wait for the next `dct apply` (job); "
        "run `dct watch` (dct service install)")


def test_probing_follows_the_supervisor_lock(tmp_path):
    root = str(tmp_path / "root")
    os.makedirs(root)
    assert probing(root) is False
    supervisor = Supervisor.acquire(root, [], str(tmp_path / "data"))
    try:
        assert probing(root) is True
    finally:
        supervisor.release()
    assert probing(root) is False


HTTP = HealthCheck("http", port=8080, path="/healthz", interval=2.0, timeout=1.0)


def test_the_check_shown_is_the_desired_one_else_the_last_probe_else_the_created_one():
    probed = _record("healthy", 0, _result(1, 0), check=HTTP)
    created = {"health": HEALTH}
    assert health_view.shown_check(probed, created) == HTTP  # no spec: what was probed last
    assert health_view.shown_check(None, created) == CHECK  # nothing probed yet: what it was made with
    assert health_view.shown_check({**probed, "probe": None}, {}) is None  # an old record keeps no probe
    desired = {**HEALTH, "interval": 30.0}
    assert health_view.shown_check(probed, created, desired) == HealthCheck.from_normalized(desired)
    assert health_view.shown_check(probed, created, None) is None  # the spec declares none now: nothing shown
    assert health_view.probed_check({"probe": {"exec": ["x"], "tcp": {"port": 1}}}) is None  # unreadable: none


def test_health_added_later_shows_the_probed_record(state_dir):
    """Created without health, health added (no recreate): the prober's record shows, with or without the spec."""
    _write(state_dir, _record("healthy", 0, _result(1, 0, "ok")))
    rec = record.read(state_dir)
    for desired in (health_view.NO_SPEC, HEALTH):
        check = health_view.shown_check(rec, {"health": None}, desired)
        view = health_view.view(check, rec, "running", RUN, True, NOW)
        assert (view["status"], view["check"], view["stale"]) == ("healthy", CHECK.describe(), False)


def test_a_record_of_another_probe_is_not_this_checks(state_dir):
    _write(state_dir, _record("unhealthy", 3, _result(1, 1, "refused"), check=HTTP))
    view = health_view.view(CHECK, record.read(state_dir), "running", RUN, True, NOW)
    assert (view["status"], view["log"], view["check"]) == ("starting", [], CHECK.describe())
    retimed = HealthCheck.from_normalized({**HEALTH, "interval": 30.0, "retries": 1})  # the same probe, new timing
    _write(state_dir, _record("unhealthy", 3, _result(1, 1, "missing")))
    assert health_view.view(retimed, record.read(state_dir), "running", RUN, True, NOW)["failing_streak"] == 3


def test_staleness_follows_the_shown_checks_interval(state_dir):
    """A longer interval in the desired spec: a record probed 40 s ago is on time; with 2 s it is late."""
    _write(state_dir, _record("healthy", 0, _result(40, 0)))
    rec = record.read(state_dir)
    slow = HealthCheck.from_normalized({**HEALTH, "interval": 30.0})
    assert health_view.view(slow, rec, "running", RUN, True, NOW)["stale"] is False
    assert health_view.view(CHECK, rec, "running", RUN, True, NOW)["stale"] is True
