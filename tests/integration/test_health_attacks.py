"""Health probes attacked by a hostile container (issue 16): nothing a container does may hang or
starve the supervisor's probing, make it spin, reach the host, or inject into what it prints.

Each test plays one attack on real containers: a container that stops (SIGSTOP) every process
born in it before its ``execve`` (an exec probe's process is the container's to signal once it is
in its PID namespace), a probe command that closes its output and sleeps, probe output and HTTP
reason phrases carrying terminal escape sequences, hostile HTTP servers (no newline, a slow
drip, a huge status line), descriptors of other requests seen by an exec'd process.
"""

from __future__ import annotations

import os
import signal
import threading
import time

import pytest

from conftest import rootfs_with_static_program, unique_id, wait_for
from declarative_ct.configs import Config
from declarative_ct.health import probes, record
from declarative_ct.health.check import HealthCheck
from declarative_ct.health.prober import Prober, Target
from declarative_ct.runtime import Process, Status
from declarative_ct.runtime.forkserver import ForkServer

pytestmark = pytest.mark.integration

QUIET = ["/bin/sh", "-c", "trap 'exit 0' TERM; sleep 1000 & wait"]

# Stops (SIGSTOP) every process of its PID namespace born after it whose comm is not one of the
# names given (argv[2:]): an exec'd process before its execve still has its parent's comm (the
# fork server's, or the sealed interpreter's). With "leader" (argv[1]) it waits until the process
# leads a session of its own (past the exec init's setsid: its stage 1's death then sends it no
# SIGHUP, as it does to a stopped process whose process group is orphaned). Needs no capability:
# root in the container may signal a process of the same uid. Logs each stop to /tmp/stopped.
STOPPER_C = r"""
#define _GNU_SOURCE
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static int allowed(const char *comm, int argc, char **argv) {
    for (int i = 2; i < argc; i++) if (!strcmp(comm, argv[i])) return 1;
    return 0;
}

static int read_file(int pid, const char *name, char *buf, int size) {
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/%s", pid, name);
    int fd = open(path, O_RDONLY);
    if (fd < 0) return -1;
    int n = read(fd, buf, size - 1);
    close(fd);
    if (n < 0) return -1;
    buf[n] = 0;
    return n;
}

/* the state (field 3 of /proc/<pid>/stat) and the session id (field 6); -1 when gone */
static int session(int pid, char *state) {
    char stat[512];
    if (read_file(pid, "stat", stat, sizeof stat) < 0) return -1;
    char *p = strrchr(stat, ')');
    int ppid, pgrp, sid;
    if (!p || sscanf(p + 2, "%c %d %d %d", state, &ppid, &pgrp, &sid) != 4) return -1;
    return sid;
}

/* whether the process stopped (a kill that lands on one that exec'd and exited meanwhile is no stop) */
static int stopped(int pid) {
    for (int i = 0; i < 2000; i++) {
        char state;
        if (session(pid, &state) < 0 || state == 'Z' || state == 'X') return 0;
        if (state == 'T') return 1;
        usleep(50);
    }
    return 0;
}

/* argv[1]: "any" stops at once, "leader" once the process leads its own session (past setsid) */
int main(int argc, char **argv) {
    int leader = argc > 1 && !strcmp(argv[1], "leader");
    int last = getpid();
    int log = open("/tmp/stopped", O_WRONLY | O_CREAT | O_APPEND, 0644);
    for (;;) {
        for (int pid = last + 1; pid < last + 64; pid++) {  /* pids come in order: watch the next few */
            char comm[64];
            int n = read_file(pid, "comm", comm, sizeof comm);
            if (n < 0) continue;
            if (n > 0 && comm[n - 1] == '\n') comm[n - 1] = 0;
            if (!allowed(comm, argc, argv)) {
                char state;
                if (leader && session(pid, &state) != pid) break;  /* look at it again */
                if (kill(pid, SIGSTOP) == 0 && stopped(pid)) dprintf(log, "%d %s\n", pid, comm);
            }
            last = pid;
        }
    }
}
"""


@pytest.fixture(scope="module")
def stopper_rootfs(busybox_rootfs, tmp_path_factory) -> str:
    return rootfs_with_static_program(busybox_rootfs, tmp_path_factory.mktemp("stopper"), "stopper", STOPPER_C)


@pytest.fixture
def running(runtime, busybox_config):
    """``running(args=QUIET, **config fields)``: a running container, destroyed at teardown."""

    def start(args=None, **fields):
        c = runtime.create(unique_id("ha"), busybox_config(**fields))
        c.run(Process(list(args or QUIET)))
        wait_for(lambda: c.status() == Status.RUNNING, message=f"{c.id} to run")
        return c

    return start


@pytest.fixture
def server():
    srv = ForkServer()
    yield srv
    srv.close()


def _in_thread(fn, *args):
    """Run ``fn(*args)`` in a daemon thread; ``(thread, box)`` where box gets ``result`` or ``error``."""
    box: dict = {}

    def run():
        try:
            box["result"] = fn(*args)
        except BaseException as err:  # noqa: BLE001 - shown by the test
            box["error"] = err

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t, box


def _stopper(runtime, rootfs: str, when: str = "any"):
    """A running container whose init is the stopper (stopping all but ``true``), its log empty."""
    log = os.path.join(rootfs, "tmp", "stopped")
    if os.path.exists(log):
        os.unlink(log)  # the rootfs is the module's: an earlier test's stops are not this one's
    c = runtime.create(unique_id("ha-stop"), Config(rootfs=rootfs, hostname="stopper"))
    c.run(Process(["/stopper", when, "stopper", "true"]))
    wait_for(lambda: os.path.exists(log), message="the stopper to run")
    return c


def _stopped_log(c) -> str:
    with open(os.path.join(c.config.rootfs, "tmp", "stopped")) as f:
        return f.read()


# -- 1. a container that stops the probe's process before its execve -------------------------------


@pytest.mark.parametrize("when", ["any", "leader"])
@pytest.mark.parametrize("through_server", [True, False], ids=["fork-server", "plain-exec"])
def test_a_probe_stopped_before_its_exec_still_ends_at_its_timeout(runtime, stopper_rootfs, server, through_server,
                                                                    when):
    """The container SIGSTOPs the exec'd process while it is still being set up (in the
    container's PID namespace, before execve): the probe must end at its timeout all the same
    (a worker thread held for good starves every other container's probes, and the
    supervisor's SIGTERM waits for it), and the stopped process must be gone from the container.
    "any" stops it at its birth (the hang); "leader" past its setsid, where the plain exec's stage 1
    being killed no longer sends it SIGHUP (what is left in the container: caught in some runs)."""
    c = _stopper(runtime, stopper_rootfs, when)
    check = HealthCheck("exec", command=("true",), timeout=1.0)
    for _ in range(20):  # until the stopper wins its race with one
        began = time.monotonic()
        t, box = _in_thread(probes.probe, c, check, None, server if through_server else None)
        t.join(6)
        hung = t.is_alive()
        if hung:
            c.signal(9, all=True)  # the container's end frees the thread
            t.join(10)
        assert not hung, f"the probe was still waiting {time.monotonic() - began:.1f}s later (timeout 1s)"
        if _stopped_log(c):
            break
        assert box["result"]["exit_code"] == 0, box
    else:
        pytest.fail("the stopper stopped nothing: the test tested nothing")
    result = box["result"]
    assert result["exit_code"] == probes.TIMEOUT_EXIT and "timed out after 1s" in result["output"], \
        (result, _stopped_log(c))
    # what was stopped is not left in the container (only its init)
    wait_for(lambda: len(c.processes()) == 1, message="the stopped process to go")


def test_a_stopping_container_starves_no_other_probe_and_close_returns(runtime, stopper_rootfs, running, server):
    """One worker, two containers: the hostile one stops every probe process before its exec.
    The other's probes go on meanwhile, and the prober closes (the supervisor's SIGTERM) at once."""
    bad = _stopper(runtime, stopper_rootfs)
    good = running()
    check = HealthCheck("exec", command=("true",), interval=0.5, timeout=1.0)
    prober = Prober(runtime, fork_server=server, workers=1)
    closed = False
    try:
        prober.update([Target(bad.id, check), Target(good.id, check)])
        time.sleep(3.5)
        assert _stopped_log(bad), "the stopper stopped nothing: the test tested nothing"
        log = (record.read(good.state_dir) or {}).get("log", [])
        assert len(log) >= 2, f"the healthy container got {len(log)} results in 3.5 s (interval 0.5 s)"
        t, _ = _in_thread(prober.close)
        t.join(5)
        closed = not t.is_alive()
        assert closed, "Prober.close() still waiting 5 s later"
        bad_log = (record.read(bad.state_dir) or {}).get("log", [])
        assert any(e["exit_code"] == probes.TIMEOUT_EXIT for e in bad_log), bad_log  # (a race lost by the stopper passes)
    finally:
        if not closed:
            bad.signal(9, all=True)
            prober.close()


# -- 2. exec probe commands: output closed, floods, daemons ------------------------------------------


def _cpu_of(fn, *args):
    """``(result, CPU seconds this thread spent in fn, wall seconds)``."""
    cpu, wall = time.thread_time(), time.monotonic()
    result = fn(*args)
    return result, time.thread_time() - cpu, time.monotonic() - wall


@pytest.mark.parametrize("through_server", [True, False], ids=["fork-server", "plain-exec"])
def test_a_command_that_closes_its_output_and_waits_does_not_make_the_prober_spin(running, server, through_server):
    """The command closes stdout and stderr (the pipe's only writer) and sleeps: the pipe polls as
    hung up from then on; the probing thread must not spin on it until the command ends."""
    c = running()
    check = HealthCheck("exec", command=("sh", "-c", "exec >&- 2>&-; sleep 1.5"), timeout=5.0)
    result, cpu, wall = _cpu_of(probes.probe, c, check, None, server if through_server else None)
    assert result["exit_code"] == 0, result
    assert wall >= 1.4
    assert cpu < 0.3, f"the probing thread used {cpu:.2f} s of CPU over {wall:.2f} s"


def test_a_flood_of_output_keeps_the_record_small_and_ends_at_the_timeout(running, server):
    """The command writes without end (and a grandchild keeps the pipe): the probe ends at its
    timeout with at most OUTPUT_MAX characters kept, and the record file stays small."""
    c = running()
    check = HealthCheck("exec", command=("sh", "-c", "(yes AAAA &) ; yes BBBBBBBB"), timeout=1.5)
    began = time.monotonic()
    result = probes.probe(c, check, None, server)
    assert time.monotonic() - began < 4
    assert result["exit_code"] == probes.TIMEOUT_EXIT and result["output"].endswith("timed out after 1.5s"), \
        result["output"][-80:]
    assert len(result["output"]) <= record.OUTPUT_MAX
    wait_for(lambda: len(c.processes()) == 2, message="the probe's processes to be killed")


def test_a_daemon_forked_by_a_probe_stays_in_the_container(running, server):
    """A probe that leaves a daemon of its own session behind: the daemon is the container's
    (its cgroup, its PID namespace), never a host process; the probe does not wait for it."""
    c = running()
    before = set(c.processes())
    check = HealthCheck("exec", command=("sh", "-c", "setsid sleep 33 & echo started"), timeout=5.0)
    began = time.monotonic()
    result = probes.probe(c, check, None, server)
    assert result["exit_code"] == 0 and time.monotonic() - began < 3, result
    left = wait_for(lambda: set(c.processes()) - before, message="the daemon")
    init_ns = os.readlink(f"/proc/{c.state().init_process_pid}/ns/pid")
    for pid in left:
        assert os.readlink(f"/proc/{pid}/ns/pid") == init_ns
        assert os.readlink(f"/proc/{pid}/ns/mnt") == os.readlink(f"/proc/{c.state().init_process_pid}/ns/mnt")


def test_a_chatty_command_is_not_failed_by_a_full_pipe(running, server):
    """Its output end blocks when the pipe is full (as a terminal or a file would): a command
    writing more than the pipe holds passes with its own exit code, never EAGAIN's."""
    c = running()
    result = probes.probe(c, HealthCheck("exec", command=("sh", "-c", "yes 0123456789 | head -n 400000 | cat"), timeout=10.0),
                          None, server)
    assert result["exit_code"] == 0, result["output"][-200:]


# -- 3. hostile HTTP servers in the container ---------------------------------------------------------


def _server(running, script: str, port: int = 9000):
    """A container answering each connection on 127.0.0.1:``port`` with ``sh -c script``."""
    c = running(["nc", "-ll", "-p", str(port), "-e", "sh", "-c", script])
    tcp = HealthCheck("tcp", port=port, timeout=1.0)
    wait_for(lambda: probes.probe(c, tcp)["exit_code"] == 0, message="nc to listen")
    return c


def _http(c, timeout: float = 1.5, port: int = 9000) -> tuple[dict, float, float]:
    own = os.readlink("/proc/thread-self/ns/net")
    result, cpu, wall = _cpu_of(probes.probe, c, HealthCheck("http", port=port, timeout=timeout))
    assert os.readlink("/proc/thread-self/ns/net") == own, "the probing thread was left in the container's netns"
    return result, cpu, wall


def test_an_endless_status_line_is_cut_and_refused(running):
    c = _server(running, "while :; do printf AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA; done")
    result, cpu, wall = _http(c)
    assert result["exit_code"] == 1 and result["output"].startswith("not an HTTP response"), result
    assert len(result["output"]) < 200 and wall < 1.5


def test_a_slow_drip_ends_at_the_timeout(running):
    c = _server(running, "while :; do printf H; sleep 0.3; done")
    result, cpu, wall = _http(c, timeout=1.5)
    assert result == {**result, "exit_code": 1, "output": "timed out after 1.5s"}
    assert wall < 2.5 and cpu < 0.3, (wall, cpu)


def test_a_huge_response_and_a_redirect_read_only_the_status_line(running):
    c = _server(running, "printf 'HTTP/1.1 302 Found\\r\\nLocation: http://10.0.0.1:22/\\r\\n\\r\\n'; "
                         "while :; do echo xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx; done")
    result, cpu, wall = _http(c)
    assert result == {**result, "exit_code": 0, "output": "HTTP 302 Found"}  # 3xx passes (kubelet's); not followed
    assert wall < 1.5


# -- 4. what a container says, shown to the admin ------------------------------------------------------

HOSTILE = "\x1b]0;owned\x07\x1b[2J\x1b[31mred\rback\x08\x9b1m\u202edesrever\x00"


def _inert(text: str) -> bool:
    """No character a terminal acts on (controls but newline and tab, C1, format characters)."""
    return all(ch.isprintable() or ch in "\n\t" for ch in text)


def test_escape_sequences_in_an_exec_probes_output_reach_no_terminal(running, runtime, server):
    """The output (status change lines of dct watch, apply's failure, dct status --json, the TUI,
    Ansible) comes from the container: the record keeps it inert, yet readable."""
    c = running()
    command = ("printf", HOSTILE.replace("\\", "\\\\").replace("%", "%%").replace("\x00", "\\000"))
    result = probes.probe(c, HealthCheck("exec", command=command, timeout=2.0), None, server)
    assert result["exit_code"] == 0 and _inert(result["output"]), repr(result["output"])
    assert "owned" in result["output"] and "desrever" in result["output"]  # readable, not dropped
    check = HealthCheck("exec", command=("sh", "-c", f"printf '{HOSTILE[:-1]}'; exit 1"), interval=0.2, retries=1)
    with Prober(runtime, fork_server=server) as prober:
        prober.update([Target(c.id, check)])
        wait_for(lambda: (record.read(c.state_dir) or {}).get("status") == "unhealthy", message="unhealthy")
    stored = record.read(c.state_dir)
    assert _inert(record.last_output(stored)), repr(record.last_output(stored))
    assert all(_inert(e["output"]) for e in stored["log"])


def test_escape_sequences_in_an_http_reason_phrase_reach_no_terminal(running):
    c = _server(running, "printf 'HTTP/1.0 503 \\033]0;owned\\007\\033[2J\\233\\r\\n\\r\\n'")
    result, _, _ = _http(c)
    assert result["exit_code"] == 1 and result["output"].startswith("HTTP 503 "), result
    assert _inert(result["output"]), repr(result["output"])


# -- 1 (cont.). the fork server between containers ----------------------------------------------------


def test_an_exec_probe_holds_no_descriptor_of_other_requests(running, server):
    """While another container's exec is out through the same server (its answer socket and
    pidfd held there), a probe's command holds only its stdio."""
    other = running()
    out_r, out_w = os.pipe()
    try:
        busy = other.start(Process(["sleep", "30"], init=False, stdout=out_w, stderr=out_w), fork_server=server)
    finally:
        os.close(out_w)
    try:
        c = running()
        result = probes.probe(c, HealthCheck("exec", command=("ls", "-l", "/proc/self/fd/"), timeout=3.0), None,
                              server)
        assert result["exit_code"] == 0, result
        fds = sorted(int(line.split()[-3]) for line in result["output"].splitlines() if "->" in line)
        assert fds[:3] == [0, 1, 2] and len(fds) <= 4, result["output"]  # (3: ls's own directory)
        assert "socket:" not in result["output"] and "pidfd" not in result["output"], result["output"]
    finally:
        busy_pidfd = busy.pidfd()
        signal.pidfd_send_signal(busy_pidfd, signal.SIGKILL)
        os.close(busy_pidfd)
        busy.wait()
        os.close(out_r)


def test_probes_into_many_containers_at_once_each_run_in_their_own(running, runtime, server, busybox_config):
    """Eight threads probe four containers through one server: each command sees its own
    container's hostname and mount namespace, never another's or the host's (a server left in
    a container's namespaces would fork the next one there)."""
    boxes = [running(hostname=f"box{i}") for i in range(4)]
    mnts = {c.id: os.readlink(f"/proc/{c.state().init_process_pid}/ns/mnt") for c in boxes}
    check = HealthCheck("exec", command=("sh", "-c", "hostname; readlink /proc/self/ns/mnt"), timeout=5.0)
    errors = []

    def probe_all(offset):
        for n in range(12):
            c = boxes[(n + offset) % 4]
            result = probes.probe(c, check, None, server)
            lines = result["output"].split()
            if result["exit_code"] != 0 or lines != [f"box{boxes.index(c)}", mnts[c.id]]:
                errors.append((c.id, result))

    threads = [threading.Thread(target=probe_all, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors[:3]
    assert os.readlink(f"/proc/{server.pid}/ns/mnt") == os.readlink("/proc/self/ns/mnt")
    assert os.readlink(f"/proc/{server.pid}/ns/pid_for_children") == os.readlink("/proc/self/ns/pid_for_children")


def test_a_probe_into_a_container_paused_under_it_ends_and_the_server_serves_others(running, server):
    """The admin pauses a container while its probe runs: the probe ends (a frozen process
    cannot be reaped until thawed: it waits for no longer than the timeout and a little), and
    meanwhile probes of other containers through the same server go on."""
    c = running()
    other = running()
    check = HealthCheck("exec", command=("sleep", "0.5"), timeout=1.0)
    t, box = _in_thread(probes.probe, c, check, None, server)
    time.sleep(0.2)
    c.pause()
    try:
        began = time.monotonic()
        ok = probes.probe(other, HealthCheck("exec", command=("true",), timeout=2.0), None, server)
        assert ok["exit_code"] == 0 and time.monotonic() - began < 4, ok
        t.join(5)
        hung = t.is_alive()
    finally:
        c.resume()
    t.join(5)
    assert not hung, "the probe of the paused container still waited 5 s later (timeout 1 s)"
    assert box["result"]["exit_code"] == probes.TIMEOUT_EXIT, box
    # and a paused container's probe is refused at once
    c.pause()
    try:
        began = time.monotonic()
        result = probes.probe(c, check, None, server)
        assert result["exit_code"] != 0 and time.monotonic() - began < 1, result
    finally:
        c.resume()


@pytest.mark.parametrize("through_server", [True, False], ids=["fork-server", "plain-exec"])
def test_a_probe_stopped_then_paused_before_its_exec_still_ends(runtime, stopper_rootfs, server, through_server):
    """The set-up's timeout kills a process that is frozen (its container paused after the
    stopper caught it, then continued, so that it sits in the freezer and not stopped): it dies
    only once thawed, and the probe must not wait for that."""
    c = _stopper(runtime, stopper_rootfs, "leader")  # past setsid: in the container's cgroup (frozen with it)
    check = HealthCheck("exec", command=("true",), timeout=1.5)
    for _ in range(20):
        t, box = _in_thread(probes.probe, c, check, None, server if through_server else None)
        wait_for(lambda: _stopped_log(c) or not t.is_alive(), timeout=3, message="a stop or the probe's end")
        if _stopped_log(c):
            break
        t.join(5)
    else:
        pytest.fail("the stopper stopped nothing: the test tested nothing")
    init = c.state().init_process_pid
    caught = [pid for pid in c.processes() if pid != init]
    c.pause()
    try:
        for pid in caught:
            os.kill(pid, signal.SIGCONT)  # frozen from now on, no longer stopped
        t.join(5)
        hung = t.is_alive()
    finally:
        c.resume()
    t.join(5)
    assert caught, "nothing caught"
    assert not hung, "the probe still waited 5 s later (timeout 1.5 s) for a frozen process"
    assert box["result"]["exit_code"] == probes.TIMEOUT_EXIT, box
