"""podman (Debian's 4.3) with runc and with dct as its OCI runtime: the everyday operations.

Each test is one operation of issue 14's list, run once per runtime; runc is the reference, and
dct must pass every case as runc does (``runtimes(dct=…)`` can mark a dct case xfail, naming what
it lacks); the terminal summary counts the passes per runtime. The podman set-up is private (``tests/clients.py``: config, storage, runtime
state roots under a session temporary directory) and removed at session end, with a check that no
container, cgroup, mount or conmon was left.
"""

from __future__ import annotations

import json
import os
import time

import pytest

from clients import (IMAGE, WINSIZE, Podman, build_rootfs_tar, cgroup_dirs_named, missing_tools, runtime_path,
                     runtimes)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]


@pytest.fixture(scope="session")
def podman(tmp_path_factory: pytest.TempPathFactory) -> Podman:
    """The session's private podman with the busybox image imported; removed (and leak-checked) at the end."""
    if os.geteuid() != 0:
        pytest.skip("podman tests run rootful podman: need root")
    missing = missing_tools("podman", "conmon", "runc")
    if missing:
        pytest.skip(f"not installed: {missing} (./scripts/setup installs podman)")
    base = tmp_path_factory.mktemp("podman")
    pm = Podman(str(base / "pm"))
    pm.import_image(build_rootfs_tar(str(base / "busybox.tar")))
    yield pm
    problems = pm.teardown()
    assert not problems, "podman session leaked:\n" + "\n".join(problems)


@pytest.fixture
def names(podman: Podman, runtime: str) -> list[str]:
    """Container names for this test (append to it); each is removed (``rm -f -t 0``) at teardown."""
    created: list[str] = []
    yield created
    for name in created:
        podman.run(runtime, "rm", "-f", "-t", "0", "--ignore", name, timeout=60)


def _name(names: list[str], what: str) -> str:
    import uuid
    name = f"dct-test-{what}-{uuid.uuid4().hex[:6]}"
    names.append(name)
    return name


def _detached(podman: Podman, runtime: str, names: list[str], *opts: str, cmd: tuple[str, ...] = ("sleep", "300")) -> str:
    """``podman run -d`` a container named for this test; its name."""
    name = _name(names, "d")
    podman.run(runtime, "run", "-d", "--name", name, *opts, IMAGE, *cmd).check()
    return name


def _inspect(podman: Podman, runtime: str, name: str) -> dict:
    return json.loads(podman.run(runtime, "inspect", name).check().out)[0]


def _wait_for(predicate, timeout: float = 10.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.1)


# -- operations ----------------------------------------------------------------------------
@runtimes()
def test_run_rm(podman: Podman, runtime: str, names: list[str]) -> None:
    """``run --rm``: the program's stdout and stderr reach the caller, the container is removed."""
    name = _name(names, "rm")
    r = podman.run(runtime, "run", "--rm", "--name", name, IMAGE, "sh", "-c", "echo out; echo err >&2").check()
    assert r.out == "out\n"
    assert "err" in r.err
    assert name not in podman.run(runtime, "ps", "-a", "--format", "{{.Names}}").check().out


@runtimes()
def test_exit_codes(podman: Podman, runtime: str) -> None:
    """The program's exit code is podman's; a missing program: 127; one not executable: 126."""
    assert podman.run(runtime, "run", "--rm", IMAGE, "sh", "-c", "exit 7").rc == 7
    assert podman.run(runtime, "run", "--rm", IMAGE, "false").rc == 1
    assert podman.run(runtime, "run", "--rm", IMAGE, "/no/such/program").rc == 127
    assert podman.run(runtime, "run", "--rm", IMAGE, "/etc/passwd").rc == 126


@runtimes()
def test_stdin(podman: Podman, runtime: str) -> None:
    """``-i``: the caller's stdin reaches the program, and its end is an end of file."""
    r = podman.run(runtime, "run", "--rm", "-i", IMAGE, "sh", "-c", "read a; echo got:$a; wc -l",
                   input="first\nsecond\nthird\n").check()
    assert r.out.split() == ["got:first", "2"]


@runtimes()
def test_tty(podman: Podman, runtime: str) -> None:
    """``-t`` under a pty: the program's stdio is a terminal of the caller's size; ``-it`` is interactive."""
    r = podman.run_pty(runtime, "run", "--rm", "-t", IMAGE, "sh", "-c",
                       "test -t 0 && test -t 1 && echo TTY-OK; stty size; exit 5")
    assert r.rc == 5, r.out
    assert "TTY-OK" in r.out and f"{WINSIZE[0]} {WINSIZE[1]}" in r.out, r.out
    r = podman.run_pty(runtime, "run", "--rm", "-it", IMAGE, "sh", input=b"echo $((6*7))x; exit 4\n")
    assert r.rc == 4, r.out
    assert "42x" in r.out


@runtimes()
def test_env_workdir_user(podman: Podman, runtime: str) -> None:
    """``-e``, ``-w`` and ``--user`` (numeric and by name from the image's /etc/passwd)."""
    r = podman.run(runtime, "run", "--rm", "-e", "FOO=bar baz", "-w", "/tmp", "--user", "1000:10", IMAGE,
                   "sh", "-c", 'echo "$FOO|$(pwd)|$(id -u):$(id -g)"').check()
    assert r.out == "bar baz|/tmp|1000:10\n"
    r = podman.run(runtime, "run", "--rm", "--user", "user", IMAGE, "id", "-u").check()
    assert r.out == "1000\n"


@runtimes()
def test_detach_logs_stop_rm(podman: Podman, runtime: str, names: list[str]) -> None:
    """``run -d``, ``logs``, ``stop`` (SIGTERM reaches the program; its exit code is recorded), ``rm``."""
    name = _detached(podman, runtime, names, cmd=(
        "sh", "-c", 'trap "echo bye; exit 3" TERM; echo started; while :; do sleep 0.1; done'))
    _wait_for(lambda: "started" in podman.run(runtime, "logs", name).out, what="the container's first line in logs")
    podman.run(runtime, "stop", "-t", "10", name, timeout=40).check()
    state = _inspect(podman, runtime, name)["State"]
    assert state["Status"] == "exited" and state["ExitCode"] == 3, state
    assert podman.run(runtime, "logs", name).check().out.split() == ["started", "bye"]
    podman.run(runtime, "rm", name).check()
    assert name not in podman.run(runtime, "ps", "-a", "--format", "{{.Names}}").check().out


@runtimes()
def test_exec(podman: Podman, runtime: str, names: list[str]) -> None:
    """``exec``: output, exit code, ``-e`` and ``-w`` in a running container."""
    name = _detached(podman, runtime, names)
    assert podman.run(runtime, "exec", name, "echo", "hi").check().out == "hi\n"
    assert podman.run(runtime, "exec", name, "sh", "-c", "exit 3").rc == 3
    r = podman.run(runtime, "exec", "-e", "X=1", "-w", "/tmp", name, "sh", "-c", "echo $X $(pwd)").check()
    assert r.out == "1 /tmp\n"
    r = podman.run(runtime, "exec", "-i", name, "cat", input="piped\n").check()
    assert r.out == "piped\n"


@runtimes()
def test_exec_tty(podman: Podman, runtime: str, names: list[str]) -> None:
    """``exec -t`` / ``-it`` under a pty: a terminal of the caller's size, interactive, exit code."""
    name = _detached(podman, runtime, names)
    r = podman.run_pty(runtime, "exec", "-t", name, "sh", "-c", "test -t 0 && echo TTY-OK; stty size; exit 6")
    assert r.rc == 6, r.out
    assert "TTY-OK" in r.out and f"{WINSIZE[0]} {WINSIZE[1]}" in r.out, r.out
    r = podman.run_pty(runtime, "exec", "-it", name, "sh", input=b"echo $((6*7))y; exit 2\n")
    assert r.rc == 2, r.out
    assert "42y" in r.out


@runtimes()
def test_exec_user(podman: Podman, runtime: str, names: list[str]) -> None:
    """``exec -u``: numeric and by name."""
    name = _detached(podman, runtime, names)
    assert podman.run(runtime, "exec", "-u", "1000:10", name, "sh", "-c", "echo $(id -u):$(id -g)").check().out == "1000:10\n"
    assert podman.run(runtime, "exec", "-u", "user", name, "id", "-u").check().out == "1000\n"


@runtimes()
def test_exec_detach(podman: Podman, runtime: str, names: list[str]) -> None:
    """``exec -d``: returns at once; the process runs on in the container."""
    name = _detached(podman, runtime, names)
    podman.run(runtime, "exec", "-d", name, "sh", "-c", "sleep 0.3; echo done > /tmp/marker").check()
    _wait_for(lambda: podman.run(runtime, "exec", name, "cat", "/tmp/marker").out == "done\n",
              what="the detached exec's marker")


@runtimes()
def test_top(podman: Podman, runtime: str, names: list[str]) -> None:
    """``top``: the container's processes."""
    name = _detached(podman, runtime, names)
    r = podman.run(runtime, "top", name).check()
    assert "sleep 300" in r.out, r.out


@runtimes()
def test_pause_unpause(podman: Podman, runtime: str, names: list[str]) -> None:
    """``pause`` freezes the container (status paused), ``unpause`` thaws it (exec works again)."""
    name = _detached(podman, runtime, names)
    podman.run(runtime, "pause", name).check()
    assert _inspect(podman, runtime, name)["State"]["Status"] == "paused"
    podman.run(runtime, "unpause", name).check()
    assert _inspect(podman, runtime, name)["State"]["Status"] == "running"
    assert podman.run(runtime, "exec", name, "true").rc == 0


def _cgroup_value(cid: str, controller: str, file: str) -> str:
    paths = cgroup_dirs_named(f"{controller}/libpod_parent/libpod-{cid}")
    assert paths, f"no {controller} cgroup for {cid[:12]}"
    with open(os.path.join(paths[0], file)) as f:
        return f.read().strip()


@runtimes()
def test_resource_limits(podman: Podman, runtime: str, names: list[str]) -> None:
    """``--memory``, ``--pids-limit``, ``--cpus``: in the container's cgroup, and seen inside."""
    name = _detached(podman, runtime, names, "--memory", "64m", "--pids-limit", "50", "--cpus", "0.5")
    cid = _inspect(podman, runtime, name)["Id"]
    assert _cgroup_value(cid, "memory", "memory.limit_in_bytes") == str(64 << 20)
    assert _cgroup_value(cid, "pids", "pids.max") == "50"
    assert _cgroup_value(cid, "cpu", "cpu.cfs_quota_us") == str(int(0.5 * int(_cgroup_value(cid, "cpu", "cpu.cfs_period_us"))))
    r = podman.run(runtime, "exec", name, "cat", "/sys/fs/cgroup/memory/memory.limit_in_bytes").check()
    assert r.out.strip() == str(64 << 20)


@runtimes()
def test_update(podman: Podman, runtime: str, names: list[str]) -> None:
    """``podman update`` of a running container's limits (``runtime update --resources``)."""
    name = _detached(podman, runtime, names, "--memory", "64m")
    cid = _inspect(podman, runtime, name)["Id"]
    podman.run(runtime, "update", "--memory", "96m", "--cpus", "0.25", name).check()
    assert _cgroup_value(cid, "memory", "memory.limit_in_bytes") == str(96 << 20)
    assert _cgroup_value(cid, "cpu", "cpu.cfs_quota_us") == str(int(0.25 * int(_cgroup_value(cid, "cpu", "cpu.cfs_period_us"))))


@runtimes()
def test_read_only(podman: Podman, runtime: str) -> None:
    """``--read-only``: the root filesystem refuses writes; podman's tmpfs on /tmp takes them."""
    r = podman.run(runtime, "run", "--rm", "--read-only", IMAGE, "sh", "-c",
                   "touch /x 2>/dev/null && echo root-writable; touch /tmp/x && echo tmp-ok")
    r.check()
    assert r.out == "tmp-ok\n"


@runtimes()
def test_tmpfs(podman: Podman, runtime: str) -> None:
    """``--tmpfs`` with size and mode options."""
    r = podman.run(runtime, "run", "--rm", "--tmpfs", "/scratch:size=1m,mode=1777", IMAGE, "sh", "-c",
                   "grep ' /scratch ' /proc/mounts; stat -c %a /scratch").check()
    assert "tmpfs /scratch tmpfs" in r.out and "size=1024k" in r.out, r.out
    assert r.out.split()[-1] == "1777"


@runtimes()
def test_volume(podman: Podman, runtime: str, tmp_path) -> None:
    """``-v``: a host directory read-write (writes reach the host), and ``:ro`` refuses writes."""
    host = tmp_path / "vol"
    host.mkdir()
    (host / "in").write_text("from host\n")
    r = podman.run(runtime, "run", "--rm", "-v", f"{host}:/data", "-v", f"{host}:/ro:ro", IMAGE, "sh", "-c",
                   "cat /data/in; echo from container > /data/out; touch /ro/x 2>/dev/null || echo ro-refused").check()
    assert r.out == "from host\nro-refused\n"
    assert (host / "out").read_text() == "from container\n"


@runtimes()
def test_capabilities(podman: Podman, runtime: str) -> None:
    """``--cap-drop all --cap-add CHOWN``: exactly CAP_CHOWN; ``--cap-drop CHOWN``: chown refused."""
    r = podman.run(runtime, "run", "--rm", "--cap-drop", "all", "--cap-add", "CHOWN", IMAGE,
                   "grep", "-E", "^Cap(Eff|Prm|Bnd)", "/proc/self/status").check()
    caps = dict(line.split(":") for line in r.out.splitlines())
    assert {k: v.strip() for k, v in caps.items()} == {"CapPrm": "0000000000000001", "CapEff": "0000000000000001",
                                                       "CapBnd": "0000000000000001"}
    r = podman.run(runtime, "run", "--rm", "--cap-drop", "CHOWN", IMAGE, "sh", "-c",
                   "touch /tmp/f; chown 1000 /tmp/f 2>/dev/null && echo chowned || echo refused").check()
    assert r.out == "refused\n"


@runtimes()
def test_no_new_privileges(podman: Podman, runtime: str) -> None:
    """``--security-opt no-new-privileges``: NoNewPrivs set (and not set by default)."""
    r = podman.run(runtime, "run", "--rm", "--security-opt", "no-new-privileges", IMAGE,
                   "grep", "NoNewPrivs", "/proc/self/status").check()
    assert r.out.split() == ["NoNewPrivs:", "1"]
    r = podman.run(runtime, "run", "--rm", IMAGE, "grep", "NoNewPrivs", "/proc/self/status").check()
    assert r.out.split() == ["NoNewPrivs:", "0"]


@runtimes()
def test_seccomp_unconfined(podman: Podman, runtime: str) -> None:
    """``--security-opt seccomp=unconfined``: no filter; by default podman's profile is loaded (mode 2)."""
    r = podman.run(runtime, "run", "--rm", "--security-opt", "seccomp=unconfined", IMAGE,
                   "grep", "^Seccomp:", "/proc/self/status").check()
    assert r.out.split() == ["Seccomp:", "0"]
    r = podman.run(runtime, "run", "--rm", IMAGE, "grep", "^Seccomp:", "/proc/self/status").check()
    assert r.out.split() == ["Seccomp:", "2"]


@runtimes()
def test_device(podman: Podman, runtime: str) -> None:
    """``--device``: the node exists in the container and the device cgroup lets it be read."""
    r = podman.run(runtime, "run", "--rm", "--device", "/dev/zero:/dev/myzero", IMAGE, "sh", "-c",
                   "test -c /dev/myzero && head -c 3 /dev/myzero | od -An -tx1").check()
    assert r.out.split() == ["00", "00", "00"]


@runtimes()
def test_init(podman: Podman, runtime: str) -> None:
    """``--init``: podman's init (catatonit) is PID 1 and the program runs under it."""
    r = podman.run(runtime, "run", "--rm", "--init", IMAGE, "sh", "-c",
                   "tr '\\0' ' ' < /proc/1/cmdline; echo; echo $$").check()
    first, pid = r.out.splitlines()
    assert "init" in first and pid != "1", r.out


@runtimes()
def test_restart(podman: Podman, runtime: str, names: list[str]) -> None:
    """``restart``: the container is stopped and started again (a new init), and runs."""
    name = _detached(podman, runtime, names)
    before = _inspect(podman, runtime, name)["State"]["Pid"]
    podman.run(runtime, "restart", "-t", "0", name, timeout=40).check()
    state = _inspect(podman, runtime, name)["State"]
    assert state["Status"] == "running" and state["Pid"] != before, state
    assert podman.run(runtime, "exec", name, "true").rc == 0


@runtimes()
def test_uidmap(podman: Podman, runtime: str, names: list[str]) -> None:
    """``--uidmap``/``--gidmap``: a user namespace; root inside is host id 100000, in the container and
    in one exec'd into it; the image's files are owned by the container's root."""
    name = _detached(podman, runtime, names, "--uidmap", "0:100000:65536", "--gidmap", "0:100000:65536")
    r = podman.run(runtime, "exec", name, "sh", "-c", "id -u; cat /proc/self/uid_map; stat -c %u /bin/busybox").check()
    lines = r.out.splitlines()
    assert lines[0] == "0" and lines[1].split() == ["0", "100000", "65536"] and lines[2] == "0", r.out
    pid = _inspect(podman, runtime, name)["State"]["Pid"]
    with open(f"/proc/{pid}/status") as f:
        uids = next(line for line in f if line.startswith("Uid:")).split()[1:]
    assert uids == ["100000"] * 4
    r = podman.run(runtime, "run", "--rm", "--uidmap", "0:100000:65536", "--gidmap", "0:100000:65536", IMAGE,
                   "sh", "-c", "cat /proc/self/gid_map; echo x > /dev/null && echo null-ok").check()
    assert r.out.split() == ["0", "100000", "65536", "null-ok"], r.out
