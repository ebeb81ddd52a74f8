"""Releasing a created container (libcontainer ``Exec()``; youki's ``container_start``): init,
blocked on the exec fifo, runs its program once the fifo is opened for reading and its byte read.
Also how a dead init died, for the error message."""

from __future__ import annotations

import os
import select
import signal as _signal
import socket
import time
from typing import TYPE_CHECKING

from ...errors import ContainerNotRunning, InitFailed, InvalidStateTransition
from .. import store, sync
from ..state import Status, require
from ..sync import Kind
from .parent import SYNC_TIMEOUT

if TYPE_CHECKING:
    from . import Container

_FIFO_CHECK = 0.2  # seconds between looks at whether a silent init still holds its exec fifo


def exec_(c: Container) -> None:
    """:meth:`Container.exec`: release, with how init died in the error; raises as it does."""
    try:
        release(c)
    except ContainerNotRunning as err:
        raise ContainerNotRunning(f"{err}{death_note(c)}") from None
    except InvalidStateTransition as err:
        if not getattr(err, "died_in_setup", False):
            raise
        # Said outside the lock: the monitor records the exit under it.
        raise InvalidStateTransition(err.from_status, err.to_status, "container init died during set-up, "
                                     f"before it was released{death_note(c)}") from None
    c._run_hooks("poststart", "running", c._state.init_process_pid, warn=True)


def release(c: Container) -> None:
    """Under the lock: check the status is ``created``, read init's byte from the exec fifo, remove it."""
    with store.locked(c._dir):
        status = c.status()
        if status == Status.STOPPED and c._state is not None and os.path.exists(c._fifo()):
            # Never released, yet dead: its last set-up steps (after "run") failed or killed it.
            err = InvalidStateTransition(status, Status.RUNNING, "container init died during set-up")
            err.died_in_setup = True
            raise err
        require("start", status, c._id)
        try:
            data = read_release(c, c._state.init_process_pid, None)
        except ProcessLookupError:  # init died (and was reaped) since status() looked
            raise ContainerNotRunning(f"container {c._id}: init died during set-up, before it was "
                                      "released") from None
        if data == b"":  # (None: released by a manager killed before it could remove the fifo)
            raise ContainerNotRunning(f"container {c._id}: init died during set-up, before it was "
                                      "released (exec fifo is empty)")
        os.unlink(c._fifo())


def release_at_once(c: Container, sock: socket.socket, init_pid: int) -> None:
    """After "run": the exec fifo's reader, opened before init gets there (so its write does
    not wait for us); returns once init has written to it. Init's last set-up errors come on
    ``sock`` before it exits (raised as ContainerError)."""
    try:
        released = read_release(c, init_pid, SYNC_TIMEOUT)
    except ProcessLookupError:  # init failed its last step and was reaped before we looked
        released = b""
    if released == b"":  # (None: past the fifo already, as good)
        sock.setblocking(False)
        try:
            msg = sync.recv(sock)
        except (BlockingIOError, OSError):
            msg = None
        if msg is not None and msg.kind == Kind.ERROR:
            raise InitFailed(msg.stage, msg.errno, msg.message, who="container init")
        hint = " (did the seccomp profile refuse a syscall init needs?)" if c._config.seccomp is not None else ""
        raise ContainerNotRunning(f"container {c._id}: init died during set-up, before it was released{hint}")
    os.unlink(c._fifo())


def read_release(c: Container, init_pid: int, timeout: float | None) -> bytes | None:
    """Open the exec fifo for reading (which lets init's write through) and wait for init's byte,
    or for init to die, at most ``timeout`` s (None: as long as init may still write).

    Returns the byte; b"" when init died or the time ran out without it; None when init is
    alive but past the fifo: a manager killed between reading the byte and removing the fifo
    released it already (it holds the fifo no more), and no byte will ever come.

    Raises:
        ProcessLookupError: init is gone (reaped) already.
    """
    # The pidfd first: opening the fifo releases init at once, and a short program (true)
    # can run, exit and be reaped before a pidfd_open made after it.
    pidfd = os.pidfd_open(init_pid)
    try:
        return _read_fifo(c, pidfd, timeout)
    finally:
        os.close(pidfd)


def _read_fifo(c: Container, pidfd: int, timeout: float | None) -> bytes | None:
    """:func:`read_release` with init's ``pidfd`` open."""
    fd = os.open(c._fifo(), os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        poller = select.poll()
        poller.register(fd, select.POLLIN)
        poller.register(pidfd, select.POLLIN)
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            wait = _FIFO_CHECK if deadline is None else min(_FIFO_CHECK, max(0.0, deadline - time.monotonic()))
            ready = dict(poller.poll(wait * 1000))
            if ready:
                break
            if not _init_holds_fifo(c, fd):
                return None
            if deadline is not None and time.monotonic() >= deadline:
                break
        if fd not in ready:  # init died; it may still have written just before
            ready = dict(poller.poll(0))
        return os.read(fd, 1) if fd in ready else b""
    finally:
        os.close(fd)


def _init_holds_fifo(c: Container, fifo_fd: int) -> bool:
    """Whether init still has the exec fifo open (the O_PATH fd it writes through): until it
    has written and exec'd its program. True when its fds cannot be read (wait on, as before)."""
    fifo = os.fstat(fifo_fd)
    fd_dir = f"/proc/{c._state.init_process_pid}/fd"
    try:
        names = os.listdir(fd_dir)
    except OSError:
        return True
    for name in names:
        try:
            st = os.stat(os.path.join(fd_dir, name))
        except OSError:
            continue
        if (st.st_ino, st.st_dev) == (fifo.st_ino, fifo.st_dev):
            return True
    return False


def death_note(c: Container) -> str:
    """How init died, for an error message: `` (exit code N)`` or `` (killed by signal N (SIGx))``
    with a hint at the seccomp profile where there is one; '' when it cannot be known within 0.5 s.

    The monitor records the exit once our lock is released; a caller that is init's parent
    (``dct run`` in the foreground) reads it from the unreaped child instead.
    """
    pid = c._state.init_process_pid if c._state is not None else -1
    deadline = time.monotonic() + 0.5
    while (died := c.exit_status()) is None:
        try:  # WNOWAIT: the status stays for the caller's own reaping
            info = os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) if pid > 0 else None
        except ChildProcessError:
            info = None
        if info is not None:
            killed = info.si_code in (os.CLD_KILLED, os.CLD_DUMPED)
            died = {"exit_code": 128 + info.si_status if killed else info.si_status,
                    "signal": info.si_status if killed else None}
            break
        if time.monotonic() >= deadline:
            return ""
        time.sleep(0.005)
    sig = died.get("signal")
    if not sig:
        return f" (exit code {died.get('exit_code')})"
    try:
        name = _signal.Signals(sig).name
    except ValueError:
        name = "?"
    hint = ""
    if sig == _signal.SIGSYS:
        hint = ": killed by seccomp?"
    elif c._config.seccomp is not None:  # a denied syscall Python does not check can crash it
        hint = ": did the seccomp profile refuse a syscall init needs?"
    return f" (killed by signal {sig} ({name}){hint})"
