"""A process entering a container leaves the caller's session, terminal and keyring behind.

Found by an attack round (runc's nsexec does the same): an ``exec``'d process that kept the
caller's session could push keystrokes into the admin's shell through ``/dev/tty`` (TIOCSTI) or
signal the caller's process group with ``kill(0, …)``; a container that shared the caller's
session keyring could read its keys.
"""

from __future__ import annotations

import ctypes
import json
import os
import pty
import select
import shutil
import subprocess
import sys
import time

import pytest

from conftest import unique_id
from dct_cli import Dct, REPO, runner

pytestmark = pytest.mark.integration

# The id of the session keyring of the process that runs it (KEYCTL_GET_KEYRING_ID of
# KEY_SPEC_SESSION_KEYRING, not created if missing).
_KEYRING_C = r"""
#include <stdio.h>
#include <unistd.h>
#include <sys/syscall.h>
int main(void) { printf("%ld\n", syscall(SYS_keyctl, 0, -3, 0)); return 0; }
"""


@pytest.fixture
def dct(state_root: str) -> Dct:
    yield from runner(Dct, state_root, unique_id)


@pytest.fixture
def sleeper(dct: Dct, busybox_rootfs: str, tmp_path) -> str:
    """A running container (``sleep``), started through the CLI with our monitor."""
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    dct.ok("spec", "--bundle", bundle)
    spec = json.loads((bundle / "config.json").read_text())
    spec["root"]["path"] = busybox_rootfs
    spec["process"]["args"] = ["/bin/sleep", "1000"]
    spec["process"]["terminal"] = False
    (bundle / "config.json").write_text(json.dumps(spec))
    cid = dct.new_id("sess")
    dct.ok("run", "-d", "--bundle", bundle, cid)
    return cid


def test_kill_of_process_group_zero_does_not_reach_the_caller(dct: Dct, sleeper: str) -> None:
    """Before: the exec'd shell's ``kill -USR1 0`` killed the dct CLI itself (same process group)."""
    # In a session of its own: were it reached, the signal must not hit pytest's process group.
    r = subprocess.run(dct.argv("exec", sleeper, "--", "sh", "-c", 'trap "" USR1; kill -USR1 0; echo survived'),
                       env=dct.env(), capture_output=True, text=True, timeout=30, start_new_session=True,
                       stdin=subprocess.DEVNULL)
    assert r.returncode == 0 and r.stdout == "survived\n", (r.returncode, r.stdout, r.stderr)


def test_exec_has_no_controlling_terminal_of_the_caller(dct: Dct, sleeper: str) -> None:
    """Run ``dct exec`` with a terminal as its controlling tty: the container must not open it
    (``/dev/tty`` answers ENXIO), so it cannot type into the caller's shell with TIOCSTI."""
    script = 'if (: > /dev/tty) 2>/dev/null; then echo HAS-TTY; else echo NO-TTY; fi'
    pid, master = pty.fork()
    if pid == 0:  # the child: a new session whose controlling terminal is the pty
        try:
            os.environ["PYTHONPATH"] = REPO + os.pathsep + os.environ.get("PYTHONPATH", "")
            os.execv(sys.executable, [sys.executable, "-m", "declarative_ct.cli.main", "--root", dct.root,
                                      "exec", sleeper, "--", "sh", "-c", script])
        finally:
            os._exit(127)
    out = b""
    deadline = time.monotonic() + 30
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.5)
            if not ready:
                if os.waitpid(pid, os.WNOHANG)[0]:
                    pid = 0
                    break
                continue
            try:
                chunk = os.read(master, 1024)
            except OSError:  # EIO: the other side closed
                break
            if not chunk:
                break
            out += chunk
    finally:
        os.close(master)
        if pid:
            os.waitpid(pid, 0)
    assert b"NO-TTY" in out and b"HAS-TTY" not in out, out


def test_a_container_does_not_share_the_callers_session_keyring(run_container, busybox_config, busybox_rootfs,
                                                                 tmp_path) -> None:
    if shutil.which("cc") is None:
        pytest.skip("the probe is a static C program built by the test: needs cc")
    rootfs = str(tmp_path / "rootfs")
    shutil.copytree(busybox_rootfs, rootfs, symlinks=True)
    src = tmp_path / "keyring.c"
    src.write_text(_KEYRING_C)
    subprocess.run(["cc", "-static", "-O2", "-o", os.path.join(rootfs, "keyring"), str(src)], check=True)
    libc = ctypes.CDLL(None, use_errno=True)
    ours = libc.syscall(250, 0, ctypes.c_long(-3), 1)  # create ours if missing: there is one to compare with
    assert ours > 0, ctypes.get_errno()
    config = busybox_config()
    config.rootfs = rootfs
    res = run_container(config, ["/keyring"], "keyring")
    theirs = int(res.stdout)
    assert theirs > 0 and theirs != ours, f"the container's session keyring is the caller's ({ours})"
