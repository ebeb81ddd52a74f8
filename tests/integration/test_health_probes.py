"""Health probes on real containers: exec (the spec's user, env and cwd; a timed-out command is
killed with its children), HTTP and TCP made from inside the container's own network namespace
(servers listening only on its 127.0.0.1), the prober's records and start period, and the
supervisor: healthy → unhealthy → restart with the restart policy's backoff under ``dct watch``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time

import pytest
from watch_loop import Loop  # tests/watch_loop.py

from conftest import unique_id, wait_for
from declarative_ct.health import probes, record
from declarative_ct.health.check import HealthCheck
from declarative_ct.health.prober import Prober, Target
from declarative_ct.reconcile import restart
from declarative_ct.reconcile.watch import WatchOptions
from declarative_ct.runtime import Process, Runtime, Status

pytestmark = pytest.mark.integration
SLEEP = ["/bin/sh", "-c", "trap 'exit 0' TERM; while :; do sleep 0.1; done"]
QUIET = ["/bin/sh", "-c", "trap 'exit 0' TERM; sleep 1000 & wait"]  # a fixed set of processes


@pytest.fixture
def running(runtime, busybox_config):
    """``running(args=QUIET, **config fields)``: a running container (monitored), destroyed at teardown."""

    def start(args=None, **fields):
        c = runtime.create(unique_id("hp"), busybox_config(**fields))
        c.run(Process(list(args or QUIET)))
        wait_for(lambda: c.status() == Status.RUNNING, message=f"{c.id} to run")
        if args is None:
            wait_for(lambda: len(c.processes()) == 2, message=f"{c.id}'s sleep to start")
        return c

    return start


def _exec(command, **timing) -> HealthCheck:
    return HealthCheck("exec", command=tuple(command), **{"timeout": 2.0, **timing})


def _session_members(container, sid_marker: str) -> list[int]:
    """The container's processes whose command line mentions ``sid_marker``."""
    out = []
    for pid in container.processes():
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if sid_marker.encode() in f.read():
                    out.append(pid)
        except OSError:
            pass
    return out


def test_exec_probe_runs_with_the_spec_user_env_and_cwd(running):
    c = running()
    template = Process(args=["true"], env=["PATH=/bin", "GREETING=hi"], cwd="/tmp", uid=1000, gid=1000, init=False)
    result = probes.probe(c, _exec(["sh", "-c", "echo $(id -u):$(id -g) $GREETING $(pwd); echo err >&2; exit 3"]),
                          template)
    assert result["exit_code"] == 3
    assert result["output"] == "1000:1000 hi /tmp\nerr\n"
    # without a template: root, "/", the default PATH
    result = probes.probe(c, _exec(["sh", "-c", "echo $(id -u) $(pwd) $PATH"]))
    assert result["exit_code"] == 0 and result["output"].startswith("0 / /usr/local/sbin:")
    assert record.parse_time(result["end"]) >= record.parse_time(result["start"])


def test_exec_probe_output_is_cut_and_a_missing_program_fails(running):
    c = running()
    result = probes.probe(c, _exec(["sh", "-c", "yes | head -c 200000; exit 0"]))
    assert result["exit_code"] == 0 and len(result["output"]) <= record.OUTPUT_MAX
    result = probes.probe(c, _exec(["/nonexistent"]))
    assert result["exit_code"] != 0 and "nonexistent" in result["output"]


def test_a_timed_out_exec_probe_is_killed_with_its_children(running):
    c = running()
    before = set(c.processes())
    began = time.monotonic()
    # the shell forks a child (not exec'd: a command follows) that would outlive a kill of the shell alone
    result = probes.probe(c, _exec(["sh", "-c", "sleep 31; echo never"], timeout=0.5))
    took = time.monotonic() - began
    assert result["exit_code"] == probes.TIMEOUT_EXIT
    assert result["output"] == "timed out after 500ms"
    assert took < 2.5, took
    wait_for(lambda: set(c.processes()) == before, message="the probe's processes to go")
    assert not _session_members(c, "sleep 31")


def test_a_cancelled_exec_probe_is_killed_at_once(running):
    c = running()
    before = set(c.processes())
    r, w = os.pipe()
    try:
        threading.Timer(0.3, os.write, (w, b"x")).start()
        began = time.monotonic()
        result = probes.probe(c, _exec(["sleep", "32"], timeout=30), cancel=r)
        assert time.monotonic() - began < 3
    finally:
        os.close(r)
        os.close(w)
    assert result["exit_code"] == probes.TIMEOUT_EXIT and result["output"] == "cancelled"
    wait_for(lambda: set(c.processes()) == before, message="the probe's process to go")


HTTPD = ["/bin/sh", "-c", "mkdir -p /tmp/www && echo ok > /tmp/www/healthz && "
                          "exec httpd -f -p 127.0.0.1:8080 -h /tmp/www"]


def test_http_probe_reaches_a_server_on_the_containers_own_loopback(running):
    c = running(HTTPD)
    ok = HealthCheck("http", port=8080, path="/healthz", timeout=2.0)
    wait_for(lambda: probes.probe(c, ok)["exit_code"] == 0, message="httpd to answer")
    result = probes.probe(c, ok)
    assert result["output"] == "HTTP 200 OK"
    missing = probes.probe(c, HealthCheck("http", port=8080, path="/nothing", timeout=2.0))
    assert missing["exit_code"] == 1 and missing["output"].startswith("HTTP 404")
    expected = probes.probe(c, HealthCheck("http", port=8080, path="/nothing", expect_status=(404,), timeout=2.0))
    assert expected["exit_code"] == 0
    refused = probes.probe(c, HealthCheck("http", port=8081, timeout=2.0))
    assert refused == {**refused, "exit_code": 1, "output": "connection refused"}


def test_the_probing_thread_goes_back_to_its_own_network_namespace(running):
    c = running(HTTPD)
    own = os.readlink("/proc/thread-self/ns/net")
    theirs = os.readlink(f"/proc/{c.state().init_process_pid}/ns/net")
    assert own != theirs
    probes.probe(c, HealthCheck("tcp", port=8080, timeout=1.0))
    assert os.readlink("/proc/thread-self/ns/net") == own


def test_tcp_probe_and_a_silent_server_times_out(running):
    # nc listens and never answers: tcp passes (connected), http times out waiting for a status line
    c = running(["nc", "-ll", "-p", "9000", "-e", "sleep", "30"])  # a server per connection, never answering
    tcp = HealthCheck("tcp", port=9000, timeout=1.0)
    wait_for(lambda: probes.probe(c, tcp)["exit_code"] == 0, message="nc to listen")
    assert probes.probe(c, tcp)["output"] == "connected to 127.0.0.1:9000"
    began = time.monotonic()
    result = probes.probe(c, HealthCheck("http", port=9000, timeout=0.5))
    assert result == {**result, "exit_code": 1, "output": "timed out after 500ms"}
    assert time.monotonic() - began < 2
    assert probes.probe(c, HealthCheck("tcp", port=9001, timeout=1.0))["output"] == "connection refused"


def test_a_container_on_the_host_network_is_probed_in_ours(running, busybox_config):
    namespaces = [n for n in busybox_config().namespaces if n.type != "NEWNET"]
    c = running(namespaces=namespaces)
    assert c.config.namespace("NEWNET") is None
    import socket

    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        assert probes.probe(c, HealthCheck("tcp", port=port, timeout=1.0))["exit_code"] == 0


# -- a fork server that cannot serve ------------------------------------------------------------------


def test_an_exec_probe_through_a_fork_server_that_cannot_start_runs_plain(running, monkeypatch, capsys):
    """Our helper's failure is not the probe's: no 126 "exec failed", a plain exec instead, said once."""
    from declarative_ct.runtime import forkserver

    c = running()
    monkeypatch.setattr(forkserver, "ENTRY", "import sys; sys.exit(3)")  # the server dies before "ready"
    srv = forkserver.ForkServer()
    try:
        for _ in range(2):
            result = probes.probe(c, _exec(["sh", "-c", "echo up"]), fork_server=srv)
            assert (result["exit_code"], result["output"]) == (0, "up\n")
        said = [line for line in capsys.readouterr().err.splitlines() if "fork server" in line]
        assert said == ["dct: health: fork server failed to start: it said nothing; exec probes run as plain "
                        "execs for now"]
        assert srv.pid is None  # resting: the second probe did not try it again
    finally:
        srv.close()


def test_an_exec_probe_whose_fork_server_dies_under_it_runs_again_plain(running, capsys):
    """The server is killed while the probe's command runs (its status is lost with it): the probe
    is run again as a plain exec, and its own result recorded."""
    from declarative_ct.runtime.forkserver import ForkServer

    c = running()
    srv = ForkServer()
    killed = []

    def kill_once_running() -> None:
        wait_for(lambda: _session_members(c, "served-sleep"), message="the served probe to run")
        killed.append(srv.pid)
        os.kill(srv.pid, signal.SIGKILL)

    killer = threading.Thread(target=kill_once_running)
    try:
        killer.start()
        result = probes.probe(c, _exec(["sh", "-c", "sleep 1; echo served-sleep done"], timeout=10), fork_server=srv)
        killer.join()
        assert killed and (result["exit_code"], result["output"]) == (0, "served-sleep done\n")
        assert "exec probes run as plain execs" in capsys.readouterr().err
    finally:
        killer.join()
        srv.close()


# -- the prober ---------------------------------------------------------------------------------------


def test_prober_records_results_start_period_and_status_changes(running, runtime):
    c = running()
    ready = f"/tmp/ready-{c.id}"  # the rootfs is shared by the session's tests: a name of this test's own
    changes = []
    check = _exec(["test", "-f", ready], interval=0.2, timeout=1.0, retries=2, start_period=3.0)
    try:
        with Prober(runtime, on_change=lambda *a: changes.append(a[:3])) as prober:
            prober.update([Target(c.id, check)])
            wait_for(lambda: len((record.read(c.state_dir) or {}).get("log", [])) >= 2, message="two results")
            rec = record.read(c.state_dir)
            assert rec["status"] == "starting" and rec["failing_streak"] == 0  # failures in the start period
            assert rec["run"] == c.state().created and rec["check"] == f"exec test -f {ready}"
            wait_for(lambda: changes, timeout=10, message="unhealthy")  # reported once stored
            assert changes[0] == (c.id, "starting", "unhealthy")
            assert record.read(c.state_dir)["status"] == "unhealthy"
            c.start(Process(["touch", ready], init=False)).wait()
            wait_for(lambda: len(changes) == 2, message="healthy")
            assert changes[-1] == (c.id, "unhealthy", "healthy")
            assert len(record.read(c.state_dir)["log"]) <= record.LOG_SIZE
    finally:
        c.start(Process(["rm", "-f", ready], init=False)).wait()
    assert not [t for t in threading.enumerate() if t.name.startswith("dct-prob")]


def test_prober_skips_a_stopped_container_and_starts_afresh_for_a_new_run(running, runtime):
    c = running()
    check = _exec(["true"], interval=0.1)
    with Prober(runtime) as prober:
        prober.update([Target(c.id, check)])
        wait_for(lambda: (record.read(c.state_dir) or {}).get("status") == "healthy", message="healthy")
        c.stop()
        time.sleep(0.3)
        stopped_log = len(record.read(c.state_dir)["log"])
        time.sleep(0.3)
        assert len(record.read(c.state_dir)["log"]) == stopped_log  # not probed, not written
        name = c.id
        c.destroy()
        again = runtime.create(name, c.config)
        again.run(Process(list(SLEEP)))
        wait_for(lambda: (record.read(again.state_dir) or {}).get("run") == again.state().created,
                 message="a record of the new run")
        assert len(record.read(again.state_dir)["log"]) <= 2


def test_close_cancels_a_running_probe_and_leaves_no_thread_or_process(running, runtime):
    c = running()
    before = set(c.processes())
    prober = Prober(runtime)
    prober.update([Target(c.id, _exec(["sleep", "33"], timeout=30, interval=60))])
    wait_for(lambda: len(c.processes()) > len(before), message="the probe to run")
    began = time.monotonic()
    prober.close()
    assert time.monotonic() - began < 3
    assert set(c.processes()) == before
    assert not [t for t in threading.enumerate() if t.name.startswith("dct-prob")]
    assert record.read(c.state_dir) is None  # a cancelled probe is no result


# -- the supervisor: dct watch ------------------------------------------------------------------------

# Serves TCP on the container's 127.0.0.1:8080 (nc per connection) for 1.5 s, then stops serving and
# keeps running: healthy, then unhealthy (connection refused) until it is restarted.
SERVES_THEN_FAILS = ["/bin/sh", "-c", "nc -ll -p 8080 -e true & server=$!; trap 'exit 0' TERM; sleep 1.5; "
                                      "kill $server; while :; do sleep 0.1; done"]


@pytest.fixture
def loop(runtime):
    """``loop(specs_dir)``: a watch loop (resync 0.3 s), stopped at teardown, pass or fail; no probe
    thread may be left."""
    loops = []

    def start(path, resync=0.3):
        lp = Loop([str(path)], runtime.root, WatchOptions(resync=resync, debounce=0.05))
        loops.append(lp)
        wait_for(lambda: lp.saw("watching ") or lp.result, message="the loop to start")
        return lp

    yield start
    for lp in loops:
        lp.close()
        print("--- watch output:", *lp.out, "--- watch errors:", *lp.err, sep="\n")
    assert not any(lp.thread.is_alive() for lp in loops)
    assert all(lp.result == [0] for lp in loops)
    assert not [t for t in threading.enumerate() if t.name.startswith("dct-prob")], "probe threads left"


def _doc(name: str, health: dict | None, **fields) -> dict:
    """A spec document for ``name``, with ``health`` when given."""
    return {"name": name, **({"health": health} if health is not None else {}), **fields}


def _write(path, doc):
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(doc, indent=1) + "\n")
    os.rename(tmp, path)


def test_watch_probes_healthy_unhealthy_then_restarts_with_the_backoff(loop, runtime, busybox_rootfs, tmp_path):
    specs = tmp_path / "specs"
    specs.mkdir()
    name = unique_id("hw")
    health = {"tcp": {"port": 8080}, "interval": "500ms", "timeout": "500ms", "retries": 2,
              "on_unhealthy": "restart"}
    # restart: never: on_unhealthy: restart restarts it all the same
    _write(specs / "web.yaml", _doc(name, health, rootfs=busybox_rootfs, stop_timeout=1,
                                                          restart="never", process={"args": SERVES_THEN_FAILS}))
    lp = loop(specs)
    gaps = []
    for attempt in (1, 2):
        rec = wait_for(lambda: (lambda r: r if r and r.get("restarts") == attempt and "restarted_at" in r else None)(
            restart.load_record(runtime, name)), timeout=15, message=f"restart {attempt}")
        gaps.append(rec["restarted_at"] - rec["exit_time"])
        assert rec["last_exit"]["reason"] == "unhealthy"
        assert rec["last_exit"]["health"] == "exit 1: connection refused"
        assert restart.describe_exit(rec["last_exit"]) == "unhealthy"
    # each restart waited for its backoff after the container turned unhealthy, the second longer
    assert gaps[0] >= restart.backoff(0) - 0.05 and gaps[1] >= restart.backoff(1) - 0.05, gaps
    assert gaps[1] > gaps[0], gaps
    assert lp.saw(f"{name}: starting → healthy (exit 0: connected to 127.0.0.1:8080)")
    assert lp.saw(f"{name}: healthy → unhealthy (exit 1: connection refused)")
    assert lp.saw(f"{name}: lifecycle (restart: unhealthy (exit 1: connection refused); attempt 1, "
                  "after 500ms backoff): ok")
    wait_for(lambda: lp.saw(f"{name}: lifecycle (restart: unhealthy (exit 1: connection refused); attempt 2, "
                            "after 1s backoff): ok"), message="the outcome line")  # printed after the record
    assert lp.saw(f"{name}: unhealthy (exit 1: connection refused), restart in ")  # the backoff's note
    # the new run starts afresh: its record is of that run
    c = runtime.load(name)
    wait_for(lambda: (record.read(c.state_dir) or {}).get("run") == c.state().created, message="the new run probed")


def test_a_supervisor_started_again_starts_a_dependent_once_the_stale_record_is_fresh(
        loop, runtime, busybox_rootfs, tmp_path):
    """db's record went stale while no supervisor ran; a new one skips web ("no recent probe") on its
    first pass, then probes db: healthy again, no status change, yet the loop plans at once and web
    starts (not at the next resync, a minute away)."""
    specs = tmp_path / "specs"
    specs.mkdir()
    db, web = unique_id("hdb"), unique_id("hweb")
    health = {"exec": ["true"], "interval": "500ms", "timeout": "500ms"}
    _write(specs / "db.yaml", _doc(db, health, rootfs=busybox_rootfs, stop_timeout=1, process={"args": SLEEP}))
    first = loop(specs, resync=60)
    wait_for(lambda: first.saw(f"{db}: starting → healthy"), timeout=10, message="db healthy")
    first.close()
    state_dir = runtime.load(db).state_dir
    check = HealthCheck("exec", command=("true",), interval=0.5, timeout=0.5)
    wait_for(lambda: record.is_stale(record.read(state_dir), check, time.time()), timeout=10,
             message="db's record to go stale")
    _write(specs / "web.yaml", _doc(web, None, rootfs=busybox_rootfs, stop_timeout=1, process={"args": SLEEP},
                                    depends_on={db: "healthy"}))
    second = loop(specs, resync=60)
    wait_for(lambda: second.saw(f"{web}: create (not created yet): ok"), timeout=10, message="web's create")
    wait_for(lambda: runtime.load(web).status() == Status.RUNNING, message="web to run")
    assert second.saw(f"# {web}: create (not created yet): waiting for {db} to be healthy (no recent probe")
    assert not second.saw(f"{db}: healthy → healthy")  # a record turned fresh is not said


def test_watch_on_unhealthy_none_only_records_and_a_declared_set_without_health_starts_no_thread(
        loop, runtime, busybox_rootfs, tmp_path):
    specs = tmp_path / "specs"
    specs.mkdir()
    plain, sick = unique_id("hn"), unique_id("hs")
    _write(specs / "plain.yaml", _doc(plain, None, rootfs=busybox_rootfs, stop_timeout=1,
                                                            process={"args": SLEEP}))
    lp = loop(specs)
    wait_for(lambda: lp.saw(f"{plain}: create"), message="the create")
    time.sleep(0.5)
    assert not [t for t in threading.enumerate() if t.name.startswith("dct-prob")]
    health = {"exec": ["false"], "interval": "500ms", "retries": 1}
    _write(specs / "sick.yaml", _doc(sick, health, rootfs=busybox_rootfs, stop_timeout=1,
                                                           process={"args": SLEEP}))
    wait_for(lambda: lp.saw(f"{sick}: starting → unhealthy (exit 1)"), message="unhealthy")
    pid = runtime.load(sick).state().init_process_pid
    time.sleep(1.0)
    assert runtime.load(sick).state().init_process_pid == pid  # on_unhealthy: none: left running
    assert restart.load_record(runtime, sick) is None or "restarted_at" not in restart.load_record(runtime, sick)
    assert record.read(runtime.load(plain).state_dir) is None


def test_sigterm_stops_the_supervisor_with_no_probe_left(tmp_path, state_root, busybox_rootfs):
    specs = tmp_path / "specs"
    specs.mkdir()
    name = unique_id("ht")
    health = {"exec": ["sleep", "34"], "interval": "1m", "timeout": "30s"}
    _write(specs / "slow.yaml", _doc(name, health, rootfs=busybox_rootfs, stop_timeout=1,
                                                           process={"args": QUIET}))
    script = "import sys\nfrom declarative_ct.cli.main import main\nsys.exit(main(sys.argv[1:]))\n"
    env = {**os.environ, "PYTHONPATH": os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))}
    proc = subprocess.Popen([sys.executable, "-c", script, "--root", state_root, "watch", "--resync", "0.3",
                             str(specs)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    runtime = Runtime(state_root)
    try:
        def probing():
            try:
                c = runtime.load(name)
                return c.status() == Status.RUNNING and any(_cmdline(p) == "sleep 34" for p in c.processes())
            except Exception:  # noqa: BLE001 - not created yet
                return False
        wait_for(probing, timeout=20, message="the exec probe to run")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0
        assert "Traceback" not in proc.stderr.read()
        c = runtime.load(name)
        assert c.status() == Status.RUNNING  # the containers stay
        assert not [p for p in c.processes() if _cmdline(p) == "sleep 34"]  # the probe is gone
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode().strip()
    except OSError:
        return ""
