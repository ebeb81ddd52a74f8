"""The collector: one pass per tick over the backend, folded by the model into one immutable snapshot.

Runs in a worker thread (never on the event loop); one :meth:`Collector.collect` at a time (a
lock), so the backend's kept containers and the model are only ever used by one thread at once.
No Textual import.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable

from .backend import Backend
from .model import Model, Snapshot

MIN_INTERVAL = 0.2
"""The shortest refresh interval, seconds. A shorter window holds fewer than two CFS periods (100 ms
each): a container under a CPU quota runs in bursts within each period, so its CPU over such a
window shows the burst, not its use (a 0.2-core container read every 10 ms showed several cores);
and the TUI's own cost grows with the rate (2-3 % of one core at 1 s with 100 containers; at
10 ms, a whole core)."""

DRIFT_EVERY = 5.0
"""Seconds between desired-state passes (observe + plan: ~10 ms for 100 containers); an action
done from the TUI has the next tick make one at once."""


class SelfUsage:
    """The TUI process's own CPU (% of one core, between two calls) and resident memory (bytes)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._last: tuple[float, float] | None = None
        self._page = os.sysconf("SC_PAGE_SIZE")

    def __call__(self) -> tuple[float | None, int | None]:
        t = os.times()
        used, now = t.user + t.system, self._clock()
        pct = None
        if self._last is not None and now > self._last[0]:
            pct = (used - self._last[1]) / (now - self._last[0]) * 100
        self._last = (now, used)
        try:
            with open("/proc/self/statm", "rb") as f:
                rss = int(f.read().split()[1]) * self._page
        except (OSError, ValueError, IndexError):
            rss = None
        return pct, rss


class Collector:
    """Reads the backend and updates the model; :meth:`collect` returns the new :class:`Snapshot`.

    ``focus``/``want_processes``/``visible`` are set by the UI thread (plain attribute writes) and
    read at the next tick: the focused container's history and, when wanted, its processes go into
    the snapshot; the containers in ``visible`` (the rows on screen) and the focused one are read
    every tick, the others in turn (:data:`~tui.backend.COLD_EVERY`), which keeps the cost of a
    tick near that of the rows shown. ``clock`` (monotonic) and ``wall`` (epoch) are injectable for deterministic tests;
    ``self_usage`` returns ``(cpu %, rss bytes)`` of the TUI, or ``(None, None)``.
    """

    def __init__(self, backend: Backend, model: Model | None = None, drift_every: float = DRIFT_EVERY,
                 clock: Callable[[], float] = time.monotonic, wall: Callable[[], float] = time.time,
                 self_usage: Callable[[], tuple[float | None, int | None]] | None = None) -> None:
        self.backend = backend
        self.model = model or Model(host_cpus=os.cpu_count() or 1)
        self.drift_every = drift_every
        self.clock = clock
        self.wall = wall
        self.self_usage = self_usage or SelfUsage()
        self.focus: str | None = None
        self.want_processes = False
        self.visible: set[str] | None = None  # rows on screen (None: unknown, read everything)
        self.ticks = 0
        self._lock = threading.Lock()
        self._last_drift: float | None = None
        self._desired = None
        self._drift_due = True

    def refresh_desired(self) -> None:
        """Have the next tick recompute the desired-state view (after an action changed things)."""
        self._drift_due = True

    def collect(self) -> Snapshot:
        """One tick. Errors of a part (a backend call that raised) are reported in ``Snapshot.errors``
        and leave that part empty or as it was; never raises for them."""
        with self._lock:
            errors: list[str] = []
            visible = self.visible
            hot = None if visible is None else visible | ({self.focus} if self.focus else set())
            try:
                readings = self.backend.sample(hot, self.ticks)
            except Exception as err:  # noqa: BLE001 - shown, the next tick tries again
                readings = []
                errors.append(f"reading containers: {err}")
            now, wall = self.clock(), self.wall()
            # Without specs the pass only brings restart counts: less often.
            every = self.drift_every if self.backend.specs_given else 3 * self.drift_every
            if self._drift_due or self._last_drift is None or now - self._last_drift >= every:
                self._drift_due = False
                self._last_drift = now
                try:
                    self._desired = self.backend.desired()
                except Exception as err:  # noqa: BLE001
                    errors.append(f"desired state: {err}")
            journal: list[dict] = []
            try:
                journal = self.backend.journal()
            except Exception as err:  # noqa: BLE001
                errors.append(f"journal: {err}")
            focus = self.focus
            procs = None
            if focus is not None and self.want_processes:
                try:
                    procs = self.backend.processes(focus)
                except Exception as err:  # noqa: BLE001
                    errors.append(f"processes of {focus}: {err}")
            notices: tuple[str, ...] = ()
            try:
                notices = self.backend.notices()
            except Exception as err:  # noqa: BLE001
                errors.append(f"state root: {err}")
            cpu, rss = self.self_usage()
            self.ticks += 1
            return self.model.update(readings, now, wall, desired=self._desired, focus=focus, processes=procs,
                                     journal=journal, self_cpu=cpu, self_rss=rss, errors=errors,
                                     specs_given=self.backend.specs_given, notices=notices)
