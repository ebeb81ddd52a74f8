"""The ``dct`` verbs that move an existing container through its life, as runc's: start, kill,
delete, pause, resume (``create``/``run`` are :mod:`.create`)."""

from __future__ import annotations

import argparse
import os

from ..configs.signals import parse_signal
from ..errors import ContainerError, ContainerNotExists
from ..errors import SystemError as ContainerSystemError
from ..runtime import Status, store
from ..runtime.state import allowed_ops
from .common import runtime_for


def cmd_start(args: argparse.Namespace) -> int:
    """``dct start``: release a created container (libcontainer ``Exec()``), with runc's refusals."""
    container = runtime_for(args).load(args.id)
    status = container.status()
    if status == Status.STOPPED:
        if os.path.exists(os.path.join(container.state_dir, store.EXEC_FIFO)):
            container.exec()  # never released: raises, saying how init died during its set-up
        raise ContainerError("cannot start a container that has stopped")
    if status == Status.RUNNING:
        raise ContainerError("cannot start an already running container")
    if status != Status.CREATED:
        raise ContainerError(f"cannot start a container in the {status} state")
    container.exec()
    return 0


def cmd_kill(args: argparse.Namespace) -> int:
    """``dct kill``: signal init (or every process with --all); default SIGTERM."""
    sig = parse_signal(args.signal)
    runtime_for(args).load(args.id).signal(sig, all=args.all)
    return 0


def cmd_delete(args: argparse.Namespace) -> int:
    """``dct delete``: runc's delete rules (created is killed; running/paused need --force)."""
    rt = runtime_for(args)
    try:
        container = rt.load(args.id)
    except ContainerNotExists:
        if rt.exists(args.id) and rt.cleanup(args.id):  # an aborted create: no state.json
            return 0
        if not rt.exists(args.id):
            if args.force:
                return 0
            raise
        container = rt.load(args.id)  # a create finished while we waited for its lock
    except ContainerSystemError:
        if not args.force:
            raise
        rt.cleanup(args.id, force=True)  # corrupt state.json: fall back to what the id tells
        return 0
    status = container.status()
    if not args.force and "destroy" not in allowed_ops(status):  # runc's words, not Destroy()'s
        raise ContainerError(f"cannot delete container {args.id} that is not stopped: {status}")
    # runc kills a created init too, and waits (10 s) for it to be gone before the destroy
    logged = container.log_path is not None  # read before the destroy forgets the state
    container.destroy(force=args.force or status == Status.CREATED, timeout=10.0)
    if logged:
        _forget_logs(rt, container)
    return 0


def _forget_logs(rt, container) -> None:  # noqa: ANN001 - Runtime, Container
    """A deleted container made by ``create/run --monitor`` takes its logs with it (as ``docker rm``);
    one that ``dct apply`` made keeps them: apply recreates the name, and removes them itself when
    the name goes (``state: absent``, prune)."""
    from ..reconcile.convert import made_by_apply
    from ..runtime import logfiles

    if not made_by_apply(container.config):
        logfiles.remove(rt.data_root, container.id)


def cmd_pause(args: argparse.Namespace) -> int:
    """``dct pause``: freeze the container's cgroup."""
    runtime_for(args).load(args.id).pause()
    return 0


def cmd_resume(args: argparse.Namespace) -> int:
    """``dct resume``: thaw the container's cgroup."""
    runtime_for(args).load(args.id).resume()
    return 0
