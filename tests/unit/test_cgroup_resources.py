"""cgroup resources: Resources.validate, the v1/v2 drivers' set()/check()/stats() and the fs helpers.

No real cgroups: each test builds a temporary tree holding the files (names and default
contents) a kernel shows for a fresh container cgroup, and replaces ``fs.write`` with
:class:`FakeCgroupfs`, which records every write and stores what cgroupfs would then show
(page-rounded memory limits, v1's huge "unlimited", one line per device in io.max and the
throttle files, re-formatted cpu lists, v1's memory <= memory+swap rule). Reads go to the files.
"""

from __future__ import annotations

import errno
import json
import os

import pytest

from declarative_ct import errors
from declarative_ct.configs import Resources, ThrottleDevice, pair_memory_swap, parse_cpu_list
from declarative_ct.errors import ConfigInvalid
from declarative_ct.runtime import stats as stats_mod
from declarative_ct.runtime.cgroups import check_cpuset, fs
from declarative_ct.runtime.cgroups.v1 import V1Manager
from declarative_ct.runtime.cgroups.v2 import (MAX_UINT64, V2Manager, blkio_weight_to_io_weight,
                                                cpu_shares_to_weight, swap_to_v2)
from declarative_ct.runtime.stats import (BlkioStatEntry, BlkioStats, CgroupStats, CpuStats, CpuUsage, MemoryData,
                                          MemoryStats, NetworkInterface, PidsStats, Stats, ThrottlingData,
                                          events_data)

MI = 1 << 20
PAGE = fs.PAGE_SIZE
CLK_TCK = os.sysconf("SC_CLK_TCK")
V1_UNLIMITED = 9223372036854771712  # what v1 memory.*limit_in_bytes shows for -1 (2^63 - 4096)
IO_KEYS = ("rbps", "wbps", "riops", "wiops")
V1_MEMORY_LIMITS = ("memory.limit_in_bytes", "memory.memsw.limit_in_bytes", "memory.soft_limit_in_bytes",
                    "memory.kmem.limit_in_bytes")
V2_MEMORY_LIMITS = ("memory.max", "memory.low", "memory.min", "memory.high", "memory.swap.max")


# -- a stand-in for cgroupfs behind fs.write ----------------------------------------------------------

def _write(directory, name, text=""):
    os.makedirs(directory, exist_ok=True)
    with open(os.path.join(directory, name), "w") as f:
        f.write(text)


def _read(directory, name):
    with open(os.path.join(directory, name)) as f:
        return f.read()


def _snapshot(root):
    """``{relative path: content}`` of every file under ``root``."""
    out = {}
    for dirpath, _, names in os.walk(root):
        for name in names:
            out[os.path.relpath(os.path.join(dirpath, name), root)] = _read(dirpath, name)
    return out


def _cpu_ranges(text):
    """The kernel's re-formatting of a cpu list: ``"0,1,3"`` shows as ``"0-1,3"``."""
    groups: list[list[int]] = []
    for cpu in sorted(parse_cpu_list(text)):
        if groups and cpu == groups[-1][1] + 1:
            groups[-1][1] = cpu
        else:
            groups.append([cpu, cpu])
    return ",".join(str(a) if a == b else f"{a}-{b}" for a, b in groups)


class _Refused(Exception):
    def __init__(self, code):
        self.code = code


class FakeCgroupfs:
    """Replaces ``fs.write``: records ``(file name, value)``, then stores what the kernel would show.

    ``refuse[name] = errno`` fails every write to that file, ``refuse_once`` only the next one,
    ``refuse_value[(name, value)]`` the next write of that value (as fs.write does: a
    CgroupWriteError with the path, value and errno); ``mangle[name] = text`` makes the next write to that
    file show ``text`` instead (a read-back mismatch).
    """

    def __init__(self):
        self.writes: list[tuple[str, str]] = []
        self.refuse: dict[str, int] = {}
        self.refuse_once: dict[str, int] = {}
        self.refuse_value: dict[tuple[str, str], int] = {}
        self.mangle: dict[str, str] = {}

    def __call__(self, directory, name, value):
        self.writes.append((name, value))
        path = os.path.join(directory, name)
        code = (self.refuse_once.pop(name, None) or self.refuse_value.pop((name, value), None)
                or self.refuse.get(name))
        if code is None and not os.path.isfile(path):
            code = errno.ENOENT  # cgroupfs never creates files
        if code is None:
            try:
                shown = self.mangle.pop(name, None)
                if shown is None:
                    shown = self._show(directory, name, value.strip(), _read(directory, name))
            except _Refused as refused:
                code = refused.code
            else:
                _write(directory, name, shown)
                return
        raise errors.CgroupWriteError(path, value, code)

    @staticmethod
    def _show(directory, name, value, old):
        if name == "io.max":
            entries = {dev: dict(kv.split("=", 1) for kv in rest.split())
                       for dev, rest in fs.device_entries(old).items()}
            dev, _, rest = value.partition(" ")
            entry = entries.setdefault(dev, dict.fromkeys(IO_KEYS, "max"))
            for kv in rest.split():
                key, _, val = kv.partition("=")
                if key not in IO_KEYS:
                    raise _Refused(errno.EINVAL)
                entry[key] = val
            if all(v == "max" for v in entry.values()):
                del entries[dev]
            return "".join(f"{d} " + " ".join(f"{k}={e[k]}" for k in IO_KEYS) + "\n" for d, e in entries.items())
        if name.startswith("blkio.throttle.") and name.endswith("_device"):
            entries = fs.device_entries(old)
            dev, _, rate = value.partition(" ")
            if rate == "0":
                entries.pop(dev, None)
            else:
                entries[dev] = rate
            return "".join(f"{d} {r}\n" for d, r in entries.items())
        if name in V1_MEMORY_LIMITS:
            limit = V1_UNLIMITED if value == "-1" else int(value) // PAGE * PAGE
            memsw = os.path.join(directory, "memory.memsw.limit_in_bytes")
            if name == "memory.limit_in_bytes" and os.path.exists(memsw) and limit > int(_read(directory, memsw)):
                raise _Refused(errno.EINVAL)  # memory may never exceed memory+swap
            if name == "memory.memsw.limit_in_bytes" and limit < int(_read(directory, "memory.limit_in_bytes")):
                raise _Refused(errno.EINVAL)
            return f"{limit}\n"
        if name in V2_MEMORY_LIMITS:
            return "max\n" if value == "max" else f"{int(value) // PAGE * PAGE}\n"
        if name in ("cpuset.cpus", "cpuset.mems"):
            return _cpu_ranges(value) + "\n"
        if name in ("io.weight", "io.bfq.weight"):
            return f"default {value.split()[-1]}\n"
        return value + "\n"


@pytest.fixture
def kernel(monkeypatch):
    fake = FakeCgroupfs()
    monkeypatch.setattr(fs, "write", fake)
    return fake


def _names(writes):
    return [name for name, _ in writes]


# -- faithful trees ------------------------------------------------------------------------------

V2_CONTROLLERS = "cpuset cpu io memory pids"
V2_MEMORY_STAT = (
    "anon 31457280\nfile 18874368\nkernel 2027520\nkernel_stack 98304\npagetables 217088\nsec_pagetables 0\n"
    "percpu 2400\nsock 0\nvmalloc 0\nshmem 0\nzswap 0\nzswapped 0\nfile_mapped 9461760\nfile_dirty 4096\n"
    "file_writeback 0\nswapcached 0\nanon_thp 0\nfile_thp 0\nshmem_thp 0\ninactive_anon 31453184\n"
    "active_anon 4096\ninactive_file 12582912\nactive_file 6291456\nunevictable 0\nslab_reclaimable 1142784\n"
    "slab_unreclaimable 491520\nslab 1634304\nworkingset_refault_anon 0\nworkingset_refault_file 0\n"
    "workingset_activate_anon 0\nworkingset_activate_file 0\nworkingset_restore_anon 0\n"
    "workingset_restore_file 0\nworkingset_nodereclaim 0\npgscan 0\npgsteal 0\npgfault 12345\npgmajfault 12\n"
    "pgrefill 0\npgactivate 3\npgdeactivate 0\npglazyfree 0\npglazyfreed 0\nthp_fault_alloc 0\n"
    "thp_collapse_alloc 0\n")
V2_CPU_STAT = ("usage_usec 1234567\nuser_usec 1000000\nsystem_usec 234567\ncore_sched.force_idle_usec 0\n"
               "nr_periods 50\nnr_throttled 3\nthrottled_usec 45678\nnr_bursts 0\nburst_usec 0\n")
V2_IO_STAT = ("8:0 rbytes=1459200 wbytes=314773504 rios=192 wios=353 dbytes=0 dios=0\n"
              "253:0 rbytes=4096 wbytes=0 rios=1 wios=0 dbytes=0 dios=0\n")


def v2_files(**overrides):
    """What a kernel shows in a new container cgroup with ``cpuset cpu io memory pids`` enabled."""
    files = {
        "cgroup.controllers": V2_CONTROLLERS + "\n",
        "cgroup.subtree_control": "\n",
        "cgroup.procs": "",
        "cgroup.type": "domain\n",
        "cgroup.events": "populated 1\nfrozen 0\n",
        "cgroup.freeze": "0\n",
        "memory.max": "max\n",
        "memory.high": "max\n",
        "memory.low": "0\n",
        "memory.min": "0\n",
        "memory.swap.max": "max\n",
        "memory.swap.current": "1048576\n",
        "memory.current": "52359168\n",
        "memory.peak": "61865984\n",
        "memory.events": "low 0\nhigh 0\nmax 7\noom 2\noom_kill 1\noom_group_kill 0\n",
        "memory.stat": V2_MEMORY_STAT,
        "cpu.weight": "100\n",
        "cpu.weight.nice": "0\n",
        "cpu.max": "max 100000\n",
        "cpu.max.burst": "0\n",
        "cpu.stat": V2_CPU_STAT,
        "cpuset.cpus": "\n",
        "cpuset.mems": "\n",
        "cpuset.cpus.effective": "0-3\n",
        "cpuset.mems.effective": "0\n",
        "cpuset.cpus.partition": "member\n",
        "pids.max": "max\n",
        "pids.current": "4\n",
        "pids.events": "max 0\n",
        "io.max": "",
        "io.weight": "default 100\n",
        "io.stat": V2_IO_STAT,
    }
    files.update(overrides)
    return {k: v for k, v in files.items() if v is not None}


@pytest.fixture
def v2_tree(tmp_path):
    """``(root, container dir)``: ``<root>/dct/c1`` under a cgroup2-like root offering the five controllers."""
    root = str(tmp_path / "cgroup")
    for directory in (root, os.path.join(root, "dct")):
        _write(directory, "cgroup.controllers", V2_CONTROLLERS + "\n")
        _write(directory, "cgroup.subtree_control", V2_CONTROLLERS + "\n")
        _write(directory, "cpuset.cpus.effective", "0-3\n")
        _write(directory, "cpuset.mems.effective", "0\n")
    path = os.path.join(root, "dct", "c1")
    for name, text in v2_files().items():
        _write(path, name, text)
    return root, path


def _set_files(path, **files):
    for name, text in files.items():
        if text is None:
            os.unlink(os.path.join(path, name))
        else:
            _write(path, name, text)


V1_MEMORY_STAT = (
    "cache 18874368\nrss 31457280\nrss_huge 0\nshmem 0\nmapped_file 9461760\ndirty 4096\nwriteback 0\n"
    "swap 1048576\npgpgin 20000\npgpgout 7000\npgfault 12345\npgmajfault 12\ninactive_anon 31453184\n"
    "active_anon 4096\ninactive_file 12582912\nactive_file 6291456\nunevictable 0\n"
    "hierarchical_memory_limit 9223372036854771712\nhierarchical_memsw_limit 9223372036854771712\n"
    "total_cache 18874368\ntotal_rss 31457280\ntotal_swap 1048576\ntotal_pgfault 12345\n")
V1_BLKIO_RECURSIVE_BYTES = ("8:0 Read 1459200\n8:0 Write 314773504\n8:0 Sync 310000000\n8:0 Async 6232704\n"
                            "8:0 Discard 0\n8:0 Total 316232704\nTotal 316232704\n")
V1_BLKIO_RECURSIVE_IOS = "8:0 Read 192\n8:0 Write 353\n8:0 Sync 300\n8:0 Async 245\n8:0 Discard 0\n" \
                         "8:0 Total 545\nTotal 545\n"
V1_TREE = {
    "memory": {
        "memory.limit_in_bytes": f"{V1_UNLIMITED}\n",
        "memory.memsw.limit_in_bytes": f"{V1_UNLIMITED}\n",
        "memory.soft_limit_in_bytes": f"{V1_UNLIMITED}\n",
        "memory.usage_in_bytes": "52359168\n",
        "memory.max_usage_in_bytes": "61865984\n",
        "memory.failcnt": "7\n",
        "memory.memsw.usage_in_bytes": "53407744\n",
        "memory.memsw.max_usage_in_bytes": "62914560\n",
        "memory.memsw.failcnt": "0\n",
        "memory.kmem.limit_in_bytes": f"{V1_UNLIMITED}\n",
        "memory.kmem.usage_in_bytes": "2027520\n",
        "memory.kmem.max_usage_in_bytes": "2097152\n",
        "memory.kmem.failcnt": "0\n",
        "memory.stat": V1_MEMORY_STAT,
        "memory.oom_control": "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n",
        "memory.swappiness": "60\n",
        "memory.use_hierarchy": "1\n",
        "cgroup.procs": "",
        "tasks": "",
    },
    "cpu,cpuacct": {
        "cpu.shares": "1024\n",
        "cpu.cfs_quota_us": "-1\n",
        "cpu.cfs_period_us": "100000\n",
        "cpu.rt_runtime_us": "0\n",
        "cpu.rt_period_us": "1000000\n",
        "cpu.stat": "nr_periods 50\nnr_throttled 3\nthrottled_time 45678000\n",
        "cpuacct.usage": "2500000000\n",
        "cpuacct.usage_percpu": "1250000000 1250000000 \n",
        "cpuacct.usage_all": "cpu user system\n0 1000000000 250000000\n1 900000000 350000000\n",
        "cpuacct.stat": "user 190\nsystem 60\n",
        "cgroup.procs": "",
        "tasks": "",
    },
    "cpuset": {
        "cpuset.cpus": "0-3\n",
        "cpuset.mems": "0\n",
        "cpuset.effective_cpus": "0-3\n",
        "cpuset.effective_mems": "0\n",
        "cpuset.cpu_exclusive": "0\n",
        "cgroup.procs": "",
        "tasks": "",
    },
    "pids": {"pids.max": "max\n", "pids.current": "3\n", "cgroup.procs": "", "tasks": ""},
    "blkio": {  # BFQ is the disk's scheduler: blkio.bfq.* next to the throttle files
        "blkio.bfq.weight": "100\n",
        "blkio.bfq.weight_device": "",
        "blkio.bfq.io_service_bytes": V1_BLKIO_RECURSIVE_BYTES,
        "blkio.bfq.io_serviced": V1_BLKIO_RECURSIVE_IOS,
        "blkio.bfq.io_service_bytes_recursive": V1_BLKIO_RECURSIVE_BYTES,
        "blkio.bfq.io_serviced_recursive": V1_BLKIO_RECURSIVE_IOS,
        "blkio.throttle.read_bps_device": "",
        "blkio.throttle.write_bps_device": "",
        "blkio.throttle.read_iops_device": "",
        "blkio.throttle.write_iops_device": "",
        "blkio.throttle.io_service_bytes": V1_BLKIO_RECURSIVE_BYTES,
        "blkio.throttle.io_serviced": V1_BLKIO_RECURSIVE_IOS,
        "blkio.throttle.io_service_bytes_recursive": V1_BLKIO_RECURSIVE_BYTES,
        "blkio.throttle.io_serviced_recursive": V1_BLKIO_RECURSIVE_IOS,
        "blkio.reset_stats": "",
        "cgroup.procs": "",
        "tasks": "",
    },
}
V1_CONTROLLERS = {"memory": "memory", "cpu": "cpu,cpuacct", "cpuacct": "cpu,cpuacct", "cpuset": "cpuset",
                  "pids": "pids", "blkio": "blkio"}


@pytest.fixture
def v1_tree(tmp_path):
    """``(root, {controller: dir})``: ``<root>/<mount>/dct/c1`` per controller, cpu and cpuacct co-mounted."""
    root = str(tmp_path / "cgroup")
    for mount, files in V1_TREE.items():
        path = os.path.join(root, mount, "dct", "c1")
        for name, text in files.items():
            _write(path, name, text)
    _write(os.path.join(root, "cpuset", "dct"), "cpuset.cpus", "0-3\n")
    _write(os.path.join(root, "cpuset", "dct"), "cpuset.mems", "0\n")
    return root, {c: os.path.join(root, mount, "dct", "c1") for c, mount in V1_CONTROLLERS.items()}


# == Resources.validate ==============================================================================

def test_validate_accepts_a_full_valid_set():
    Resources(memory=64 * MI, memory_reservation=32 * MI, memory_swap=128 * MI, cpu_shares=1024, cpu_weight=100,
              cpu_quota=50000, cpu_period=100000, cpuset_cpus="0-1,3", cpuset_mems="0", pids_limit=100,
              blkio_weight=500,
              blkio_throttle_read_bps_device=[ThrottleDevice(8, 0, 1048576)],
              blkio_throttle_write_bps_device=[ThrottleDevice(8, 0, 0)],
              blkio_throttle_read_iops_device=[ThrottleDevice(253, 1, 100)],
              blkio_throttle_write_iops_device=[]).validate()


@pytest.mark.parametrize("fields", [
    {},
    {"memory": -1, "memory_swap": -1, "memory_reservation": -1, "cpu_quota": -1, "pids_limit": -1},
    {"memory": 1 << 20},
    {"memory": 64 * MI, "memory_swap": 64 * MI},  # no swap at all
    {"memory_swap": -1},  # unlimited swap needs no memory limit
    {"memory_reservation": 1}, {"pids_limit": 4194304}, {"memory": (1 << 63) - 1},
    {"cpu_shares": 2}, {"cpu_shares": 262144},
    {"cpu_weight": 1}, {"cpu_weight": 10000},
    {"cpu_period": 1000}, {"cpu_period": 1000000},
    {"cpu_quota": 1000},
    {"blkio_weight": 10}, {"blkio_weight": 1000},
    {"cpuset_cpus": "0-2,5"}, {"cpuset_cpus": "7"}, {"cpuset_mems": "0,1"},
])
def test_validate_accepts_boundaries(fields):
    Resources(**fields).validate()


@pytest.mark.parametrize("fields, message", [
    ({"cpu_shares": 1}, "resources.cpu_shares: 1 must be an integer in [2, 262144]"),
    ({"cpu_shares": 262145}, "resources.cpu_shares: 262145 must be an integer in [2, 262144]"),
    ({"cpu_shares": "1024"}, "resources.cpu_shares: '1024' must be an integer in [2, 262144]"),
    ({"cpu_shares": True}, "resources.cpu_shares: True must be an integer in [2, 262144]"),
    ({"cpu_weight": 0}, "resources.cpu_weight: 0 must be an integer in [1, 10000]"),
    ({"cpu_weight": 10001}, "resources.cpu_weight: 10001 must be an integer in [1, 10000]"),
    ({"cpu_period": 999}, "resources.cpu_period: 999 must be an integer in [1000, 1000000]"),
    ({"cpu_period": 1000001}, "resources.cpu_period: 1000001 must be an integer in [1000, 1000000]"),
    ({"blkio_weight": 9}, "resources.blkio_weight: 9 must be an integer in [10, 1000]"),
    ({"blkio_weight": 1001}, "resources.blkio_weight: 1001 must be an integer in [10, 1000]"),
    ({"cpu_quota": 999}, "resources.cpu_quota: 999 must be at least 1000 µs, or -1 for unlimited"),
    ({"cpu_quota": 0}, "resources.cpu_quota: 0 must be at least 1000 µs, or -1 for unlimited"),
    ({"cpu_quota": -2}, "resources.cpu_quota: -2 must be a non-negative integer, or -1 for unlimited"),
    ({"memory": 0}, "resources.memory: 0 must be positive (-1 means unlimited)"),
    ({"memory": -2}, "resources.memory: -2 must be a non-negative integer, or -1 for unlimited"),
    ({"memory": "64Mi"}, "resources.memory: '64Mi' must be a non-negative integer, or -1 for unlimited"),
    ({"memory": 1.5e9}, "resources.memory: 1500000000.0 must be a non-negative integer, or -1 for unlimited"),
    ({"memory": 64}, "resources.memory: 64 bytes is below 1Mi: the container could not even start "
                     "(a unit missing? 64Mi)"),
    ({"memory": (1 << 20) - 1}, "resources.memory: 1048575 bytes is below 1Mi"),
    ({"memory_reservation": -3}, "resources.memory_reservation: -3 must be a non-negative integer"),
    ({"pids_limit": 0}, "resources.pids_limit: 0 must be positive (-1 means unlimited)"),
    ({"pids_limit": -5}, "resources.pids_limit: -5 must be a non-negative integer, or -1 for unlimited"),
    ({"memory": 64 * MI, "memory_swap": 0}, "resources.memory_swap: 0 must be positive (-1 means unlimited)"),
    ({"memory": 64 * MI, "memory_swap": 32 * MI},
     "resources.memory_swap: 32Mi is below memory 64Mi (memory_swap counts memory + swap; "
     "use -1 for unlimited swap)"),
    ({"memory_swap": 128 * MI}, "resources.memory_swap: 134217728 needs memory to be set too "
                                "(it counts memory + swap)"),
    ({"cpuset_cpus": "a"}, "resources.cpuset_cpus: 'a' must be a list such as \"0-1,3\""),
    ({"cpuset_cpus": "3-1"}, "resources.cpuset_cpus: '3-1' has a reversed range 3-1"),
    ({"cpuset_cpus": "0-"}, "resources.cpuset_cpus: '0-' must be a list such as \"0-1,3\""),
    ({"cpuset_cpus": "-1"}, "resources.cpuset_cpus: '-1' must be a list such as \"0-1,3\""),
    ({"cpuset_cpus": 3}, "resources.cpuset_cpus: 3 must be a list such as \"0-1,3\""),
    ({"cpuset_mems": "0;1"}, "resources.cpuset_mems: '0;1' must be a list such as \"0-1,3\""),
    ({"blkio_throttle_read_bps_device": [ThrottleDevice(8, 0, -1)]},
     "resources.blkio_throttle_read_bps_device: 8:0 -1 must be non-negative integers"),
    ({"blkio_throttle_write_bps_device": [ThrottleDevice(8, -1, 5)]},
     "resources.blkio_throttle_write_bps_device: 8:-1 5 must be non-negative integers"),
    ({"blkio_throttle_read_iops_device": [ThrottleDevice(8, 0, "1Mi")]},
     "resources.blkio_throttle_read_iops_device: 8:0 '1Mi' must be non-negative integers"),
    ({"blkio_throttle_write_iops_device": [ThrottleDevice(8, 0, 10), ThrottleDevice(8, 16, True)]},
     "resources.blkio_throttle_write_iops_device: 8:16 True must be non-negative integers"),
])
def test_validate_refuses_naming_the_field(fields, message):
    with pytest.raises(ConfigInvalid) as info:
        Resources(**fields).validate()
    assert str(info.value).startswith(message)


def test_validate_refuses_limited_swap_with_unlimited_memory():
    with pytest.raises(ConfigInvalid) as info:
        Resources(memory=-1, memory_swap=128 * MI).validate()
    assert str(info.value).startswith("resources.memory_swap: 134217728 ")


@pytest.mark.parametrize("text, cpus", [("0-2,5", {0, 1, 2, 5}), ("", set()), (" 0 - 1 ", {0, 1}), ("7", {7}),
                                        ("0,0-1", {0, 1})])
def test_parse_cpu_list(text, cpus):
    assert parse_cpu_list(text) == cpus


@pytest.mark.parametrize("fields, message", [
    ({"memory": 1 << 63}, "resources.memory: 9223372036854775808 is too large (at most 9223372036854775807)"),
    ({"pids_limit": 4194305}, "resources.pids_limit: 4194305 is too large (at most 4194304)"),
    ({"memory_reservation": 0}, "resources.memory_reservation: 0 must be positive (-1 means unlimited)"),
    ({"cpuset_cpus": "1,,3"}, "resources.cpuset_cpus: '1,,3' must be a list such as \"0-1,3\""),
])
def test_validate_refuses_out_of_range_values_before_the_kernel_sees_them(fields, message):
    with pytest.raises(ConfigInvalid) as info:
        Resources(**fields).validate()
    assert str(info.value) == message


def test_check_cpuset_refuses_an_empty_list():
    with pytest.raises(ConfigInvalid, match=r"^resources.cpuset_mems: ' ' is empty$"):
        check_cpuset(Resources(cpuset_mems=" "), "0-3", "0")


# == v2 driver: set() ================================================================================

def test_v2_conversions_match_runc():
    assert [cpu_shares_to_weight(s) for s in (1, 2, 512, 1024, 262144, 300000)] == [1, 1, 59, 100, 10000, 10000]
    assert [blkio_weight_to_io_weight(w) for w in (10, 100, 500, 1000)] == [1, 910, 4950, 10000]
    assert swap_to_v2(64 * MI, 192 * MI) == str(128 * MI)
    assert swap_to_v2(64 * MI, 64 * MI) == "0"
    assert swap_to_v2(64 * MI, -1) == "max"
    assert swap_to_v2(-1, -1) == "max"
    with pytest.raises(ConfigInvalid, match=r"^resources.memory_swap: 33554432 is below memory 67108864$"):
        swap_to_v2(64 * MI, 32 * MI)
    with pytest.raises(ConfigInvalid, match=r"^resources.memory_swap: a swap limit needs a memory limit"):
        swap_to_v2(-1, 64 * MI)


def test_v2_set_writes_the_kernel_formats(v2_tree, kernel):
    _, path = v2_tree
    V2Manager(path).set(Resources(
        memory=64 * MI, memory_swap=192 * MI, memory_reservation=32 * MI, cpu_shares=512, cpu_quota=50000,
        cpuset_cpus="0,1", cpuset_mems="0", pids_limit=100, blkio_weight=500,
        blkio_throttle_read_bps_device=[ThrottleDevice(8, 0, 1048576)],
        blkio_throttle_write_iops_device=[ThrottleDevice(8, 16, 300)]))
    assert kernel.writes == [
        ("memory.max", "67108864"),
        ("memory.swap.max", "134217728"),  # swap - memory
        ("memory.low", "33554432"),
        ("cpu.weight", "59"),  # runc's ConvertCPUSharesToCgroupV2Value(512)
        ("cpu.max", "50000 100000"),  # the period kept
        ("cpuset.cpus", "0,1"),
        ("cpuset.mems", "0"),
        ("pids.max", "100"),
        ("io.weight", "default 4950"),
        ("io.max", "8:0 rbps=1048576"),
        ("io.max", "8:16 wiops=300"),
    ]
    shown = {name: _read(path, name) for name, _ in kernel.writes}
    assert shown == {
        "memory.max": "67108864\n", "memory.swap.max": "134217728\n", "memory.low": "33554432\n",
        "cpu.weight": "59\n", "cpu.max": "50000 100000\n", "cpuset.cpus": "0-1\n", "cpuset.mems": "0\n",
        "pids.max": "100\n", "io.weight": "default 4950\n",
        "io.max": "8:0 rbps=1048576 wbps=max riops=max wiops=max\n8:16 rbps=max wbps=max riops=max wiops=300\n",
    }


def test_v2_set_touches_only_the_fields_given(v2_tree, kernel):
    root, path = v2_tree
    before = _snapshot(root)
    V2Manager(path).set(Resources(pids_limit=7))
    assert kernel.writes == [("pids.max", "7")]
    after = _snapshot(root)
    assert after.pop("dct/c1/pids.max") == "7\n"
    before.pop("dct/c1/pids.max")
    assert after == before


@pytest.mark.parametrize("fields, writes", [
    ({"memory": -1}, [("memory.max", "max"), ("memory.swap.max", "max")]),  # -1 lifts swap too, as runc
    ({"memory": 64 * MI, "memory_swap": -1}, [("memory.max", "67108864"), ("memory.swap.max", "max")]),
    ({"memory": 64 * MI, "memory_swap": 64 * MI}, [("memory.max", "67108864"), ("memory.swap.max", "0")]),
    ({"memory": 64 * MI}, [("memory.max", "67108864")]),  # swap left as it is
    ({"memory_reservation": -1}, [("memory.low", "0")]),  # no reservation is no protection, not "max"
    ({"memory_reservation": 16 * MI}, [("memory.low", "16777216")]),
    ({"pids_limit": -1}, [("pids.max", "max")]),
    ({"pids_limit": 1}, [("pids.max", "1")]),
    ({"cpu_shares": 2}, [("cpu.weight", "1")]),
    ({"cpu_shares": 1024}, [("cpu.weight", "100")]),
    ({"cpu_shares": 262144}, [("cpu.weight", "10000")]),
    ({"cpu_weight": 250}, [("cpu.weight", "250")]),
    ({"cpu_weight": 250, "cpu_shares": 2}, [("cpu.weight", "250")]),  # an explicit weight wins
    ({"cpu_quota": 20000}, [("cpu.max", "20000 100000")]),
    ({"cpu_period": 50000}, [("cpu.max", "max 50000")]),
    ({"cpu_quota": -1}, [("cpu.max", "max 100000")]),
    ({"cpu_quota": 30000, "cpu_period": 60000}, [("cpu.max", "30000 60000")]),
    ({"blkio_weight": 10}, [("io.weight", "default 1")]),
    ({"blkio_weight": 1000}, [("io.weight", "default 10000")]),
])
def test_v2_set_single_fields(v2_tree, kernel, fields, writes):
    _, path = v2_tree
    V2Manager(path).set(Resources(**fields))
    assert kernel.writes == writes


def test_v2_memory_max_page_rounding_is_accepted(v2_tree, kernel):
    _, path = v2_tree
    V2Manager(path).set(Resources(memory=64 * MI + 1))
    assert kernel.writes == [("memory.max", "67108865")]
    assert _read(path, "memory.max") == "67108864\n"


def test_v2_cpu_max_keeps_the_other_half(v2_tree, kernel):
    _, path = v2_tree
    mgr = V2Manager(path)
    mgr.set(Resources(cpu_quota=20000))
    mgr.set(Resources(cpu_period=50000))
    assert _read(path, "cpu.max") == "20000 50000\n"
    mgr.set(Resources(cpu_quota=-1))
    assert _read(path, "cpu.max") == "max 50000\n"
    assert kernel.writes == [("cpu.max", "20000 100000"), ("cpu.max", "20000 50000"), ("cpu.max", "max 50000")]


def test_v2_io_max_drops_devices_left_out(v2_tree, kernel):
    _, path = v2_tree
    _set_files(path, **{"io.max": "8:0 rbps=1048576 wbps=5000 riops=max wiops=max\n"
                                  "8:16 rbps=2097152 wbps=max riops=max wiops=max\n"})
    mgr = V2Manager(path)
    mgr.set(Resources(blkio_throttle_read_bps_device=[ThrottleDevice(8, 16, 4194304)]))
    assert kernel.writes == [("io.max", "8:0 rbps=max"), ("io.max", "8:16 rbps=4194304")]
    # 8:0 loses its read limit only; its write limit was not part of the update
    assert _read(path, "io.max") == ("8:0 rbps=max wbps=5000 riops=max wiops=max\n"
                                     "8:16 rbps=4194304 wbps=max riops=max wiops=max\n")
    kernel.writes.clear()
    mgr.set(Resources(blkio_throttle_read_bps_device=[], blkio_throttle_write_bps_device=[ThrottleDevice(8, 0, 0)]))
    assert kernel.writes == [("io.max", "8:0 rbps=max wbps=max"), ("io.max", "8:16 rbps=max wbps=max")]
    assert _read(path, "io.max") == ""


def test_v2_blkio_weight_goes_to_io_bfq_weight_when_present(v2_tree, kernel):
    _, path = v2_tree
    _set_files(path, **{"io.bfq.weight": "default 100\n"})
    V2Manager(path).set(Resources(blkio_weight=500))
    assert kernel.writes == [("io.bfq.weight", "500")]  # BFQ takes the v1 range as is
    assert _read(path, "io.bfq.weight") == "default 500\n"
    assert _read(path, "io.weight") == "default 100\n"


# == v2 driver: check() ==============================================================================

def test_v2_check_refuses_a_controller_not_enabled(v2_tree, kernel):
    root, path = v2_tree
    _set_files(path, **{"cgroup.controllers": "cpu io memory pids\n"})
    before = _snapshot(root)
    with pytest.raises(ConfigInvalid) as info:
        V2Manager(path).set(Resources(memory=64 * MI, cpuset_cpus="0"))
    assert str(info.value) == (
        f"resources.cpuset_cpus: the cpuset controller is not enabled for {path} (it has: cpu io memory pids); "
        f"enable it with 'echo +cpuset > {root}/dct/cgroup.subtree_control' in every ancestor, or under "
        "systemd give the unit Delegate=yes")
    assert kernel.writes == []
    assert _snapshot(root) == before


def test_v2_check_throttles_need_io(v2_tree, kernel):
    _, path = v2_tree
    _set_files(path, **{"cgroup.controllers": "\n"})
    with pytest.raises(ConfigInvalid) as info:
        V2Manager(path).set(Resources(blkio_throttle_write_bps_device=[ThrottleDevice(8, 0, 1)]))
    message = str(info.value)
    assert message.startswith("resources.blkio_throttle_write_bps_device: the io controller is not enabled for "
                              f"{path} (it has: none)")
    assert "'echo +io > " in message
    assert kernel.writes == []


@pytest.mark.parametrize("fields, message", [
    ({"cpuset_cpus": "2-5"}, "resources.cpuset_cpus: '2-5' includes 4-5, not available here (available: 0-3)"),
    ({"cpuset_cpus": "0", "cpuset_mems": "0-1"},
     "resources.cpuset_mems: '0-1' includes 1, not available here (available: 0)"),
])
def test_v2_cpuset_outside_the_parents_effective_set_is_refused(v2_tree, kernel, fields, message):
    root, path = v2_tree
    with pytest.raises(ConfigInvalid) as info:
        V2Manager(path).set(Resources(**fields))
    assert str(info.value) == message
    assert kernel.writes == []


def test_v2_cpuset_inside_the_parents_effective_set_is_written(v2_tree, kernel):
    _, path = v2_tree
    _write(os.path.dirname(path), "cpuset.cpus.effective", "0-7\n")
    V2Manager(path).set(Resources(cpuset_cpus="4-7"))
    assert kernel.writes == [("cpuset.cpus", "4-7")]


def test_v2_swap_without_memory_is_refused_before_any_write(v2_tree, kernel):
    _, path = v2_tree
    with pytest.raises(ConfigInvalid, match=r"^resources.memory_swap: 134217728 needs memory"):
        V2Manager(path).set(Resources(memory_swap=128 * MI))
    assert kernel.writes == []


def test_v2_finite_swap_without_swap_accounting_is_refused(v2_tree, kernel):
    root, path = v2_tree
    _set_files(path, **{"memory.swap.max": None, "memory.swap.current": None})
    before = _snapshot(root)
    with pytest.raises((ConfigInvalid, errors.SystemError)):
        V2Manager(path).set(Resources(memory=64 * MI, memory_swap=128 * MI))
    assert _snapshot(root) == before


@pytest.mark.parametrize("missing, fields", [
    ("io.weight", {"blkio_weight": 500}),
    ("cpu.max", {"cpu_quota": 50000}),
    ("io.max", {"blkio_throttle_read_bps_device": [ThrottleDevice(8, 0, 1048576)]}),
])
def test_v2_missing_file_is_refused_or_rolled_back(v2_tree, kernel, missing, fields):
    root, path = v2_tree
    _set_files(path, **{missing: None})
    before = _snapshot(root)
    with pytest.raises((ConfigInvalid, errors.SystemError)):
        V2Manager(path).set(Resources(memory=64 * MI, **fields))
    assert _snapshot(root) == before


def test_v2_unlimited_memory_without_swap_accounting_writes_memory_only(v2_tree, kernel):
    _, path = v2_tree
    _set_files(path, **{"memory.swap.max": None, "memory.swap.current": None})
    V2Manager(path).set(Resources(memory=-1))
    assert kernel.writes == [("memory.max", "max")]


# == v2 driver: rollback =============================================================================

def test_v2_read_back_mismatch_restores_every_file(v2_tree, kernel):
    root, path = v2_tree
    before = _snapshot(root)
    kernel.mangle["pids.max"] = "50\n"
    with pytest.raises(errors.SystemError) as info:
        V2Manager(path).set(Resources(memory=64 * MI, cpu_weight=200, pids_limit=100))
    assert str(info.value) == f"{path}/pids.max: wrote '100' but it reads '50' (previous values restored)"
    assert kernel.writes == [("memory.max", "67108864"), ("cpu.weight", "200"), ("pids.max", "100"),
                             ("pids.max", "max"), ("cpu.weight", "100"), ("memory.max", "max")]
    assert _snapshot(root) == before


def test_v2_refused_io_max_write_restores_devices(v2_tree, kernel):
    root, path = v2_tree
    _set_files(path, **{"io.max": "8:0 rbps=1048576 wbps=max riops=max wiops=max\n"})
    before = _snapshot(root)
    kernel.refuse_once["cpuset.cpus"] = errno.EINVAL
    with pytest.raises(errors.SystemError) as info:
        V2Manager(path).set(Resources(cpuset_cpus="1", blkio_throttle_read_bps_device=[ThrottleDevice(8, 16, 5)]))
    assert str(info.value) == (f"failed to write '1' to {path}/cpuset.cpus: Invalid argument "
                               "(previous values restored)")
    assert kernel.writes == [("cpuset.cpus", "1")]  # refused: nothing to undo
    assert _snapshot(root) == before

    kernel.writes.clear()
    kernel.refuse_value[("io.max", "8:16 rbps=5")] = errno.EINVAL  # the second device's write fails
    with pytest.raises(errors.SystemError, match=r"\(previous values restored\)$"):
        V2Manager(path).set(Resources(pids_limit=9, blkio_throttle_read_bps_device=[ThrottleDevice(8, 16, 5)]))
    assert kernel.writes[:3] == [("pids.max", "9"), ("io.max", "8:0 rbps=max"), ("io.max", "8:16 rbps=5")]
    # the refused 8:16 write is not undone; 8:0 gets its old line back, then pids.max
    assert kernel.writes[3:] == [("io.max", "8:0 rbps=1048576 wbps=max riops=max wiops=max"),
                                 ("pids.max", "max")]
    assert _snapshot(root) == before


# == v2 driver: stats() and oom_kill_count() =========================================================

def test_v2_stats_parse_the_kernel_files(v2_tree):
    _, path = v2_tree
    mgr = V2Manager(path)
    try:
        st = mgr.stats()
    finally:
        mgr.close()
    assert st.cpu_stats == CpuStats(CpuUsage(total_usage=1234567000, usage_in_usermode=1000000000,
                                             usage_in_kernelmode=234567000),
                                    ThrottlingData(50, 3, 45678000))
    m = st.memory_stats
    assert m.cache == 18874368  # memory.stat "file"
    assert m.usage == MemoryData(usage=52359168, max_usage=61865984, failcnt=7, limit=MAX_UINT64)
    assert m.swap_usage == MemoryData(usage=52359168 + 1048576, max_usage=0, failcnt=0, limit=MAX_UINT64)
    assert m.kernel_usage is None
    assert len(m.stats) == V2_MEMORY_STAT.count("\n")
    assert m.stats["anon"] == 31457280 and m.stats["pgmajfault"] == 12 and m.stats["file_dirty"] == 4096
    assert st.pids_stats == PidsStats(current=4, limit=0)
    assert st.blkio_stats == BlkioStats(
        io_service_bytes_recursive=[BlkioStatEntry(8, 0, "Read", 1459200), BlkioStatEntry(8, 0, "Write", 314773504),
                                    BlkioStatEntry(253, 0, "Read", 4096), BlkioStatEntry(253, 0, "Write", 0)],
        io_serviced_recursive=[BlkioStatEntry(8, 0, "Read", 192), BlkioStatEntry(8, 0, "Write", 353),
                               BlkioStatEntry(253, 0, "Read", 1), BlkioStatEntry(253, 0, "Write", 0)])


def test_v2_stats_with_limits_set(v2_tree):
    _, path = v2_tree
    _set_files(path, **{"memory.max": "67108864\n", "memory.swap.max": "134217728\n", "pids.max": "100\n",
                        "memory.peak": None, "io.stat": ""})
    mgr = V2Manager(path)
    st = mgr.stats()
    mgr.close()
    assert st.memory_stats.usage == MemoryData(52359168, 0, 7, 64 * MI)  # no memory.peak before 5.19
    assert st.memory_stats.swap_usage == MemoryData(52359168 + 1048576, 0, 0, 192 * MI)  # memory + swap
    assert st.pids_stats == PidsStats(4, 100)
    assert st.blkio_stats == BlkioStats([], [])


def test_v2_stats_reread_fresh_values(v2_tree):
    _, path = v2_tree
    mgr = V2Manager(path)
    assert mgr.stats().pids_stats.current == 4
    _write(path, "pids.current", "12\n")
    _write(path, "cpu.stat", V2_CPU_STAT.replace("usage_usec 1234567", "usage_usec 2000000"))
    st = mgr.stats()
    mgr.close()
    assert st.pids_stats.current == 12
    assert st.cpu_stats.cpu_usage.total_usage == 2000000000


def test_v2_stats_without_controllers_leave_parts_none(tmp_path):
    path = str(tmp_path / "c1")
    _write(path, "cgroup.controllers", "\n")
    _write(path, "cpu.stat", "usage_usec 10\nuser_usec 6\nsystem_usec 4\n")  # core accounting: always there
    mgr = V2Manager(path)
    st = mgr.stats()
    mgr.close()
    assert st == CgroupStats(cpu_stats=CpuStats(CpuUsage(total_usage=10000, usage_in_usermode=6000,
                                                         usage_in_kernelmode=4000), ThrottlingData(0, 0, 0)))
    gone = V2Manager(str(tmp_path / "gone"))
    assert gone.stats() == CgroupStats()
    gone.close()


def test_v2_oom_kill_count(v2_tree, tmp_path):
    _, path = v2_tree
    assert V2Manager(path).oom_kill_count() == 1
    _set_files(path, **{"memory.events": "low 0\nhigh 0\nmax 0\noom 0\noom_kill 0\noom_group_kill 0\n"})
    assert V2Manager(path).oom_kill_count() == 0
    assert V2Manager(str(tmp_path / "gone")).oom_kill_count() is None


# == v1 driver: memory ordering ======================================================================

def _v1_memory(paths, memory, memsw):
    _write(paths["memory"], "memory.limit_in_bytes", f"{memory}\n")
    _write(paths["memory"], "memory.memsw.limit_in_bytes", f"{memsw}\n")


def test_v1_raising_memory_writes_memsw_first(v1_tree, kernel):
    _, paths = v1_tree
    _v1_memory(paths, 64 * MI, 128 * MI)
    V1Manager(paths).set(Resources(memory=256 * MI, memory_swap=512 * MI))
    assert kernel.writes == [("memory.memsw.limit_in_bytes", "536870912"), ("memory.limit_in_bytes", "268435456")]
    assert _read(paths["memory"], "memory.limit_in_bytes") == "268435456\n"
    assert _read(paths["memory"], "memory.memsw.limit_in_bytes") == "536870912\n"


@pytest.mark.parametrize("current", [(256 * MI, 512 * MI), (V1_UNLIMITED, V1_UNLIMITED)])
def test_v1_lowering_memory_writes_memory_first(v1_tree, kernel, current):
    _, paths = v1_tree
    _v1_memory(paths, *current)
    V1Manager(paths).set(Resources(memory=64 * MI, memory_swap=128 * MI))
    assert kernel.writes == [("memory.limit_in_bytes", "67108864"), ("memory.memsw.limit_in_bytes", "134217728")]
    assert _read(paths["memory"], "memory.memsw.limit_in_bytes") == "134217728\n"


def test_v1_unlimited_memory_lifts_memsw_first(v1_tree, kernel):
    _, paths = v1_tree
    _v1_memory(paths, 64 * MI, 128 * MI)
    V1Manager(paths).set(Resources(memory=-1))
    assert kernel.writes == [("memory.memsw.limit_in_bytes", "-1"), ("memory.limit_in_bytes", "-1")]
    assert _read(paths["memory"], "memory.limit_in_bytes") == f"{V1_UNLIMITED}\n"
    assert _read(paths["memory"], "memory.memsw.limit_in_bytes") == f"{V1_UNLIMITED}\n"


def test_v1_unlimited_memory_without_swap_accounting(v1_tree, kernel):
    _, paths = v1_tree
    for name in ("memory.memsw.limit_in_bytes", "memory.memsw.usage_in_bytes"):
        os.unlink(os.path.join(paths["memory"], name))
    _write(paths["memory"], "memory.limit_in_bytes", f"{64 * MI}\n")
    V1Manager(paths).set(Resources(memory=-1))
    assert kernel.writes == [("memory.limit_in_bytes", "-1")]
    with pytest.raises(ConfigInvalid) as info:
        V1Manager(paths).set(Resources(memory=64 * MI, memory_swap=128 * MI))
    assert str(info.value) == ("resources.memory_swap: memory.memsw.limit_in_bytes is not available "
                               "(swap accounting is off: boot the kernel with swapaccount=1)")


def test_v1_memory_above_memsw_explains_the_refusal(v1_tree, kernel):
    root, paths = v1_tree
    _v1_memory(paths, 64 * MI, 128 * MI)
    before = _snapshot(root)
    with pytest.raises(errors.SystemError) as info:
        V1Manager(paths).set(Resources(memory=256 * MI, cpu_shares=512))
    assert str(info.value) == ("resources.memory: 268435456 bytes is above memory_swap (memory+swap limit "
                               "134217728); raise memory_swap too (previous values restored)")
    assert _snapshot(root) == before


def test_v1_memory_reservation_and_page_rounding(v1_tree, kernel):
    _, paths = v1_tree
    V1Manager(paths).set(Resources(memory=64 * MI + 100, memory_reservation=-1))
    assert kernel.writes == [("memory.limit_in_bytes", "67108964"), ("memory.soft_limit_in_bytes", "-1")]
    assert _read(paths["memory"], "memory.limit_in_bytes") == "67108864\n"


# == v1 driver: other fields =========================================================================

def test_v1_set_writes_the_v1_files(v1_tree, kernel):
    _, paths = v1_tree
    V1Manager(paths).set(Resources(cpu_shares=512, cpu_quota=50000, cpu_period=200000, cpuset_cpus="0,1",
                                   cpuset_mems="0", pids_limit=-1, blkio_weight=500,
                                   blkio_throttle_write_iops_device=[ThrottleDevice(8, 0, 300)]))
    assert kernel.writes == [
        ("cpu.shares", "512"), ("cpu.cfs_period_us", "200000"), ("cpu.cfs_quota_us", "50000"),
        ("cpuset.cpus", "0,1"), ("cpuset.mems", "0"), ("pids.max", "max"), ("blkio.bfq.weight", "500"),
        ("blkio.throttle.write_iops_device", "8:0 300"),
    ]
    assert _read(paths["cpuset"], "cpuset.cpus") == "0-1\n"
    assert _read(paths["blkio"], "blkio.throttle.write_iops_device") == "8:0 300\n"


def test_v1_throttle_list_replaces_the_devices(v1_tree, kernel):
    _, paths = v1_tree
    _write(paths["blkio"], "blkio.throttle.read_bps_device", "8:0 1048576\n8:16 2097152\n")
    V1Manager(paths).set(Resources(blkio_throttle_read_bps_device=[ThrottleDevice(8, 16, 4194304)]))
    assert kernel.writes == [("blkio.throttle.read_bps_device", "8:16 4194304"),
                             ("blkio.throttle.read_bps_device", "8:0 0")]
    assert _read(paths["blkio"], "blkio.throttle.read_bps_device") == "8:16 4194304\n"


def test_v1_check_refuses_an_unmounted_controller(v1_tree, kernel):
    _, paths = v1_tree
    del paths["pids"]
    with pytest.raises(ConfigInvalid) as info:
        V1Manager(paths).set(Resources(cpu_shares=512, pids_limit=10))
    assert str(info.value) == ("resources.pids_limit: the pids cgroup controller is not mounted here "
                               "(mount it at /sys/fs/cgroup/pids, or leave pids_limit unset)")
    assert kernel.writes == []


def test_v1_check_refuses_cpu_weight_and_foreign_cpus(v1_tree, kernel):
    _, paths = v1_tree
    with pytest.raises(ConfigInvalid, match=r"^resources.cpu_weight: cpu_weight is not available \(cpu_weight is "
                                            r"a cgroup v2 setting; use cpu_shares on v1\)$"):
        V1Manager(paths).set(Resources(cpu_weight=100))
    with pytest.raises(ConfigInvalid) as info:
        V1Manager(paths).set(Resources(cpuset_cpus="3-4"))
    assert str(info.value) == "resources.cpuset_cpus: '3-4' includes 4, not available here (available: 0-3)"
    assert kernel.writes == []


# == v1 driver: rollback =============================================================================

def test_v1_refused_write_restores_every_file_written_before(v1_tree, kernel):
    root, paths = v1_tree
    _v1_memory(paths, 64 * MI, 128 * MI)
    before = _snapshot(root)
    kernel.refuse_once["blkio.throttle.read_bps_device"] = errno.EINVAL
    with pytest.raises(errors.SystemError) as info:
        V1Manager(paths).set(Resources(
            memory=256 * MI, memory_swap=512 * MI, memory_reservation=128 * MI, cpu_shares=512, cpu_quota=50000,
            cpuset_cpus="1-2", pids_limit=100, blkio_weight=200,
            blkio_throttle_read_bps_device=[ThrottleDevice(8, 0, 1048576)]))
    assert str(info.value) == (f"failed to write '8:0 1048576' to {paths['blkio']}/blkio.throttle.read_bps_device:"
                               " Invalid argument (previous values restored)")
    assert kernel.writes == [
        ("memory.memsw.limit_in_bytes", "536870912"), ("memory.limit_in_bytes", "268435456"),
        ("memory.soft_limit_in_bytes", "134217728"), ("cpu.shares", "512"), ("cpu.cfs_quota_us", "50000"),
        ("cpuset.cpus", "1-2"), ("pids.max", "100"), ("blkio.bfq.weight", "200"),
        ("blkio.throttle.read_bps_device", "8:0 1048576"),
        # rollback of the accepted writes, newest first: memory goes down before memory+swap does
        ("blkio.bfq.weight", "100"), ("pids.max", "max"),
        ("cpuset.cpus", "0-3"), ("cpu.cfs_quota_us", "-1"), ("cpu.shares", "1024"),
        ("memory.soft_limit_in_bytes", str(V1_UNLIMITED)), ("memory.limit_in_bytes", "67108864"),
        ("memory.memsw.limit_in_bytes", "134217728"),
    ]
    assert _snapshot(root) == before


def test_v1_rollback_after_lowering_restores_in_a_valid_order(v1_tree, kernel):
    root, paths = v1_tree
    _v1_memory(paths, 256 * MI, 512 * MI)
    before = _snapshot(root)
    kernel.refuse_once["pids.max"] = errno.EINVAL
    with pytest.raises(errors.SystemError, match=r"\(previous values restored\)$"):
        V1Manager(paths).set(Resources(memory=64 * MI, memory_swap=128 * MI, pids_limit=5))
    assert kernel.writes == [
        ("memory.limit_in_bytes", "67108864"), ("memory.memsw.limit_in_bytes", "134217728"), ("pids.max", "5"),
        ("memory.memsw.limit_in_bytes", "536870912"), ("memory.limit_in_bytes", "268435456"),
    ]
    assert _snapshot(root) == before


def test_v1_read_back_mismatch_rolls_back(v1_tree, kernel):
    root, paths = v1_tree
    before = _snapshot(root)
    kernel.mangle["cpu.cfs_quota_us"] = "-1\n"  # e.g. silently clamped
    with pytest.raises(errors.SystemError) as info:
        V1Manager(paths).set(Resources(cpu_shares=2048, cpu_quota=50000, pids_limit=10))
    assert str(info.value) == (f"{paths['cpu']}/cpu.cfs_quota_us: wrote '50000' but it reads '-1' "
                               "(previous values restored)")
    assert kernel.writes == [("cpu.shares", "2048"), ("cpu.cfs_quota_us", "50000"),
                             ("cpu.cfs_quota_us", "-1"), ("cpu.shares", "1024")]
    assert _snapshot(root) == before


def test_v1_failed_restore_is_reported(v1_tree, kernel):
    _, paths = v1_tree
    kernel.refuse_once["pids.max"] = errno.EINVAL
    kernel.refuse_value[("cpu.shares", "1024")] = errno.EACCES  # 512 is accepted, the way back is refused
    with pytest.raises(errors.SystemError) as info:
        V1Manager(paths).set(Resources(cpu_shares=512, pids_limit=10))
    cpu, pids = f"{paths['cpu']}/cpu.shares", f"{paths['pids']}/pids.max"
    assert str(info.value) == (f"failed to write '10' to {pids}: Invalid argument; restoring the previous values "
                               f"failed too: failed to write '1024' to {cpu}: Permission denied")


# == v1 driver: cpu period EINVAL retry ==============================================================

def test_v1_period_refused_is_retried_after_the_quota(v1_tree, kernel):
    _, paths = v1_tree
    _write(paths["cpu"], "cpu.cfs_quota_us", "50000\n")
    kernel.refuse_once["cpu.cfs_period_us"] = errno.EINVAL
    V1Manager(paths).set(Resources(cpu_period=10000, cpu_quota=5000))
    assert kernel.writes == [("cpu.cfs_period_us", "10000"), ("cpu.cfs_quota_us", "5000"),
                             ("cpu.cfs_period_us", "10000")]
    assert _read(paths["cpu"], "cpu.cfs_period_us") == "10000\n"
    assert _read(paths["cpu"], "cpu.cfs_quota_us") == "5000\n"


def test_v1_period_refused_without_a_quota_fails(v1_tree, kernel):
    root, paths = v1_tree
    before = _snapshot(root)
    kernel.refuse_once["cpu.cfs_period_us"] = errno.EINVAL
    with pytest.raises(errors.SystemError) as info:
        V1Manager(paths).set(Resources(cpu_shares=512, cpu_period=10000))
    assert str(info.value) == (f"failed to write '10000' to {paths['cpu']}/cpu.cfs_period_us: Invalid argument "
                               "(previous values restored)")
    assert kernel.writes == [("cpu.shares", "512"), ("cpu.cfs_period_us", "10000"), ("cpu.shares", "1024")]
    assert _snapshot(root) == before


def test_v1_period_refused_for_another_reason_is_not_retried(v1_tree, kernel):
    root, paths = v1_tree
    before = _snapshot(root)
    kernel.refuse_once["cpu.cfs_period_us"] = errno.EBUSY
    with pytest.raises(errors.SystemError, match=r"Device or resource busy \(previous values restored\)$"):
        V1Manager(paths).set(Resources(cpu_period=10000, cpu_quota=5000))
    assert kernel.writes == [("cpu.cfs_period_us", "10000")]
    assert _snapshot(root) == before


# == v1 driver: stats() and oom_kill_count() =========================================================

def test_v1_stats_parse_the_kernel_files(v1_tree):
    _, paths = v1_tree
    mgr = V1Manager(paths)
    try:
        st = mgr.stats()
    finally:
        mgr.close()
    assert st.cpu_stats == CpuStats(
        CpuUsage(total_usage=2500000000, percpu_usage=[1250000000, 1250000000],
                 percpu_usage_in_kernelmode=[250000000, 350000000], percpu_usage_in_usermode=[1000000000, 900000000],
                 usage_in_kernelmode=60 * 1_000_000_000 // CLK_TCK, usage_in_usermode=190 * 1_000_000_000 // CLK_TCK),
        ThrottlingData(50, 3, 45678000))
    m = st.memory_stats
    assert m.cache == 18874368
    assert m.usage == MemoryData(52359168, 61865984, 7, V1_UNLIMITED)
    assert m.swap_usage == MemoryData(53407744, 62914560, 0, V1_UNLIMITED)
    assert m.kernel_usage == MemoryData(2027520, 2097152, 0, V1_UNLIMITED)
    assert len(m.stats) == V1_MEMORY_STAT.count("\n")
    assert m.stats["rss"] == 31457280 and m.stats["hierarchical_memory_limit"] == V1_UNLIMITED
    assert st.pids_stats == PidsStats(3, 0)
    ops = ("Read", "Write", "Sync", "Async", "Discard", "Total")
    assert st.blkio_stats == BlkioStats(
        [BlkioStatEntry(8, 0, op, v) for op, v in zip(ops, (1459200, 314773504, 310000000, 6232704, 0, 316232704))],
        [BlkioStatEntry(8, 0, op, v) for op, v in zip(ops, (192, 353, 300, 245, 0, 545))])


def test_v1_stats_throttle_files_total_line_ignored(v1_tree):
    _, paths = v1_tree
    for name in list(V1_TREE["blkio"]):
        if name.startswith("blkio.bfq."):  # no BFQ (and no CFQ since 5.0): only the throttle files
            os.unlink(os.path.join(paths["blkio"], name))
    _write(paths["blkio"], "blkio.throttle.io_service_bytes_recursive",
           "8:0 Read 4096\n8:0 Write 8192\n8:0 Sync 8192\n8:0 Async 4096\n8:0 Discard 0\n8:0 Total 12288\n"
           "253:0 Read 4096\n253:0 Write 0\n253:0 Sync 0\n253:0 Async 4096\n253:0 Discard 0\n253:0 Total 4096\n"
           "Total 16384\n")
    mgr = V1Manager(paths)
    st = mgr.stats()
    mgr.close()
    assert [(e.major, e.minor, e.op, e.value) for e in st.blkio_stats.io_service_bytes_recursive] == [
        (8, 0, "Read", 4096), (8, 0, "Write", 8192), (8, 0, "Sync", 8192), (8, 0, "Async", 4096),
        (8, 0, "Discard", 0), (8, 0, "Total", 12288),
        (253, 0, "Read", 4096), (253, 0, "Write", 0), (253, 0, "Sync", 0), (253, 0, "Async", 4096),
        (253, 0, "Discard", 0), (253, 0, "Total", 4096)]
    assert len(st.blkio_stats.io_serviced_recursive) == 6


def test_v1_stats_empty_bfq_files_fall_back_to_throttle(v1_tree):
    _, paths = v1_tree
    for name in ("blkio.bfq.io_service_bytes_recursive", "blkio.bfq.io_serviced_recursive"):
        _write(paths["blkio"], name, "Total 0\n")
    mgr = V1Manager(paths)
    st = mgr.stats()
    mgr.close()
    assert [e.value for e in st.blkio_stats.io_service_bytes_recursive] == [
        1459200, 314773504, 310000000, 6232704, 0, 316232704]


def test_v1_stats_missing_controllers_give_none(tmp_path, v1_tree):
    _, paths = v1_tree
    mgr = V1Manager({"pids": paths["pids"]})
    assert mgr.stats() == CgroupStats(pids_stats=PidsStats(3, 0))
    mgr.close()
    gone = {c: str(tmp_path / "gone" / c) for c in ("cpu", "cpuacct", "memory", "pids")}
    mgr = V1Manager(gone)
    assert mgr.stats() == CgroupStats()
    mgr.close()


def test_v1_stats_without_swap_and_kmem_accounting(v1_tree):
    _, paths = v1_tree
    for name in os.listdir(paths["memory"]):
        if name.startswith(("memory.memsw.", "memory.kmem.")):
            os.unlink(os.path.join(paths["memory"], name))
    _write(paths["pids"], "pids.max", "64\n")
    mgr = V1Manager(paths)
    st = mgr.stats()
    mgr.close()
    assert st.memory_stats.usage == MemoryData(52359168, 61865984, 7, V1_UNLIMITED)
    assert st.memory_stats.swap_usage is None
    assert st.memory_stats.kernel_usage is None
    assert st.pids_stats == PidsStats(3, 64)


def test_v1_oom_kill_count(v1_tree):
    _, paths = v1_tree
    assert V1Manager(paths).oom_kill_count() == 2
    assert V1Manager({"pids": paths["pids"]}).oom_kill_count() is None
    _write(paths["memory"], "memory.oom_control", "oom_kill_disable 0\nunder_oom 0\n")  # kernel < 4.13
    assert V1Manager(paths).oom_kill_count() is None


# == fs.matches ======================================================================================

@pytest.mark.parametrize("name, written, shown, ok", [
    ("memory.limit_in_bytes", "67108864", "67108864", True),
    ("memory.limit_in_bytes", str(64 * MI + 1), "67108864", True),  # rounded down to a page
    ("memory.limit_in_bytes", str(64 * MI + PAGE), "67108864", False),
    ("memory.limit_in_bytes", "67108864", str(64 * MI - PAGE), False),
    ("memory.limit_in_bytes", "-1", str(V1_UNLIMITED), True),
    ("memory.memsw.limit_in_bytes", "-1", str(V1_UNLIMITED), True),
    ("memory.soft_limit_in_bytes", "-1", str(V1_UNLIMITED), True),
    ("memory.limit_in_bytes", "-1", "67108864", False),
    ("memory.limit_in_bytes", str(V1_UNLIMITED), str(V1_UNLIMITED), True),
    ("memory.max", str(64 * MI + 1), "67108864", True),
    ("memory.max", "max", "max", True),
    ("memory.max", "max", "67108864", False),
    ("memory.low", "4095", "0", True),
    ("memory.swap.max", "0", "0", True),
    ("cpu.shares", "1", "2", False),
    ("pids.max", "max", "max", True),
    ("cpu.max", "50000 100000", "50000 100000", True),
    ("cpuset.cpus", "0,1", "0-1", True),
    ("cpuset.cpus", "0-1", "0,1", True),
    ("cpuset.cpus", "0,1,2,3", "0-3", True),
    ("cpuset.mems", "0-2", "0-1", False),
    ("cpuset.cpus", "x", "0", False),
    ("blkio.throttle.read_bps_device", "8:0 1048576", "8:0 1048576\n8:16 2048", True),
    ("blkio.throttle.read_bps_device", "8:16 2048", "8:0 1048576\n8:16 2048", True),
    ("blkio.throttle.write_iops_device", "8:0 10", "8:0 5", False),
    ("blkio.throttle.write_iops_device", "8:0 10", "", False),
    ("blkio.throttle.read_bps_device", "8:0 0", "8:16 2048", True),  # 0 removes the line
    ("blkio.throttle.read_bps_device", "8:0 0", "8:0 5", False),
    ("io.max", "8:0 rbps=1048576", "8:0 rbps=1048576 wbps=max riops=max wiops=max", True),
    ("io.max", "8:0 rbps=max", "", True),  # all-max devices vanish from io.max
    ("io.max", "8:0 rbps=max wiops=5", "8:0 rbps=max wbps=max riops=max wiops=5", True),
    ("io.max", "8:0 rbps=1", "", False),
    ("io.max", "8:0 wiops=5", "8:16 rbps=max wbps=max riops=max wiops=5", False),
    ("io.bfq.weight", "500", "default 500", True),
    ("io.bfq.weight", "500", "default 100", False),
    ("blkio.bfq.weight", "500", "500", True),
    ("io.weight", "default 500", "default 500", True),
])
def test_fs_matches(name, written, shown, ok):
    assert fs.matches(name, written, shown) is ok


# == fs.FileCache ====================================================================================

def _open_fds():
    return len(os.listdir("/proc/self/fd"))


def test_file_cache_rereads_fresh_content(tmp_path):
    path = str(tmp_path / "pids.current")
    _write(str(tmp_path), "pids.current", "12345\n")
    cache = fs.FileCache()
    try:
        assert cache.read(path) == b"12345\n"
        _write(str(tmp_path), "pids.current", "7\n")  # same inode, shorter content
        assert cache.read(path) == b"7\n"
        _write(str(tmp_path), "pids.current", "123456789\n")
        assert cache.read(path) == b"123456789\n"
    finally:
        cache.close()


def test_file_cache_remembers_absent_files(tmp_path):
    path = str(tmp_path / "memory.stat")
    cache = fs.FileCache()
    try:
        assert cache.read(path) is None
        _write(str(tmp_path), "memory.stat", "anon 1\n")
        assert cache.read(path) is None  # remembered as absent until close()
    finally:
        cache.close()
    assert cache.read(path) == b"anon 1\n"
    cache.close()


def test_file_cache_close_closes_every_fd(tmp_path):
    for i in range(3):
        _write(str(tmp_path), f"f{i}", f"{i}\n")
    baseline = _open_fds()
    cache = fs.FileCache()
    assert [cache.read(str(tmp_path / f"f{i}")) for i in range(3)] == [b"0\n", b"1\n", b"2\n"]
    assert cache.read(str(tmp_path / "absent")) is None
    assert _open_fds() == baseline + 3
    cache.close()
    assert _open_fds() == baseline
    cache.close()  # twice is harmless
    assert cache.read(str(tmp_path / "f1")) == b"1\n"  # reopens after close
    cache.close()
    assert _open_fds() == baseline


def test_manager_close_releases_the_stats_files(v2_tree):
    _, path = v2_tree
    baseline = _open_fds()
    mgr = V2Manager(path)
    mgr.stats()
    assert _open_fds() > baseline
    mgr.close()
    assert _open_fds() == baseline


# == stats.events_data ===============================================================================

def _full_stats():
    return Stats(CgroupStats(
        cpu_stats=CpuStats(CpuUsage(total_usage=2500, percpu_usage=[1500, 1000], percpu_usage_in_kernelmode=[200, 400],
                                    percpu_usage_in_usermode=[1300, 600], usage_in_kernelmode=600,
                                    usage_in_usermode=1900),
                           ThrottlingData(50, 3, 45678000)),
        memory_stats=MemoryStats(cache=18874368, usage=MemoryData(100, 200, 7, 300),
                                 swap_usage=MemoryData(110, 210, 0, 400), kernel_usage=MemoryData(10, 20, 1, 30),
                                 stats={"cache": 18874368, "rss": 4096}),
        pids_stats=PidsStats(3, 64),
        blkio_stats=BlkioStats([BlkioStatEntry(8, 0, "Read", 4096), BlkioStatEntry(8, 0, "Write", 8192)],
                               [BlkioStatEntry(8, 0, "Read", 1)])))


def test_events_data_has_runc_types_stats_keys():
    data = events_data(_full_stats())
    assert data == {
        "cpu": {"usage": {"total": 2500, "percpu": [1500, 1000], "percpu_kernel": [200, 400],
                          "percpu_user": [1300, 600], "kernel": 600, "user": 1900},
                "throttling": {"periods": 50, "throttledPeriods": 3, "throttledTime": 45678000}},
        "memory": {"cache": 18874368,
                   "usage": {"limit": 300, "usage": 100, "max": 200, "failcnt": 7},
                   "swap": {"limit": 400, "usage": 110, "max": 210, "failcnt": 0},
                   "kernel": {"limit": 30, "usage": 10, "max": 20, "failcnt": 1},
                   "raw": {"cache": 18874368, "rss": 4096}},
        "pids": {"current": 3, "limit": 64},
        "blkio": {"ioServiceBytesRecursive": [{"major": 8, "minor": 0, "op": "Read", "value": 4096},
                                              {"major": 8, "minor": 0, "op": "Write", "value": 8192}],
                  "ioServicedRecursive": [{"major": 8, "minor": 0, "op": "Read", "value": 1}]},
        "network_interfaces": None,
    }
    assert json.loads(json.dumps(data)) == data
    assert '"network_interfaces": null' in json.dumps(data)


def test_events_data_leaves_out_absent_parts():
    assert events_data(Stats()) == {"network_interfaces": None}
    cg = CgroupStats(cpu_stats=CpuStats(), memory_stats=MemoryStats())
    data = events_data(Stats(cg))
    assert data["cpu"]["usage"] == {"total": 0, "kernel": 0, "user": 0}  # empty per-CPU lists left out
    assert set(data["memory"]) == {"cache", "usage", "raw"}  # no swap/kernel accounting


def test_events_data_network_interfaces_use_go_names():
    data = events_data(Stats(interfaces=[NetworkInterface("eth0", RxBytes=10, TxPackets=2)]))
    assert data["network_interfaces"] == [{"Name": "eth0", "RxBytes": 10, "RxPackets": 0, "RxErrors": 0,
                                           "RxDropped": 0, "TxBytes": 0, "TxPackets": 2, "TxErrors": 0,
                                           "TxDropped": 0}]


def test_events_data_from_a_v2_stats_read(v2_tree):
    _, path = v2_tree
    mgr = V2Manager(path)
    data = events_data(Stats(mgr.stats()))
    mgr.close()
    assert data["cpu"]["usage"] == {"total": 1234567000, "kernel": 234567000, "user": 1000000000}
    assert data["memory"]["usage"] == {"limit": MAX_UINT64, "usage": 52359168, "max": 61865984, "failcnt": 7}
    assert data["memory"]["raw"]["file"] == 18874368
    assert data["pids"] == {"current": 4, "limit": 0}
    assert data["blkio"]["ioServiceBytesRecursive"][0] == {"major": 8, "minor": 0, "op": "Read", "value": 1459200}
    assert stats_mod.Stats(mgr.stats()).to_dict()["cgroup_stats"]["pids_stats"] == {"current": 4, "limit": 0}
    mgr.close()


def test_v1_rollback_after_the_period_retry_undoes_writes_in_exact_reverse_order(v1_tree, kernel):
    """Regression: the journal was per file, so quota was restored before period (a combination the
    kernel had just refused); and a refused write was "undone" too."""
    root, paths = v1_tree
    before = _snapshot(root)
    kernel.refuse_once["cpu.cfs_period_us"] = errno.EINVAL
    kernel.refuse_once["pids.max"] = errno.EINVAL
    with pytest.raises(errors.SystemError, match=r"pids.max: Invalid argument \(previous values restored\)$"):
        V1Manager(paths).set(Resources(cpu_period=10000, cpu_quota=5000, pids_limit=3))
    assert kernel.writes == [
        ("cpu.cfs_period_us", "10000"),  # refused: old quota / new period
        ("cpu.cfs_quota_us", "5000"), ("cpu.cfs_period_us", "10000"), ("pids.max", "3"),  # pids refused
        ("cpu.cfs_period_us", "100000"), ("cpu.cfs_quota_us", "-1"),  # undone newest first
    ]
    assert _snapshot(root) == before


# -- the memory/memory_swap pair (configs.pair_memory_swap: Container.set and both cgroup drivers) --

MI = 1 << 20


@pytest.mark.parametrize("update, current, paired", [
    (dict(memory=-1), None, dict(memory=-1, memory_swap=-1)),  # unlimited memory lifts swap
    (dict(memory=-1), dict(memory=64 * MI, memory_swap=128 * MI), dict(memory=-1, memory_swap=-1)),
    (dict(memory=64 * MI), None, dict(memory=64 * MI)),  # nothing in force to keep
    (dict(memory=64 * MI), dict(memory=32 * MI, memory_swap=128 * MI), dict(memory=64 * MI, memory_swap=128 * MI)),
    (dict(memory=64 * MI), dict(memory=32 * MI, memory_swap=-1), dict(memory=64 * MI)),  # unlimited swap stays so
    (dict(memory_swap=256 * MI), dict(memory=32 * MI), dict(memory=32 * MI, memory_swap=256 * MI)),
    (dict(memory_swap=-1), dict(memory=32 * MI), dict(memory_swap=-1)),
    (dict(memory=8 * MI, memory_swap=16 * MI), dict(memory=32 * MI, memory_swap=64 * MI),
     dict(memory=8 * MI, memory_swap=16 * MI)),  # both given: as given
    (dict(cpu_shares=512), dict(memory=32 * MI, memory_swap=64 * MI), dict(cpu_shares=512)),
])
def test_pair_memory_swap_fills_the_half_left_out(update, current, paired):
    cur = Resources(**current) if current is not None else None
    assert pair_memory_swap(Resources(**update), cur) == Resources(**paired)


@pytest.mark.parametrize("update, current, needle", [
    (dict(memory=256 * MI), dict(memory=32 * MI, memory_swap=128 * MI),
     "resources.memory: 256Mi is above the container's memory + swap limit 128Mi; give resources.memory_swap too"),
    (dict(memory_swap=256 * MI), dict(memory=-1), "resources.memory_swap: the container has no memory limit"),
    (dict(memory_swap=256 * MI), dict(), "resources.memory_swap: the container has no memory limit"),
])
def test_pair_memory_swap_refuses_an_impossible_pair(update, current, needle):
    with pytest.raises(ConfigInvalid, match=needle.replace("+", r"\+")):
        pair_memory_swap(Resources(**update), Resources(**current))
