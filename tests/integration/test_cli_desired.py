"""Integration tests of the desired-state verbs (``dct plan``, ``apply``, ``status``), run as a subprocess.

Spec files are written into the test's ``tmp_path`` with ``rootfs: <busybox rootfs>``; every
container name comes from the runner's ``new_id`` (a unique id), so ``dct delete --force``
removes it at teardown, pass or fail (a name never created deletes as a no-op). The programs
exit on SIGTERM and specs say ``stop_timeout: 1``, so recreate and prune take no grace period.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import subprocess
import time
from pathlib import Path
from typing import Any, Callable

import pytest
import yaml

import dct_cli
from conftest import wait_for
from declarative_ct.runtime import specconv

pytestmark = pytest.mark.integration

SLEEP = ["/bin/sh", "-c", "trap 'exit 0' TERM; while :; do sleep 0.1; done"]
MI = 1 << 20
RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")
ERROR_LINE = re.compile(r"^(?P<file>[^:]+):(?P<line>\d+):(?P<col>\d+): (?P<field>\S+): (?P<message>.+)$")


# -- helpers ---------------------------------------------------------------------------------
class Dct(dct_cli.Dct):
    """The CLI runner with spec files: ``spec()`` builds a document, ``write()`` puts documents in a file."""

    rootfs: str
    specs: Path

    def spec(self, name: str, **fields: Any) -> dict:
        """A spec document for ``name`` on the busybox rootfs running :data:`SLEEP` (fields override)."""
        return {"name": name, "rootfs": self.rootfs, "process": {"args": SLEEP}, "stop_timeout": 1, **fields}

    def write(self, filename: str, *docs: dict | str) -> str:
        """Write documents (dicts as YAML, strings as they are) to ``<specs>/<filename>``; its path."""
        self.specs.mkdir(exist_ok=True)
        path = self.specs / filename
        path.write_text("---\n".join(d if isinstance(d, str) else yaml.safe_dump(d, sort_keys=False) for d in docs))
        return str(path)

    def out(self, *args: Any, rc: int = 0) -> list[str]:
        """stdout lines of a command that must exit ``rc`` with nothing on stderr."""
        r = self(*args)
        assert r.returncode == rc, f"dct {' '.join(map(str, args))}: rc {r.returncode}\n{r.stdout}\n{r.stderr}"
        assert r.stderr == "", r.stderr
        return r.stdout.splitlines()

    def bad_input(self, *args: Any) -> list[str]:
        """Exit 1, nothing on stdout, no traceback, each stderr line ``file:line:col: field: message``."""
        r = self(*args)
        assert r.returncode == 1, f"dct {' '.join(map(str, args))}: rc {r.returncode}\n{r.stdout}\n{r.stderr}"
        assert r.stdout == "", r.stdout
        assert "Traceback" not in r.stderr, r.stderr
        lines = r.stderr.splitlines()
        assert lines, "no error printed"
        for line in lines:
            assert ERROR_LINE.match(line), f"not file:line:col: field: message: {line!r}"
        return lines

    def journal(self) -> list[dict]:
        try:
            with open(os.path.join(self.root, "#journal.jsonl")) as f:
                return [json.loads(line) for line in f]
        except FileNotFoundError:
            return []

    def pid(self, cid: str) -> int:
        return self.state(cid)["pid"]

    def memory(self, cid: str) -> int | None:
        """The memory limit saved in state.json (what ``set()`` applied)."""
        return self.state_json(cid)["config"]["cgroups"]["resources"].get("memory")

    def status_rows(self, *paths: str) -> dict[str, dict]:
        """``dct status --json`` by name."""
        return {row["name"]: row for row in json.loads(self.ok("status", "--json", *paths).stdout)}


@pytest.fixture
def dct(state_root: str, unique_id: Callable[[str], str], busybox_rootfs: str, tmp_path: Path) -> Dct:
    for d in dct_cli.runner(Dct, state_root, unique_id):
        d.rootfs, d.specs = busybox_rootfs, tmp_path / "specs"
        yield d


def _bundle(dct: Dct, tmp_path: Path) -> str:
    """A plain OCI bundle (no labels: not made by the reconciler) running :data:`SLEEP`."""
    spec = specconv.example_spec()
    spec["root"]["path"] = dct.rootfs
    spec["process"]["args"] = SLEEP
    spec["process"]["terminal"] = False
    path = tmp_path / "bundle"
    path.mkdir()
    (path / "config.json").write_text(json.dumps(spec))
    return str(path)


# -- plan: exit codes and lines --------------------------------------------------------------
def test_plan_lines_and_exit_codes_through_every_class(dct: Dct) -> None:
    live, args, life, gone, absent = (dct.new_id(p) for p in ("live", "args", "life", "gone", "absent"))
    specs = str(dct.specs)
    dct.write("a.yaml", dct.spec(live, resources={"memory": "64Mi"}), dct.spec(args), dct.spec(life),
              dct.spec(gone), dct.spec(absent))
    assert dct.out("plan", specs, rc=2) == [f"{c}: create (not created yet)" for c in (live, args, life, gone, absent)]
    assert dct.entries() == []  # plan changes nothing
    dct.out("apply", "--parallel", "1", specs)  # see test_a_parallel_first_apply_is_not_held_up_by_the_monitor
    assert dct.out("plan", specs) == []  # exit 0: nothing to do
    assert dct.out("apply", specs) == ["nothing to do"]

    dct.write("a.yaml", dct.spec(live, resources={"memory": "128Mi"}),
              dct.spec(args, process={"args": SLEEP[:2] + [SLEEP[2] + " # v2"]}),
              dct.spec(life, state="paused"), dct.spec(absent, state="absent"))
    changes = [f"{live}: live update resources.memory 64Mi → 128Mi", f"{args}: recreate (process.args changed)",
               f"{life}: lifecycle (running → paused)", f"{absent}: destroy (state: absent)"]
    assert dct.out("plan", specs, rc=2) == changes + [f"# {gone}: no longer in specs (apply --prune removes it)"]
    assert dct.out("plan", "--prune", specs, rc=2) == changes + [f"{gone}: prune (no longer in specs)"]
    pids = {c: dct.pid(c) for c in (live, args)}
    out = dct.out("apply", "--prune", specs)
    assert sorted(out[:-1]) == sorted(f"{line}: ok" for line in changes + [f"{gone}: prune (no longer in specs)"])
    assert out[-1] == "5 done, 0 failed, 0 skipped"
    assert dct.pid(live) == pids[live] and dct.pid(args) != pids[args]
    assert dct.status(life) == "paused"
    assert sorted(dct.entries()) == sorted([live, args, life])
    assert dct.out("plan", "--prune", specs) == []


def test_a_memory_change_through_the_cli_is_live_same_init_pid(dct: Dct) -> None:
    web = dct.new_id("web")
    path = dct.write("web.yaml", dct.spec(web, resources={"memory": "64Mi"}))
    dct.out("apply", path)
    pid, limit = dct.pid(web), dct.memory(web)
    assert limit == 64 * MI
    dct.write("web.yaml", dct.spec(web, resources={"memory": "128Mi"}))
    assert dct.out("apply", path) == [f"{web}: live update resources.memory 64Mi → 128Mi: ok",
                                      "1 done, 0 failed, 0 skipped"]
    assert dct.pid(web) == pid and dct.status(web) == "running"
    assert dct.memory(web) == 128 * MI
    dct.ok("update", "--memory", "32m", web)  # drift by hand: plan sees it, apply puts the spec back live
    assert dct.out("plan", path, rc=2) == [f"{web}: live update resources.memory 32Mi → 128Mi"]
    dct.out("apply", path)
    assert dct.pid(web) == pid and dct.memory(web) == 128 * MI


def test_plan_of_an_invalid_spec_prints_every_error_and_nothing_else(dct: Dct) -> None:
    name = dct.new_id("bad")
    path = dct.write("bad.yaml", f"name: {name}\nrootfs: {dct.rootfs}\nprocess:\n  args: []\n"
                                 "resources: {memory: lots}\nenabled: yes\n")
    errors = dct.bad_input("plan", path)
    assert errors == [
        f"{path}:4:9: process.args: must not be empty",
        f"{path}:5:21: resources.memory: 'lots' is not a size (give bytes, 64Mi, 1Gi, 64m or \"unlimited\")",
        f"{path}:6:1: enabled: unknown field",
        f"{path}:6:10: enabled: `yes` is ambiguous in YAML (YAML 1.1 reads it as a boolean): quote it (\"yes\") "
        "or write true/false",
    ]
    assert dct.bad_input("plan", "--json", path) == errors
    assert dct.entries() == []


# -- plan --json and apply --plan --------------------------------------------------------------
def test_plan_json_shape_and_apply_plan_file(dct: Dct, tmp_path: Path) -> None:
    a, b = dct.new_id("a"), dct.new_id("b")
    specs = str(dct.specs)
    dct.write("ab.yaml", dct.spec(a), dct.spec(b, resources={"memory": "64Mi", "pids": 20}))
    r = dct("plan", "--json", specs)
    assert r.returncode == 2 and r.stderr == "", r.stderr
    saved = json.loads(r.stdout)
    assert set(saved) == {"actions", "errors", "notes", "fingerprint", "paths", "prune"}
    assert saved["paths"] == [specs] and saved["prune"] is False
    assert saved["errors"] == [] and saved["notes"] == []
    assert re.fullmatch(r"[0-9a-f]{16}", saved["fingerprint"])
    assert saved["actions"] == [
        {"container": a, "class": "create", "cause": "not created yet", "steps": ["create", "start"],
         "resources": {}},
        {"container": b, "class": "create", "cause": "not created yet", "steps": ["create", "start"],
         "resources": {}},
    ]
    plan_file = tmp_path / "plan.json"
    plan_file.write_text(r.stdout)
    assert dct.out("apply", "--parallel", "1", "--plan", plan_file) == [
        f"{a}: create (not created yet): ok", f"{b}: create (not created yet): ok", "2 done, 0 failed, 0 skipped"]
    assert dct.status(a) == dct.status(b) == "running"

    # A plan for a pause and a live update; then someone pauses a: the plan is refused, nothing done.
    dct.write("ab.yaml", dct.spec(a, state="paused"), dct.spec(b, resources={"memory": "128Mi", "pids": 20}))
    r = dct("plan", "--json", specs)
    assert r.returncode == 2
    saved = json.loads(r.stdout)
    assert [(x["container"], x["class"], x["steps"], x["resources"]) for x in saved["actions"]] == [
        (a, "lifecycle", ["pause"], {}), (b, "live", ["set"], {"memory": 128 * MI})]
    plan_file.write_text(r.stdout)
    dct.ok("pause", a)
    journal = dct.journal()
    r = dct("apply", "--plan", plan_file)
    assert r.returncode == 1 and r.stdout == ""
    assert r.stderr == f"dct: the containers changed since {plan_file} was made; make a new plan\n"
    assert dct.memory(b) == 64 * MI and dct.journal() == journal  # nothing done


def test_apply_plan_refuses_other_paths_and_a_file_that_is_not_a_plan(dct: Dct, tmp_path: Path) -> None:
    a = dct.new_id("a")
    path = dct.write("a.yaml", dct.spec(a))
    plan_file = tmp_path / "plan.json"
    plan_file.write_text(dct("plan", "--json", path).stdout)
    r = dct("apply", "--plan", plan_file, str(tmp_path))
    assert r.returncode == 1 and f"{plan_file} was made for {path}, not these paths" in r.stderr
    plan_file.write_text("{}")
    r = dct("apply", "--plan", plan_file)
    assert r.returncode == 1 and "not a plan saved by 'dct plan --json'" in r.stderr
    assert "Traceback" not in r.stderr and dct.entries() == []


# -- apply: output, failures, dry run, journal, lock -----------------------------------------
def test_apply_reports_each_action_and_fails_only_the_broken_container(dct: Dct) -> None:
    bad, dep, ok = dct.new_id("bad"), dct.new_id("dep"), dct.new_id("ok")
    path = dct.write("set.yaml", dct.spec(ok), dct.spec(bad, process={"args": ["/no/such/program"]}),
                     dct.spec(dep, depends_on=[bad]))
    r = dct("apply", "--parallel", "1", path)
    assert r.returncode == 1, r.stdout + r.stderr
    assert "Traceback" not in r.stderr
    lines = r.stdout.splitlines()
    assert lines[-1] == "1 done, 1 failed, 1 skipped"
    assert sorted(lines[:-1]) == sorted([
        f"{ok}: create (not created yet): ok",
        f"{bad}: create (not created yet): failed: container init failed: exec: '/no/such/program': "
        "executable file not found in the container (looked in /no/such/program)",
        f"{dep}: create (not created yet): skipped: depends on {bad}, which failed",
    ])
    assert dct.entries() == [ok] and dct.status(ok) == "running"  # a failed create leaves nothing

    journal = dct.journal()
    assert len(journal) == 3
    for entry in journal:
        assert {"time", "container", "class", "cause", "result"} <= set(entry), entry
        assert RFC3339.match(entry["time"]), entry["time"]
    by_name = {e["container"]: e for e in journal}
    assert {n: (e["class"], e["cause"], e["result"]) for n, e in by_name.items()} == {
        ok: ("create", "not created yet", "ok"), bad: ("create", "not created yet", "failed"),
        dep: ("create", "not created yet", "skipped")}
    assert "/no/such/program" in by_name[bad]["error"]
    assert by_name[dep]["error"] == f"depends on {bad}, which failed"

    rows = dct.status_rows(path)
    assert {n: r["drift"] for n, r in rows.items()} == {ok: "in-sync", bad: "missing", dep: "missing"}


def test_apply_dry_run_changes_nothing(dct: Dct) -> None:
    a, b = dct.new_id("a"), dct.new_id("b")
    path = dct.write("ab.yaml", dct.spec(a, resources={"memory": "64Mi"}), dct.spec(b))
    assert dct.out("apply", "--dry-run", path) == [f"{a}: create (not created yet)", f"{b}: create (not created yet)"]
    assert dct.entries() == [] and dct.journal() == []
    dct.out("apply", "--parallel", "1", path)
    pid = dct.pid(a)
    dct.write("ab.yaml", dct.spec(a, resources={"memory": "128Mi"}))  # and b gone
    assert dct.out("apply", "--dry-run", "--prune", path) == [f"{a}: live update resources.memory 64Mi → 128Mi",
                                                             f"{b}: prune (no longer in specs)"]
    assert dct.memory(a) == 64 * MI and dct.pid(a) == pid and dct.status(b) == "running"
    assert len(dct.journal()) == 2


def test_apply_waits_for_the_lock_of_its_state_root(dct: Dct) -> None:
    a = dct.new_id("a")
    path = dct.write("a.yaml", dct.spec(a))
    os.makedirs(dct.root, exist_ok=True)
    fd = os.open(os.path.join(dct.root, "#apply.lock"), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        proc = subprocess.Popen(dct.argv("apply", path), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                env=dct.env(), stdin=subprocess.DEVNULL)
        try:
            time.sleep(0.7)
            assert proc.poll() is None, proc.communicate()
            assert dct.entries() == []
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            out, err = proc.communicate(timeout=20)
    finally:
        os.close(fd)
    assert proc.returncode == 0, out + err
    assert out.splitlines() == [f"{a}: create (not created yet): ok", "1 done, 0 failed, 0 skipped"]


def test_a_parallel_first_apply_is_not_held_up_by_the_monitor(dct: Dct) -> None:
    a, b = dct.new_id("a"), dct.new_id("b")
    path = dct.write("ab.yaml", dct.spec(a), dct.spec(b))
    start = time.monotonic()
    out = dct.out("apply", "--parallel", "2", path)
    elapsed = time.monotonic() - start
    assert out[-1] == "2 done, 0 failed, 0 skipped"
    assert elapsed < 2.5, f"apply of 2 containers took {elapsed:.1f} s"


# -- bad input touches nothing ---------------------------------------------------------------
def test_one_invalid_file_among_valid_ones_creates_nothing(dct: Dct) -> None:
    a, b, c = dct.new_id("a"), dct.new_id("b"), dct.new_id("c")
    dct.write("a.yaml", dct.spec(a))
    dct.write("b.yaml", dct.spec(b))
    bad = dct.write("c.yaml", f"name: {c}\nrootfs: {dct.rootfs}\nprocess: {{args: [/bin/true]}}\nstate: on\n")
    errors = dct.bad_input("apply", str(dct.specs))
    assert errors == [f"{bad}:4:8: state: `on` is ambiguous in YAML (YAML 1.1 reads it as a boolean): "
                      "quote it (\"on\") or write true/false"]
    assert dct.bad_input("plan", str(dct.specs)) == errors
    assert dct.entries() == [] and dct.journal() == []


@pytest.mark.parametrize("case", ["duplicate-names", "unknown-depends-on", "missing-rootfs", "no-specs"])
def test_bad_input_is_an_error_naming_the_place_and_creates_nothing(dct: Dct, case: str) -> None:
    a, b = dct.new_id("a"), dct.new_id("b")
    specs = str(dct.specs)
    if case == "duplicate-names":
        first = dct.write("1.yaml", dct.spec(a))
        dct.write("2.yaml", dct.spec(b))
        second = dct.write("3.yaml", f"name: {a}\nrootfs: {dct.rootfs}\nprocess: {{args: [/bin/true]}}\n")
        expected = [f"{first}:1:7: name: duplicate name `{a}` (also at {second}:1:7)",
                    f"{second}:1:7: name: duplicate name `{a}` (also at {first}:1:7)"]
    elif case == "unknown-depends-on":
        dct.write("1.yaml", dct.spec(a))
        second = dct.write("2.yaml", f"name: {b}\nrootfs: {dct.rootfs}\nprocess: {{args: [/bin/true]}}\n"
                                     "depends_on: [db]\n")
        expected = [f"{second}:4:14: depends_on[0]: unknown container `db` (no spec names it)"]
    elif case == "missing-rootfs":
        dct.write("1.yaml", dct.spec(a))
        second = dct.write("2.yaml", f"name: {b}\nrootfs: ./nowhere\nprocess: {{args: [/bin/true]}}\n")
        expected = [f"{second}:2:9: rootfs: directory does not exist: {dct.specs / 'nowhere'}"]
    else:
        dct.specs.mkdir()
        (dct.specs / "notes.txt").write_text("name: a\n")
        expected = [f"{specs}:0:0: -: no container specs found in {specs} (no *.yaml or *.yml files)"]
    for verb in ("apply", "plan"):
        assert dct.bad_input(verb, specs) == expected, verb
    assert dct.entries() == [] and dct.journal() == []


def test_a_directory_whose_spec_files_are_empty_is_an_error(dct: Dct) -> None:
    dct.write("empty.yaml", "# nothing yet\n")
    specs = str(dct.specs)
    assert dct.bad_input("apply", specs) == [
        f"{specs}:0:0: -: no container specs found in {specs} (its files hold no YAML documents)"]
    assert dct.entries() == []


def test_every_error_is_reported_even_beside_a_duplicate_name(dct: Dct) -> None:
    a = dct.new_id("a")
    first = dct.write("1.yaml", dct.spec(a))
    second = dct.write("2.yaml", f"name: {a}\nrootfs: {dct.rootfs}\nprocess: {{args: [/bin/true]}}\n"
                                 "depends_on: [ghost]\n")
    errors = dct.bad_input("validate", str(dct.specs))
    assert f"{second}:4:14: depends_on[0]: unknown container `ghost` (no spec names it)" in errors
    assert f"{first}:1:7: name: duplicate name `{a}` (also at {second}:1:7)" in errors


def test_a_negative_parallel_is_a_usage_error(dct: Dct) -> None:
    """Regression: --parallel -1 reached ThreadPoolExecutor and ended in a traceback."""
    a = dct.new_id("a")
    path = dct.write("a.yaml", dct.spec(a))
    r = dct("apply", "--parallel", "-1", path)
    assert r.returncode == 1
    assert "Traceback" not in r.stderr, r.stderr
    assert "dct apply: error: argument --parallel: '-1' is not 0" in r.stderr, r.stderr  # argparse's usage error
    assert dct.entries() == []


def test_an_edited_or_deleted_seccomp_profile_is_seen_by_plan_and_status(dct: Dct, tmp_path: Path) -> None:
    # plan and status read the spec cache: it must notice the profile file, not only the YAML.
    app = dct.new_id("app")
    profile = tmp_path / "prof.json"
    rule = {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 28}
    profile.write_text(json.dumps({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [rule]}))
    path = dct.write("app.yaml", dct.spec(app, seccomp=str(profile)))
    assert dct.out("plan", path, rc=2) == [f"{app}: create (not created yet)"]
    dct.out("apply", path)
    assert dct.out("plan", path) == []  # cached now
    assert dct.status_rows(path)[app]["drift"] == "in-sync"
    profile.write_text(json.dumps({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{**rule, "errnoRet": 13}]}))
    assert dct.out("plan", path, rc=2) == [f"{app}: recreate (seccomp.sha256 changed)"]
    assert dct.status_rows(path)[app]["drift"] == "drifted"
    profile.unlink()
    [error] = dct.bad_input("plan", path)
    assert error.startswith(f"{path}:") and error.endswith(
        f": seccomp: not default, unconfined or an existing profile file: {profile} does not exist"), error


# -- status ----------------------------------------------------------------------------------
def test_status_drift_and_an_unmanaged_container_left_alone(dct: Dct, tmp_path: Path) -> None:
    sync, drift, missing, other = (dct.new_id(p) for p in ("sync", "drift", "missing", "other"))
    specs = str(dct.specs)
    dct.write("a.yaml", dct.spec(sync), dct.spec(drift))
    dct.out("apply", "--parallel", "1", specs)
    dct.ok("run", "-d", "--bundle", _bundle(dct, tmp_path), other)  # not made by the reconciler
    other_pid = dct.pid(other)
    dct.ok("pause", drift)
    dct.write("a.yaml", dct.spec(sync), dct.spec(drift), dct.spec(missing))

    rows = dct.status_rows(specs)
    assert {n: (r["desired"], r["status"], r["drift"], r["cause"]) for n, r in rows.items()} == {
        sync: ("running", "running", "in-sync", ""),
        drift: ("running", "paused", "drifted", "paused → running"),
        missing: ("running", "absent", "missing", "not created yet"),
        other: (None, "running", "unmanaged", ""),
    }
    keys = {"name", "desired", "status", "drift", "cause", "pid", "exit_code", "oom_killed", "source"}
    assert keys <= set(rows[sync])
    assert rows[sync]["pid"] == dct.pid(sync) and rows[missing]["pid"] is None
    assert rows[sync]["source"] == str(dct.specs / "a.yaml") and rows[other]["source"] == ""

    table = dct.out("status", specs)
    assert table[0].split()[:6] == ["NAME", "DESIRED", "STATUS", "DRIFT", "PID", "EXIT"]
    assert table[0].split()[-1] == "CAUSE"
    cells = {line.split()[0]: line.split() for line in table[1:]}
    assert {n: c[1:4] for n, c in cells.items()} == {
        sync: ["running", "running", "in-sync"], drift: ["running", "paused", "drifted"],
        missing: ["running", "absent", "missing"], other: ["-", "running", "unmanaged"]}
    assert cells[sync][4] == str(dct.pid(sync))

    # apply --prune converges ours and leaves the unmanaged one alone (a note, not an action)
    out = dct.out("apply", "--prune", specs)
    assert f"# {other}: unmanaged (not made by declarative-ct), left alone" in out
    assert not any(line.startswith(f"{other}:") for line in out)
    assert dct.pid(other) == other_pid and dct.status(other) == "running"
    rows = dct.status_rows(specs)
    assert {n: r["drift"] for n, r in rows.items()} == {sync: "in-sync", drift: "in-sync", missing: "in-sync",
                                                        other: "unmanaged"}

    # a spec naming the unmanaged container: an error for that one, the rest still applied
    extra = dct.new_id("extra")
    dct.write("a.yaml", dct.spec(sync), dct.spec(drift), dct.spec(missing), dct.spec(other), dct.spec(extra))
    r = dct("apply", "--prune", specs)
    assert r.returncode == 1
    assert r.stderr == (f"dct: {other}: a container with this name exists and was not made by declarative-ct "
                        "(delete it or rename the spec)\n")
    assert r.stdout.splitlines() == [f"{extra}: create (not created yet): ok", "1 done, 0 failed, 0 skipped"]
    assert dct.pid(other) == other_pid and dct.status(other) == "running"
    assert not [label for label in dct.state_json(other)["config"].get("labels") or [] if label.startswith("dct.")]


def test_exec_in_an_applied_container_takes_the_specs_user_env_and_cwd(dct: Dct, busybox_rootfs, tmp_path) -> None:
    """Regression: dct exec ran as root in / with no env in a container declared as another user."""
    name = dct.new_id("ex")
    (tmp_path / "s.yaml").write_text(
        f"name: {name}\nrootfs: {busybox_rootfs}\nstop_timeout: 1\n"
        "process: {args: [/bin/sh, -c, \"trap 'exit 0' TERM; while :; do sleep 0.1; done\"], "
        "user: '65534:65534', cwd: /tmp, env: {FOO: bar}}\n")
    dct.ok("apply", tmp_path / "s.yaml")
    out = dct.ok("exec", name, "--", "/bin/sh", "-c", "id -u; id -g; pwd; echo $FOO").stdout.split()
    assert out == ["65534", "65534", "/tmp", "bar"]


def test_status_says_when_no_supervisor_will_do_the_restart_it_shows(dct: Dct, tmp_path: Path) -> None:
    """A container that exited under ``restart: always`` with no ``dct watch`` running: NEXT is the
    policy's time, and a line says that nothing will act on it until an apply or a supervisor."""
    name = dct.new_id("gone")
    specs = str(dct.specs)
    dct.write("a.yaml", dct.spec(name, restart="always", process={"args": ["/bin/sh", "-c", "exit 3"]}))
    dct.out("apply", specs)
    wait_for(lambda: dct.status_rows(specs)[name]["next_restart"], message="the exit and its backoff")
    table = dct.out("status", specs)
    assert table[-1] == f"# no supervisor runs on {dct.root}: restarts wait for the next `dct apply` ({name}); " \
                        "run `dct watch` (dct service install)"
