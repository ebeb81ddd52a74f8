"""A depends_on condition on a container that no spec of the apply declares (the Ansible container
module applies one container; ``dct apply web.yaml`` beside a db applied before) is honoured: the
dependency is read from the runtime, its check from its health record's ``probe`` or else from the
``dct.spec`` label it was created with; one that does not exist fails the dependent, named."""

from __future__ import annotations

from types import SimpleNamespace

from test_readiness import HEALTH, _Probes, _rec, _Spec, _World, _write

from declarative_ct.reconcile import last_applied
from declarative_ct.reconcile.gates import Gates
from declarative_ct.reconcile.plan import Action
from declarative_ct.reconcile.readiness import FAIL, OK, WAIT


def _gate(world, web, probes=None, timeout=10):
    gates = Gates([Action("web", "create", "x", ("create", "start"))], {"web": SimpleNamespace(spec=web)},
                  world, probes or _Probes(), timeout)
    return gates.gate(gates.pending[0], set())


def test_a_healthy_condition_on_a_container_outside_the_specs_is_not_ignored(tmp_path):
    """The review's case: db, made by another task, is unhealthy; web must not start."""
    world = _World(str(tmp_path))
    world.status["db"] = "running"
    _write(world.root, "db", _rec("unhealthy", 1, "connection refused"))  # made by another task, unhealthy
    state, why = _gate(world, _Spec("web", {"db": "healthy"}))
    assert state != OK, "web would start although db is unhealthy: the condition was skipped (db not in specs)"
    assert (state, why) == (FAIL, "db is unhealthy (last probe exit 1: connection refused)")


def test_a_dependency_outside_the_apply_that_does_not_exist_fails_the_dependent_named():
    world = _World("/nonexistent")
    for condition in ("healthy", "completed"):
        assert _gate(world, _Spec("web", {"db": condition})) == (FAIL, "db is not in this apply and does not exist")
    assert _gate(world, _Spec("web", {"db": "started"})) == (OK, "")  # started: nothing is read
    assert world.loads == ["db", "db"]


def test_the_check_comes_from_the_label_before_any_probe_and_is_probed_here(tmp_path):
    """No record yet: the check of the spec db was created with; apply probes it meanwhile, as
    that spec says (an exec probe with its user, env and cwd)."""
    world = _World(str(tmp_path))
    world.status["db"] = "running"
    world.labels["db"] = last_applied.label({"health": HEALTH, "process": {
        "args": ["db"], "env": {"A": "1"}, "cwd": "/srv", "user": "7:8"}}).partition("=")[2]
    probes = _Probes()
    assert _gate(world, _Spec("web", {"db": "healthy"}), probes) == (WAIT, "")
    (target,) = probes.targets
    assert target.name == "db" and target.check.command == ("true",)
    assert (target.process.cwd, target.process.uid, target.process.gid, "A=1" in target.process.env) == (
        "/srv", 7, 8, True)
    _write(world.root, "db", _rec("healthy", 0, "ok"))
    assert _gate(world, _Spec("web", {"db": "healthy"})) == (OK, "")


def test_a_dependency_outside_the_apply_without_a_check_needs_to_run(tmp_path):
    world = _World(str(tmp_path))
    world.status["db"] = "created"
    assert _gate(world, _Spec("web", {"db": "healthy"})) == (WAIT, "")
    world.status["db"] = "running"
    assert _gate(world, _Spec("web", {"db": "healthy"})) == (OK, "")


def test_completed_outside_the_apply(tmp_path):
    world = _World(str(tmp_path))
    world.status["job"] = "stopped"
    world.exits["job"] = {"exit_code": 2, "signal": 0}
    assert _gate(world, _Spec("web", {"job": "completed"})) == (FAIL, "job exited 2")
    world.exits["job"] = {"exit_code": 0, "signal": 0}
    assert _gate(world, _Spec("web", {"job": "completed"})) == (OK, "")
