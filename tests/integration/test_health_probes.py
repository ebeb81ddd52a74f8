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

from conftest import unique_id, wait_for
from declarative_ct.health import probes, record
from declarative_ct.health.check import HealthCheck
from declarative_ct.health.prober import Prober, Target
from declarative_ct.runtime import Process, Status

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


# -- the prober ---------------------------------------------------------------------------------------


def test_prober_records_results_start_period_and_status_changes(running, runtime):
    c = running()
    changes = []
    check = _exec(["test", "-f", "/tmp/ready"], interval=0.2, timeout=1.0, retries=2, start_period=1.0)
    with Prober(runtime, on_change=lambda *a: changes.append(a[:3])) as prober:
        prober.update([Target(c.id, check)])
        wait_for(lambda: len((record.read(c.state_dir) or {}).get("log", [])) >= 2, message="two results")
        rec = record.read(c.state_dir)
        assert rec["status"] == "starting" and rec["failing_streak"] == 0  # failures in the start period
        assert rec["run"] == c.state().created and rec["check"] == "exec test -f /tmp/ready"
        wait_for(lambda: record.read(c.state_dir)["status"] == "unhealthy", timeout=5, message="unhealthy")
        assert changes[0] == (c.id, "starting", "unhealthy")
        c_exec = Process(["touch", "/tmp/ready"], init=False)
        c.start(c_exec).wait()
        wait_for(lambda: record.read(c.state_dir)["status"] == "healthy", message="healthy")
        assert changes[-1] == (c.id, "unhealthy", "healthy")
        assert len(record.read(c.state_dir)["log"]) <= record.LOG_SIZE
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
