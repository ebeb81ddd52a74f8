"""``dct watch`` on real containers: the loop runs in a thread against a spec directory in tmp_path.

Edits, new files, removed files (with and without --prune), an editor's swap file, a half-written
and an invalid file, and the restart policy (on-failure with backoff, never). The ``watching``
fixture stops every loop before the ``runtime`` fixture destroys what is left, pass or fail.
"""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import threading
import time

import pytest
from watch_loop import Loop  # tests/watch_loop.py

from conftest import unique_id, wait_for
from declarative_ct.cli.main import main
from declarative_ct.errors import ContainerNotExists
from declarative_ct.reconcile import restart
from declarative_ct.reconcile.watch import WatchOptions
from declarative_ct.runtime import Status
from declarative_ct.units import parse_time
from dct_cli import Dct

pytestmark = pytest.mark.integration
SLEEP = ["/bin/sh", "-c", "trap 'exit 0' TERM; while :; do sleep 0.1; done"]


@pytest.fixture
def watching(runtime):
    """``watching(paths, **WatchOptions fields)``: start a loop (resync 0.3 s, debounce 0.1 s)."""
    loops: list[Loop] = []

    def start(*paths, **fields) -> Loop:
        fields = {"resync": 0.3, "debounce": 0.1, **fields}
        loop = Loop([str(p) for p in paths], runtime.root, WatchOptions(**fields))
        loops.append(loop)
        wait_for(lambda: loop.saw("watching ") or loop.result, message="the loop to start")
        return loop

    yield start
    for loop in loops:
        loop.close()
        print("--- watch output:", *loop.out, "--- watch errors:", *loop.err, sep="\n")
    assert not any(loop.thread.is_alive() for loop in loops), "a watch loop did not stop"
    assert all(loop.result == [0] for loop in loops)
    left = [t for t in threading.enumerate() if type(t).__module__.startswith("watchdog")]
    assert not left, f"watchdog threads left: {left}"


@pytest.fixture
def spec(busybox_rootfs):
    """``spec(path, name, **fields)``: write a spec document atomically (a temp dotfile, then rename)."""

    def write(path, name: str, **fields) -> None:
        doc = {"name": name, "rootfs": busybox_rootfs, "process": {"args": SLEEP}, "stop_timeout": 1, **fields}
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text(json.dumps(doc, indent=1) + "\n")
        os.rename(tmp, path)

    return write


def _status(runtime, name):
    """The container's status; None while it does not exist (or is half-created: no state.json yet)."""
    try:
        return runtime.load(name).status()
    except ContainerNotExists:
        return None


def _pid(runtime, name):
    return runtime.load(name).state().init_process_pid


def _running(runtime, name, pid=None):
    """A predicate: ``name`` runs (with another init than ``pid`` when given)."""
    return lambda: _status(runtime, name) == Status.RUNNING and (pid is None or _pid(runtime, name) != pid)


def test_edit_add_swap_file_invalid_file_and_remove_without_prune(watching, spec, runtime, tmp_path):
    specs = tmp_path / "specs"
    specs.mkdir()
    a, b = unique_id("wa"), unique_id("wb")
    spec(specs / "a.yaml", a)
    loop = watching(specs)
    wait_for(_running(runtime, a), message=f"{a} to run")
    pid = _pid(runtime, a)

    # an edit: a live update of the running container (same init)
    spec(specs / "a.yaml", a, resources={"memory": "64Mi"})
    wait_for(lambda: runtime.load(a).config.cgroups.resources.limits().get("memory") == 64 << 20, message="the edit")
    assert _pid(runtime, a) == pid
    # The limit is visible before the outcome line is printed: wait for the line too.
    wait_for(lambda: loop.saw(f"{a}: live update resources.memory unset → 64Mi: ok"), message="the outcome line")

    # a new file: created
    spec(specs / "b.yaml", b)
    wait_for(_running(runtime, b), message=f"{b} to run")
    wait_for(lambda: loop.saw(f"{b}: create (not created yet): ok"), message="the outcome line")

    # an editor's swap and backup files: ignored (not read, nothing reported)
    (specs / ".b.yaml.swp").write_bytes(b"b0VIM 9.0\0\0garbage: [")
    (specs / "b.yaml~").write_text("name: [broken\n")
    (specs / "4913").write_text("")
    time.sleep(1.0)  # > debounce + resync: time to (wrongly) act on them
    assert not loop.err, loop.err
    assert not loop.saw(".swp") and not loop.saw("yaml~")

    # a half-written file: the last good spec stays in force, the error is reported
    (specs / "a.yaml").write_text(f"name: {a}\nrootfs: [\n")
    wait_for(lambda: loop.saw(f"{specs / 'a.yaml'}:3:1: -: YAML syntax", "err"), message="the syntax error")
    assert loop.saw(f"{specs / 'a.yaml'}: invalid: its last valid version stays in force ({a})", "err")
    # an invalid field in a complete file: reported as file:line:col: field: message, still nothing changes
    spec(specs / "a.yaml", a, resources={"memory": "lots"})
    wait_for(lambda: loop.saw(f"{specs / 'a.yaml'}:", "err") and loop.saw(": resources.memory: ", "err"),
             message="the field error")
    time.sleep(0.5)  # a resync or two with the file invalid
    assert _status(runtime, a) == Status.RUNNING and _pid(runtime, a) == pid
    assert runtime.load(a).config.cgroups.resources.limits().get("memory") == 64 << 20
    # fixed again: applied
    spec(specs / "a.yaml", a, resources={"memory": "32Mi"})
    wait_for(lambda: runtime.load(a).config.cgroups.resources.limits().get("memory") == 32 << 20, message="the fix")
    wait_for(lambda: loop.saw(f"{specs / 'a.yaml'}: valid again: 1 container ({a})"), message="the valid-again line")

    # a removed file without --prune: its container is left, with a note
    os.unlink(specs / "b.yaml")
    wait_for(lambda: loop.saw(f"# {b}: no longer in specs (watch --prune removes it)"), message="the note")
    time.sleep(0.4)
    assert _status(runtime, b) == Status.RUNNING
    assert _status(runtime, a) == Status.RUNNING and _pid(runtime, a) == pid


def test_a_removed_file_is_pruned_with_prune_and_an_invalid_one_is_not(watching, spec, runtime, tmp_path):
    specs = tmp_path / "specs"
    specs.mkdir()
    gone, broken = unique_id("wgone"), unique_id("wbroken")
    spec(specs / "gone.yaml", gone)
    spec(specs / "broken.yaml", broken)
    loop = watching(specs, prune=True)
    wait_for(lambda: _running(runtime, gone)() and _running(runtime, broken)(), message="both to run")
    (specs / "broken.yaml").write_text("")  # an emptied file is invalid, never "no containers"
    wait_for(lambda: loop.saw("broken.yaml: invalid", "err"), message="the empty file reported")
    os.unlink(specs / "gone.yaml")
    wait_for(lambda: not runtime.exists(gone), message=f"{gone} to be pruned")
    wait_for(lambda: loop.saw(f"{gone}: prune (no longer in specs): ok"), message="the outcome line")
    assert not os.path.exists(restart.record_path(runtime.root, gone))
    time.sleep(0.4)
    assert _status(runtime, broken) == Status.RUNNING


def _status_json(root, path, capsys) -> dict:
    capsys.readouterr()
    assert main(["--root", root, "status", "--json", str(path)]) == 0
    return {row["name"]: row for row in json.loads(capsys.readouterr().out)}


def test_restart_policy_on_failure_with_backoff_and_never(watching, spec, runtime, tmp_path, capsys):
    specs = tmp_path / "specs"
    specs.mkdir()
    flaky, never = unique_id("wflaky"), unique_id("wnever")
    spec(specs / "flaky.yaml", flaky, restart="on-failure")
    spec(specs / "never.yaml", never)  # restart: never (the default)
    loop = watching(specs, resync=0.2)
    wait_for(lambda: _running(runtime, flaky)() and _running(runtime, never)(), message="both to run")
    runtime.load(never).signal(signal.SIGKILL)

    created_at = []
    for attempt in (1, 2):
        old = runtime.load(flaky)
        created_at.append(parse_time(old.state().created))
        old.signal(signal.SIGKILL)
        exit_record = wait_for(old.exit_status, message=f"{flaky}'s exit")
        if attempt == 2:  # within its 1 s backoff, status says when it comes back
            row = _status_json(runtime.root, specs, capsys)[flaky]
            if row["status"] == "stopped":
                assert row["drift"] == "backoff" and row["restarts"] == 1 and row["exit_code"] == 137
                assert parse_time(row["next_restart"]) == pytest.approx(
                    parse_time(exit_record["exited_at"]) + 1.0, abs=0.01)
        wait_for(_running(runtime, flaky, old.state().init_process_pid), timeout=10,
                 message=f"{flaky} restarted ({attempt})")
        new_created = parse_time(runtime.load(flaky).state().created)
        # not before its backoff: 0.5 s after the first exit, 1 s after the second
        assert new_created - parse_time(exit_record["exited_at"]) >= restart.backoff(attempt - 1) - 0.01
        # the new container can run before the outcome line is out: wait for it
        outcome = f"{flaky}: lifecycle (restart: it exited (code 137, SIGKILL; on-failure, attempt {attempt})): ok"
        wait_for(lambda: loop.saw(outcome), message="the restart's outcome line")
        record = restart.load_record(runtime.root, flaky)
        assert record["restarts"] == attempt and record["last_exit"]["exit_code"] == 137
        rows = _status_json(runtime.root, specs, capsys)
        assert rows[flaky]["restarts"] == attempt and rows[flaky]["next_restart"] is None
        assert rows[flaky]["status"] == "running"
    assert loop.saw(f"# {flaky}: restart in ", "out")  # the backoff was announced

    # never: left exited, with a note; status says so
    assert loop.saw(f"# {never}: exited (code 137, SIGKILL), not restarted (restart: never)")
    assert _status(runtime, never) == Status.STOPPED
    rows = _status_json(runtime.root, specs, capsys)
    assert rows[never]["drift"] == "exited" and rows[never]["restarts"] == 0 and rows[never]["exit_code"] == 137


def test_cli_watch_exits_0_on_sigterm_and_sigint(tmp_path, state_root, unique_id):
    specs = tmp_path / "specs"
    specs.mkdir()
    dct = Dct(state_root, unique_id)
    assert dct("watch", tmp_path / "nope").returncode == 1
    for sig in (signal.SIGTERM, signal.SIGINT):
        proc = subprocess.Popen(dct.argv("watch", "--resync", "0.2", specs), stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, env=Dct.env())
        try:
            ready, _, _ = select.select([proc.stdout], [], [], 15)
            assert ready and proc.stdout.readline().startswith("watching "), proc.stderr.read()
            proc.send_signal(sig)
            assert proc.wait(10) == 0
            assert "Traceback" not in proc.stderr.read()
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


def test_an_exit_is_acted_on_at_once_not_at_the_next_resync(watching, spec, runtime, tmp_path):
    specs = tmp_path / "specs"
    specs.mkdir()
    name = unique_id("wexit")
    spec(specs / "c.yaml", name, restart="on-failure")
    loop = watching(specs, resync=600)  # no resync during the test: only the exit can trigger the restart
    wait_for(_running(runtime, name), message="it to run")
    old = runtime.load(name)
    old.signal(signal.SIGKILL)
    wait_for(_running(runtime, name, old.state().init_process_pid), timeout=5,
             message="the restart, after its 0.5 s backoff")
    wait_for(lambda: loop.saw(f"{name}: lifecycle (restart: it exited (code 137, SIGKILL; on-failure, attempt 1)): ok"),
             message="the restart's outcome line")
