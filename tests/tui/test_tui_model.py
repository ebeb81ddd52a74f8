"""The TUI's model (tui/model.py), pure (no Textual): rates from counter deltas, wraps and resets,
vanished containers, history, events from status changes, drift rows, sort keys; and the TUI's
front half loads without Textual. The other pure modules have their own test files
(test_tui_numbers, _desired, _filters, _processes, _logs, _timeline)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from readings import WALL, reading
from tui.desired import DesiredEntry, DesiredView
from tui.model import Model, Reading

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_cpu_rate_in_cores_and_percent_of_limit():
    m = Model(host_cpus=4)
    s1 = m.update([reading(cpu_ns=0, cpu_limit=0.5)], now=10.0, wall=WALL)
    assert s1.by_id["c1"].rates.cpu is None and s1.by_id["c1"].cells["cpu"] == "-"
    s2 = m.update([reading(cpu_ns=500_000_000, cpu_limit=0.5)], now=12.0, wall=WALL + 2)
    row = s2.by_id["c1"]
    assert row.rates.cpu == pytest.approx(0.25)  # 0.5 s of CPU over 2 s
    assert row.cells["cpu"] == "0.25" and row.cells["cpu_limit"] == "50%"  # of the 0.5-core quota
    s3 = m.update([reading("c1", cpu_ns=1_500_000_000)], now=13.0, wall=WALL + 3)
    assert s3.by_id["c1"].cells["cpu_limit"] == "25%"  # no quota: of the host's 4 CPUs


def test_cpu_rate_uses_the_readings_own_timestamps():
    m = Model(host_cpus=2)
    m.update([Reading("c1", "running", 1, WALL, True, cpu_ns=0, at=10.0)], now=10.4, wall=WALL)
    # read 0.5 s apart, though the passes ended only 0.1 s apart
    snap = m.update([Reading("c1", "running", 1, WALL, True, cpu_ns=100_000_000, at=10.5)], now=10.5, wall=WALL)
    assert snap.by_id["c1"].rates.cpu == pytest.approx(0.2)


def test_counter_reset_gives_no_rate_never_a_negative_one():
    m = Model()
    m.update([reading(cpu_ns=5_000_000_000, net_rx=10_000, net_tx=0)], now=1.0, wall=WALL)
    snap = m.update([reading(cpu_ns=1_000, net_rx=100, net_tx=0)], now=2.0, wall=WALL + 1)
    row = snap.by_id["c1"]
    assert row.rates.cpu is None and row.rates.net_rx is None
    assert row.cells["cpu"] == "-"
    assert all(v >= 0 for v in m.history("c1")["cpu"])


def test_a_new_run_under_the_same_name_starts_its_rates_over():
    m = Model()
    m.update([reading(cpu_ns=10, started=WALL - 100)], now=1.0, wall=WALL)
    snap = m.update([reading(cpu_ns=5_000_000_000, started=WALL - 1)], now=2.0, wall=WALL + 1)
    assert snap.by_id["c1"].rates.cpu is None  # not 5 cores: the counters belong to another run
    assert any("new run" in e.text for e in snap.events)


def test_network_rate_and_dash_without_interfaces():
    m = Model()
    m.update([reading("a", net_rx=0, net_tx=0), reading("b")], now=1.0, wall=WALL)
    snap = m.update([reading("a", net_rx=2048, net_tx=1024), reading("b")], now=2.0, wall=WALL + 1)
    assert snap.by_id["a"].cells["net"] == "2.0K/1.0K"
    assert snap.by_id["b"].cells["net"] == "-"


def test_vanished_container_loses_row_rates_and_history():
    m = Model()
    m.update([reading("a"), reading("b")], now=1.0, wall=WALL)
    m.update([reading("a"), reading("b")], now=2.0, wall=WALL + 1)
    assert m.history("b") is not None
    snap = m.update([reading("a")], now=3.0, wall=WALL + 2)  # b destroyed, or vanished while being read
    assert [r.id for r in snap.rows] == ["a"]
    assert m.history("b") is None
    assert [e.text for e in snap.events if e.container == "b"] == ["removed (was running)"]
    snap = m.update([reading("a"), reading("b", cpu_ns=7)], now=4.0, wall=WALL + 3)  # back: a fresh start
    assert snap.by_id["b"].rates.cpu is None and len(m.history("b")["cpu"]) == 1


def test_a_reading_not_read_again_keeps_its_rates():
    m = Model()
    m.update([reading(cpu_ns=0)], now=1.0, wall=WALL)
    r = reading(cpu_ns=1_000_000_000)
    first = m.update([r], now=2.0, wall=WALL + 1).by_id["c1"]
    again = m.update([r], now=3.0, wall=WALL + 1)  # the same object: off screen, not read this tick
    assert again.by_id["c1"].rates.cpu == first.rates.cpu == pytest.approx(1.0)
    assert again.by_id["c1"] is first  # nothing shown changed: the same Row (the table skips it)
    assert again.events == ()


def test_history_is_a_bounded_ring_and_kept_between_snapshots():
    m = Model(history_len=5)
    for i in range(12):
        snap = m.update([reading(cpu_ns=i * 100_000_000, mem_usage=i)], now=float(i), wall=WALL + i, focus="c1")
    assert snap.history["mem"] == (7.0, 8.0, 9.0, 10.0, 11.0)
    assert snap.history["cpu"] == pytest.approx((0.1,) * 5)
    assert m.update([reading(cpu_ns=0)], now=99.0, wall=WALL, focus=None).history is None  # not focused: not copied


def test_status_transitions_become_events_with_exit_codes():
    m = Model()
    m.update([reading(status="running")], now=1.0, wall=WALL)
    snap = m.update([reading(status="paused")], now=2.0, wall=WALL)
    assert [e.text for e in snap.events] == ["running → paused"]
    snap = m.update([Reading("c1", "stopped", None, WALL - 90, True, exit_code=137, oom_killed=True)],
                    now=3.0, wall=WALL)
    assert snap.events[0].text == "paused → stopped (exit 137, OOM-killed)" and snap.events[0].level == "warning"
    assert snap.by_id["c1"].cells["status"] == "exit 137 oom"
    assert snap.by_id["c1"].cells["cpu"] == "-" and snap.by_id["c1"].cells["uptime"] == "-"


def test_a_signal_that_ended_a_run_is_named():
    m = Model()
    m.update([reading(status="running")], now=1.0, wall=WALL)
    snap = m.update([Reading("c1", "stopped", None, WALL - 90, True, exit_code=137, exit_signal=9)], now=2.0, wall=WALL)
    assert snap.events[0].text == "running → stopped (exit 137, SIGKILL)"
    assert snap.by_id["c1"].cells["status"] == "exit 137 SIGKILL"
    snap = m.update([Reading("c1", "stopped", None, WALL - 90, True, exit_code=1)], now=3.0, wall=WALL)
    assert snap.by_id["c1"].cells["status"] == "exit 1"


def test_first_snapshot_has_no_events_for_what_already_ran():
    assert Model().update([reading("a"), reading("b")], now=1.0, wall=WALL).events == ()


def test_oom_kill_increase_is_an_event():
    m = Model()
    m.update([reading(oom_kills=0)], now=1.0, wall=WALL)
    snap = m.update([reading(oom_kills=2)], now=2.0, wall=WALL)
    assert snap.events[0].level == "warning" and "2 process(es) killed" in snap.events[0].text


def test_missing_declared_container_has_an_absent_row():
    view = DesiredView({"web": DesiredEntry("web", "missing", "running", cause="not created yet")})
    snap = Model().update([], now=1.0, wall=WALL, desired=view, specs_given=True)
    row = snap.by_id["web"]
    assert row.status == "absent" and row.cells["drift"] == "missing" and row.reading is None


def test_sort_keys_put_unknown_values_last():
    m = Model()
    m.update([reading("a", cpu_ns=0), reading("b", cpu_ns=0)], now=1.0, wall=WALL)
    snap = m.update([reading("a", cpu_ns=10**9), reading("b", cpu_ns=3 * 10**9),
                     Reading("c", "stopped", None, None, True)], now=2.0, wall=WALL)
    order = sorted(snap.by_id, key=lambda k: snap.by_id[k].sort["cpu"])
    assert order == ["a", "b", "c"]


def test_model_backend_and_collector_load_without_textual():
    code = ("import sys, tui.model, tui.backend.real, tui.collector, tui.columns, tui.numbers, tui.history, "
            "tui.timeline, tui.desired, tui.processes, tui.filters, tui.logs, tui.stats_tab; "
            "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('textual', 'rich')); print(bad); "
            "sys.exit(1 if bad else 0)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert r.returncode == 0, r.stdout + r.stderr


def test_the_drift_cell_counts_down_to_the_next_restart_of_a_backoff():
    """Issue 15: the TUI shows when the next attempt comes (status shows NEXT); an exited row keeps
    its exit code and the signal that ended it in the status cell."""
    view = DesiredView({"web": DesiredEntry("web", "backoff", "running", restarts=2, next_restart=WALL + 4.2),
                        "db": DesiredEntry("db", "in-sync", "running")})
    snap = Model().update([reading("web", status="stopped", exit_code=137, exit_signal=9), reading("db")],
                          now=1.0, wall=WALL, desired=view)
    web = snap.by_id["web"].cells
    assert (web["drift"], web["restarts"], web["status"]) == ("backoff 4s", "2", "exit 137 SIGKILL")
    assert snap.by_id["db"].cells["drift"] == "in-sync"
