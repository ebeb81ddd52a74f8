"""The container lifecycle on real containers: statuses, transitions, exit records, exec, signals."""

from __future__ import annotations

import os
import signal
import time
import uuid

import psutil
import pytest

from conftest import exec_in, unique_id, wait_for
from declarative_ct.configs import Capabilities, Config, Mount
from declarative_ct.configs.mountflags import MS_BIND, MS_REC
from declarative_ct.errors import (ContainerError, ContainerNotPaused, ContainerNotRunning, ContainerPaused,
                                   ContainerRunning, InvalidStateTransition)
from declarative_ct.runtime import Process, Status, procfs, store
from declarative_ct.runtime.container import start as container_start

pytestmark = pytest.mark.integration

SLEEP = ["/bin/sleep", "1000"]


def _start(runtime, config, prefix, args=SLEEP, release=True, **process_fields):
    """Create and start a container (released with exec() unless ``release`` is False)."""
    c = runtime.create(unique_id(prefix), config)
    c.start(Process(list(args), **process_fields))
    if release:
        c.exec()
    return c


def _init(c):
    st = c.state()
    return st.init_process_pid, st.init_process_start


def _stopped(c):
    return c.status() is Status.STOPPED




def _bind(host_dir, destination="/out", flags=MS_BIND | MS_REC):
    return Mount(source=str(host_dir), destination=destination, device="bind", flags=flags)


# -- the status machine ---------------------------------------------------------------------------


def test_every_status_transition(runtime, busybox_config):
    c = runtime.create(unique_id("trans"), busybox_config())
    assert c.status() is Status.STOPPED  # before start
    c.start(Process(SLEEP))
    assert c.status() is Status.CREATED
    assert runtime.load(c.id).status() is Status.CREATED  # derived from disk and the kernel too
    c.exec()
    assert c.status() is Status.RUNNING
    assert runtime.load(c.id).status() is Status.RUNNING
    c.pause()
    assert c.status() is Status.PAUSED
    assert runtime.load(c.id).status() is Status.PAUSED
    c.resume()
    assert c.status() is Status.RUNNING
    c.signal(signal.SIGKILL)
    wait_for(lambda: _stopped(c), message="stopped after SIGKILL")
    assert runtime.load(c.id).status() is Status.STOPPED
    c.destroy()
    assert not os.path.exists(c.state_dir)


def test_state_records_init_and_its_namespaces_and_descriptors(runtime, busybox_config):
    """libcontainer's State: init's pid and start time, a path per namespace type the kernel has,
    and init's stdio as seen from the host (monitored: /dev/null and two pipes, whose read ends only
    the monitor holds), and the run's log file under the data root."""
    c = runtime.create(unique_id("state"), busybox_config())
    c.run(Process(SLEEP))
    saved = runtime.load(c.id).state()
    pid = saved.init_process_pid
    assert saved.external_descriptors == [os.readlink(f"/proc/{pid}/fd/{i}") for i in range(3)]
    stdin, out, err = saved.external_descriptors
    assert stdin == "/dev/null" and out.startswith("pipe:[") and err.startswith("pipe:[") and out != err
    monitor_pid = int(open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[1])
    held = {os.readlink(f"/proc/{monitor_pid}/fd/{fd}") for fd in os.listdir(f"/proc/{monitor_pid}/fd")}
    assert {out, err} <= held
    assert saved.log_path == runtime.load(c.id).log_path == os.path.join(runtime.data_root, "logs", c.id, "0.log")
    assert saved.namespace_paths["NEWPID"] == f"/proc/{pid}/ns/pid"
    assert os.readlink(saved.namespace_paths["NEWNET"]) != os.readlink("/proc/self/ns/net")
    assert all(os.path.exists(path) for path in saved.namespace_paths.values())
    c.signal(signal.SIGKILL)
    wait_for(lambda: _stopped(c), message="stopped after SIGKILL")
    c.destroy()


@pytest.mark.parametrize("how", ["run", "start"])
def test_a_failure_after_run_is_reported_and_leaves_nothing(runtime, busybox_config, cgroup_dirs, how):
    """Init's last set-up step (capabilities, after the parent saved state.json) fails: run(), which
    releases init at once, reports it as start() does, and nothing of the container is left.
    A capability outside our bounding set (this machine lacks CAP_SYS_RESOURCE): capset refuses it."""
    from declarative_ct.configs import CAPABILITIES

    with open("/proc/self/status") as f:
        bounding = int(next(line for line in f if line.startswith("CapBnd:")).split()[1], 16)
    missing = [name for name, bit in sorted(CAPABILITIES.items(), key=lambda kv: kv[1]) if not bounding >> bit & 1]
    if not missing:
        pytest.skip("every capability is in our bounding set: none that capset would refuse")
    caps = missing[:1]
    c = runtime.create(unique_id(f"late{how}"), busybox_config())
    process = Process(SLEEP, capabilities=Capabilities(Bounding=caps, Effective=caps, Permitted=caps))
    with pytest.raises(ContainerError, match="capset"):
        getattr(c, how)(process)
    assert not os.path.exists(c.state_dir)
    assert cgroup_dirs(c.id) == []


def test_run_reports_a_late_failure_of_an_init_already_reaped(runtime, busybox_config, monkeypatch):
    """Regression: init failing after "run" (a program the user cannot find) and reaped by the
    monitor before run() looked for it gave a bare "[Errno 3] No such process"; run() now reports
    init's own message, read from the sync socket."""
    real = container_start.read_release

    def late(c, pid, timeout):
        deadline = time.monotonic() + 5
        while os.path.exists(f"/proc/{pid}") and time.monotonic() < deadline:
            time.sleep(0.01)  # until the monitor has reaped the failed init
        return real(c, pid, timeout)

    monkeypatch.setattr(container_start, "read_release", late)
    c = runtime.create(unique_id("reaped"), busybox_config())
    with pytest.raises(ContainerError, match="/no/such/program"):
        c.run(Process(["/no/such/program"]))
    assert not os.path.exists(c.state_dir)


def test_start_after_a_manager_killed_between_release_and_fifo_removal(runtime, busybox_config):
    """Regression: a manager killed after init read its release but before it removed exec.fifo left a
    running container that looked created; the next start (and apply) waited on the fifo forever.
    Init no longer holds the fifo then: start sees that, removes it and returns."""
    c = runtime.create(unique_id("killedrel"), busybox_config())
    c.run(Process(SLEEP))
    pid = c.state().init_process_pid
    os.mkfifo(os.path.join(c.state_dir, store.EXEC_FIFO))  # what the killed manager left
    again = runtime.load(c.id)
    assert again.status() is Status.CREATED
    again.exec()
    assert not os.path.exists(os.path.join(c.state_dir, store.EXEC_FIFO))
    assert again.status() is Status.RUNNING and again.state().init_process_pid == pid
    c.signal(signal.SIGKILL)
    wait_for(lambda: _stopped(c), message="stopped after SIGKILL")
    c.destroy()


def test_stopped_after_the_process_exits(runtime, busybox_config):
    c = _start(runtime, busybox_config(), "exit0", ["/bin/sh", "-c", "sleep 0.2"])
    assert c.status() is Status.RUNNING
    wait_for(lambda: _stopped(c), message="stopped after exit")
    record = wait_for(c.exit_status)
    assert record["exit_code"] == 0 and record["signal"] is None


def test_exec_on_running_raises_invalid_transition(runtime, busybox_config):
    c = _start(runtime, busybox_config(), "execrun")
    with pytest.raises(InvalidStateTransition) as info:
        c.exec()
    assert info.value.from_status is Status.RUNNING and info.value.to_status is Status.RUNNING
    assert c.status() is Status.RUNNING


def test_exec_on_stopped_raises(runtime, busybox_config):
    c = _start(runtime, busybox_config(), "execstop", ["/bin/true"])
    wait_for(lambda: _stopped(c))
    with pytest.raises(InvalidStateTransition) as info:
        c.exec()
    assert info.value.from_status is Status.STOPPED


def test_exec_before_start_raises(runtime, busybox_config):
    c = runtime.create(unique_id("execnew"), busybox_config())
    with pytest.raises(InvalidStateTransition):
        c.exec()
    assert c.status() is Status.STOPPED


def test_resume_on_running_raises_not_paused(runtime, busybox_config):
    c = _start(runtime, busybox_config(), "resrun")
    with pytest.raises(ContainerNotPaused):
        c.resume()
    assert c.status() is Status.RUNNING


def test_pause_on_stopped_raises_not_running(runtime, busybox_config):
    c = _start(runtime, busybox_config(), "pausestop", ["/bin/true"])
    wait_for(lambda: _stopped(c))
    with pytest.raises(ContainerNotRunning):
        c.pause()
    assert c.status() is Status.STOPPED


def test_destroy_on_running_raises_and_it_keeps_running(runtime, busybox_config, cgroup_dirs):
    c = _start(runtime, busybox_config(), "destrun")
    pid, start = _init(c)
    with pytest.raises(ContainerRunning):
        c.destroy()
    assert c.status() is Status.RUNNING
    assert procfs.is_alive(pid, start)
    assert os.path.exists(os.path.join(c.state_dir, store.STATE_FILE))
    assert cgroup_dirs(c.id)
    assert pid in c.processes()


def test_destroy_on_paused_raises_paused(runtime, busybox_config):
    c = _start(runtime, busybox_config(), "destpause")
    pid, start = _init(c)
    c.pause()
    with pytest.raises(ContainerPaused):
        c.destroy()
    assert c.status() is Status.PAUSED
    assert procfs.is_alive(pid, start)
    c.resume()
    assert c.status() is Status.RUNNING


@pytest.mark.parametrize("pause", [False, True], ids=["running", "paused"])
def test_destroy_force_kills_waits_and_removes(runtime, busybox_config, cgroup_dirs, pause):
    """youki's container_delete(force): what destroy() refuses, destroy(force=True) kills first."""
    c = _start(runtime, busybox_config(), "destforce")
    pid, start = _init(c)
    if pause:
        c.pause()
    c.destroy(force=True, timeout=5.0)
    assert not procfs.is_alive(pid, start)
    assert not os.path.exists(c.state_dir)
    assert cgroup_dirs(c.id) == []


def test_stop_with_a_signal_gives_init_its_grace_then_sigkill(runtime, busybox_config):
    """stop(sig): a paused container is resumed and sig goes to init; sleep as the PID namespace's
    init has no SIGTERM handler, so the kernel drops it: SIGKILL comes once the grace runs out."""
    c = _start(runtime, busybox_config(), "stopgrace")
    pid, _ = _init(c)
    # Released is not yet exec'd: before its execve init is ours, which a SIGTERM ends.
    wait_for(lambda: psutil.Process(pid).name() == "sleep", message="init to exec sleep")
    c.pause()
    t0 = time.monotonic()
    c.stop(signal.SIGTERM, grace=0.5, exit_wait=1.0)
    assert time.monotonic() - t0 >= 0.5
    assert c.status() is Status.STOPPED
    assert c.exit_status()["signal"] == signal.SIGKILL
    c.stop()  # a stopped container is left alone
    c.destroy()


@pytest.mark.parametrize("release", [False, True], ids=["created", "running"])
def test_start_twice_raises(runtime, busybox_config, release):
    c = _start(runtime, busybox_config(), "twice", release=release)
    before = store.read_json(os.path.join(c.state_dir, store.STATE_FILE))
    with pytest.raises(ContainerError, match="already"):
        c.start(Process(SLEEP))
    assert c.status() is (Status.RUNNING if release else Status.CREATED)
    assert store.read_json(os.path.join(c.state_dir, store.STATE_FILE)) == before
    assert procfs.is_alive(before["init_process_pid"], before["init_process_start"])


def test_destroy_of_created_kills_init_and_removes_everything(runtime, busybox_config, cgroup_dirs):
    c = _start(runtime, busybox_config(), "destcreated", release=False)
    pid, start = _init(c)
    paths = list(c.state().cgroup_paths.values())
    assert paths and all(os.path.isdir(p) for p in paths)
    assert procfs.is_alive(pid, start)
    c.destroy()
    assert not procfs.is_alive(pid, start)
    wait_for(lambda: procfs.stat(pid) is None or procfs.stat(pid)[1] != start, message=f"pid {pid} to disappear")
    assert not os.path.exists(c.state_dir)
    assert [p for p in paths if os.path.exists(p)] == []
    assert cgroup_dirs(c.id) == []
    assert c.status() is Status.STOPPED
    c.destroy()  # idempotent


# -- exit records -----------------------------------------------------------------------------------


def test_exit_code_is_recorded(runtime, busybox_config):
    c = _start(runtime, busybox_config(), "exit3", ["/bin/sh", "-c", "exit 3"])
    pid, _ = _init(c)
    record = wait_for(c.exit_status, message="exit.json")
    assert record["exit_code"] == 3
    assert record["signal"] is None
    assert record["pid"] == pid
    assert record["exited_at"].endswith("Z")
    assert runtime.load(c.id).exit_status() == record


def test_sigkilled_init_records_signal_9(runtime, busybox_config):
    c = _start(runtime, busybox_config(), "kill9")
    c.signal(signal.SIGKILL)
    record = wait_for(c.exit_status, message="exit.json")
    assert record["signal"] == 9
    assert record["exit_code"] == 137
    assert c.status() is Status.STOPPED


def test_no_exit_record_while_running(runtime, busybox_config):
    c = _start(runtime, busybox_config(), "noexit")
    time.sleep(0.1)
    assert c.exit_status() is None


# -- PID reuse -----------------------------------------------------------------------------------


def test_pid_reuse_guard(runtime, busybox_config):
    # A TERM trap makes a wrongly delivered SIGTERM visible (PID 1 ignores unhandled signals).
    c = _start(runtime, busybox_config(), "pidreuse",
               ["/bin/sh", "-c", "trap 'exit 42' TERM; while :; do sleep 0.05; done"])
    path = os.path.join(c.state_dir, store.STATE_FILE)
    raw = store.read_json(path)
    pid, start = raw["init_process_pid"], raw["init_process_start"]
    assert runtime.load(c.id).status() is Status.RUNNING
    store.write_json_atomic(path, dict(raw, init_process_start=start + 1))
    try:
        stale = runtime.load(c.id)
        assert stale.status() is Status.STOPPED
        assert "pid" not in stale.oci_state()
        with pytest.raises(ContainerNotRunning):
            stale.signal(signal.SIGTERM)
        with pytest.raises(ContainerNotRunning):
            stale.signal(signal.SIGKILL)
        time.sleep(0.3)
        assert procfs.is_alive(pid, start), "the real process was signalled through a stale state"
        assert c.exit_status() is None
    finally:
        store.write_json_atomic(path, raw)
    restored = runtime.load(c.id)
    assert restored.status() is Status.RUNNING
    # The trap works: the same signal through a correct state ends the container with 42.
    restored.signal(signal.SIGTERM)
    record = wait_for(restored.exit_status, message="exit after SIGTERM")
    assert record["exit_code"] == 42


# -- create/start split, pause --------------------------------------------------------------------


def test_create_does_not_run_the_program(runtime, busybox_config, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    cfg = busybox_config()
    cfg.mounts.append(_bind(out))
    c = _start(runtime, cfg, "split", ["/bin/sh", "-c", "touch /out/marker"], release=False)
    time.sleep(0.3)
    assert not (out / "marker").exists(), "the program ran before exec()"
    assert c.status() is Status.CREATED
    c.exec()
    wait_for((out / "marker").exists, message="marker after exec()")


def _counter(path):
    try:
        return int(path.read_text() or 0)
    except (FileNotFoundError, ValueError):
        return 0


def test_pause_stops_progress(runtime, busybox_config, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    cfg = busybox_config()
    cfg.mounts.append(_bind(out))
    loop = "i=0; while :; do i=$((i+1)); echo $i > /out/c.tmp; mv /out/c.tmp /out/c; usleep 10000; done"
    c = _start(runtime, cfg, "pause", ["/bin/sh", "-c", loop])
    counter = out / "c"
    wait_for(lambda: _counter(counter) >= 3, message="counter to advance")
    c.pause()
    frozen = _counter(counter)
    time.sleep(0.4)
    assert _counter(counter) == frozen, "the counter advanced while paused"
    c.resume()
    wait_for(lambda: _counter(counter) > frozen + 2, message="counter to advance after resume")


# -- signals and processes ---------------------------------------------------------------------------


def _child_of(init_pid, argv):
    def find():
        try:
            kids = psutil.Process(init_pid).children()
        except psutil.NoSuchProcess:
            return None
        for k in kids:
            try:
                if k.cmdline() == argv:
                    return k.pid
            except psutil.NoSuchProcess:
                continue
        return None

    return wait_for(find, message=f"a child {argv} of {init_pid}")


def test_processes_lists_init_and_child(runtime, busybox_config):
    c = _start(runtime, busybox_config(), "procs", ["/bin/sh", "-c", "sleep 1000 & wait"])
    init, _ = _init(c)
    child = _child_of(init, ["sleep", "1000"])
    assert sorted(c.processes()) == sorted([init, child])


def test_signal_all_kills_background_child(runtime, busybox_config):
    c = _start(runtime, busybox_config(), "sigall", ["/bin/sh", "-c", "sleep 1000 & while :; do sleep 1; done"])
    init, init_start = _init(c)
    child = _child_of(init, ["sleep", "1000"])
    child_start = procfs.stat(child)[1]
    assert {init, child} <= set(c.processes())
    c.signal(signal.SIGKILL, all=True)
    wait_for(lambda: c.processes() == [], message="cgroup to empty")
    assert not procfs.is_alive(child, child_start)
    assert not procfs.is_alive(init, init_start)
    wait_for(lambda: _stopped(c))
    with pytest.raises(ContainerNotRunning):
        c.signal(signal.SIGKILL, all=True)
    with pytest.raises(ContainerNotRunning):
        c.signal(signal.SIGTERM)


def test_processes_empty_after_destroy(runtime, busybox_config):
    c = _start(runtime, busybox_config(), "procsgone", ["/bin/true"])
    wait_for(lambda: _stopped(c))
    c.destroy()
    assert c.processes() == []


def test_oci_state(runtime, busybox_config):
    cfg = busybox_config(labels=["bundle=/srv/bundles/web", "org.example.tier=front"])
    c = runtime.create(unique_id("oci"), cfg)
    assert c.oci_state() == {"ociVersion": "1.2.0", "id": c.id, "status": "stopped",
                             "bundle": "/srv/bundles/web", "annotations": {"org.example.tier": "front"}}
    c.start(Process(SLEEP))
    pid, _ = _init(c)
    assert c.oci_state() == {"ociVersion": "1.2.0", "id": c.id, "status": "created", "pid": pid,
                             "bundle": "/srv/bundles/web", "annotations": {"org.example.tier": "front"}}
    c.exec()
    st = runtime.load(c.id).oci_state()
    assert st["status"] == "running" and st["pid"] == pid and st["bundle"] == "/srv/bundles/web"
    c.pause()
    assert c.oci_state()["status"] == "paused"
    c.resume()
    c.signal(signal.SIGKILL)
    wait_for(lambda: _stopped(c))
    st = c.oci_state()
    assert st["status"] == "stopped" and "pid" not in st


def test_oci_state_without_labels(runtime, busybox_config):
    c = _start(runtime, busybox_config(), "ocibare", release=False)
    st = c.oci_state()
    assert set(st) == {"ociVersion", "id", "status", "pid", "bundle"}
    assert st["bundle"] == "" and st["status"] == "created"


# -- exec of extra processes -----------------------------------------------------------------------


def test_exec_process_output_and_exit_code(runtime, busybox_config):
    c = _start(runtime, busybox_config(hostname="exechost"), "exec")
    code, out = exec_in(c, ["/bin/hostname"])
    assert (code, out) == (0, "exechost\n")
    code, out = exec_in(c, ["/bin/sh", "-c", "echo $$; exit 7"])
    assert code == 7
    assert int(out) > 1  # a new process in the container's PID namespace, not init
    assert c.status() is Status.RUNNING


def test_exec_killed_by_signal(runtime, busybox_config):
    c = _start(runtime, busybox_config(), "execkill")
    code, _ = exec_in(c, ["/bin/sh", "-c", "kill -9 $$"])
    assert code == 137


def test_exec_cat_etc_hostname_in_host_rootfs(runtime):
    c = _start(runtime, Config(rootfs="host", hostname="hostview"), "exechostfs")
    code, out = exec_in(c, ["/bin/cat", "/etc/hostname"])
    assert (code, out) == (0, "hostview\n")


def test_exec_joins_the_namespaces(runtime, busybox_config):
    c = _start(runtime, busybox_config(), "execns")
    init, _ = _init(c)
    names = ["pid", "mnt", "net", "uts", "ipc"]
    script = "for n in " + " ".join(names) + "; do readlink /proc/self/ns/$n; done"
    code, out = exec_in(c, ["/bin/sh", "-c", script])
    assert code == 0
    inside = out.split()
    expected = [os.readlink(f"/proc/{init}/ns/{n}") for n in names]
    assert inside == expected
    host = [os.readlink(f"/proc/self/ns/{n}") for n in names]
    assert all(a != b for a, b in zip(expected, host)), "the container shares a namespace with the host"


def test_exec_process_is_in_the_cgroup(runtime, busybox_config):
    c = _start(runtime, busybox_config(), "execcg")
    r, w = os.pipe()
    try:
        p = c.start(Process(["/bin/sh", "-c", "echo ready; exec sleep 1000"], init=False, stdout=w))
    finally:
        os.close(w)
    with os.fdopen(r, "rb") as f:
        assert f.readline() == b"ready\n"
        wait_for(lambda: p.pid in c.processes(), message="exec'd pid in the cgroup")
        os.kill(p.pid, signal.SIGTERM)
        assert p.wait() == 128 + signal.SIGTERM


def test_exec_into_paused_raises_paused(runtime, busybox_config):
    c = _start(runtime, busybox_config(), "execpause")
    c.pause()
    with pytest.raises(ContainerPaused):
        c.start(Process(["/bin/true"], init=False))
    assert c.status() is Status.PAUSED


def test_exec_into_stopped_raises_not_running(runtime, busybox_config):
    c = _start(runtime, busybox_config(), "execstopped", ["/bin/true"])
    wait_for(lambda: _stopped(c))
    with pytest.raises(ContainerNotRunning):
        c.start(Process(["/bin/true"], init=False))


# -- rootfs "host" -----------------------------------------------------------------------------------


def test_host_rootfs_runs_python(run_container):
    res = run_container(Config(rootfs="host", hostname="pyhost"), ["/usr/bin/python3", "-c", "print(1)"], "hostpy")
    assert res.exit_code == 0, res.stderr
    assert res.stdout == "1\n"


def test_host_rootfs_tmp_is_private(run_container):
    name = f"dct-private-{uuid.uuid4().hex}"
    res = run_container(Config(rootfs="host", hostname="tmphost"),
                        ["/bin/sh", "-c", f"echo inside > /tmp/{name} && cat /tmp/{name}"], "hosttmp")
    assert res.exit_code == 0, res.stderr
    assert res.stdout == "inside\n"
    assert not os.path.exists(f"/tmp/{name}")


# -- robustness to scheduling ---------------------------------------------------------------------


def test_start_survives_a_slow_stage1(runtime, busybox_config, monkeypatch):
    """Stage 1 descheduled between fork() and sending init's pid: init's "ready" may then come first.

    Seen for real under load ("unexpected sync message {'type': 'ready'}, wanted 'pid'"); the delay
    makes that interleaving deterministic. Without the monitor the caller forks stage 1, which
    inherits the patched ``send`` (the monitor forks init itself: no stage 1, no pid message).
    """
    from declarative_ct.runtime import sync

    real_send = sync.send

    def slow_pid_send(sock, kind, **fields):
        if kind == sync.Kind.PID:
            time.sleep(0.3)
        real_send(sock, kind, **fields)

    monkeypatch.setattr(sync, "send", slow_pid_send)
    c = runtime.create(unique_id("slowstage1"), busybox_config())
    c.start(Process(["/bin/sh", "-c", "trap 'exit 6' TERM; while :; do usleep 20000; done"]), monitor=False)
    assert c.status() is Status.CREATED
    c.exec()
    assert exec_in(c, ["/bin/sh", "-c", "exit 5"])[0] == 5
    init_pid = c.state().init_process_pid
    c.signal(signal.SIGTERM)
    _, status = os.waitpid(init_pid, 0)  # re-parented to us (the tests' subreaper) when stage 1 exited
    assert os.WEXITSTATUS(status) == 6


def test_set_refused_before_start_and_stats_of_a_created_container(runtime, busybox_config):
    """set() needs a live init (runc: "container not running"); stats() of a created one reads its cgroup."""
    from declarative_ct.errors import ContainerNotRunning

    c = runtime.create(unique_id("setcreated"), busybox_config())
    with pytest.raises(ContainerNotRunning):
        c.set(c.config)
    c.start(Process(args=["/bin/true"]))
    assert c.stats().cgroup_stats.pids_stats.current == 1  # init, blocked on the exec fifo
    c.destroy()
    with pytest.raises(ContainerNotRunning):
        c.stats()


def test_exit_recorded_without_a_private_pid_namespace(runtime, busybox_config, wait_for):
    """Regression: an orphan re-parented to the monitor was taken for init, and the exit code was lost."""
    from declarative_ct.configs import Namespace

    cfg = busybox_config()
    cfg.namespaces = [Namespace(t) for t in ("NEWNS", "NEWUTS", "NEWIPC", "NEWNET", "NEWCGROUP")]
    c = runtime.create(unique_id("hostpid"), cfg)
    c.run(Process(["/bin/sh", "-c", "(sleep 0.1 &); sleep 0.5; exit 3"]))
    record = wait_for(c.exit_status, timeout=5)
    assert record["exit_code"] == 3


def test_joining_a_namespace_of_the_wrong_type_is_refused(runtime, busybox_config):
    """A mount-namespace file listed as the network namespace is refused at create, by its type
    (``NS_GET_NSTYPE``); setns, given the expected type, would refuse it too."""
    from declarative_ct.configs import Namespace
    from declarative_ct.errors import ConfigInvalid

    cfg = busybox_config()
    cfg.namespaces = [ns for ns in cfg.namespaces if ns.type != "NEWNET"] + [
        Namespace("NEWNET", f"/proc/{os.getpid()}/ns/mnt")]
    cid = unique_id("nstype")
    with pytest.raises(ConfigInvalid, match="is a mount namespace, not a network one"):
        runtime.create(cid, cfg)
    assert not os.path.exists(os.path.join(runtime.root, cid))
