"""A process started in a running container (``runc exec``; youki's ``tenant_builder``): stage 1
joins the container's namespaces and cgroup, with its seccomp filter as create compiled it."""

from __future__ import annotations

import contextlib
import os
import select
import signal as _signal
import socket
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ...errors import ContainerError
from .. import bootstrap, init, monitor, sync
from ..process import Process
from ..state import require
from ..sync import Kind
from .parent import check_terminal, expect, failure, guarded, in_child, open_stdio, past_console

_KILLED_GRACE = 1.0  # seconds a killed exec that failed to start is waited for (a frozen one is left to the server)

if TYPE_CHECKING:
    from .. import forkserver
    from . import Container


@dataclass
class ExecProcess:
    """A process started in a running container by ``start(Process(init=False))`` (``runc exec``).

    ``pid`` is its host PID; :meth:`wait` returns its exit code (128 + signal when killed).
    """

    pid: int
    _waiter: int
    _served: forkserver.ServedProcess | None = None  # when a fork server forked it (not our child)

    def pidfd(self) -> int:
        """A pidfd that polls readable once the process has ended (of the stage 1 process that waits
        for it and cannot be reused before :meth:`wait`); the caller closes it. Raises OSError."""
        if self._served is not None:
            return self._served.pidfd()
        return os.pidfd_open(self._waiter if self._waiter > 0 else self.pid)

    def wait(self) -> int:
        """Block until the process ends; its exit code (0 at once for a detached process).
        Raises SystemError when the fork server that forked it ended first."""
        if self._waiter < 0:
            return 0
        status = self._served.wait() if self._served is not None else os.waitpid(self._waiter, 0)[1]
        return monitor.exit_record(self.pid, status)["exit_code"]


def start_exec(c: Container, process: Process, detach: bool,
               fork_server: forkserver.ForkServer | None = None, timeout: float | None = None) -> ExecProcess:
    """:meth:`Container.start` of a non-init ``process``, its stage 1 forked by ``fork_server``
    when given (:mod:`..forkserver`), else by the caller (:func:`..bootstrap.fork_stage1`); raises
    as it does. ``timeout``: seconds the set-up may take until the program runs (TimeoutError past
    it, the process killed); None: no limit."""
    check_terminal(process)
    require("exec", c.status(), c._id)
    config = c._config
    joins = init.exec_joins(config, c._state.init_process_pid)
    filter_program = b"", 0
    if config.seccomp is not None:  # the container's filter, as its create compiled it
        from .. import seccomp

        filter_program = (seccomp.saved(c._dir, config.seccomp), seccomp.load_flags(config.seccomp))
    parent_sock, child_sock = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    stdio, _ = open_stdio(process, detached=False)
    ctx = init.InitContext(config=config, process=guarded(c, in_child(process)), sync=child_sock,
                           cgroup=c._cgroup, stdio=stdio, join=joins, detach=detach)
    ctx.seccomp, ctx.seccomp_flags = filter_program
    served = None
    try:
        if fork_server is None:
            stage1_pid = bootstrap.fork_stage1(ctx, parent_sock)
        else:
            served = fork_server.spawn(ctx)
            stage1_pid = served.pid
    except BaseException:  # no stage 1: no sealed image or memfd, or no fork
        parent_sock.close()
        child_sock.close()
        raise
    child_sock.close()
    # Bounded when asked: the process sits in the container's PID namespace from its birth, where
    # the container may stop (SIGSTOP) it before it reports; a prober must not wait for it for good.
    deadline = None if timeout is None else time.monotonic() + timeout
    exec_pid = -1
    try:
        _bound(parent_sock, deadline)
        exec_pid = expect(parent_sock, Kind.PID, "exec").pid
        _bound(parent_sock, deadline)
        msg = past_console(parent_sock, process, sync.recv(parent_sock), "exec", exec_pid)
        if msg is not None:
            raise failure(msg, "exec")
    except ContainerError:
        # Stage 1 reaps its failed child and exits by itself; killing it first would leave
        # that child a zombie inside the container's PID namespace.
        _reap(stage1_pid, served)
        raise
    except BaseException:
        _kill_child(exec_pid, stage1_pid)
        with contextlib.suppress(OSError):
            served.kill() if served is not None else os.kill(stage1_pid, _signal.SIGKILL)
        _reap(stage1_pid, served, _KILLED_GRACE)
        raise
    finally:
        parent_sock.close()
    if detach:
        _reap(stage1_pid, served)
        return ExecProcess(pid=exec_pid, _waiter=-1)
    return ExecProcess(pid=exec_pid, _waiter=stage1_pid, _served=served)


def _bound(sock: socket.socket, deadline: float | None) -> None:
    """The next receive on ``sock`` times out at ``deadline`` (monotonic seconds; None: never)."""
    if deadline is not None:
        sock.settimeout(max(deadline - time.monotonic(), 0.001))


def _kill_child(exec_pid: int, stage1_pid: int) -> None:
    """SIGKILL the exec'd process ``exec_pid`` when it is ``stage1_pid``'s child (stage 1 forked
    it: killing stage 1 alone would leave it, stopped or not, in the container). Through a pidfd
    opened while stage 1, alive, keeps its pid from being reused: the parent is checked after the open."""
    if exec_pid <= 0 or exec_pid == stage1_pid:
        return  # unknown, or the fork server's own child (killed as the served process)
    try:
        fd = os.pidfd_open(exec_pid)
    except OSError:
        return
    try:
        with open(f"/proc/{exec_pid}/stat", "rb") as f:
            raw = f.read()
        if int(raw[raw.rfind(b")") + 2:].split()[1]) == stage1_pid:  # field 4, the parent
            _signal.pidfd_send_signal(fd, _signal.SIGKILL)
    except (OSError, ValueError, IndexError):
        pass
    finally:
        os.close(fd)


def _reap(stage1_pid: int, served: forkserver.ServedProcess | None, grace: float | None = None) -> None:
    """Wait for stage 1 (our child, or the fork server's), whatever became of it. With ``grace``
    (seconds; it was killed), a process of the server's that has not ended by then is left to the
    server, which reaps its own: one frozen with its container (paused) dies only once thawed.
    Our own stage 1 is never in the container's cgroup: it is always waited for."""
    with contextlib.suppress(OSError, ContainerError):
        if served is None:
            os.waitpid(stage1_pid, 0)
        elif grace is None or _ends_within(served, grace):
            served.wait()
        else:
            served.close()


def _ends_within(served: forkserver.ServedProcess, grace: float) -> bool:
    fd = served.pidfd()
    try:
        return bool(select.select([fd], [], [], grace)[0])
    finally:
        os.close(fd)
