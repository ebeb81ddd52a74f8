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
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from ..configs import Config, Resources
from ..errors import ContainerError
from ..runtime import Runtime, Status, logfiles, monitor, store
from ..spec import forms
from ..spec.desired import desired_documents
from . import restart as restarting
from . import last_applied, readiness
from .convert import to_runtime
from .gates import Gates
from .kinds import ActionKind, Result, Step
from .plan import Action, reload_hash

JOURNAL_FILE = "#journal.jsonl"
LOCK_FILE = "#apply.lock"
_POLL = 0.01


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


def apply(plan, docs, runtime: Runtime, parallel: int = 0, on_outcome=None, stopping=None, prober=None,
          condition_timeout: float = readiness.DEFAULT_TIMEOUT, clock=time.monotonic) -> list[Outcome]:
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
    ``healthy``, ``completed``); the others go on meanwhile. ``condition_timeout``: seconds, from
    this call, that the dependents may wait in all (``dct apply --timeout``); a dependency that
    fails its condition, or still does not meet it then, skips its dependents with a message
    naming it, the condition and what was seen (``db did not become healthy within 60s
    (starting; last probe exit 1: connection refused)``). 0: no waiting at all (the supervisor:
    the dependent is skipped ``waiting for db to be healthy (starting)`` and its next pass,
    woken by the health change, starts it). ``prober``: a
    :class:`~declarative_ct.health.prober.Prober` already probing (the supervisor's) or a
    :class:`.readiness.Probes` the caller closes (``dct apply --wait`` goes on probing after);
    None: apply probes the dependencies it waits for ``healthy`` itself, and stops at the end.
    Ctrl-C (KeyboardInterrupt) while dependents wait: no other action starts, those running
    finish, then it propagates. ``clock``: monotonic seconds (tests).
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
    probes = prober if isinstance(prober, readiness.Probes) else readiness.Probes(runtime, prober)
    try:
        with ThreadPoolExecutor(max_workers=parallel) as pool:
            for wave in reversed(_waves(teardown, specs)):  # dependents go first
                list(pool.map(run, wave))
            gates = Gates(rest, specs, runtime, probes, condition_timeout, clock, stopping)
            gates.run(pool, run, lambda a, why: finish(Outcome(a, Result.SKIPPED, why)), failed)
    finally:
        if probes is not prober:
            probes.close()
    if unreported:
        raise unreported[0]
    return outcomes


def _run_action(action: Action, specs: dict, runtime: Runtime) -> Outcome:
    """Run one action's steps with its restart-record bookkeeping (the module doc); its outcome."""
    try:
        if action.restart is not None:
            restarting.save_record(runtime, action.container, action.restart)
        _execute(action, specs.get(action.container), runtime)
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


FAULT_ENV = "DCT_FAULT_POINT"
"""Tests set it to ``before:<step>`` or ``after:<step>`` to have apply SIGKILL itself there. A
``create`` followed by ``start`` is one runtime call (``Container.run``): its ``after:create`` and
``before:start`` points come after the container runs."""


def _fault(point: str) -> None:
    if os.environ.get(FAULT_ENV) == point:
        os.kill(os.getpid(), signal.SIGKILL)


def _execute(action: Action, doc, runtime: Runtime) -> None:
    """Run the action's steps in order, reloading the container after each (it changes under us),
    except after ``create`` and ``start``, whose container object is current, and after the last.
    A ``create`` followed by ``start`` runs the container in one call (libcontainer's ``Run()``).

    An action that creates a container after other steps (a recreate, a stopped one started
    again) first checks everything create would refuse, so that the old container is never
    stopped for a new one that cannot be made; a plain create checks as it creates.
    """
    name = action.container
    built = to_runtime(doc.spec, doc.source, runtime) if Step.CREATE in action.steps else None
    if built is not None and action.steps[0] != Step.CREATE:
        runtime.check(name, built[0])
    container = runtime.load(name) if action.steps[0] != Step.CREATE and runtime.exists(name) else None
    previous = _restorable(container) if action.kind == ActionKind.RECREATE else None
    destroyed = False
    started = False  # by a create that ran its container at once (create + start in one runtime call)
    for i, step in enumerate(action.steps):
        _fault(f"before:{step}")
        if not (step == Step.START and started):
            then_start = step == Step.CREATE and action.steps[i + 1:i + 2] == (Step.START,)
            try:
                current = _step(step, action, doc, runtime, container, built, then_start)
            except (ContainerError, OSError, ValueError) as err:
                if destroyed and previous is not None:
                    raise ContainerError(f"{err}; {_restore(runtime, name, previous)}") from err
                raise
            started = then_start
            destroyed = destroyed or step == Step.DESTROY
            if step in (Step.CREATE, Step.START):
                container = current
            elif i + 1 < len(action.steps):
                container = runtime.load(name) if step != Step.DESTROY and runtime.exists(name) else None
        _fault(f"after:{step}")


def _restorable(container) -> tuple | None:
    """``(config, process, paused, log)`` of a running or paused container made from a spec, to bring it
    back if its replacement cannot be made; None otherwise."""
    if container is None or container.status() not in (Status.RUNNING, Status.PAUSED, Status.PAUSING):
        return None
    try:
        applied = last_applied.read(container.config)
        return (container.config, last_applied.process(applied), container.status() != Status.RUNNING,
                forms.log_config(applied.get("logging")))
    except (ValueError, KeyError, TypeError, ContainerError):  # ConfigInvalid: a logging record out of range
        return None


def _restore(runtime: Runtime, name: str, previous: tuple) -> str:
    """The replacement failed after the old container went: make the old one again (same config and
    process, a new init); what became of it, for the error. The next apply tries the replacement again."""
    config, process, paused, log = previous
    try:
        if runtime.exists(name):  # what the failed create left
            if os.path.exists(os.path.join(runtime.root, name, store.STATE_FILE)):
                runtime.load(name).destroy()
            runtime.cleanup(name)
        restored = runtime.create(name, config)
        _start_init(restored, process, log, run=True)
        if paused:
            restored.pause()
    except (ContainerError, OSError) as again:
        return f"bringing the previous container back failed too: {again}"
    return "the previous container was brought back (its spec as before, a new init)"


def _step(step: str, action: Action, doc, runtime: Runtime, container, built: tuple | None = None,
          then_start: bool = False):
    """One runtime operation of an action, through :data:`_STEPS` (``container`` is None before
    ``create``; ``built``: the ``(Config, Process)`` that ``create`` makes; ``then_start``: the next
    step is ``start``, done with the create as libcontainer's ``Run()``). Returns the container
    ``create`` made, else ``container``.

    Raises:
        ValueError: ``step`` is not a :class:`~.kinds.Step`.
    """
    try:
        run = _STEPS[step]
    except KeyError:
        raise ValueError(f"unknown step {step!r}") from None
    made = run(_StepCall(action, doc.spec if doc is not None else None, runtime, container, built, then_start))
    return container if made is None else made


@dataclass(frozen=True)
class _StepCall:
    """What a step works on: the action, the desired spec (None for a prune), the runtime, the
    container as loaded (None before ``create``), what ``create`` makes, whether ``start`` follows."""

    action: Action
    spec: object
    runtime: Runtime
    container: object
    built: tuple | None
    then_start: bool


def _step_stop(call: _StepCall) -> None:
    _stop(call.container, call.spec)


def _step_destroy(call: _StepCall) -> None:
    _stop(call.container, call.spec)
    call.container.destroy()
    if call.action.kind in ActionKind.TEARDOWN:  # removed for good; a restart or recreate keeps the name's logs
        logfiles.remove(call.runtime.data_root, call.action.container)


def _step_create(call: _StepCall):  # noqa: ANN202 - runtime Container
    config, process = call.built
    call.runtime.cleanup(call.action.container)  # what a create killed half-way left (no state.json); never a live one
    made = call.runtime.create(call.action.container, config)
    _start_init(made, process, call.spec.log, call.then_start)
    return made


def _start_init(container, process, log, run: bool) -> None:  # noqa: ANN001 - Container, Process, LogConfig
    """Start ``container``'s init under the root's monitor (our flows: it records the exit and copies
    the output into the name's logs, rotated as ``log``, a ``configs.logs.LogConfig``, says);
    ``run``: and let it run at once (``Container.run``, else ``Container.start``)."""
    (container.run if run else container.start)(process, monitor=True, log=log)


def _step_set(call: _StepCall) -> None:
    update = Config(rootfs=call.container.config.rootfs)
    update.cgroups.resources = Resources(**call.action.resources)
    call.container.set(update)


_STEPS = {
    Step.STOP: _step_stop,
    Step.DESTROY: _step_destroy,
    Step.CREATE: _step_create,
    Step.START: lambda call: call.container.exec(),
    Step.PAUSE: lambda call: call.container.pause(),
    Step.RESUME: lambda call: call.container.resume(),
    Step.SIGNAL: lambda call: call.container.signal(signal.Signals[call.spec.reload_signal]),
    Step.SET: _step_set,
}
"""Each :class:`~.kinds.Step` to the function that runs it; a function returns the container it
made (``create``) or None."""


def _stop(container, spec) -> None:
    """Stop: the spec's stop signal, ``stop_timeout`` seconds, then SIGKILL to every process (docker stop),
    through ``Container.stop``; then up to 1 s for the monitor to record the exit before a destroy."""
    if container is None:
        return
    if spec is None:  # pruned: no spec any more, but the one it was created from says how to stop it
        applied = last_applied.read(container.config)
        sig, timeout = signal.Signals[applied.get("stop_signal", "SIGTERM")], applied.get("stop_timeout", 10.0)
    else:
        sig, timeout = signal.Signals[spec.stop_signal], spec.stop_timeout
    container.stop(sig, grace=timeout, timeout=10.0, exit_wait=1.0, poll=_POLL)


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
