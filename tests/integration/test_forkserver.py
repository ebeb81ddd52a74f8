"""The fork server (runtime/forkserver.py): an exec through it is the same process as a plain
exec, at a fraction of the CPU, and the server is no door into the host.

Each equivalence test runs the same command into the same container both ways and compares
what the exec'd process saw; the attack test scans a container's /proc with CAP_SYS_PTRACE while
execs go through the server (test_exe_escape's attacker); the lifetime tests look for the
server's process after close() and after its owner was killed.
"""

from __future__ import annotations

import hashlib
import os
import select
import signal
import subprocess
import sys
import textwrap
import threading
import time

import pytest

from conftest import rootfs_with_static_program, unique_id, wait_for
from declarative_ct.configs import DEFAULT_CAPABILITIES, Capabilities, Config
from declarative_ct.errors import ConfigInvalid, ContainerError, SystemError
from declarative_ct.runtime import Process, exeseal, procfs
from declarative_ct.runtime.forkserver import ForkServer
from declarative_ct.runtime.seccomp_profile import default_profile
from test_exe_escape import ATTACKER_C, _Attacker, _check, _host_files
from test_userns import BASE, _mapped, mapped_rootfs  # noqa: F401 - mapped_rootfs is a fixture

pytestmark = pytest.mark.integration

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# What an exec'd process can tell about itself: ids, capabilities, no_new_privs, seccomp, cgroup,
# namespaces, environment, cwd, limits, umask, oom_score_adj.
PROBE = ("grep -E '^(Uid|Gid|Groups|Cap(Inh|Prm|Eff|Bnd|Amb)|NoNewPrivs|Seccomp|Seccomp_filters):' /proc/self/status;"
         "cat /proc/self/cgroup; for n in /proc/self/ns/*; do echo \"$n $(readlink $n)\"; done; env | sort; pwd;"
         "ulimit -a; umask; cat /proc/self/oom_score_adj")


@pytest.fixture
def server():
    srv = ForkServer()
    yield srv
    srv.close()


def _running(runtime, config: Config, prefix: str = "fs"):
    c = runtime.create(unique_id(prefix), config)
    c.run(Process(["/bin/sleep", "1000"]))
    return c


def _exec(c, args: list[str], server: ForkServer | None, **fields) -> tuple[int, str, str]:
    """Run ``args`` in ``c`` (through ``server`` when given); (exit code, stdout, stderr)."""
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    try:
        handle = c.start(Process(list(args), init=False, stdout=out_w, stderr=err_w, **fields), fork_server=server)
    finally:
        os.close(out_w)
        os.close(err_w)
    with os.fdopen(out_r, "rb") as out, os.fdopen(err_r, "rb") as err:
        stdout, stderr = out.read().decode(), err.read().decode()
    return handle.wait(), stdout, stderr


def _both(c, args: list[str], server: ForkServer, **fields) -> tuple[tuple, tuple]:
    return _exec(c, args, None, **fields), _exec(c, args, server, **fields)


def _seccomp_config(busybox_config) -> Config:
    """The default profile for the default capabilities, no_new_privs on."""
    return busybox_config(seccomp=default_profile(list(DEFAULT_CAPABILITIES)), no_new_privileges=True)


# -- the same process either way ------------------------------------------------------------

def test_exec_sees_the_same_ids_caps_seccomp_cgroup_namespaces_env_and_cwd(runtime, busybox_config, server):
    c = _running(runtime, _seccomp_config(busybox_config))
    fields = {"uid": 1000, "gid": 1000, "additional_groups": [10], "env": ["A=1", "PATH=/bin", "Z=last"],
              "cwd": "/tmp"}
    fresh, served = _both(c, ["sh", "-c", PROBE], server, **fields)
    assert fresh[0] == served[0] == 0, (fresh, served)
    assert served[1] == fresh[1], "\n--- fresh ---\n" + fresh[1] + "\n--- served ---\n" + served[1]
    seen = served[1]
    assert "Uid:\t1000\t1000\t1000\t1000" in seen and "Groups:\t10" in seen
    assert "NoNewPrivs:\t1" in seen and "Seccomp:\t2" in seen and "CapEff:\t0000000000000000" in seen
    assert "A=1\n" in seen and "/tmp\n" in seen
    # The container's namespaces, as its init has them (every type the container has).
    init_pid = c.state().init_process_pid
    for line in seen.splitlines():
        if line.startswith("/proc/self/ns/") and not line.split()[0].endswith("_for_children"):
            name = line.split()[0].rsplit("/", 1)[1]
            assert line.split()[1] == os.readlink(f"/proc/{init_pid}/ns/{name}"), line
    # The container's cgroup in every hierarchy, as init's (both seen from inside).
    fresh, served = _both(c, ["sh", "-c", "cat /proc/self/cgroup; echo; cat /proc/1/cgroup"], server)
    assert fresh == served
    own, _, init_s = served[1].partition("\n\n")
    assert own == init_s.rstrip("\n") + "\n" or own.rstrip("\n") == init_s.rstrip("\n"), served[1]


def test_the_containers_filter_refuses_what_the_default_profile_refuses(runtime, busybox_config, server):
    """CAP_SYS_ADMIN for the exec'd process, a filter made for the default capabilities: unshare
    is refused by the filter alone (EPERM), both ways; the next exec through the server works."""
    c = _running(runtime, _seccomp_config(busybox_config))
    admin = [*DEFAULT_CAPABILITIES, "CAP_SYS_ADMIN"]
    caps = Capabilities(Bounding=admin, Effective=admin, Permitted=admin)
    fresh, served = _both(c, ["unshare", "-m", "true"], server, capabilities=caps)
    assert fresh[0] == served[0] != 0 and "Operation not permitted" in served[2], (fresh, served)
    # Without the filter the same capabilities may unshare: it is the filter that refused.
    plain = _running(runtime, busybox_config(), "fs-nofilter")
    assert _exec(plain, ["unshare", "-m", "true"], server, capabilities=caps)[0] == 0


@pytest.mark.parametrize("script, code", [("exit 0", 0), ("exit 3", 3), ("kill -TERM $$", 128 + signal.SIGTERM),
                                          ("kill -KILL $$", 128 + signal.SIGKILL)])
def test_exit_codes_as_without_the_server(runtime, busybox_config, server, script, code):
    c = _running(runtime, busybox_config())
    fresh, served = _both(c, ["sh", "-c", script], server)
    assert fresh[0] == served[0] == code


def test_exec_into_a_user_namespace_container(runtime, busybox_config, mapped_rootfs, server):  # noqa: F811
    c = _running(runtime, _mapped(busybox_config, mapped_rootfs))
    fresh, served = _both(c, ["sh", "-c", "cat /proc/self/uid_map; id -u; readlink /proc/self/ns/user"], server)
    assert fresh == served and served[0] == 0
    assert served[1].split()[:3] == ["0", str(BASE), "65536"]
    pid = c.state().init_process_pid
    assert served[1].split()[-1] == os.readlink(f"/proc/{pid}/ns/user")


# -- descriptors -----------------------------------------------------------------------------

def test_exec_holds_only_stdio_and_its_extra_files(runtime, busybox_config, server, tmp_path):
    c = _running(runtime, busybox_config())
    extra = os.open(tmp_path / "extra", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    stray = os.open(tmp_path / "stray", os.O_RDWR | os.O_CREAT, 0o600)  # inheritable: must not go in
    try:
        handle = c.start(Process(["sleep", "30"], init=False, extra_files=[extra]), fork_server=server)
        try:
            fds = wait_for(lambda: _fds_once_exec_d(handle.pid), message="the exec'd process to run sleep")
            assert sorted(fds) == ["0", "1", "2", "3"], fds
            assert os.stat(f"/proc/{handle.pid}/fd/3").st_ino == os.fstat(extra).st_ino
        finally:
            os.kill(handle.pid, signal.SIGKILL)
        assert handle.wait() == 128 + signal.SIGKILL
    finally:
        os.close(extra)
        os.close(stray)
    # The server itself holds /dev/null stdio and its control socket only, between requests (it
    # closes the last answer's socket just after sending the status).
    def server_fds():
        held = {int(fd): os.readlink(f"/proc/{server.pid}/fd/{fd}") for fd in os.listdir(f"/proc/{server.pid}/fd")}
        return held if len(held) == 4 else None
    held = wait_for(server_fds, message="the server to hold 4 descriptors")
    assert [held[fd] for fd in (0, 1, 2)] == ["/dev/null"] * 3, held
    assert [target for fd, target in held.items() if fd > 2][0].startswith("socket:"), held


def _fds_once_exec_d(pid: int) -> list[str] | None:
    try:
        if os.readlink(f"/proc/{pid}/exe").endswith("busybox"):
            return os.listdir(f"/proc/{pid}/fd")
    except OSError:
        pass
    return None


# -- no host file behind the server or its forks ---------------------------------------------

def test_server_and_its_forks_run_from_the_sealed_image(runtime, busybox_config, server):
    c = _running(runtime, busybox_config())
    assert _exec(c, ["true"], server)[0] == 0
    fd = os.open(f"/proc/{server.pid}/exe", os.O_RDONLY | os.O_CLOEXEC)
    try:
        assert exeseal.is_sealed(fd)
        assert (os.fstat(fd).st_dev, os.fstat(fd).st_ino) not in _host_files()
    finally:
        os.close(fd)


@pytest.fixture(scope="module")
def attacker_rootfs(busybox_rootfs, tmp_path_factory) -> str:
    return rootfs_with_static_program(busybox_rootfs, tmp_path_factory.mktemp("fs-escape"), "attacker", ATTACKER_C)


def _digest(path: str) -> tuple[int, int, str]:
    st = os.stat(path)
    with open(path, "rb") as f:
        return st.st_dev, st.st_ino, hashlib.sha256(f.read()).hexdigest()


def test_attacker_with_ptrace_in_the_container_reaches_no_host_file(runtime, attacker_rootfs, server):
    """CVE-2019-5736 through the server: a container process holding CAP_SYS_PTRACE scans /proc
    while execs go through the server, keeps every exe, map_files and fd it reaches, and then
    reopens them for writing. Nothing it reached may be a host file; the host's interpreter keeps
    its inode and content."""
    interpreter = [os.path.realpath(sys.executable), os.readlink("/proc/self/exe")]
    before = [_digest(p) for p in interpreter]
    attacker = _Attacker()
    c = runtime.create(unique_id("fs-atk"), Config(rootfs=attacker_rootfs, hostname="attacker"))
    c.run(attacker.process())
    attacker.started()
    for _ in range(60):
        assert c.start(Process(["/bin/true"], init=False), fork_server=server).wait() == 0
    sealed = _check(attacker.stop(), attacker_rootfs)
    assert sealed, "the attacker never caught an exec'd process before its execve: the test tested nothing"
    assert [_digest(p) for p in interpreter] == before


# -- failures --------------------------------------------------------------------------------

@pytest.mark.parametrize("args, fields", [(["/no/such/program"], {}), (["true"], {"cwd": "/no/such/dir"}),
                                          (["true"], {"cwd": "/etc/passwd"})],
                         ids=["missing-program", "missing-cwd", "cwd-a-file"])
def test_a_failed_exec_fails_as_without_the_server_and_the_server_goes_on(runtime, busybox_config, server,
                                                                          args, fields):
    c = _running(runtime, busybox_config())
    errors = []
    for srv in (None, server):
        with pytest.raises(ContainerError) as caught:
            c.start(Process(args, init=False, **fields), fork_server=srv)
        errors.append((type(caught.value), str(caught.value)))
    assert errors[0] == errors[1]
    assert _exec(c, ["sh", "-c", "exit 5"], server)[0] == 5


def test_exec_into_a_container_that_exited_meanwhile(runtime, busybox_config, server, monkeypatch):
    """Its init gone between the status check and the fork: the same error as without the server."""
    from declarative_ct.runtime import Status

    c = _running(runtime, busybox_config())
    c.signal(signal.SIGKILL)
    wait_for(lambda: c.status() == Status.STOPPED, message="the container to stop")
    monkeypatch.setattr(c, "status", lambda: Status.RUNNING)
    errors = []
    for srv in (None, server):
        with pytest.raises(ContainerError) as caught:
            c.start(Process(["true"], init=False), fork_server=srv)
        errors.append((type(caught.value), str(caught.value)))
    assert errors[0] == errors[1]
    assert "ns" in errors[0][1]
    alive = _running(runtime, busybox_config())
    assert _exec(alive, ["true"], server)[0] == 0


def test_fork_server_is_for_exec_only(runtime, busybox_config, server):
    c = runtime.create(unique_id("fs-init"), busybox_config())
    with pytest.raises(ConfigInvalid, match="fork_server"):
        c.start(Process(["true"]), fork_server=server)


# -- handles ---------------------------------------------------------------------------------

def test_pidfd_polls_readable_when_the_process_ends_and_detach_returns_at_once(runtime, busybox_config, server):
    c = _running(runtime, busybox_config())
    handle = c.start(Process(["sleep", "0.5"], init=False), fork_server=server)
    done = handle.pidfd()
    try:
        assert select.select([done], [], [], 0.1)[0] == []
        assert select.select([done], [], [], 10)[0] == [done]
    finally:
        os.close(done)
    assert handle.wait() == 0
    detached = c.start(Process(["sleep", "30"], init=False), fork_server=server, detach=True)
    t = time.monotonic()
    assert detached.wait() == 0 and time.monotonic() - t < 1
    assert procfs.stat(detached.pid) is not None  # still running in the container
    os.kill(detached.pid, signal.SIGKILL)


# -- threads and lifetime --------------------------------------------------------------------

def test_eight_threads_exec_at_once(runtime, busybox_config, server):
    c = _running(runtime, busybox_config())
    results: dict[tuple[int, int], int] = {}
    failures = []

    def worker(t: int) -> None:
        try:
            for i in range(20):
                handle = c.start(Process(["sh", "-c", f"exit {t * 20 + i}"], init=False), fork_server=server)
                results[(t, i)] = handle.wait()
        except BaseException as err:  # noqa: BLE001 - reported below
            failures.append(err)

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not failures, failures
    assert results == {(t, i): t * 20 + i for t in range(8) for i in range(20)}


def test_close_leaves_no_process_and_a_dead_server_is_replaced(runtime, busybox_config):
    c = _running(runtime, busybox_config())
    srv = ForkServer()
    try:
        assert _exec(c, ["true"], srv)[0] == 0
        first = srv.pid
        os.kill(first, signal.SIGKILL)
        wait_for(lambda: _gone_or_zombie(first), message="the killed server to die")
        assert _exec(c, ["sh", "-c", "exit 4"], srv)[0] == 4  # a new server
        assert srv.pid not in (None, first)
        second = srv.pid
        running = c.start(Process(["sleep", "30"], init=False), fork_server=srv)
    finally:
        srv.close()
    assert not os.path.exists(f"/proc/{first}") and not os.path.exists(f"/proc/{second}")  # reaped by close()
    assert srv.pid is None
    with pytest.raises(SystemError, match="fork server"):
        running.wait()  # its server is gone: no status will come
    with pytest.raises(SystemError, match="closed"):
        c.start(Process(["true"], init=False), fork_server=srv)
    os.kill(running.pid, signal.SIGKILL)


def _gone_or_zombie(pid: int) -> bool:
    st = procfs.stat(pid)
    return st is None or st[0] in ("Z", "X")


OWNER = textwrap.dedent("""
    import os, sys, time
    sys.path.insert(0, {repo!r})
    from declarative_ct.runtime import Process, Runtime
    from declarative_ct.runtime.forkserver import ForkServer
    c = Runtime({root!r}).load({cid!r})
    srv = ForkServer()
    assert c.start(Process(["true"], init=False), fork_server=srv).wait() == 0
    c.start(Process(["sleep", "1000"], init=False), fork_server=srv)  # one still running
    print(srv.pid, flush=True)
    time.sleep(1000)
""")


def test_a_killed_owner_leaves_no_server(runtime, busybox_config, state_root):
    c = _running(runtime, busybox_config())
    owner = subprocess.Popen([sys.executable, "-c", OWNER.format(repo=REPO, root=state_root, cid=c.id)],
                             stdout=subprocess.PIPE, text=True)
    try:
        server_pid = int(owner.stdout.readline())
        assert procfs.stat(server_pid) is not None
    finally:
        owner.kill()
        owner.wait()
        owner.stdout.close()
    wait_for(lambda: _gone_or_zombie(server_pid), timeout=10, message="the orphaned server to exit")
