"""Apply's gates: each action starts once its dependencies' actions are done and their
``depends_on`` conditions hold (:mod:`.readiness`); the others go on meanwhile.

The gates run on apply's own thread and hand the actions to its pool; while a dependent waits
for a condition they look at the dependency every :data:`.readiness.POLL` seconds (its status,
its exit record, its health record). Nothing is read for a ``started`` condition, nor for a
dependent that still waits for an action. A ``healthy`` or ``completed`` dependency that no spec of
the apply declares is read from the runtime (:func:`.readiness.look_applied`) and probed by the
check found there.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Executor, wait

from ..runtime import Runtime
from . import readiness
from .health_target import health_target

_BLOCKED = "blocked"  # a dependency's action has not ended
DEFERRED = "deferred"  # a condition not met yet with no time to wait (timeout 0): the next pass tries again


class Gates:
    """The non-teardown actions of one apply, started as their gates open.

    ``specs``: name → ``DesiredDocument``; ``probes``: a :class:`.wait.WaitProbes` (the dependencies
    waited on for ``healthy`` are probed there: ``watch(target)``); ``timeout``: the seconds that
    dependents may wait in all (0: none: a condition not met at once defers the dependent,
    ``waiting for …``); ``deadline``: the ``clock`` time they wait until (default: ``timeout``
    from now; a command's one budget that began before); ``clock``: monotonic seconds;
    ``stopping()``: True once no action may start (the action is then handed to ``run``, which
    skips it).
    """

    def __init__(self, actions: list, specs: dict, runtime: Runtime, probes, timeout: float,  # noqa: ANN001
                 clock: Callable[[], float] = time.monotonic, stopping: Callable[[], bool] | None = None,
                 deadline: float | None = None) -> None:
        self.pending = list(actions)
        self.acting = {a.container for a in actions}  # names whose action has not ended
        self.deferred: set[str] = set()  # names handed to defer: their dependents are deferred too
        self.specs, self.runtime, self.probes = specs, runtime, probes
        self.timeout, self.clock, self.stopping = timeout, clock, stopping
        self.deadline = clock() + timeout if deadline is None else deadline

    def run(self, pool: Executor, run: Callable, skip: Callable, failed: set[str],
            defer: Callable | None = None) -> None:
        """Until every action has ended: ``run(action)`` on ``pool`` those whose gates are open,
        ``skip(action, why)`` those a dependency's condition fails, and poll while some wait.
        ``failed``: the names whose action did not succeed (``run`` skips their dependents).
        ``defer(action, why)``: a dependent whose condition is not met yet with no time to wait
        (``timeout`` 0: ``waiting for db to be healthy (starting)``), and its own dependents; None:
        those are skipped too.

        KeyboardInterrupt (Ctrl-C): the pending actions are skipped, the running ones finish, then
        it propagates.
        """
        running: dict = {}  # future -> action
        try:
            while self.pending or running:
                waiting = False
                for action in list(self.pending):
                    gate, why = self.gate(action, failed)
                    if gate in (_BLOCKED, readiness.WAIT):
                        waiting = waiting or gate == readiness.WAIT
                        continue
                    self.pending.remove(action)
                    if gate == readiness.OK:
                        running[pool.submit(run, action)] = action
                    elif gate == DEFERRED and defer is not None:
                        defer(action, why)
                        self.deferred.add(action.container)
                        self.acting.discard(action.container)
                    else:
                        skip(action, why)
                        self.acting.discard(action.container)
                if not running and not waiting and self.pending:  # a cycle (the loader refuses them): in order
                    action = self.pending.pop(0)
                    running[pool.submit(run, action)] = action
                if not running:
                    time.sleep(readiness.POLL)
                    continue
                done, _ = wait(running, timeout=readiness.POLL if waiting else None, return_when=FIRST_COMPLETED)
                for future in done:
                    self.acting.discard(running.pop(future).container)
                    future.result()
        except KeyboardInterrupt:
            for action in self.pending:
                skip(action, "not started: interrupted")
            self.pending.clear()
            for future in list(running):
                future.result()
            raise

    def gate(self, action, failed: set[str]) -> tuple[str, str]:  # noqa: ANN001 - plan.Action
        """``(OK, "")``: start it (``run`` skips it if a dependency failed or a stop was asked);
        ``(_BLOCKED, "")``: a dependency's action has not ended; ``(WAIT, "")``: a condition may
        still be met; ``(DEFERRED, why)``: it may, but there is no time to wait (``timeout`` 0), or a
        dependency was deferred; ``(FAIL, why)``: skip it."""
        doc = self.specs.get(action.container)
        if doc is None or (self.stopping is not None and self.stopping()):
            return readiness.OK, ""
        conditions = readiness.dependency_conditions(doc.spec)
        deps = [d for d in conditions if d != action.container]
        if any(d in self.acting for d in deps):
            return _BLOCKED, ""
        if self.deferred & set(deps):
            return DEFERRED, f"waiting for {', '.join(sorted(self.deferred & set(deps)))} (itself waiting)"
        if failed & set(deps):
            return readiness.OK, ""
        waits = False
        for dep in deps:
            condition = conditions[dep]
            if condition == readiness.STARTED:
                continue
            if dep in self.specs:
                spec = self.specs[dep].spec
                check = readiness.spec_check(spec)
                sight = readiness.look(self.runtime, dep, check if condition == readiness.HEALTHY else None)
                target = None  # made if it is probed
            else:  # another apply made it (or nobody did): its check as the runtime keeps it
                sight, target = readiness.look_applied(self.runtime, dep)
                check = target.check if target is not None else None
            verdict = readiness.condition_verdict(condition, sight, check is not None)
            if verdict.state == readiness.FAIL:
                return readiness.FAIL, readiness.condition_message(dep, condition, verdict, self.timeout,
                                                                   in_apply=dep in self.specs)
            if verdict.state == readiness.WAIT:
                if self.timeout <= 0:
                    return DEFERRED, readiness.condition_message(dep, condition, verdict, 0)
                if self.clock() >= self.deadline:
                    return readiness.FAIL, readiness.condition_message(dep, condition, verdict, self.timeout)
                if condition == readiness.HEALTHY and check is not None:
                    unprobed = sight.record is None or sight.stale  # a supervisor's pass waits for our lock
                    self.probes.watch(target or health_target(self.specs[dep].spec), unprobed)
                waits = True
        return (readiness.WAIT, "") if waits else (readiness.OK, "")
