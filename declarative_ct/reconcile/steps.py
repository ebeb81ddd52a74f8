"""The steps of one action: the runtime operations apply runs for it (:func:`execute`), each
through :data:`_STEPS`, with what a recreate that fails half-way needs to bring the old container
back. Apply (:mod:`.apply`) calls :func:`execute` on its threads, one action per container.
"""

from __future__ import annotations

import os
import signal
from dataclasses import dataclass

from ..configs import Config, Resources
from ..errors import ContainerError
from ..runtime import Runtime, Status, logfiles, store
from ..spec import forms
from . import last_applied
from .convert import to_runtime
from .kinds import ActionKind, Step
from .plan import Action

_POLL = 0.01


FAULT_ENV = "DCT_FAULT_POINT"
"""Tests set it to ``before:<step>`` or ``after:<step>`` to have apply SIGKILL itself there. A
``create`` followed by ``start`` is one runtime call (``Container.run``): its ``after:create`` and
``before:start`` points come after the container runs."""


def _fault(point: str) -> None:
    if os.environ.get(FAULT_ENV) == point:
        os.kill(os.getpid(), signal.SIGKILL)


def execute(action: Action, doc, runtime: Runtime) -> None:
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
