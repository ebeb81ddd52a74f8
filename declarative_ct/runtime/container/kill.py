"""Signalling a container (libcontainer ``Signal()``; youki's ``container_kill``) and kill-and-wait
(runc's ``killContainer``, ``docker stop``)."""

from __future__ import annotations

import contextlib
import os
import signal as _signal
import time
from typing import TYPE_CHECKING

from ...errors import ContainerError, ContainerNotRunning
from ..state import Status

if TYPE_CHECKING:
    from . import Container


def signal(c: Container, sig: int, all: bool = False) -> None:  # noqa: A002 - libcontainer's name
    """:meth:`Container.signal`; raises as it does."""
    status = c.status()
    if all:
        if not c._cgroup.exists() or (status == Status.STOPPED and not c.processes()):
            raise ContainerNotRunning(f"container {c._id} is not running")
        c._cgroup.kill_all(sig)
        return
    # Signal through a pidfd taken while init is known alive: a reused PID can't be hit.
    try:
        pidfd = os.pidfd_open(c._state.init_process_pid) if c._state else -1
    except ProcessLookupError:
        pidfd = -1
    if pidfd < 0 or not c._init_alive():
        if pidfd >= 0:
            os.close(pidfd)
        raise ContainerNotRunning(f"container {c._id} is not running (init is gone)")
    try:
        _signal.pidfd_send_signal(pidfd, sig)
    finally:
        os.close(pidfd)
    if sig == _signal.SIGKILL and c._cgroup.can_freeze():
        # Init's death kills its PID namespace: tasks of a frozen sub-cgroup must be able to die too.
        c._cgroup.thaw_descendants()
        if status in (Status.PAUSED, Status.PAUSING):
            c._cgroup.thaw()


def stop(c: Container, sig: int | None, grace: float, timeout: float, exit_wait: float, poll: float) -> None:
    """:meth:`Container.stop`; raises as it does."""
    status = c.status()
    if status == Status.STOPPED:
        return
    if sig is not None and status in (Status.PAUSED, Status.PAUSING):
        c.resume()
        status = c.status()
    if sig is not None and status not in (Status.CREATED, Status.STOPPED):
        with contextlib.suppress(ContainerError):  # it may stop (or be paused) meanwhile: the wait says
            c.signal(sig)
        deadline = time.monotonic() + grace
        while c.status() != Status.STOPPED and time.monotonic() < deadline:
            time.sleep(poll)
        status = c.status()
    if status != Status.STOPPED:
        with contextlib.suppress(ContainerNotRunning):  # gone meanwhile
            c.signal(_signal.SIGKILL, all=True)
    deadline = time.monotonic() + timeout
    while c.status() != Status.STOPPED:
        if time.monotonic() > deadline:
            raise ContainerError(f"container {c._id} did not stop after SIGKILL")
        time.sleep(poll)
    deadline = time.monotonic() + exit_wait
    while c.exit_status() is None and time.monotonic() < deadline:
        time.sleep(poll)
