"""Terminals: ``process.terminal`` and the console socket (runc's recvtty protocol), real ptys.

A test plays the console socket's listener (conmon, containerd's shim, runc's ``recvtty``): it
receives the pty master with ``recvmsg`` (SCM_RIGHTS), reads what the container writes on it and
types into it.
"""

from __future__ import annotations

import os
import select
import signal
import socket
import time

import pytest

from declarative_ct.configs import Mount, default_mounts
from declarative_ct.configs.mountflags import MS_BIND
from declarative_ct.errors import ConfigInvalid, ContainerError
from declarative_ct.runtime import Process, console

from conftest import unique_id, wait_for


def read_until(master: int, needle: bytes, timeout: float = 10.0) -> bytes:
    """Read the pty master until ``needle`` shows up (or EOF/EIO, or the time runs out)."""
    out = b""
    deadline = time.monotonic() + timeout
    while needle not in out:
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError(f"{needle!r} not seen within {timeout}s; got {out!r}")
        if not select.select([master], [], [], left)[0]:
            continue
        try:
            chunk = os.read(master, 4096)
        except OSError:  # EIO: every slave closed
            chunk = b""
        if not chunk:
            raise AssertionError(f"{needle!r} not seen before the pty closed; got {out!r}")
        out += chunk
    return out


@pytest.fixture
def console_pair():
    """``(ours, theirs)``: a connected socket pair; ``theirs`` is what a runtime gets as console socket."""
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    yield ours, theirs
    ours.close()
    theirs.close()


def test_init_terminal_through_console_socket(runtime, busybox_config, console_pair):
    """Init's stdio is the pty (a terminal inside), its size is consoleSize, input typed on the
    master reaches the program and its exit code is recorded."""
    ours, theirs = console_pair
    c = runtime.create(unique_id("tty"), busybox_config())
    script = "[ -t 0 ] && [ -t 1 ] && echo TTY-YES; stty size; tty; read x; echo got-$x; exit 7"
    c.start(Process(["sh", "-c", script], terminal=True, console_size=(33, 101), console_socket=theirs))
    master = console.recv_master(ours)
    try:
        c.exec()
        out = read_until(master, b"/dev/")
        assert b"TTY-YES" in out
        assert b"33 101" in out
        assert b"/dev/pts/0" in out  # the container's own devpts: numbering starts again
        os.write(master, b"hello\n")
        assert b"got-hello" in read_until(master, b"got-hello")
    finally:
        os.close(master)
    record = wait_for(c.exit_status, 10, message="exit")
    assert record["exit_code"] == 7


def test_terminal_without_console_socket_is_refused(runtime, busybox_config):
    c = runtime.create(unique_id("tty"), busybox_config())
    with pytest.raises(ConfigInvalid, match="process.terminal"):
        c.start(Process(["true"], terminal=True))


def test_exec_terminal_and_dev_console(runtime, busybox_config, console_pair):
    """An exec'd process gets a pty of its own in the container's devpts (controlling terminal:
    Ctrl-C typed on the master interrupts its foreground program); init's pty is /dev/console."""
    ours, theirs = console_pair
    init_ours, init_theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    c = runtime.create(unique_id("tty"), busybox_config())
    c.start(Process(["sh", "-c", "sleep 30"], terminal=True, console_socket=init_theirs))
    init_master = console.recv_master(init_ours)
    init_ours.close()
    init_theirs.close()
    try:
        c.exec()
        handle = c.start(Process(["sh"], init=False, terminal=True, console_size=(20, 70), console_socket=theirs))
        master = console.recv_master(ours)
        try:
            # Needles computed by the shell ($((…))): the terminal echoes what is typed, as typed.
            os.write(master, b"stty size; tty; [ -c /dev/console ] && echo CONSOLE-$((2+3)); "
                             b"trap 'echo CAUGHT-$((3+4))' INT; sleep 30; echo after-$?\n")
            out = read_until(master, b"CONSOLE-5")
            assert b"20 70" in out and b"/dev/pts/" in out
            time.sleep(0.3)  # sleep is in the foreground now
            os.write(master, b"\x03")  # Ctrl-C: the line discipline sends SIGINT to the foreground group
            assert b"CAUGHT-7" in read_until(master, b"CAUGHT-7", timeout=5)
            os.write(master, b"exit 3\n")
            assert handle.wait() == 3
        finally:
            os.close(master)
    finally:
        os.close(init_master)
        c.signal(signal.SIGKILL)
        wait_for(c.exit_status, 10, message="exit")


def test_no_devpts_is_a_clear_error(runtime, busybox_config, console_pair):
    """Without a devpts of its own at /dev/pts there is no pty to give: refused, named, nothing left."""
    _, theirs = console_pair
    mounts = [m for m in default_mounts() if m.device != "devpts"]
    c = runtime.create(unique_id("tty"), busybox_config(mounts=mounts))
    with pytest.raises(ContainerError, match="/dev/ptmx.*devpts"):
        c.start(Process(["true"], terminal=True, console_socket=theirs))
    assert not os.path.exists(c.state_dir)


def test_pty_of_another_devpts_is_refused(runtime, busybox_config, console_pair):
    """Attack: the container's /dev/ptmx covered by the host's devpts multiplexer, so that init
    would open a pty of the host's devpts (a slave in the host's /dev/pts): refused (the kernel
    refuses the slave across instances; our check on the slave's devpts backs it), nothing left."""
    _, theirs = console_pair
    mounts = default_mounts() + [Mount("/dev/pts/ptmx", "/dev/ptmx", "bind", MS_BIND)]
    before = set(os.listdir("/dev/pts"))
    c = runtime.create(unique_id("tty"), busybox_config(mounts=mounts))
    with pytest.raises(ContainerError, match="process.terminal: .*/dev/ptmx.*devpts mounted at /dev/pts"):
        c.start(Process(["true"], terminal=True, console_socket=theirs))
    assert not os.path.exists(c.state_dir)
    assert set(os.listdir("/dev/pts")) <= before  # no host pty left open
