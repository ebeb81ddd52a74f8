"""The Ansible collection end to end: real ansible-playbook (ansible-core from PyPI), real containers.

The collection is built and installed with ansible-galaxy once for the module; each playbook runs
against local hosts (``connection: local``, the venv's Python), each host with its own state root
standing in for a machine. Container names come from ``unique_id``, distinct across hosts too (the
roots are on one machine, where they are not wholly independent: see the ``root`` option's doc), and
every root is registered with ``register_state_root``, so whatever a playbook left is destroyed at
teardown, pass or fail.
The programs exit on SIGTERM and tasks say ``stop_timeout: 1``. Playbook runs are batched (one
start-up of ansible-playbook is ~1.5 s).
"""

from __future__ import annotations

import glob
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import yaml

from ansible_collection import Ansible, install
from declarative_ct.runtime import Process, Runtime, Status

pytestmark = pytest.mark.integration

SLEEP = ["/bin/sh", "-c", "trap 'exit 0' TERM; while :; do sleep 0.1; done"]
MI = 1 << 20


@pytest.fixture(scope="module")
def collections(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The collection built and installed with ansible-galaxy (once for this module)."""
    return install(tmp_path_factory.mktemp("galaxy"))


@pytest.fixture
def ansible(tmp_path: Path, collections: Path) -> Ansible:
    return Ansible(tmp_path, collections)


def container_task(**args) -> dict:
    """A declarative_ct.dct.container task on the host's root and rootfs, registered as its name."""
    name = args.pop("task")
    body = {"root": "{{ root }}", "rootfs": "{{ rootfs }}", "stop_timeout": 1, **args}
    return {"name": name, "declarative_ct.dct.container": body, "register": name.replace(" ", "_")}


def play(*tasks: dict, hosts: str = "all") -> dict:
    return {"hosts": hosts, "gather_facts": False, "tasks": list(tasks)}


def write_specs(directory: Path, rootfs: str, *docs: dict) -> str:
    """One spec file per document (``<name>.yaml``) in ``directory``; its absolute path."""
    directory.mkdir(parents=True, exist_ok=True)
    for doc in docs:
        spec = {"rootfs": rootfs, "process": {"args": SLEEP}, "stop_timeout": 1, **doc}
        (directory / f"{doc['name']}.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    return str(directory)


def snapshot(root: str, names: list[str]) -> dict:
    """Everything under the root (path → size, mtime, mode) and the containers' cgroup directories with
    their memory limits: what check mode must leave as it is."""
    out: dict = {}
    for base, dirs, files in os.walk(root):
        for entry in dirs + files:
            path = os.path.join(base, entry)
            st = os.lstat(path)
            out[os.path.relpath(path, root)] = (st.st_size, st.st_mtime_ns, st.st_mode)
    for name in names:
        for cg in sorted(glob.glob(f"/sys/fs/cgroup/*/dct*/{name}") + glob.glob(f"/sys/fs/cgroup/dct*/{name}")):
            limit = os.path.join(cg, "memory.limit_in_bytes")
            out[cg] = open(limit).read() if os.path.exists(limit) else sorted(os.listdir(cg))
    return out


def init_pid(root: str, name: str) -> int:
    return Runtime(root).load(name).state().init_process_pid


def test_converge_twice_check_diff_live_update_prune_and_absent(ansible: Ansible, register_state_root, unique_id,
                                                               busybox_rootfs: str, busybox_config,
                                                               tmp_path: Path) -> None:
    root = register_state_root(str(tmp_path / "state"))
    web, a, b, other, unmanaged = (unique_id(p) for p in ("web", "a", "b", "other", "um"))
    specs = write_specs(tmp_path / "specs", busybox_rootfs, {"name": a, "resources": {"memory": "32Mi"}}, {"name": b})
    other_specs = write_specs(tmp_path / "other", busybox_rootfs, {"name": other})
    # A container not made by declarative-ct, in the same root: nothing may touch it.
    stranger = Runtime(root).create(unmanaged, busybox_config())
    stranger.start(Process(list(SLEEP)))
    stranger.exec()
    inventory = ansible.inventory({"localhost": {"root": root, "rootfs": busybox_rootfs}})
    converge = [play(
        container_task(task="web", name=web, process={"args": SLEEP, "env": "{{ env }}"},
                       resources="{{ resources }}"),
        {"name": "specs", "declarative_ct.dct.apply": {"paths": [specs], "root": "{{ root }}"}, "register": "specs"},
        {"name": "other", "declarative_ct.dct.apply": {"paths": [other_specs], "root": "{{ root }}"}},
    )]
    first = {"env": {"A": "1", "B": "2"}, "resources": {"memory": "64Mi", "pids": 64}}

    # 1. First run: everything is created.
    run = ansible.playbook(converge, inventory, extra_vars=first)
    assert run.rc == 0, run.stdout
    assert run.stats()["changed"] == 3
    result = run.result("web")
    assert [(x["class"], x["result"]) for x in result["actions"]] == [("create", "ok")]
    assert result["container"]["status"] == "running" and result["container"]["source"] == f"ansible:{web}"
    assert result["container"]["resources"]["memory"] == 64 * MI
    assert sorted((x["container"], x["class"]) for x in run.result("specs")["actions"]) == [(a, "create"),
                                                                                           (b, "create")]
    assert {n: c["status"] for n, c in run.result("specs")["containers"].items()} == {a: "running", b: "running"}
    pid = init_pid(root, web)

    # 2. The same again: nothing to do, changed=0.
    run = ansible.playbook(converge, inventory, extra_vars=first)
    assert run.rc == 0, run.stdout
    assert run.stats()["changed"] == 0
    assert run.result("web")["actions"] == [] and run.result("specs")["actions"] == []

    # 3. Check mode with a memory change, an env key removed and a spec file changed: the plan says so
    #    and nothing on the host moves.
    (Path(specs) / f"{a}.yaml").write_text(yaml.safe_dump({"name": a, "rootfs": busybox_rootfs, "stop_timeout": 1,
                                                           "process": {"args": SLEEP + ["changed"]},
                                                           "resources": {"memory": "32Mi"}}))
    before = snapshot(root, [web, a, b, other, unmanaged])
    run = ansible.playbook(converge, inventory, "--check", "--diff",
                           extra_vars={"env": {"A": "1"}, "resources": {"memory": "128Mi", "pids": 64}})
    assert run.rc == 0, run.stdout
    assert snapshot(root, [web, a, b, other, unmanaged]) == before
    assert init_pid(root, web) == pid
    result = run.result("web")
    assert result["changed"] is True
    assert [(x["class"], x["cause"], x["result"]) for x in result["actions"]] == [
        ("recreate", "process.env changed", "planned")]
    assert result["plan"]["actions"] == [{k: v for k, v in x.items() if k != "result"} for x in result["actions"]]
    assert result["diff"]["before"]["process"]["env"] == {"A": "1", "B": "2"}
    assert result["diff"]["after"]["process"]["env"] == {"A": "1"}
    assert (result["diff"]["before"]["resources"]["memory"], result["diff"]["after"]["resources"]["memory"]) == (
        64 * MI, 128 * MI)
    assert result["container"]["resources"]["memory"] == 64 * MI  # as it is: unchanged
    specs_result = run.result("specs")
    assert [(x["container"], x["class"], x["cause"]) for x in specs_result["actions"]] == [
        (a, "recreate", "process.args changed")]
    [diff] = specs_result["diff"]
    assert diff["after"]["process"]["args"] == SLEEP + ["changed"] and diff["before"]["process"]["args"] == SLEEP
    assert run.stats()["changed"] == 2

    # 3b. --diff as a user sees it (default callback): the field, before and after.
    run = ansible.playbook(converge, inventory, "--check", "--diff", callback="default",
                           extra_vars={"env": {"A": "1", "B": "2"}, "resources": {"memory": "128Mi", "pids": 64}})
    assert run.rc == 0, run.stdout
    assert f"after: {web} (live: resources.memory 64Mi → 128Mi)" in run.stdout
    assert '-        "memory": 67108864' in run.stdout and '+        "memory": 134217728' in run.stdout
    assert snapshot(root, [web, a, b, other, unmanaged]) == before
    # The apply module's check mode plan is the one dct plan gives.
    cli = subprocess.run([sys.executable, "-m", "declarative_ct.cli.main", "--root", root, "plan", "--json", specs],
                         capture_output=True, text=True, timeout=60)
    assert cli.returncode == 2, cli.stderr
    assert {k: v for k, v in json.loads(cli.stdout).items() if k not in ("paths", "prune")} == specs_result["plan"]

    # 4. A memory change and a limit removed: a live update of the same init process.
    (Path(specs) / f"{a}.yaml").write_text(yaml.safe_dump({"name": a, "rootfs": busybox_rootfs, "stop_timeout": 1,
                                                           "process": {"args": SLEEP},
                                                           "resources": {"memory": "32Mi"}}))
    run = ansible.playbook(converge, inventory, extra_vars={"env": {"A": "1", "B": "2"},
                                                             "resources": {"memory": "128Mi"}})
    assert run.rc == 0, run.stdout
    result = run.result("web")
    assert [(x["class"], x["steps"]) for x in result["actions"]] == [("live", ["set"])]
    assert "resources.memory 64Mi → 128Mi" in result["actions"][0]["cause"]
    assert "resources.pids_limit 64 → unlimited" in result["actions"][0]["cause"]
    assert result["container"]["pid"] == pid == init_pid(root, web)
    limits = Runtime(root).load(web).config.cgroups.resources.limits()
    assert limits["memory"] == 128 * MI and limits["pids_limit"] == -1
    assert run.result("specs")["actions"] == []

    # 5. Prune b (its file removed): only b goes; a, the other spec set's container, the module's
    #    container and the unmanaged one stay. Then state: absent removes the module's container,
    #    a name taken by an unmanaged container is refused, and info reports what is left.
    (Path(specs) / f"{b}.yaml").unlink()
    a_options = {"name": a, "process": {"args": SLEEP}, "resources": {"memory": "32Mi"}}
    run = ansible.playbook([play(
        # a, made by apply, given to the container module with its own options: nothing to do, and its
        # source stays its spec file (a warning says what that means for prune) until a recreate.
        container_task(task="take over a", **a_options),
        {**container_task(task="take over a check mode recreate", recreate=True, **a_options), "check_mode": True},
        {"name": "prune", "declarative_ct.dct.apply": {"paths": [specs], "root": "{{ root }}", "prune": True}},
        {"name": "absent", "declarative_ct.dct.container": {"name": web, "root": "{{ root }}", "state": "absent"}},
        {"name": "absent again", "declarative_ct.dct.container": {"name": web, "root": "{{ root }}",
                                                                   "state": "absent"}},
        {"name": "taken", "declarative_ct.dct.container": {"name": unmanaged, "root": "{{ root }}",
                                                            "process": {"args": SLEEP}},
         "ignore_errors": True},
        {"name": "info", "declarative_ct.dct.info": {"root": "{{ root }}", "stats": True}},
        {"name": "info by name", "declarative_ct.dct.info": {"root": "{{ root }}", "name": [a, web]}},
    )], inventory)
    assert run.rc == 0, run.stdout
    takeover = run.result("take over a")
    assert takeover["changed"] is False and takeover["container"]["source"] == os.path.join(specs, f"{a}.yaml")
    assert [w for w in takeover["warnings"] if w.startswith(f"{a}: made from {specs}/{a}.yaml, which stays its "
                                                            "source until this module recreates it")], takeover
    planned = run.result("take over a check mode recreate")
    assert [(x["class"], x["result"]) for x in planned["actions"]] == [("recreate", "planned")]
    assert not [w for w in planned.get("warnings", []) if "stays its source" in w], planned  # the recreate relabels
    assert [(x["container"], x["class"], x["result"]) for x in run.result("prune")["actions"]] == [(b, "prune", "ok")]
    assert run.result("prune")["containers"][b] == {"name": b, "exists": False, "status": "absent"}
    assert [(x["class"], x["steps"]) for x in run.result("absent")["actions"]] == [("destroy", ["stop", "destroy"])]
    assert run.result("absent")["container"]["exists"] is False
    assert run.result("absent again")["changed"] is False and run.result("absent again")["actions"] == []
    taken = run.result("taken")
    assert taken["failed"] is True and "not made by declarative-ct" in taken["msg"] and taken["changed"] is False
    info = {c["name"]: c for c in run.result("info")["containers"]}
    assert sorted(info) == sorted([a, other, unmanaged])
    assert all(c["status"] == "running" for c in info.values())
    assert info[a]["managed"] is True and info[unmanaged]["managed"] is False
    assert info[a]["resources"]["memory"] == 32 * MI and info[a]["stats"]["memory"]["usage"]["limit"] == 32 * MI
    assert info[other]["source"] == os.path.join(other_specs, f"{other}.yaml")
    assert [(c["name"], c["exists"]) for c in run.result("info by name")["containers"]] == [(a, True), (web, False)]
    assert run.stats()["changed"] == 3 and run.stats()["ignored"] == 1  # the check mode recreate counts
    assert Runtime(root).load(unmanaged).status() == Status.RUNNING


def test_states_present_started_paused_recreate(ansible: Ansible, register_state_root, unique_id,
                                               busybox_rootfs: str, tmp_path: Path) -> None:
    root = register_state_root(str(tmp_path / "state"))
    name = unique_id("st")
    inventory = ansible.inventory({"localhost": {"root": root, "rootfs": busybox_rootfs}})
    base = {"name": name, "process": {"args": SLEEP}}
    run = ansible.playbook([play(
        container_task(task="present", state="present", **base),
        container_task(task="present again", state="present", **base),
        container_task(task="started", **base),
        container_task(task="paused", state="paused", **base),
        container_task(task="present while paused", state="present", **base),
        container_task(task="recreate", state="paused", recreate=True, **base),
        container_task(task="stopped", state="stopped", **base),
    )], inventory)
    assert run.rc == 0, run.stdout
    steps = {task: [(x["class"], x["steps"]) for x in run.result(task)["actions"]] for task in (
        "present", "present again", "started", "paused", "present while paused", "recreate", "stopped")}
    assert steps == {
        "present": [("create", ["create"])], "present again": [], "started": [("lifecycle", ["start"])],
        "paused": [("lifecycle", ["pause"])], "present while paused": [],
        "recreate": [("recreate", ["stop", "destroy", "create", "start", "pause"])],
        "stopped": [("lifecycle", ["stop"])]}
    status = {task: run.result(task)["container"]["status"] for task in steps}
    assert status == {"present": "created", "present again": "created", "started": "running", "paused": "paused",
                      "present while paused": "paused", "recreate": "paused", "stopped": "stopped"}
    assert run.result("present")["container"]["pid"] == run.result("started")["container"]["pid"]  # same init
    assert run.result("recreate")["container"]["pid"] != run.result("paused")["container"]["pid"]
    assert run.result("recreate")["actions"][0]["cause"] == "recreate requested"
    assert run.stats()["changed"] == 5


def test_exited_container_follows_its_restart_policy(ansible: Ansible, register_state_root, unique_id,
                                                     busybox_rootfs: str, tmp_path: Path) -> None:
    """state: started on a container whose program exited: as dct apply, the policy decides (a warning
    says why it stays down); recreate: true runs it anew (and the warning, obsolete, is gone). The root
    comes from module_defaults for the collection's action group."""
    root = register_state_root(str(tmp_path / "state"))
    name = unique_id("job")
    inventory = ansible.inventory({"localhost": {"root": root, "rootfs": busybox_rootfs}})
    job = {"name": name, "rootfs": "{{ rootfs }}", "stop_timeout": 1, "process": {"args": ["/bin/sh", "-c", "exit 3"]}}

    def task(name: str, **args) -> dict:
        return {"name": name, "declarative_ct.dct.container": {**job, **args}}

    run = ansible.playbook([{**play(
        task("job"),
        {"name": "exited", "declarative_ct.dct.info": {"name": [name]}, "register": "exited",
         "until": "exited.containers[0].exit is not none", "retries": 100, "delay": 0.1},
        task("job again"),
        task("job recreated", recreate=True),
    ), "module_defaults": {"group/declarative_ct.dct.all": {"root": "{{ root }}"}}}], inventory)
    assert run.rc == 0, run.stdout
    assert run.result("job")["container"]["exists"] is True and os.path.isdir(os.path.join(root, name))
    assert run.result("exited")["containers"][0]["exit"]["exit_code"] == 3
    again = run.result("job again")
    assert again["changed"] is False and again["actions"] == []
    assert again["plan"]["notes"] == [f"{name}: exited (code 3), not restarted (restart: never)"]
    assert any(f"{name}: exited (code 3), not restarted" in w for w in again["warnings"]), again
    recreated = run.result("job recreated")
    assert [(x["class"], x["steps"]) for x in recreated["actions"]] == [("recreate", ["destroy", "create", "start"])]
    assert recreated["plan"]["notes"] == again["plan"]["notes"]  # the plan, as planned
    assert not [w for w in recreated.get("warnings", []) if "not restarted" in w], recreated  # but not a warning


def container_examples() -> str:
    """The text of the container module's EXAMPLES."""
    import ast

    from ansible_collection import COLLECTION

    tree = ast.parse((COLLECTION / "plugins" / "modules" / "container.py").read_text())
    [text] = [n.value.value for n in ast.walk(tree) if isinstance(n, ast.Assign)
              and isinstance(n.targets[0], ast.Name) and n.targets[0].id == "EXAMPLES"]
    return text


def test_container_examples_run_as_written(ansible: Ansible, register_state_root, unique_id, busybox_rootfs: str,
                                           tmp_path: Path) -> None:
    """The container module's examples as a playbook, in order, with only the names, state roots and placeholder
    paths replaced (the default root through module_defaults): each does what its name says (the pause is a
    pause, not a recreate that drops limits), and Ansible finds no duplicate key (an error here)."""
    import re

    root, jobs = register_state_root(str(tmp_path / "state")), register_state_root(str(tmp_path / "jobs"))
    (tmp_path / "data").mkdir()
    web, job = unique_id("exweb"), unique_id("exjob")
    text = re.sub(r"(?m)^(\s+name: )web$", rf"\g<1>{web}", container_examples())
    text = re.sub(r"(?m)^(\s+name: )job$", rf"\g<1>{job}", text)
    for placeholder, path in (("/srv/rootfs/job", busybox_rootfs), ("/srv/data", str(tmp_path / "data")),
                              ("/run/dct-jobs", jobs)):
        assert placeholder in text
        text = text.replace(placeholder, path)
    tasks = yaml.safe_load(text)
    body = "\n".join("    " + line for line in text.splitlines())
    playbook = ("- hosts: all\n  gather_facts: false\n  module_defaults:\n    group/declarative_ct.dct.all:\n"
                f"      root: {root}\n  tasks:\n{body}\n")
    ansible.env["ANSIBLE_DUPLICATE_YAML_DICT_KEY"] = "error"
    run = ansible.playbook(playbook, ansible.inventory({"localhost": {}}))
    assert run.rc == 0, run.stdout + run.stderr
    made, more, frozen, removed, created = (run.result(t["name"]) for t in tasks)
    steps = [[(x["class"], x["steps"]) for x in r["actions"]] for r in (made, more, frozen, removed, created)]
    assert steps == [[("create", ["create", "start"])], [("live", ["set"])], [("lifecycle", ["pause"])],
                     [("destroy", ["stop", "destroy"])], [("create", ["create"])]]
    assert made["container"]["pid"] == more["container"]["pid"] == frozen["container"]["pid"]
    assert made["wait"]["ready"] is True and made["wait"]["containers"][web]["health"] == "healthy"  # it answered
    assert made["wait"]["containers"][web]["last_output"].startswith("exit 0: HTTP 200")
    limits = {"memory": 128 * MI, "cpu_quota": 50000, "cpu_period": 100000, "pids_limit": 64}
    assert more["container"]["resources"] == limits == frozen["container"]["resources"]
    assert more["container"]["spec"]["resources"] == dict(limits, memory=64 * MI)  # the spec it was created from
    assert frozen["container"]["status"] == "paused"
    assert (frozen["container"]["spec"]["restart"], frozen["container"]["spec"]["stop_timeout"]) == ("on-failure:3", 2)
    assert removed["container"]["exists"] is False
    assert created["container"]["status"] == "created" and os.path.isdir(os.path.join(jobs, job))


def test_the_wait_option_in_check_and_real_mode(ansible: Ansible, register_state_root, unique_id,
                                               busybox_rootfs: str, tmp_path: Path) -> None:
    """wait: true in check mode probes nothing, waits for nothing and changes nothing; for real, a task
    returns once its containers are healthy (the dependent after its dependency), and fails naming the
    container whose probe does not pass within wait_timeout, with its last probe output."""
    root = register_state_root(str(tmp_path / "state"))
    flags = tmp_path / "flags"
    flags.mkdir()
    web, db, app, sick = (unique_id(p) for p in ("wweb", "wdb", "wapp", "wsick"))
    mounts = [{"source": str(flags), "destination": "/flags"}]
    ready = {"exec": ["test", "-f", "/flags/ready"], "interval": "0.5s", "start_period": "1h"}
    specs = write_specs(tmp_path / "specs", busybox_rootfs, {"name": db, "mounts": mounts, "health": ready},
                        {"name": app, "depends_on": {db: "healthy"}})
    inventory = ansible.inventory({"localhost": {"root": root, "rootfs": busybox_rootfs}})
    tasks = [
        container_task(task="web", name=web, process={"args": SLEEP}, mounts=mounts, health=ready, wait=True,
                       wait_timeout=30),
        {"name": "specs", "declarative_ct.dct.apply": {"paths": [specs], "root": "{{ root }}", "wait": True,
                                                       "wait_timeout": 30}, "register": "specs"},
    ]
    # 1. Check mode: the plan, no probe, no wait (the probe could never pass: no ready file), nothing touched.
    before = snapshot(root, [web, db, app]) if os.path.isdir(root) else {}
    began = time.monotonic()
    run = ansible.playbook([play(*tasks)], inventory, "--check")
    assert run.rc == 0, run.stdout + run.stderr
    assert time.monotonic() - began < 25
    assert run.result("web")["changed"] is True and "wait" not in run.result("web")
    assert [a["result"] for a in run.result("specs")["actions"]] == ["planned", "planned"]
    assert "wait" not in run.result("specs")
    assert (snapshot(root, [web, db, app]) if os.path.isdir(root) else {}) == before
    assert not glob.glob(os.path.join(root, "*", "health.json"))

    # 2. For real: the tasks return once the probes pass (the file appears a little later).
    timer = threading.Timer(2.0, (flags / "ready").touch)
    timer.start()
    try:
        run = ansible.playbook([play(*tasks)], inventory)
    finally:
        timer.cancel()
    assert run.rc == 0, run.stdout + run.stderr
    result = run.result("web")
    assert result["wait"]["ready"] is True
    assert result["wait"]["containers"][web]["health"] == "healthy"
    applied = run.result("specs")
    assert [(a["container"], a["result"]) for a in applied["actions"]] == [(db, "ok"), (app, "ok")]
    assert {n: (c["ready"], c["health"]) for n, c in applied["wait"]["containers"].items()} == {
        db: (True, "healthy"), app: (True, None)}
    rt = Runtime(root)
    assert rt.load(app).state().created > rt.load(db).state().created

    # 3. A probe that never passes: the task fails within wait_timeout, naming it with its last output.
    failing = {"exec": ["/bin/sh", "-c", "echo no answer; exit 1"], "interval": "0.5s", "start_period": "1h"}
    began = time.monotonic()
    run = ansible.playbook([play(container_task(task="sick", name=sick, process={"args": SLEEP}, health=failing,
                                                wait=True, wait_timeout=3))], inventory)
    assert run.rc != 0 and time.monotonic() - began < 30
    result = run.result("sick")
    assert result["failed"] is True and result["changed"] is True
    assert f"not ready: {sick}: not ready within 3s (starting; last probe exit 1: no answer)" in result["msg"]
    assert result["wait"]["containers"][sick]["health"] == "starting"
    assert result["wait"]["containers"][sick]["last_output"] == "exit 1: no answer"


def test_many_hosts_converge_and_one_failing_host_does_not_stop_the_others(
        ansible: Ansible, register_state_root, unique_id, busybox_rootfs: str, tmp_path: Path) -> None:
    hosts = {}
    for host in ("h1", "h2", "h3"):
        root = register_state_root(str(tmp_path / host / "state"))
        web, job = unique_id(f"{host}w"), unique_id(f"{host}j")
        rootfs = busybox_rootfs if host != "h2" else str(tmp_path / "h2" / "no-rootfs")
        specs = write_specs(tmp_path / host / "specs", busybox_rootfs, {"name": job})
        hosts[host] = {"root": root, "rootfs": rootfs, "web": web, "job": job, "specs": specs}
    inventory = ansible.inventory(hosts)
    plays = [play(
        container_task(task="web", name="{{ web }}", process={"args": SLEEP}),
        {"name": "specs", "declarative_ct.dct.apply": {"paths": ["{{ specs }}"], "root": "{{ root }}"}},
    )]
    run = ansible.playbook(plays, inventory)
    assert run.rc == 2, run.stdout  # a host failed
    failed = run.result("web", "h2")
    assert failed["failed"] is True and failed["msg"] == f"rootfs: directory does not exist: {hosts['h2']['rootfs']}"
    assert "Traceback" not in str(failed)
    assert run.stats("h2")["failures"] == 1
    assert not os.path.exists(hosts["h2"]["root"])  # invalid options: nothing touched, not even the root
    for host in ("h1", "h3"):
        assert run.stats(host)["failures"] == 0 and run.stats(host)["changed"] == 2
        rt = Runtime(hosts[host]["root"])
        assert {c.id: c.status() for c in rt.list()} == {hosts[host]["web"]: Status.RUNNING,
                                                         hosts[host]["job"]: Status.RUNNING}
    # Fixed, the same play converges h2 too and leaves h1 and h3 as they are.
    hosts["h2"]["rootfs"] = busybox_rootfs
    run = ansible.playbook(plays, ansible.inventory(hosts))
    assert run.rc == 0, run.stdout
    assert [run.stats(h)["changed"] for h in ("h1", "h2", "h3")] == [0, 2, 0]


def test_bad_input_fails_naming_the_option(ansible: Ansible, tmp_path: Path, busybox_rootfs: str) -> None:
    root = str(tmp_path / "state")  # never created: bad input touches nothing
    bad_file = tmp_path / "bad" / "web.yaml"
    bad_file.parent.mkdir()
    bad_file.write_text(f"name: web\nrootfs: {busybox_rootfs}\nprocess: {{args: [/bin/true]}}\n"
                        "resources: {memory: lots}\n")
    inventory = ansible.inventory({"localhost": {"root": root, "rootfs": busybox_rootfs}})
    cases = {
        "memory": {"name": "t-bad", "process": {"args": SLEEP}, "resources": {"memory": "lots"}},
        "unknown": {"name": "t-bad", "process": {"argz": SLEEP}},
        "missing": {"name": "t-bad"},
        "env": {"name": "t-bad", "process": {"args": SLEEP, "env": {"A": 1}}},
        "relative": {"name": "t-bad", "process": {"args": SLEEP}, "rootfs": "rootfs"},
        "name": {"name": "bad name", "state": "absent"},
        "state": {"name": "t-bad", "state": "running"},
        "option": {"name": "t-bad", "process": {"args": SLEEP}, "memory": "64Mi"},
        "root": {"name": "t-bad", "state": "absent", "root": "/"},
        "templated env": {"name": "t-bad", "process": {"args": SLEEP, "env": {"PORT": "{{ port }}"}}},
    }
    tasks = [{"name": case, "declarative_ct.dct.container": {"root": "{{ root }}", **args}, "ignore_errors": True,
              "vars": {"port": 8080}} for case, args in cases.items()]
    tasks += [
        {"name": "spec file", "declarative_ct.dct.apply": {"paths": [str(bad_file)], "root": "{{ root }}"},
         "ignore_errors": True},
        {"name": "relative paths", "declarative_ct.dct.apply": {"paths": ["specs"], "root": "{{ root }}"},
         "ignore_errors": True},
        {"name": "parallel", "declarative_ct.dct.apply": {"paths": [str(bad_file)], "parallel": -1,
                                                          "root": "{{ root }}"}, "ignore_errors": True},
        {"name": "info name", "declarative_ct.dct.info": {"name": ["../x"], "root": "{{ root }}"},
         "ignore_errors": True},
    ]
    # A valid task in check mode on a root that does not exist yet: planned, and the root is still not made.
    tasks.append({"name": "check", "declarative_ct.dct.container": {
        "name": "t-check", "root": "{{ root }}", "process": {"args": SLEEP, "env": {"PORT": "{{ port | string }}"}}},
        "check_mode": True, "vars": {"port": 8080}})
    run = ansible.playbook([play(*tasks)], inventory)
    assert run.rc == 0, run.stdout
    check = run.result("check")
    assert check["changed"] is True and [(x["class"], x["result"]) for x in check["actions"]] == [("create", "planned")]
    assert check["container"] == {"name": "t-check", "exists": False, "status": "absent"}
    msgs = {t["task"]["name"]: t["hosts"]["localhost"]["msg"] for t in run.data["plays"][0]["tasks"][:-1]}
    for task, msg in msgs.items():
        result = run.result(task)
        assert result["failed"] is True and result["changed"] is False, task
        if task not in ("state", "option", "info name"):  # AnsibleModule's own checks; info has no actions
            assert result["actions"] == [], task
        assert "Traceback" not in msg and "MODULE FAILURE" not in msg and "module_stderr" not in result, (task, msg)
    assert msgs["memory"] == "resources.memory: 'lots' is not a size (give bytes, 64Mi, 1Gi, 64m or \"unlimited\")"
    assert run.result("memory")["errors"] == [msgs["memory"]]
    assert msgs["unknown"] == ("process.args: required field is missing; "
                               "process.argz: unknown field (did you mean `args`?)")
    assert msgs["missing"] == "process: required field is missing"
    hint = ('quote it if it is meant as text (a template that gives a number, such as "{{ port }}" with port: 8080, '
            'needs the string filter: "{{ port | string }}")')
    assert msgs["env"] == f"process.env.A: expected a string, got the number 1: {hint}"
    assert msgs["templated env"] == f"process.env.PORT: expected a string, got the number 8080: {hint}"
    assert msgs["relative"].startswith("rootfs: must be an absolute path on the host")
    assert msgs["name"].startswith("name: must be 1 to 63 letters")
    assert msgs["state"].startswith("value of state must be one of: present, started, stopped, paused, absent")
    assert "Unsupported parameters" in msgs["option"] and "memory" in msgs["option"]
    assert msgs["root"] == "root: refusing '/' as the state root"
    assert msgs["spec file"] == (f"invalid specs (nothing was changed): {bad_file}:4:21: resources.memory: 'lots' is "
                                 "not a size (give bytes, 64Mi, 1Gi, 64m or \"unlimited\")")
    assert msgs["relative paths"] == "paths: specs: give absolute paths on the target"
    assert msgs["parallel"] == "parallel: must be 0 (the number of CPUs) or more, got -1"
    assert msgs["info name"].startswith("name: ")
    assert run.stats()["failures"] == 0 and run.stats()["ignored"] == len(msgs)
    assert not os.path.exists(root)


def test_collection_installs_from_the_directory_and_ansible_doc_renders(ansible: Ansible, tmp_path: Path) -> None:
    from ansible_collection import BIN, COLLECTION, ansible_env

    env = ansible_env(tmp_path, tmp_path / "from-dir")
    done = subprocess.run([str(BIN / "ansible-galaxy"), "collection", "install", str(COLLECTION), "-p",
                           str(tmp_path / "from-dir")], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    installed = tmp_path / "from-dir" / "ansible_collections" / "declarative_ct" / "dct"
    assert (installed / "plugins" / "modules" / "container.py").is_file() and (installed / "README.md").is_file()
    assert not (installed / "tools").exists()  # build_ignore
    done = ansible.doc("declarative_ct.dct.container", "declarative_ct.dct.apply", "declarative_ct.dct.info")
    assert done.returncode == 0 and "ERROR" not in done.stderr, done.stderr
    for text in ("declarative_ct.dct.container", "declarative_ct.dct.apply", "declarative_ct.dct.info",
                 "memory_reservation", "stop_timeout", "prune", "stats", "declarative_ct (the declarative-ct Python"):
        assert text in done.stdout, text


def test_module_without_declarative_ct_says_what_is_missing(ansible: Ansible, tmp_path: Path) -> None:
    """A target whose Python lacks declarative_ct: the module fails with missing_required_lib, no traceback."""
    bare = tmp_path / "bare-python"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(bare)], check=True, timeout=60)
    # AnsiballZ ships the module_utils the module needs; declarative_ct is not in this Python.
    inventory = ansible.inventory({"localhost": {"ansible_python_interpreter": str(bare / "bin" / "python")}})
    run = ansible.playbook([play({"name": "web", "declarative_ct.dct.container": {"name": "web", "state": "absent"},
                                  "ignore_errors": True})], inventory)
    result = run.result("web")
    assert result["failed"] is True
    assert "Failed to import the required Python library (declarative_ct)" in result["msg"], result["msg"]
    assert "module_stderr" not in result
