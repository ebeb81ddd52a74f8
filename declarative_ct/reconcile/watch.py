# Size: one loop over one state (each spec file's last good documents, the debounce, the reload and stop requests): its rules act together
"""``dct watch``: apply the specs whenever they change, and every ``resync`` seconds.

:func:`watch` runs one loop (in the caller's thread) over spec files and directories:

- Files are watched with watchdog's :class:`~watchdog.observers.Observer` on each directory
  involved, non-recursively: a given directory's spec files (``*.yaml``/``*.yml``, not dotfiles,
  ``~``, ``.swp`` or ``.bak``: :func:`~declarative_ct.spec.load.is_spec_file`), or a given file
  (whatever its name). Every other entry (an editor's swap or temporary file) is ignored.
- A changed file is read once its content is stable: same size, mtime and sha256 for
  ``debounce`` seconds. A file still being written keeps its previous documents meanwhile.
- Each file keeps its last good documents. A file that turns invalid (a syntax error, a bad
  field, a half-written file, an empty one, a name that another file declares) keeps its last
  good documents in force and its errors are printed (``file:line:col: field: message``, on the
  error stream); it is never read as "no containers". A file invalid from the start adds nothing
  and its containers are left alone.
- A file that is removed takes its documents with it; its containers are pruned only with
  ``prune`` (otherwise left running, with a note).
- After each change and every ``resync`` seconds (and when a restart held back by its backoff
  is due), it observes, plans and applies under :func:`.apply.locked`, as ``dct apply`` does, and
  prints each action's outcome; so drift and exited containers are caught (the restart policy
  decides what becomes of these: :mod:`.restart`).
- An exit is acted on at once, not at the next resync: the state root is watched too (recursively)
  for the ``exit.json`` the monitor writes when a container's init exits.
- Health probes (``health:``) run here, in the loop's :class:`.probing.Probing` (no thread until a
  declared container has one): each change of a container's health status is printed and planned
  at once (``on_unhealthy: restart``); the probes stop with the loop.
- A supervisor hooks into the loop through :class:`WatchHooks` (``dct watch`` as a service: its
  readiness and watchdog notifications, SIGHUP's reload, the supervisor record). When ``stop`` is
  set during an apply, the actions running finish and no new one starts; the containers are left
  as they are (running).

Only watchdog besides the reconciler: no Textual, no Ansible.
"""

from __future__ import annotations

import hashlib
import os
import re
import sys
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer

from ..errors import ContainerError
from ..runtime import Runtime, store
from ..spec.load import SpecDocument, SpecError, SpecErrors, is_spec_file, load_paths
from . import apply as applying
from .kinds import Result
from .plan import make_plan, observe
from .probing import Probing

POLL = 0.1  # seconds: the longest the loop sleeps before looking at the stop event again
# Events that may mean new content (opened/closed-without-write do not: our own reads make them).
_CHANGE_EVENTS = frozenset({"created", "modified", "deleted", "moved", "closed"})
_COUNTDOWN = re.compile(r"restart in [0-9.]+ s")


@dataclass
class WatchOptions:
    """``prune``: remove our containers whose file was removed or no longer names them;
    ``resync``: seconds between plans when nothing changes (> 0); ``debounce``: seconds a changed
    file must stay the same before it is read (≥ 0); ``parallel``: threads per apply wave (0: the
    CPU count)."""

    prune: bool = False
    resync: float = 2.0  # cheap (observe+plan of 100 containers ~12 ms) and exits are noticed soon
    debounce: float = 0.3
    parallel: int = 0


class WatchHooks:
    """What a supervisor adds to the :func:`watch` loop; every method here does nothing.

    All are called from the loop's thread, except :meth:`alive`, which apply's threads also call
    after each action. They must be quick and must not raise.
    """

    def reload_requests(self) -> int:
        """A count that grows with each request to reload every spec file now (SIGHUP): when it has
        changed, the loop reloads them all (no debounce), calls :meth:`reloading`, reconciles,
        then calls :meth:`ready` again."""
        return 0

    def ready(self, containers: int, paths: list[str]) -> None:
        """The first reconcile pass is done (and again after each reload's pass): ``containers``
        declared in ``paths``."""

    def reloading(self) -> None:
        """A requested reload starts."""

    def passed(self, containers: int) -> None:
        """A reconcile pass ended (whatever its outcome); ``containers`` declared."""

    def alive(self) -> None:
        """The loop is turning (each turn, and between the actions of an apply): a watchdog's ping."""


@dataclass
class _File:
    """What the loop holds for one spec file: its last good documents and its current errors."""

    docs: list[SpecDocument] = field(default_factory=list)
    errors: list[SpecError] = field(default_factory=list)

    @property
    def valid(self) -> bool:
        return not self.errors


class _Handler(FileSystemEventHandler):
    """watchdog callback (its thread): note the relevant paths an event names and wake the loop."""

    def __init__(self, relevant: Callable[[str], bool], changed: Callable[[str], None]) -> None:
        super().__init__()
        self._relevant = relevant
        self._changed = changed

    def on_any_event(self, event: FileSystemEvent) -> None:
        if event.is_directory or event.event_type not in _CHANGE_EVENTS:
            return
        for path in (event.src_path, getattr(event, "dest_path", "")):
            if path:
                path = os.path.abspath(os.fsdecode(path))
                if self._relevant(path):
                    self._changed(path)


def _signature(path: str) -> tuple[int, int, str] | None:
    """``(size, mtime_ns, sha256)`` of a file's content; None when it is absent or unreadable."""
    try:
        st = os.stat(path)
        with open(path, "rb") as f:
            digest = hashlib.sha256(f.read()).hexdigest()
    except OSError:
        return None
    return st.st_size, st.st_mtime_ns, digest


def _print_to(stream) -> Callable[[str], None]:
    return lambda line: print(line, file=stream, flush=True)


class _Watcher:
    """The state of one :func:`watch` run (see the module doc)."""

    def __init__(self, paths: list[str], root: str | None, options: WatchOptions, stop: threading.Event,
                 out: Callable[[str], None], err: Callable[[str], None], clock: Callable[[], float],
                 wall: Callable[[], float], hooks: WatchHooks, data_root: str | None) -> None:
        self.options = options
        self.stop = stop
        self.clock, self.wall = clock, wall
        self.hooks = hooks
        self.runtime = Runtime(root, data_root)
        self.observed_cache: dict = {}  # plan.observe: containers whose state.json did not change
        self.paths = [os.path.abspath(p) for p in paths]
        self.dirs = sorted({p for p in self.paths if os.path.isdir(p)})  # every spec file in them
        self.given = {p for p in self.paths if not os.path.isdir(p)}  # these files, whatever their name
        self.files: dict[str, _File] = {}
        self.pending: dict[str, tuple[tuple | None, float]] = {}  # path -> (signature, since when)
        self._changed: set[str] = set()
        self._lock = threading.Lock()
        self._print_lock = threading.Lock()
        self.wake = threading.Event()
        self.exited = threading.Event()  # an exit.json appeared under the state root
        self._out, self._err = out, err
        self._shown: set[str] = set()  # notes and plan errors printed by the last reconcile
        self._said_stopping = False  # "stopping: …" printed (once, by whichever apply thread saw the stop)
        self.probing = Probing(self.runtime, self.out, self.wake.set)  # health probes: no thread until one is declared

    # -- output (apply's threads print too) ---------------------------------------------------------
    def out(self, line: str) -> None:
        with self._print_lock:
            self._out(line)

    def err(self, line: str) -> None:
        with self._print_lock:
            self._err(line)

    # -- which files ----------------------------------------------------------------------------------
    def relevant(self, path: str) -> bool:
        """Whether an event on ``path`` concerns a spec file we watch."""
        return path in self.given or (os.path.dirname(path) in self.dirs and is_spec_file(os.path.basename(path)))

    def current_files(self) -> set[str]:
        """The spec files that exist now (a given file, or a spec file of a given directory)."""
        out = {p for p in self.given if os.path.lexists(p)}
        for d in self.dirs:
            try:
                names = os.listdir(d)
            except OSError:
                continue
            out.update(os.path.join(d, n) for n in names if is_spec_file(n) and not os.path.isdir(os.path.join(d, n)))
        return out

    def note_exit(self, path: str) -> None:
        """watchdog thread: a container's exit was recorded; reconcile without waiting for the resync."""
        self.exited.set()
        self.wake.set()

    def note_change(self, path: str) -> None:
        """From watchdog's thread: ``path`` changed (or appeared, or went)."""
        with self._lock:
            self._changed.add(path)
        self.wake.set()

    def stable_changes(self) -> set[str]:
        """The changed files whose content (or absence) has now held still for ``debounce`` seconds."""
        with self._lock:
            new, self._changed = self._changed, set()
        now = self.clock()
        for path in new:
            self.pending[path] = (_signature(path), now)  # an event restarts the wait
        stable = set()
        for path, (sig, since) in list(self.pending.items()):
            current = _signature(path)
            if current != sig:
                self.pending[path] = (current, now)
            elif now - since >= self.options.debounce:
                stable.add(path)
                del self.pending[path]
        return stable

    # -- loading --------------------------------------------------------------------------------------
    def reload(self) -> bool:
        """Read every spec file that is not being written; keep the last good documents of the
        invalid ones. Prints what changed; True if the documents in force may have changed."""
        current = self.current_files()
        for path in sorted(set(self.files) - current - set(self.pending)):
            held = self.files.pop(path)
            names = ", ".join(d.spec.name for d in held.docs) or "no containers"
            self.out(f"{path}: removed ({names})")
        candidates = {p for p in current if p not in self.pending}
        kept = {p for p in self.files if p in self.pending}  # being written: as they were
        bad: dict[str, list[SpecError]] = {}
        rounds = 0
        while True:
            kept_names = {d.spec.name: p for p in kept if p in self.files for d in self.files[p].docs}
            try:
                docs = load_paths(sorted(candidates)) if candidates else []
            except SpecErrors as e:
                by_file: dict[str, list[SpecError]] = {}
                for error in e.errors:
                    by_file.setdefault(os.path.abspath(error.file), []).append(
                        self._explain(error, kept_names) if rounds else error)
                failed = set(by_file) & candidates or set(candidates)  # unplaceable errors: nothing changes
                for path in failed:
                    bad[path] = by_file.get(path) or [SpecError(path, 0, 0, "-", str(e).splitlines()[0])]
                candidates -= failed
                kept |= failed
                rounds += 1
                continue
            clashes: dict[str, list[SpecError]] = {}
            for doc in docs:
                other = kept_names.get(doc.spec.name)
                if other is not None:
                    clashes.setdefault(doc.source, []).append(SpecError(
                        doc.source, doc.line, 1, "name", f"duplicate name `{doc.spec.name}` (also in {other}, "
                                                         "kept at its last valid version)"))
            if not clashes:
                break
            bad.update(clashes)
            candidates -= set(clashes)
            kept |= set(clashes)
            rounds += 1
        changed = False
        for path in sorted(candidates):
            mine = [d for d in docs if d.source == path]
            before = self.files.get(path)
            if before is None or not before.valid or before.docs != mine:
                changed = True
                names = ", ".join(d.spec.name for d in mine)
                self.out(f"{path}: {'valid again: ' if before is not None and not before.valid else ''}"
                         f"{len(mine)} container{'s' if len(mine) != 1 else ''} ({names})")
            self.files[path] = _File(mine)
        for path, errors in sorted(bad.items()):
            before = self.files.get(path)
            if before is not None and before.errors == errors:
                continue  # already reported
            held = before.docs if before is not None else []
            for error in errors:
                self.err(str(error))
            if held:
                self.err(f"{path}: invalid: its last valid version stays in force "
                         f"({', '.join(d.spec.name for d in held)})")
            else:
                self.err(f"{path}: invalid: nothing from it is applied until it is valid")
            self.files[path] = _File(held, errors)
        return changed or bool(bad)

    @staticmethod
    def _explain(error: SpecError, kept_names: dict[str, str]) -> SpecError:
        """A depends_on error caused by a file kept at its last version: say so."""
        # error.value: the unknown container's name (only "unknown container" errors of depends_on carry one)
        if error.field.startswith("depends_on") and isinstance(error.value, str) and error.value in kept_names:
            message = (f"`{error.value}` is declared by {kept_names[error.value]}, which is invalid or being "
                       "written: this file keeps its last valid version meanwhile")
            return SpecError(error.file, error.line, error.col, error.field, message)
        return error

    def docs(self) -> list[SpecDocument]:
        """The documents in force: each file's last good ones."""
        return [d for path in sorted(self.files) for d in self.files[path].docs]

    # -- reconciling ----------------------------------------------------------------------------------
    def scope(self, observed) -> list[str]:
        """Where prune may act: valid files, and files that are gone (not invalid or pending ones)."""
        scope = [p for p, f in self.files.items() if f.valid]
        for obs in observed.values():
            source = obs.source
            if (obs.owned and source and (source in self.given or os.path.dirname(source) in self.dirs)
                    and source not in self.files and source not in self.pending and not os.path.lexists(source)):
                scope.append(source)
        return scope

    def reconcile(self) -> float | None:
        """Observe, plan and apply once (under the root's apply lock); the wall time of the next
        restart held back by its backoff, or None."""
        docs = self.docs()
        with applying.locked(self.runtime.root):
            observed = observe(self.runtime, self.observed_cache)
            plan = make_plan(docs, observed, prune=self.options.prune, scope=self.scope(observed), now=self.wall(),
                             verb="watch")
            shown = set()
            for note in plan.notes:  # each once while it holds (a backoff's countdown does not count)
                key = _COUNTDOWN.sub("restart in … s", note)
                shown.add(key)
                if key not in self._shown:
                    self.out("# " + note)
            for error in plan.errors:
                shown.add(error)
                if error not in self._shown:
                    self.err(f"dct: {error}")
            previous, self._shown = self._shown, shown
            if not plan.actions:
                applying.record_restarts(plan, self.runtime)
                self.probing.after_pass(docs, observed, ())
                return plan.next_restart
            waiting: list[str] = []  # dependents whose condition does not hold yet: said once while it holds
            outcomes = applying.apply(plan, docs, self.runtime, parallel=self.options.parallel,
                                      on_outcome=self._outcome, stopping=self._stopping, condition_timeout=0,
                                      on_waiting=lambda action, why: waiting.append(f"{action}: {why}"))
            self.probing.after_pass(docs, observed, outcomes)
            for line in sorted(waiting):
                shown.add(line)
                if line not in previous:
                    self.out("# " + line)
        if not outcomes:  # only dependents still waiting: no action, no summary
            return plan.next_restart
        failed = [o for o in outcomes if o.result != Result.OK]
        self.out(f"{len(outcomes) - len(failed)} done, {sum(o.result == Result.FAILED for o in failed)} failed, "
                 f"{sum(o.result == Result.SKIPPED for o in failed)} skipped")
        return plan.next_restart

    def _stopping(self) -> bool:
        """apply's question before each action: stop asked? Said once, so a stop that waits for the
        actions under way is not silent."""
        if not self.stop.is_set():
            return False
        if not self._said_stopping:
            self._said_stopping = True
            self.out("stopping: the actions under way finish, no other starts; the containers stay as they are")
        return True

    def _outcome(self, outcome) -> None:
        """apply's threads: print an action's outcome; the loop is alive between actions."""
        self.out(str(outcome))
        self.hooks.alive()

    def _reload_now(self) -> None:
        """A requested reload (SIGHUP): every spec file read now, whether or not it settled."""
        self.hooks.reloading()
        self.out("reloading every spec file (requested)")
        with self._lock:
            self._changed.clear()
        self.pending.clear()
        self.reload()

    # -- the loop -------------------------------------------------------------------------------------
    def run(self) -> int:
        missing = [p for p in self.paths if not os.path.exists(p)]
        if missing:
            for p in missing:
                self.err(f"dct watch: {p}: no such file or directory")
            return 1
        observer = Observer()
        handler = _Handler(self.relevant, self.note_change)
        for d in sorted(set(self.dirs) | {os.path.dirname(p) for p in self.given}):
            observer.schedule(handler, d, recursive=False)
        os.makedirs(self.runtime.root, mode=0o700, exist_ok=True)
        observer.schedule(_Handler(lambda p: os.path.basename(p) == store.EXIT_FILE, self.note_exit),
                          self.runtime.root, recursive=True)
        observer.start()
        try:
            self.reload()
            docs = self.docs()
            self.out(f"watching {' '.join(self.paths)}: {len(docs)} container{'s' if len(docs) != 1 else ''} "
                     f"in {sum(1 for f in self.files.values() if f.docs)} file(s); resync every "
                     f"{self.options.resync:g} s")
            next_sync = self.clock()
            reloads = self.hooks.reload_requests()
            announce = True  # READY after the first pass, and after each requested reload's pass
            while not self.stop.is_set():
                self.hooks.alive()
                self.wake.clear()
                if self.hooks.reload_requests() != reloads:
                    reloads = self.hooks.reload_requests()
                    self._reload_now()
                    next_sync, announce = self.clock(), True
                elif self.stable_changes() and self.reload():
                    next_sync = self.clock()  # apply after each change
                if self.exited.is_set() or self.probing.changed.is_set():  # an exit, a health status change:
                    self.exited.clear()                                     # the restart policy decides now
                    self.probing.changed.clear()
                    next_sync = self.clock()
                now = self.clock()
                if now >= next_sync:
                    next_sync = now + self.options.resync
                    due = self._guarded(self.reconcile)
                    declared = len(self.docs())
                    self.hooks.passed(declared)
                    if announce and not self.stop.is_set():
                        announce = False
                        self.hooks.ready(declared, self.paths)
                    if due is not None:  # a restart waits for its backoff: come back when it is due
                        next_sync = min(next_sync, self.clock() + max(0.0, due - self.wall()) + 0.01)
                tick = POLL if not self.pending else max(0.01, min(POLL, self.options.debounce / 3))
                self.wake.wait(max(0.0, min(tick, next_sync - self.clock())))
        finally:
            self.probing.close()
            observer.stop()
            observer.join(timeout=10)
        self.out("stopped: the containers are left as they are")
        return 0

    def _guarded(self, step: Callable[[], float | None]) -> float | None:
        """Run one reconcile; an error is printed and the loop goes on (the next resync retries)."""
        try:
            return step()
        except (ContainerError, OSError, ValueError) as error:
            self.err(f"dct watch: reconcile failed: {error}")
            return None


def watch(paths: Iterable[str], root: str | None, options: WatchOptions, stop: threading.Event,
          out: Callable[[str], None] | None = None, err: Callable[[str], None] | None = None,
          clock: Callable[[], float] = time.monotonic, wall: Callable[[], float] = time.time,
          hooks: WatchHooks | None = None, data_root: str | None = None) -> int:
    """Apply the specs under ``paths`` to the state root ``root`` on every change until ``stop`` is set.

    Args:
        paths: spec files and directories (non-recursive), as for ``dct apply``; each must exist
            when the watch starts (files may come and go afterwards).
        root: the state root (None: ``$DCT_ROOT`` or ``/run/dct``).
        options: :class:`WatchOptions` (prune, resync and debounce in seconds, parallel).
        stop: set it (from another thread or a signal handler) to end the loop; it ends within
            :data:`POLL` seconds, or once the actions of an apply in progress that have started
            have finished (no new one starts; the containers are left running).
        out: called with each line of normal output (outcomes, notes, reloads); default stdout.
        err: called with each error line (spec errors ``file:line:col: field: message``, failed
            reconciles); default stderr.
        clock: monotonic seconds, for debounce and resync; ``wall``: epoch seconds, for restart
            backoffs (both injectable for tests).
        hooks: a supervisor's :class:`WatchHooks` (readiness, reload requests, watchdog); None: none.
        data_root: where restart records are kept (None: the root's default data root).

    Returns:
        0 once stopped (the observer's threads are joined); 1 at once if a path does not exist.

    Errors while reconciling (an unwritable root…) are printed and retried at the next resync;
    a container's failure is an outcome line, as with ``dct apply``.
    """
    watcher = _Watcher(list(paths), root, options, stop, out or _print_to(sys.stdout), err or _print_to(sys.stderr),
                       clock, wall, hooks or WatchHooks(), data_root)
    return watcher.run()
