"""``health.on_unhealthy: restart`` in the plan, pure (fake clock, a health record in a temp directory):
the restart policy's backoff and count, never/on-failure:N, the cause and notes, and no read without it."""

from __future__ import annotations

import os
from types import SimpleNamespace

import pytest

from declarative_ct.health import record as health_record
from declarative_ct.reconcile import restart, unhealthy
from declarative_ct.reconcile.plan import Observed, make_plan
from declarative_ct.runtime import Status
from declarative_ct.spec.model import ContainerSpec
from declarative_ct.units import format_time


T0 = 1_700_000_000.0
RUN = format_time(T0 - 10)  # the run was created 10 s before T0
HEALTH = {"tcp": {"port": 80}, "interval": "1s", "retries": 1, "on_unhealthy": "restart"}


def _doc(restart_policy: str = "always", health: dict | None = HEALTH):
    spec = ContainerSpec.model_validate({"name": "w", "rootfs": "host", "process": {"args": ["/bin/true"]},
                                         "restart": restart_policy, **({"health": health} if health else {})})
    return SimpleNamespace(spec=spec, source="/specs/w.yaml")


def _observed(doc, state_dir, stored=None, run=RUN) -> dict:
    container = SimpleNamespace(state_dir=str(state_dir))
    return {"w": Observed("w", Status.RUNNING, True, doc.source, doc.spec.normalized(), {}, container, created=run,
                          restart=stored)}


def _health(state_dir, status="unhealthy", since=T0, run=RUN, output="connection refused") -> None:
    rec = {**health_record.new(run, T0 - 10, T0 - 10), "status": status, "since": format_time(since),
           "log": [health_record.result(since, since, 1 if status == "unhealthy" else 0, output)]}
    with open(os.path.join(state_dir, health_record.RECORD_FILE), "w") as f:
        import json

        json.dump(rec, f)


@pytest.mark.parametrize("policy", ["never", "always", "on-failure"])
def test_unhealthy_waits_for_the_backoff_then_restarts_whatever_the_policy(tmp_path, policy):
    doc = _doc(policy)
    _health(tmp_path)
    plan = make_plan([doc], _observed(doc, tmp_path), now=T0 + 0.2)
    assert plan.actions == [] and plan.next_restart == T0 + 0.5
    assert plan.notes == ["w: unhealthy (exit 1: connection refused), restart in 0.3 s (attempt 1)"]
    stored = plan.restarts["w"]
    assert stored["last_exit"]["reason"] == "unhealthy" and stored["exited_run"] == RUN
    plan = make_plan([doc], _observed(doc, tmp_path, stored), now=T0 + 0.5)
    [action] = plan.actions
    assert str(action) == ("w: lifecycle (restart: unhealthy (exit 1: connection refused); attempt 1, "
                           "after 500ms backoff)")
    assert action.steps == ("stop", "destroy", "create", "start")
    assert action.restart["restarts"] == 1 and action.restart["last_exit"]["reason"] == "unhealthy"
    assert restart.exit_reason(action.restart["last_exit"]) == "unhealthy"


def test_the_second_restart_waits_longer_and_the_count_resets_after_a_long_run(tmp_path):
    doc = _doc()
    after_first = {"policy": "always", "restarts": 1, "exited_run": "old", "restarted_at": T0 - 20}
    _health(tmp_path)
    plan = make_plan([doc], _observed(doc, tmp_path, after_first), now=T0 + 0.6)
    assert plan.actions == [] and plan.next_restart == T0 + 1.0  # backoff(1)
    plan = make_plan([doc], _observed(doc, tmp_path, plan.restarts["w"]), now=T0 + 1.0)
    assert "attempt 2, after 1s backoff" in plan.actions[0].cause
    # a run that lasted RESET_AFTER counts from 0 again
    long_run = format_time(T0 - restart.RESET_AFTER - 1)
    _health(tmp_path, run=long_run)
    plan = make_plan([doc], _observed(doc, tmp_path, after_first, run=long_run), now=T0 + 0.5)
    assert "attempt 1, after 500ms backoff" in plan.actions[0].cause


def test_on_failure_n_keeps_its_limit(tmp_path):
    doc = _doc("on-failure:2")
    _health(tmp_path)
    stored = {"policy": "on-failure:2", "restarts": 2, "exited_run": "old", "restarted_at": T0 - 20}
    plan = make_plan([doc], _observed(doc, tmp_path, stored), now=T0 + 100)
    assert plan.actions == [] and plan.next_restart is None
    assert plan.notes == ["w: unhealthy (exit 1: connection refused), left running: restart: on-failure:2, "
                          "gave up after 2 restarts"]
    stored["restarts"] = 1
    plan = make_plan([doc], _observed(doc, tmp_path, stored), now=T0 + 100)
    assert "attempt 2 of 2" in plan.actions[0].cause


def test_healthy_starting_another_runs_record_or_none_plan_nothing(tmp_path):
    doc = _doc()
    for status in ("healthy", "starting"):
        _health(tmp_path, status=status)
        assert make_plan([doc], _observed(doc, tmp_path), now=T0 + 100).actions == []
    _health(tmp_path, run="2020-01-01T00:00:00Z")  # the record of another run
    assert make_plan([doc], _observed(doc, tmp_path), now=T0 + 100).actions == []
    none = _doc(health={**HEALTH, "on_unhealthy": "none"})
    _health(tmp_path)
    assert make_plan([none], _observed(none, tmp_path), now=T0 + 100).actions == []


def test_recovered_before_the_restart_cancels_it(tmp_path):
    doc = _doc()
    _health(tmp_path)
    waiting = make_plan([doc], _observed(doc, tmp_path), now=T0 + 0.1).restarts["w"]
    _health(tmp_path, status="healthy", since=T0 + 0.2)
    plan = make_plan([doc], _observed(doc, tmp_path, waiting), now=T0 + 0.3)
    assert plan.actions == [] and plan.next_restart is None
    assert plan.restarts["w"]["next_restart"] is None and plan.restarts["w"]["exited_run"] is None


def test_no_health_record_is_read_without_on_unhealthy_restart(tmp_path, monkeypatch):
    def refuse(state_dir):
        raise AssertionError(f"read {state_dir}")

    monkeypatch.setattr(unhealthy.health_record, "read", refuse)
    for doc in (_doc(health=None), _doc(health={**HEALTH, "on_unhealthy": "none"})):
        assert make_plan([doc], _observed(doc, tmp_path), now=T0).actions == []
