"""``health.on_unhealthy: restart``: a running container its probe found unhealthy is restarted.

The planner (:func:`plan_restart`, from ``plan._plan_one``) reads the health record
(:mod:`declarative_ct.health.record`, in the container's state directory) of a running container
whose spec asks for it, and only of those: a plan of containers without ``health`` reads nothing
more. A record of the current run that says ``unhealthy`` is treated as an exit for the restart
policy (:func:`.restart.decide`): the same record under the data root, the same count and
backoff, counted from when the container turned unhealthy; the count goes back to 0 for a run
that lasted :data:`.restart.RESET_AFTER` from its start (the record's ``started_at``: a container
created stopped and started later counts from the start, not the create) before it turned
unhealthy. Only a record that says it now is acted on: one made by another check (its ``probe``
is not the spec's check: the check changed, the prober has not probed the new one yet) or a stale
one (:func:`~declarative_ct.health.record.is_stale`: no supervisor probes it any more, or it fell
behind) is left alone until a fresh result of the current check comes. The policy that applies:

- ``on_unhealthy: restart`` restarts whatever ``restart:`` says, even ``never`` (the health
  option asked for it): the decision is made as under ``always``;
- but ``on-failure:N`` keeps its limit: after N restarts the container is left running,
  unhealthy, with a plan note.

The restart is a lifecycle action (stop with the spec's stop signal and timeout, destroy, create,
start: a new run, which starts ``starting``); its cause names it (``restart: unhealthy (exit 1:
connection refused); attempt 2, after 1s backoff``). The record's ``last_exit`` says why:
``{"exit_code": null, …, "exited_at": <when it turned unhealthy>, "reason": "unhealthy",
"health": "exit 1: connection refused"}``.
"""

from __future__ import annotations

import math

from ..health import record as health_record
from ..health.check import HealthCheck
from ..runtime import Status
from ..units import format_duration, parse_time
from . import restart as restarting
from .kinds import ActionKind, Step

REASON = "unhealthy"  # last_exit["reason"] of a restart for unhealthiness


def plan_restart(spec, desired: dict, obs, plan, now: float):  # noqa: ANN001, ANN201 - DesiredSpec, Observed, Plan
    """The restart of a running container that is unhealthy under ``on_unhealthy: restart``, or None.

    ``desired``: the spec's normalized form (its ``health``); ``obs``: the ``plan.Observed``
    container (running); ``plan``: gets the records to keep, the notes and ``next_restart``;
    ``now``: epoch seconds. Reads the health record only when the spec has ``on_unhealthy: restart``;
    acts on it only when it is of the current run, made by the spec's check and not stale.
    """
    health = desired.get("health")
    if not health or health.get("on_unhealthy") != "restart" or obs.container is None or obs.status != Status.RUNNING:
        return None
    current = health_record.read(obs.container.state_dir)
    if current is None or current.get("run") != obs.created:
        return None
    check = HealthCheck.read(health)
    if check is None or current.get("probe") != check.to_normalized() or health_record.is_stale(current, check, now):
        return None  # another check's verdict, or nobody probes it now: wait for a fresh result
    name = spec.name
    if current.get("status") != health_record.UNHEALTHY:
        _recovered(name, plan.restarts.get(name, obs.restart), obs.created, plan)
        return None
    # The record as kept, not as the running container's reset window left it in the plan: a run
    # counts as long only if it lasted RESET_AFTER before it turned unhealthy (decide's rule), so
    # one left running unhealthy at on-failure:N's limit stays given up.
    stored = obs.restart
    policy = spec.restart if spec.restart.startswith("on-failure:") else "always"
    detail = health_record.last_output(current)
    turned = {"exit_code": None, "signal": None, "oom_killed": False, "exited_at": current.get("since")}
    started = parse_time(current.get("started_at"))  # the run's start (the prober's), not its create
    decision = restarting.decide(policy, stored, obs.created, turned,
                                 started if started is not None else parse_time(obs.created), now)
    record = _with_reason(decision.record, detail)
    if record != stored or name in plan.restarts:
        plan.restarts[name] = record
    of = f" of {decision.policy.max_restarts}" if decision.policy.max_restarts is not None else ""
    if decision.kind == "restart":
        cause = (f"restart: unhealthy ({detail}); attempt {decision.attempt}{of}, after "
                 f"{format_duration(restarting.backoff(decision.attempt - 1))} backoff")
        from .plan import Action  # plan imports this module

        return Action(name, ActionKind.LIFECYCLE, cause, (Step.STOP, Step.DESTROY, Step.CREATE, Step.START),
                      restart=_with_reason(decision.after, detail))
    if decision.kind == "wait":  # "restart in N s": the watch loop prints the note once while it holds
        plan.notes.append(f"{name}: unhealthy ({detail}), restart in {math.ceil(decision.remaining * 10) / 10:.1f} s "
                          f"(attempt {decision.attempt}{of})")
        due = record["next_restart"]
        plan.next_restart = due if plan.next_restart is None else min(plan.next_restart, due)
    else:
        plan.notes.append(f"{name}: unhealthy ({detail}), left running: {decision.reason}")
    return None


def _with_reason(record: dict, detail: str) -> dict:
    """``record`` with its ``last_exit`` marked as a stop for unhealthiness (a new dict)."""
    return {**record, "last_exit": {**(record.get("last_exit") or {}), "reason": REASON, "health": detail}}


def _recovered(name: str, stored: dict | None, run: str, plan) -> None:  # noqa: ANN001 - Plan
    """A run that turned healthy again before its restart was due: no restart is pending any more."""
    if (stored and stored.get("exited_run") == run and "restarted_at" not in stored
            and (stored.get("last_exit") or {}).get("reason") == REASON and stored.get("next_restart") is not None):
        plan.restarts[name] = {**stored, "next_restart": None, "exited_run": None}
