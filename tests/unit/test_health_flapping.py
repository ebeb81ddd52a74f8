"""A container that flaps (healthy, unhealthy, healthy… at every probe) with ``on_unhealthy:
restart``: the restarts keep the restart policy's backoff (a storm of restarts is what a hostile
container would like), pure (fake clock, a health record in a temp directory)."""

from __future__ import annotations

import json
import os
from types import SimpleNamespace

import pytest

from declarative_ct.health import record as health_record
from declarative_ct.health.check import HealthCheck
from declarative_ct.reconcile import restart
from declarative_ct.reconcile.plan import Observed, make_plan
from declarative_ct.runtime import Status
from declarative_ct.spec.model import ContainerSpec
from declarative_ct.units import format_time

T0 = 1_700_000_000.0
STEP = 0.1  # seconds between probes (and plans)


def _doc():
    spec = ContainerSpec.model_validate({
        "name": "w", "rootfs": "host", "process": {"args": ["/bin/true"]}, "restart": "always",
        "health": {"tcp": {"port": 80}, "interval": "500ms", "retries": 1, "on_unhealthy": "restart"}})
    return SimpleNamespace(spec=spec, source="/specs/w.yaml")


def _write(state_dir, run: str, status: str, since: float, now: float) -> None:
    probe = HealthCheck.from_normalized(_doc().spec.normalized()["health"]).to_normalized()  # made by the spec's check
    rec = {**health_record.new(run, since, since), "status": status, "since": format_time(since), "probe": probe,
           "log": [health_record.result(now, now, 0 if status == "healthy" else 1, "flap")]}
    with open(os.path.join(state_dir, health_record.RECORD_FILE), "w") as f:
        json.dump(rec, f)


@pytest.mark.parametrize("bad", [1, 3, 8, 30, 1000])
def test_a_flapping_container_is_restarted_no_faster_than_the_backoff(tmp_path, bad):
    """Each run: ``bad`` probes unhealthy, one healthy, again… (1000: unhealthy for good). The
    restarts that follow keep the backoff from the failure that caused each (0.5, 1, 2… s)."""
    doc = _doc()
    run_start, stored, status, since, step = T0, None, "healthy", T0, 0
    restarts: list[float] = []
    now = T0
    while now < T0 + 50:
        now, step = round(now + STEP, 3), step + 1
        new = "healthy" if step % (bad + 1) == 0 else "unhealthy"
        if new != status:
            status, since = new, now
        run = format_time(run_start)
        _write(tmp_path, run, status, since, now)
        container = SimpleNamespace(state_dir=str(tmp_path))
        observed = {"w": Observed("w", Status.RUNNING, True, doc.source, doc.spec.normalized(), {}, container,
                                  created=run, restart=stored)}
        plan = make_plan([doc], observed, now=now)
        stored = plan.restarts.get("w", stored)
        if plan.actions:
            [action] = plan.actions
            restarts.append(now)
            stored = action.restart
            run_start, status, since, step = now, "healthy", now, 0  # the new run
    if bad >= 8:
        assert restarts, "never restarted: the test tested nothing"
    gaps = [b - a for a, b in zip(restarts, restarts[1:])]
    # each restart waited at least its backoff (one probe step of slack)
    for n, gap in enumerate(gaps, start=1):
        assert gap >= restart.backoff(n) - STEP, (n, gaps)
    assert len(restarts) <= 8, restarts  # 0.5 + 1 + 2 + … + 16 s: at most 7 or 8 in 50 s
