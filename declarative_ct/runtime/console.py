"""Terminals: the pty of a process with ``process.terminal`` (runc's console and its recvtty protocol).

Init (or an exec'd process) opens ``/dev/ptmx`` once inside the container, so that the pty
belongs to the container's own devpts (a ``newinstance`` mount at ``/dev/pts``, as the default
mounts give), makes the slave its controlling terminal and its stdio (:func:`setup`), and sends
the master to the caller over the sync socket. The caller hands the master on to the console
socket (:func:`send_master`): one ``sendmsg`` whose body is the master's name, ``/dev/ptmx``, with
the descriptor as ``SCM_RIGHTS``, as runc does; conmon, containerd's shim and runc's ``recvtty``
read it with :func:`recv_master`'s counterpart.

Imported by init: stdlib only.
"""

from __future__ import annotations

import errno
import fcntl
import os
import socket
import struct
import termios

from . import linux, paths
from .sync import Kind
from .sync import send as sync_send

MASTER_NAME = b"/dev/ptmx"
"""The body of the console message (runc sends the master file's name, which is this path)."""

_TIOCGPTN = 0x80045430  # the pty's number: its slave is /dev/pts/<n>
_TIOCSPTLCK = 0x40045431  # (un)lock the slave
_TIOCGPTPEER = 0x5441  # open the slave through the master: no path lookup in the container's /dev
_DEVPTS_SUPER_MAGIC = 0x1CD1
_NAME_MAX = 4096  # runc's limit on the message body


def get_size(fd: int) -> tuple[int, int]:
    """``(rows, columns)`` of the terminal ``fd`` (TIOCGWINSZ). Raises OSError (ENOTTY)."""
    rows, cols, _, _ = struct.unpack("HHHH", fcntl.ioctl(fd, termios.TIOCGWINSZ, b"\0" * 8))
    return rows, cols


def set_size(fd: int, rows: int, cols: int) -> None:
    """Set the window size of the pty ``fd`` (master or slave) to ``rows`` x ``cols`` (TIOCSWINSZ);
    the foreground process group of the slave gets SIGWINCH. Raises OSError."""
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))


def open_pty() -> tuple[int, int, str]:
    """A new pty pair from ``/dev/ptmx`` of the current root: ``(master, slave, slave path)``.

    The slave is opened through the master (TIOCGPTPEER), never by path; both are close-on-exec
    and neither becomes our controlling terminal (O_NOCTTY). The slave must live on the devpts
    mounted at ``/dev/pts`` here: a ``/dev/ptmx`` reaching another instance (the host's, with no
    devpts mount of the container's own) is refused.

    Raises:
        OSError: no ``/dev/ptmx``, not a pty multiplexer, or not this root's ``/dev/pts`` (named).
    """
    try:
        master = os.open("/dev/ptmx", os.O_RDWR | os.O_NOCTTY | os.O_CLOEXEC)
    except OSError as err:
        raise OSError(err.errno, f"process.terminal: cannot open /dev/ptmx ({err.strerror}); the container needs "
                                 "a devpts mount at /dev/pts (newinstance,ptmxmode=0666)") from None
    try:
        try:
            fcntl.ioctl(master, _TIOCSPTLCK, struct.pack("i", 0))
            number = struct.unpack("I", fcntl.ioctl(master, _TIOCGPTN, b"\0" * 4))[0]
            # The kernel refuses a master whose devpts is not the one its path reaches (ENODEV/ENOENT).
            slave = fcntl.ioctl(master, _TIOCGPTPEER, os.O_RDWR | os.O_NOCTTY | os.O_CLOEXEC)
        except OSError as err:
            if err.errno == errno.ENOTTY:
                raise
            raise OSError(err.errno, f"process.terminal: no pty slave through /dev/ptmx ({err.strerror}): it must "
                                     "be the multiplexer of the devpts mounted at /dev/pts") from None
        try:
            own = os.stat("/dev/pts")
            st = os.fstat(slave)
            if st.st_dev != own.st_dev or linux.fstatfs_type(slave) != _DEVPTS_SUPER_MAGIC:
                raise OSError(errno.EXDEV, "process.terminal: /dev/ptmx does not belong to the devpts mounted at "
                                           "/dev/pts (mount devpts there with newinstance,ptmxmode=0666)")
        except BaseException:
            os.close(slave)
            raise
    except OSError as err:
        os.close(master)
        if err.errno == errno.ENOTTY:
            raise OSError(err.errno, "process.terminal: /dev/ptmx is not a pty multiplexer") from None
        raise
    return master, slave, f"/dev/pts/{number}"


def setup(sync: socket.socket, size: tuple[int, int] | None, uid: int, console_path: str = "") -> None:
    """Give the calling process a new pty as controlling terminal and stdio (runc's ``setupConsole``).

    In init or an exec'd process, after ``setsid`` and (init) ``pivot_root``, still as root:
    opens the pair (:func:`open_pty`), applies ``size`` (``(rows, columns)``, runtime-spec
    ``process.consoleSize`` height/width), bind-mounts the slave onto ``console_path`` when given
    (init: ``/dev/console``), sends the master to the parent on ``sync`` as a ``console`` message
    (:mod:`.sync`) with the descriptor attached, closes our master, then makes the slave fds 0-2,
    our controlling terminal (TIOCSCTTY) and owned by ``uid`` (so the process may reopen it, runc's
    ``fixStdioPermissions``).

    Raises:
        OSError: any step (the message names it).
    """
    master, slave, _ = open_pty()
    try:
        if size:
            set_size(master, *size)
        if console_path:
            _mount_console(slave, console_path)
        sync_send(sync, Kind.CONSOLE, fd=master)
    finally:
        os.close(master)
    for target in range(3):
        os.dup2(slave, target, inheritable=True)
    os.close(slave)
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)
    os.fchown(0, uid, -1)


def _mount_console(slave: int, path: str) -> None:
    """Bind-mount the pty slave onto ``path`` (created as an empty file), as runc's ``mountConsole``."""
    old = os.umask(0)
    try:
        try:
            os.close(os.open(path, os.O_CREAT | os.O_WRONLY | os.O_NOFOLLOW | os.O_CLOEXEC, 0o666))
        except OSError as err:
            raise OSError(err.errno, f"process.terminal: cannot create {path}: {err.strerror}") from None
    finally:
        os.umask(old)
    # Through the descriptors: the slave we hold, whatever /dev/pts holds by now, onto the file
    # made above, whatever replaced it (paths.mount reaches both through init's held /proc/<pid>,
    # so a config without a /proc mount works too).
    target = os.open(path, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        paths.mount(slave, target, None, linux.MS_BIND)
    finally:
        os.close(target)


def connect(path: str) -> socket.socket:
    """Connect to the console socket at ``path`` (``--console-socket``), a unix stream socket.

    Raises:
        OSError: it cannot be reached (message names the path, as runc's ``dial unix``).
    """
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    try:
        sock.connect(path)
    except OSError as err:
        sock.close()
        raise OSError(err.errno, f"--console-socket: dial unix {path}: connect: {err.strerror.lower()}") from None
    return sock


def send_master(sock: socket.socket | int, master: int) -> None:
    """Send the pty ``master`` on the console socket ``sock`` (a socket or its fd): one message,
    body :data:`MASTER_NAME`, the descriptor in ``SCM_RIGHTS`` (runc's ``utils.SendFd``).
    The caller still owns and closes ``master``. Raises OSError (EPIPE: the receiver left)."""
    if isinstance(sock, int):
        sock = socket.socket(fileno=os.dup(sock))
        try:
            socket.send_fds(sock, [MASTER_NAME], [master])
        finally:
            sock.close()
        return
    socket.send_fds(sock, [MASTER_NAME], [master])


def recv_master(sock: socket.socket) -> int:
    """Receive a pty master sent by :func:`send_master` (what a console socket's listener does):
    the descriptor, close-on-exec. Raises OSError (EPROTO: no descriptor or not a terminal)."""
    body, fds, _, _ = socket.recv_fds(sock, _NAME_MAX, 1)
    if len(fds) != 1:
        for fd in fds:
            os.close(fd)
        raise OSError(errno.EPROTO, f"console socket: expected one descriptor with {body[:64]!r}, got {len(fds)}")
    fd = fds[0]
    os.set_inheritable(fd, False)
    if not os.isatty(fd):
        os.close(fd)
        raise OSError(errno.EPROTO, "console socket: the descriptor received is not a terminal")
    return fd
