"""The monitor copies a container's output into its run's CRI log (runtime/logcopy.py) with real
containers: order and timestamps, no lost lines, rotation, a deleted file, output after init's
exit, the monitor's lifetime, and the CLI's rotation flags."""

from __future__ import annotations

import os
import signal
from datetime import datetime

import pytest

from conftest import cri_entries, read_log, reap_zombies, unique_id, wait_for
from dct_cli import Dct, runner
from declarative_ct.configs import Config
from declarative_ct.configs.logs import LogConfig
from declarative_ct.errors import ConfigInvalid
from declarative_ct.runtime import Process, Status, logcopy, logfiles, procfs, specconv

pytestmark = pytest.mark.integration


def _run(runtime, config: Config, script: str, prefix: str, log: LogConfig | None = None, wait: bool = True):
    c = runtime.create(unique_id(prefix), config)
    c.run(Process(["/bin/sh", "-c", script]), log=log)
    if wait:
        wait_for(c.exit_status, 30, message=f"{c.id} to exit")
    return c


def _files(c) -> list[str]:
    path = c.log_path
    return logfiles.run_files(os.path.dirname(path), int(os.path.basename(path).split(".")[0]))


def _entries(c) -> list[tuple[str, str, str, bytes]]:
    return [e for f in _files(c) for e in cri_entries(f)]


def _time(stamp: str) -> datetime:
    assert len(stamp) == 30 and stamp.endswith("Z"), stamp  # nanoseconds, UTC
    return datetime.fromisoformat(stamp[:26])  # (microseconds: enough to compare)


def test_stdout_and_stderr_interleave_in_order_with_timestamps(runtime, busybox_config):
    before = datetime.utcnow()
    c = _run(runtime, busybox_config(), "for i in 1 2 3 4; do echo out$i; usleep 30000; echo err$i >&2; "
                                        "usleep 30000; done", "order")
    got = _entries(c)
    assert [(s, tag, text) for _, s, tag, text in got] == [
        (s, "F", f"{name}{i}".encode()) for i in range(1, 5) for s, name in (("stdout", "out"), ("stderr", "err"))]
    times = [_time(stamp) for stamp, *_ in got]
    assert times == sorted(times) and before <= times[0] and times[-1] <= datetime.utcnow()
    assert (times[-1] - times[0]).total_seconds() >= 0.2  # one timestamp per read, not one per file
    assert c.log_path == os.path.join(runtime.data_root, "logs", c.id, "0.log")


def test_the_data_root_made_for_a_log_records_its_state_root(runtime, busybox_config):
    """Regression: the log's directories were made without the data root's marker, so the test
    session (and anyone) could not tell which state root a ``roots/dct-<hash>`` belongs to."""
    from declarative_ct.runtime import factory

    assert not os.path.exists(runtime.data_root)
    _run(runtime, busybox_config(), "true", "marker")
    with open(os.path.join(runtime.data_root, factory.DATA_ROOT_MARKER)) as f:
        assert f.read() == runtime.root + "\n"


def test_a_hundred_thousand_lines_lose_none_and_partial_lines_are_joined(runtime, busybox_config):
    c = _run(runtime, busybox_config(), "seq 1 100000; printf 'no newline at the end'", "many")
    out = read_log(c, "stdout")
    assert out == "".join(f"{i}\n" for i in range(1, 100001)) + "no newline at the end"
    assert _entries(c)[-1][2:] == ("P", b"no newline at the end")  # at the pipe's end, as containerd


def test_rotation_keeps_at_most_max_files_each_within_max_size_and_the_newest_lines_whole(runtime, busybox_config):
    log = LogConfig(max_size=64 * 1024, max_files=3)
    c = _run(runtime, busybox_config(), "seq 1 200000", "rotate", log=log)
    files = _files(c)
    assert len(files) == 3 and all(os.path.getsize(f) <= log.max_size for f in files)
    assert sorted(os.listdir(os.path.dirname(c.log_path))) == ["0.log", "0.log.1", "0.log.2"]
    numbers = [int(text) for _, _, _, text in _entries(c)]
    assert numbers == list(range(numbers[0], 200001))  # nothing lost before rotation dropped the oldest


def test_a_second_run_keeps_the_first_runs_log(runtime, busybox_config):
    first = _run(runtime, busybox_config(), "echo first run", "again")
    name = first.id
    first.destroy()
    second = runtime.create(name, busybox_config())
    second.run(Process(["/bin/sh", "-c", "echo second run"]))
    wait_for(second.exit_status, 10, message="the second run to exit")
    directory = logfiles.log_dir(runtime.data_root, name)
    assert logfiles.runs(directory) == [0, 1] and second.log_path == logfiles.run_path(directory, 1)
    assert [t for _, _, _, t in cri_entries(logfiles.run_path(directory, 0))] == [b"first run"]
    assert read_log(second, "stdout") == "second run\n"


def test_a_log_file_deleted_while_running_is_made_again(runtime, busybox_config):
    c = _run(runtime, busybox_config(), "i=0; while :; do echo $i; i=$((i+1)); usleep 20000; done", "deleted",
             wait=False)
    try:
        path = c.log_path
        wait_for(lambda: os.path.getsize(path) > 0, message="the first lines")
        os.unlink(path)
        wait_for(lambda: os.path.exists(path) and os.path.getsize(path) > 0, 5, message="the file made again")
        first = int(cri_entries(path)[0][3])
        wait_for(lambda: len(cri_entries(path)) >= 3, message="lines into the new file")
        numbers = [int(e[3]) for e in cri_entries(path)]
        assert numbers == list(range(first, first + len(numbers)))
    finally:
        c.signal(signal.SIGKILL)
        wait_for(c.exit_status, message="the exit")


def test_output_after_init_exits_is_still_copied_and_the_exit_is_not_held_for_it(runtime, busybox_config):
    """A process that inherited init's stdout writes after init exited (no PID namespace, so init's
    exit does not kill it): its line reaches the log, though the monitor's linger (0.2 s in the
    tests) is over long before; exit.json does not wait for it."""
    config = busybox_config()
    config.namespaces = [ns for ns in config.namespaces if ns.type != "NEWPID"]
    c = _run(runtime, config, "(usleep 1500000; echo late) & echo early", "late", wait=False)
    record = wait_for(c.exit_status, 10, message="init's exit")
    assert record["exit_code"] == 0
    assert read_log(c, "stdout") == "early\n"  # init's own output is in before its exit is recorded
    wait_for(lambda: read_log(c, "stdout") == "early\nlate\n", 10, message="the late line")
    c.destroy()


def test_a_killed_monitor_leaves_the_pipes_without_a_reader(runtime, busybox_config):
    """What the monitor's docstring says: its containers' next write gets EPIPE, as with a killed
    conmon (the shell is PID 1 of its namespace, which SIGPIPE does not kill: its echo fails and
    the loop ends); what was copied before stays."""
    c = _run(runtime, busybox_config(), "while echo tick; do usleep 20000; done", "nomon", wait=False)
    wait_for(lambda: "tick" in read_log(c, "stdout"), message="the first ticks")
    with open(f"/proc/{c.state().init_process_pid}/stat") as f:
        monitor = int(f.read().rsplit(")", 1)[1].split()[1])
    os.kill(monitor, signal.SIGKILL)
    wait_for(lambda: (reap_zombies(), procfs.stat(monitor) is None)[1], message="the monitor to die")
    wait_for(lambda: (reap_zombies(), c.status() == Status.STOPPED)[1], 5, message="SIGPIPE to stop it")
    assert set(read_log(c, "stdout").split()) == {"tick"}
    c.destroy()


def test_a_bad_log_config_is_refused_before_anything_is_made(runtime, busybox_config):
    c = runtime.create(unique_id("badlog"), busybox_config())
    with pytest.raises(ConfigInvalid, match="log.max_size"):
        c.run(Process(["true"]), log=LogConfig(max_size=100))
    assert not os.path.exists(logfiles.log_dir(runtime.data_root, c.id))
    c.destroy()


def test_a_terminal_or_given_stdio_is_not_logged(runtime, busybox_config):
    r, w = os.pipe()
    try:
        c = runtime.create(unique_id("given"), busybox_config())
        c.run(Process(["/bin/sh", "-c", "echo mine; echo logged >&2"], stdout=w))
        os.close(w)
        w = -1
        wait_for(c.exit_status, message="the exit")
        assert os.read(r, 100) == b"mine\n"
        assert read_log(c, "stderr") == "logged\n" and read_log(c, "stdout") == ""
    finally:
        os.close(r)
        if w >= 0:
            os.close(w)


# -- the CLI -------------------------------------------------------------------------------

@pytest.fixture
def dct(state_root: str):
    yield from runner(Dct, state_root, unique_id)


def _bundle(tmp_path, busybox_rootfs: str, args: list[str]) -> str:
    import json

    spec = specconv.example_spec()
    spec["root"]["path"] = busybox_rootfs
    spec["process"]["args"] = args
    spec["process"]["terminal"] = False
    (tmp_path / "config.json").write_text(json.dumps(spec))
    return str(tmp_path)


def test_cli_log_rotation_flags(dct: Dct, tmp_path, busybox_rootfs, runtime):
    b = _bundle(tmp_path, busybox_rootfs, ["seq", "1", "50000"])
    cid = dct.new_id("clilog")
    dct.ok("run", "-d", "--monitor", "--log-max-size", "8k", "--log-max-files", "2", "--bundle", b, cid)
    wait_for(lambda: dct.exit_record(cid), 20, message=f"{cid} to exit")
    directory = logfiles.log_dir(type(runtime)(dct.root).data_root, cid)
    files = logfiles.run_files(directory, 0)
    assert len(files) == 2 and all(os.path.getsize(f) <= 8192 for f in files)
    numbers = [int(e[3]) for f in files for e in cri_entries(f)]
    assert numbers == list(range(numbers[0], 50001))
    dct.ok("delete", cid)


@pytest.mark.parametrize(("flags", "needle"), [
    (["--monitor", "--log-max-size", "10x"], "argument --log-max-size: '10x' is not a size"),
    (["--monitor", "--log-max-size", "1k"], "--log-max-size: 1024 must be"),
    (["--monitor", "--log-max-files", "0"], "--log-max-files: 0 must be"),
    (["--log-max-size", "10m"], "only with --monitor"),
])
def test_cli_log_flags_refused_naming_the_flag(dct: Dct, tmp_path, busybox_rootfs, flags, needle):
    b = _bundle(tmp_path, busybox_rootfs, ["true"])
    cid = dct.new_id("badflag")
    r = dct("create", *flags, "--bundle", b, cid)
    assert r.returncode != 0 and needle in r.stderr, r.stderr
    assert dct.entries() == []


def test_log_size_suffixes():
    from declarative_ct.cli.parser import _log_size

    assert [_log_size(s) for s in ("4096", "10m", "10M", "512k", "1g", "10mb", "10MiB")] == [
        4096, 10 << 20, 10 << 20, 512 << 10, 1 << 30, 10 << 20, 10 << 20]


def test_a_container_cannot_forge_entries_or_grow_the_monitor_with_an_endless_line(runtime, busybox_config):
    """ATTACK: output shaped like CRI entries (a newline, then a timestamp and ``stderr F``), a bare
    ``\\r``, and 200 KiB without any newline: each line of the container stays stdout text of its own
    entry; the endless line is cut into P entries of at most the line limit (the monitor holds no
    more than that of it), and read back whole."""
    forged = "2026-01-01T00:00:00.000000000Z stderr F forged"
    c = _run(runtime, busybox_config(), f"printf 'real\\n{forged}\\nback\\rspace\\n'; "
                                        "head -c 204800 /dev/zero | tr '\\0' x; echo; echo after", "forge")
    got = _entries(c)
    assert [(s, tag, text) for _, s, tag, text in got[:3]] == [
        ("stdout", "F", b"real"), ("stdout", "F", forged.encode()), ("stdout", "F", b"back\rspace")]
    long = got[3:-1]
    assert {(s, tag) for _, s, tag, _ in long[:-1]} == {("stdout", "P")} and long[-1][2] == "F"
    assert all(len(text) <= logcopy.LINE_LIMIT + logcopy.READ_SIZE for *_, text in long)
    assert b"".join(text for *_, text in long) == b"x" * 204800
    assert got[-1][1:] == ("stdout", "F", b"after")
    assert read_log(c, "stderr") == ""  # nothing forged into the other stream


def test_an_init_forked_by_the_monitor_inherits_no_other_containers_pipes(runtime, busybox_config):
    """The monitor holds every logged container's read ends: none may leak into another container
    (received close-on-exec, and init closes what it does not need)."""
    first = _run(runtime, busybox_config(), "sleep 30", "fdsa", wait=False)
    second = _run(runtime, busybox_config(), "sleep 30", "fdsb", wait=False)
    try:
        pid = wait_for(lambda: second.status() == Status.RUNNING and second.state().init_process_pid)
        wait_for(lambda: open(f"/proc/{pid}/cmdline", "rb").read().startswith(b"sleep"), message="the exec")
        fds = {fd: os.readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd")}
        assert sorted(map(int, fds)) == [0, 1, 2], fds
        monitor = int(open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[1])
        pipes = [fd for fd in os.listdir(f"/proc/{monitor}/fd") if os.readlink(f"/proc/{monitor}/fd/{fd}").startswith("pipe:")]
        assert len(pipes) >= 4  # both containers' stdout and stderr
        for fd in pipes:
            flags = open(f"/proc/{monitor}/fdinfo/{fd}").read().split("flags:")[1].split()[0]
            assert int(flags, 8) & os.O_CLOEXEC, f"monitor fd {fd} is inheritable"
    finally:
        for c in (first, second):
            c.signal(signal.SIGKILL)
