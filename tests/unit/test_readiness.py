"""depends_on conditions and --wait readiness: the verdicts, the messages, and apply's gates (with a
fake runtime: which action starts when, what is read, what a dependent is told)."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from types import SimpleNamespace

import pytest

from declarative_ct.errors import ContainerNotExists
from declarative_ct.health import record
from declarative_ct.health.check import HealthCheck
from declarative_ct.reconcile import readiness
from declarative_ct.reconcile import wait as waiting
from declarative_ct.reconcile.gates import DEFERRED, Gates
from declarative_ct.reconcile.plan import Action
from declarative_ct.reconcile.readiness import FAIL, OK, WAIT, Sight, Verdict
from declarative_ct.runtime import Status
from declarative_ct.units import format_time

HEALTH = {"exec": ["true"], "http": None, "tcp": None, "interval": 1.0, "timeout": 1.0, "retries": 3,
          "start_period": 0.0, "on_unhealthy": "none"}
CHECK = HealthCheck.from_normalized(HEALTH)


def _rec(status: str, code: int | None = None, output: str = "") -> dict:
    """A record of run ``r1`` as the prober writes one (``probe``: the check; times: now)."""
    now = format_time(time.time())
    rec = {"status": status, "failing_streak": 0, "run": "r1", "started_at": now, "probe": HEALTH, "log": []}
    if code is not None:
        rec["log"] = [{"start": now, "end": now, "exit_code": code, "output": output}]
    return rec


# -- verdicts -------------------------------------------------------------------------------------

def test_started_needs_nothing_read():
    assert readiness.condition_verdict("started", Sight(None), False) == Verdict(OK)


@pytest.mark.parametrize("sight, expected", [
    (Sight("running"), Verdict(WAIT, "running")),
    (Sight("created"), Verdict(WAIT, "created")),
    (Sight("stopped", None), Verdict(WAIT, "stopped, its exit not recorded yet")),
    (Sight("stopped", {"exit_code": 0, "signal": 0}), Verdict(OK, "exited 0")),
    (Sight("stopped", {"exit_code": 3, "signal": 0}), Verdict(FAIL, "exited 3")),
    (Sight("stopped", {"exit_code": 137, "signal": 9}), Verdict(FAIL, "killed by SIGKILL")),
    (Sight("stopped", {"exit_code": 137, "signal": 9, "oom_killed": True}), Verdict(FAIL, "OOM-killed")),
    (Sight(None), Verdict(FAIL, "absent")),
])
def test_completed(sight, expected):
    assert readiness.condition_verdict("completed", sight, False) == expected


@pytest.mark.parametrize("sight, expected", [
    (Sight("running"), Verdict(WAIT, "starting")),  # no record yet
    (Sight("running", record=_rec("starting", 1, "connection refused\n")),
     Verdict(WAIT, "starting; last probe exit 1: connection refused")),
    (Sight("running", record=_rec("healthy", 0, "ok")), Verdict(OK, "healthy")),
    (Sight("running", record=_rec("unhealthy", 1, "refused")), Verdict(FAIL, "unhealthy; last probe exit 1: refused")),
    (Sight("stopped", {"exit_code": 1, "signal": 0}, _rec("healthy", 0)), Verdict(FAIL, "exited 1")),
    (Sight(None), Verdict(FAIL, "absent")),
])
def test_healthy(sight, expected):
    assert readiness.condition_verdict("healthy", sight, True) == expected


def test_healthy_without_a_probe_means_running():
    assert readiness.condition_verdict("healthy", Sight("running"), False).state == OK
    assert readiness.condition_verdict("healthy", Sight("created"), False).state == WAIT


# -- messages -------------------------------------------------------------------------------------

def test_messages_name_the_dependency_the_condition_and_what_was_seen():
    starting = Verdict(WAIT, "starting; last probe exit 1: connection refused")
    assert readiness.condition_message("db", "healthy", starting, 60) == \
        "db did not become healthy within 1m (starting; last probe exit 1: connection refused)"
    assert readiness.condition_message("db", "healthy", starting, 2.5) == \
        "db did not become healthy within 2.5s (starting; last probe exit 1: connection refused)"
    assert readiness.condition_message("db", "healthy", Verdict(WAIT, "starting"), 0) == \
        "waiting for db to be healthy (starting)"
    assert readiness.condition_message("migrate", "completed", Verdict(WAIT, "running"), 0) == \
        "waiting for migrate to complete (running)"
    assert readiness.condition_message("migrate", "completed", Verdict(WAIT, "running"), 5) == \
        "migrate did not complete within 5s (running)"
    assert readiness.condition_message("migrate", "completed", Verdict(FAIL, "exited 3"), 60) == "migrate exited 3"
    assert readiness.condition_message("db", "healthy", Verdict(FAIL, "unhealthy; last probe exit 1: refused"),
                                       60) == "db is unhealthy (last probe exit 1: refused)"
    assert readiness.condition_message("db", "healthy", Verdict(FAIL, "exited 1"), 60) == \
        "db is not running (exited 1): it cannot become healthy"
    assert readiness.condition_message("db", "healthy", Verdict(FAIL, "absent"), 60) == "db does not exist"


# -- readiness for --wait -------------------------------------------------------------------------

@pytest.mark.parametrize("state, sight, has_health, completes, expected", [
    ("running", Sight("running"), False, False, Verdict(OK, "running")),
    ("running", Sight("running"), True, False, Verdict(WAIT, "starting")),
    ("running", Sight("running", record=_rec("healthy", 0)), True, False, Verdict(OK, "healthy")),
    ("running", Sight("running", record=_rec("unhealthy", 1, "no")), True, False,
     Verdict(FAIL, "unhealthy; last probe exit 1: no")),
    ("running", Sight("stopped", {"exit_code": 2, "signal": 0}), False, False, Verdict(FAIL, "exited 2")),
    ("running", Sight("stopped", {"exit_code": 0, "signal": 0}), False, True, Verdict(OK, "completed")),
    ("running", Sight("stopped", {"exit_code": 4, "signal": 0}), False, True, Verdict(FAIL, "exited 4")),
    ("running", Sight(None), False, False, Verdict(FAIL, "absent")),
    ("paused", Sight("paused"), True, False, Verdict(OK, "paused")),
    ("paused", Sight("pausing"), False, False, Verdict(WAIT, "pausing")),
    ("stopped", Sight("created"), True, False, Verdict(OK, "created")),
    ("stopped", Sight("stopped"), False, False, Verdict(OK, "stopped")),
])
def test_ready_verdict(state, sight, has_health, completes, expected):
    assert readiness.ready_verdict(state, sight, has_health, completes) == expected


# -- the gates, on a fake runtime -----------------------------------------------------------------

class _Spec:
    def __init__(self, name: str, conditions: dict | None = None, health: dict | None = None,
                 state: str = "running") -> None:
        self.name, self.state, self.health = name, state, health
        self._conditions = conditions or {}

    def dependencies(self) -> list[str]:
        return sorted(self._conditions)

    def dependency_conditions(self) -> dict[str, str]:
        return dict(self._conditions)

    def normalized(self) -> dict:
        return {"process": {"args": ["x"], "env": {}, "cwd": "/", "user": "0:0"}, "health": self.health}


class _Container:
    def __init__(self, world, name):
        self.world, self.name = world, name

    def status(self):
        return Status(self.world.status[self.name])

    def exit_status(self):
        return self.world.exits.get(self.name)

    def state(self):
        return SimpleNamespace(created="r1")

    @property
    def config(self):  # the dct.spec label of a container made by another apply
        return SimpleNamespace(label=lambda key: self.world.labels.get(self.name))

    def close(self):
        pass


class _World:
    """A fake runtime: statuses by name; a root whose health records the test writes."""

    def __init__(self, root: str) -> None:
        self.root = root
        self.status: dict[str, str] = {}
        self.exits: dict[str, dict] = {}
        self.labels: dict[str, str] = {}  # name -> its dct.spec label's text
        self.loads: list[str] = []

    def load(self, name):
        self.loads.append(name)
        if name not in self.status:
            raise ContainerNotExists(name)
        return _Container(self, name)


class _Probes:
    def __init__(self):
        self.watched = []
        self.targets = []

    def watch(self, target, unprobed=False):
        self.watched.append(target.name)
        self.targets.append(target)
        self.unprobed = unprobed


def _gates(world, specs, timeout, clock=None, probes=None):
    docs = {s.name: SimpleNamespace(spec=s) for s in specs}
    actions = [Action(s.name, "create", "not created yet", ("create", "start")) for s in specs]
    order: list[str] = []
    skipped: dict[str, str] = {}
    failed: set[str] = set()
    lock = threading.Lock()

    def run(action):
        with lock:
            order.append(action.container)
        world.status[action.container] = "running"

    def skip(action, why):
        skipped[action.container] = why
        failed.add(action.container)

    gates = Gates(actions, docs, world, probes or _Probes(), timeout, **({"clock": clock} if clock else {}))
    with ThreadPoolExecutor(2) as pool:
        gates.run(pool, run, skip, failed)
    return order, skipped


def _write(root, name, rec):
    import json
    import os
    os.makedirs(os.path.join(root, name), exist_ok=True)
    with open(os.path.join(root, name, record.RECORD_FILE), "w") as f:
        json.dump(rec, f)


def test_started_conditions_read_nothing_and_keep_the_order(tmp_path):
    world = _World(str(tmp_path))
    order, skipped = _gates(world, [_Spec("web", {"db": "started"}), _Spec("db")], 5)
    assert order == ["db", "web"] and not skipped
    assert world.loads == []  # no record, no status read: a started condition costs nothing


def test_a_dependent_waits_for_healthy_while_the_others_go_on(tmp_path):
    world = _World(str(tmp_path))
    probes = _Probes()
    specs = [_Spec("db", health=HEALTH), _Spec("web", {"db": "healthy"}), _Spec("other")]

    def turn_healthy():  # the probe passes a little later
        import time
        time.sleep(0.3)
        _write(world.root, "db", _rec("healthy", 0, "ok"))

    t = threading.Thread(target=turn_healthy)
    t.start()
    order, skipped = _gates(world, specs, 10, probes=probes)
    t.join()
    assert not skipped and order[-1] == "web" and set(order) == {"db", "web", "other"}
    assert probes.watched and set(probes.watched) == {"db"}


def test_an_unhealthy_dependency_fails_its_dependents_with_its_last_output(tmp_path):
    world = _World(str(tmp_path))
    _write(world.root, "db", _rec("unhealthy", 1, "connection refused"))
    world.status["db"] = "running"
    specs = [_Spec("web", {"db": "healthy"}), _Spec("db", health=HEALTH)]
    docs = {s.name: SimpleNamespace(spec=s) for s in specs}
    gates = Gates([Action("web", "create", "x", ("create", "start"))], docs, world, _Probes(), 10)
    assert gates.gate(gates.pending[0], set()) == (FAIL, "db is unhealthy (last probe exit 1: connection refused)")


def test_the_deadline_skips_with_the_last_output_and_a_zero_timeout_does_not_wait(tmp_path):
    world = _World(str(tmp_path))
    world.status["db"] = "running"
    _write(world.root, "db", _rec("starting", 1, "connection refused"))
    specs = [_Spec("web", {"db": "healthy"}), _Spec("db", health=HEALTH)]
    docs = {s.name: SimpleNamespace(spec=s) for s in specs}
    now = [100.0]
    gates = Gates([Action("web", "create", "x", ("create", "start"))], docs, world, _Probes(), 60,
                  clock=lambda: now[0])
    assert gates.gate(gates.pending[0], set()) == (WAIT, "")
    now[0] = 160.0
    assert gates.gate(gates.pending[0], set()) == (
        FAIL, "db did not become healthy within 1m (starting; last probe exit 1: connection refused)")
    zero = Gates([Action("web", "create", "x", ("create", "start"))], docs, world, _Probes(), 0)
    assert zero.gate(zero.pending[0], set()) == (
        DEFERRED, "waiting for db to be healthy (starting; last probe exit 1: connection refused)")


def test_a_record_of_an_earlier_run_does_not_count(tmp_path):
    world = _World(str(tmp_path))
    world.status["db"] = "running"
    _write(world.root, "db", {**_rec("healthy", 0), "run": "r0"})
    assert readiness.look(world, "db", CHECK).record is None
    assert readiness.look(world, "db").record is None


def test_a_stale_record_waits_for_a_fresh_result(tmp_path):
    """Regression: an unhealthy record left by an apply's prober long ago blocked the dependents for good."""
    world = _World(str(tmp_path))
    world.status["db"] = "running"
    old = {**_rec("unhealthy", 1, "refused"), "log": [{"start": "2020-01-15T08:00:00Z", "end": "2020-01-15T08:00:00Z",
                                                       "exit_code": 1, "output": "refused"}]}
    _write(world.root, "db", old)
    then = record.parse_time("2020-01-15T08:00:00Z")
    fresh = readiness.look(world, "db", CHECK, now=then + 1)
    assert not fresh.stale and readiness.condition_verdict("healthy", fresh, True).state == FAIL
    stale = readiness.look(world, "db", CHECK, now=then + 60)
    assert stale.stale
    assert readiness.condition_verdict("healthy", stale, True) == Verdict(
        WAIT, "no recent probe, last unhealthy; last probe exit 1: refused")
    specs = [_Spec("web", {"db": "healthy"}), _Spec("db", health=HEALTH)]
    probes = _Probes()
    gates = Gates([Action("web", "create", "x", ("create", "start"))], {s.name: SimpleNamespace(spec=s) for s in specs},
                  world, probes, 60)
    assert gates.gate(gates.pending[0], set()) == (WAIT, "") and probes.watched == ["db"]  # probed anew


def test_completed_exit_codes(tmp_path):
    world = _World(str(tmp_path))
    world.status["job"] = "stopped"
    world.exits["job"] = {"exit_code": 3, "signal": 0}
    specs = [_Spec("app", {"job": "completed"}), _Spec("job")]
    docs = {s.name: SimpleNamespace(spec=s) for s in specs}
    gates = Gates([Action("app", "create", "x", ("create", "start"))], docs, world, _Probes(), 60)
    assert gates.gate(gates.pending[0], set()) == (FAIL, "job exited 3")
    world.exits["job"] = {"exit_code": 0, "signal": 0}
    assert gates.gate(gates.pending[0], set()) == (OK, "")


def test_a_failed_dependency_is_left_to_run_which_names_it(tmp_path):
    world = _World(str(tmp_path))
    specs = [_Spec("web", {"db": "healthy"}), _Spec("db", health=HEALTH)]
    docs = {s.name: SimpleNamespace(spec=s) for s in specs}
    gates = Gates([Action("web", "create", "x", ("create", "start"))], docs, world, _Probes(), 60)
    assert gates.gate(gates.pending[0], {"db"}) == (OK, "")
    assert world.loads == []


def test_wait_ready_reports_each_container(tmp_path):
    world = _World(str(tmp_path))
    world.status.update({"web": "running", "db": "running", "job": "stopped"})
    world.exits["job"] = {"exit_code": 0, "signal": 0}
    _write(world.root, "db", _rec("unhealthy", 1, "refused"))
    specs = {"web": _Spec("web"), "db": _Spec("db", health=HEALTH), "job": _Spec("job"),
             "slow": _Spec("slow", health=HEALTH)}
    world.status["slow"] = "running"
    now = [0.0]

    def sleep(s):
        now[0] += s

    seen = []
    found = waiting.wait_ready(world, specs, ["db", "job", "slow", "web"], 1.0, None, on_ready=seen.append,
                                 completes=frozenset({"job"}), clock=lambda: now[0], sleep=sleep)
    by = {r.name: r for r in found}
    assert by["web"].ready and by["job"].ready and by["job"].detail == "completed"
    assert not by["db"].ready and by["db"].health == "unhealthy" and by["db"].last_output == "exit 1: refused"
    assert not by["slow"].ready and by["slow"].detail == "not ready within 1s (starting)"
    assert [r.name for r in seen] == ["db", "job", "web"]  # settled before the deadline
    assert str(by["db"]) == "db: unhealthy; last probe exit 1: refused"


def test_a_zero_timeout_defers_the_dependent_and_its_own_dependents(tmp_path):
    """dct watch: a dependent whose condition does not hold yet is handed to defer (no outcome), and so
    is what depends on it; without defer both are skipped."""
    world = _World(str(tmp_path))
    world.status["db"] = "running"
    _write(world.root, "db", _rec("starting"))
    specs = [_Spec("web", {"db": "healthy"}), _Spec("app", {"web": "started"}), _Spec("other")]
    docs = {s.name: SimpleNamespace(spec=s) for s in specs}
    ran, skipped, deferred = [], {}, {}
    gates = Gates([Action(s.name, "create", "x", ("create", "start")) for s in specs], docs, world, _Probes(), 0)
    with ThreadPoolExecutor(2) as pool:
        gates.run(pool, lambda a: ran.append(a.container), lambda a, why: skipped.update({a.container: why}), set(),
                  defer=lambda a, why: deferred.update({a.container: why}))
    assert ran == ["other"] and not skipped
    assert deferred == {"web": "waiting for db to be healthy (starting)", "app": "waiting for web (itself waiting)"}
    _, skipped = _gates(world, [_Spec("web", {"db": "healthy"})], 0)
    assert skipped == {"web": "waiting for db to be healthy (starting)"}


def test_the_gates_wait_until_the_deadline_given():
    """One budget: a deadline set before the apply (dct apply --timeout), not the timeout from the gates' start."""
    now = [100.0]
    gates = Gates([], {}, None, _Probes(), 60, clock=lambda: now[0], deadline=130.0)
    assert gates.deadline == 130.0 and Gates([], {}, None, _Probes(), 60, clock=lambda: now[0]).deadline == 160.0


def test_wait_probes_ask_whether_to_probe_at_the_first_target(tmp_path):
    asked = []
    probes = waiting.WaitProbes(_World(str(tmp_path)), probe=lambda: asked.append(1) or False)
    probes.watch(None)
    assert asked == []  # nothing to probe: not asked
    target = SimpleNamespace(name="db", check=CHECK, process=None)
    probes.watch(target)
    probes.watch(SimpleNamespace(name="web", check=CHECK, process=None))
    assert asked == [1] and probes._prober is None  # a supervisor probes: no prober of our own
    probes.close()


@pytest.mark.parametrize("info, sources, expected", [
    (None, ["/s/a.yaml"], False),
    (SimpleNamespace(running=False, paths=["/s/a.yaml"]), ["/s/a.yaml"], False),
    (SimpleNamespace(running=True, paths=["/s/a.yaml"]), ["/s/a.yaml"], True),
    (SimpleNamespace(running=True, paths=["/s"]), ["/s/a.yaml", "/s/b.yaml"], True),
    (SimpleNamespace(running=True, paths=["/s"]), ["/s/a.yaml", "/t/b.yaml"], False),  # b: nobody probes it
    (SimpleNamespace(running=True, paths=["/s"]), ["/s/sub/a.yaml"], False),  # a directory is watched flat
])
def test_a_supervisor_probes_only_the_specs_it_watches(info, sources, expected):
    docs = [SimpleNamespace(source=s) for s in sources]
    assert waiting.supervisor_probes(info, docs) is expected


def test_wait_applied_waits_for_what_succeeded_and_is_not_absent(tmp_path, monkeypatch):
    world = _World(str(tmp_path))
    world.status.update({"web": "running", "gone": "running", "bad": "running"})
    docs = [SimpleNamespace(spec=_Spec(n, state=st), source="/s.yaml")
            for n, st in (("web", "running"), ("gone", "absent"), ("bad", "running"))]
    outcomes = [SimpleNamespace(action=Action(n, "create", "x", ("create",)), result=r)
                for n, r in (("web", "ok"), ("gone", "ok"), ("bad", "failed"))]
    started = []
    monkeypatch.setattr("declarative_ct.spec.desired.desired_documents", lambda docs: docs)  # fakes: DesiredSpec-like
    found = waiting.wait_applied(world, docs, outcomes, 5, time.monotonic() + 5, on_start=started.append)
    assert [r.name for r in found] == ["web"] and found[0].ready and started == ["web (running)"]
    started.clear()
    assert waiting.wait_applied(world, docs, outcomes[1:], 5, time.monotonic() + 5, on_start=started.append) == []
    assert started == []


def test_the_gates_have_a_dependency_probed_that_nobody_probes_while_they_hold_the_lock(tmp_path):
    """Beside a supervisor apply does not probe, except a dependency with no record or a stale one: the
    supervisor cannot begin probing it while apply holds the lock its passes take."""
    world = _World(str(tmp_path))
    world.status["db"] = "running"
    specs = [_Spec("web", {"db": "healthy"}), _Spec("db", health=HEALTH)]
    docs = {s.name: SimpleNamespace(spec=s) for s in specs}
    for rec, unprobed in ((None, True), (_rec("starting", 1, "refused"), False)):
        if rec is not None:
            _write(world.root, "db", rec)
        probes = _Probes()
        gates = Gates([Action("web", "create", "x", ("create", "start"))], docs, world, probes, 60)
        assert gates.gate(gates.pending[0], set()) == (WAIT, "") and probes.unprobed is unprobed
    started = []
    supervised = waiting.WaitProbes(world, probe=lambda: False)
    supervised._prober = SimpleNamespace(add=started.append, close=lambda: None)  # a prober made already
    supervised.watch(SimpleNamespace(name="db"))
    supervised.watch(SimpleNamespace(name="web"), unprobed=True)
    assert [t.name for t in started] == ["web"]
