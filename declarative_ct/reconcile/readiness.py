"""Readiness: whether a dependency satisfies its dependent's ``depends_on`` condition, and whether
the containers an apply touched are ready (``dct apply --wait``, the Ansible modules' ``wait``).

A ``depends_on`` condition (compose's ``condition:``) is one of:

- ``started``: the dependency's action in this apply is done (today's meaning; a failed one skips
  its dependents). Nothing is read.
- ``healthy``: its health record (:mod:`declarative_ct.health.record`, of its current run) says
  ``healthy``. ``unhealthy``, or a container that is not there or stopped, fails the dependents
  at once; ``starting`` waits. A record whose last result is stale (no supervisor probed it
  since) waits too, for a fresh result: what it said may no longer hold.
- ``completed``: it exited with code 0 (the monitor's exit record, ``exit.json``). Another exit
  fails the dependents at once (``migrate exited 3``); a container still running waits.

:func:`condition_verdict` and :func:`ready_verdict` are pure (a :class:`Sight` in, a :class:`Verdict`
out); :func:`look` reads what they need from the runtime, the health record only when asked.
:class:`Probes` starts probes for the containers waited on when no supervisor's prober is given;
:func:`wait_ready` polls the records it writes until every container is ready or the deadline.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from ..errors import ContainerError
from ..health import record as health_record
from ..health.check import HealthCheck
from ..runtime import Runtime, Status
from ..units import format_duration, parse_time
from . import last_applied
from .restart import exit_reason

STARTED, HEALTHY, COMPLETED = "started", "healthy", "completed"
CONDITIONS = (STARTED, HEALTHY, COMPLETED)
OK, WAIT, FAIL = "ok", "wait", "fail"
POLL = 0.05  # seconds between two looks at the records while waiting (a read of a small JSON file)
DEFAULT_TIMEOUT = 60.0  # seconds: dct apply --timeout, the Ansible modules' wait_timeout


def dependency_conditions(spec) -> dict[str, str]:  # noqa: ANN001 - DesiredSpec
    """Each container ``spec`` must wait for → its condition (:data:`CONDITIONS`): the spec's
    ``DesiredSpec.dependency_conditions()`` (the list form of ``depends_on`` gives ``started``, and
    so does a ``container:<name>`` network)."""
    return spec.dependency_conditions()


def health_check(spec) -> HealthCheck | None:  # noqa: ANN001 - DesiredSpec
    """The :class:`HealthCheck` a spec declares (its normalized ``health``), or None."""
    return HealthCheck.from_normalized(spec.health)


@dataclass(frozen=True)
class Sight:
    """One container as seen now: ``status`` (a runtime ``Status`` value; None: no such container),
    ``exit`` (its ``exit.json`` when stopped: ``exit_code``, ``signal``, ``oom_killed``), ``record``
    (its health record of the current run; None: none yet, or not read); ``stale``: the record's
    last result is older than its check's interval and timeout allow (nobody probes it now: what
    it says may no longer hold)."""

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


STALE_SLACK = 2.0  # seconds beyond interval + timeout before a record's last result is taken as stale


def look(runtime: Runtime, name: str, check: HealthCheck | None = None, now: float | None = None) -> Sight:
    """What :func:`condition_verdict` and :func:`ready_verdict` need of container ``name``: its
    status, its exit record when stopped and, with ``check`` (its health check), its health record
    if it belongs to the current run (a record of an earlier run reads as none) and whether that is
    stale at ``now`` (epoch seconds; default: the time now). Never raises for the container."""
    try:
        container = runtime.load(name)
    except ContainerError:
        return Sight(None)
    try:
        status = container.status()
        exit_record = container.exit_status() if status == Status.STOPPED else None
        record, stale = None, False
        if check is not None:
            record = health_record.read(os.path.join(runtime.root, name))
            if record is not None and record.get("run") != container.state().created:
                record = None
            log = (record or {}).get("log") or []
            last = parse_time(log[-1].get("end")) if log else None
            now = time.time() if now is None else now
            stale = last is not None and now - last > check.interval + check.timeout + STALE_SLACK
        return Sight(status.value, exit_record, record, stale)
    except (ContainerError, OSError):
        return Sight(None)
    finally:
        container.close()


def health_detail(record: dict | None) -> str:
    """``starting`` / ``unhealthy; last probe exit 1: connection refused`` (no record: ``starting``)."""
    status = (record or {}).get("status", health_record.STARTING)
    last = health_record.last_output(record)
    return f"{status}; last probe {last}" if last else status


def describe_exit(exit_record: dict | None) -> str:
    """``exited 3``, ``killed by SIGKILL``, ``OOM-killed``; ``stopped`` when nothing was recorded."""
    if not exit_record:
        return "stopped"
    reason = exit_reason(exit_record)
    if reason:
        return "OOM-killed" if reason == "OOM-killed" else f"killed by {reason}"
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
        detail = describe_exit(sight.exit)
        return Verdict(OK, detail) if sight.exit.get("exit_code") == 0 and not exit_reason(sight.exit) \
            else Verdict(FAIL, detail)
    if sight.status == Status.STOPPED.value:
        return Verdict(FAIL, describe_exit(sight.exit))
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


def condition_message(dependency: str, condition: str, verdict: Verdict, timeout: float) -> str:
    """Why a dependent was skipped: ``db is unhealthy (last probe exit 1: refused)``, ``migrate
    exited 3``, ``db stopped (exited 1)``; for a verdict still :data:`WAIT` at the deadline, ``db did
    not become healthy within 60s (starting; …)``, or with ``timeout`` 0 (the supervisor does not
    wait: its next pass retries) ``waiting for db to be healthy (starting)``."""
    if verdict.state == WAIT:
        if timeout <= 0:
            return f"waiting for {dependency} to {_WORDS[condition]} ({verdict.detail})"
        return f"{dependency} did not {_BECOME[condition]} within {format_duration(timeout)} ({verdict.detail})"
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
    ``state`` (running, paused, stopped; absent is always ready) and, running with ``health``,
    healthy. ``completes``: a dependent waits for it to complete, so an exit 0 is ready too.
    The detail is what was seen (``running``, ``healthy``, ``unhealthy; last probe …``, ``exited 1``)."""
    if state == "absent":
        return Verdict(OK, sight.status or "absent") if sight.status is None else Verdict(WAIT, sight.status)
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
        return Verdict(FAIL, describe_exit(sight.exit))
    if sight.status != Status.RUNNING.value:
        return Verdict(WAIT, sight.status)
    if not has_health:
        return Verdict(OK, sight.status)
    verdict = condition_verdict(HEALTHY, sight, True)
    return Verdict(verdict.state, verdict.detail)


class Probes:
    """The probes an apply needs while it waits for ``healthy``: the given ``prober`` (the
    supervisor's, never closed here) or, at the first :meth:`watch`, a
    :class:`~declarative_ct.health.prober.Prober` of its own, closed by :meth:`close` (the records
    it wrote stay: they say where health stood). Thread-safe enough for one caller thread."""

    def __init__(self, runtime: Runtime, prober=None) -> None:  # noqa: ANN001 - health.prober.Prober
        self.runtime = runtime
        self._prober = prober
        self._own = prober is None
        self._watched: set[str] = set()

    def watch(self, name: str, spec) -> None:  # noqa: ANN001 - DesiredSpec
        """Probe container ``name`` by its spec's ``health`` (nothing when it declares none, or when
        it is watched already: the prober itself starts a new record for a new run)."""
        check = health_check(spec)
        if check is None or name in self._watched:
            return
        from ..health.prober import Prober, Target

        process = last_applied.process(spec.normalized(), args=list(check.command), init=False) \
            if check.kind == "exec" else None
        if self._prober is None:
            self._prober = Prober(self.runtime)
        self._prober.add(Target(name, check, process))
        self._watched.add(name)

    def close(self) -> None:
        """Stop the probes of our own prober (a given one is left running)."""
        if self._own and self._prober is not None:
            self._prober.close()
            self._prober = None


@dataclass
class Readiness:
    """What :func:`wait_ready` found of one container: ``ready``; ``status`` (runtime status, or
    ``absent``); ``health`` (its health record's status, None without health); ``detail``
    (``healthy``, ``unhealthy; last probe exit 1: …``, ``exited 3``); ``last_output`` (the last
    probe's, ``exit 1: refused``, or '')."""

    name: str
    ready: bool
    status: str
    health: str | None = None
    detail: str = ""
    last_output: str = ""

    def to_dict(self) -> dict:
        return {"name": self.name, "ready": self.ready, "status": self.status, "health": self.health,
                "detail": self.detail, "last_output": self.last_output}

    def __str__(self) -> str:
        return f"{self.name}: {self.detail or self.status}"


@dataclass
class _Waiting:
    spec: object
    completes: bool
    check: HealthCheck | None = None
    verdict: Verdict = field(default_factory=lambda: Verdict(WAIT))
    sight: Sight = field(default_factory=lambda: Sight(None))


def wait_ready(runtime: Runtime, specs: dict, names: list[str], timeout: float, probes: Probes | None = None,
               on_ready: Callable[[Readiness], None] | None = None, completes: frozenset[str] = frozenset(),
               clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep,
               deadline: float | None = None) -> list[Readiness]:
    """Wait up to ``timeout`` seconds until each container of ``names`` is ready (:func:`ready_verdict`);
    each one's :class:`Readiness`, in ``names``' order.

    ``specs``: name → ``DesiredSpec`` (the state wanted, the health declared). ``probes``: where
    the health checks run (:meth:`Probes.watch` for each container with health); None: the records
    are only read (a supervisor probes). ``on_ready(readiness)``: called once per container as it
    settles (ready, or failed before the deadline). ``completes``: names a dependent waits for with
    ``completed`` (an exit 0 is ready). A KeyboardInterrupt (Ctrl-C) propagates; the containers
    are left as they are. ``deadline``: the ``clock`` time to stop at instead of ``timeout`` from
    now (a command whose one ``--timeout`` also bounded the dependency waits before; the messages
    still say ``timeout``).
    """
    waiting = {n: _Waiting(specs[n], n in completes, health_check(specs[n])) for n in names if n in specs}
    if probes is not None:
        for name, item in waiting.items():
            if item.spec.state == "running":
                probes.watch(name, item.spec)
    deadline = clock() + timeout if deadline is None else deadline
    settled: dict[str, _Waiting] = {}
    while True:
        for name, item in list(waiting.items()):
            item.sight = look(runtime, name, item.check if item.spec.state == "running" else None)
            item.verdict = ready_verdict(item.spec.state, item.sight, item.check is not None, item.completes)
            if item.verdict.state != WAIT:
                settled[name] = waiting.pop(name)
                if on_ready is not None:
                    on_ready(_readiness(name, item, timeout))
        if not waiting or clock() >= deadline:
            break
        sleep(min(POLL, max(0.0, deadline - clock())))
    for name, item in waiting.items():
        settled[name] = item
    return [_readiness(n, settled[n], timeout) for n in names if n in settled]


def _readiness(name: str, item: _Waiting, timeout: float) -> Readiness:
    record = item.sight.record
    has_health = item.check is not None
    detail = item.verdict.detail
    if item.verdict.state == WAIT:
        detail = f"not ready within {format_duration(timeout)} ({detail or 'starting'})"
    return Readiness(name, item.verdict.state == OK, item.sight.status or "absent",
                     (record or {}).get("status", health_record.STARTING) if has_health else None,
                     detail, health_record.last_output(record))


def wanted(spec, completes: bool = False) -> str:  # noqa: ANN001 - DesiredSpec
    """What :func:`wait_ready` waits for of a container: ``healthy`` (running with health),
    ``running or completed`` (``completes``: a dependent waits for it to complete), else its
    spec's state (``running``, ``paused``, ``stopped``, ``absent``)."""
    if spec.state == "running" and health_check(spec) is not None:
        return HEALTHY
    return "running or completed" if completes and spec.state == "running" else spec.state


def touched(outcomes, specs: dict) -> list[str]:
    """The containers an apply acted on (an action that ran or was skipped), not torn down, sorted."""
    from .kinds import ActionKind

    return sorted({o.action.container for o in outcomes
                   if o.action.kind not in ActionKind.TEARDOWN and o.action.container in specs})


def completed_by_dependents(specs: dict) -> frozenset[str]:
    """The names some spec of ``specs`` depends on with ``completed``."""
    return frozenset(d for s in specs.values() for d, c in dependency_conditions(s).items() if c == COMPLETED)
