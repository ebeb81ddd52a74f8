"""Integration tests of the ``dct`` command line (runc's verbs), run as a subprocess.

Every test has its own state root (conftest's ``state_root``) and unique container ids; every id
a test uses is removed with ``dct delete --force`` at teardown, pass or fail, and the conftest
teardown and session leak check catch anything that still escapes. Bundles are built from
``specconv.example_spec()`` on the session's busybox rootfs.
"""

from __future__ import annotations

import glob
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Callable

import psutil
import pytest

from dct_cli import DCT, REPO, UNTIL_TERM, Dct, runner
from declarative_ct.runtime import Runtime, logfiles, specconv

pytestmark = pytest.mark.integration

STATE_KEYS = {"ociVersion", "id", "pid", "status", "bundle", "rootfs", "created", "owner"}


# -- helpers ---------------------------------------------------------------------------------
@pytest.fixture
def dct(state_root: str, unique_id: Callable[[str], str]) -> Dct:
    yield from runner(Dct, state_root, unique_id)


@pytest.fixture
def bundle(tmp_path: Path, busybox_rootfs: str) -> Callable[..., str]:
    """``bundle(args, name="", **changes)``: write a config.json for ``args`` and return the bundle dir.

    The default bundle is ``tmp_path`` itself; ``name`` makes a sub-directory. ``changes`` are
    applied to the example spec: ``readonly``, ``hostname``, ``annotations``, or ``edit`` (a
    function given the spec dict).
    """

    def make(args: list[str], name: str = "", readonly: bool = True, hostname: str | None = None,
             annotations: dict | None = None, edit: Callable[[dict], None] | None = None) -> str:
        spec = specconv.example_spec()
        spec["root"]["path"] = busybox_rootfs
        spec["root"]["readonly"] = readonly
        spec["process"]["args"] = list(args)
        if hostname is not None:
            spec["hostname"] = hostname
        if annotations is not None:
            spec["annotations"] = annotations
        if edit is not None:
            edit(spec)
        path = tmp_path / name if name else tmp_path
        path.mkdir(parents=True, exist_ok=True)
        (path / "config.json").write_text(json.dumps(spec, indent=2))
        return str(path)

    return make


def _no_trace_of(dct: Dct, cid: str, cgroup_dirs) -> None:
    """Nothing of ``cid`` is left: no state directory, no cgroup directory."""
    assert cid not in dct.entries()
    assert cgroup_dirs(cid) == []


def proc_alive(pid: int) -> bool:
    """True while ``pid`` exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rpartition(")")[2].split()[0] != "Z"
    except OSError:
        return False


def cmdline(pid: int) -> list[str]:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().decode(errors="replace").split("\0")[:-1]
    except OSError:
        return []


def background_sleep(dct: "Dct", cid: str) -> int | None:
    """The host pid of the container's ``sleep 1000`` (None until it shows up)."""
    for pid in json.loads(dct.ok("ps", "--format", "json", cid).stdout):
        if cmdline(pid) == ["sleep", "1000"]:
            return pid
    return None


def sh(script: str) -> list[str]:
    return ["sh", "-c", script]


# -- spec ----------------------------------------------------------------------------------------
def test_spec_writes_loadable_config_and_refuses_to_overwrite(dct: Dct, tmp_path: Path) -> None:
    target = tmp_path / "spec"
    target.mkdir()
    dct.ok("spec", cwd=target)  # default bundle: the current directory
    path = target / "config.json"
    assert path.is_file()
    assert json.loads(path.read_text()) == specconv.example_spec()
    config, process = specconv.load_bundle(str(target))
    assert config.rootfs == str(target / "rootfs")
    assert process.args == ["sh"]

    before = path.read_bytes()
    mtime = path.stat().st_mtime_ns
    r = dct.fails("spec", "--bundle", target, needles=("config.json", "exists"))
    assert r.stdout == ""
    assert path.read_bytes() == before
    assert path.stat().st_mtime_ns == mtime

    # -b DIR works too, and the same refusal there.
    other = tmp_path / "other"
    other.mkdir()
    dct.ok("spec", "-b", other)
    specconv.load_bundle(str(other))
    dct.fails("spec", "-b", other, needles=("exists",))


# -- run ------------------------------------------------------------------------------------------
def test_run_foreground_passes_output_and_exit_code_and_removes_container(dct: Dct, bundle) -> None:
    b = bundle(sh("echo hi; echo oops >&2; exit 3"))
    cid = dct.new_id("run")
    r = dct("run", "--bundle", b, cid)
    assert r.returncode == 3, r.stderr
    assert r.stdout == "hi\n"
    assert r.stderr == "oops\n"
    dct.fails("state", cid, needles=("does not exist",))
    assert dct.entries() == []


def test_run_keep_leaves_a_stopped_container_with_its_exit_code(dct: Dct, bundle) -> None:
    b = bundle(sh("echo hi; exit 3"))
    cid = dct.new_id("keep")
    r = dct("run", "--keep", "--bundle", b, cid)
    assert r.returncode == 3, r.stderr
    assert r.stdout == "hi\n"
    st = dct.state(cid)
    assert st["status"] == "stopped"
    assert st["pid"] == 0
    record = dct.exit_record(cid)
    assert record is not None and record["exit_code"] == 3 and record["signal"] is None
    dct.ok("delete", cid)  # stopped: a plain delete works
    dct.fails("state", cid, needles=("does not exist",))
    assert dct.entries() == []


def test_run_foreground_forwards_sigterm(dct: Dct, bundle) -> None:
    b = bundle(sh(f"echo up; {UNTIL_TERM}"))
    cid = dct.new_id("fwd")
    env = dict(os.environ)
    env["PYTHONPATH"] = REPO + os.pathsep + env.get("PYTHONPATH", "")
    proc = subprocess.Popen([*DCT, "--root", dct.root, "run", "--bundle", b, cid], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True, env=env)
    try:
        assert proc.stdout.readline() == "up\n"  # the program runs: dct's signal handlers are installed
        assert dct.status(cid) == "running"
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err  # the container's trap ran: exit 0
    assert "Traceback" not in err
    dct.fails("state", cid, needles=("does not exist",))
    assert dct.entries() == []


# -- create / start ---------------------------------------------------------------------------
def test_create_then_start(dct: Dct, bundle, busybox_rootfs: str, tmp_path: Path, cgroup_dirs, wait_for) -> None:
    cid = dct.new_id("cs")
    marker = Path(busybox_rootfs) / "tmp" / f"marker-{cid}"
    b = bundle(sh(f"echo started > /tmp/marker-{cid}; {UNTIL_TERM}"), readonly=False)
    pid_file = tmp_path / "init.pid"
    try:
        r = dct.ok("create", "--bundle", b, "--pid-file", pid_file, cid)
        assert r.stdout == ""
        pid = int(pid_file.read_text())
        assert proc_alive(pid)

        st = dct.state(cid)
        assert set(st) == STATE_KEYS  # no annotations in this config.json
        assert st["ociVersion"] == "1.2.0"
        assert st["id"] == cid
        assert st["pid"] == pid
        assert st["status"] == "created"
        assert st["bundle"] == b
        assert st["rootfs"] == busybox_rootfs
        assert isinstance(st["created"], str) and st["created"].endswith("Z")
        assert isinstance(st["owner"], str)
        assert cgroup_dirs(cid), "a created container has its cgroup"
        assert not marker.exists(), "the program ran before start"

        dct.ok("start", cid)
        wait_for(marker.exists, message=f"{marker} to appear after start")
        assert marker.read_text() == "started\n"
        assert dct.status(cid) == "running"
        assert dct.state(cid)["pid"] == pid

        dct.fails("start", cid, needles=("cannot start an already running container",))
        assert dct.status(cid) == "running"
    finally:
        marker.unlink(missing_ok=True)


def test_options_after_the_id(dct: Dct, bundle, wait_for) -> None:
    b = bundle(sh(UNTIL_TERM))
    cid = dct.new_id("opts")
    dct.ok("create", "--monitor", cid, "--bundle", b)
    assert dct.status(cid) == "created"
    dct.ok("start", cid)
    dct.ok("kill", cid, "KILL", "--all")
    record = wait_for(lambda: dct.exit_record(cid), message=f"{cid} to exit")
    assert record["exit_code"] == 128 + signal.SIGKILL
    assert dct.status(cid) == "stopped"
    dct.ok("delete", cid, "--force")
    assert dct.entries() == []


# -- kill ------------------------------------------------------------------------------------------
def test_kill_default_sigterm(dct: Dct, bundle, wait_for) -> None:
    b = bundle(sh(UNTIL_TERM))
    cid = dct.new_id("term")
    dct.ok("run", "-d", "--monitor", "--bundle", b, cid)
    assert dct.status(cid) == "running"
    dct.ok("kill", cid)
    record = wait_for(lambda: dct.exit_record(cid), message=f"{cid} to exit after SIGTERM")
    assert record["exit_code"] == 0 and record["signal"] is None
    assert dct.status(cid) == "stopped"


def test_kill_signal_spellings(dct: Dct, bundle, wait_for) -> None:
    b = bundle(sh(UNTIL_TERM))
    ids = {spelling: dct.new_id("sig") for spelling in ("9", "SIGKILL", "kill")}
    for cid in ids.values():
        dct.ok("run", "-d", "--monitor", "--bundle", b, cid)

    first = ids["9"]
    dct.fails("kill", first, "NOPE", needles=("NOPE", "signal"))
    dct.fails("kill", first, "0", needles=("signal",))
    dct.fails("kill", first, "99", needles=("99",))
    assert dct.status(first) == "running"
    assert dct.exit_record(first) is None

    for spelling, cid in ids.items():
        dct.ok("kill", cid, spelling)
    for spelling, cid in ids.items():
        record = wait_for(lambda cid=cid: dct.exit_record(cid), message=f"{cid} to die of 'kill {spelling}'")
        assert record["signal"] == signal.SIGKILL, (spelling, record)
        assert record["exit_code"] == 128 + signal.SIGKILL
        assert dct.status(cid) == "stopped"


def test_kill_all_kills_background_children(dct: Dct, bundle, wait_for) -> None:
    b = bundle(sh(f"sleep 1000 & {UNTIL_TERM}"))
    cid = dct.new_id("all")
    dct.ok("run", "-d", "--monitor", "--bundle", b, cid)
    pid = dct.state(cid)["pid"]
    child = wait_for(lambda: background_sleep(dct, cid), message="the background sleep to start")
    assert pid in json.loads(dct.ok("ps", "--format", "json", cid).stdout)

    dct.ok("kill", "--all", cid, "KILL")
    wait_for(lambda: json.loads(dct.ok("ps", "--format", "json", cid).stdout) == [],
             message="every process of the container to die")
    wait_for(lambda: not proc_alive(child), message=f"background child {child} to die")
    record = wait_for(lambda: dct.exit_record(cid), message="the exit record")
    assert record["signal"] == signal.SIGKILL
    assert dct.status(cid) == "stopped"
    # Nothing left to signal.
    dct.fails("kill", cid, "KILL", needles=("not running",))


def test_kill_created_container(dct: Dct, bundle, wait_for) -> None:
    b = bundle(sh(UNTIL_TERM))
    cid = dct.new_id("kc")
    dct.ok("create", "--bundle", b, cid)
    dct.ok("kill", cid, "KILL")
    wait_for(lambda: dct.status(cid) == "stopped", message=f"{cid} to stop")
    assert dct.state(cid)["pid"] == 0
    dct.fails("start", cid, needles=("stopped",))
    dct.ok("delete", cid)
    assert dct.entries() == []


# -- exec -----------------------------------------------------------------------------------------
@pytest.fixture
def running(dct: Dct, bundle, unique_id) -> tuple[str, str]:
    """A running container (hostname ``h-<hex>``) on the until-TERM program: ``(id, hostname)``."""
    hostname = "h-" + unique_id("x")[-8:]
    b = bundle(sh(UNTIL_TERM), name="running", hostname=hostname)
    cid = dct.new_id("run")
    dct.ok("run", "-d", "--bundle", b, cid)
    assert dct.status(cid) == "running"
    return cid, hostname


def test_exec_exit_code_output_and_namespaces(dct: Dct, running) -> None:
    cid, hostname = running
    r = dct("exec", cid, "--", "sh", "-c", "exit 7")
    assert r.returncode == 7, r.stderr

    r = dct.ok("exec", cid, "--", "sh", "-c", "echo out; echo err >&2")
    assert r.stdout == "out\n"
    assert r.stderr == "err\n"

    assert dct.ok("exec", cid, "--", "hostname").stdout == f"{hostname}\n"

    inner_pid = int(dct.ok("exec", cid, "--", "sh", "-c", "echo $$").stdout)
    assert 1 < inner_pid < 100, f"exec is not in the container's PID namespace (pid {inner_pid})"

    cmdline = dct.ok("exec", cid, "--", "cat", "/proc/1/cmdline").stdout
    assert cmdline.split("\0")[:3] == ["sh", "-c", UNTIL_TERM]

    # The exec'd processes are gone; only init (and its sleep) remain.
    assert dct.status(cid) == "running"


def test_exec_runs_from_the_sealed_interpreter(dct: Dct, running, wait_for) -> None:
    """The CLI re-executes itself from the sealed image before it forks stage 1 (CVE-2019-5736):
    the process that forks into the container is backed by no host file."""
    cid, _ = running
    proc = subprocess.Popen(dct.argv("exec", cid, "--", "sleep", "2"), env=dct.env(),
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        exe = f"/proc/{proc.pid}/exe"
        wait_for(lambda: os.readlink(exe).startswith("/memfd:dct-exe"), 5)
    finally:
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err


def test_exec_env_and_user(dct: Dct, running) -> None:
    cid, _ = running
    assert dct.ok("exec", "-e", "FOO=bar", cid, "--", "sh", "-c", 'echo "$FOO"').stdout == "bar\n"
    # The bundle's env is the base: PATH from config.json is still there.
    assert "/bin" in dct.ok("exec", "-e", "FOO=bar", cid, "--", "sh", "-c", 'echo "$PATH"').stdout
    assert dct.ok("exec", "-u", "1000:1000", cid, "--", "id", "-u").stdout == "1000\n"
    assert dct.ok("exec", "-u", "1000:1000", cid, "--", "id", "-g").stdout == "1000\n"
    assert dct.ok("exec", cid, "--", "id", "-u").stdout == "0\n"
    dct.fails("exec", "-u", "bob", cid, "--", "id", needles=("--user", "bob"))


def test_exec_refused_when_paused_or_stopped(dct: Dct, running, wait_for) -> None:
    cid, _ = running
    dct.ok("pause", cid)
    dct.fails("exec", cid, "--", "true", needles=("paused",))
    dct.ok("resume", cid)
    assert dct.ok("exec", cid, "--", "echo", "back").stdout == "back\n"
    dct.ok("kill", cid)
    wait_for(lambda: dct.status(cid) == "stopped", message=f"{cid} to stop")
    dct.fails("exec", cid, "--", "true", needles=("stopped",))


def test_exec_missing_program(dct: Dct, running, reap_zombies) -> None:
    cid, _ = running
    dct.fails("exec", cid, "--", "/bin/no-such-program", needles=("/bin/no-such-program",))
    assert dct.status(cid) == "running"


def test_container_stops_after_a_failed_exec(dct: Dct, running, wait_for) -> None:
    """Regression: a failed exec used to leave a zombie in the container's PID namespace, so init could not die."""
    cid, _ = running
    dct.fails("exec", cid, "--", "/bin/no-such-program", needles=("/bin/no-such-program",))
    dct.ok("kill", cid, "KILL")
    wait_for(lambda: dct.status(cid) == "stopped", timeout=3, message=f"{cid} to stop after SIGKILL")


def test_exec_detached_leaves_only_the_process(dct: Dct, running, wait_for) -> None:
    """Regression: exec -d used to leave our stage-1 helper (a Python process) in the container's cgroup."""
    cid, _ = running

    def cmdlines() -> list[bytes]:
        out = []
        for pid in json.loads(dct.ok("ps", "--format", "json", cid).stdout):
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    out.append(f.read())
            except FileNotFoundError:
                pass
        return out

    pid_file = os.path.join(os.path.dirname(dct.root), f"{cid}.exec.pid")
    dct.ok("exec", "-d", "--pid-file", pid_file, cid, "--", "sleep", "30")
    wait_for(lambda: b"sleep\x0030\x00" in cmdlines(), message="the detached sleep 30 to show in ps")
    assert not [c for c in cmdlines() if b"python" in c]
    # As runc exec --detach: the process is left to the caller's nearest subreaper (us), which reaps it.
    with open(pid_file) as f:
        pid = int(f.read())
    assert psutil.Process(pid).ppid() == os.getpid()
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)


# -- pause / resume / delete -------------------------------------------------------------------
def test_pause_resume_and_delete_rules(dct: Dct, bundle, cgroup_dirs, wait_for) -> None:
    b = bundle(sh(UNTIL_TERM))
    cid = dct.new_id("pr")
    dct.ok("run", "-d", "--bundle", b, cid)
    pid = dct.state(cid)["pid"]

    dct.fails("resume", cid, needles=("not paused",))
    assert dct.status(cid) == "running"
    dct.fails("delete", cid, needles=("not stopped: running",))
    assert dct.status(cid) == "running"
    assert proc_alive(pid)

    dct.ok("pause", cid)
    assert dct.status(cid) == "paused"
    dct.fails("delete", cid, needles=("paused",))
    assert dct.status(cid) == "paused"
    dct.ok("resume", cid)
    assert dct.status(cid) == "running"

    dct.ok("delete", "--force", cid)
    dct.fails("state", cid, needles=("does not exist",))
    _no_trace_of(dct, cid, cgroup_dirs)
    wait_for(lambda: not proc_alive(pid), message=f"init {pid} to die")


def test_delete_force_paused(dct: Dct, bundle, cgroup_dirs, wait_for) -> None:
    b = bundle(sh(f"sleep 1000 & {UNTIL_TERM}"))
    cid = dct.new_id("fp")
    dct.ok("run", "-d", "--bundle", b, cid)
    pid = dct.state(cid)["pid"]
    child = wait_for(lambda: background_sleep(dct, cid), message="the background sleep to start")
    dct.ok("pause", cid)
    assert dct.status(cid) == "paused"
    dct.ok("delete", "--force", cid)
    dct.fails("state", cid, needles=("does not exist",))
    _no_trace_of(dct, cid, cgroup_dirs)
    for p in (pid, child):
        wait_for(lambda p=p: not proc_alive(p), message=f"pid {p} to die")


def test_delete_created_kills_it(dct: Dct, bundle, tmp_path: Path, cgroup_dirs, wait_for) -> None:
    b = bundle(sh(UNTIL_TERM))
    cid = dct.new_id("dc")
    dct.ok("create", "--bundle", b, "--pid-file", tmp_path / "pid", cid)
    pid = int((tmp_path / "pid").read_text())
    assert dct.status(cid) == "created"
    dct.ok("delete", cid)  # no --force: runc kills a created container
    dct.fails("state", cid, needles=("does not exist",))
    assert dct.entries() == []
    assert cgroup_dirs(cid) == []
    wait_for(lambda: not proc_alive(pid), message=f"init {pid} to die")


def test_delete_missing(dct: Dct) -> None:
    cid = dct.new_id("missing")
    dct.fails("delete", cid, needles=("does not exist",))
    dct.ok("delete", "--force", cid)  # as runc: --force on a missing container is not an error


# -- list / ps / logs -------------------------------------------------------------------------
def test_list_formats(dct: Dct, bundle) -> None:
    # Nothing yet (the state root does not even exist).
    assert json.loads(dct.ok("list", "--format", "json").stdout) is None
    assert dct.ok("list", "-q").stdout == ""
    assert dct.ok("list").stdout.split() == ["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"]

    annotations = {"org.example.k": "v"}
    b = bundle(sh(UNTIL_TERM), annotations=annotations)
    created, running = sorted([dct.new_id("la"), dct.new_id("lb")])
    dct.ok("create", "--bundle", b, created)
    dct.ok("run", "-d", "--bundle", b, running)

    st = dct.state(created)
    assert set(st) == STATE_KEYS | {"annotations"}
    assert st["annotations"] == annotations

    lines = dct.ok("list").stdout.splitlines()
    assert lines[0].split() == ["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"]
    rows = {line.split()[0]: line.split() for line in lines[1:]}
    assert sorted(rows) == [created, running]
    for cid, status in ((created, "created"), (running, "running")):
        s = dct.state(cid)
        assert rows[cid] == [cid, str(s["pid"]), status, b, s["created"], "root"]

    listed = json.loads(dct.ok("list", "--format", "json").stdout)
    assert isinstance(listed, list)
    assert [c["id"] for c in listed] == [created, running]
    for item, status in zip(listed, ("created", "running")):
        assert set(item) == STATE_KEYS | {"annotations"}
        assert item["status"] == status
        assert item["bundle"] == b
        assert item["owner"] == "root"
        assert item["pid"] == dct.state(item["id"])["pid"]

    assert dct.ok("list", "-q").stdout.splitlines() == [created, running]


def test_ps(dct: Dct, running) -> None:
    cid, _ = running
    pid = dct.state(cid)["pid"]
    pids = json.loads(dct.ok("ps", "--format", "json", cid).stdout)
    assert isinstance(pids, list) and pid in pids

    lines = dct.ok("ps", cid).stdout.splitlines()
    header = lines[0].split()
    assert "PID" in header
    col = header.index("PID")
    assert pid in [int(line.split()[col]) for line in lines[1:]]
    # Only the container's processes: not pytest's.
    assert os.getpid() not in [int(line.split()[col]) for line in lines[1:]]


def test_logs_of_detached_run(dct: Dct, bundle, wait_for) -> None:
    b = bundle(sh("echo to-stdout; echo to-stderr >&2"))
    cid = dct.new_id("logs")
    r = dct.ok("run", "-d", "--monitor", "--bundle", b, cid)
    assert r.stdout == "" and r.stderr == ""
    record = wait_for(lambda: dct.exit_record(cid), message=f"{cid} to exit")
    assert record["exit_code"] == 0
    r = dct.ok("logs", cid)
    assert r.stdout == "to-stdout\n"
    assert r.stderr == "to-stderr\n"
    # delete takes the logs of a container made by run/create --monitor with it, as docker rm does
    logs = logfiles.log_dir(Runtime(dct.root).data_root, cid)
    assert logfiles.runs(logs) == [0]
    dct.ok("delete", cid)
    assert not os.path.exists(logs)
    dct.fails("logs", cid, needles=("does not exist",))


def test_logs_of_a_name_whose_container_now_runs_without_the_monitor(dct: Dct, bundle) -> None:
    """A name with an earlier monitored container's logs, and now a container of that name made
    without the monitor: its output is not in those logs, so logs says so instead of showing the
    old output as its own (--previous still reads the old run)."""
    cid = dct.new_id("relog")
    runtime = Runtime(dct.root)
    logs = os.path.join(runtime.data_dir(logfiles.LOGS_DIR), cid)  # (data_dir: the session removes it)
    with open(logfiles.new_run(logs), "w") as f:  # an earlier container's, kept by the name (apply's way)
        f.write("2026-12-07T10:00:00.000000000Z stdout F kept-by-the-name\n")
    dct.ok("run", "-d", "--bundle", bundle(sh(UNTIL_TERM)), cid)
    try:
        dct.fails("logs", cid, needles=("has no logs: its output went to the caller's stdio",))
        logfiles.new_run(logs)
        assert dct.ok("logs", "--previous", cid).stdout == "kept-by-the-name\n"
    finally:
        dct.ok("delete", "-f", cid)


# -- a crashed manager -----------------------------------------------------------------------------
def test_delete_after_manager_killed_between_create_and_start(dct: Dct, bundle, cgroup_dirs, wait_for) -> None:
    b = bundle(sh(UNTIL_TERM))
    cid = dct.new_id("crash")
    code = textwrap.dedent(f"""
        import os, signal
        from declarative_ct.runtime import Runtime, specconv
        config, process = specconv.load_bundle({b!r})
        Runtime({dct.root!r}).create({cid!r}, config).start(process)
        os.kill(os.getpid(), signal.SIGKILL)
    """)
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30, cwd=REPO,
                       stdin=subprocess.DEVNULL)
    assert r.returncode == -signal.SIGKILL, r.stderr
    st = dct.state(cid)
    assert st["status"] == "created"
    pid = st["pid"]
    assert proc_alive(pid)
    assert cgroup_dirs(cid)

    dct.ok("delete", cid)
    assert dct.entries() == []
    assert cgroup_dirs(cid) == []
    wait_for(lambda: not proc_alive(pid), message=f"init {pid} to die")


def test_delete_state_dir_without_state_json(dct: Dct) -> None:
    cid = dct.new_id("half")
    os.makedirs(os.path.join(dct.root, cid))
    dct.ok("delete", cid)
    assert dct.entries() == []


# -- bad input --------------------------------------------------------------------------------------
@pytest.mark.parametrize("bad_id", ["../x", "a/b", ".", "..", ""])
def test_create_invalid_id(dct: Dct, bundle, tmp_path: Path, bad_id: str) -> None:
    b = bundle(["true"])
    before = sorted(os.listdir(tmp_path))
    # Where a path-joined id would land: <root>/../x is tmp_path/x, /sys/fs/cgroup/*/dct/../x is .../x.
    escaped_cgroups = sorted(glob.glob(f"/sys/fs/cgroup/*/dct/{bad_id}/") if "/" in bad_id else [])
    dct.fails("create", "--bundle", b, bad_id, needles=("invalid container id",))
    dct.fails("run", "--bundle", b, bad_id, needles=("invalid container id",))
    dct.fails("run", "-d", "--bundle", b, bad_id, needles=("invalid container id",))
    dct.fails("state", bad_id, needles=("invalid container id",))
    dct.fails("delete", "--force", bad_id, needles=("invalid container id",))
    assert dct.entries() == []
    assert sorted(os.listdir(tmp_path)) == before  # "../x" must not escape the state root
    assert sorted(glob.glob(f"/sys/fs/cgroup/*/dct/{bad_id}/") if "/" in bad_id else []) == escaped_cgroups


def test_create_existing_id(dct: Dct, bundle, cgroup_dirs) -> None:
    b = bundle(sh(UNTIL_TERM))
    cid = dct.new_id("dup")
    dct.ok("create", "--bundle", b, cid)
    first = dct.state(cid)
    cgroups = cgroup_dirs(cid)
    dct.fails("create", "--bundle", b, cid, needles=(cid, "already exists"))
    dct.fails("run", "-d", "--bundle", b, cid, needles=(cid, "already exists"))
    assert dct.state(cid) == first
    assert first["status"] == "created"
    assert proc_alive(first["pid"])
    assert cgroup_dirs(cid) == cgroups
    assert {"exec.fifo", "state.json"} <= set(os.listdir(os.path.join(dct.root, cid)))


def _no_leftovers(dct: Dct, cid: str, cgroup_dirs) -> None:
    assert dct.entries() == []
    assert cgroup_dirs(cid) == []


def test_create_missing_rootfs(dct: Dct, bundle, tmp_path: Path, cgroup_dirs) -> None:
    missing = str(tmp_path / "no-such-rootfs")
    b = bundle(["true"], edit=lambda s: s["root"].update(path=missing))
    cid = dct.new_id("norootfs")
    dct.fails("create", "--bundle", b, cid, needles=("rootfs", missing))
    _no_leftovers(dct, cid, cgroup_dirs)


def test_create_symlinked_rootfs(dct: Dct, bundle, busybox_rootfs: str, tmp_path: Path, cgroup_dirs) -> None:
    link = tmp_path / "rootfs-link"
    link.symlink_to(busybox_rootfs)
    b = bundle(["true"], edit=lambda s: s["root"].update(path=str(link)))
    cid = dct.new_id("symrootfs")
    dct.fails("create", "--bundle", b, cid, needles=("rootfs", "symlink"))
    _no_leftovers(dct, cid, cgroup_dirs)


def test_create_missing_program(dct: Dct, bundle, cgroup_dirs) -> None:
    b = bundle(["/bin/no-such-program", "arg"])
    cid = dct.new_id("noprog")
    dct.fails("create", "--bundle", b, cid, needles=("/bin/no-such-program",))
    _no_leftovers(dct, cid, cgroup_dirs)
    dct.fails("run", "--bundle", b, cid, needles=("/bin/no-such-program",))
    _no_leftovers(dct, cid, cgroup_dirs)


def _bad_json(path: str) -> None:
    Path(path, "config.json").write_text('{\n  "ociVersion": "1.2.0",\n  "process": {,\n}\n')


@pytest.mark.parametrize("breakage, needles", [
    ("json", ("config.json", "line 3", "column")),
    ("terminal", ("process.terminal",)),
    ("seccomp-action", ("linux.seccomp.syscalls[1].action", 'unknown action "SCMP_ACT_FOO"')),
    ("seccomp-arch", ("linux.seccomp.architectures[0]", "SCMP_ARCH_VAX")),
    ("seccomp-args", ("linux.seccomp.syscalls[0].args[0].op", "required")),
    ("seccomp-notify", ("linux.seccomp.listenerPath", "not supported")),
    ("no-config", ("config.json", "no such file")),
])
def test_create_malformed_config(dct: Dct, bundle, cgroup_dirs, breakage: str, needles: tuple[str, ...]) -> None:
    edits = {
        "json": None,
        "terminal": lambda s: s["process"].update(terminal=True),
        "seccomp-action": lambda s: s["linux"]["seccomp"]["syscalls"].insert(1, {"names": ["mkdir"],
                                                                                  "action": "SCMP_ACT_FOO"}),
        "seccomp-arch": lambda s: s["linux"]["seccomp"].update(architectures=["SCMP_ARCH_VAX"]),
        "seccomp-args": lambda s: s["linux"]["seccomp"]["syscalls"][0].update(args=[{"index": 0, "value": 1}]),
        "seccomp-notify": lambda s: s["linux"]["seccomp"].update(listenerPath="/run/agent.sock"),
        "no-config": None,
    }
    b = bundle(["true"], edit=edits[breakage])
    if breakage == "json":
        _bad_json(b)
    elif breakage == "no-config":
        os.unlink(os.path.join(b, "config.json"))
    cid = dct.new_id("badcfg")
    dct.fails("create", "--bundle", b, cid, needles=needles)
    _no_leftovers(dct, cid, cgroup_dirs)
    dct.fails("run", "--bundle", b, cid, needles=needles)
    _no_leftovers(dct, cid, cgroup_dirs)


def test_bad_verbs_input(dct: Dct) -> None:
    cid = dct.new_id("nothere")
    dct.fails("start", cid, needles=(cid, "does not exist"))
    dct.fails("kill", cid, "NOPE", needles=("NOPE",))
    dct.fails("exec", cid, needles=("command",))
    dct.fails("exec", cid, "--", needles=("command",))
    dct.fails("exec", cid, "--", "true", needles=(cid, "does not exist"))
    dct.fails("pause", cid, needles=("does not exist",))
    dct.fails("resume", cid, needles=("does not exist",))
    dct.fails("ps", cid, needles=("does not exist",))
    dct.fails("logs", cid, needles=("does not exist",))
    assert dct.entries() == []


def test_exec_without_command_on_running_container(dct: Dct, running) -> None:
    cid, _ = running
    dct.fails("exec", cid, needles=("command",))
    assert dct.status(cid) == "running"


# -- regressions found by a new user's trial -------------------------------------------------------
@pytest.mark.parametrize("verb", [["create"], ["run", "-d"]])
def test_bad_pid_file_leaves_nothing(dct: Dct, bundle, cgroup_dirs, tmp_path, verb) -> None:
    b = bundle(sh("sleep 100"))
    for pid_file in (tmp_path / "nodir" / "p.pid", tmp_path):  # missing directory; a directory
        cid = dct.new_id("pidf")
        dct.fails(*verb, "--bundle", b, "--pid-file", pid_file, cid, needles=("--pid-file",))
        _no_trace_of(dct, cid, cgroup_dirs)
    assert not list(tmp_path.glob(".*"))  # no stray temp file


def test_ids_users_and_env_out_of_range_are_refused(dct: Dct, running, bundle, cgroup_dirs) -> None:
    cid, _ = running
    dct.fails("exec", "-u", "4294967295:4294967295", cid, "--", "id", needles=("process.uid", "not a valid id"))
    dct.fails("exec", "-u", "5:-1", cid, "--", "id", needles=("process.gid",))
    dct.fails("exec", "-e", "=x", cid, "--", "true", needles=("process.env", "'=x'"))
    dct.fails("exec", "--cwd", "rel", cid, "--", "true", needles=("process.cwd", "absolute"))
    dct.fails("exec", "--cwd", "/bin/busybox", cid, "--", "true", needles=("not a directory",))
    # As runc's exec: a missing cwd is an error, not created in the container (init creates its own).
    dct.fails("exec", "--cwd", "/nonexist", cid, "--", "true", needles=("cwd /nonexist", "does not exist"))
    assert dct("exec", cid, "--", "test", "-e", "/nonexist").returncode == 1
    b = bundle(["true"], name="uidmax", edit=lambda s: s["process"]["user"].update(uid=4294967295))
    new = dct.new_id("uidmax")
    dct.fails("create", "--bundle", b, new, needles=("uid",))
    _no_trace_of(dct, new, cgroup_dirs)
    dct.fails("create", "--bundle", bundle(["true"], name="ok"), "x" * 256, needles=("longer than 255",))
    dct.fails("state", "x" * 256, needles=("longer than 255",))


def test_hostile_paths_give_one_line_errors(dct: Dct, tmp_path, bundle) -> None:
    a_file = tmp_path / "file"
    a_file.write_text("")
    r = subprocess.run([*DCT, "--root", str(a_file), "list"], capture_output=True, text=True)
    assert r.returncode == 1 and "not a directory" in r.stderr and "Traceback" not in r.stderr
    dct.fails("spec", "-b", tmp_path / "missing", needles=("cannot write",))
    dct.fails("create", "--bundle", a_file, dct.new_id("bf"), needles=("not a directory",))
    b = bundle(["true"], name="longhost", hostname="h" * 65)
    dct.fails("create", "--bundle", b, dct.new_id("lh"), needles=("hostname", "64"))


def test_options_after_the_id_and_commands_without_dashes(dct: Dct, running) -> None:
    cid, hostname = running
    assert dct.ok("exec", cid, "-e", "A=1", "--", "sh", "-c", "echo $A").stdout == "1\n"
    assert dct.ok("exec", cid, "--cwd", "/bin", "pwd").stdout == "/bin\n"
    assert dct.ok("exec", cid, "sh", "-c", "hostname").stdout == hostname + "\n"  # runc style, no --
    header = dct.ok("ps", cid, "-o", "pid,comm").stdout.splitlines()[0].split()
    assert header == ["PID", "COMMAND"]
    dct.ok("kill", cid, "--all", "KILL")


def test_usage_errors_exit_1(dct: Dct) -> None:
    r = dct("kill")
    assert r.returncode == 1 and "usage: dct kill" in r.stderr
    r = dct("nosuchverb")
    assert r.returncode == 1


def test_sigterm_stops_a_created_container(dct: Dct, bundle, wait_for) -> None:
    """runc's created container dies on SIGTERM; our init is PID 1 of its namespace and must not ignore it."""
    cid = dct.new_id("termc")
    dct.ok("create", "--monitor", "--bundle", bundle(["true"]), cid)
    dct.ok("kill", cid)
    wait_for(lambda: dct.status(cid) == "stopped", timeout=3)
    assert dct.exit_record(cid)["exit_code"] == 128 + signal.SIGTERM


def test_logs_follow_ends_when_the_container_stops(dct: Dct, bundle) -> None:
    cid = dct.new_id("logf")
    dct.ok("run", "-d", "--monitor", "--bundle", bundle(sh("echo one; sleep 0.5; echo two")), cid)
    r = dct.ok("logs", "-f", cid, timeout=10)
    assert r.stdout == "one\ntwo\n"


def test_delete_force_with_a_corrupt_state_json(dct: Dct, bundle, cgroup_dirs, wait_for) -> None:
    cid = dct.new_id("corrupt")
    dct.ok("run", "-d", "--bundle", bundle(sh("sleep 100")), cid)
    pid = dct.state(cid)["pid"]
    with open(os.path.join(dct.root, cid, "state.json"), "w") as f:
        f.write("{not json")
    dct.fails("delete", cid, needles=("corrupt",))
    dct.ok("delete", "--force", cid)
    _no_trace_of(dct, cid, cgroup_dirs)
    wait_for(lambda: not proc_alive(pid))


def test_absolute_cgroups_path_is_honoured_and_systemd_refused(dct: Dct, bundle, cgroup_dirs) -> None:
    """(A relative path is runc's: below our own cgroup; see test_config_fields.)"""
    cid = dct.new_id("cgp")
    path = f"/dct/{cid}-custom"  # starts with the id, so the session leak check sees it
    b = bundle(sh("sleep 100"), name="cgp", edit=lambda s: s["linux"].update(cgroupsPath=path))
    dct.ok("run", "-d", "--bundle", b, cid)
    pid = dct.state(cid)["pid"]
    with open(f"/sys/fs/cgroup/pids{path}/cgroup.procs") as f:
        assert str(pid) in f.read().split()
    dct.ok("delete", "--force", cid)
    assert not os.path.exists(f"/sys/fs/cgroup/pids{path}")
    sd = bundle(["true"], name="cgsd", edit=lambda s: s["linux"].update(cgroupsPath="system.slice:dct:x"))
    dct.fails("create", "--bundle", sd, dct.new_id("cgsd"), needles=("linux.cgroupsPath", "systemd"))


def test_exec_without_the_bundle_refuses_rather_than_run_as_root(dct: Dct, bundle) -> None:
    """Regression: with config.json gone, exec fell back to uid 0; runc refuses."""
    b = bundle(sh("sleep 100"), name="gone", edit=lambda s: s["process"]["user"].update(uid=1000, gid=1000))
    cid = dct.new_id("nob")
    dct.ok("run", "-d", "--bundle", b, cid)
    assert dct.ok("exec", cid, "--", "id", "-u").stdout == "1000\n"
    os.unlink(os.path.join(b, "config.json"))
    dct.fails("exec", cid, "--", "id", "-u", needles=("bundle",))


def test_a_create_that_collides_never_touches_the_other_container(dct: Dct, bundle, tmp_path, unique_id,
                                                                 register_state_root) -> None:
    """Regression: a create refused for a populated cgroup (the same cgroupsPath, given by two
    bundles in two roots) killed its owner. (The same id in two roots no longer collides: each
    root has its own cgroup parent.)"""
    cid = dct.new_id("clash")
    b = bundle(sh("sleep 100"), name="clash", edit=lambda s: s["linux"].update(cgroupsPath=f"/dct/{cid}-shared"))
    dct.ok("run", "-d", "--bundle", b, cid)
    other_root = register_state_root(tmp_path / "other-root")  # destroyed at teardown should the create succeed
    r = subprocess.run([*DCT, "--root", other_root, "run", "-d", "--bundle", b, cid], capture_output=True, text=True)
    assert r.returncode == 1 and "not empty" in r.stderr
    assert dct.status(cid) == "running"
    assert not os.path.exists(os.path.join(other_root, cid))


def test_exec_pid_file_failure_kills_the_process(dct: Dct, running, tmp_path) -> None:
    """Regression: exec reported failure for a bad --pid-file while the process went on running."""
    cid, _ = running
    marker = f"/dev/shm/ran-{cid}"
    dct.fails("exec", "--pid-file", tmp_path / "nodir" / "p", cid, "--", "sh", "-c", f"sleep 0.3; touch {marker}",
              needles=("--pid-file",))
    time.sleep(0.5)
    assert dct("exec", cid, "--", "test", "-e", marker).returncode == 1
