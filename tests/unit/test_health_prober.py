"""The prober's scheduling with a fake probe and a fake runtime: a grid that does not drift, one probe
per container at a time, at most ``workers`` at once, updates and check changes, no thread when idle."""

from __future__ import annotations

import os
import threading
import time
from types import SimpleNamespace

import pytest

from declarative_ct.health import record
from declarative_ct.health.check import HealthCheck
from declarative_ct.health.prober import Prober, Target
from declarative_ct.runtime import Status, store

RUN = "2023-11-14T22:13:10.000000000Z"


class _Container:
    def __init__(self, state_dir: str, runs: dict) -> None:
        self.state_dir, self._runs = state_dir, runs
        self.id = os.path.basename(state_dir)

    def status(self):
        return self._runs.get(self.id, {}).get("status", Status.RUNNING)

    def state(self):
        return SimpleNamespace(created=self._runs.get(self.id, {}).get("created", RUN))


class _Runtime:
    """Containers are directories with a state.json; ``runs[name]`` overrides status/created."""

    def __init__(self, root: str) -> None:
        self.root, self.runs = root, {}

    def make(self, name: str) -> None:
        os.makedirs(os.path.join(self.root, name))
        for entry in (store.STATE_FILE, store.LOCK_FILE):
            with open(os.path.join(self.root, name, entry), "w") as f:
                f.write("{}")

    def load(self, name: str):
        return _Container(os.path.join(self.root, name), self.runs)


class _Probe:
    """A probe that notes (name, check, start, end) and passes unless told otherwise."""

    def __init__(self, duration: float = 0.0) -> None:
        self.duration, self.calls, self.lock = duration, [], threading.Lock()
        self.running: dict[str, int] = {}
        self.most_at_once = 0
        self.most_per_name = 0
        self.exit_code = 0

    def __call__(self, container, check, process, fork_server, cancel):
        start = time.monotonic()
        with self.lock:
            self.running[container.id] = self.running.get(container.id, 0) + 1
            self.most_at_once = max(self.most_at_once, sum(self.running.values()))
            self.most_per_name = max(self.most_per_name, self.running[container.id])
        time.sleep(self.duration)
        with self.lock:
            self.running[container.id] -= 1
            self.calls.append((container.id, check, start, time.monotonic()))
        return record.result(time.time(), time.time(), self.exit_code, "ok" if not self.exit_code else "bad")


@pytest.fixture
def rt(tmp_path):
    return _Runtime(str(tmp_path))


def _threads():
    return [t for t in threading.enumerate() if t.name.startswith("dct-prob")]


def test_no_thread_without_targets_and_none_left_after_close(rt):
    prober = Prober(rt, prober=_Probe())
    prober.update([])
    assert not _threads()
    rt.make("a")
    prober.update([Target("a", HealthCheck("tcp", port=1, interval=0.05))])
    assert _threads()
    prober.close()
    assert not _threads()
    with pytest.raises(RuntimeError):
        prober.add(Target("a", HealthCheck("tcp", port=1)))


def test_the_schedule_is_a_grid_that_does_not_drift(rt):
    rt.make("a")
    probe = _Probe(duration=0.02)  # each probe takes a fifth of the interval: a drifting schedule would show it
    with Prober(rt, prober=probe) as prober:
        began = time.monotonic()
        prober.add(Target("a", HealthCheck("tcp", port=1, interval=0.1)))
        time.sleep(1.05)
    starts = [c[2] - began for c in probe.calls]
    assert len(starts) in (10, 11, 12), starts
    for k, start in enumerate(starts):
        assert abs(start - k * 0.1) < 0.08, (k, starts)  # each on its slot, whatever k


def test_a_slow_probe_skips_the_slots_it_missed(rt):
    rt.make("a")
    probe = _Probe(duration=0.25)
    with Prober(rt, prober=probe) as prober:
        began = time.monotonic()
        prober.add(Target("a", HealthCheck("tcp", port=1, interval=0.1)))
        time.sleep(1.0)
    starts = [round(c[2] - began, 1) for c in probe.calls]
    assert probe.most_per_name == 1
    # 0, then the first slot after each end (0.3, 0.6, 0.9): no burst of missed ones
    assert starts[:3] == pytest.approx([0.0, 0.3, 0.6], abs=0.06), starts


def test_at_most_workers_at_once_and_one_probe_per_container(rt):
    names = [f"c{i}" for i in range(6)]
    for n in names:
        rt.make(n)
    probe = _Probe(duration=0.1)
    with Prober(rt, prober=probe, workers=2) as prober:
        prober.update([Target(n, HealthCheck("tcp", port=1, interval=0.05)) for n in names])
        time.sleep(0.8)
        assert len([t for t in _threads() if t.name.startswith("dct-probe-")]) <= 2
    assert probe.most_at_once == 2 and probe.most_per_name == 1
    assert {c[0] for c in probe.calls} == set(names)


def test_update_drops_and_a_changed_check_takes_effect_at_the_next_probe(rt):
    rt.make("a")
    rt.make("b")
    probe = _Probe()
    first, second = HealthCheck("tcp", port=1, interval=0.05), HealthCheck("tcp", port=2, interval=0.05)
    with Prober(rt, prober=probe) as prober:
        prober.update([Target("a", first), Target("b", first)])
        time.sleep(0.2)
        changed = time.monotonic()
        prober.update([Target("a", second)])
        assert prober.names() == ["a"]
        time.sleep(0.2)
        later = [c for c in probe.calls if c[2] > changed + 0.02]  # one handed out just before may start late
        assert later and {c[0] for c in later} == {"a"} and {c[1] for c in later} == {second}
        prober.discard("a")
        assert prober.names() == []


def test_records_status_changes_runs_and_skips(rt):
    rt.make("a")
    probe = _Probe()
    changes = []
    check = HealthCheck("exec", command=("x",), interval=0.05, retries=2)
    with Prober(rt, on_change=lambda *a: changes.append(a[:3]), prober=probe) as prober:
        prober.add(Target("a", check))
        state_dir = os.path.join(rt.root, "a")
        deadline = time.monotonic() + 5
        while not changes and time.monotonic() < deadline:
            time.sleep(0.01)
        assert changes == [("a", "starting", "healthy")]
        probe.exit_code = 1
        while changes[-1][2] != "unhealthy" and time.monotonic() < deadline:
            time.sleep(0.01)
        assert changes[-1] == ("a", "healthy", "unhealthy")
        # not running: skipped, nothing written
        rt.runs["a"] = {"status": Status.STOPPED}
        time.sleep(0.1)
        written = os.stat(os.path.join(state_dir, record.RECORD_FILE)).st_mtime_ns
        calls = len(probe.calls)
        time.sleep(0.2)
        assert len(probe.calls) == calls
        assert os.stat(os.path.join(state_dir, record.RECORD_FILE)).st_mtime_ns == written
        # a new run: a fresh record (starting), no change reported for the old run's status
        rt.runs["a"] = {"created": "2023-11-14T22:14:00.000000000Z"}
        probe.exit_code = 1
        while record.read(state_dir)["run"] != rt.runs["a"]["created"] and time.monotonic() < deadline:
            time.sleep(0.01)
        assert record.read(state_dir)["status"] == "starting" or changes[-1][1] == "starting"


def test_a_record_not_stored_under_a_held_lock_is_stored_with_the_next_result(rt):
    rt.make("a")
    state_dir = os.path.join(rt.root, "a")
    probe = _Probe()
    with Prober(rt, prober=probe) as prober:
        with store.locked(state_dir):  # a destroy or a start holds the container's lock
            prober.add(Target("a", HealthCheck("tcp", port=1, interval=0.05)))
            while len(probe.calls) < 3:
                time.sleep(0.01)
            time.sleep(0.02)
            assert record.read(state_dir) is None  # nothing written meanwhile, kept in memory
            assert len(prober.record("a")["log"]) >= 3
        deadline = time.monotonic() + 5
        while record.read(state_dir) is None and time.monotonic() < deadline:
            time.sleep(0.01)
        assert len(record.read(state_dir)["log"]) >= 4  # the results of the locked time, and the next one
