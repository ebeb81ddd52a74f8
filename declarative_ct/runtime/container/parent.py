"""The parent's side of a new process in a container, for init and exec'd processes alike (runc's
``parentProcess``): its stdio, the capability guard, and the sync socket messages it answers
(user maps, console hand-over) or expects (a kind, or an init failure)."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import signal as _signal
import socket
from typing import TYPE_CHECKING

from ...configs import Capabilities
from ...errors import ConfigInvalid, ContainerError, InitFailed, SystemError
from .. import console, sync
from ..process import Process
from ..sync import Kind, Message

if TYPE_CHECKING:
    from . import Container


SYNC_TIMEOUT = 60.0  # seconds for stage 1 and init to report each step of the set-up


def check_terminal(process: Process) -> None:
    """A terminal needs somewhere to send its master (runc refuses ``terminal`` without a socket too)."""
    if process.terminal and process.console_socket is None:
        raise ConfigInvalid("process.terminal: true needs a console socket to receive the pty master "
                            "(Process.console_socket; dct: --console-socket, or run/exec -t in the foreground)")


def in_child(process: Process) -> Process:
    """``process`` as handed to stage 1 or the monitor: without the console socket, which stays
    with the caller (the master comes back over the sync socket)."""
    return process if process.console_socket is None else dataclasses.replace(process, console_socket=None)


def guarded(c: Container, process: Process) -> Process:
    """``process`` without CAP_MKNOD when device rules exist but the cgroup driver cannot enforce them.

    Without a device cgroup (v2 needs eBPF, not done yet) a container holding CAP_MKNOD could
    create a node for a host disk and read it; dropping the capability closes that door.
    """
    if c._cgroup.enforces_devices() or not c._config.cgroups.resources.devices:
        return process
    caps = process.capabilities or c._config.capabilities
    return dataclasses.replace(process, capabilities=Capabilities(
        *([cap for cap in getattr(caps, s) if cap != "CAP_MKNOD"]
          for s in ("Bounding", "Effective", "Permitted", "Inheritable", "Ambient"))))


def open_stdio(process: Process, detached: bool) -> tuple[tuple[int, int, int], list[int]]:
    """The child's fds 0-2 and the ones opened here (the caller closes them). ``None`` stdio is the
    caller's own fd, or when ``detached`` /dev/null (an init's output the monitor copies into its
    log is put in by the caller: :func:`.create.start_init`)."""
    opened: list[int] = []
    fds = []
    for i, value in enumerate((process.stdin, process.stdout, process.stderr)):
        if value is None:
            if not detached:
                fds.append(i)
                continue
            fd = os.open("/dev/null", (os.O_RDONLY if i == 0 else os.O_WRONLY) | os.O_CLOEXEC)
            opened.append(fd)
            fds.append(fd)
        else:
            fds.append(value if isinstance(value, int) else value.fileno())
    return (fds[0], fds[1], fds[2]), opened


def past_user_maps(c: Container, sock: socket.socket, stage1_pid: int, msg: Message | None) -> Message | None:
    """``msg``, or when it is stage 1's ``usermap`` request: its uid/gid maps written (by us, who
    hold the capabilities over its parent user namespace), then the next message.

    Raises:
        ContainerError: the kernel refused a map (naming the file and the lines).
    """
    if msg is None or msg.kind != Kind.USERMAP:
        return msg
    from .. import userns  # only containers with a user namespace load it

    try:
        userns.write_id_maps(stage1_pid, c._config)
    except OSError as err:
        raise ContainerError(str(err)) from None
    sync.send(sock, Kind.USERMAP_DONE)
    return sync.recv(sock)


def past_console(sock: socket.socket, process: Process, msg: Message | None, what: str = "container init",
                 kill_pid: int = -1) -> Message | None:
    """``msg``, or when it is the ``console`` message of a ``process.terminal`` process: its pty
    master handed to ``process.console_socket`` (and our copy closed), then the next message.

    Raises:
        ContainerError: the master could not be sent (the receiver left); ``kill_pid``, the
            process that holds the slave (an exec'd one: init is killed by the caller's
            clean-up), is killed first.
        SystemError: a terminal process sent something else first.
    """
    if msg is None or msg.kind != Kind.CONSOLE:
        if process.terminal and msg is not None and msg.kind != Kind.ERROR:
            raise SystemError(f"{what} sent {msg.kind!r} before its console")
        return msg
    master = msg.fd
    try:
        if not process.terminal or master < 0:
            raise SystemError(f"{what} sent an unexpected console message")
        console.send_master(process.console_socket, master)
    except BaseException as err:
        if kill_pid > 0:
            with contextlib.suppress(OSError):
                os.kill(kill_pid, _signal.SIGKILL)
        if isinstance(err, OSError):
            raise ContainerError(f"console socket: cannot send the pty master: {err.strerror or err}") from None
        raise
    finally:
        if master >= 0:
            os.close(master)
    return sync.recv(sock)


def expect(sock: socket.socket, kind: str, what: str = "container init") -> Message:
    """The next message on ``sock``, checked by :func:`expected`."""
    return expected(sync.recv(sock), kind, what)


def expected(msg: Message | None, kind: str, what: str = "container init") -> Message:
    """``msg`` when it is of ``kind``. Raises InitFailed for an ``error`` message (its text,
    errno and stage), SystemError when ``what`` closed the socket first or sent another kind."""
    if msg is None:
        raise SystemError(f"{what} exited before sending {kind!r}")
    if msg.kind == Kind.ERROR:
        raise InitFailed(msg.stage, msg.errno, msg.message, who=what)
    if msg.kind != kind:
        raise SystemError(f"unexpected sync message {msg.kind!r}, wanted {kind!r}")
    return msg


def failure(msg: Message, who: str) -> ContainerError:
    """What an unwanted sync message from ``who`` means: InitFailed for an ``error`` (its text,
    errno and stage), else a ContainerError naming the message."""
    if msg.kind == Kind.ERROR:
        return InitFailed(msg.stage, msg.errno, msg.message, who=who)
    return ContainerError(f"{who} failed: {msg.describe()}")


def readlink_fd(pid: int, fd: int) -> str:
    """Where ``pid``'s ``fd`` points ('' when it cannot be read)."""
    try:
        return os.readlink(f"/proc/{pid}/fd/{fd}")
    except OSError:
        return ""
