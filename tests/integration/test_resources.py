"""Resource limits on real containers (this machine's cgroup v1): OOM, pids, CPU quota, live set(), stats()."""

from __future__ import annotations

import glob
import os
import time

import pytest

from conftest import exec_in, unique_id, wait_for
from declarative_ct.configs import Config, Resources
from declarative_ct.errors import ConfigInvalid, ContainerNotRunning, SystemError
from declarative_ct.runtime import Process, Runtime

pytestmark = pytest.mark.integration
MiB = 1 << 20


def _running(runtime, config: Config, prefix: str, script: str):
    c = runtime.create(unique_id(prefix), config)
    c.run(Process(["/bin/sh", "-c", script]))
    return c


def _file(container, controller: str, name: str) -> str:
    with open(os.path.join(container.state().cgroup_paths[controller], name)) as f:
        return f.read().strip()


def _update(container, **limits) -> None:
    cfg = Config(rootfs=container.config.rootfs)
    cfg.cgroups.resources = Resources(**limits)
    container.set(cfg)


def _stop(container) -> None:
    container.signal(9)
    wait_for(lambda: container.exit_status(), message=f"{container.id} to exit")
    container.destroy()


def test_allocating_past_the_memory_limit_is_oom_killed_and_recorded(runtime, busybox_config):
    cfg = busybox_config()
    cfg.cgroups.resources.memory = 16 * MiB
    c = _running(runtime, cfg, "oom", "x=aaaaaaaa; while :; do x=$x$x; done")
    record = wait_for(c.exit_status, 20, message="the OOM kill")
    assert record["signal"] == 9 and record["exit_code"] == 137
    assert record["oom_killed"] is True
    c.destroy()


def test_a_normal_exit_is_not_reported_as_oom(runtime, busybox_config):
    cfg = busybox_config()
    cfg.cgroups.resources.memory = 16 * MiB
    c = _running(runtime, cfg, "nooom", "exit 3")
    record = wait_for(c.exit_status, message="the exit")
    assert (record["exit_code"], record["oom_killed"]) == (3, False)
    c.destroy()


def test_a_fork_loop_stops_at_the_pids_limit(runtime, busybox_config):
    cfg = busybox_config()
    cfg.cgroups.resources.pids_limit = 8
    c = _running(runtime, cfg, "pids", "sleep 60")
    try:
        loop = "i=0; while [ $i -lt 40 ]; do sleep 60 >/dev/null 2>&1 & i=$((i+1)); done 2>&1; wait"
        code, out = exec_in(c, ["/bin/sh", "-c", loop])
        assert code != 0 and "can't fork" in out  # the shell met EAGAIN and gave up
        pids = c.stats().cgroup_stats.pids_stats
        # At the refused fork: init, the shell and 6 sleeps = 8; the shell has exited since.
        assert (pids.current, pids.limit) == (7, 8)
        assert len(c.processes()) == 7
        assert _file(c, "pids", "pids.max") == "8"
        assert int(_file(c, "pids", "pids.events").split()[1]) > 0  # forks refused at the limit
    finally:
        _stop(c)


def test_a_busy_loop_under_cpus_0_2_uses_about_0_2_cpu(runtime, busybox_config):
    cfg = busybox_config()
    cfg.cgroups.resources.cpu_quota, cfg.cgroups.resources.cpu_period = 20000, 100000  # cpus: 0.2
    c = _running(runtime, cfg, "cpu", "while :; do :; done")
    try:
        time.sleep(0.3)  # let it reach steady state
        before, t0 = c.stats().cgroup_stats.cpu_stats, time.monotonic()
        time.sleep(2.0)
        after, t1 = c.stats().cgroup_stats.cpu_stats, time.monotonic()
        used = (after.cpu_usage.total_usage - before.cpu_usage.total_usage) / 1e9 / (t1 - t0)
        assert 0.12 <= used <= 0.3, f"used {used:.3f} CPUs under a 0.2 quota"
        assert after.throttling_data.throttled_periods > before.throttling_data.throttled_periods
    finally:
        _stop(c)


def test_set_raises_and_lowers_limits_live_and_persists_them(runtime, busybox_config):
    cfg = busybox_config()
    cfg.cgroups.resources.memory = 64 * MiB
    c = _running(runtime, cfg, "setlive", "sleep 60")
    try:
        pid = c.state().init_process_pid
        _update(c, memory=128 * MiB, memory_swap=256 * MiB, pids_limit=50, cpu_shares=512, cpuset_cpus="0")
        assert _file(c, "memory", "memory.limit_in_bytes") == str(128 * MiB)
        assert _file(c, "memory", "memory.memsw.limit_in_bytes") == str(256 * MiB)
        assert (_file(c, "pids", "pids.max"), _file(c, "cpu", "cpu.shares"), _file(c, "cpuset", "cpuset.cpus")) == (
            "50", "512", "0")
        _update(c, memory=32 * MiB, memory_swap=32 * MiB, pids_limit=-1, cpu_quota=50000)
        assert _file(c, "memory", "memory.limit_in_bytes") == str(32 * MiB)
        assert _file(c, "memory", "memory.memsw.limit_in_bytes") == str(32 * MiB)
        assert (_file(c, "pids", "pids.max"), _file(c, "cpu", "cpu.cfs_quota_us")) == ("max", "50000")
        saved = runtime.load(c.id)
        assert saved.config.cgroups.resources.limits() == {
            "memory": 32 * MiB, "memory_swap": 32 * MiB, "cpu_shares": 512, "cpu_quota": 50000,
            "cpuset_cpus": "0", "pids_limit": -1}
        assert saved.state().init_process_pid == pid  # live: the same init
        _update(c, memory=-1)  # unlimited lifts memory+swap too
        assert int(_file(c, "memory", "memory.limit_in_bytes")) >= 1 << 62
        assert int(_file(c, "memory", "memory.memsw.limit_in_bytes")) >= 1 << 62
    finally:
        _stop(c)


def test_a_refused_write_rolls_back_what_was_written(runtime, busybox_config):
    """memory_swap is raised first, then the kernel refuses memory below usage: memsw goes back."""
    cfg = busybox_config()
    cfg.cgroups.resources.memory = cfg.cgroups.resources.memory_swap = 64 * MiB
    # ~24 MiB of anonymous memory that cannot be reclaimed (no swap may be used: memsw == memory)
    c = _running(runtime, cfg, "rollback", "x=$(head -c 25000000 /dev/zero | tr '\\0' a); echo ready; sleep 60")
    try:
        wait_for(lambda: c.stats().cgroup_stats.memory_stats.usage.usage > 20 * MiB, message="the allocation")
        with pytest.raises(SystemError, match="below what the container uses now.*previous values restored"):
            _update(c, memory=4 * MiB, memory_swap=-1)
        assert _file(c, "memory", "memory.limit_in_bytes") == str(64 * MiB)
        assert _file(c, "memory", "memory.memsw.limit_in_bytes") == str(64 * MiB)
        assert runtime.load(c.id).config.cgroups.resources.memory_swap == 64 * MiB
        assert c.status().value == "running"
    finally:
        _stop(c)


@pytest.mark.parametrize("limits, message", [
    ({"cpuset_cpus": "0-63"}, "cpuset_cpus: '0-63' includes"),
    ({"memory": 64 * MiB, "memory_swap": 32 * MiB}, "below memory"),
    ({"memory": -5}, "non-negative integer, or -1"),
    ({"cpu_shares": 1}, "[2, 262144]"),
    ({"memory_swap": 32 * MiB}, "below memory"),  # the kept memory limit is 48Mi
])
def test_bad_updates_change_nothing(runtime, busybox_config, limits, message):
    cfg = busybox_config()
    cfg.cgroups.resources.memory = 48 * MiB
    c = _running(runtime, cfg, "badset", "sleep 60")
    try:
        before = {n: _file(c, ctl, n) for ctl, n in (("memory", "memory.limit_in_bytes"), ("cpuset", "cpuset.cpus"),
                                                     ("cpu", "cpu.shares"), ("memory", "memory.memsw.limit_in_bytes"))}
        with pytest.raises(ConfigInvalid) as info:
            _update(c, **limits)
        assert message in str(info.value)
        assert {n: _file(c, ctl, n) for ctl, n in (("memory", "memory.limit_in_bytes"), ("cpuset", "cpuset.cpus"),
                                                   ("cpu", "cpu.shares"),
                                                   ("memory", "memory.memsw.limit_in_bytes"))} == before
        assert runtime.load(c.id).config.cgroups.resources.limits() == {"memory": 48 * MiB}
    finally:
        _stop(c)


def test_set_on_a_stopped_container_is_refused(runtime, busybox_config):
    c = _running(runtime, busybox_config(), "setstopped", "true")
    wait_for(c.exit_status, message="the exit")
    with pytest.raises(ContainerNotRunning, match="stopped"):
        _update(c, memory=64 * MiB)
    c.destroy()


def test_a_limit_refused_at_create_leaves_nothing(runtime, busybox_config, cgroup_dirs):
    """Limits apply at "ready" (runc's procReady); refused there, the create is undone."""
    from declarative_ct.configs import ThrottleDevice

    cfg = busybox_config()
    cfg.cgroups.resources.blkio_throttle_read_bps_device = [ThrottleDevice(254, 99, 1000)]  # no such disk
    cid = unique_id("refused")
    c = runtime.create(cid, cfg)
    with pytest.raises(SystemError, match="254:99 1000.*No such device"):
        c.run(Process(["/bin/true"]))
    assert cgroup_dirs(cid) == []
    assert not os.path.exists(os.path.join(runtime.root, cid))


def test_stats_match_the_cgroup_files(runtime, busybox_config):
    cfg = busybox_config()
    cfg.cgroups.resources.memory, cfg.cgroups.resources.pids_limit = 96 * MiB, 30
    c = _running(runtime, cfg, "stats", "sleep 60 & sleep 60")
    try:
        wait_for(lambda: len(c.processes()) == 2, message="two tasks")
        cpu_before = int(_file(c, "cpuacct", "cpuacct.usage"))
        st = c.stats().cgroup_stats
        cpu_after = int(_file(c, "cpuacct", "cpuacct.usage"))
        assert cpu_before <= st.cpu_stats.cpu_usage.total_usage <= cpu_after
        assert len(st.cpu_stats.cpu_usage.percpu_usage) == os.cpu_count()
        assert sum(st.cpu_stats.cpu_usage.percpu_usage) == pytest.approx(st.cpu_stats.cpu_usage.total_usage,
                                                                          rel=0.05, abs=5_000_000)
        assert st.memory_stats.usage.limit == 96 * MiB
        assert st.memory_stats.usage.failcnt == int(_file(c, "memory", "memory.failcnt"))
        raw = dict(line.split() for line in _file(c, "memory", "memory.stat").splitlines())
        assert st.memory_stats.stats["hierarchical_memory_limit"] == int(raw["hierarchical_memory_limit"])
        assert st.memory_stats.cache == st.memory_stats.stats["cache"]
        assert (st.pids_stats.current, st.pids_stats.limit) == (2, 30)
        assert st.blkio_stats is not None
        assert c.stats().to_dict()["cgroup_stats"]["pids_stats"] == {"current": 2, "limit": 30}
    finally:
        _stop(c)


def test_memory_and_swap_change_as_a_pair(runtime, busybox_config):
    """Updating one of memory/memory_swap keeps the other (v2's swap.max is their difference)."""
    cfg = busybox_config()
    cfg.cgroups.resources.memory, cfg.cgroups.resources.memory_swap = 64 * MiB, 128 * MiB
    c = _running(runtime, cfg, "pair", "sleep 60")
    try:
        _update(c, memory_swap=96 * MiB)
        assert _file(c, "memory", "memory.limit_in_bytes") == str(64 * MiB)
        assert _file(c, "memory", "memory.memsw.limit_in_bytes") == str(96 * MiB)
        _update(c, memory=80 * MiB)
        assert _file(c, "memory", "memory.memsw.limit_in_bytes") == str(96 * MiB)
        with pytest.raises(ConfigInvalid, match="100Mi is above the container's memory . swap limit 96Mi"):
            _update(c, memory=100 * MiB)
        assert runtime.load(c.id).config.cgroups.resources.limits() == {"memory": 80 * MiB,
                                                                        "memory_swap": 96 * MiB}
    finally:
        _stop(c)


def test_set_through_two_handles_keeps_both_updates(runtime, busybox_config):
    """Regression: set() merged into the handle's stale config, losing another handle's update."""
    c = _running(runtime, busybox_config(), "handles", "sleep 60")
    other = runtime.load(c.id)
    try:
        _update(c, pids_limit=10)
        _update(other, memory=64 * MiB)
        assert runtime.load(c.id).config.cgroups.resources.limits() == {"memory": 64 * MiB, "pids_limit": 10}
        assert _file(c, "pids", "pids.max") == "10"
    finally:
        _stop(c)


def test_unlimited_memory_lifts_swap_in_the_saved_config_too(runtime, busybox_config):
    """Regression: the kernel's memsw was lifted but state.json kept the old swap, re-imposed later."""
    cfg = busybox_config()
    cfg.cgroups.resources.memory, cfg.cgroups.resources.memory_swap = 64 * MiB, 128 * MiB
    c = _running(runtime, cfg, "unlim", "sleep 60")
    try:
        _update(c, memory=-1)
        assert runtime.load(c.id).config.cgroups.resources.limits() == {"memory": -1, "memory_swap": -1}
        _update(c, memory=32 * MiB)
        assert int(_file(c, "memory", "memory.memsw.limit_in_bytes")) >= 1 << 62
    finally:
        _stop(c)


def test_stats_before_start_raises_and_the_same_handle_reads_after_start(runtime, busybox_config):
    """Regression: files read before the cgroup existed were remembered as absent for good."""
    c = runtime.create(unique_id("early"), busybox_config())
    with pytest.raises(ContainerNotRunning, match="has not been started"):
        c.stats()
    c.run(Process(["/bin/sleep", "60"]))
    try:
        st = c.stats().cgroup_stats
        assert st.memory_stats.usage.usage > 0 and st.pids_stats.current == 1
    finally:
        _stop(c)


def test_the_first_container_of_a_new_root_takes_a_pids_limit(busybox_config, unique_id, tmp_path,
                                                               register_state_root):
    """Regression: the check looked for pids.max in the nearest existing cgroup, the hierarchy's
    root (no per-root parent yet), which has none: 'pids.max is not available (kernel too old)'."""
    runtime = Runtime(register_state_root(tmp_path / "fresh-root"))
    assert not glob.glob(f"/sys/fs/cgroup/*/{runtime.cgroup_parent}")
    cfg = busybox_config()
    cfg.cgroups.resources = Resources(pids_limit=16)
    runtime.check(unique_id("pfirst"), cfg)  # and no probe or parent cgroup is left by the check
    assert not glob.glob("/sys/fs/cgroup/*/dct-probe-*")
    assert not glob.glob(f"/sys/fs/cgroup/*/{runtime.cgroup_parent}")
    c = runtime.create(unique_id("pfirst"), cfg)
    c.run(Process(["sleep", "100"]))
    assert c.stats().cgroup_stats.pids_stats.limit == 16
