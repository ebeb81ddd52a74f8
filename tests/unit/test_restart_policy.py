"""The restart policy, pure: decisions, backoff, the reset window, and how plan uses them (fake clock)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from declarative_ct import units
from declarative_ct.reconcile import restart
from declarative_ct.reconcile.plan import Observed, make_plan
from declarative_ct.runtime import Runtime, Status
from declarative_ct.spec.model import ContainerSpec

T0 = 1_700_000_000.0  # a fixed wall-clock time (epoch seconds)
RUN = "2023-11-14T22:13:10.000000000Z"  # the run's created time = T0 - 10 s
EXITED = "2023-11-14T22:13:20.000000000Z"  # = T0


def _exit(code: int = 1, at: str = EXITED, oom: bool = False) -> dict:
    return {"pid": 42, "exit_code": code, "signal": code - 128 if code > 128 else None, "exited_at": at,
            "oom_killed": oom}


def _decide(policy: str, stored=None, code: int = 1, now: float = T0 + 100, created: float | None = T0 - 10,
            run: str = RUN, exit_record: dict | None = None):
    return restart.decide(policy, stored, run, exit_record if exit_record is not None else _exit(code), created, now)


def test_times_round_trip():
    assert units.parse_time(EXITED) == T0
    assert units.parse_time("2023-11-14T22:13:20.250000000Z") == T0 + 0.25
    assert units.parse_time("garbage") is None and units.parse_time(None) is None
    assert units.format_time(T0 + 0.5) == "2023-11-14T22:13:20.500Z"
    assert units.format_time(None) is None


@pytest.mark.parametrize("text, kind, count", [("never", "never", None), ("always", "always", None),
                                               ("on-failure", "on-failure", None), ("on-failure:3", "on-failure", 3)])
def test_policy_parse(text, kind, count):
    assert restart.Policy.parse(text) == restart.Policy(kind, count)


@pytest.mark.parametrize("text", ["sometimes", "on-failure:0", "always:3", "on-failure:x", "never:1"])
def test_policy_parse_refuses(text):
    with pytest.raises(ValueError):
        restart.Policy.parse(text)


def test_backoff_doubles_from_half_a_second_and_is_capped():
    assert [restart.backoff(n) for n in range(8)] == [0.5, 1, 2, 4, 8, 16, 30, 30]
    assert restart.backoff(10_000) == restart.BACKOFF_MAX
    with pytest.raises(ValueError):
        restart.backoff(-1)


def test_never_is_not_restarted():
    d = _decide("never", code=137)
    assert d.kind == "none" and d.after is None
    assert d.describe("web") == "web: exited (code 137, SIGKILL), not restarted (restart: never)"
    assert d.record["last_exit"]["exit_code"] == 137 and d.record["next_restart"] is None


def test_on_failure_restarts_only_a_failure():
    assert _decide("on-failure", code=0).kind == "none"
    assert _decide("on-failure", code=0).reason == "restart: on-failure, and it exited with code 0"
    assert _decide("on-failure", code=1).kind == "restart"
    assert _decide("always", code=0).kind == "restart"


def test_an_unknown_exit_code_counts_as_a_failure():
    d = restart.decide("on-failure", None, RUN, None, T0 - 10, now=T0)
    assert d.kind == "wait" and d.record["exit_time"] == T0  # first seen now: the backoff counts from here
    assert d.record["last_exit"] is None and d.describe("w") == "w: restart in 0.5 s (on-failure, attempt 1)"
    later = restart.decide("on-failure", d.record, RUN, None, T0 - 10, now=T0 + 0.6)
    assert later.kind == "restart"  # the stored first-seen time is kept: due 0.5 s after it


def test_backoff_from_the_exit_with_a_fake_clock():
    stored = None
    created = T0 - 10
    exit_time = T0
    for attempt, delay in enumerate([0.5, 1, 2, 4, 8, 16, 30, 30], start=1):
        run = f"run-{attempt}"
        record = _exit(1, units.format_time(exit_time))
        early = restart.decide("on-failure", stored, run, record, created, now=exit_time + delay - 0.1)
        assert early.kind == "wait", attempt
        assert early.attempt == attempt and early.remaining == pytest.approx(0.1)
        assert early.record["next_restart"] == pytest.approx(exit_time + delay)
        assert early.describe("w") == f"w: restart in 0.1 s (on-failure, attempt {attempt})"
        due = restart.decide("on-failure", early.record, run, record, created, now=exit_time + delay)
        assert due.kind == "restart" and due.attempt == attempt
        assert due.after["restarts"] == attempt and due.after["next_restart"] is None
        stored = due.after
        created = exit_time + delay  # the new run starts and crashes 1 s later
        exit_time = created + 1


def test_on_failure_n_gives_up_after_n_restarts():
    stored = {"policy": "on-failure:2", "restarts": 2, "exited_run": "older", "restarted_at": T0 - 20}
    d = _decide("on-failure:2", stored)
    assert d.kind == "none" and d.reason == "restart: on-failure:2, gave up after 2 restarts"
    stored["restarts"] = 1
    d = _decide("on-failure:2", stored)
    assert d.kind == "restart" and d.attempt == 2
    assert "(code 1; on-failure, attempt 2 of 2)" in d.describe("w")


def test_the_count_resets_after_a_long_run():
    stored = {"policy": "always", "restarts": 5, "exited_run": "older", "restarted_at": T0 - 100}
    short = _decide("always", stored, created=T0 - 59)  # ran 59 s: keeps counting
    assert short.attempt == 6 and short.record["next_restart"] == T0 + 16
    long = _decide("always", stored, created=T0 - 60)  # ran 60 s: starts again
    assert long.attempt == 1 and long.record["next_restart"] == T0 + 0.5
    # while it runs: reset once it has run 60 s
    assert restart.reset_if_ran(stored, T0, T0 + 59) is None
    assert restart.reset_if_ran(stored, T0, T0 + 60)["restarts"] == 0
    assert restart.reset_if_ran({"restarts": 0}, T0, T0 + 600) is None


def test_an_exit_seen_before_keeps_its_count_and_time():
    first = _decide("always", None, now=T0 + 0.1)
    assert first.kind == "wait"
    again = _decide("always", first.record, now=T0 + 0.2)
    assert again.record == first.record  # stable: nothing new to store


def test_records_on_disk(tmp_path):
    # kept under the data root (outlives the tmpfs state root), never in the state root
    runtime = Runtime(str(tmp_path / "state"), data_root=str(tmp_path / "data"))
    assert restart.load_record(runtime, "web") is None
    restart.save_record(runtime, "web", {"restarts": 2, "next_restart": T0})
    assert restart.load_record(runtime, "web") == {"restarts": 2, "next_restart": T0}
    assert (tmp_path / "data" / "restarts" / "web.json").is_file()
    assert not (tmp_path / "state").exists()
    (tmp_path / "data" / "restarts" / "bad.json").write_text("{not json")
    assert restart.load_record(runtime, "bad") is None
    restart.remove_record(runtime, "web")
    restart.remove_record(runtime, "web")  # gone already: fine
    assert restart.load_record(runtime, "web") is None


def test_a_state_root_path_means_its_default_data_root(tmp_path, monkeypatch):
    # callers that know only the state root (plan.observe) read what apply wrote through the Runtime
    monkeypatch.setenv("DCT_DATA_ROOT", str(tmp_path / "data"))
    state = str(tmp_path / "state")
    restart.save_record(Runtime(state), "web", {"restarts": 1})
    assert restart.load_record(state, "web") == {"restarts": 1}
    assert restart.record_path(state, "web") == str(tmp_path / "data" / "restarts" / "web.json")


@pytest.mark.parametrize("last_exit, reason, described", [
    ({"exit_code": 137, "signal": 9, "oom_killed": False}, "SIGKILL", "code 137, SIGKILL"),
    ({"exit_code": 137, "signal": 9, "oom_killed": True}, "OOM-killed", "code 137, OOM-killed"),
    ({"exit_code": 1, "signal": None, "oom_killed": False}, "", "code 1"),
    ({"exit_code": 143, "signal": 15}, "SIGTERM", "code 143, SIGTERM"),
    ({"exit_code": 192, "signal": 64}, "SIGRTMAX", "code 192, SIGRTMAX"),
    ({"exit_code": 1, "signal": True}, "", "code 1"),  # not a number: no reason made up
    (None, "", "exit code unknown"),
])
def test_exit_reason(last_exit, reason, described):
    assert restart.exit_reason(last_exit) == reason
    assert restart.describe_exit(last_exit) == described


# --- plan: the policy for an exited container ---------------------------------------------------------

def _spec(restart_policy: str, state: str = "running") -> SimpleNamespace:
    spec = ContainerSpec.model_validate({"name": "w", "rootfs": "host", "process": {"args": ["/bin/true"]},
                                         "restart": restart_policy, "state": state})
    return SimpleNamespace(spec=spec, source="/specs/w.yaml")


def _observed(doc, status=Status.STOPPED, exit_record=None, stored=None, created=RUN) -> dict:
    return {"w": Observed("w", status, True, doc.source, doc.spec.normalized(), {}, None, created=created,
                          exit=exit_record, restart=stored)}


def test_plan_follows_the_policy():
    doc = _spec("on-failure")
    plan = make_plan([doc], _observed(doc, exit_record=_exit(137)), now=T0 + 0.2)
    assert plan.actions == [] and plan.notes == ["w: restart in 0.3 s (on-failure, attempt 1)"]
    assert plan.next_restart == T0 + 0.5 and plan.restarts["w"]["next_restart"] == T0 + 0.5
    plan = make_plan([doc], _observed(doc, exit_record=_exit(137), stored=plan.restarts["w"]), now=T0 + 0.5)
    assert [str(a) for a in plan.actions] == ["w: lifecycle (restart: it exited (code 137, SIGKILL; on-failure, attempt 1))"]
    assert plan.actions[0].steps == ("destroy", "create", "start")
    assert plan.actions[0].restart["restarts"] == 1
    assert "restart" not in plan.actions[0].to_dict()
    plan = make_plan([doc], _observed(doc, exit_record=_exit(0)), now=T0 + 5)
    assert plan.actions == [] and plan.notes == ["w: exited (code 0), not restarted (restart: on-failure, and "
                                                 "it exited with code 0)"]


def test_plan_never_and_paused():
    doc = _spec("never")
    plan = make_plan([doc], _observed(doc, exit_record=_exit(1)), now=T0 + 5)
    assert plan.actions == [] and plan.next_restart is None
    paused = _spec("always", state="paused")
    plan = make_plan([paused], _observed(paused, exit_record=_exit(1)), now=T0 + 5)
    assert plan.actions[0].steps == ("destroy", "create", "start", "pause")


def test_plan_a_spec_change_recreates_whatever_the_policy():
    doc = _spec("never")
    observed = _observed(doc, exit_record=_exit(1))
    observed["w"].applied = {**observed["w"].applied, "hostname": "old"}
    plan = make_plan([doc], observed, now=T0 + 5)
    assert [a.kind for a in plan.actions] == ["recreate"]


def test_plan_resets_the_count_of_a_container_that_ran_long_enough():
    doc = _spec("always")
    stored = {"policy": "always", "restarts": 3, "exited_run": "x", "restarted_at": T0 - 100, "next_restart": None}
    plan = make_plan([doc], _observed(doc, status=Status.RUNNING, stored=stored, created=EXITED), now=T0 + 61)
    assert plan.actions == [] and plan.restarts["w"]["restarts"] == 0
    plan = make_plan([doc], _observed(doc, status=Status.RUNNING, stored=stored, created=EXITED), now=T0 + 30)
    assert plan.restarts == {}


def test_plan_starts_a_container_that_apply_stopped_whatever_the_policy():
    doc = _spec("never")
    stored = {"restarts": 2, "stopped_run": RUN, "next_restart": None}
    plan = make_plan([doc], _observed(doc, exit_record=_exit(143), stored=stored), now=T0 + 5)
    assert [str(a) for a in plan.actions] == ["w: lifecycle (stopped → running)"]
    assert plan.actions[0].restart == {"restarts": 0}  # a fresh count
    other_run = {**stored, "stopped_run": "an earlier run"}
    plan = make_plan([doc], _observed(doc, exit_record=_exit(143), stored=other_run), now=T0 + 5)
    assert plan.actions == []  # this run exited by itself: the policy (never) decides


def test_records_under_the_old_state_root_place_move_to_the_data_root_once(tmp_path):
    """An upgrade: records an older dct kept in <root>/#reconcile/ are moved to the data root the
    first time the root is observed (a record already there wins; a broken one is dropped)."""
    from declarative_ct.reconcile.plan import observe
    from declarative_ct.runtime import Runtime

    runtime = Runtime(str(tmp_path / "state"), data_root=str(tmp_path / "data"))
    old = tmp_path / "state" / restart.OLD_RECORD_DIR
    old.mkdir(parents=True)
    (old / "web.json").write_text('{"policy": "always", "restarts": 4, "next_restart": null}')
    (old / "db.json").write_text('{"policy": "always", "restarts": 9}')
    (old / "bad.json").write_text("{torn")
    restart.save_record(runtime, "db", {"policy": "always", "restarts": 1})
    assert observe(runtime) == {}
    assert restart.load_record(runtime, "web")["restarts"] == 4
    assert restart.load_record(runtime, "db")["restarts"] == 1  # the data root's own record wins
    assert restart.load_record(runtime, "bad") is None
    assert not old.exists()
    observe(runtime)  # nothing left to move: fine
