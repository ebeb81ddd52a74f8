"""Readiness: whether a dependency satisfies its dependent's ``depends_on`` condition, and whether
the containers an apply touched are ready (``dct apply --wait``, the Ansible modules' ``wait``).

A ``depends_on`` condition (compose's ``condition:``) is one of:

- ``started``: the dependency's action in this apply is done (today's meaning; a failed one skips
  its dependents). Nothing is read (a dependency no spec of the apply declares is not looked at).
- ``healthy``: its health record (:mod:`declarative_ct.health.record`, of its current run) says
  ``healthy``. ``unhealthy``, or a container that is not there or stopped, fails the dependents
  at once; ``starting`` waits. A record whose last result is stale (no supervisor probed it
  since) waits too, for a fresh result: what it said may no longer hold.
- ``completed``: it exited with code 0 (the monitor's exit record, ``exit.json``). Another exit
  fails the dependents at once (``migrate exited 3``); a container still running waits.

A ``healthy`` or ``completed`` dependency that no spec of the apply declares (the Ansible container
module applies one container; ``dct apply web.yaml`` beside a ``db.yaml`` applied before) is read
from the runtime (:func:`look_applied`: its check from its health record's ``probe``, else from
the spec it was created with); one that does not exist fails its dependents (``db is not in this
apply and does not exist``).

:func:`condition_verdict` and :func:`ready_verdict` are pure (a :class:`Sight` in, a :class:`Verdict`
out); :func:`look` reads what they need from the runtime, the health record only when asked.
The waiting itself (apply's probes, ``dct apply --wait``) is :mod:`.wait`'s.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

from ..errors import ContainerError
from ..health import record as health_record
from ..health.check import HealthCheck
from ..runtime import Runtime, Status
from ..units import format_duration
from . import last_applied
from .health_target import applied_target
from .restart import exit_reason

# The conditions (the spec's CONDITIONS, spec.model_health: not imported here, it brings pydantic into apply)
STARTED, HEALTHY, COMPLETED = "started", "healthy", "completed"
OK, WAIT, FAIL = "ok", "wait", "fail"
POLL = 0.05  # seconds between two looks at the records while waiting (a read of a small JSON file)
DEFAULT_TIMEOUT = 60.0  # seconds: dct apply --timeout, the Ansible modules' wait_timeout


def dependency_conditions(spec) -> dict[str, str]:  # noqa: ANN001 - DesiredSpec
    """Each container ``spec`` must wait for → its condition (``started``, ``healthy``, ``completed``): the spec's
    ``DesiredSpec.dependency_conditions()`` (the list form of ``depends_on`` gives ``started``, and
    so does a ``container:<name>`` network)."""
    return spec.dependency_conditions()


def spec_check(spec) -> HealthCheck | None:  # noqa: ANN001 - DesiredSpec
    """The :class:`HealthCheck` a spec declares (its normalized ``health``), or None."""
    return HealthCheck.read(spec.health)


@dataclass(frozen=True)
class Sight:
    """One container as seen now: ``status`` (a runtime ``Status`` value; None: no such container),
    ``exit`` (its ``exit.json`` when stopped: ``exit_code``, ``signal``, ``oom_killed``), ``record``
    (its health record of the current run; None: none yet, or not read); ``stale``: the record's
    last result is older than its check's interval and timeout allow (``health.record.is_stale``:
    nobody probes it now, what it says may no longer hold)."""

    status: str | None
    exit: dict | None = None
    record: dict | None = None
    stale: bool = False


@dataclass(frozen=True)
class Verdict:
    """``state``: :data:`OK`, :data:`WAIT` or :data:`FAIL`; ``detail``: what was seen, for the
    messages (``starting; last probe exit 1: connection refused``, ``exited 3``, ``running``)."""

    state: str
    detail: str = ""


def look(runtime: Runtime, name: str, check: HealthCheck | None = None, now: float | None = None) -> Sight:
    """What :func:`condition_verdict` and :func:`ready_verdict` need of container ``name``: its
    status, its exit record when stopped and, with ``check`` (its health check), its health record
    if it belongs to the current run (a record of an earlier run reads as none) and whether that is
    stale at ``now`` (epoch seconds; default: the time now). Never raises for the container."""
    return _look(runtime, name, now, None if check is None else lambda record, container: (check, None))[0]


def look_applied(runtime: Runtime, name: str, now: float | None = None) -> tuple[Sight, object]:
    """:func:`look` of a container that no spec of the apply declares, with the check read from the
    runtime (:func:`.health_target.applied_target`: its record's ``probe``, else the ``health`` of
    the spec it was created with); ``(sight, target)``, the target (a ``health.prober.Target``) None
    when it declares no check or does not exist (``sight.status`` None)."""
    def find(record, container):  # noqa: ANN001, ANN202
        try:
            applied = last_applied.read(container.config)
        except (ValueError, KeyError, TypeError, AttributeError):
            applied = None
        found = applied_target(name, record, applied)
        return (found.check if found is not None else None), found

    return _look(runtime, name, now, find)


def _look(runtime: Runtime, name: str, now: float | None, find) -> tuple[Sight, object]:  # noqa: ANN001
    """:func:`look`: ``find(record, container)`` gives ``(check, target)`` (None: no health read)."""
    try:
        container = runtime.load(name)
    except ContainerError:
        return Sight(None), None
    try:
        status = container.status()
        exit_record = container.exit_status() if status == Status.STOPPED else None
        record, stale, check, target = None, False, None, None
        if find is not None:
            record = health_record.read(os.path.join(runtime.root, name))
            if record is not None and record.get("run") != container.state().created:
                record = None
            check, target = find(record, container)
            now = time.time() if now is None else now
            stale = record is not None and check is not None and health_record.is_stale(record, check, now)
        return Sight(status.value, exit_record, record if check is not None else None, stale), target
    except (ContainerError, OSError):
        return Sight(None), None
    finally:
        container.close()


def health_detail(record: dict | None) -> str:
    """``starting`` / ``unhealthy; last probe exit 1: connection refused`` (no record: ``starting``)."""
    status = (record or {}).get("status", health_record.STARTING)
    last = health_record.last_output(record)
    return f"{status}; last probe {last}" if last else status


def exit_words(exit_record: dict | None) -> str:
    """A stopped dependency's exit as its dependents' messages say it (``exit.json``): ``exited 3``,
    ``killed by SIGKILL``, ``OOM-killed``, ``stopped as unhealthy``; ``stopped`` when nothing was
    recorded. (``restart.describe_exit`` words an exit summary for the restart notes.)"""
    if not exit_record:
        return "stopped"
    reason = exit_reason(exit_record)
    if reason:
        return reason if reason == "OOM-killed" else "stopped as unhealthy" if reason == "unhealthy" \
            else f"killed by {reason}"
    code = exit_record.get("exit_code")
    return "stopped" if code is None else f"exited {code}"


def condition_verdict(condition: str, sight: Sight, has_health: bool) -> Verdict:
    """Whether a dependency seen as ``sight`` satisfies ``condition`` for its dependent now.

    ``has_health``: the dependency declares ``health`` (``healthy`` without one means running).
    A verdict that cannot change without a restart (``unhealthy``, a stop, a non-zero exit) is
    :data:`FAIL`; one that may still change is :data:`WAIT`.
    """
    if condition == STARTED:
        return Verdict(OK)
    if sight.status is None:
        return Verdict(FAIL, "absent")
    if condition == COMPLETED:
        if sight.status != Status.STOPPED.value:
            return Verdict(WAIT, sight.status)
        if sight.exit is None or sight.exit.get("exit_code") is None:
            return Verdict(WAIT, "stopped, its exit not recorded yet")
        detail = exit_words(sight.exit)
        return Verdict(OK, detail) if sight.exit.get("exit_code") == 0 and not exit_reason(sight.exit) \
            else Verdict(FAIL, detail)
    if sight.status == Status.STOPPED.value:
        return Verdict(FAIL, exit_words(sight.exit))
    if not has_health:
        return Verdict(OK) if sight.status == Status.RUNNING.value else Verdict(WAIT, sight.status)
    status = (sight.record or {}).get("status", health_record.STARTING)
    if sight.stale:  # nobody probed it lately: wait for a fresh result (the caller has it probed)
        return Verdict(WAIT, "no recent probe, last " + health_detail(sight.record))
    if status == health_record.HEALTHY:
        return Verdict(OK, status)
    return Verdict(FAIL if status == health_record.UNHEALTHY else WAIT, health_detail(sight.record))


_WORDS = {HEALTHY: "be healthy", COMPLETED: "complete", STARTED: "start"}
_BECOME = {HEALTHY: "become healthy", COMPLETED: "complete", STARTED: "start"}


def condition_message(dependency: str, condition: str, verdict: Verdict, timeout: float,
                      in_apply: bool = True) -> str:
    """Why a dependent was skipped: ``db is unhealthy (last probe exit 1: refused)``, ``migrate
    exited 3``, ``db stopped (exited 1)``; for a verdict still :data:`WAIT` at the deadline, ``db did
    not become healthy within 60s (starting; …)``, or with ``timeout`` 0 (the supervisor does not
    wait: its next pass retries) ``waiting for db to be healthy (starting)``. ``in_apply``: False
    for a dependency no spec of the apply declares (``db is not in this apply and does not exist``)."""
    if verdict.state == WAIT:
        if timeout <= 0:
            return f"waiting for {dependency} to {_WORDS[condition]} ({verdict.detail})"
        return f"{dependency} did not {_BECOME[condition]} within {format_duration(timeout)} ({verdict.detail})"
    if verdict.detail == "absent" and not in_apply:
        return f"{dependency} is not in this apply and does not exist"
    if condition == COMPLETED:
        return f"{dependency} {verdict.detail}" if verdict.detail != "absent" else f"{dependency} does not exist"
    if verdict.detail == "absent":
        return f"{dependency} does not exist"
    if verdict.detail.startswith(health_record.UNHEALTHY):
        last = verdict.detail.partition("; ")[2]
        return f"{dependency} is unhealthy" + (f" ({last})" if last else "")
    return f"{dependency} is not running ({verdict.detail}): it cannot become healthy"


def ready_verdict(state: str, sight: Sight, has_health: bool, completes: bool = False) -> Verdict:
    """Whether a container an apply touched is ready (``dct apply --wait``): in its spec's
    ``state`` (running, paused, stopped; an absent one is not waited for) and, running with
    ``health``, healthy. ``completes``: a dependent waits for it to complete, so an exit 0 is ready
    too. The detail is what was seen (``running``, ``healthy``, ``unhealthy; last probe …``, ``exited 1``)."""
    if sight.status is None:
        return Verdict(FAIL, "absent")
    if state == "stopped":
        ok = sight.status in (Status.STOPPED.value, Status.CREATED.value)
        return Verdict(OK if ok else WAIT, sight.status)
    if state == "paused":
        return Verdict(OK if sight.status == Status.PAUSED.value else WAIT, sight.status)
    if sight.status == Status.STOPPED.value:
        if completes:
            done = condition_verdict(COMPLETED, sight, False)
            return Verdict(done.state, "completed" if done.state == OK else done.detail)
        return Verdict(FAIL, exit_words(sight.exit))
    if sight.status != Status.RUNNING.value:
        return Verdict(WAIT, sight.status)
    if not has_health:
        return Verdict(OK, sight.status)
    verdict = condition_verdict(HEALTHY, sight, True)
    return Verdict(verdict.state, verdict.detail)


def completed_by_dependents(specs: dict) -> frozenset[str]:
    """The names some spec of ``specs`` depends on with ``completed``."""
    return frozenset(d for s in specs.values() for d, c in dependency_conditions(s).items() if c == COMPLETED)
