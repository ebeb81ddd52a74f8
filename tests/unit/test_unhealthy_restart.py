"""``health.on_unhealthy: restart`` in the plan, pure (fake clock, a health record in a temp directory):
the restart policy's backoff and count, never/on-failure:N, the cause and notes, and no read without it."""

from __future__ import annotations

import os
from types import SimpleNamespace

import pytest

from declarative_ct.health import record as health_record
from declarative_ct.health.check import HealthCheck
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


CHECK = HealthCheck.from_normalized(_doc().spec.normalized()["health"])  # the check the prober probes by


def _health(state_dir, status="unhealthy", since=T0, run=RUN, output="connection refused", last=None,
            started=T0 - 10, check=CHECK) -> None:
    """A record of ``check`` for ``run`` (started at ``started``), ``status`` since ``since``, its last
    result at ``last`` (default: ``since``)."""
    last = since if last is None else last
    rec = {**health_record.new(run, started, started), "status": status, "since": format_time(since),
           "probe": check.to_normalized(), "check": check.describe(),
           "log": [health_record.result(last, last, 1 if status == "unhealthy" else 0, output)]}
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
    # a run that lasted RESET_AFTER from its start counts from 0 again
    long_run = format_time(T0 - restart.RESET_AFTER - 1)
    _health(tmp_path, run=long_run, started=T0 - restart.RESET_AFTER - 1)
    plan = make_plan([doc], _observed(doc, tmp_path, after_first, run=long_run), now=T0 + 0.5)
    assert "attempt 1, after 500ms backoff" in plan.actions[0].cause


def test_the_reset_window_counts_from_the_runs_start_not_its_create(tmp_path):
    """A run created stopped long ago and started 10 s before it turned unhealthy is a short run:
    its count is not reset (it was, when RESET_AFTER was counted from the create)."""
    doc = _doc()
    after_first = {"policy": "always", "restarts": 1, "exited_run": "old", "restarted_at": T0 - 20}
    created_long_ago = format_time(T0 - restart.RESET_AFTER - 100)
    _health(tmp_path, run=created_long_ago, started=T0 - 10)
    plan = make_plan([doc], _observed(doc, tmp_path, after_first, run=created_long_ago), now=T0 + 1.0)
    assert "attempt 2, after 1s backoff" in plan.actions[0].cause


def test_on_failure_n_keeps_its_limit(tmp_path):
    doc = _doc("on-failure:2")
    _health(tmp_path)
    stored = {"policy": "on-failure:2", "restarts": 2, "exited_run": "old", "restarted_at": T0 - 20}
    _health(tmp_path, last=T0 + 99.5)  # probed on, still unhealthy
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
        _health(tmp_path, status=status, last=T0 + 99.5)
        assert make_plan([doc], _observed(doc, tmp_path), now=T0 + 100).actions == []
    _health(tmp_path, run="2020-01-01T00:00:00Z", last=T0 + 99.5)  # the record of another run
    assert make_plan([doc], _observed(doc, tmp_path), now=T0 + 100).actions == []
    none = _doc(health={**HEALTH, "on_unhealthy": "none"})
    _health(tmp_path, last=T0 + 99.5)
    assert make_plan([none], _observed(none, tmp_path), now=T0 + 100).actions == []
    _health(tmp_path, last=T0 + 99.5)  # the control: this record restarts
    assert make_plan([doc], _observed(doc, tmp_path, {"restarts": 0}), now=T0 + 100).actions


def test_a_stale_record_waits_for_a_fresh_result(tmp_path):
    """Unhealthy, but nobody has probed for longer than interval + timeout + STALE_WAIT (a supervisor
    stopped, a prober behind): no restart, no note, until a fresh result says it again."""
    doc = _doc()
    _health(tmp_path)  # turned unhealthy at T0, last probed then; interval 1 s, timeout 5 s (defaults)
    gap = CHECK.interval + CHECK.timeout + health_record.STALE_WAIT
    plan = make_plan([doc], _observed(doc, tmp_path), now=T0 + gap + 0.1)
    assert plan.actions == [] and plan.notes == [] and plan.next_restart is None and "w" not in plan.restarts
    _health(tmp_path, last=T0 + gap)  # probed again: still unhealthy
    plan = make_plan([doc], _observed(doc, tmp_path), now=T0 + gap + 0.1)
    assert plan.actions, "a fresh unhealthy record restarts (the backoff ran out long ago)"


def test_a_record_made_by_another_check_is_ignored(tmp_path):
    """The spec's check changed (another port); the record says unhealthy by the old one: no restart
    until the prober has a result of the new check."""
    doc = _doc()
    old = HealthCheck.from_normalized({**doc.spec.normalized()["health"], "tcp": {"port": 81}})
    _health(tmp_path, check=old, last=T0 + 99.5)
    plan = make_plan([doc], _observed(doc, tmp_path), now=T0 + 100)
    assert plan.actions == [] and plan.notes == [] and "w" not in plan.restarts
    _health(tmp_path, last=T0 + 99.5)  # the same record, made by the current check
    assert make_plan([doc], _observed(doc, tmp_path), now=T0 + 100).actions


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
