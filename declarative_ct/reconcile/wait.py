"""The waiting of an apply: its probes (:class:`WaitProbes`, none beside a supervisor that probes the
same containers: :func:`supervisor_probes`) and the wait after it (``dct apply --wait``, the Ansible
modules' ``wait``: :func:`wait_applied`, :func:`wait_ready`), judged by :mod:`.readiness`'s verdicts.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from ..health import record as health_record
from ..health.check import HealthCheck
from ..runtime import Runtime
from ..units import format_duration
from .health_target import health_target
from .readiness import HEALTHY, OK, POLL, WAIT, Sight, Verdict, completed_by_dependents, look, ready_verdict, spec_check


class WaitProbes:
    """The probes of one apply, for what it waits for (``healthy`` dependencies, ``--wait``): a
    :class:`~declarative_ct.health.prober.Prober` of its own, made at the first :meth:`watch` and
    closed by :meth:`close` (the records it wrote stay: they say where health stood). ``probe``:
    False when a supervisor probes these containers (:func:`supervisor_probes`): nothing is probed
    here, the records it keeps are only read; a callable is asked that at the first :meth:`watch`
    (an apply that waits for nothing never asks). Called from apply's thread alone (not thread-safe)."""

    def __init__(self, runtime: Runtime, probe: bool | Callable[[], bool] = True) -> None:
        self.runtime = runtime
        self.probe = probe
        self._prober = None  # health.prober.Prober, made at the first watch
        self._watched: set[str] = set()

    def watch(self, target, unprobed: bool = False) -> None:  # noqa: ANN001 - health.prober.Target
        """Probe ``target`` (:mod:`.health_target`; nothing for None, nor for a name watched
        already: the prober itself starts a new record for a new run); nothing without ``probe``
        unless ``unprobed``: its record is missing or stale while the caller holds the apply lock,
        so no supervisor can begin probing it (its passes wait for that lock) and it is probed here."""
        if target is None or target.name in self._watched:
            return
        if callable(self.probe):
            self.probe = bool(self.probe())
        if not self.probe and not unprobed:
            return
        if self._prober is None:
            from ..health.prober import Prober

            self._prober = Prober(self.runtime)
        self._prober.add(target)
        self._watched.add(target.name)

    def close(self) -> None:
        """Stop the probes (their threads joined); idempotent."""
        if self._prober is not None:
            self._prober.close()
            self._prober = None


def supervisor_probes(info, docs) -> bool:  # noqa: ANN001 - service.supervisor.SupervisorInfo | None, documents
    """Whether the supervisor ``info`` describes (``service.supervisor.read(root)``: ``running``,
    ``paths``) probes the containers of ``docs`` (``.source``, an absolute path): it runs and
    each document comes from one of its paths (a file, or a file in a directory it watches). Then
    an apply only reads the health records (two probers on one container overwrite each other's
    record and run exec probes twice); else it probes what it waits for itself."""
    if info is None or not info.running:
        return False
    paths = {os.path.abspath(p) for p in info.paths}
    return all(d.source in paths or os.path.dirname(d.source) in paths for d in docs)


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
        """The JSON object of one container in the Ansible modules' ``wait`` result (every field by its name)."""
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


def wait_ready(runtime: Runtime, specs: dict, names: list[str], timeout: float, probes: WaitProbes | None = None,
               on_ready: Callable[[Readiness], None] | None = None, completes: frozenset[str] = frozenset(),
               clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep,
               deadline: float | None = None) -> list[Readiness]:
    """Wait up to ``timeout`` seconds until each container of ``names`` is ready (:func:`.readiness.ready_verdict`);
    each one's :class:`Readiness`, in ``names``' order.

    ``specs``: name → ``DesiredSpec`` (the state wanted, the health declared). ``probes``: where
    the health checks run (:meth:`WaitProbes.watch` for each container with health); None: the records
    are only read (a supervisor probes). ``on_ready(readiness)``: called once per container as it
    settles (ready, or failed before the deadline). ``completes``: names a dependent waits for with
    ``completed`` (an exit 0 is ready). A KeyboardInterrupt (Ctrl-C) propagates; the containers
    are left as they are. ``deadline``: the ``clock`` time to stop at instead of ``timeout`` from
    now (a command whose one ``--timeout`` also bounded the dependency waits before; the messages
    still say ``timeout``).
    """
    waiting = {n: _Waiting(specs[n], n in completes, spec_check(specs[n])) for n in names if n in specs}
    if probes is not None:
        for item in waiting.values():
            if item.spec.state == "running" and item.check is not None:
                probes.watch(health_target(item.spec))
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
    if spec.state == "running" and spec_check(spec) is not None:
        return HEALTHY
    return "running or completed" if completes and spec.state == "running" else spec.state


def wait_applied(runtime: Runtime, docs, outcomes, timeout: float, deadline: float,  # noqa: ANN001
                 probes: WaitProbes | None = None, on_start: Callable[[str], None] | None = None,
                 on_ready: Callable[[Readiness], None] | None = None,
                 clock: Callable[[], float] = time.monotonic) -> list[Readiness]:
    """The wait after an apply (``dct apply --wait``, the Ansible modules' ``wait``): each
    container whose action succeeded and is not to be absent (:func:`touched`), waited for until
    ``deadline`` (``clock`` seconds: the one budget of ``timeout`` seconds that began before the
    apply) by :func:`wait_ready`; its :class:`Readiness` each, sorted by name ([] when none).

    ``docs``: the apply's documents (``.spec``, ``.source``); ``outcomes``: apply's (``.action``,
    ``.result``). ``probes``: as :func:`wait_ready` (the apply's :class:`WaitProbes`).
    ``on_start(wanted)``: called first with what is waited for (``web (healthy), job (running or
    completed)``), not when nothing is; ``on_ready``: as :func:`wait_ready`. KeyboardInterrupt
    propagates.
    """
    from ..spec.desired import desired_documents
    from .kinds import Result

    specs = {d.spec.name: d.spec for d in desired_documents(docs)}
    names = [n for n in touched([o for o in outcomes if o.result == Result.OK], specs) if specs[n].state != "absent"]
    if not names:
        return []
    completes = completed_by_dependents(specs)
    if on_start is not None:
        on_start(", ".join(f"{n} ({wanted(specs[n], n in completes)})" for n in names))
    return wait_ready(runtime, specs, names, timeout, probes, on_ready=on_ready, completes=completes, clock=clock,
                      deadline=deadline)


def touched(outcomes, specs: dict) -> list[str]:
    """The containers of ``outcomes`` (apply's) that ``specs`` declares and whose action was not a
    teardown (destroy, prune), sorted."""
    from .kinds import ActionKind

    return sorted({o.action.container for o in outcomes
                   if o.action.kind not in ActionKind.TEARDOWN and o.action.container in specs})
