"""The caller's side of a container's terminal: runc's console rules for create/run/exec, and the
proxy between our own terminal and a pty master (runc's ``tty.go``).

A process with ``process.terminal`` (``exec -t``, ``run -t``, or ``terminal: true`` in the
config) gets a pty inside the container; its master goes either to ``--console-socket`` (a
detached create/run/exec: conmon, containerd's shim) or, in the foreground, to us: :func:`attach`
then puts our terminal in raw mode, copies both ways, passes window size changes on (SIGWINCH →
TIOCSWINSZ) and restores the terminal on the way out. Ctrl-C is a byte like any other in raw
mode, so it reaches the container's line discipline, which sends SIGINT to the foreground program.
"""

from __future__ import annotations

import contextlib
import errno
import os
import select
import signal
import socket
import termios
import tty
from collections.abc import Callable
from typing import TypeVar

from ..errors import ConfigInvalid, ContainerError
from ..runtime import console

T = TypeVar("T")
_DRAIN = 0.1  # seconds of silence on the master, once the process ended, before we stop reading it
_CHUNK = 1 << 16


def prepare(args, process, detach: bool) -> socket.socket | None:
    """Apply runc's terminal rules to ``process`` (a ``Process``) for a verb run with ``args``
    (``tty``, ``console_socket``; either may be absent) and set its console socket.

    ``detach``: create, ``run -d``, ``exec -d``. ``-t``/``--tty`` turns the terminal on. With
    ``--console-socket`` the socket is connected now; in the foreground without it, a socket pair
    is made and our end returned (:func:`attach` takes the master from it). None otherwise.

    Raises:
        ConfigInvalid: a terminal to detach with no console socket, a console socket without a
            terminal or in the foreground (runc's two refusals), or a foreground terminal whose
            stdin is not a terminal.
        OSError: the console socket cannot be reached (named).
    """
    if getattr(args, "tty", False):
        process.terminal = True
    path = getattr(args, "console_socket", None)
    if detach and process.terminal and not path:
        raise ConfigInvalid("process.terminal: cannot allocate a tty if dct will detach without a console socket "
                            "(give --console-socket PATH)")
    if path and (not detach or not process.terminal):
        raise ConfigInvalid("--console-socket: cannot use a console socket if dct will not detach or allocate a tty "
                            "(it needs process.terminal or -t, and create, run -d or exec -d)")
    if not process.terminal:
        return None
    if path:
        process.console_socket = console.connect(path)
        return None
    if not os.isatty(0):
        raise ConfigInvalid("process.terminal: stdin is not a terminal (run from one, or detach with --console-socket)")
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    process.console_socket = theirs
    return ours


def release(process) -> None:
    """Close our copy of ``process``'s console socket (the runtime sent the master already)."""
    sock = process.console_socket
    process.console_socket = None
    if isinstance(sock, socket.socket):
        sock.close()


def attach(peer: socket.socket, done_fd: int, wait: Callable[[], T], in_fd: int = 0, out_fd: int = 1) -> T:
    """Take the pty master from ``peer`` (closed then) and proxy our terminal to it until
    ``done_fd`` (a pidfd of the process, or of what waits for it) is readable; then the output
    still buffered in the pty is copied and ``wait()`` gives the result.

    Raises:
        ContainerError: no master came (the runtime failed before sending it).
    """
    try:
        master = console.recv_master(peer)
    except OSError as err:
        raise ContainerError(f"console: no pty master received ({err.strerror or err})") from None
    finally:
        peer.close()
    try:
        proxy(master, done_fd, in_fd, out_fd)
    finally:
        os.close(master)
    return wait()


def proxy(master: int, done_fd: int, in_fd: int = 0, out_fd: int = 1) -> None:
    """Copy ``in_fd`` → ``master`` and ``master`` → ``out_fd`` until ``done_fd`` is readable, then
    drain what the pty still holds. When ``in_fd`` is a terminal it is put in raw mode (restored
    on return, whatever happens) and its size is copied to the pty now and on every SIGWINCH."""
    saved = None
    old_winch = None
    if os.isatty(in_fd):
        saved = termios.tcgetattr(in_fd)
        _copy_size(in_fd, master)
        old_winch = signal.signal(signal.SIGWINCH, lambda *_: _copy_size(in_fd, master))
        tty.setraw(in_fd, termios.TCSANOW)
    try:
        _pump(master, done_fd, in_fd, out_fd)
    finally:
        if saved is not None:
            with contextlib.suppress(termios.error):
                termios.tcsetattr(in_fd, termios.TCSADRAIN, saved)
        if old_winch is not None:
            signal.signal(signal.SIGWINCH, old_winch)


def _pump(master: int, done_fd: int, in_fd: int, out_fd: int) -> None:
    poller = select.poll()
    poller.register(master, select.POLLIN)
    poller.register(in_fd, select.POLLIN)
    poller.register(done_fd, select.POLLIN)
    master_open = True
    while True:
        ready = poller.poll()
        if any(fd == done_fd for fd, _ in ready):
            break
        for fd, _ in ready:
            if fd == master and not _copy(master, out_fd):
                poller.unregister(master)  # every slave closed; the process may still run on
                master_open = False
            elif fd == in_fd and not _copy(in_fd, master):
                poller.unregister(in_fd)  # our input ended: the container's goes on (as runc)
    while master_open and select.select([master], [], [], _DRAIN)[0] and _copy(master, out_fd):
        pass


def _copy(src: int, dst: int) -> bool:
    """One read from ``src`` written whole to ``dst``; False at EOF or EIO (a pty with no slave left)."""
    try:
        data = os.read(src, _CHUNK)
    except OSError as err:
        if err.errno in (errno.EIO, errno.EBADF):
            return False
        raise
    view = memoryview(data)
    while view:
        try:
            view = view[os.write(dst, view):]
        except OSError as err:
            if err.errno == errno.EIO:  # the other side is gone: drop the rest
                return False
            raise
    return bool(data)


def _copy_size(src: int, master: int) -> None:
    with contextlib.suppress(OSError):
        console.set_size(master, *console.get_size(src))
