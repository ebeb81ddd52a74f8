"""``dct`` with terminals: ``run -t``/``exec -t`` on the caller's terminal, and ``--console-socket``.

The caller's terminal is a real pty made here: the CLI runs as a session leader with the slave as
its controlling terminal and stdio, and the test types on the master as a user would (Ctrl-C is
the byte 0x03, a resize is TIOCSWINSZ on the master, which sends SIGWINCH to the CLI).
"""

from __future__ import annotations

import fcntl
import json
import os
import select
import socket
import subprocess
import termios
import time
from pathlib import Path
from typing import Callable

import pytest

from dct_cli import UNTIL_TERM, Dct, runner
from declarative_ct.runtime import console, specconv

pytestmark = pytest.mark.integration


@pytest.fixture
def dct(state_root: str, unique_id: Callable[[str], str]) -> Dct:
    yield from runner(Dct, state_root, unique_id)


@pytest.fixture
def bundle(tmp_path: Path, busybox_rootfs: str) -> Callable[..., str]:
    """``bundle(args, name, terminal=False)``: a bundle of the example spec on busybox."""

    def make(args: list[str], name: str = "b", terminal: bool = False) -> str:
        spec = specconv.example_spec()
        spec["root"]["path"] = busybox_rootfs
        spec["process"]["args"] = list(args)
        spec["process"]["terminal"] = terminal
        path = tmp_path / name
        path.mkdir()
        (path / "config.json").write_text(json.dumps(spec))
        return str(path)

    return make


class Terminal:
    """``dct ARGS`` on a new pty of ``rows`` x ``cols``: the CLI's controlling terminal and stdio."""

    def __init__(self, dct: Dct, *args: str, rows: int = 30, cols: int = 100) -> None:
        self.master, slave = os.openpty()
        console.set_size(self.master, rows, cols)
        self.out = b""

        def controlling() -> None:  # in the child, after setsid (start_new_session)
            fcntl.ioctl(0, termios.TIOCSCTTY, 0)

        try:
            self.proc = subprocess.Popen(dct.argv(*args), stdin=slave, stdout=slave, stderr=slave, env=dct.env(),
                                         start_new_session=True, preexec_fn=controlling)
        finally:
            os.close(slave)

    def expect(self, needle: bytes, timeout: float = 10.0) -> bytes:
        """Read until ``needle`` was written since the last expect; what came up to it."""
        deadline = time.monotonic() + timeout
        while needle not in self.out:
            left = deadline - time.monotonic()
            assert left > 0, f"{needle!r} not seen in {timeout}s: {self.out!r}"
            if select.select([self.master], [], [], left)[0]:
                try:
                    chunk = os.read(self.master, 4096)
                except OSError:
                    chunk = b""
                assert chunk, f"{needle!r} not seen before the terminal closed: {self.out!r}"
                self.out += chunk
        seen, _, self.out = self.out.partition(needle)
        return seen + needle

    def type(self, text: bytes) -> None:
        os.write(self.master, text)

    def resize(self, rows: int, cols: int) -> None:
        console.set_size(self.master, rows, cols)

    def wait(self, timeout: float = 15.0) -> int:
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(f"dct did not exit; output {self.out!r}") from None

    def lflags(self) -> int:
        return termios.tcgetattr(self.master)[3]

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        os.close(self.master)


@pytest.fixture
def terminal():
    made: list[Terminal] = []

    def start(dct: Dct, *args: str, **size: int) -> Terminal:
        made.append(Terminal(dct, *args, **size))
        return made[-1]

    yield start
    for t in made:
        t.close()


def shell_session(t: Terminal, rows: int, cols: int) -> None:
    """Drive an interactive busybox sh on ``t``: a terminal inside, its size, resize, Ctrl-C, exit 5."""
    t.type(b"[ -t 0 ] && [ -t 1 ] && echo TTY-$((6*7)); stty size\n")
    t.expect(b"TTY-42")
    t.expect(f"{rows} {cols}".encode())
    t.resize(rows + 10, cols + 20)
    time.sleep(0.2)  # the CLI's SIGWINCH handler copies the size to the container's pty
    t.type(b"stty size\n")
    t.expect(f"{rows + 10} {cols + 20}".encode())
    t.type(b"trap 'echo CAUGHT-$((1+1))' INT; sleep 30; echo slept-$?\n")
    time.sleep(0.5)  # sleep is the foreground program now
    t.type(b"\x03")
    t.expect(b"CAUGHT-2")
    t.type(b"exit 5\n")
    assert t.wait() == 5
    assert t.lflags() & termios.ICANON and t.lflags() & termios.ECHO  # our terminal is restored (not raw)


def test_run_tty_is_an_interactive_shell(dct: Dct, bundle, terminal) -> None:
    b = bundle(["sh"])
    cid = dct.new_id("runt")
    t = terminal(dct, "run", "-t", "--bundle", b, cid, rows=30, cols=100)
    shell_session(t, 30, 100)
    assert cid not in dct.entries()  # deleted after the foreground run, as without a terminal


def test_run_with_terminal_in_config_uses_callers_terminal(dct: Dct, bundle, terminal) -> None:
    b = bundle(["sh", "-c", "tty; read x; echo got-$x; exit 3"], terminal=True)
    t = terminal(dct, "run", "--bundle", b, dct.new_id("runcfg"))
    t.expect(b"/dev/pts/0")
    t.type(b"abc\n")
    t.expect(b"got-abc")
    assert t.wait() == 3


def test_exec_tty_is_an_interactive_shell(dct: Dct, bundle, terminal) -> None:
    cid = dct.new_id("exect")
    dct.ok("run", "-d", "--bundle", bundle(["sh", "-c", UNTIL_TERM]), cid)
    t = terminal(dct, "exec", "-t", cid, "sh", rows=24, cols=80)
    shell_session(t, 24, 80)
    assert dct.status(cid) == "running"
    dct.ok("kill", cid, "KILL")


def _listener(tmp_path: Path) -> tuple[socket.socket, str]:
    path = str(tmp_path / "console.sock")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    server.listen(1)
    server.settimeout(10)
    return server, path


def _read_until(master: int, needle: bytes, timeout: float = 10.0) -> bytes:
    out = b""
    deadline = time.monotonic() + timeout
    while needle not in out:
        assert time.monotonic() < deadline, f"{needle!r} not seen: {out!r}"
        if select.select([master], [], [], 0.2)[0]:
            out += os.read(master, 4096)
    return out


def test_create_with_console_socket(dct: Dct, bundle, tmp_path) -> None:
    """runc's recvtty protocol: one message, body /dev/ptmx, the master in SCM_RIGHTS; the
    container's output is read from it and input written to it."""
    server, path = _listener(tmp_path)
    cid = dct.new_id("csock")
    b = bundle(["sh", "-c", "[ -t 0 ] && echo TTY-OK; read x; echo got-$x; exit 4"], terminal=True)
    creating = subprocess.Popen(dct.argv("create", "--monitor", "--console-socket", path, "--bundle", b, cid),
                                env=dct.env(), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        conn, _ = server.accept()
        body, fds, _, _ = socket.recv_fds(conn, 4096, 1)
        conn.close()
        assert body == b"/dev/ptmx" and len(fds) == 1
        assert creating.wait(20) == 0, creating.stderr.read()
    finally:
        server.close()
        if creating.poll() is None:
            creating.kill()
            creating.wait()
    master = fds[0]
    try:
        assert os.isatty(master)
        assert dct.status(cid) == "created"
        dct.ok("start", cid)
        assert b"TTY-OK" in _read_until(master, b"TTY-OK")
        os.write(master, b"xyz\n")
        _read_until(master, b"got-xyz")
    finally:
        os.close(master)
    deadline = time.monotonic() + 10
    while dct.status(cid) != "stopped":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert dct.exit_record(cid)["exit_code"] == 4


def test_exec_detached_with_console_socket(dct: Dct, bundle, tmp_path) -> None:
    cid = dct.new_id("csockx")
    dct.ok("run", "-d", "--bundle", bundle(["sh", "-c", UNTIL_TERM]), cid)
    server, path = _listener(tmp_path)
    try:
        dct.ok("exec", "-d", "-t", "--console-socket", path, "--pid-file", tmp_path / "exec.pid", cid,
               "sh", "-c", "tty; read x; echo got-$x")
        conn, _ = server.accept()
        master = console.recv_master(conn)
        conn.close()
    finally:
        server.close()
    try:
        _read_until(master, b"/dev/pts/")
        os.write(master, b"q\n")
        _read_until(master, b"got-q")
    finally:
        os.close(master)
    # As runc exec --detach: the process was left to the caller's nearest subreaper (us).
    os.waitpid(int((tmp_path / "exec.pid").read_text()), 0)
    dct.ok("kill", cid, "KILL")


@pytest.mark.parametrize("argv, needle", [
    (("create",), "--console-socket"),  # terminal: true in the config, nothing to send the master to
    (("run", "-d"), "--console-socket"),
    (("run", "-d", "-t"), "--console-socket"),
])
def test_terminal_to_detach_needs_a_console_socket(dct: Dct, bundle, cgroup_dirs, argv, needle) -> None:
    b = bundle(["true"], terminal="-t" not in argv)
    cid = dct.new_id("nosock")
    dct.fails(*argv, "--bundle", b, cid, needles=("process.terminal", needle))
    assert cid not in dct.entries() and cgroup_dirs(cid) == []


def test_console_socket_refusals(dct: Dct, bundle, tmp_path, cgroup_dirs) -> None:
    """runc's: a console socket needs a terminal and a detached verb; an unreachable one is named."""
    cid = dct.new_id("badsock")
    b = bundle(["true"])
    dct.fails("create", "--console-socket", str(tmp_path / "s"), "--bundle", b, cid,
              needles=("--console-socket", "tty"))
    tb = bundle(["true"], name="t", terminal=True)
    dct.fails("create", "--console-socket", str(tmp_path / "missing.sock"), "--bundle", tb, cid,
              needles=("missing.sock", "no such file"))
    assert cid not in dct.entries() and cgroup_dirs(cid) == []
    dct.fails("run", "-t", "--bundle", b, cid, needles=("process.terminal", "stdin is not a terminal"))
    assert cid not in dct.entries() and cgroup_dirs(cid) == []
