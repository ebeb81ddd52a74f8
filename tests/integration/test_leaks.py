"""Nothing leaks: a manager killed mid-way, an aborted create, and many lifecycles in a row."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import psutil
import pytest

from conftest import BUSYBOX, cgroup_dirs, live_descendants, read_log, reap_zombies, unique_id, wait_for
from declarative_ct.errors import ContainerNotExists
from declarative_ct.runtime import Process, Runtime, Status, cgroups, procfs, store

pytestmark = pytest.mark.integration

# A manager that creates and starts a container (no exec), prints init's pid and SIGKILLs itself.
_KILLED_MANAGER = r"""
import os, signal, sys
from declarative_ct.configs import Config
from declarative_ct.runtime import Process, Runtime
root, cid, rootfs, use_monitor = sys.argv[1:5]
c = Runtime(root).create(cid, Config(rootfs=rootfs, hostname="orphan"))
c.start(Process(["/bin/sh", "-c", "echo released; exit 4"]), monitor=use_monitor == "1")
print(c.state().init_process_pid, c.state().init_process_start, flush=True)
os.kill(os.getpid(), signal.SIGKILL)
"""


def _run_killed_manager(root, cid, rootfs, monitor):
    proc = subprocess.run([sys.executable, "-c", _KILLED_MANAGER, root, cid, rootfs, "1" if monitor else "0"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == -9, proc.stderr
    pid, start = map(int, proc.stdout.split())
    return pid, start


def _gone(pid, start):
    reap_zombies()  # an init without monitor is re-parented to us (the subreaper)
    st = procfs.stat(pid)
    return st is None or st[1] != start




def _zombie_children():
    out = []
    for p in psutil.Process().children():
        try:
            if p.status() == psutil.STATUS_ZOMBIE:
                out.append(p.pid)
        except psutil.NoSuchProcess:
            continue
    return out


def _mounts_mentioning(text):
    with open("/proc/self/mountinfo") as f:
        return [line for line in f if text in line]


@pytest.mark.parametrize("monitor", [True, False], ids=["monitor", "no-monitor"])
def test_manager_killed_between_create_and_start(state_root, busybox_rootfs, monitor):
    cid = unique_id("killedmgr")
    pid, start = _run_killed_manager(state_root, cid, busybox_rootfs, monitor)
    rt = Runtime(state_root)
    c = rt.load(cid)
    assert c.status() is Status.CREATED
    assert c.state().init_process_pid == pid
    assert procfs.is_alive(pid, start)
    paths = list(c.state().cgroup_paths.values())
    assert paths and all(os.path.isdir(p) for p in paths)
    assert [x.id for x in rt.list()] == [cid]
    c.destroy()
    assert not os.path.exists(os.path.join(state_root, cid))
    assert cgroup_dirs(cid) == []
    assert [p for p in paths if os.path.exists(p)] == []
    assert not procfs.is_alive(pid, start)
    wait_for(lambda: _gone(pid, start), message=f"init {pid} to disappear")


def test_orphaned_created_container_can_still_be_released(state_root, busybox_rootfs):
    cid = unique_id("orphanrun")
    pid, start = _run_killed_manager(state_root, cid, busybox_rootfs, True)
    c = Runtime(state_root).load(cid)
    assert c.status() is Status.CREATED
    c.exec()
    record = wait_for(c.exit_status, message="exit.json of the orphan")
    assert (record["pid"], record["exit_code"]) == (pid, 4)
    assert read_log(c, "stdout") == "released\n"
    c.destroy()
    assert not os.path.exists(c.state_dir) and cgroup_dirs(cid) == []


def test_manager_killed_before_state_json_is_cleaned(state_root):
    """Simulate a manager killed during create: a state dir and a cgroup with a process, no state.json."""
    cid = unique_id("nostate")
    rt = Runtime(state_root)
    os.makedirs(os.path.join(state_root, cid))
    os.mkfifo(os.path.join(state_root, cid, store.EXEC_FIFO))
    cg = cgroups.new_manager(cid)
    cg.create()
    # As start() does right after making the cgroup, before any process can be in it:
    store.write_json_atomic(os.path.join(state_root, cid, store.CGROUP_FILE), cg.paths())
    orphan = subprocess.Popen([BUSYBOX, "sleep", "1000"])
    try:
        cg.add(orphan.pid)
        assert orphan.pid in cg.get_all_pids()
        assert cgroup_dirs(cid)
        with pytest.raises(ContainerNotExists):
            rt.load(cid)
        assert rt.list() == []
        assert rt.exists(cid)
        rt.cleanup(cid)
        assert orphan.wait(timeout=5) == -9
    finally:
        if orphan.poll() is None:
            orphan.kill()
            orphan.wait()
        if cg.exists():
            cg.destroy()
    assert cgroup_dirs(cid) == []
    assert not os.path.exists(os.path.join(state_root, cid))
    assert not rt.exists(cid)
    rt.cleanup(cid)  # idempotent


def test_cleanup_of_a_bare_directory(state_root):
    cid = unique_id("bare")
    rt = Runtime(state_root)
    os.makedirs(os.path.join(state_root, cid))
    rt.cleanup(cid)
    assert not os.path.exists(os.path.join(state_root, cid))
    assert cgroup_dirs(cid) == []


def test_destroy_of_created_never_leaves_the_state_dir(runtime, busybox_config):
    """destroy() kills a created init; the monitor's exit.json must not resurrect the state dir.

    Repeated because it is a race between destroy's rmtree and the monitor writing exit.json.
    """
    left = []
    rounds = 100
    for _ in range(rounds):
        c = runtime.create(unique_id("destrace"), busybox_config())
        c.start(Process(["/bin/sleep", "1000"]))
        c.destroy()
        time.sleep(0.02)  # give the monitor time to act on init's death
        if os.path.exists(c.state_dir):
            left.append((c.id, sorted(os.listdir(c.state_dir))))
        reap_zombies()
    assert left == [], f"{len(left)}/{rounds} state dirs survived destroy(): {left[:3]}"


def test_destroy_right_after_sigkill_never_leaves_the_state_dir(runtime, busybox_config):
    """Same race for a running container destroyed as soon as its init is seen dead."""
    left = []
    rounds = 60
    for _ in range(rounds):
        c = runtime.create(unique_id("killrace"), busybox_config())
        c.start(Process(["/bin/sleep", "1000"]))
        c.exec()
        c.signal(9)
        wait_for(lambda: c.status() is Status.STOPPED, interval=0.001)
        c.destroy()
        time.sleep(0.02)
        if os.path.exists(c.state_dir):
            left.append((c.id, sorted(os.listdir(c.state_dir))))
        reap_zombies()
    assert left == [], f"{len(left)}/{rounds} state dirs survived destroy(): {left[:3]}"


def test_many_lifecycles_leave_nothing(runtime, busybox_config, tmp_path_factory):
    cycles = 200
    base = str(tmp_path_factory.getbasetemp())
    reap_zombies()
    procs_before = live_descendants()
    fds_before = sorted(os.listdir("/proc/self/fd"))
    mounts_before = _mounts_mentioning(base)
    cfg = busybox_config()
    ids = []
    t0 = time.monotonic()
    for i in range(cycles):
        c = runtime.create(unique_id("cycle"), cfg)
        ids.append(c.id)
        c.start(Process(["/bin/true"]))
        c.exec()
        record = wait_for(c.exit_status, interval=0.002, message=f"cycle {i} to exit")
        assert record["exit_code"] == 0
        c.destroy()
        assert not os.path.exists(c.state_dir), f"cycle {i}: state dir left"
        if i % 10 == 0:
            reap_zombies()
    elapsed = time.monotonic() - t0
    wait_for(lambda: live_descendants() <= procs_before, message="monitors of the cycles to exit")
    reap_zombies()
    assert _zombie_children() == []
    assert store.container_entries(runtime.root) == []
    leaked_cgroups = [d for cid in ids for d in cgroup_dirs(cid)]
    assert leaked_cgroups == []
    assert _mounts_mentioning(base) == mounts_before
    assert sorted(os.listdir("/proc/self/fd")) == fds_before, "the manager leaked file descriptors"
    assert elapsed < 30, f"{cycles} cycles took {elapsed:.1f}s"


def test_destroy_after_a_crash_half_way_removes_every_hierarchy(run_container, busybox_config, cgroup_dirs):
    """Regression: with the first controller's dir already gone, exists() was False and the rest leaked."""
    done = run_container(busybox_config(), ["/bin/true"])
    c = done.container
    paths = list(c.state().cgroup_paths.values())
    if len(paths) < 2:
        pytest.skip("needs several cgroup hierarchies (v1)")
    freezer = c.state().cgroup_paths.get("freezer", paths[0])
    os.rmdir(freezer)  # as if a destroy had died after its first rmdir
    c.destroy()
    assert cgroup_dirs(c.id) == []
    assert not os.path.exists(c.state_dir)


def test_cleanup_never_touches_a_cgroup_it_did_not_record(state_root):
    """A bare state dir whose id matches another root's running container: its cgroup is not ours."""
    cid = unique_id("foreign")
    cg = cgroups.new_manager(cid)
    cg.create()
    owner = subprocess.Popen([BUSYBOX, "sleep", "1000"])
    try:
        cg.add(owner.pid)
        os.makedirs(os.path.join(state_root, cid))
        Runtime(state_root).cleanup(cid)
        assert not os.path.exists(os.path.join(state_root, cid))
        assert owner.poll() is None and cg.get_all_pids() == [owner.pid]
    finally:
        owner.kill()
        owner.wait()
        cg.destroy()


def test_the_same_id_in_two_roots_gets_two_cgroups_and_destroying_one_spares_the_other(
        runtime, busybox_config, unique_id, tmp_path, register_state_root, wait_for, cgroup_dirs):
    """Regression (a new user's trial): the same id in two state roots shared the cgroup path; a
    container of root B started after A's stopped was SIGKILLed when A's was destroyed."""
    cid = unique_id("shared")
    a = runtime.create(cid, busybox_config())
    a.run(Process(["sleep", "1000"]))
    a.signal(9)
    wait_for(lambda: a.status() == Status.STOPPED)
    other = Runtime(register_state_root(tmp_path / "root-b"))
    b = other.create(cid, busybox_config())
    b.run(Process(["sleep", "1000"]))
    a.destroy()
    assert b.status() == Status.RUNNING and cgroup_dirs(cid)
    assert not os.path.exists(os.path.join(runtime.root, cid))
    b.signal(9)
    wait_for(lambda: b.status() == Status.STOPPED)
    b.destroy()
    assert not cgroup_dirs(cid)
