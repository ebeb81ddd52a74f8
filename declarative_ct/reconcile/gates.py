"""Apply's gates: each action starts once its dependencies' actions are done and their
``depends_on`` conditions hold (:mod:`.readiness`); the others go on meanwhile.

The gates run on apply's own thread and hand the actions to its pool; while a dependent waits
for a condition they look at the dependency every :data:`.readiness.POLL` seconds (its status,
its exit record, its health record). Nothing is read for a ``started`` condition, nor for a
dependent that still waits for an action.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Executor, wait

from ..runtime import Runtime
from . import readiness

_BLOCKED = "blocked"  # a dependency's action has not ended


class Gates:
    """The non-teardown actions of one apply, started as their gates open.

    ``specs``: name → ``DesiredDocument``; ``probes``: a :class:`.readiness.Probes` (the dependencies
    waited on for ``healthy`` are probed there); ``timeout``: seconds from now that dependents may
    wait in all (0: none: a condition not met at once skips the dependent, ``waiting for …``);
    ``clock``: monotonic seconds; ``stopping()``: True once no action may start (the action is
    then handed to ``run``, which skips it).
    """

    def __init__(self, actions: list, specs: dict, runtime: Runtime, probes: readiness.Probes, timeout: float,
                 clock: Callable[[], float] = time.monotonic, stopping: Callable[[], bool] | None = None) -> None:
        self.pending = list(actions)
        self.acting = {a.container for a in actions}  # names whose action has not ended
        self.specs, self.runtime, self.probes = specs, runtime, probes
        self.timeout, self.clock, self.stopping = timeout, clock, stopping
        self.deadline = clock() + timeout

    def run(self, pool: Executor, run: Callable, skip: Callable, failed: set[str]) -> None:
        """Until every action has ended: ``run(action)`` on ``pool`` those whose gates are open,
        ``skip(action, why)`` those a dependency's condition fails, and poll while some wait.
        ``failed``: the names whose action did not succeed (``run`` skips their dependents).

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
        still be met; ``(FAIL, why)``: skip it."""
        doc = self.specs.get(action.container)
        if doc is None or (self.stopping is not None and self.stopping()):
            return readiness.OK, ""
        conditions = readiness.dependency_conditions(doc.spec)
        deps = [d for d in conditions if d != action.container]
        if any(d in self.acting for d in deps):
            return _BLOCKED, ""
        if failed & set(deps):
            return readiness.OK, ""
        waits = False
        for dep in deps:
            condition = conditions[dep]
            if condition == readiness.STARTED or dep not in self.specs:
                continue
            spec = self.specs[dep].spec
            check = readiness.health_check(spec)
            sight = readiness.look(self.runtime, dep, check if condition == readiness.HEALTHY else None)
            verdict = readiness.condition_verdict(condition, sight, check is not None)
            out_of_time = self.timeout <= 0 or self.clock() >= self.deadline
            if verdict.state == readiness.FAIL or verdict.state == readiness.WAIT and out_of_time:
                return readiness.FAIL, readiness.condition_message(dep, condition, verdict, self.timeout)
            if verdict.state == readiness.WAIT:
                if condition == readiness.HEALTHY:
                    self.probes.watch(dep, spec)
                waits = True
        return (readiness.WAIT, "") if waits else (readiness.OK, "")
