"""Integration tests of ``dct update`` and ``dct events`` (runc's update and events), run as a subprocess.

Each test has its own state root (conftest's ``state_root``) and unique ids, deleted with
``dct delete --force`` at teardown pass or fail; the conftest teardown and session leak check
catch anything that still escapes. The cgroup file checks are for cgroup v1 (this host); they
are skipped on a v2 host.
"""

from __future__ import annotations

import json
import os
import queue
import subprocess
import threading
import time
from pathlib import Path
from typing import Any, Callable

import pytest

import dct_cli
from dct_cli import UNTIL_TERM
from declarative_ct.configs import format_cpu_list, parse_cpu_list
from declarative_ct.runtime import cgroups, specconv
from declarative_ct.runtime.events import parse_duration

integration = pytest.mark.integration

UNIFIED = "/sys/fs/cgroup/unified"
# Doubles a string until the memory limit stops it (busybox has no allocator tool).
HOG = "x=a; while :; do x=$x$x; done"
MI = 1 << 20


def _v1() -> bool:
    return cgroups.detect()[0] == "v1"


needs_v1 = pytest.mark.skipif(not _v1(), reason="checks cgroup v1 files (this host's hierarchy)")


# -- helpers ---------------------------------------------------------------------------------
class Dct(dct_cli.Dct):
    """The CLI runner, strict about bad input (one line, nothing on stdout), with resource helpers."""

    def fails(self, *args: Any, **kw: Any) -> subprocess.CompletedProcess:
        return super().fails(*args, one_line=True, **kw)

    def resources(self, cid: str) -> dict:
        """The resources saved in state.json's config."""
        return self.state_json(cid)["config"]["cgroups"]["resources"]

    def cgroup_file(self, cid: str, controller: str, name: str) -> str:
        with open(os.path.join(self.state_json(cid)["cgroup_paths"][controller], name)) as f:
            return f.read().strip()


@pytest.fixture
def dct(state_root: str, unique_id: Callable[[str], str]) -> Dct:
    yield from dct_cli.runner(Dct, state_root, unique_id)


@pytest.fixture
def bundle(tmp_path: Path, busybox_rootfs: str) -> Callable[..., str]:
    """``bundle(script, name, resources=None)``: a bundle running ``sh -c script``; returns its directory."""

    def make(script: str, name: str, resources: dict | None = None) -> str:
        spec = specconv.example_spec()
        spec["root"]["path"] = busybox_rootfs
        spec["process"]["args"] = ["sh", "-c", script]
        spec["process"]["terminal"] = False
        if resources is not None:
            spec["linux"]["resources"] = resources
        path = tmp_path / name
        path.mkdir()
        (path / "config.json").write_text(json.dumps(spec))
        return str(path)

    return make


@pytest.fixture
def running(dct: Dct, bundle) -> str:
    """A running container with a 64Mi memory limit (memory+swap 128Mi where swap is accounted); its id."""
    memory: dict[str, int] = {"limit": 64 * MI}
    if _swap_accounting():
        memory["swap"] = 128 * MI
    cid = dct.new_id("upd")
    dct.ok("run", "-d", "--bundle", bundle(UNTIL_TERM, "running", {"memory": memory}), cid)
    return cid


def _swap_accounting() -> bool:
    return os.path.exists("/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes")


def _blkio_weight_file(dct: Dct, cid: str) -> str | None:
    directory = dct.state_json(cid)["cgroup_paths"].get("blkio")
    for name in ("blkio.weight", "blkio.bfq.weight"):
        if directory and os.path.exists(os.path.join(directory, name)):
            return name
    return None


def _snapshot(dct: Dct, cid: str) -> dict[str, str]:
    """Every limit file ``dct update`` may write, and state.json's resources."""
    files = {("memory", "memory.limit_in_bytes"), ("memory", "memory.soft_limit_in_bytes"), ("cpu", "cpu.shares"),
             ("cpu", "cpu.cfs_quota_us"), ("cpu", "cpu.cfs_period_us"), ("cpuset", "cpuset.cpus"),
             ("cpuset", "cpuset.mems"), ("pids", "pids.max")}
    if _swap_accounting():
        files.add(("memory", "memory.memsw.limit_in_bytes"))
    weight = _blkio_weight_file(dct, cid)
    if weight:
        files.add(("blkio", weight))
    out = {f"{c}/{n}": dct.cgroup_file(cid, c, n) for c, n in sorted(files)}
    out["state.json"] = json.dumps(dct.resources(cid), sort_keys=True)
    return out


class Lines:
    """The stdout lines of a ``dct events`` process, read by a thread so that reads can time out."""

    def __init__(self, proc: subprocess.Popen) -> None:
        self.proc = proc
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self._queue.put(line)
        self._queue.put(None)

    def next(self, timeout: float) -> dict | None:
        """The next event (parsed), or None at end of output; fails the test after ``timeout`` s."""
        try:
            line = self._queue.get(timeout=timeout)
        except queue.Empty:
            pytest.fail(f"no event from dct events within {timeout}s")
        return None if line is None else json.loads(line)

    def until(self, event_type: str, timeout: float) -> list[dict]:
        """Events up to and including the first of ``event_type``; fails if output ends or time runs out first."""
        seen: list[dict] = []
        deadline = time.monotonic() + timeout
        while True:
            event = self.next(max(0.01, deadline - time.monotonic()))
            assert event is not None, f"dct events ended before a {event_type!r} event: {seen}"
            seen.append(event)
            if event["type"] == event_type:
                return seen


@pytest.fixture
def events_proc(dct: Dct):
    """``events_proc(*args)``: start ``dct events ...``; returns :class:`Lines`; killed at teardown."""
    procs: list[subprocess.Popen] = []

    def start(*args: Any) -> Lines:
        proc = subprocess.Popen(dct.argv("events", *args), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                stdin=subprocess.DEVNULL, text=True, env=dct.env())
        procs.append(proc)
        return Lines(proc)

    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=10)
        proc.stdout.close()
        proc.stderr.close()


def _check_stats_event(event: dict, cid: str) -> dict:
    assert set(event) == {"type", "id", "data"}
    assert event["type"] == "stats" and event["id"] == cid
    data = event["data"]
    assert {"cpu", "memory", "pids", "blkio", "network_interfaces"} <= set(data)
    assert data["network_interfaces"] is None
    return data


# -- update --------------------------------------------------------------------------------------
@integration
@needs_v1
def test_update_flags_change_the_cgroup_files_and_state_json(dct: Dct, running: str) -> None:
    cid = running
    args = ["--memory", "96m", "--memory-reservation", "32Mi", "--cpu-shares", "512", "--cpu-period", "50000",
            "--cpu-quota", "25000", "--cpuset-cpus", "0", "--cpuset-mems", "0", "--pids-limit", "42"]
    if _swap_accounting():
        args += ["--memory-swap", "192m"]
    weight = _blkio_weight_file(dct, cid)
    if weight:
        args += ["--blkio-weight", "300"]
    r = dct.ok("update", cid, *args)
    assert r.stdout == "" and r.stderr == ""

    assert dct.cgroup_file(cid, "memory", "memory.limit_in_bytes") == str(96 * MI)
    assert dct.cgroup_file(cid, "memory", "memory.soft_limit_in_bytes") == str(32 * MI)
    assert dct.cgroup_file(cid, "cpu", "cpu.shares") == "512"
    assert dct.cgroup_file(cid, "cpu", "cpu.cfs_period_us") == "50000"
    assert dct.cgroup_file(cid, "cpu", "cpu.cfs_quota_us") == "25000"
    assert dct.cgroup_file(cid, "cpuset", "cpuset.cpus") == "0"
    assert dct.cgroup_file(cid, "cpuset", "cpuset.mems") == "0"
    assert dct.cgroup_file(cid, "pids", "pids.max") == "42"
    saved = dct.resources(cid)
    assert {k: saved[k] for k in ("memory", "memory_reservation", "cpu_shares", "cpu_period", "cpu_quota",
                                  "cpuset_cpus", "cpuset_mems", "pids_limit")} == {
        "memory": 96 * MI, "memory_reservation": 32 * MI, "cpu_shares": 512, "cpu_period": 50000,
        "cpu_quota": 25000, "cpuset_cpus": "0", "cpuset_mems": "0", "pids_limit": 42}
    if _swap_accounting():
        assert dct.cgroup_file(cid, "memory", "memory.memsw.limit_in_bytes") == str(192 * MI)
        assert saved["memory_swap"] == 192 * MI
    if weight:
        assert dct.cgroup_file(cid, "blkio", weight).split()[-1] == "300"
        assert saved["blkio_weight"] == 300

    # Only what is given changes; -1 / "unlimited" lift limits.
    dct.ok("update", cid, "--pids-limit", "-1", "--cpu-quota=-1")
    assert dct.cgroup_file(cid, "pids", "pids.max") == "max"
    assert dct.cgroup_file(cid, "cpu", "cpu.cfs_quota_us") == "-1"
    assert dct.cgroup_file(cid, "cpu", "cpu.shares") == "512"
    assert dct.cgroup_file(cid, "memory", "memory.limit_in_bytes") == str(96 * MI)
    dct.ok("update", cid, "--memory", "unlimited", "--memory-swap", "-1")
    assert int(dct.cgroup_file(cid, "memory", "memory.limit_in_bytes")) >= 1 << 62
    assert dct.resources(cid)["memory"] == -1 and dct.resources(cid)["pids_limit"] == -1
    assert dct.status(cid) == "running"


@integration
@needs_v1
def test_update_resources_file_and_stdin(dct: Dct, running: str, tmp_path: Path) -> None:
    cid = running
    path = tmp_path / "resources.json"
    path.write_text(json.dumps({"memory": {"limit": 80 * MI}, "cpu": {"shares": 256, "cpus": "1"},
                                "pids": {"limit": 33}}))
    dct.ok("update", "-r", path, cid)
    assert dct.cgroup_file(cid, "memory", "memory.limit_in_bytes") == str(80 * MI)
    assert dct.cgroup_file(cid, "cpu", "cpu.shares") == "256"
    assert dct.cgroup_file(cid, "cpuset", "cpuset.cpus") == "1"
    assert dct.cgroup_file(cid, "pids", "pids.max") == "33"

    dct.ok("update", cid, "--resources", "-", input=json.dumps({"pids": {"limit": 44}}))
    assert dct.cgroup_file(cid, "pids", "pids.max") == "44"
    assert dct.cgroup_file(cid, "cpu", "cpu.shares") == "256"  # untouched
    assert dct.resources(cid)["pids_limit"] == 44 and dct.resources(cid)["cpu_shares"] == 256


@integration
@needs_v1
def test_update_bad_values_change_nothing(dct: Dct, running: str, tmp_path: Path) -> None:
    cid = running
    before = _snapshot(dct, cid)
    cases: list[tuple[tuple[str, ...], tuple[str, ...]]] = [
        (("--memory", "-5"), ("--memory", "negative")),
        (("--memory", "lots"), ("--memory", "'lots'")),
        (("--memory", "1k"), ("--memory", "below 1Mi")),
        (("--memory", "64m", "--memory-swap", "32m"), ("--memory-swap", "below memory")),
        (("--cpu-shares", "abc"), ("--cpu-shares", "not an integer")),
        (("--cpu-shares", "1"), ("--cpu-shares", "[2, 262144]")),
        (("--cpu-quota", "-7"), ("--cpu-quota", "negative")),
        (("--cpu-period", "10"), ("--cpu-period", "[1000, 1000000]")),
        (("--pids-limit", "0"), ("--pids-limit", "positive")),
        (("--pids-limit", "-2"), ("--pids-limit",)),
        (("--blkio-weight", "5"), ("--blkio-weight", "[10, 1000]")),
        (("--cpuset-cpus", "0-1,x"), ("--cpuset-cpus",)),
        (("--cpuset-cpus", "4096"), ("--cpuset-cpus", "4096", "not available")),
        (("--cpuset-mems", "63"), ("--cpuset-mems", "63", "not available")),
        # One good flag with one bad: the good one is not applied either.
        (("--pids-limit", "7", "--cpu-shares", "100", "--cpuset-cpus", "4096"), ("--cpuset-cpus",)),
        (("--memory", "64m", "-r", str(tmp_path / "none.json")), ("-r/--resources", "not both")),
        (("-r", str(tmp_path / "none.json")), ("--resources", "none.json", "cannot read")),
    ]
    if _swap_accounting():  # the container's memory+swap limit is 128Mi
        cases.append((("--memory", "256m"), ("--memory", "memory + swap", "--memory-swap")))
    for args, needles in cases:
        dct.fails("update", cid, *args, needles=needles)
        assert _snapshot(dct, cid) == before, f"dct update {' '.join(args)} changed something"
    for text, needles in (
            ('{"memory": {"limit": "64m"}}', ("linux.resources.memory.limit", "integer")),
            ('{"memory": {"limit": 67108864, "swap": 1048576}}', ("linux.resources.memory.swap", "below memory")),
            ('{"cpu": {"cpus": "4096"}}', ("linux.resources.cpu.cpus", "not available")),
            ('{"cpu": {"realtimeRuntime": 5}}', ("linux.resources.cpu.realtimeRuntime", "not supported")),
            ('{"devices": [{"allow": true, "access": "rwm"}]}', ("linux.resources.devices",)),
            ('{"memory": {', ("--resources -", "invalid JSON")),
            ('[1]', ("linux.resources", "object")),
            ('{}', ("--resources -", "no limit"))):
        dct.fails("update", cid, "-r", "-", input=text, needles=needles)
        assert _snapshot(dct, cid) == before, f"dct update -r - <<< {text} changed something"
    assert dct.status(cid) == "running"


@integration
def test_update_usage_missing_and_stopped(dct: Dct, bundle, wait_for) -> None:
    r = dct("update", "whatever")  # no limit at all: a usage error
    assert r.returncode == 1 and "usage: dct update" in r.stderr and "Traceback" not in r.stderr
    missing = dct.new_id("nothere")
    dct.fails("update", missing, "--memory", "64m", needles=(missing, "does not exist"))
    assert not os.path.exists(os.path.join(dct.root, missing))

    cid = dct.new_id("stopped")
    dct.ok("run", "-d", "--bundle", bundle("exit 0", "stopped"), cid)
    wait_for(lambda: dct.status(cid) == "stopped", message=f"{cid} to stop")
    before = dct.resources(cid)
    dct.fails("update", cid, "--pids-limit", "10", needles=(cid, "stopped"))
    assert dct.resources(cid) == before


@integration
@pytest.mark.skipif(not os.path.exists(os.path.join(UNIFIED, "cgroup.controllers")),
                    reason="no cgroup2 hierarchy at " + UNIFIED)
def test_update_names_a_controller_that_is_not_available(dct: Dct, bundle, monkeypatch) -> None:
    """On this hybrid host's unified hierarchy no memory/pids controller can be enabled."""
    with open(os.path.join(UNIFIED, "cgroup.controllers")) as f:
        if "pids" in f.read().split():
            pytest.skip("the pids controller is available on the unified hierarchy here")
    monkeypatch.setenv(cgroups.V2_MOUNT_ENV, UNIFIED)
    cid = dct.new_id("v2upd")
    dct.ok("run", "-d", "--bundle", bundle(UNTIL_TERM, "v2"), cid)
    before = dct.resources(cid)
    dct.fails("update", cid, "--pids-limit", "10", needles=("--pids-limit", "has no pids controller at all"))
    assert dct.resources(cid) == before
    assert dct.status(cid) == "running"


# -- events -------------------------------------------------------------------------------------------
@integration
def test_events_stats_prints_one_line_with_the_cgroup_figures(dct: Dct, bundle, wait_for) -> None:
    cid = dct.new_id("evs")
    dct.ok("run", "-d", "--bundle", bundle("sleep 1000 & sleep 1000 & wait", "evs",
                                           {"memory": {"limit": 64 * MI}, "pids": {"limit": 20}}), cid)
    wait_for(lambda: len(json.loads(dct.ok("ps", "--format", "json", cid).stdout)) == 3,
             message="sh and its two sleeps")
    r = dct.ok("events", "--stats", cid)
    lines = r.stdout.splitlines()
    assert len(lines) == 1 and r.stdout.endswith("\n"), r.stdout
    data = _check_stats_event(json.loads(lines[0]), cid)
    assert data["pids"] == {"current": 3, "limit": 20}
    assert data["memory"]["usage"]["usage"] > 0
    assert data["memory"]["usage"]["limit"] == 64 * MI
    assert data["cpu"]["usage"]["total"] > 0
    if _v1():
        assert str(data["pids"]["current"]) == dct.cgroup_file(cid, "pids", "pids.current")
        usage = int(dct.cgroup_file(cid, "memory", "memory.usage_in_bytes"))
        assert abs(data["memory"]["usage"]["usage"] - usage) < 4 * MI

    dct.fails("events", "--interval", "0s", cid, needles=("--interval", "greater than 0"))
    dct.fails("events", "--interval", "soon", cid, needles=("--interval", "'soon'"))
    missing = dct.new_id("nothere")
    dct.fails("events", "--stats", missing, needles=(missing, "does not exist"))
    dct.ok("kill", cid, "KILL")
    wait_for(lambda: dct.status(cid) == "stopped", message=f"{cid} to stop")
    dct.fails("events", "--stats", cid, needles=(cid, "not running"))
    dct.fails("events", cid, needles=(cid, "not running"))


def _oom_bundle(bundle, script: str, name: str) -> str:
    memory: dict[str, int] = {"limit": 16 * MI}
    if _swap_accounting():
        memory["swap"] = 16 * MI  # no swapping instead of the OOM kill
    return bundle(script, name, {"memory": memory})


@integration
def test_events_streams_stats_and_an_oom_then_ends_with_the_container(dct: Dct, bundle, events_proc) -> None:
    cid = dct.new_id("evoom")
    dct.ok("run", "-d", "--bundle", _oom_bundle(bundle, UNTIL_TERM, "evoom"), cid)
    events = events_proc("--interval", "100ms", cid)
    _check_stats_event(events.next(timeout=10), cid)
    _check_stats_event(events.next(timeout=5), cid)  # and again, every 100 ms

    r = dct("exec", cid, "--", "sh", "-c", HOG, timeout=60)
    assert r.returncode == 137, (r.returncode, r.stderr)  # SIGKILLed by the OOM killer
    seen = events.until("oom", timeout=10)
    assert seen[-1] == {"type": "oom", "id": cid}
    assert all(e["type"] == "stats" for e in seen[:-1])
    assert dct.status(cid) == "running"  # only the exec'd shell was killed
    assert events.proc.poll() is None

    dct.ok("kill", cid, "KILL")
    assert events.proc.wait(timeout=10) == 0
    rest = []
    while (event := events.next(timeout=5)) is not None:
        rest.append(event)
    assert all(e["type"] == "stats" for e in rest), rest  # one oom: one event
    assert events.proc.stderr.read() == ""


@integration
def test_events_reports_the_oom_of_init_at_once_and_exits(dct: Dct, bundle, events_proc) -> None:
    """With an interval of an hour, the oom event and the end come from the kernel's notifications."""
    cid = dct.new_id("evinit")
    # init turns into the memory hog on SIGUSR1 (an init only gets the signals it handles).
    script = f"trap '{HOG}' USR1; while :; do sleep 0.1; done"
    dct.ok("run", "-d", "--bundle", _oom_bundle(bundle, script, "evinit"), cid)
    events = events_proc("--interval", "1h", cid)
    _check_stats_event(events.next(timeout=10), cid)  # the first stats event comes at once
    start = time.monotonic()
    dct.ok("kill", cid, "USR1")
    assert events.next(timeout=20) == {"type": "oom", "id": cid}
    assert events.next(timeout=10) is None  # init died: the stream ends
    assert events.proc.wait(timeout=5) == 0
    assert time.monotonic() - start < 30
    assert dct.status(cid) == "stopped"


# -- interval parsing ------------------------------------------------------------------------------
@pytest.mark.parametrize(("text", "seconds"), [("5s", 5.0), ("500ms", 0.5), ("1m", 60.0), ("1m30s", 90.0),
                                               ("1.5h", 5400.0), ("100us", 1e-4), ("2", 2.0), ("0.25", 0.25)])
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "s", "5x", "5 s", "-1s", "0", "0s", "nan", "inf", "1m-5s"])
def test_parse_duration_refuses(text: str) -> None:
    from declarative_ct.errors import ConfigInvalid

    with pytest.raises(ConfigInvalid, match="--interval"):
        parse_duration(text, "--interval")


@needs_v1
def test_a_limit_refused_at_create_names_the_bundle_field(dct: Dct, bundle) -> None:
    b = bundle(UNTIL_TERM, "cpus", resources={"cpu": {"cpus": "0-63"}})
    cid = dct.new_id("cpus")
    dct.fails("run", "-d", "--bundle", b, cid,
              needles=(f"{b}/config.json: linux.resources.cpu.cpus: '0-63' includes", "available: 0-"))
    assert dct.entries() == []


def test_cpus_outside_the_host_are_named_as_ranges(dct: Dct, bundle) -> None:
    """Regression: a fresh root (no cgroup parent yet) gave 'includes 2,3,4,…,63 (available: 0,1)'."""
    b = bundle(UNTIL_TERM, "cpus2", resources={"cpu": {"cpus": "0-63"}})
    cid = dct.new_id("cpus2")
    online = format_cpu_list(parse_cpu_list(open("/sys/devices/system/cpu/online").read().strip()))
    dct.fails("run", "-d", "--bundle", b, cid, needles=(f"(available: {online})",))
