"""What a probe costs the supervisor, and probes in a supervisor with many files open: an exec
probe waits for its command without spinning once the command's output is closed, and a network
probe works when the supervisor's descriptors go past select's 1024 (bench/health_probes.py found both).
"""

from __future__ import annotations

import os
import resource
import time

import pytest

from conftest import unique_id, wait_for
from declarative_ct.health import probes
from declarative_ct.health.check import HealthCheck
from declarative_ct.runtime import Process, Status
from declarative_ct.runtime.forkserver import ForkServer

pytestmark = pytest.mark.integration
QUIET = ["/bin/sh", "-c", "trap 'exit 0' TERM; sleep 1000 & wait"]


@pytest.fixture
def quiet(runtime, busybox_config):
    """A running container (a shell and its sleep), destroyed at teardown by the state root's clean-up."""
    c = runtime.create(unique_id("pc"), busybox_config())
    c.run(Process(list(QUIET)))
    wait_for(lambda: c.status() == Status.RUNNING and len(c.processes()) == 2, message=f"{c.id} to run")
    return c


@pytest.mark.parametrize("served", [True, False], ids=["fork server", "plain exec"])
def test_an_exec_probe_does_not_spin_after_its_command_closes_its_output(quiet, served):
    # The command closes stdout and stderr, then lives on: through the fork server (as dct watch
    # probes) nothing else holds the pipe, which reaches end of file and polls ready from then on.
    # The probe must wait for the command's end asleep; it used to poll the pipe in a busy loop
    # (and between any command's exit and its reaping: ~1.4 ms of CPU per exec probe).
    check = HealthCheck("exec", command=("sh", "-c", "exec >&- 2>&-; sleep 0.6; exit 3"), timeout=10.0)
    with ForkServer() as server:
        fork_server = server if served else None
        probes.probe(quiet, HealthCheck("exec", command=("true",), timeout=10.0), None, fork_server)  # warm-up
        began, cpu = time.monotonic(), time.thread_time()
        result = probes.probe(quiet, check, None, fork_server)
        cpu, took = time.thread_time() - cpu, time.monotonic() - began
    assert result["exit_code"] == 3 and result["output"] == ""
    assert took >= 0.55, took
    assert cpu < 0.15, f"the probing thread used {cpu:.3f} s of CPU over a {took:.2f} s wait"


@pytest.mark.parametrize("kind", ["tcp", "http"])
def test_network_probes_work_with_descriptors_past_1024(quiet, kind):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < 1200:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(1200, hard), hard))
    held = []
    try:
        while not held or held[-1] < 1030:  # every lower number taken: the probe's own fds come after
            held.append(os.open("/dev/null", os.O_RDONLY | os.O_CLOEXEC))
        result = probes.probe(quiet, HealthCheck(kind, port=8080, timeout=2.0))
    finally:
        for fd in held:
            os.close(fd)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    # nothing listens in the container's own network namespace: refused there (not a ValueError)
    assert result["exit_code"] == 1 and result["output"] == "connection refused", result
