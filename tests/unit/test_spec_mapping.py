"""A spec given as Python data (``spec.load.load_mapping``, the Ansible module's inline options) and a
forced recreate (``make_plan(recreate=...)``). Pure: temporary directories only, no containers.
"""

from __future__ import annotations

import json

import pytest

from declarative_ct.reconcile.convert import to_runtime
from declarative_ct.reconcile.plan import Observed, effective, make_plan
from declarative_ct.runtime import Status
from declarative_ct.spec.load import SpecErrors, load_mapping

SOURCE = "ansible:web"


def errors(data: object) -> list[str]:
    """``field: message`` of every error of data that must not validate (file and position checked)."""
    with pytest.raises(SpecErrors) as info:
        load_mapping(data, SOURCE)
    for e in info.value.errors:
        assert (e.file, e.line, e.col) == (SOURCE, 0, 0)
    return [f"{e.field}: {e.message}" for e in info.value.errors]


def test_valid_mapping_is_the_spec_a_file_gives(tmp_path) -> None:
    doc = load_mapping({"name": "web", "rootfs": str(tmp_path) + "/./", "process": {"args": ["/bin/true"]},
                        "resources": {"memory": "64Mi"}}, SOURCE)
    assert doc.source == SOURCE and doc.line == 0
    assert doc.spec.rootfs == str(tmp_path)  # normalized
    assert doc.spec.normalized()["resources"] == {"memory": 64 << 20}


def test_every_error_names_its_field(tmp_path) -> None:
    found = errors({"name": "web", "rootfs": "relative/dir",
                    "process": {"argz": ["/bin/true"], "user": 1000, "env": {"A": 1}},
                    "mounts": [{"source": str(tmp_path / "missing"), "destination": "/m"}, {"source": "",
                                                                                          "destination": "/n"}],
                    "resources": {"memory": "lots", "pids": "many"}, "reload_on": ["conf.ini"], "stop_timeout": "x"})
    assert sorted(found) == sorted([
        "process.args: required field is missing",
        "process.argz: unknown field (did you mean `args`?)",
        "process.user: expected a string, got the number 1000: quote it if it is meant as text",
        "process.env.A: expected a string, got the number 1: quote it if it is meant as text",
        "resources.memory: 'lots' is not a size (give bytes, 64Mi, 1Gi, 64m or \"unlimited\")",
        "resources.pids: expected an integer or 'unlimited', got the string \"many\"",
        "stop_timeout: expected a number, got the string \"x\"",
        "rootfs: must be an absolute path on the host (there is no spec file to resolve it against)",
        f"mounts[0].source: does not exist: {tmp_path / 'missing'}",
        "mounts[1].source: must not be empty",
        "reload_on[0]: must be an absolute path on the host (there is no spec file to resolve it against)",
    ])


def test_a_mistyped_seccomp_keyword_without_a_spec_file_names_the_keywords() -> None:
    """Regression (Ansible's inline options have no spec file): ``seccomp: defualt`` was only told
    to be an absolute path."""
    assert errors({"name": "web", "process": {"args": ["/bin/true"]}, "seccomp": "defualt"}) == [
        'seccomp: must be "default", "unconfined" or an absolute path to a profile file on the host '
        '(there is no spec file to resolve "defualt" against)']


def test_model_validator_errors_name_the_field() -> None:
    assert errors({"name": "web", "process": {"args": ["/bin/true"]}, "depends_on": ["web"]}) == [
        "depends_on: a container cannot depend on itself"]
    assert errors({"name": "web", "process": {"args": ["/bin/true"]}, "resources": {"cpus": 1, "cpu_quota": 5}}) == [
        "resources: give either cpus or cpu_quota, not both"]


def test_not_a_mapping() -> None:
    assert errors(["web"]) == ["-: a container spec must be a mapping (key: value), not a list"]


def _observed(doc, status: Status) -> Observed:
    config, _ = to_runtime(doc.spec, doc.source)
    applied = json.loads(config.label("dct.spec"))
    return Observed(doc.spec.name, status, True, doc.source, applied, config.cgroups.resources.limits())


@pytest.mark.parametrize("status,steps", [(Status.RUNNING, ("stop", "destroy", "create", "start")),
                                          (Status.CREATED, ("destroy", "create", "start"))])
def test_recreate_requested(status: Status, steps: tuple) -> None:
    doc = load_mapping({"name": "web", "process": {"args": ["/bin/true"]}, "resources": {"memory": "64Mi"}}, SOURCE)
    observed = {"web": _observed(doc, status)}
    if status == Status.RUNNING:
        assert make_plan([doc], observed).actions == []
    [action] = make_plan([doc], observed, recreate={"web"}).actions
    assert (action.kind, action.cause, action.steps) == ("recreate", "recreate requested", steps)


def test_recreate_requested_keeps_create_recreate_and_destroy() -> None:
    doc = load_mapping({"name": "web", "process": {"args": ["/bin/true"]}}, SOURCE)
    assert [a.kind for a in make_plan([doc], {}, recreate={"web"}).actions] == ["create"]
    changed = load_mapping({"name": "web", "process": {"args": ["/bin/false"]}}, SOURCE)
    [action] = make_plan([changed], {"web": _observed(doc, Status.RUNNING)}, recreate={"web"}).actions
    assert action.cause == "process.args changed"
    gone = load_mapping({"name": "web", "process": {"args": ["/bin/true"]}, "state": "absent"}, SOURCE)
    assert [a.kind for a in make_plan([gone], {"web": _observed(doc, Status.RUNNING)}, recreate={"web"}).actions] \
        == ["destroy"]


def test_effective_drops_defaults() -> None:
    assert effective({"memory": -1, "cpu_shares": 1024, "pids_limit": 64, "cpu_period": 100000}) == {"pids_limit": 64}
