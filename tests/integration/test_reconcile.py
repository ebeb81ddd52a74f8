"""The reconciler on real containers: plan → apply → plan is empty; live, recreate, lifecycle, prune."""

from __future__ import annotations

import json
import os
import signal
import time
from types import SimpleNamespace

import pytest

from conftest import unique_id, wait_for
from declarative_ct.reconcile import apply as applying
from declarative_ct.reconcile.plan import make_plan, observe
from declarative_ct.runtime import Process, Status
from declarative_ct.spec.model import ContainerSpec

pytestmark = pytest.mark.integration
SLEEP = ["/bin/sh", "-c", "trap 'exit 0' TERM; while :; do sleep 0.1; done"]


@pytest.fixture
def reconcile(runtime, busybox_rootfs, tmp_path):
    """``reconcile(*specs, prune=False)``: plan and apply dicts as spec documents; ``(plan, outcomes)``."""
    source = str(tmp_path / "specs.yaml")

    def doc(fields: dict) -> SimpleNamespace:
        fields = {"rootfs": busybox_rootfs, "process": {"args": SLEEP}, **fields}
        return SimpleNamespace(spec=ContainerSpec.model_validate(fields), source=source)

    def run(*specs: dict, prune: bool = False, dry: bool = False):
        docs = [doc(s) for s in specs]
        plan = make_plan(docs, observe(runtime), prune=prune, scope=[source])
        if dry:
            return plan, []
        with applying.locked(runtime.root):
            return plan, applying.apply(plan, docs, runtime)

    run.doc = doc
    return run


def _plan_lines(plan) -> list[str]:
    return [str(a) for a in plan.actions]


def _pid(runtime, name) -> int:
    return runtime.load(name).state().init_process_pid


def test_apply_then_plan_is_empty_and_a_memory_change_is_live(reconcile, runtime):
    web = unique_id("web")
    plan, out = reconcile({"name": web, "resources": {"memory": "64Mi"}})
    assert _plan_lines(plan) == [f"{web}: create (not created yet)"]
    assert [o.result for o in out] == ["ok"]
    assert runtime.load(web).status() == Status.RUNNING
    assert reconcile({"name": web, "resources": {"memory": "64Mi"}}, dry=True)[0].actions == []
    pid = _pid(runtime, web)
    plan, out = reconcile({"name": web, "resources": {"memory": "128Mi", "pids": 20}})
    assert _plan_lines(plan) == [f"{web}: live update resources.memory 64Mi → 128Mi, resources.pids_limit unset → 20"]
    assert _pid(runtime, web) == pid  # same init: updated in place
    limits = runtime.load(web).config.cgroups.resources.limits()
    assert (limits["memory"], limits["pids_limit"]) == (128 << 20, 20)
    plan, _ = reconcile({"name": web})  # every limit removed: lifted, then nothing to do
    assert _plan_lines(plan) == [f"{web}: live update resources.memory 128Mi → unlimited, "
                                 "resources.pids_limit 20 → unlimited"]
    assert reconcile({"name": web}, dry=True)[0].actions == []


def test_an_args_change_recreates(reconcile, runtime):
    web = unique_id("web")
    reconcile({"name": web})
    pid = _pid(runtime, web)
    args = SLEEP[:2] + [SLEEP[2] + " # v2"]
    plan, out = reconcile({"name": web, "process": {"args": args}})
    assert _plan_lines(plan) == [f"{web}: recreate (process.args changed)"]
    assert [o.result for o in out] == ["ok"]
    assert _pid(runtime, web) != pid and runtime.load(web).status() == Status.RUNNING
    assert reconcile({"name": web, "process": {"args": args}}, dry=True)[0].actions == []


def test_lifecycle_states(reconcile, runtime):
    c = unique_id("life")
    reconcile({"name": c, "state": "paused"})
    assert runtime.load(c).status() == Status.PAUSED
    plan, _ = reconcile({"name": c, "state": "running"})
    assert _plan_lines(plan) == [f"{c}: lifecycle (paused → running)"]
    assert runtime.load(c).status() == Status.RUNNING
    reconcile({"name": c, "state": "stopped"})
    assert runtime.load(c).status() == Status.STOPPED
    assert reconcile({"name": c, "state": "stopped"}, dry=True)[0].actions == []
    # stopped on purpose, not an exit: running again starts it, whatever the restart policy (never here)
    plan, _ = reconcile({"name": c, "state": "running"})
    assert _plan_lines(plan) == [f"{c}: lifecycle (stopped → running)"]
    assert runtime.load(c).status() == Status.RUNNING
    reconcile({"name": c, "state": "stopped"})
    reconcile({"name": c, "state": "absent"})
    assert not runtime.exists(c)


def test_a_container_that_died_is_restarted_as_its_policy_says(reconcile, runtime):
    c, never = unique_id("dies"), unique_id("never")
    specs = ({"name": c, "restart": "always"}, {"name": never})  # restart: never is the default
    reconcile(*specs)
    for name in (c, never):
        runtime.load(name).signal(signal.SIGKILL)
        wait_for(lambda: runtime.load(name).exit_status(), message=f"{name}'s exit record")
    time.sleep(0.6)  # the first restart waits 0.5 s after the exit
    plan, out = reconcile(*specs)
    assert _plan_lines(plan) == [f"{c}: lifecycle (restart: it exited (code 137, SIGKILL; always, attempt 1))"]
    assert f"{never}: exited (code 137, SIGKILL), not restarted (restart: never)" in plan.notes
    assert runtime.load(c).status() == Status.RUNNING
    assert runtime.load(never).status() == Status.STOPPED


def test_prune_touches_only_ours_from_the_given_specs(reconcile, runtime, busybox_config):
    ours, kept, other = unique_id("ours"), unique_id("kept"), unique_id("other")
    _, out = reconcile({"name": ours}, {"name": kept})
    assert [str(o) for o in out if o.result != "ok"] == []
    foreign = runtime.create(other, busybox_config())
    foreign.run(Process(SLEEP))
    plan, _ = reconcile({"name": kept}, dry=True)
    assert plan.actions == []
    assert f"{ours}: no longer in specs (apply --prune removes it)" in plan.notes
    assert f"{other}: unmanaged (not made by declarative-ct), left alone" in plan.notes
    plan, out = reconcile({"name": kept}, prune=True)
    assert _plan_lines(plan) == [f"{ours}: prune (no longer in specs)"]
    assert not runtime.exists(ours) and runtime.exists(kept) and runtime.exists(other)


def test_a_name_keeps_its_logs_through_recreate_and_restart_and_loses_them_when_removed(reconcile, runtime):
    """Logs belong to the name: a recreate or a restart starts a new run and keeps the previous
    one; state: absent and prune delete them."""
    from declarative_ct.runtime import logfiles

    web, gone = unique_id("web"), unique_id("gone")
    reconcile({"name": web}, {"name": gone})
    logs, gone_logs = logfiles.log_dir(runtime.data_root, web), logfiles.log_dir(runtime.data_root, gone)
    assert logfiles.runs(logs) == [0] and logfiles.runs(gone_logs) == [0]
    plan, out = reconcile({"name": web, "logging": {"max_files": 2}}, {"name": gone})
    assert _plan_lines(plan) == [f"{web}: recreate (logging.max_files 3 → 2)"]
    assert [o.result for o in out] == ["ok"] and logfiles.runs(logs) == [0, 1]
    runtime.load(web).signal(signal.SIGKILL)
    wait_for(lambda: runtime.load(web).exit_status(), message=f"{web}'s exit record")
    time.sleep(0.6)  # the first restart waits 0.5 s after the exit
    plan, out = reconcile({"name": web, "logging": {"max_files": 2}, "restart": "always"}, {"name": gone})
    assert [a.kind for a in plan.actions] == ["lifecycle"] and [o.result for o in out] == ["ok"]
    assert logfiles.runs(logs) == [1, 2]  # the run before the restart kept, older ones gone
    plan, out = reconcile({"name": web, "state": "absent"}, prune=True)
    assert sorted(_plan_lines(plan)) == sorted([f"{web}: destroy (state: absent)", f"{gone}: prune (no longer in specs)"])
    assert [o.result for o in out] == ["ok", "ok"]
    assert not runtime.exists(web) and not runtime.exists(gone)
    assert not os.path.exists(logs) and not os.path.exists(gone_logs)


def test_a_name_taken_by_an_unmanaged_container_is_an_error_and_the_rest_goes_on(reconcile, runtime,
                                                                                busybox_config):
    taken, fine = unique_id("taken"), unique_id("fine")
    runtime.create(taken, busybox_config()).run(Process(SLEEP))
    plan, out = reconcile({"name": taken}, {"name": fine})
    assert plan.errors == [f"{taken}: a container with this name exists and was not made by declarative-ct "
                           "(delete it or rename the spec)"]
    assert [str(o) for o in out] == [f"{fine}: create (not created yet): ok"]


def test_dependents_wait_for_and_skip_a_failed_dependency(reconcile, runtime, tmp_path):
    db, web, alone = unique_id("db"), unique_id("web"), unique_id("alone")
    plan, out = reconcile({"name": db, "process": {"args": ["/no/such/program"]}},
                          {"name": web, "depends_on": [db]}, {"name": alone})
    results = {o.action.container: (o.result, o.error) for o in out}
    assert results[db][0] == "failed" and "/no/such/program" in results[db][1]
    assert results[web] == ("skipped", f"depends on {db}, which failed")
    assert results[alone] == ("ok", "")
    assert not runtime.exists(db) and not runtime.exists(web)  # a failed create leaves nothing
    with open(os.path.join(runtime.root, applying.JOURNAL_FILE)) as f:
        journal = [json.loads(line) for line in f]
    assert {(e["container"], e["class"], e["result"]) for e in journal} == {
        (db, "create", "failed"), (web, "create", "skipped"), (alone, "create", "ok")}


def test_a_changed_reload_on_file_sends_the_reload_signal(reconcile, runtime, tmp_path):
    c = unique_id("reload")
    conf, out = tmp_path / "app.ini", tmp_path / "out"
    conf.write_text("v=1\n")
    out.mkdir()
    spec = {"name": c, "reload_on": [str(conf)], "reload_signal": "SIGHUP",
            "mounts": [{"source": str(out), "destination": "/out"}],
            "process": {"args": ["/bin/sh", "-c", "trap 'echo reloaded >> /out/log' HUP; "
                                 "trap 'exit 0' TERM; while :; do sleep 0.1; done"]}}
    reconcile(spec)  # the create records the files' hash: the next change is noticed
    conf.write_text("v=2\n")
    plan, out_ = reconcile(spec)
    assert _plan_lines(plan) == [f"{c}: signal (reload_on changed: SIGHUP)"]
    assert [o.result for o in out_] == ["ok"]
    wait_for(lambda: (out / "log").exists() and (out / "log").read_text() == "reloaded\n")
    assert reconcile(spec, dry=True)[0].actions == []


def test_observe_with_a_cache_parses_only_changed_containers(reconcile, runtime, monkeypatch):
    c = unique_id("obs")
    reconcile({"name": c, "resources": {"memory": "64Mi"}})
    kept: dict = {}
    observe(runtime, kept)
    loads = []
    real_load = type(runtime).load
    monkeypatch.setattr(type(runtime), "load", lambda self, name: loads.append(name) or real_load(self, name))
    assert observe(runtime, kept)[c].status == Status.RUNNING and loads == []
    reconcile({"name": c, "resources": {"memory": "128Mi"}})  # set() rewrites state.json
    loads.clear()
    assert observe(runtime, kept)[c].resources["memory"] == 128 << 20 and loads == [c]
    reconcile({"name": c, "state": "absent"})
    assert observe(runtime, kept) == {} and kept == {}


def test_a_recreate_the_new_config_cannot_pass_leaves_the_old_container_running(reconcile, runtime):
    """Regression: the old container was stopped and destroyed before create refused the new one."""
    c = unique_id("keep")
    reconcile({"name": c})
    pid = _pid(runtime, c)
    plan, out = reconcile({"name": c, "process": {"args": SLEEP[:2] + [SLEEP[2] + " # v2"]},
                           "resources": {"cpuset_cpus": "0-63"}})  # valid YAML, but not on this host
    assert [o.result for o in out] == ["failed"] and "cpuset_cpus: '0-63' includes" in out[0].error
    assert runtime.load(c).status() == Status.RUNNING and _pid(runtime, c) == pid


@pytest.mark.parametrize("paused", [False, True])
def test_a_replacement_that_fails_to_start_brings_the_previous_container_back(reconcile, runtime, paused):
    """It passes every check made before the old container stops (the program is looked up only
    inside the new container), so the old one is gone when it fails: apply makes it again."""
    c = unique_id("back")
    reconcile({"name": c, "state": "paused" if paused else "running"})
    old_pid = _pid(runtime, c)
    bad = {"name": c, "process": {"args": ["/no/such/program"]}, "state": "paused" if paused else "running"}
    plan, out = reconcile(bad)
    assert _plan_lines(plan) == [f"{c}: recreate (process.args changed)"]
    assert [o.result for o in out] == ["failed"]
    assert "/no/such/program" in out[0].error
    assert out[0].error.endswith("the previous container was brought back (its spec as before, a new init)")
    back = runtime.load(c)
    assert back.status() == (Status.PAUSED if paused else Status.RUNNING) and _pid(runtime, c) != old_pid
    assert json.loads(back.config.label("dct.spec"))["process"]["args"] == SLEEP
    assert _plan_lines(reconcile(bad, dry=True)[0]) == [f"{c}: recreate (process.args changed)"]  # tried again
