# Size: the scheduler, its probe threads and the record work share one lock and one table of entries
"""The prober: runs every declared probe on its schedule, in the supervisor, and keeps the records.

One :class:`Prober` per supervisor (``dct watch``); ``dct apply --wait`` makes one for its wait.
It holds a set of :class:`Target` (a container and its check). Each target is probed at once
when it is added, then every ``interval`` seconds on a fixed grid (a probe that overruns skips the
slots it missed: no drift, no burst), one probe of a container at a time, at most ``workers``
probes at once. The results go into the container's health record (:mod:`.record`), kept in
memory and stored in its state directory after each result; a store that meets the container's
lock held (a destroy, a start) is retried with the next result.

Rules:

- a target whose container does not exist or is not ``running`` is skipped (nothing written);
- a new run of the container (another ``created`` time: a restart, a recreate) starts a fresh
  record (``starting``); a supervisor that starts again takes up the stored record of the run;
- the start period counts from when the prober first saw the run ``running`` (the record's
  ``started_at``), not from its ``created`` time nor from init's start time: a container created
  stopped is created (its init forked, waiting on the exec fifo) long before a later ``start``
  releases it, and the runtime keeps no time of that release. The first probe of a run comes as
  soon as it is seen running (a supervisor probes a container it started at once), so this is
  the start within one probe; for a run that was running before any prober saw it (a supervisor
  started later, a check added to a running container) the start period is granted from then;
- a check that changes (:meth:`Prober.update`/:meth:`Prober.add` with the same name and another
  :class:`~.check.HealthCheck`) is probed at once and starts a fresh record (``starting``, the
  run's ``started_at`` kept): a record whose ``probe`` is not the check's
  (:meth:`~.check.HealthCheck.to_normalized`) is never carried over; a probe of the old check still
  running then is not recorded. Another exec template alone (user, env, cwd) takes effect at the
  next probe;
- ``on_change(name, old_status, new_status, record)`` is called, from a prober thread, when a
  container's status changes (the first result of a run counts from ``starting``), and when its
  record turns fresh again after a gap (the last result older than the readers' staleness rule,
  :func:`.record.is_stale`: a supervisor started again, a prober that fell behind): then
  ``old_status == new_status``, and a plan that skipped a dependent for "no recent probe" can be
  made at once.

Threads: none until the first target; then one scheduler (asleep until the next due probe: a
heap) and probe threads, made as probes become due (idle ones are reused), at most ``workers``:
by default sized from the targets (:func:`pool_size`). :meth:`Prober.close` stops them all; a
probe running then is cancelled (an exec'd command killed and reaped).
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import math
import os
import queue
import sys
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from ..errors import ContainerError
from ..runtime import Status, store
from ..runtime.process import Process
from ..units import parse_time
from . import record as records
from .check import HealthCheck
from .probes import NamespaceLost, probe

OnChange = Callable[[str, str, str, dict], None]
_OVERLAP_RETRY = 0.05  # seconds: a replaced entry's first probe waits this long for the old one's to end
MIN_WORKERS = 4  # probe threads allowed at least (a few short probes due at the same instant)
MAX_WORKERS = 64  # at most: beyond, a probe waits for a thread and its container's slots are skipped


@dataclass(frozen=True)
class Target:
    """What to probe: ``name`` (the container id), ``check``, and ``process``, the exec template
    (the spec's user, env and cwd; None: root, ``/``, the default PATH)."""

    name: str
    check: HealthCheck
    process: Process | None = None


@dataclass
class _Entry:
    """The prober's state for one target."""

    target: Target
    due: float  # monotonic seconds of the next probe
    generation: int  # bumped when the entry is replaced or dropped: a stale heap item or result is ignored
    busy: bool = False
    record: dict | None = None  # the current run's record, as last computed
    dirty: bool = False  # not stored yet (the container's lock was held)
    container: object = None  # the runtime Container, reloaded when its state.json changes
    identity: tuple = ()  # (inode, size, mtime_ns) of the state.json `container` was loaded from


def pool_size(checks: Iterable[HealthCheck]) -> int:
    """The probe threads needed for ``checks`` if every probe hangs until its timeout:
    ``min(MAX_WORKERS, max(MIN_WORKERS, ceil(Σ min(1, timeout / interval)) + 2))``.

    A target's probe is out ``timeout / interval`` of the time at worst (Little's law; at most 1:
    one probe of a container at a time), so the sum is how many run at once when all of them hang;
    2 more for the jitter of probes due together. A thread waiting on a probe costs a stack's
    resident pages and no CPU (the probes' rate is set by their intervals, not by the threads), so
    the bound is generous: 100 containers with the default timing (interval 10 s, timeout 5 s)
    need 52. Past :data:`MAX_WORKERS`, probes queue and skip slots rather than drift.
    """
    demand = sum(min(1.0, c.timeout / max(c.interval, 0.001)) for c in checks)
    return min(MAX_WORKERS, max(MIN_WORKERS, math.ceil(demand) + 2))


class Prober:
    """Probes containers on schedule (see the module doc).

    Args:
        runtime: the :class:`~declarative_ct.runtime.Runtime` of the state root.
        on_change: ``(name, old_status, new_status, record)`` on a status change (a prober thread).
        fork_server: the runtime's fork server for exec probes (None: a plain exec; one that cannot
            serve makes a plain exec of that probe: :func:`.probes.probe`).
        workers: probes run at once at most (≥ 1); None: :func:`pool_size` of the targets probed
            (counted again at each change of them).
        clock: monotonic seconds (injectable for tests: a clock that jumps calls :meth:`tick`
            after each jump); ``wall``: epoch seconds.
        prober: the function that runs one probe (``probes.probe``'s signature; tests replace it).

    Raises:
        ValueError: ``workers`` below 1.
    """

    def __init__(self, runtime, on_change: OnChange | None = None, fork_server=None, workers: int | None = None,
                 clock: Callable[[], float] = time.monotonic, wall: Callable[[], float] = time.time,
                 prober: Callable[..., dict] = probe) -> None:
        if workers is not None and workers < 1:
            raise ValueError(f"workers: {workers} must be at least 1")
        self._runtime = runtime
        self._on_change = on_change
        self._fork_server = fork_server
        self._fixed_workers = workers
        self._max_workers = workers or MIN_WORKERS
        self._clock, self._wall = clock, wall
        self._probe = prober
        self._entries: dict[str, _Entry] = {}
        self._heap: list[tuple[float, int, str, int]] = []
        self._seq = itertools.count()
        self._generations = itertools.count(1)
        self._cond = threading.Condition()
        self._jobs: queue.SimpleQueue = queue.SimpleQueue()
        self._workers: list[threading.Thread] = []
        self._idle = 0  # workers waiting for a job
        self._scheduler: threading.Thread | None = None
        self._closed = False
        self._inflight: set[str] = set()  # names with a probe out (an entry replaced meanwhile waits for it)
        self._cancel_r, self._cancel_w = -1, -1  # readable once closing: running probes stop

    # -- the set of targets -----------------------------------------------------------------------
    def update(self, targets: Iterable[Target]) -> None:
        """Probe exactly ``targets`` from now on (replacing the set; the watch loop calls it after each pass)."""
        targets = {t.name: t for t in targets}
        with self._cond:
            for name in [n for n in self._entries if n not in targets]:
                self._drop(name)
            for target in targets.values():
                self._put(target)
            self._resize()
            self._cond.notify_all()

    def add(self, target: Target) -> None:
        """Probe ``target`` too (replacing one of the same name), until :meth:`update` or :meth:`discard`."""
        with self._cond:
            self._put(target)
            self._resize()
            self._cond.notify_all()

    def discard(self, name: str) -> None:
        """Stop probing ``name`` (no-op if it is not probed); a probe of it running now is not recorded."""
        with self._cond:
            self._drop(name)
            self._resize()
            self._cond.notify_all()

    def names(self) -> list[str]:
        """The names probed now, sorted."""
        with self._cond:
            return sorted(self._entries)

    def record(self, name: str) -> dict | None:
        """The last record computed for ``name`` (a copy), or None."""
        with self._cond:
            entry = self._entries.get(name)
            return dict(entry.record) if entry is not None and entry.record is not None else None

    @property
    def workers(self) -> int:
        """The probes run at once at most now (the ``workers`` given, else :func:`pool_size` of the targets)."""
        with self._cond:
            return self._max_workers

    def tick(self) -> None:
        """Have the scheduler look at the clock again now (for an injected clock that jumps)."""
        with self._cond:
            self._cond.notify_all()

    def wait_idle(self, timeout: float) -> bool:
        """Block until no probe is out (its result recorded, stored and reported) and none is due by
        the clock: True; False once ``timeout`` real seconds have passed. With an injected clock, a
        test moves it, calls :meth:`tick`, and waits here for the probes due then to be done."""
        with self._cond:
            return self._cond.wait_for(self._idle_now, timeout)

    def _idle_now(self) -> bool:
        if self._inflight:
            return False
        now = self._clock()
        return not any(due <= now and (e := self._entries.get(name)) is not None and e.generation == gen
                       for due, _, name, gen in self._heap)

    def _put(self, target: Target) -> None:
        if self._closed:
            raise RuntimeError("the prober is closed")
        entry = self._entries.get(target.name)
        if entry is not None:
            if entry.target.check == target.check:
                entry.target = target  # another exec template: the next probe takes it; the schedule goes on
                return
            # Another check: probed at once with a fresh record (_current), not on the old grid; a
            # probe of the old check still out is not recorded (the generation changes).
            self._drop(target.name)
        entry = _Entry(target, self._clock(), next(self._generations))
        self._entries[target.name] = entry
        self._push(entry)
        self._start_scheduler()

    def _drop(self, name: str) -> None:
        entry = self._entries.pop(name, None)
        if entry is not None:
            entry.generation = -1

    def _resize(self) -> None:
        """Under the lock: the bound on probe threads for the targets now (threads beyond it, made
        before, stay idle)."""
        if self._fixed_workers is None:
            self._max_workers = pool_size(e.target.check for e in self._entries.values())

    def _push(self, entry: _Entry) -> None:
        heapq.heappush(self._heap, (entry.due, next(self._seq), entry.target.name, entry.generation))

    # -- threads ----------------------------------------------------------------------------------
    def _start_scheduler(self) -> None:
        if self._scheduler is None:
            self._cancel_r, self._cancel_w = os.pipe2(os.O_CLOEXEC)
            self._scheduler = threading.Thread(target=self._schedule, name="dct-prober", daemon=True)
            self._scheduler.start()

    def _schedule(self) -> None:
        """The scheduler thread: sleep until the earliest due probe, hand it to a worker, repeat."""
        with self._cond:
            while not self._closed:
                if not self._heap:
                    self._cond.notify_all()  # wait_idle: nothing due
                    self._cond.wait()
                    continue
                due, _, name, generation = self._heap[0]
                delay = due - self._clock()
                if delay > 0:
                    self._cond.notify_all()  # wait_idle: nothing due now
                    self._cond.wait(delay)
                    continue
                heapq.heappop(self._heap)
                entry = self._entries.get(name)
                if entry is None or entry.generation != generation or entry.busy:
                    continue  # dropped or replaced; a busy one is pushed again when its probe ends
                if name in self._inflight:  # a probe of the entry this one replaced is still out
                    entry.due = self._clock() + _OVERLAP_RETRY
                    self._push(entry)
                    continue
                entry.busy = True
                self._inflight.add(name)
                self._jobs.put((entry, generation, entry.target))
                if self._idle == 0 and len(self._workers) < self._max_workers:
                    self._spawn_worker()
                else:
                    self._idle = max(0, self._idle - 1)

    def _spawn_worker(self) -> None:
        worker = threading.Thread(target=self._work, name=f"dct-probe-{len(self._workers)}", daemon=True)
        self._workers.append(worker)
        worker.start()

    def _work(self) -> None:
        """A probe thread: run the jobs the scheduler hands over; None ends it."""
        while True:
            job = self._jobs.get()
            if job is None:
                return
            entry, generation, target = job
            try:
                if not self._closed and entry.generation == generation:  # not dropped while it waited
                    self._run(entry, generation, target)  # which releases the entry, whatever happens
                else:
                    with self._cond:
                        self._release(entry, generation, target)
            except NamespaceLost as err:  # this thread is stuck in a container's netns: end it
                print(f"dct: health: {err}; the probe thread ends", file=sys.stderr)
                with self._cond:
                    self._workers.remove(threading.current_thread())
                    if not self._closed:
                        self._spawn_worker()  # counted idle by the finally below
                return
            except Exception as err:  # noqa: BLE001 - a thread boundary: one target's bug must not stop the rest
                print(f"dct: health: probing {target.name} failed: {type(err).__name__}: {err}", file=sys.stderr)
            finally:
                with self._cond:
                    self._idle += 1

    def _release(self, entry: _Entry, generation: int, target: Target) -> None:
        """Under the lock: the job is over; its entry's next slot is scheduled. Called once per job
        (by :meth:`_run`, or for a job dropped unrun): ``busy`` may be the entry's next job's."""
        if entry.busy:
            entry.busy = False
            self._inflight.discard(target.name)
            self._reschedule(entry, generation, target)
            self._cond.notify_all()  # wait_idle, and a replacing entry waiting for this probe

    # -- one probe --------------------------------------------------------------------------------
    def _run(self, entry: _Entry, generation: int, target: Target) -> None:
        """Probe ``target`` once and record, store and report the result. The entry stays busy
        until all of that is done, and is released (its next slot scheduled) whatever is raised."""
        try:
            container = self._container(entry, target.name)
            if container is None:
                return
            seen = self._wall()  # the run is running now: its start, if no record of it says otherwise
            result = self._probe(container, target.check, target.process, self._fork_server, self._cancel_r)
            with self._cond:
                if entry.generation != generation or self._closed:
                    return
                old = self._current(entry, container, target.check, seen)
                rec = entry.record = records.add_result(old, result, target.check)
                entry.dirty = True
            if records.store(container.state_dir, rec):
                with self._cond:
                    if entry.record is rec:
                        entry.dirty = False
            fresh_again = records.is_stale(old, target.check, records.last_result_at(rec) or self._wall())
            if self._on_change is not None and (old.get("status") != rec["status"] or fresh_again):
                try:
                    self._on_change(target.name, old.get("status", records.STARTING), rec["status"], dict(rec))
                except Exception as err:  # noqa: BLE001 - a reporter's failure must not stop the probes
                    print(f"dct: health: on_change for {target.name} failed: {err}", file=sys.stderr)
        finally:
            with self._cond:
                self._release(entry, generation, target)

    def _reschedule(self, entry: _Entry, generation: int, target: Target) -> None:
        """Under the lock: the next slot on this entry's grid after now (skipping missed ones)."""
        if entry.generation != generation or self._closed:
            return
        interval = max(entry.target.check.interval, 0.001)
        now = self._clock()
        entry.due += interval
        if entry.due <= now:
            entry.due += interval * (int((now - entry.due) // interval) + 1)
        self._push(entry)
        self._cond.notify_all()

    def _container(self, entry: _Entry, name: str):
        """The running container ``name`` (loaded again only when its state.json changed), else None."""
        path = os.path.join(self._runtime.root, name, store.STATE_FILE)
        try:
            st = os.stat(path)
        except OSError:
            entry.container = None
            return None
        identity = (st.st_ino, st.st_size, st.st_mtime_ns)
        if entry.container is None or entry.identity != identity:
            try:
                entry.container = self._runtime.load(name)
            except (ContainerError, OSError, ValueError):
                entry.container = None
                return None
            entry.identity = identity
        try:
            return entry.container if entry.container.status() == Status.RUNNING else None
        except (ContainerError, OSError):
            return None

    def _current(self, entry: _Entry, container, check: HealthCheck, seen: float) -> dict:
        """Under the lock: the record of the container's current run made by ``check``: the one
        held, the one stored (a supervisor started again), or a new one (``started_at``: the run's
        as a record of another check had it, else ``seen``, when this prober saw it running)."""
        run = container.state().created
        probe_of = check.to_normalized()
        held = entry.record if entry.record is not None and entry.record.get("run") == run else None
        if held is None:
            stored = records.read(container.state_dir)
            held = stored if stored is not None and stored.get("run") == run else None
        if held is not None and held.get("probe") == probe_of:
            return held
        started = parse_time(held.get("started_at")) if held is not None else None
        return records.new(run, started if started is not None else seen, self._wall())

    # -- the end ----------------------------------------------------------------------------------
    def close(self) -> None:
        """Stop: no probe starts any more, the running ones are cancelled (an exec'd command is
        killed and reaped), every thread is joined. Idempotent. Records not stored yet (a lock held
        at their last result) are tried once more."""
        with self._cond:
            if self._closed:
                return
            self._closed = True
            self._cond.notify_all()
            scheduler, workers = self._scheduler, list(self._workers)
        if self._cancel_w >= 0:
            os.write(self._cancel_w, b"x")
        if scheduler is not None:
            scheduler.join()
        for _ in workers:
            self._jobs.put(None)
        for worker in workers:
            worker.join()
        with self._cond:
            for entry in self._entries.values():
                if entry.dirty and entry.record is not None and entry.container is not None:
                    with contextlib.suppress(ContainerError, OSError):
                        records.store(entry.container.state_dir, entry.record)
            self._entries.clear()
        for fd in (self._cancel_r, self._cancel_w):
            if fd >= 0:
                os.close(fd)
        self._cancel_r = self._cancel_w = -1

    def __enter__(self) -> Prober:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
