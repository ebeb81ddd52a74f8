"""runc's CLI contract, as podman's conmon and containerd's shim rely on it (issue 14).

stdio and the subreaper (create hands init to the caller), the logging flags (``--log``,
``--log-format json``), ``exec --process``, ``--preserve-fds``, ``--no-pivot``, ``features``,
``-v``, ``spec --rootless``, ``ps`` options and ``delete --force`` in every state. Each test has
its own state root; every id is deleted with ``dct delete --force`` at teardown.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Callable

import pytest

from dct_cli import REPO, UNTIL_TERM, Dct, runner
from declarative_ct.runtime import Runtime, specconv

pytestmark = pytest.mark.integration


@pytest.fixture
def dct(state_root: str, unique_id: Callable[[str], str]) -> Dct:
    yield from runner(Dct, state_root, unique_id)


@pytest.fixture
def bundle(tmp_path: Path, busybox_rootfs: str) -> Callable[..., str]:
    """``bundle(args, name="", edit=None)``: a config.json for ``args`` on the busybox rootfs; its directory."""

    def make(args: list[str], name: str = "b", edit: Callable[[dict], None] | None = None) -> str:
        spec = specconv.example_spec()
        spec["root"]["path"] = busybox_rootfs
        spec["process"]["args"] = list(args)
        if edit is not None:
            edit(spec)
        path = tmp_path / name
        path.mkdir(parents=True, exist_ok=True)
        (path / "config.json").write_text(json.dumps(spec))
        return str(path)

    return make


def sh(script: str) -> list[str]:
    return ["sh", "-c", script]


def ppid(pid: int) -> int:
    with open(f"/proc/{pid}/stat") as f:
        return int(f.read().rpartition(")")[2].split()[1])


# -- 1. stdio and the subreaper --------------------------------------------------------------------
SUBREAPER_PARENT = textwrap.dedent("""
    import ctypes, json, os, subprocess, sys, tempfile
    argv, bundle, cid = json.loads(sys.argv[1]), sys.argv[2], sys.argv[3]
    libc = ctypes.CDLL(None, use_errno=True)
    assert libc.prctl(36, 1, 0, 0, 0) == 0  # PR_SET_CHILD_SUBREAPER, as conmon and the shims do
    r, w = os.pipe()
    pid_file = os.path.join(bundle, "init.pid")
    # create with our pipe as its stdout: it must return while the container holds the pipe
    # (its stderr a file: the container gets that too, and a pipe would only end with it)
    err = tempfile.TemporaryFile()
    created = subprocess.run(argv + ["create", "--bundle", bundle, "--pid-file", pid_file, cid],
                             stdin=subprocess.DEVNULL, stdout=w, stderr=err, timeout=30)
    os.close(w)
    err.seek(0)
    init = int(open(pid_file).read())
    with open(f"/proc/{init}/stat") as f:
        parent = int(f.read().rpartition(")")[2].split()[1])
    started = subprocess.run(argv + ["start", cid], stdin=subprocess.DEVNULL, capture_output=True, timeout=30)
    out = b""
    while chunk := os.read(r, 4096):
        out += chunk
    reaped, status = os.waitpid(init, 0)  # we reap it: nobody else may
    print(json.dumps({"create_rc": created.returncode, "create_err": err.read().decode(),
                      "start_rc": started.returncode, "init": init, "me": os.getpid(), "init_parent": parent,
                      "output": out.decode(), "exit_code": os.waitstatus_to_exitcode(status)}))
""")


def test_create_leaves_init_to_the_callers_subreaper(dct: Dct, bundle) -> None:
    """As conmon does: a subreaper runs create with a pipe as stdout, finds init re-parented to
    itself, starts it, reads its output from its own pipe and reaps its exit code."""
    b = bundle(sh("echo from-the-container; exit 7"))
    cid = dct.new_id("subr")
    env = Dct.env()
    r = subprocess.run([sys.executable, "-c", SUBREAPER_PARENT, json.dumps(dct.argv()), b, cid],
                       capture_output=True, text=True, timeout=60, env=env, cwd=REPO)
    assert r.returncode == 0, r.stderr
    got = json.loads(r.stdout)
    assert got["create_rc"] == 0 and got["start_rc"] == 0, got
    assert got["init_parent"] == got["me"], got  # no monitor of ours sits between them
    assert got["output"] == "from-the-container\n"
    assert got["exit_code"] == 7
    state_dir = os.path.join(dct.root, cid)
    assert not os.path.exists(os.path.join(state_dir, "exit.json"))
    assert not os.path.exists(os.path.join(Runtime(dct.root).data_root, "logs", cid))  # no copier: no log
    assert dct.status(cid) == "stopped"  # from /proc, as runc: init is gone
    dct.ok("delete", cid)
    assert dct.entries() == []


def test_run_detached_returns_at_once_and_leaves_init_to_the_caller(dct: Dct, bundle, wait_for) -> None:
    cid = dct.new_id("rund")
    start = time.monotonic()
    dct.ok("run", "-d", "--bundle", bundle(sh(UNTIL_TERM)), cid)
    assert time.monotonic() - start < 10
    pid = dct.state(cid)["pid"]
    assert ppid(pid) == os.getpid()  # pytest is the nearest subreaper of dct
    assert dct.status(cid) == "running"
    dct.fails("logs", cid, needles=("--monitor",))
    dct.ok("kill", cid, "KILL")
    wait_for(lambda: dct.status(cid) == "stopped", message=f"{cid} to stop")
    assert not os.path.exists(os.path.join(dct.root, cid, "exit.json"))
    dct.ok("delete", cid)


def test_monitor_is_asked_for_explicitly(dct: Dct, bundle, wait_for) -> None:
    cid = dct.new_id("mon")
    dct.ok("run", "-d", "--monitor", "--bundle", bundle(sh("echo logged; exit 3")), cid)
    record = wait_for(lambda: dct.exit_record(cid), message=f"{cid}'s exit record")
    assert record["exit_code"] == 3
    assert dct.ok("logs", cid).stdout == "logged\n"
    dct.fails("run", "--monitor", "--bundle", bundle(["true"], name="fg"), dct.new_id("fg"), needles=("-d",))
    dct.fails("create", "--monitor", "--no-monitor", "--bundle", bundle(["true"], name="both"), dct.new_id("both"),
              needles=("--monitor",))
    # --no-monitor, the old spelling of the default, is accepted.
    old = dct.new_id("old")
    dct.ok("create", "--no-monitor", "--bundle", bundle(sh(UNTIL_TERM), name="old"), old)
    assert ppid(dct.state(old)["pid"]) == os.getpid()


def test_foreground_run_waits_and_passes_the_exit_code(dct: Dct, bundle) -> None:
    r = dct("run", "--bundle", bundle(sh("echo fg; exit 5")), dct.new_id("fg"))
    assert r.returncode == 5 and r.stdout == "fg\n", r
    assert dct.entries() == []


# -- 2. logging ------------------------------------------------------------------------------------
RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$")


def test_log_json_error_lines_in_runcs_shape(dct: Dct, bundle, tmp_path) -> None:
    """containerd's shim: --log <bundle>/log.json --log-format json, and reads the error back."""
    b = bundle(["true"], edit=lambda s: s["process"].update(args=[]))
    log = tmp_path / "log.json"
    cid = dct.new_id("logj")
    r = dct.fails("--log", log, "--log-format", "json", "create", "--bundle", b, cid, needles=("process.args",))
    assert r.stderr.startswith("dct: ")
    lines = log.read_text().splitlines()
    assert len(lines) == 1
    entry = json.loads(lines[-1])
    assert set(entry) == {"level", "msg", "time"} and entry["level"] == "error"
    assert "process.args" in entry["msg"] and RFC3339.match(entry["time"]), entry
    assert lines[0].startswith('{"level":"error","msg":')  # runc's key order, compact
    # Appended, never truncated; a usage error is logged too.
    assert dct("--log", log, "--log-format", "json", "kill", "--bogus", cid).returncode == 1
    entries = [json.loads(line) for line in log.read_text().splitlines()]
    assert len(entries) == 2 and "--bogus" in entries[1]["msg"]


def test_log_text_and_debug(dct: Dct, tmp_path) -> None:
    log = tmp_path / "log.txt"
    cid = dct.new_id("logt")
    dct.fails("--log", log, "delete", cid, needles=("does not exist",))
    line = log.read_text().splitlines()[-1]
    assert re.match(r'^time="[^"]+" level=error msg=".*does not exist.*"$', line), line
    dct.ok("--log", log, "--debug", "list")
    assert "level=debug" in log.read_text()
    r = dct.ok("--debug", "list")  # without --log the debug lines go to stderr
    assert "level=debug" in r.stderr
    assert dct.ok("list").stderr == ""  # and nothing without --debug
    r = dct("--log-format", "xml", "list")
    assert r.returncode == 1 and "xml" in r.stderr


# -- 3. verbs and flags ----------------------------------------------------------------------------
@pytest.fixture
def running(dct: Dct, bundle) -> str:
    cid = dct.new_id("run")
    dct.ok("run", "-d", "--bundle", bundle(sh(UNTIL_TERM), name="running"), cid)
    return cid


def _process_file(tmp_path: Path, name: str = "process.json", **fields: object) -> str:
    path = tmp_path / name
    path.write_text(json.dumps(fields))
    return str(path)


def test_exec_process_file(dct: Dct, running, tmp_path) -> None:
    cid = running
    proc = _process_file(tmp_path, args=["sh", "-c", 'echo "$FOO $(id -u):$(id -g) $(id -G) $(pwd)"; '
                                                    'grep -E "^(NoNewPrivs|CapBnd)" /proc/self/status; ulimit -n'],
                         env=["PATH=/bin", "FOO=bar"], cwd="/tmp",
                         user={"uid": 1000, "gid": 1000, "additionalGids": [10]},
                         capabilities={"bounding": ["CAP_KILL"], "effective": ["CAP_KILL"],
                                       "permitted": ["CAP_KILL"]},
                         rlimits=[{"type": "RLIMIT_NOFILE", "hard": 512, "soft": 256}],
                         noNewPrivileges=True, terminal=False, apparmorProfile="",
                         **{"x-unknown": {"ignored": True}})
    out = dct.ok("exec", "--process", proc, cid).stdout.splitlines()
    assert out[0] == "bar 1000:1000 1000 10 /tmp"
    assert out[1] == "CapBnd:\t0000000000000020"  # CAP_KILL (5) alone
    assert out[2] == "NoNewPrivs:\t1"
    assert out[3] == "256"
    # The exit code passes; -p is the short spelling; --detach and --pid-file work with it.
    assert dct("exec", "-p", _process_file(tmp_path, "e.json", args=["sh", "-c", "exit 4"]), cid).returncode == 4
    pid_file = tmp_path / "exec.pid"
    dct.ok("exec", "--detach", "--pid-file", pid_file,
           "--process", _process_file(tmp_path, "d.json", args=["sleep", "30"]), cid)
    pid = int(pid_file.read_text())
    assert pid in json.loads(dct.ok("ps", "--format", "json", cid).stdout)
    # As runc exec --detach: left to the caller's nearest subreaper (us), which reaps it.
    assert ppid(pid) == os.getpid()
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)


def test_exec_process_file_errors(dct: Dct, running, tmp_path) -> None:
    cid = running
    proc = _process_file(tmp_path, args=["true"])
    dct.fails("exec", "--process", proc, cid, "--", "true", needles=("the command",))
    dct.fails("exec", "--process", proc, "-e", "A=b", cid, needles=("--env",))
    dct.fails("exec", "--process", _process_file(tmp_path, "bad.json", args=[]), cid,
              needles=("--process", "process.args"))
    dct.fails("exec", "--process", _process_file(tmp_path, "t.json", args=["sh"], terminal=True), cid,
              needles=("process.terminal",))
    dct.fails("exec", "--process", str(tmp_path / "missing.json"), cid, needles=("cannot read",))
    (tmp_path / "junk.json").write_text("{")
    dct.fails("exec", "--process", str(tmp_path / "junk.json"), cid, needles=("invalid JSON",))
    assert dct.status(cid) == "running"


FD_WRAPPER = textwrap.dedent("""
    import fcntl, json, os, sys
    fds, listen, argv = json.loads(sys.argv[1]), sys.argv[2] == "1", json.loads(sys.argv[3])
    high = {int(target): fcntl.fcntl(source, fcntl.F_DUPFD, 100) for target, source in fds.items()}
    for source in fds.values():
        os.close(source)
    for target, fd in high.items():
        os.dup2(fd, target)  # inheritable
        os.close(fd)
    env = dict(os.environ)
    if listen:  # systemd's socket activation, aimed at the pid that execs dct next
        env.update(LISTEN_PID=str(os.getpid()), LISTEN_FDS="1")
    os.execve(argv[0], argv, env)
""")


def _dct_with_fds(dct: Dct, *args: object, fds: dict[int, int], listen: bool = False) -> subprocess.CompletedProcess:
    """Run dct with our ``fds`` open in it as the given numbers (``{3: fd}``); ``listen``: LISTEN_PID/FDS set."""
    return subprocess.run([sys.executable, "-c", FD_WRAPPER, json.dumps(fds), "1" if listen else "0",
                           json.dumps(dct.argv(*args))], env=Dct.env(), pass_fds=list(fds.values()),
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True,
                          timeout=30, cwd=REPO)


def test_preserve_fds(dct: Dct, bundle, running, tmp_path) -> None:
    """The caller's fds 3 … 3+N-1 reach the process as 3 … 3+N-1; none above them does."""
    out_r, out_w = os.pipe()
    secret = os.open(tmp_path / "secret", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        b = bundle(sh("echo via-fd3 >&3; if [ -e /proc/self/fd/4 ]; then echo fd4-leaked; else echo fd4-closed; fi >&3"),
                   name="pfd")
        r = _dct_with_fds(dct, "run", "--preserve-fds", "1", "--bundle", b, dct.new_id("pfd"),
                          fds={3: out_w, 4: secret})
        assert r.returncode == 0, r.stderr
        r = _dct_with_fds(dct, "exec", "--preserve-fds", "1", running, "--", "sh", "-c", "echo exec-fd3 >&3",
                          fds={3: out_w})
        assert r.returncode == 0, r.stderr
        os.close(out_w)
        out_w = -1
        got = b""
        while chunk := os.read(out_r, 4096):
            got += chunk
        lines = got.decode().splitlines()
        assert lines[0] == "via-fd3"
        assert lines == ["via-fd3", "fd4-closed", "exec-fd3"]  # fd 4 (open in dct, not preserved) never got in
    finally:
        for fd in (out_r, out_w, secret):
            if fd >= 0:
                os.close(fd)
    dct.fails("run", "--preserve-fds", "1", "--bundle", bundle(["true"], name="nofd"), dct.new_id("nofd"),
              needles=("--preserve-fds 1", "fd 3"))
    dct.fails("run", "-d", "--monitor", "--preserve-fds", "1", "--bundle", bundle(["true"], name="m"),
              dct.new_id("m"), needles=("--preserve-fds",))


def test_listen_fds_pass_as_runc_does(dct: Dct, bundle) -> None:
    """systemd socket activation aimed at dct (LISTEN_PID its pid): the fds go first, LISTEN_FDS/PID=1 set."""
    r_fd, w_fd = os.pipe()
    try:
        b = bundle(sh('echo "$LISTEN_FDS $LISTEN_PID" >&3'), name="listen")
        r = _dct_with_fds(dct, "run", "--bundle", b, dct.new_id("lfd"), fds={3: w_fd}, listen=True)
        assert r.returncode == 0, r.stderr
        os.close(w_fd)
        w_fd = -1
        assert os.read(r_fd, 100) == b"1 1\n"
    finally:
        os.close(r_fd)
        if w_fd >= 0:
            os.close(w_fd)


ESCAPE_C = r"""
#include <stdio.h>
#include <unistd.h>
#include <sys/stat.h>
/* The classic chroot escape: chroot into a subdirectory without entering it, climb, chroot there. */
int main(int argc, char **argv) {
    mkdir("/tmp/esc", 0700);
    if (chroot("/tmp/esc") != 0) { perror("chroot"); return 2; }
    for (int i = 0; i < 64; i++) chdir("..");
    if (chroot(".") != 0) { perror("chroot ."); return 3; }
    printf("marker=%d proc=%d sys=%d\n", access(argv[1], F_OK) == 0, access("/proc/self/status", F_OK) == 0,
           access("/sys/kernel", F_OK) == 0);
    return 0;
}
"""


@pytest.fixture(scope="module")
def escape_binary(tmp_path_factory: pytest.TempPathFactory) -> str:
    work = tmp_path_factory.mktemp("escape")
    (work / "escape.c").write_text(ESCAPE_C)
    r = subprocess.run(["gcc", "-static", "-O1", "-o", str(work / "escape"), str(work / "escape.c")],
                       capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"no static C toolchain: {r.stderr.strip()[:200]}")
    return str(work / "escape")


@pytest.mark.parametrize("no_pivot", [False, True])
def test_no_pivot_and_a_chroot_escape(dct: Dct, bundle, tmp_path, escape_binary, no_pivot) -> None:
    """--no-pivot (MS_MOVE onto / + chroot) runs the container in its rootfs, and the classic chroot
    escape of a process with CAP_SYS_CHROOT climbs no further than it: the rootfs covers the old
    root, so ``..`` at the top leads back onto it (a bare chroot would let it out to the host's
    files). With pivot_root the old root is gone altogether."""
    marker = tmp_path / "host-marker"
    marker.write_text("host")

    def edit(spec: dict) -> None:
        for key in ("bounding", "effective", "permitted"):
            spec["process"]["capabilities"][key].append("CAP_SYS_CHROOT")
        del spec["linux"]["seccomp"]  # the default profile allows chroot only for the caps it was made for
        spec["mounts"] += [{"destination": "/tmp", "type": "tmpfs", "source": "tmpfs"},
                           {"destination": "/escape", "type": "bind", "source": escape_binary,
                            "options": ["bind", "ro"]}]

    b = bundle(sh(f"cat /proc/self/mountinfo | head -1; ls /; /escape {marker}"), name="np", edit=edit)
    args = ["run", *(["--no-pivot"] if no_pivot else []), "--bundle", b, dct.new_id("np")]
    r = dct.ok(*args)
    lines = r.stdout.splitlines()
    assert lines[0].split()[4] == "/"  # the root of the container is its rootfs
    assert "escape" in r.stdout and "bin" in r.stdout
    assert lines[-1] == "marker=0 proc=1 sys=1", r.stdout  # still in its own root, with its own /proc and /sys


def test_no_new_keyring_is_accepted(dct: Dct, bundle) -> None:
    assert dct.ok("run", "--no-new-keyring", "--bundle", bundle(sh("echo ok")), dct.new_id("kr")).stdout == "ok\n"


def test_version_in_runcs_shape(dct: Dct) -> None:
    for flag in ("-v", "--version"):
        lines = dct.ok(flag).stdout.splitlines()
        assert re.match(r"^dct version \S+$", lines[0]), lines
        assert lines[1].startswith("commit: ") and lines[2].startswith("spec: 1."), lines


def test_features(dct: Dct) -> None:
    got = json.loads(dct.ok("features").stdout)
    assert {"ociVersionMin", "ociVersionMax", "hooks", "mountOptions", "linux", "annotations"} <= set(got)
    linux = got["linux"]
    assert {"namespaces", "capabilities", "cgroup", "seccomp", "apparmor", "selinux"} <= set(linux)
    assert {"pid", "network", "mount", "ipc", "uts", "cgroup"} <= set(linux["namespaces"])
    assert "CAP_SYS_ADMIN" in linux["capabilities"] and linux["cgroup"]["v1"] is True
    assert linux["seccomp"]["enabled"] is True and "SCMP_ACT_ERRNO" in linux["seccomp"]["actions"]
    assert "SCMP_CMP_MASKED_EQ" in linux["seccomp"]["operators"] and "SCMP_ARCH_X86_64" in linux["seccomp"]["archs"]
    assert linux["apparmor"] == {"enabled": False} and linux["selinux"] == {"enabled": False}
    assert {"ro", "nosuid", "rbind", "rslave", "rro", "tmpcopyup"} <= set(got["mountOptions"])
    assert got["hooks"] == ["prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"]
    for option in specconv.UNSUPPORTED_MOUNT_OPTIONS:  # what a config would be refused for is not offered
        assert option not in got["mountOptions"]


def test_spec_rootless(dct: Dct, tmp_path) -> None:
    dct.ok("spec", "--rootless", "--bundle", tmp_path)
    spec = json.loads((tmp_path / "config.json").read_text())
    linux = spec["linux"]
    types = [ns["type"] for ns in linux["namespaces"]]
    assert "user" in types and "network" not in types and "cgroup" not in types
    assert linux["uidMappings"] == [{"containerID": 0, "hostID": os.geteuid(), "size": 1}]
    assert linux["gidMappings"] == [{"containerID": 0, "hostID": os.getegid(), "size": 1}]
    assert "resources" not in linux
    sys_mount = next(m for m in spec["mounts"] if m["destination"] == "/sys")
    assert sys_mount["source"] == "/sys" and "rbind" in sys_mount["options"]
    pts = next(m for m in spec["mounts"] if m["destination"] == "/dev/pts")
    assert not any(o.startswith("gid=") for o in pts["options"])


@pytest.mark.parametrize("separator", [["--"], []])
def test_ps_passes_options_to_ps(dct: Dct, running, separator) -> None:
    pid = dct.state(running)["pid"]
    lines = dct.ok("ps", running, *separator, "-o", "pid,comm").stdout.splitlines()
    assert lines[0].split() == ["PID", "COMMAND"]
    assert [str(pid), "sh"] in [line.split() for line in lines[1:]]
    dct.fails("ps", running, "--", "-o", "comm", needles=("PID",))


def test_kill_with_a_numeric_signal(dct: Dct, running, wait_for) -> None:
    dct.ok("kill", running, str(int(signal.SIGKILL)))
    wait_for(lambda: dct.status(running) == "stopped", message=f"{running} to die of signal 9")


# -- delete --force in every state -----------------------------------------------------------------
@pytest.mark.parametrize("monitor", [False, True])
@pytest.mark.parametrize("state", ["created", "running", "paused", "stopped", "unknown"])
def test_delete_force_in_every_state(dct: Dct, bundle, cgroup_dirs, wait_for, state, monitor) -> None:
    cid = dct.new_id("df")
    flags = ["--monitor"] if monitor else []
    b = bundle(sh(UNTIL_TERM if state != "stopped" else "exit 0"))
    dct.ok("create", *flags, "--bundle", b, cid)
    pid = dct.state(cid)["pid"]
    if state in ("running", "paused", "stopped", "unknown"):
        dct.ok("start", cid)
    if state == "paused":
        dct.ok("pause", cid)
    if state == "stopped":
        wait_for(lambda: dct.status(cid) == "stopped", message=f"{cid} to stop")
    if state == "unknown":
        Path(dct.root, cid, "state.json").write_text("{cut short")
        assert json.loads(dct.ok("list", "--format", "json").stdout)[0]["status"] == "unknown"
    else:
        assert dct.status(cid) == state
    dct.ok("delete", "--force", cid)
    assert cid not in dct.entries()
    assert cgroup_dirs(cid) == []
    wait_for(lambda: not _alive(pid), message=f"init {pid} to be gone")


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rpartition(")")[2].split()[0] not in ("Z", "X")
    except OSError:
        return False
