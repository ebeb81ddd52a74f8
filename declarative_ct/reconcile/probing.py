"""The supervisor's probes: which containers ``dct watch`` probes after each pass, and what it says
when one changes (``web: healthy → unhealthy (exit 1: connection refused)``).

:class:`Probing` owns the watch loop's :class:`~declarative_ct.health.prober.Prober`, made when
the first declared container with ``health`` runs (a watch without health starts no thread for
it) and closed with the loop. After each pass, :meth:`Probing.after_pass` hands the prober a
target for every declared container with ``health`` that runs now (the check read from the
spec's normalized ``health``; exec probes run with the spec's user, env and cwd); a container the
pass started (created, restarted) is probed again from the start of its new run, and a changed
check is probed at once with a fresh record (the prober's rules). A status change is printed and
wakes the loop, which plans at once (``on_unhealthy: restart``: :mod:`.unhealthy`); so does a
record that turns fresh after a gap (a dependent skipped for "no recent probe" starts now).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable

from ..health import record as health_record
from ..health.prober import Prober, Target
from ..runtime import Status
from .health_target import health_target
from .kinds import Result, Step


class Probing:
    """The probes of one watch loop.

    ``runtime``: the loop's Runtime; ``out``: prints one line (thread-safe); ``wake``: wakes the
    loop; ``fork_server``: the fork server exec probes go through (``runtime.forkserver``; None:
    one of its own, made with the prober, started at the first exec probe, closed with it);
    ``workers``: probes run at once at most (None: sized from the targets,
    :func:`~declarative_ct.health.prober.pool_size`). ``changed`` is set on each status change and
    each record turned fresh again.
    """

    def __init__(self, runtime, out: Callable[[str], None], wake: Callable[[], None], fork_server=None,
                 workers: int | None = None) -> None:
        self._runtime = runtime
        self._out, self._wake = out, wake
        self._fork_server, self._workers = fork_server, workers
        self._own_server = None  # the fork server made here, closed by close()
        self.prober: Prober | None = None
        self.changed = threading.Event()
        self._checks: dict[int, tuple[object, Target | None]] = {}  # id(doc) -> (doc, its target or None)

    def after_pass(self, docs: Iterable, observed: dict, outcomes: Iterable) -> None:
        """Probe, from now on, the declared containers with ``health`` that run after this pass.

        ``docs``: the documents in force (``.spec.normalized()``, ``.spec.name``, ``.spec.state``);
        ``observed``: ``plan.observe``'s result the pass planned from; ``outcomes``: apply's (empty
        when nothing was done).
        """
        running = {name for name, obs in observed.items() if obs.status == Status.RUNNING}
        fresh = set()
        for outcome in outcomes:
            name, steps = outcome.action.container, outcome.action.steps
            if outcome.result != Result.OK:
                continue
            if Step.START in steps or Step.RESUME in steps:
                running.add(name)
                if Step.START in steps:
                    fresh.add(name)
            elif Step.STOP in steps or Step.DESTROY in steps or Step.PAUSE in steps:
                running.discard(name)
        targets = [t for t in self._targets(docs) if t.name in running]
        if self.prober is None:
            if not targets:
                return
            if self._fork_server is None:  # an exec probe costs ~7 ms of CPU through it, ~66 without
                from ..runtime.forkserver import ForkServer

                self._fork_server = self._own_server = ForkServer()  # no process until an exec probe
            self.prober = Prober(self._runtime, on_change=self._changed, fork_server=self._fork_server,
                                 workers=self._workers)
        for name in fresh:
            self.prober.discard(name)  # a new run: its first probe comes at once, not on the old grid
        self.prober.update(targets)

    def _targets(self, docs: Iterable) -> list[Target]:
        """A target per document with ``health`` (each document's read once while it stays in force)."""
        seen: dict[int, tuple[object, Target | None]] = {}
        out = []
        for doc in docs:
            hit = self._checks.get(id(doc))
            if hit is None or hit[0] is not doc:
                hit = (doc, health_target(doc.spec))
            seen[id(doc)] = hit
            if hit[1] is not None and doc.spec.state == "running":
                out.append(hit[1])
        self._checks = seen
        return out

    def _changed(self, name: str, old: str, new: str, record: dict) -> None:
        """The prober's thread: say a status change, and have the loop plan now (a record turned
        fresh again, ``old == new``, is not said)."""
        if old != new:
            detail = health_record.last_output(record)
            self._out(f"{name}: {old} → {new}" + (f" ({detail})" if detail else ""))
        self.changed.set()
        self._wake()

    def close(self) -> None:
        """Stop the prober (its running probes cancelled, its threads joined); idempotent."""
        if self.prober is not None:
            self.prober.close()
        if self._own_server is not None:
            self._own_server.close()

