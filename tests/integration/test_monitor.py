"""The shared monitor of a state root (monitord): what it inherits, who it trusts, surviving its death."""

from __future__ import annotations

import fcntl
import os
import resource
import signal
import socket
import tempfile

import pytest

from conftest import read_log, reap_zombies, unique_id, wait_for
from declarative_ct.errors import SystemError
from declarative_ct.runtime import Process, Runtime, Status, monitord, procfs

pytestmark = pytest.mark.integration


def _monitor_of(container) -> int:
    """The monitor is init's parent (its subreaper): field 4 of /proc/<init>/stat."""
    with open(f"/proc/{container.state().init_process_pid}/stat") as f:
        return int(f.read().rsplit(")", 1)[1].split()[1])


def test_the_monitor_runs_from_the_sealed_image_and_holds_no_descriptor_of_it(runtime, busybox_config):
    c = runtime.create(unique_id("monimg"), busybox_config())
    c.run(Process(["/bin/sleep", "60"]))
    mon = _monitor_of(c)
    assert os.readlink(f"/proc/{mon}/exe").startswith("/memfd:dct-exe")  # what every init is forked from
    held = {fd: os.readlink(f"/proc/{mon}/fd/{fd}") for fd in os.listdir(f"/proc/{mon}/fd")}
    assert not [target for target in held.values() if target.startswith("/memfd:")], held


def _limits(pid: int, name: str) -> tuple[str, str]:
    with open(f"/proc/{pid}/limits") as f:
        for line in f:
            if line.startswith(name):
                return tuple(line[len(name):].split()[:2])
    raise AssertionError(f"{name} not in /proc/{pid}/limits")


def test_init_inherits_the_callers_rlimits_not_the_monitors(runtime, busybox_config):
    first = runtime.create(unique_id("mon1"), busybox_config())
    first.run(Process(["/bin/sleep", "60"]))  # starts the monitor with our limits
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (500, hard))
    try:
        second = runtime.create(unique_id("mon2"), busybox_config())
        second.run(Process(["/bin/sleep", "60"]))
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    assert _monitor_of(first) == _monitor_of(second)  # one monitor for the root
    assert _limits(second.state().init_process_pid, "Max open files")[0] == "500"
    assert _limits(first.state().init_process_pid, "Max open files")[0] == str(soft)


def _ns(pid: int | str, name: str = "pid") -> str:
    return os.readlink(f"/proc/{pid}/ns/{name}")


def test_the_monitor_forks_init_into_each_pid_namespace_and_keeps_its_own(runtime, busybox_config):
    """The monitor forks init itself (no stage 1): init is its child, born in a new PID namespace,
    in a joined one, or in the monitor's own when the config has none; after each fork the
    monitor's children are born in its own namespace again (pid_for_children restored)."""
    from declarative_ct.configs import Namespace

    sleep = Process(["/bin/sleep", "60"])
    fresh = runtime.create(unique_id("pidnew"), busybox_config())
    fresh.run(sleep)
    monitor = _monitor_of(fresh)
    with open(f"/proc/{monitor}/cmdline", "rb") as f:
        assert b"monitord" in f.read()
    fresh_pid = fresh.state().init_process_pid
    assert _ns(fresh_pid) != _ns(monitor)
    with open(f"/proc/{fresh_pid}/status") as f:  # PID 1 of its namespace
        assert [line.split()[-1] for line in f if line.startswith("NSpid:")] == ["1"]

    joined = runtime.create(unique_id("pidjoin"), busybox_config(namespaces=[
        Namespace("NEWNS"), Namespace("NEWPID", f"/proc/{fresh_pid}/ns/pid")], hostname=""))
    joined.run(sleep)
    host = runtime.create(unique_id("pidhost"), busybox_config(namespaces=[Namespace("NEWNS")], hostname=""))
    host.run(sleep)
    assert _monitor_of(joined) == _monitor_of(host) == monitor
    assert _ns(joined.state().init_process_pid) == _ns(fresh_pid)
    assert _ns(host.state().init_process_pid) == _ns(monitor)
    assert _ns(monitor, "pid_for_children") == _ns(monitor)
    for c in (joined, host, fresh):
        c.signal(signal.SIGKILL, all=True)
        wait_for(lambda: c.status() is Status.STOPPED, message=f"{c.id} to stop")
        c.destroy()


def _umask(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        return int(next(line for line in f if line.startswith("Umask:")).split()[1], 8)


def test_init_inherits_the_callers_umask_not_the_monitors(runtime, busybox_config):
    """Only what differs from the monitor's own context is set in init: a changed umask is."""
    mine = os.umask(0o022)
    try:
        first = runtime.create(unique_id("umask1"), busybox_config())
        first.run(Process(["/bin/sleep", "60"]))  # starts the monitor with umask 022
        os.umask(0o027)
        second = runtime.create(unique_id("umask2"), busybox_config())
        second.run(Process(["/bin/sleep", "60"]))
        os.umask(0o022)
        third = runtime.create(unique_id("umask3"), busybox_config())
        third.run(Process(["/bin/sleep", "60"]))
    finally:
        os.umask(mine)
    assert _monitor_of(first) == _monitor_of(second) == _monitor_of(third)
    assert [_umask(c.state().init_process_pid) for c in (first, second, third)] == [0o022, 0o027, 0o022]


def test_a_socket_served_by_another_uid_is_refused(register_state_root, busybox_config):
    """Regression: the client handed its fds to, and unpickled the reply of, whoever bound the socket."""
    runtime = Runtime(register_state_root(tempfile.mkdtemp(prefix="dct-evil-", dir="/tmp")))
    os.chmod(runtime.root, 0o777)  # a careless root: anyone can bind the socket first
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.setgid(65534)
            os.setuid(65534)
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
            sock.bind(os.path.join(runtime.root, monitord.SOCKET_FILE))
            sock.listen(1)
            os.write(w, b"x")
            sock.accept()[0].recv(1)
        finally:
            os._exit(0)
    os.close(w)
    try:
        assert os.read(r, 1) == b"x"
        c = runtime.create(unique_id("evil"), busybox_config())
        with pytest.raises(SystemError, match=r"served by uid 65534, not by root: refusing"):
            c.run(Process(["/bin/true"]))
    finally:
        os.close(r)
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        os.unlink(os.path.join(runtime.root, monitord.SOCKET_FILE))


def test_containers_outlive_a_killed_monitor_and_the_next_create_starts_another(runtime, busybox_config):
    c = runtime.create(unique_id("orphan"), busybox_config())
    c.run(Process(["/bin/sleep", "60"]))
    mon = _monitor_of(c)
    os.kill(mon, signal.SIGKILL)
    wait_for(lambda: (reap_zombies(), procfs.stat(mon) is None)[1], message="the monitor to die")
    assert c.status() == Status.RUNNING  # init now belongs to the nearest subreaper (this test)
    d = runtime.create(unique_id("after"), busybox_config())
    d.run(Process(["/bin/sh", "-c", "exit 7"]))
    assert wait_for(d.exit_status, message="the new monitor's record")["exit_code"] == 7
    assert _monitor_of(c) != mon
    c.signal(signal.SIGKILL)
    wait_for(lambda: (reap_zombies(), c.status() == Status.STOPPED)[1], message="the orphan to stop")
    assert c.exit_status() is None  # its monitor was gone: the exit code is lost, the container is not
    c.destroy()
    d.destroy()


def test_prestart_starts_the_monitor_of_an_existing_root_only(register_state_root, tmp_path):
    """dct apply starts the root's monitor while it loads the specs: only for a root that exists
    (nothing is made for an apply that may be refused), once, and the monitor then serves and
    leaves after its linger like any other."""
    root = register_state_root(tmp_path / "root")
    monitord.prestart(root)
    monitord.wait_prestarted()
    assert not os.path.exists(root)
    os.mkdir(root)
    monitord.prestart(root)
    monitord.wait_prestarted()
    sock_path = os.path.join(root, monitord.SOCKET_FILE)
    assert os.path.exists(sock_path)
    with socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET) as sock:
        sock.connect(sock_path)  # it listens
    wait_for(lambda: not os.path.exists(sock_path), message="the idle monitor to leave")
    reap_zombies()


class _Planted:
    """Unpickling this makes a directory: what a request that is unpickled would run."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self):
        return (os.mkdir, (self.path,))


def _ask_monitor(root: str, payload: bytes, nfds: int = 5) -> tuple[int, dict]:
    """Send ``payload`` as a request with ``nfds`` descriptors of /dev/null; (the monitor's pid, its reply)."""
    import json
    import struct

    fds = [os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC) for _ in range(nfds)]
    try:
        with monitord._connect(root) as sock:
            pid = struct.unpack("3i", sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12))[0]
            socket.send_fds(sock, [payload], fds)
            sock.settimeout(10)
            return pid, json.loads(sock.recv(65536))
    finally:
        for fd in fds:
            os.close(fd)


def test_a_malformed_request_gets_an_error_reply_and_the_monitor_serves_on(runtime, busybox_config, tmp_path,
                                                                           monkeypatch):
    """The request is JSON: garbage, a pickle (never run), a wrong shape or a wrong number of fds
    each get ``{"error": …}``; the same monitor then forks the next container's init."""
    import pickle
    import re

    monkeypatch.setenv(monitord.LINGER_ENV, "30")  # not gone idle between the requests: one monitor throughout
    os.makedirs(runtime.root, exist_ok=True)
    planted = str(tmp_path / "unpickled")
    monitors = set()
    for payload, nfds, said in [(b"\x00 not json", 5, "Expecting value|JSON|utf-8"),
                                (pickle.dumps({"state_dir": "/x", "ctx": _Planted(planted)}), 5, ""),
                                (b'{"state_dir": "/x", "init": {}}', 5, "request.init: fields"),
                                (b'{"state_dir": "/x", "init": {}}', 2, "request.init: fields|expected 5 fds")]:
        pid, reply = _ask_monitor(runtime.root, payload, nfds)
        monitors.add(pid)
        assert set(reply) == {"error"}, reply
        assert reply["error"]
        if said:
            assert re.search(said, reply["error"]), reply
    assert not os.path.exists(planted)  # the pickle was data, not code
    c = runtime.create(unique_id("afterbad"), busybox_config())
    c.run(Process(["/bin/sleep", "60"]))
    mon = _monitor_of(c)
    assert monitors == {mon}  # the same monitor, still serving
    c.signal(signal.SIGKILL)
    assert wait_for(c.exit_status, message="the monitor's record")["exit_code"] == 128 + signal.SIGKILL
    c.destroy()
    os.kill(mon, signal.SIGKILL)  # it would linger 30 s
    wait_for(lambda: (reap_zombies(), procfs.stat(mon) is None)[1], message="the monitor to die")


def test_a_monitor_of_the_previous_protocol_does_not_stand_in_the_way(runtime, busybox_config):
    """After an upgrade, the monitor an older dct started (protocol 1: ``#monitor.sock``, a flock
    on the root directory, no log pipes: it refused the new requests with "expected 5 fds") still
    runs for its containers; a new create starts a monitor of the current protocol beside it."""
    os.makedirs(runtime.root, exist_ok=True)
    old_lock = os.open(runtime.root, os.O_RDONLY | os.O_DIRECTORY)
    fcntl.flock(old_lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    old = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    old.bind(os.path.join(runtime.root, "#monitor.sock"))
    old.listen(1)
    try:
        c = runtime.create(unique_id("upgraded"), busybox_config())
        c.run(Process(["/bin/sh", "-c", "echo logged; exit 3"]))
        assert wait_for(c.exit_status, message="the new monitor's record")["exit_code"] == 3
        assert read_log(c, "stdout") == "logged\n"
        assert monitord.SOCKET_FILE != "#monitor.sock"
        c.destroy()
    finally:
        old.close()
        os.unlink(os.path.join(runtime.root, "#monitor.sock"))
        os.close(old_lock)
