"""Apply: execute a plan's actions in dependency order, in parallel where independent, journaled.

Teardowns (destroy, prune) run first, dependents before what they depend on, in waves; then each
other action starts once its dependencies' actions are done and their ``depends_on`` conditions
hold (``started``, ``healthy``, ``completed``: :mod:`.gates`, :mod:`.readiness`), on up to
``parallel`` threads (the runtime forks nothing in this process: the state root's monitor does).
A failed action, or a dependency that fails its condition, fails only its container and skips
the containers that depend on it. Every
action is appended to ``<root>/#journal.jsonl``; two applies on one root are serialised by a
flock on ``<root>/#apply.lock``.

Restart records (:mod:`.restart`, ``<data_root>/restarts/<name>.json``): the plan's are stored
first (:func:`record_restarts`); a restart under the policy stores its count before it runs (an
attempt counts even if it fails); a destroy, prune, create or recreate that succeeds forgets the
container's record (a spec change starts a new count); a stop (``state: stopped``) notes that run
as stopped on purpose (``stopped_run``), so that it is no exit for the policy.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from ..errors import ContainerError
from ..runtime import Runtime, monitor
from ..spec.desired import desired_documents
from . import readiness
from . import restart as restarting
from .gates import Gates
from .kinds import ActionKind, Result, Step
from .plan import Action, reload_hash
from .steps import execute
from .wait import WaitProbes

JOURNAL_FILE = "#journal.jsonl"
LOCK_FILE = "#apply.lock"


@dataclass
class Outcome:
    """What became of one action: ``result`` is a :class:`~.kinds.Result` (``ok``, ``failed`` or ``skipped``)."""

    action: Action
    result: str
    error: str = ""

    def __str__(self) -> str:
        text = f"{self.action}: {self.result}"
        return f"{text}: {self.error}" if self.error else text


@contextlib.contextmanager
def locked(root: str):
    """Hold ``<root>/#apply.lock`` (blocking): one apply at a time per state root."""
    os.makedirs(root, mode=0o711, exist_ok=True)
    fd = os.open(os.path.join(root, LOCK_FILE), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def apply(plan, docs, runtime: Runtime, parallel: int = 0, on_outcome=None, stopping=None,
          probes: WaitProbes | None = None, condition_timeout: float = readiness.DEFAULT_TIMEOUT,
          deadline: float | None = None, on_waiting=None, clock=time.monotonic) -> list[Outcome]:
    """Execute ``plan.actions`` for the specs ``docs`` (``.spec``, ``.source``; each read as its
    :class:`~declarative_ct.spec.desired.DesiredSpec`); the outcome of each.

    ``parallel``: threads (0: the CPU count). ``on_outcome(outcome)`` is called as each action
    ends (the CLI prints, the TUI streams). ``stopping()``: once it returns True (the supervisor
    got SIGTERM), no further action starts (each is ``skipped``); those already running finish.
    Never raises for a container's failure; an exception from ``on_outcome`` is raised once every
    action has run (a reporter that fails does not stop the convergence). The plan's restart
    records are stored first (:func:`record_restarts`).

    ``depends_on`` conditions (:mod:`.readiness`): a container's action starts once the actions of
    its dependencies are done and each dependency satisfies its condition (``started``,
    ``healthy``, ``completed``); the others go on meanwhile. ``condition_timeout``: seconds that
    the dependents may wait in all (``dct apply --timeout``), until ``deadline`` (``clock`` seconds:
    the command's one budget, begun before the apply; default ``condition_timeout`` from this
    call); a dependency that fails its condition, or still does not meet it then, skips its
    dependents with a message naming it, the condition and what was seen (``db did not become
    healthy within 60s (starting; last probe exit 1: connection refused)``). 0: no waiting at all
    (the supervisor: its next pass, woken by the health change, starts the dependent):
    ``on_waiting(action, why)`` is called for such a dependent (``waiting for db to be healthy
    (starting)``) and for its own dependents, which then have no outcome and no journal line;
    without ``on_waiting`` they are skipped with that message. ``probes``: a
    :class:`.wait.WaitProbes` the caller closes (``dct apply --wait`` goes on probing after; one
    that does not probe beside a supervisor); None: apply probes the dependencies it waits for
    ``healthy`` itself, and stops at the end. Ctrl-C (KeyboardInterrupt) while dependents wait:
    no other action starts, those running finish, then it propagates. ``clock``: monotonic
    seconds (tests).
    """
    record_restarts(plan, runtime)
    specs = {d.spec.name: d for d in desired_documents(docs)}
    parallel = parallel or os.cpu_count() or 1
    outcomes: list[Outcome] = []
    failed: set[str] = set()
    unreported: list[Exception] = []
    lock = threading.Lock()

    def finish(outcome: Outcome) -> Outcome:
        with lock:
            if outcome.result != Result.OK:
                failed.add(outcome.action.container)
            outcomes.append(outcome)
        _journal(runtime.root, outcome)
        if on_outcome:
            try:
                on_outcome(outcome)
            except Exception as err:  # noqa: BLE001 - raised after the last action
                unreported.append(err)
        return outcome

    def run(action: Action) -> Outcome:
        deps = set(specs[action.container].spec.dependencies()) if action.container in specs else set()
        if stopping is not None and stopping():
            return finish(Outcome(action, Result.SKIPPED, "not started: stopping"))
        if deps & failed:
            return finish(Outcome(action, Result.SKIPPED,
                                  f"depends on {', '.join(sorted(deps & failed))}, which failed"))
        return finish(_run_action(action, specs, runtime))

    teardown = [a for a in plan.actions if a.kind in ActionKind.TEARDOWN]
    rest = [a for a in plan.actions if a.kind not in ActionKind.TEARDOWN]
    own = WaitProbes(runtime) if probes is None else None
    try:
        with ThreadPoolExecutor(max_workers=parallel) as pool:
            for wave in reversed(_waves(teardown, specs)):  # dependents go first
                list(pool.map(run, wave))
            gates = Gates(rest, specs, runtime, own or probes, condition_timeout, clock, stopping, deadline)
            gates.run(pool, run, lambda a, why: finish(Outcome(a, Result.SKIPPED, why)), failed, on_waiting)
    finally:
        if own is not None:
            own.close()
    if unreported:
        raise unreported[0]
    return outcomes


def _run_action(action: Action, specs: dict, runtime: Runtime) -> Outcome:
    """Run one action's steps with its restart-record bookkeeping (the module doc); its outcome."""
    try:
        if action.restart is not None:
            restarting.save_record(runtime, action.container, action.restart)
        execute(action, specs.get(action.container), runtime)
        if action.kind in ActionKind.FRESH_START:
            restarting.remove_record(runtime, action.container)
        if Step.CREATE in action.steps and action.container in specs:
            _reload_baseline(runtime, specs[action.container].spec)
        elif action.kind == ActionKind.LIFECYCLE and Step.STOP in action.steps:
            _stopped_on_purpose(runtime, action.container)
        return Outcome(action, Result.OK)
    except (ContainerError, OSError, ValueError) as err:
        return Outcome(action, Result.FAILED, str(err))


def record_restarts(plan, runtime: Runtime) -> None:
    """Store the restart records the plan computed (``plan.restarts``: exits seen, backoffs
    scheduled, counts reset) under ``runtime.data_root``: ``dct apply`` and ``dct watch`` call it
    even when there is no action, ``dct plan`` never does. OSError (an unwritable data root) propagates."""
    for name, record in plan.restarts.items():
        restarting.save_record(runtime, name, record)


def _reload_baseline(runtime: Runtime, spec) -> None:
    """Record the ``reload_on`` files as a new run of the container finds them: later changes signal it."""
    if not spec.reload_on:
        return
    record = restarting.load_record(runtime, spec.name) or {}
    restarting.save_record(runtime, spec.name, {**record, "reload_run": runtime.load(spec.name).state().created,
                                                     "reload_hash": reload_hash(spec.reload_on)})


def _stopped_on_purpose(runtime: Runtime, name: str) -> None:
    """Note in the restart record that this run was stopped by apply (``state: stopped``): its
    exit is not one for the restart policy, and a later ``state: running`` starts it again."""
    record = restarting.load_record(runtime, name) or {}
    restarting.save_record(runtime, name, {**record, "stopped_run": runtime.load(name).state().created,
                                                "next_restart": None})


def _waves(actions: list[Action], specs: dict) -> list[list[Action]]:
    """Actions grouped so that each one comes after the actions of the containers it depends on."""
    by_name = {a.container: a for a in actions}
    level: dict[str, int] = {}

    def depth(name: str, seen: tuple[str, ...] = ()) -> int:
        if name in level:
            return level[name]
        deps = [d for d in (specs[name].spec.dependencies() if name in specs else []) if d in by_name and d not in seen]
        level[name] = 1 + max((depth(d, seen + (name,)) for d in deps), default=-1)
        return level[name]

    waves: list[list[Action]] = []
    for name in sorted(by_name):
        d = depth(name)
        while len(waves) <= d:
            waves.append([])
        waves[d].append(by_name[name])
    return waves


def _journal(root: str, outcome: Outcome) -> None:
    """Append one JSON line: time, container, class, cause, steps, result, error.

    The record starts on a line of its own: after a torn last line (a writer killed mid-append, a
    full disk) a newline comes first, so the torn line stays one bad line that readers skip and
    this record stays whole. The check and the append hold a ``flock`` on the journal (apply's
    threads, and any other writer).
    """
    entry = {"time": monitor.rfc3339_now(), "container": outcome.action.container, "class": outcome.action.kind,
             "cause": outcome.action.cause, "steps": list(outcome.action.steps), "result": outcome.result}
    if outcome.error:
        entry["error"] = outcome.error
    line = (json.dumps(entry, separators=(",", ":")) + "\n").encode()
    fd = os.open(os.path.join(root, JOURNAL_FILE), os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o640)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        size = os.fstat(fd).st_size
        if size and os.pread(fd, 1, size - 1) != b"\n":
            line = b"\n" + line
        os.write(fd, line)
    finally:
        os.close(fd)
