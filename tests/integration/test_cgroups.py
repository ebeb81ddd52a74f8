"""cgroup drivers against the real kernel: v1 (what this host mounts) and v2 (the hybrid host's unified tree)."""

from __future__ import annotations

import glob
import os
import signal
import subprocess

import pytest

from declarative_ct.runtime import Process, Status, cgroups
from declarative_ct.runtime.cgroups.v2 import V2Manager

UNIFIED = "/sys/fs/cgroup/unified"

pytestmark = pytest.mark.integration


def _unified_available() -> bool:
    return os.path.exists(os.path.join(UNIFIED, "cgroup.controllers"))


needs_unified = pytest.mark.skipif(not _unified_available(), reason="no cgroup2 hierarchy at " + UNIFIED)


@pytest.fixture
def sleeper():
    """A host process (not a container) to move between cgroups; killed and reaped at teardown."""
    proc = subprocess.Popen(["sleep", "60"])
    yield proc
    proc.kill()
    proc.wait()


@needs_unified
def test_v2_manager_on_the_real_unified_hierarchy(sleeper, unique_id):
    mgr = V2Manager(os.path.join(UNIFIED, "dct", unique_id("v2")))
    try:
        mgr.create()
        assert mgr.exists() and mgr.paths() == {"": mgr.paths()[""]}
        mgr.add(sleeper.pid)
        assert mgr.get_all_pids() == [sleeper.pid]
        assert mgr.freezer_state() == cgroups.THAWED
        mgr.freeze()
        assert mgr.freezer_state() == cgroups.FROZEN
        with open(f"/proc/{sleeper.pid}/stat") as f:
            assert f.read().split(") ")[1][0] in "SD"  # frozen tasks sleep in the freezer
        mgr.thaw()
        assert mgr.freezer_state() == cgroups.THAWED
        mgr.kill_all(signal.SIGKILL)  # cgroup.kill on kernels >= 5.14
        assert sleeper.wait(timeout=5) == -signal.SIGKILL
        mgr.destroy()
        assert not mgr.exists()
    finally:
        if mgr.exists():
            try:
                mgr.kill_all(signal.SIGKILL)
                sleeper.wait(timeout=5)
            finally:
                mgr.destroy()


@pytest.fixture
def v2_runtime(monkeypatch, runtime):
    """``runtime`` on the v2 driver; the variable stays set until its cleanup has run (it depends on us)."""
    monkeypatch.setenv(cgroups.V2_MOUNT_ENV, UNIFIED)
    return runtime


@needs_unified
def test_container_on_the_v2_driver(v2_runtime, busybox_config, unique_id, wait_for):
    runtime = v2_runtime
    c = runtime.create(unique_id("v2c"), busybox_config())
    c.run(Process(["/bin/sh", "-c", "sleep 60 & sleep 60"]))
    path = c.state().cgroup_paths[""]
    assert path == os.path.join(UNIFIED, runtime.cgroup_parent, c.id)
    wait_for(lambda: len(c.processes()) == 2)
    with open(os.path.join(path, "cgroup.procs")) as f:
        assert sorted(int(x) for x in f.read().split()) == c.processes()
    c.pause()
    assert c.status() == Status.PAUSED
    c.resume()
    assert c.status() == Status.RUNNING
    c.signal(signal.SIGKILL, all=True)
    wait_for(lambda: c.status() == Status.STOPPED)
    c.destroy()
    assert not os.path.exists(path)


def test_v1_device_allow_list_denies_block_devices(run_container, busybox_config):
    """CAP_MKNOD is in the default set; the devices cgroup is what keeps the host's disks out."""
    if "devices" not in cgroups.detect()[1]:
        pytest.skip("no v1 devices controller")
    node = f"/tmp/blk-{os.getpid()}-{os.urandom(4).hex()}"  # the busybox rootfs is shared by the session
    script = (f"mknod {node} b 7 0 && (head -c1 {node} >/dev/null 2>&1 && echo READ || echo DENIED); "
              f"rm -f {node}; head -c1 /dev/zero | wc -c")
    done = run_container(busybox_config(), ["/bin/sh", "-c", script])
    assert done.stdout.split() == ["DENIED", "1"], done.stderr


def test_detect_reads_mountinfo():
    kind, mounts = cgroups.detect()
    assert kind in ("v1", "v2")
    for path in mounts.values():
        assert os.path.isdir(path)
    if kind == "v1":
        assert "freezer" in mounts and "pids" in mounts


def test_the_cgroup_mounts_are_read_again_after_a_mount_and_an_unmount(tmp_path):
    """detect() keeps what it read of /proc/self/mountinfo until the kernel flags a change (POLLPRI)."""
    from declarative_ct.runtime.cgroups import _mountinfo

    where = str(tmp_path / "cg2")
    os.mkdir(where)
    _mountinfo()  # primed
    assert where not in [point for point, _, _ in _mountinfo()]
    subprocess.run(["mount", "-t", "cgroup2", "none", where], check=True)
    try:
        assert (where, "cgroup2") in [(point, fstype) for point, fstype, _ in _mountinfo()]
    finally:
        subprocess.run(["umount", where], check=True)
    assert where not in [point for point, _, _ in _mountinfo()]


@needs_unified
def test_v2_without_device_enforcement_drops_cap_mknod(monkeypatch, run_container, busybox_config):
    """The v2 driver cannot apply device rules yet (eBPF), so CAP_MKNOD goes: no node for a host disk."""
    monkeypatch.setenv(cgroups.V2_MOUNT_ENV, UNIFIED)
    node = f"/tmp/blk-{os.getpid()}-{os.urandom(4).hex()}"
    done = run_container(busybox_config(), ["/bin/sh", "-c",
                                            f"grep CapEff /proc/self/status; mknod {node} b 7 0 && echo MADE"])
    cap_eff = int(done.stdout.split()[1], 16)
    assert not cap_eff & (1 << 27)  # CAP_MKNOD
    assert "MADE" not in done.stdout and "Operation not permitted" in done.stderr


@needs_unified
def test_v2_sigkill_all_of_a_paused_container_stops_it(v2_runtime, busybox_config, unique_id, wait_for):
    """Regression: cgroup.kill left cgroup.freeze at 1, so a paused container never died (delete --force hung)."""
    c = v2_runtime.create(unique_id("v2kp"), busybox_config())
    c.run(Process(["/bin/sh", "-c", "sleep 60 & sleep 60"]))
    c.pause()
    c.signal(signal.SIGKILL, all=True)
    wait_for(lambda: c.status() == Status.STOPPED, timeout=3)
    c.destroy()
    assert not os.path.exists(os.path.join(UNIFIED, v2_runtime.cgroup_parent, c.id))


def test_signal_all_keeps_a_paused_container_paused(runtime, busybox_config, unique_id, wait_for):
    """Regression: kill --all with a non-fatal signal used to thaw a paused container."""
    c = runtime.create(unique_id("kap"), busybox_config())
    c.run(Process(["/bin/sh", "-c", "trap '' USR2; sleep 60"]))
    c.pause()
    c.signal(signal.SIGUSR2, all=True)
    assert c.status() == Status.PAUSED
    c.signal(signal.SIGKILL, all=True)
    wait_for(lambda: c.status() == Status.STOPPED, timeout=3)


def test_cleanup_finds_a_custom_cgroup_of_an_aborted_create(runtime, sleeper, unique_id):
    """Regression: cleanup derived dct/<id>, so an aborted create with linux.cgroupsPath leaked its cgroup."""
    from declarative_ct.runtime import store

    cid = unique_id("abrt")
    mgr = cgroups.new_manager(cid, path=f"/dct/{cid}-custom")
    os.makedirs(os.path.join(runtime.root, cid))
    store.write_json_atomic(os.path.join(runtime.root, cid, store.CGROUP_FILE), mgr.paths())
    try:
        mgr.create()
        mgr.add(sleeper.pid)
        assert runtime.cleanup(cid) is True
        assert sleeper.wait(timeout=5) == -signal.SIGKILL
        assert not mgr.exists() and not os.path.exists(os.path.join(runtime.root, cid))
    finally:
        if mgr.exists():
            mgr.kill_all(signal.SIGKILL)
            mgr.destroy()


@needs_unified
def test_v2_stats_and_limits_on_the_real_unified_hierarchy(v2_runtime, busybox_config, unique_id, wait_for):
    """What this hybrid host's cgroup2 offers: core cpu.stat accounting, no controllers to enable."""
    from declarative_ct.configs import Config, Resources
    from declarative_ct.errors import ConfigInvalid

    runtime = v2_runtime
    cfg = busybox_config()
    cfg.cgroups.resources.memory = 64 << 20
    # On this hybrid host memory belongs to v1: the unified mount cannot offer it.
    with pytest.raises(ConfigInvalid, match=r"resources.memory: this cgroup2 mount \(/sys/fs/cgroup/unified\) has no "
                                            r"memory controller at all: it is bound to a cgroup v1 hierarchy"):
        runtime.create(unique_id("v2lim"), cfg).run(Process(["/bin/true"]))
    assert not glob.glob(os.path.join(UNIFIED, "dct*", "t-v2lim*"))
    c = runtime.create(unique_id("v2stats"), busybox_config())
    c.run(Process(["/bin/sh", "-c", "i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done; sleep 60"]))
    try:
        path = c.state().cgroup_paths[""]
        wait_for(lambda: c.stats().cgroup_stats.cpu_stats.cpu_usage.total_usage > 0)
        with open(os.path.join(path, "cpu.stat")) as f:
            usec = int(f.readline().split()[1])
        st = c.stats().cgroup_stats
        assert st.cpu_stats.cpu_usage.total_usage >= usec * 1000
        assert st.memory_stats is None and st.pids_stats is None  # controllers not enabled here
        update = Config(rootfs=c.config.rootfs)
        update.cgroups.resources = Resources(pids_limit=10)
        with pytest.raises(ConfigInvalid, match="has no pids controller at all"):
            c.set(update)
    finally:
        c.signal(signal.SIGKILL)
        wait_for(lambda: c.status() == Status.STOPPED)
        c.destroy()
