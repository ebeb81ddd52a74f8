"""depends_on conditions and ``dct apply --wait`` on real containers and real probes.

A probe's outcome is driven from the host: the containers bind-mount a directory of the test's
``tmp_path`` at ``/state`` and the exec probe is ``test -f /state/ready``, so the test decides when a
dependency turns healthy. Every container name comes from ``unique_id`` / the CLI runner's
``new_id``, and the state roots are the fixtures', so everything is removed at teardown, pass or fail.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import threading
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Callable

import pytest
import yaml

import dct_cli
from declarative_ct.errors import ContainerError
from declarative_ct.health import record
from declarative_ct.reconcile import apply as applying
from declarative_ct.reconcile.plan import make_plan, observe
from declarative_ct.runtime import Status
from declarative_ct.spec.model import ContainerSpec
from declarative_ct.units import parse_time

pytestmark = pytest.mark.integration

SLEEP = ["/bin/sh", "-c", "trap 'exit 0' TERM; while :; do sleep 0.1; done"]
READY = {"exec": ["test", "-f", "/state/ready"], "interval": "0.5s", "timeout": "1s", "retries": 3,
         "start_period": "1h"}  # failures never count: "starting" until the file is there


@pytest.fixture
def apply_specs(runtime, busybox_rootfs: str, tmp_path: Path):
    """``apply_specs(*specs, timeout=60)``: plan and apply spec dicts (busybox, :data:`SLEEP`, ``/state``
    bound to ``tmp_path/flags``) as ``dct apply`` does, without a supervisor; ``(plan, outcomes by name)``."""
    state = tmp_path / "flags"
    state.mkdir()
    source = str(tmp_path / "specs.yaml")

    def run(*specs: dict, timeout: float = 60.0):
        docs = [SimpleNamespace(spec=ContainerSpec.model_validate({
            "rootfs": busybox_rootfs, "process": {"args": SLEEP}, "stop_timeout": 1,
            "mounts": [{"source": str(state), "destination": "/state"}], **s}), source=source) for s in specs]
        plan = make_plan(docs, observe(runtime), scope=[source])
        with applying.locked(runtime.root):
            outcomes = applying.apply(plan, docs, runtime, condition_timeout=timeout)
        return plan, {o.action.container: o for o in outcomes}

    run.state = state
    return run


def _created(runtime, name: str) -> float:
    return parse_time(runtime.load(name).state().created)


def _running(runtime, name: str) -> bool:
    """``name`` is created and running (its directory alone may be a create under way)."""
    try:
        return runtime.load(name).status() == Status.RUNNING
    except ContainerError:
        return False


def _first_healthy(runtime, name: str) -> float:
    """When the current run of ``name`` first turned healthy (its record's first passing result)."""
    rec = record.read(os.path.join(runtime.root, name))
    assert rec is not None and rec["status"] == record.HEALTHY, rec
    return min(parse_time(r["end"]) for r in rec["log"] if r["exit_code"] == 0)


def _later(delay: float, action: Callable[[], Any]) -> threading.Thread:
    def body():
        time.sleep(delay)
        action()
    t = threading.Thread(target=body, daemon=True)
    t.start()
    return t


def test_a_dependent_starts_only_after_its_dependency_is_healthy(apply_specs, runtime, unique_id) -> None:
    db, web, other = unique_id("db"), unique_id("web"), unique_id("other")
    ready = apply_specs.state / "ready"
    turn = _later(1.5, ready.touch)  # db passes its probe only from then on
    began = time.monotonic()
    _, out = apply_specs({"name": db, "health": READY}, {"name": web, "depends_on": {db: "healthy"}},
                         {"name": other})
    turn.join()
    assert {n: o.result for n, o in out.items()} == {db: "ok", web: "ok", other: "ok"}
    healthy_at = _first_healthy(runtime, db)
    assert _created(runtime, web) > healthy_at  # created after db's first healthy result
    assert _created(runtime, other) < healthy_at  # an independent container did not wait
    assert time.monotonic() - began >= 1.5
    assert runtime.load(web).status() == Status.RUNNING
    # Nothing to do the second time: no wait, no probe.
    began = time.monotonic()
    plan, out = apply_specs({"name": db, "health": READY}, {"name": web, "depends_on": {db: "healthy"}},
                            {"name": other})
    assert plan.actions == [] and out == {} and time.monotonic() - began < 1.0


def test_a_dependency_that_stays_starting_or_turns_unhealthy_fails_its_dependent(apply_specs, runtime,
                                                                                 unique_id) -> None:
    db, web = unique_id("db"), unique_id("web")
    began = time.monotonic()
    _, out = apply_specs({"name": db, "health": READY}, {"name": web, "depends_on": {db: "healthy"}}, timeout=2)
    assert time.monotonic() - began < 8
    assert out[db].result == "ok" and out[web].result == "skipped"
    assert out[web].error.startswith(f"{db} did not become healthy within 2s (starting; last probe exit 1")
    assert not runtime.exists(web)
    bad, dep = unique_id("bad"), unique_id("dep")
    refused = {"exec": ["/bin/sh", "-c", "echo connection refused; exit 1"], "interval": "0.5s", "retries": 1}
    _, out = apply_specs({"name": bad, "health": refused}, {"name": dep, "depends_on": {bad: "healthy"}}, timeout=30)
    assert out[dep].result == "skipped"
    assert out[dep].error == f"{bad} is unhealthy (last probe exit 1: connection refused)"
    assert str(out[dep]) == f"{dep}: create (not created yet): skipped: {out[dep].error}"


def test_completed_ordering_and_a_failed_job(apply_specs, runtime, unique_id) -> None:
    job, app, other = unique_id("job"), unique_id("app"), unique_id("other")
    _, out = apply_specs({"name": job, "restart": "never", "process": {"args": ["/bin/sh", "-c", "sleep 1; exit 0"]}},
                         {"name": app, "depends_on": {job: "completed"}}, {"name": other})
    assert {n: o.result for n, o in out.items()} == {job: "ok", app: "ok", other: "ok"}
    exited = runtime.load(job).exit_status()
    assert exited["exit_code"] == 0
    assert _created(runtime, app) > parse_time(exited["exited_at"])  # started after the job completed
    assert _created(runtime, other) < parse_time(exited["exited_at"])
    # A job that exits 3 fails its dependent at once, naming it.
    job3, app3 = unique_id("job"), unique_id("app")
    began = time.monotonic()
    _, out = apply_specs({"name": job3, "restart": "never", "process": {"args": ["/bin/sh", "-c", "exit 3"]}},
                         {"name": app3, "depends_on": {job3: "completed"}})
    assert time.monotonic() - began < 10
    assert out[app3].result == "skipped" and out[app3].error == f"{job3} exited 3"
    assert not runtime.exists(app3)


# -- dct apply --wait -----------------------------------------------------------------------------
class Dct(dct_cli.Dct):
    rootfs: str
    specs: Path
    flags: Path

    def write(self, *docs: dict) -> str:
        self.specs.mkdir(exist_ok=True)
        path = self.specs / "specs.yaml"
        full = [{"rootfs": self.rootfs, "process": {"args": SLEEP}, "stop_timeout": 1,
                 "mounts": [{"source": str(self.flags), "destination": "/state"}], **d} for d in docs]
        path.write_text("---\n".join(yaml.safe_dump(d, sort_keys=False) for d in full))
        return str(path)


@pytest.fixture
def dct(state_root: str, unique_id, busybox_rootfs: str, tmp_path: Path):
    for d in dct_cli.runner(Dct, state_root, unique_id):
        d.rootfs, d.specs, d.flags = busybox_rootfs, tmp_path / "specs", tmp_path / "flags"
        d.flags.mkdir()
        yield d


def test_apply_wait_exit_codes(dct: Dct) -> None:
    web, plain = dct.new_id("web"), dct.new_id("plain")
    (dct.flags / "ready").touch()
    path = dct.write({"name": web, "health": READY}, {"name": plain})
    r = dct("apply", "--wait", "--timeout", "20s", path, timeout=40)
    assert r.returncode == 0, r.stdout + r.stderr
    lines = r.stdout.splitlines()
    waiting = [line for line in lines if line.startswith("waiting up to ")]
    assert len(waiting) == 1 and re.fullmatch(
        rf"waiting up to 1?\d(\.\d)?s for {plain} \(running\), {web} \(healthy\)", waiting[0]), lines
    assert f"{web}: healthy" in lines and f"{plain}: running" in lines
    assert lines[-1].startswith("ready: ")
    # Nothing to do: nothing to wait for.
    r = dct("apply", "--wait", path)
    assert (r.returncode, r.stdout.splitlines()) == (0, ["nothing to do"])

    # A probe that never passes: exit 1 within the timeout, naming it with its last output.
    stuck = dct.new_id("stuck")
    (dct.flags / "ready").unlink()
    path = dct.write({"name": stuck, "health": READY})
    began = time.monotonic()
    r = dct("apply", "--wait", "--timeout", "3s", path, timeout=40)
    elapsed = time.monotonic() - began
    assert r.returncode == 1, r.stdout + r.stderr
    assert 3 <= elapsed < 15
    assert f"{stuck}: not ready within 3s (starting; last probe exit 1" in r.stderr, r.stderr
    assert "Traceback" not in r.stderr

    # An unhealthy one fails as soon as it is (not at the timeout).
    sick = dct.new_id("sick")
    path = dct.write({"name": sick, "health": {"exec": ["/bin/sh", "-c", "echo no; exit 1"], "interval": "0.5s",
                                                 "retries": 1}})
    began = time.monotonic()
    r = dct("apply", "--wait", "--timeout", "60s", path, timeout=40)
    assert r.returncode == 1 and time.monotonic() - began < 20
    assert f"{sick}: unhealthy; last probe exit 1: no" in r.stderr, r.stderr


def test_apply_timeout_is_a_duration(dct: Dct) -> None:
    r = dct("apply", "--wait", "--timeout", "soon", dct.write({"name": dct.new_id("x")}))
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert "dct apply: error: argument --timeout: 'soon' is not a duration" in r.stderr, r.stderr


def _interruptible(dct: Dct, *args: Any) -> subprocess.Popen:
    """``dct *args`` in the background with SIGINT at its default (Ctrl-C raises KeyboardInterrupt), output piped."""
    return subprocess.Popen(dct.argv(*args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=dct.env(),
                            stdin=subprocess.DEVNULL, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


class _Lines:
    """The lines of ``stream``, read by a thread of their own from now to its end."""

    def __init__(self, stream) -> None:
        self.lines: list[str] = []
        self._added = threading.Condition()
        self._thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self._thread.start()

    def _read(self, stream) -> None:
        for line in stream:
            with self._added:
                self.lines.append(line)
                self._added.notify_all()

    def wait_for(self, needle: str, timeout: float = 20.0) -> None:
        """Until a line holds ``needle``; fails after ``timeout`` s."""
        with self._added:
            seen = self._added.wait_for(lambda: any(needle in line for line in self.lines), timeout)
        assert seen, f"{needle!r} not seen in {self.lines}"

    def text(self) -> str:
        """All of it, once the stream ended."""
        self._thread.join(20)
        return "".join(self.lines)


def test_ctrl_c_stops_waiting_and_leaves_the_containers(dct: Dct) -> None:
    stuck, dep = dct.new_id("stuck"), dct.new_id("dep")
    path = dct.write({"name": stuck, "health": READY})
    proc = _interruptible(dct, "apply", "--wait", "--timeout", "60s", path)
    try:
        _Lines(proc.stdout).wait_for("waiting up to")  # said once the wait has begun (Ctrl-C is its own then)
        began = time.monotonic()
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=20)
        err = proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130 and time.monotonic() - began < 5
    assert "stopped waiting; the containers are left as they are" in err and "Traceback" not in err, err
    assert dct.status(stuck) == "running"
    # Ctrl-C while a dependent waits for its condition: the running actions finish, the dependent is not started.
    path = dct.write({"name": stuck, "health": READY}, {"name": dep, "depends_on": {stuck: "healthy"}})
    began_at = time.time()
    proc = _interruptible(dct, "apply", "--timeout", "60s", path)
    try:
        out = _Lines(proc.stdout)

        def probed_anew() -> bool:  # by this apply: its gate waits for stuck to be healthy (stuck has no action)
            log = (record.read(os.path.join(dct.root, stuck)) or {}).get("log") or [{}]
            return (parse_time(log[-1].get("end")) or 0) > began_at

        deadline = time.monotonic() + 20
        while not probed_anew() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert probed_anew()
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=20)
        err = proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130 and "Traceback" not in err, err
    assert f"{dep}: create (not created yet): skipped: not started: interrupted" in out.text(), out.lines
    assert "interrupted" in err
    assert not os.path.exists(os.path.join(dct.root, dep, "state.json"))


def test_the_supervisor_does_not_wait_it_starts_the_dependent_once_healthy(runtime, busybox_rootfs: str,
                                                                             unique_id, tmp_path: Path) -> None:
    """dct watch: a dependent whose dependency is not healthy yet is skipped at once ("waiting for …", the
    loop is not held up), and a later pass, woken by the health change, starts it."""
    from declarative_ct.reconcile.watch import WatchOptions, watch

    db, web = unique_id("db"), unique_id("web")
    flags = tmp_path / "flags"
    flags.mkdir()
    base = {"rootfs": busybox_rootfs, "process": {"args": SLEEP}, "stop_timeout": 1,
            "mounts": [{"source": str(flags), "destination": "/state"}]}
    path = tmp_path / "specs.yaml"
    path.write_text(yaml.safe_dump_all([{"name": db, "health": READY, **base},
                                        {"name": web, "depends_on": {db: "healthy"}, **base}]))
    out: list[str] = []
    stop = threading.Event()
    thread = threading.Thread(target=watch, args=([str(path)], runtime.root,
                                                  WatchOptions(resync=30, debounce=0.1), stop),
                              kwargs={"out": out.append, "err": out.append}, daemon=True)
    thread.start()
    try:
        waiting = f"# {web}: create (not created yet): waiting for {db} to be healthy (starting"
        deadline = time.monotonic() + 20
        while not any(line.startswith(waiting) for line in out) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert any(line.startswith(waiting) for line in out), out
        assert not runtime.exists(web)
        (flags / "ready").touch()
        began = time.monotonic()
        while not _running(runtime, web) and time.monotonic() - began < 20:
            time.sleep(0.05)
        assert _running(runtime, web) and time.monotonic() - began < 10, out  # not the 30 s resync
        assert _created(runtime, web) > _first_healthy(runtime, db)
    finally:
        stop.set()
        thread.join(30)


def test_apply_wait_does_not_probe_beside_a_supervisor_of_these_specs(dct: Dct, tmp_path: Path) -> None:
    """Two probers on one container overwrite each other's record and run exec probes twice: beside a
    supervisor that watches these specs, apply --wait only reads the records it keeps (here it keeps
    none: not ready); beside one that watches other specs, apply probes (ready)."""
    from declarative_ct.service.supervisor import Supervisor

    web = dct.new_id("web")
    (dct.flags / "ready").touch()
    path = dct.write({"name": web, "health": READY})
    supervisor = Supervisor.acquire(dct.root, [os.path.dirname(path)])  # a supervisor that probes nothing here
    try:
        r = dct("apply", "--wait", "--timeout", "3s", path, timeout=40)
        assert r.returncode == 1 and f"{web}: not ready within 3s (starting)" in r.stderr, r.stdout + r.stderr
        assert record.read(os.path.join(dct.root, web)) is None  # nobody probed it
    finally:
        supervisor.release()
    supervisor = Supervisor.acquire(dct.root, [str(tmp_path / "elsewhere.yaml")])
    try:
        dct.ok("delete", "--force", web)
        r = dct("apply", "--wait", "--timeout", "20s", path, timeout=40)
        assert r.returncode == 0 and f"{web}: healthy" in r.stdout, r.stdout + r.stderr
    finally:
        supervisor.release()
    # A dependency this apply creates, beside a supervisor of these specs: nobody probes it while apply holds
    # the apply lock (the supervisor's passes wait for it), so apply does, and its dependent starts.
    dep = dct.new_id("dep")
    path = dct.write({"name": web, "health": READY}, {"name": dep, "depends_on": {web: "healthy"}})
    dct.ok("delete", "--force", web)
    supervisor = Supervisor.acquire(dct.root, [os.path.dirname(path)])
    try:
        r = dct("apply", "--timeout", "20s", path, timeout=40)
        assert r.returncode == 0 and f"{dep}: create (not created yet): ok" in r.stdout, r.stdout + r.stderr
    finally:
        supervisor.release()


def test_the_supervisor_says_a_waiting_dependent_once_and_does_not_journal_it(runtime, busybox_rootfs: str,
                                                                               unique_id, tmp_path: Path) -> None:
    """dct watch (no waiting for conditions): while db is starting, web's create is not an outcome every
    resync (``skipped: waiting for …``, a summary line, a journal line each pass): it is said once, as a
    note, while it holds (the review's case)."""
    from declarative_ct.reconcile.watch import WatchOptions, watch

    db, web = unique_id("db"), unique_id("web")
    base = {"rootfs": busybox_rootfs, "process": {"args": SLEEP}, "stop_timeout": 1}
    never = {"exec": ["false"], "interval": "500ms", "start_period": "1h"}  # starting for an hour
    path = tmp_path / "specs.yaml"
    path.write_text(yaml.safe_dump_all([{"name": db, "health": never, **base},
                                        {"name": web, "depends_on": {db: "healthy"}, **base}]))
    out: list[str] = []
    stop = threading.Event()
    thread = threading.Thread(target=watch, args=([str(path)], runtime.root, WatchOptions(resync=0.5, debounce=0.1),
                                                  stop), kwargs={"out": out.append, "err": out.append}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 20
        while not any("waiting for" in line for line in out) and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(4)  # eight resyncs more while db stays starting
    finally:
        stop.set()
        thread.join(30)
    waiting = [line for line in out if "waiting for" in line]
    assert waiting == [f"# {web}: create (not created yet): waiting for {db} to be healthy (starting)"] or \
        len(waiting) == 2 and waiting[1].startswith(f"# {web}: create (not created yet): waiting for {db} to be "
                                                    "healthy (starting; last probe exit 1"), "\n".join(out)
    assert sum(" done, " in line for line in out) == 1, "\n".join(out)  # db's create; none for the waiting passes
    with open(os.path.join(runtime.root, applying.JOURNAL_FILE)) as f:
        journaled = [line for line in f if web in line]
    assert journaled == [], journaled
    assert not runtime.exists(web)
