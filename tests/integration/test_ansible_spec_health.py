"""The Ansible container module takes ``health`` and ``depends_on`` in both forms (issue 16): a real
ansible-playbook, a real container; bad values fail naming the option, check mode touches nothing.

The roots are registered with ``register_state_root``, so what a playbook left is destroyed at
teardown, pass or fail.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from ansible_collection import Ansible, install
from declarative_ct.health import record
from declarative_ct.reconcile.last_applied import LABEL_SPEC
from declarative_ct.runtime import Runtime

pytestmark = pytest.mark.integration

SLEEP = ["/bin/sh", "-c", "trap 'exit 0' TERM; while :; do sleep 0.1; done"]


@pytest.fixture(scope="module")
def collections(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return install(tmp_path_factory.mktemp("galaxy"))


def test_health_and_conditions_as_module_options(tmp_path: Path, collections: Path, register_state_root,
                                                 unique_id, busybox_rootfs: str) -> None:
    ansible = Ansible(tmp_path, collections)
    root = register_state_root(str(tmp_path / "state"))
    name, dep = unique_id(), unique_id()
    health = {"exec": ["/bin/true"], "interval": "2s", "timeout": 1, "on_unhealthy": "restart"}
    base = {"root": root, "rootfs": busybox_rootfs, "process": {"args": SLEEP}, "stop_timeout": 1}
    bad = {
        "bad health": {"name": name, **base, "health": {"exec": ["/bin/true"], "tcp": {"port": 1}}},
        "bad interval": {"name": name, **base, "health": {"exec": ["/bin/true"], "interval": "1ms"}},
        "bad condition": {"name": name, **base, "depends_on": {dep: "service_healthy"}},
    }
    tasks = [{"name": task, "declarative_ct.dct.container": args, "ignore_errors": True} for task, args in bad.items()]
    tasks += [
        {"name": "check", "declarative_ct.dct.container": {"name": name, **base, "health": health,
                                                           "depends_on": {dep: "healthy"}}, "check_mode": True},
        # a dependency made by another task is honoured: missing, the dependent fails naming it; then, made
        # with a probe, it is probed by the dependent's task (the check its dct.spec label declares) until healthy
        {"name": "missing", "declarative_ct.dct.container": {"name": name, **base, "depends_on": {dep: "healthy"}},
         "ignore_errors": True},
        {"name": "dependency", "declarative_ct.dct.container": {
            "name": dep, **base, "health": {"exec": ["/bin/true"], "interval": "500ms"}}},
        {"name": "mapping", "declarative_ct.dct.container": {"name": name, **base, "health": health,
                                                             "depends_on": {dep: "healthy"}}},
        {"name": "list", "declarative_ct.dct.container": {"name": name, **base, "health": health,
                                                          "depends_on": [dep]}},
    ]
    inventory = ansible.inventory({"localhost": {}})
    run = ansible.playbook([{"hosts": "all", "gather_facts": False, "tasks": tasks}], inventory)
    assert run.rc == 0, run.stdout
    assert run.result("bad health")["msg"] == "health: give exactly one probe: exec, http or tcp (not exec and tcp)"
    assert run.result("bad interval")["msg"] == "health.interval: 1ms is too short (at least 500ms)"
    assert run.result("bad condition")["msg"] == (
        f"depends_on.{dep}: expected 'started', 'healthy' or 'completed', got the string \"service_healthy\"")
    check = run.result("check")
    assert [(x["class"], x["result"]) for x in check["actions"]] == [("create", "planned")]
    missing = run.result("missing")
    assert missing["failed"] and missing["changed"] is False, missing
    assert missing["msg"] == f"{name}: create (not created yet): skipped: {dep} is not in this apply and does not exist"
    assert run.result("mapping")["changed"] is True, run.result("mapping")
    assert [x["result"] for x in run.result("mapping")["actions"]] == ["ok"]
    assert record.read(os.path.join(root, dep))["status"] == "healthy"  # probed by the mapping task
    # the list form and the other condition change nothing on the container (depends_on is mutable)
    assert run.result("list")["changed"] is False and run.result("list")["actions"] == []
    applied = json.loads(Runtime(root).load(name).config.label(LABEL_SPEC))
    assert applied["health"] == {"exec": ["/bin/true"], "http": None, "tcp": None, "interval": 2.0, "timeout": 1.0,
                                 "retries": 3, "start_period": 0.0, "on_unhealthy": "restart"}
    assert applied["depends_on"] == {dep: "healthy"}
    assert os.path.isdir(root)
