"""``dct logs`` (declarative_ct/cli/observe.py cmd_logs) on hand-written CRI files in a data root
(``$DCT_DATA_ROOT``): the flags, the streams to stdout/stderr, the errors naming what is missing.
The copier that writes these files for real containers is tested with them elsewhere."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

from declarative_ct.runtime import Runtime, logfiles

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
T = "2026-12-07T10:00:{:02d}.{:09d}Z"


def line(second: int, stream: str, text: str, tag: str = "F") -> bytes:
    return f"{T.format(second, 123456789)} {stream} {tag} {text}\n".encode()


@pytest.fixture
def roots(tmp_path):
    """``(state root, data root, dct(*args) -> CompletedProcess)``; the data root by $DCT_DATA_ROOT."""
    root, data = str(tmp_path / "state"), str(tmp_path / "data")
    env = {**os.environ, "DCT_DATA_ROOT": data, "PYTHONPATH": REPO}

    def dct(*args: str, timeout: float = 20) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "declarative_ct.cli.main", "--root", root, "logs", *args],
                              capture_output=True, timeout=timeout, env=env, cwd=REPO)

    return root, data, dct


def write_runs(data: str, name: str = "web") -> str:
    """Two runs of ``name``: run 0 (the previous: it crashed mid-line), run 1 in two files."""
    d = logfiles.log_dir(data, name)
    with open(logfiles.new_run(d), "ab") as f:
        f.write(line(1, "stdout", "starting") + line(2, "stderr", "panic: boom") + line(3, "stdout", "half", "P"))
    current = logfiles.new_run(d)
    with open(current + ".1", "wb") as f:
        f.write(line(10, "stdout", "up again") + line(11, "stderr", "warn: slow") + b"garbage\n"
                + line(12, "stdout", "a long ", "P"))
    with open(current, "wb") as f:
        f.write(line(13, "stdout", "line") + line(14, "stderr", "err 2") + line(15, "stdout", "last"))
    return d


def test_logs_prints_the_current_run_stdout_to_stdout_and_stderr_to_stderr(roots):
    _, data, dct = roots
    write_runs(data)
    r = dct("web")
    assert r.returncode == 0, r.stderr
    assert r.stdout == b"up again\na long line\nlast\n"
    assert r.stderr == b"warn: slow\nerr 2\n"


def test_logs_flags_timestamps_tail_since_stream_previous(roots):
    _, data, dct = roots
    write_runs(data)
    r = dct("-t", "--tail", "2", "web")
    assert r.stdout == f"{T.format(15, 123456789)} last\n".encode()
    assert r.stderr == f"{T.format(14, 123456789)} err 2\n".encode()
    assert dct("--tail", "3", "--stream", "stdout", "web").stdout == b"up again\na long line\nlast\n"
    assert dct("--tail", "0", "web").stdout == b""
    assert dct("--tail", "all", "--stream", "stderr", "web").stderr == b"warn: slow\nerr 2\n"
    r = dct("--since", "2026-12-07T10:00:13Z", "web")
    assert (r.stdout, r.stderr) == (b"a long line\nlast\n", b"err 2\n")
    r = dct("--since", "2026-12-07T11:00:13+01:00", "--tail", "1", "web")
    assert (r.stdout, r.stderr) == (b"last\n", b"")
    assert dct("--since", "1m", "web").stdout == b""  # the log is from the past: nothing in the last minute
    r = dct("--previous", "web")
    assert (r.stdout, r.stderr) == (b"starting\nhalf", b"panic: boom\n")  # its last line never ended
    r = dct("-p", "-f", "-t", "--stream", "stderr", "web", timeout=10)  # a previous run does not grow: no wait
    assert (r.returncode, r.stderr) == (0, f"{T.format(2, 123456789)} panic: boom\n".encode())


def test_logs_of_a_name_whose_container_is_gone_can_be_followed_and_end(roots):
    _, data, dct = roots
    write_runs(data)
    r = dct("-f", "--tail", "1", "--stream", "stdout", "web", timeout=10)  # no container: one read, then the end
    assert (r.returncode, r.stdout) == (0, b"last\n")


def test_logs_errors_name_the_container_and_what_is_missing(roots):
    root, data, dct = roots
    r = dct("nope")
    assert r.returncode == 1
    assert b"'nope' does not exist" in r.stderr and os.path.join(data, "logs", "nope").encode() in r.stderr
    os.makedirs(os.path.join(root, "bare"))  # a container made without a monitor: no logs
    r = dct("bare")
    assert r.returncode == 1 and b"bare has no logs: its output went to the caller's stdio" in r.stderr
    assert b"--monitor" in r.stderr
    d = logfiles.log_dir(data, "once")
    with open(logfiles.new_run(d), "ab") as f:
        f.write(line(1, "stdout", "only run"))
    r = dct("--previous", "once")
    assert r.returncode == 1 and b"once has no previous run: only run 0" in r.stderr
    for bad, needle in ((("--since", "yesterday"), b"--since"), (("--tail", "-3"), b"--tail"),
                        (("--stream", "stdin"), b"--stream")):
        r = dct(*bad, "once")
        assert r.returncode != 0 and needle in r.stderr, (bad, r.stderr)
    r = dct("../x")
    assert r.returncode == 1 and b"x" in r.stderr


def test_logs_finds_the_data_root_of_the_state_root(tmp_path):
    """Without $DCT_DATA_ROOT, the logs are under the state root's own data root (Runtime.data_root)."""
    root = str(tmp_path / "state")
    env = {k: v for k, v in os.environ.items() if k != "DCT_DATA_ROOT"}
    data = Runtime(root).data_root if "DCT_DATA_ROOT" not in os.environ else None
    if data is None:
        pytest.skip("DCT_DATA_ROOT is set for the whole session")
    d = logfiles.log_dir(data, "derived")
    try:
        with open(logfiles.new_run(d), "ab") as f:
            f.write(line(1, "stdout", "found"))
        r = subprocess.run([sys.executable, "-m", "declarative_ct.cli.main", "--root", root, "logs", "derived"],
                           capture_output=True, timeout=20, env={**env, "PYTHONPATH": REPO}, cwd=REPO)
        assert (r.returncode, r.stdout) == (0, b"found\n"), r.stderr
    finally:
        shutil.rmtree(data, ignore_errors=True)  # this test's state root's own: no one else's
