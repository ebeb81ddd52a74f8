"""The prober's scheduling with a fake probe, a fake runtime and a fake clock: a grid that does not
drift, one probe per container at a time, at most ``workers`` at once (sized from the targets),
updates and check changes, the start period from the run's start, records that turn fresh again,
a failure after the probe that drops no target, no thread when idle.

The clock is the test's: it moves only when a test moves it (:func:`_advance`), then
``Prober.tick`` has the scheduler look at it and ``Prober.wait_idle`` returns once the probes due
by then are done (recorded, stored, reported). Real time only bounds those waits (generously:
a correct prober never comes near them), so a loaded machine cannot change what is seen."""

from __future__ import annotations

import json
import os
import threading
import time
from types import SimpleNamespace

import pytest

from declarative_ct.health import record
from declarative_ct.health.check import HealthCheck
from declarative_ct.health.prober import MAX_WORKERS, MIN_WORKERS, Prober, Target, pool_size
from declarative_ct.runtime import Status, store
from declarative_ct.units import format_time

RUN = "2023-11-14T22:13:10.000000000Z"
WAIT = 10.0  # real seconds a wait may take at most (never reached unless the prober is wrong)


class _Clock:
    """Monotonic seconds that move only when told."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class _Container:
    def __init__(self, state_dir: str, runs: dict) -> None:
        self.state_dir, self._runs = state_dir, runs
        self.id = os.path.basename(state_dir)

    def status(self):
        return self._runs.get(self.id, {}).get("status", Status.RUNNING)

    def state(self):
        broken = self._runs.get(self.id, {}).get("broken")
        if broken:
            self._runs[self.id]["broken"] -= 1
            raise RuntimeError("state.json vanished under us")
        return SimpleNamespace(created=self._runs.get(self.id, {}).get("created", RUN))


class _Runtime:
    """Containers are directories with a state.json; ``runs[name]`` overrides status/created (and
    ``broken``: the next N ``state()`` calls raise)."""

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
    """A probe that notes (name, check, start, end) on the clock and passes unless told otherwise.

    ``duration``: clock seconds each probe takes (it moves the clock: one target at a time only);
    ``gate``: each probe waits until it is set."""

    def __init__(self, clock=time.monotonic, duration: float = 0.0, gate: threading.Event | None = None) -> None:
        self.clock, self.duration, self.gate = clock, duration, gate
        self.calls, self.lock = [], threading.Condition()
        self.running: dict[str, int] = {}
        self.most_at_once = 0
        self.most_per_name = 0
        self.exit_code = 0

    def __call__(self, container, check, process, fork_server, cancel):
        with self.lock:
            start = self.clock()
            self.running[container.id] = self.running.get(container.id, 0) + 1
            self.most_at_once = max(self.most_at_once, sum(self.running.values()))
            self.most_per_name = max(self.most_per_name, self.running[container.id])
            self.lock.notify_all()
        if self.gate is not None:
            assert self.gate.wait(WAIT), "the gate was never opened"
        if self.duration and isinstance(self.clock, _Clock):
            self.clock.now += self.duration
        with self.lock:
            self.running[container.id] -= 1
            self.calls.append((container.id, check, start, self.clock()))
        return record.result(time.time(), time.time(), self.exit_code, "ok" if not self.exit_code else "bad")

    def wait_running(self, count: int) -> None:
        with self.lock:
            assert self.lock.wait_for(lambda: sum(self.running.values()) == count, WAIT), self.running


@pytest.fixture
def rt(tmp_path):
    return _Runtime(str(tmp_path))


@pytest.fixture
def clock():
    return _Clock()


def _advance(prober: Prober, clock: _Clock, seconds: float = 0.0) -> None:
    """Move the clock by ``seconds``; return once the probes due by then are done."""
    clock.now += seconds
    prober.tick()
    assert prober.wait_idle(WAIT), "the prober did not settle"


def _run_until(prober: Prober, clock: _Clock, end: float, step: float = 0.25) -> None:
    """Move the clock to ``end`` by ``step`` (binary fractions: exact sums), settling after each."""
    while clock.now < end:
        _advance(prober, clock, step)


def _threads():
    return [t for t in threading.enumerate() if t.name.startswith("dct-prob")]


def _tcp(port: int = 1, interval: float = 1.0, **timing) -> HealthCheck:
    return HealthCheck("tcp", port=port, interval=interval, **timing)


def test_no_thread_without_targets_and_none_left_after_close(rt):
    prober = Prober(rt, prober=_Probe())
    prober.update([])
    assert not _threads()
    rt.make("a")
    prober.update([Target("a", _tcp(interval=0.05))])
    assert _threads()
    prober.close()
    assert not _threads()
    with pytest.raises(RuntimeError):
        prober.add(Target("a", _tcp()))


def test_the_schedule_is_a_grid_that_does_not_drift(rt, clock):
    rt.make("a")
    probe = _Probe(clock, duration=0.25)  # each probe takes a quarter of the interval: a drifting schedule shows it
    with Prober(rt, prober=probe, clock=clock) as prober:
        prober.add(Target("a", _tcp(interval=1.0)))
        _advance(prober, clock)
        _run_until(prober, clock, 10.0)
    assert [c[2] for c in probe.calls] == [float(k) for k in range(11)]  # each on its slot, not 1.25 after the last


def test_a_slow_probe_skips_the_slots_it_missed(rt, clock):
    rt.make("a")
    probe = _Probe(clock, duration=2.5)
    with Prober(rt, prober=probe, clock=clock) as prober:
        prober.add(Target("a", _tcp(interval=1.0)))
        _advance(prober, clock)
        _run_until(prober, clock, 10.0)
    # 0, then the first slot after each end (2.5 → 3, 5.5 → 6, 8.5 → 9): no burst of the missed ones
    assert [c[2] for c in probe.calls] == [0.0, 3.0, 6.0, 9.0]
    assert probe.most_per_name == 1


def test_at_most_workers_at_once_and_one_probe_per_container(rt, clock):
    names = [f"c{i}" for i in range(6)]
    for n in names:
        rt.make(n)
    gate = threading.Event()
    probe = _Probe(clock, gate=gate)
    with Prober(rt, prober=probe, workers=2, clock=clock) as prober:
        prober.update([Target(n, _tcp(interval=1.0)) for n in names])  # all six due at once
        probe.wait_running(2)
        time.sleep(0.2)  # room for a third to start, were the bound not kept (it never is: no flake)
        assert sum(probe.running.values()) == 2
        assert len([t for t in _threads() if t.name.startswith("dct-probe-")]) == 2
        gate.set()
        _advance(prober, clock)
        _advance(prober, clock, 1.0)  # the next round
    assert probe.most_at_once == 2 and probe.most_per_name == 1
    assert sorted(c[0] for c in probe.calls) == sorted(names * 2)


def test_the_pool_is_sized_from_the_targets(rt):
    assert pool_size([]) == MIN_WORKERS
    default = HealthCheck("tcp", port=1)  # interval 10 s, timeout 5 s: half a thread each when all hang
    assert pool_size([default] * 100) == 52
    assert pool_size([HealthCheck("tcp", port=1, interval=1, timeout=5)] * 3) == 5  # one probe per container
    assert pool_size([default] * 1000) == MAX_WORKERS
    with Prober(rt, prober=_Probe()) as prober:
        assert prober.workers == MIN_WORKERS
        names = [f"c{i}" for i in range(100)]
        prober.update([Target(n, default) for n in names])  # not made: skipped, but counted
        assert prober.workers == 52
        prober.update([Target(n, default) for n in names[:10]])
        assert prober.workers == 7
    with Prober(rt, prober=_Probe(), workers=3) as prober:
        prober.update([Target(f"c{i}", default) for i in range(100)])
        assert prober.workers == 3


def test_update_drops_and_a_changed_check_is_probed_at_once_with_a_fresh_record(rt, clock):
    rt.make("a")
    rt.make("b")
    probe = _Probe(clock)
    first, second = _tcp(1, interval=10.0), _tcp(2, interval=10.0)
    with Prober(rt, prober=probe, clock=clock) as prober:
        prober.update([Target("a", first), Target("b", first)])
        _advance(prober, clock)
        _advance(prober, clock, 1.0)
        prober.update([Target("a", second)])
        assert prober.names() == ["a"]
        _advance(prober, clock)  # at once, not at the old grid's 10
        assert [(c[0], c[1], c[2]) for c in probe.calls[2:]] == [("a", second, 1.0)]
        rec = record.read(os.path.join(rt.root, "a"))
        assert rec["probe"] == second.to_normalized() and len(rec["log"]) == 1  # the first check's result not kept
        _advance(prober, clock, 9.0)
        assert len(probe.calls) == 3  # nothing at 10: the new grid is 1, 11, …
        # the same check with another exec template: no new record, the grid goes on
        prober.update([Target("a", second, process=SimpleNamespace(args=["x"]))])
        _advance(prober, clock, 0.5)
        assert len(probe.calls) == 3
        _advance(prober, clock, 0.5)
        assert [(c[0], c[2]) for c in probe.calls[3:]] == [("a", 11.0)]
        assert len(record.read(os.path.join(rt.root, "a"))["log"]) == 2
        prober.discard("a")
        assert prober.names() == []


def test_a_probe_of_the_old_check_still_out_is_not_recorded(rt, clock):
    rt.make("a")
    gate = threading.Event()
    probe = _Probe(clock, gate=gate)
    first, second = _tcp(1), _tcp(2)
    with Prober(rt, prober=probe, clock=clock) as prober:
        prober.add(Target("a", first))
        probe.wait_running(1)
        prober.add(Target("a", second))  # while the first check's probe runs
        gate.set()
        _advance(prober, clock)
        _advance(prober, clock, 0.25)  # the new check's probe waited for the old one to end
        assert [c[1] for c in probe.calls] == [first, second]
        rec = record.read(os.path.join(rt.root, "a"))
        assert rec["probe"] == second.to_normalized() and len(rec["log"]) == 1


def test_a_stored_record_of_another_check_is_not_carried_over(rt, clock):
    rt.make("a")
    state_dir = os.path.join(rt.root, "a")
    old, new = _tcp(1), _tcp(2)
    started = time.time() - 3600
    stored = {**record.new(RUN, started, started), "status": "unhealthy", "failing_streak": 7,
              "probe": old.to_normalized(), "log": [record.result(started, started, 1, "refused")]}
    record.store(state_dir, stored)
    probe = _Probe(clock)
    probe.exit_code = 1
    with Prober(rt, prober=probe, clock=clock) as prober:
        prober.add(Target("a", new))
        _advance(prober, clock)
    rec = record.read(state_dir)
    assert (rec["status"], rec["failing_streak"], len(rec["log"])) == ("starting", 1, 1)
    assert rec["started_at"] == stored["started_at"]  # the run's start stays the run's


def test_records_status_changes_runs_and_skips(rt, clock):
    rt.make("a")
    probe = _Probe(clock)
    changes = []
    check = HealthCheck("exec", command=("x",), interval=1.0, retries=2)
    state_dir = os.path.join(rt.root, "a")
    with Prober(rt, on_change=lambda *a: changes.append(a[:3]), prober=probe, clock=clock) as prober:
        prober.add(Target("a", check))
        _advance(prober, clock)
        assert changes == [("a", "starting", "healthy")]
        probe.exit_code = 1
        _advance(prober, clock, 1.0)
        assert changes == [("a", "starting", "healthy")]  # one failure of two
        _advance(prober, clock, 1.0)
        assert changes[-1] == ("a", "healthy", "unhealthy")
        # not running: skipped, nothing written
        rt.runs["a"] = {"status": Status.STOPPED}
        calls, written = len(probe.calls), record.read(state_dir)
        _run_until(prober, clock, clock.now + 3.0)
        assert len(probe.calls) == calls and record.read(state_dir) == written
        # a new run: a fresh record (starting), no change reported for the old run's status
        rt.runs["a"] = {"created": "2023-11-14T22:14:00.000000000Z"}
        _advance(prober, clock, 1.0)
        rec = record.read(state_dir)
        assert (rec["run"], rec["status"], rec["failing_streak"], len(rec["log"])) == \
            ("2023-11-14T22:14:00.000000000Z", "starting", 1, 1)
        assert len(changes) == 2


def test_a_record_not_stored_under_a_held_lock_is_stored_with_the_next_result(rt, clock):
    rt.make("a")
    state_dir = os.path.join(rt.root, "a")
    probe = _Probe(clock)
    with Prober(rt, prober=probe, clock=clock) as prober:
        with store.locked(state_dir):  # a destroy or a start holds the container's lock
            prober.add(Target("a", _tcp()))
            _advance(prober, clock)
            _advance(prober, clock, 1.0)
            _advance(prober, clock, 1.0)
            assert record.read(state_dir) is None  # nothing written meanwhile, kept in memory
            assert len(prober.record("a")["log"]) == 3
        _advance(prober, clock, 1.0)
        assert len(record.read(state_dir)["log"]) == 4  # the results of the locked time, and the next one


def test_the_start_period_counts_from_the_start_not_the_create(rt, clock):
    """A container created (stopped) an hour ago and started now: failures within its start period
    of the start do not count (they did when it counted from the run's created time)."""
    rt.make("a")
    rt.runs["a"] = {"created": format_time(time.time() - 3600), "status": Status.CREATED}
    probe = _Probe(clock)
    probe.exit_code = 1
    check = HealthCheck("exec", command=("x",), interval=1.0, retries=1, start_period=600)
    state_dir = os.path.join(rt.root, "a")
    with Prober(rt, prober=probe, clock=clock) as prober:
        prober.add(Target("a", check))
        _run_until(prober, clock, 3.0)
        assert probe.calls == [] and record.read(state_dir) is None  # created, not started: not probed
        rt.runs["a"]["status"] = Status.RUNNING  # `dct start` now
        before = time.time()
        _run_until(prober, clock, 5.0)
    rec = record.read(state_dir)
    assert [c[2] for c in probe.calls] == [4.0, 5.0]  # the slots after the start (the grid of its skips)
    assert len(rec["log"]) == 2 and rec["status"] == "starting" and rec["failing_streak"] == 0
    assert before - 1 <= record.parse_time(rec["started_at"]) <= time.time()


def test_a_stale_record_turning_fresh_is_reported_though_its_status_stays(rt, clock):
    """A supervisor started again takes up a healthy record nobody probed for an hour: its first
    result keeps it healthy, and still wakes the loop (a dependent waiting for a recent probe)."""
    rt.make("a")
    state_dir = os.path.join(rt.root, "a")
    check = _tcp()
    then = time.time() - 3600
    stored = {**record.new(RUN, then, then), "status": "healthy", "probe": check.to_normalized(),
              "log": [record.result(then, then, 0, "ok")]}
    record.store(state_dir, stored)
    changes = []
    with Prober(rt, on_change=lambda *a: changes.append(a[:3]), prober=_Probe(clock), clock=clock) as prober:
        prober.add(Target("a", check))
        _advance(prober, clock)
        assert changes == [("a", "healthy", "healthy")]
        _advance(prober, clock, 1.0)  # fresh now: no more
        assert changes == [("a", "healthy", "healthy")]
    assert len(record.read(state_dir)["log"]) == 3


def test_a_failure_after_the_probe_drops_no_target(rt, clock, capsys):
    rt.make("a")
    rt.runs["a"] = {"broken": 1}  # the record work after the first probe raises
    probe = _Probe(clock)
    with Prober(rt, prober=probe, clock=clock) as prober:
        prober.add(Target("a", _tcp()))
        _advance(prober, clock)
        assert "probing a failed: RuntimeError: state.json vanished under us" in capsys.readouterr().err
        assert record.read(os.path.join(rt.root, "a")) is None
        _advance(prober, clock, 1.0)
        _advance(prober, clock, 1.0)
    assert [c[2] for c in probe.calls] == [0.0, 1.0, 2.0]
    assert len(record.read(os.path.join(rt.root, "a"))["log"]) == 2


def test_the_stored_record_is_json_with_the_check_it_was_made_by(rt, clock):
    rt.make("a")
    check = _tcp(5432)
    with Prober(rt, prober=_Probe(clock), clock=clock) as prober:
        prober.add(Target("a", check))
        _advance(prober, clock)
    with open(os.path.join(rt.root, "a", record.RECORD_FILE)) as f:
        raw = json.load(f)
    assert raw["probe"] == check.to_normalized() and raw["check"] == "tcp :5432"
