"""The TUI's model, pure (no Textual): rates from counter deltas, wraps and resets, vanished
containers, history, drift, the spec diff, the process tree, the log filter, number formats."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tui import model
from tui.model import (DesiredEntry, DesiredView, Model, ProcInfo, Reading, counter_delta,
                       filter_lines, fmt_bytes, fmt_duration, fmt_pct, fmt_used_limit, process_tree, rate,
                       row_matches, spec_diff)

WALL = 1_700_000_000.0
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def reading(cid: str = "c1", status: str = "running", cpu_ns: int = 0, started: float = WALL - 90, **kw) -> Reading:
    kw.setdefault("mem_usage", 8 << 20)
    kw.setdefault("mem_limit", 64 << 20)
    kw.setdefault("pids", 2)
    return Reading(cid, status, 1234, started, True, cpu_ns=cpu_ns, **kw)


def test_formats():
    assert fmt_bytes(0) == "0B" and fmt_bytes(512) == "512B" and fmt_bytes(1536) == "1.5K"
    assert fmt_bytes(12.3 * (1 << 20)) == "12.3M" and fmt_bytes(123 << 20) == "123M" and fmt_bytes(1 << 30) == "1.0G"
    assert fmt_bytes(None) == "-"
    assert fmt_pct(3.21) == "3.2%" and fmt_pct(42.4) == "42%" and fmt_pct(None) == "-"
    assert [fmt_duration(s) for s in (5, 59, 60, 3599, 3600, 3660, 86400 + 7200)] == \
        ["5s", "59s", "1m", "59m", "1h00m", "1h01m", "1d2h"]
    assert fmt_used_limit(8 << 20, 64 << 20) == "8.0M/64.0M" and fmt_used_limit(8 << 20, None) == "8.0M/-"
    assert fmt_used_limit(None, 5) == "-"


def test_counter_delta_growth_reset_and_32_bit_wrap():
    assert counter_delta(100, 250) == 150
    assert counter_delta(None, 5) is None and counter_delta(5, None) is None
    assert counter_delta(1000, 10) is None  # went down: a reset (new run, new interface), no rate
    assert counter_delta((1 << 32) - 100, 50) == 150  # a 32-bit counter wrapped once
    assert counter_delta(1 << 40, 5) is None  # a 64-bit counter going down is a reset, not a wrap
    assert rate(0, 100, 2.0) == 50.0
    assert rate(0, 100, 0.0) is None and rate(200, 100, 1.0) is None


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


def _entry(**kw) -> DesiredEntry:
    desired = {"name": "web", "rootfs": "host", "process": {"args": ["sh"], "env": {}}, "state": "running",
               "resources": {"memory": 128 << 20}, "restart": "never", "labels": {}}
    applied = {**desired, "process": {"args": ["bash"], "env": {}}, "restart": "always",
               "resources": {"memory": 64 << 20}}
    base = dict(name="web", drift="drifted", desired_state="running", desired=desired, applied=applied,
                observed_resources={"memory": 64 << 20}, live_changes={"memory": 128 << 20})
    base.update(kw)
    return DesiredEntry(**base)


def test_spec_diff_names_each_field_and_what_the_reconciler_does():
    lines = {d.field: d for d in spec_diff(_entry(), "paused")}
    assert lines["process.args"].klass == "recreate"
    assert (lines["process.args"].observed, lines["process.args"].desired) == ('["bash"]', '["sh"]')
    assert (lines["resources.memory"].observed, lines["resources.memory"].desired,
            lines["resources.memory"].klass) == ("64Mi", "128Mi", "live")
    assert (lines["state"].observed, lines["state"].desired, lines["state"].klass) == ("paused", "running",
                                                                                         "lifecycle")
    assert lines["restart"].klass == "none"
    assert spec_diff(_entry(drift="missing"), None)[0].klass == "create"
    assert spec_diff(_entry(desired=None), "running") == []
    same = _entry(applied=_entry().desired, live_changes={})
    assert spec_diff(same, "running") == []


def test_log_filter_keeps_context_lines_grep_style():
    lines = [f"line {i}" for i in range(10)]
    lines[3] = "ERROR one"
    lines[8] = "error two"
    assert filter_lines(lines, "error") == ["ERROR one", "error two"]
    assert filter_lines(lines, "error", 1) == ["line 2", "ERROR one", "line 4", "--", "line 7", "error two",
                                               "line 9"]
    assert filter_lines(lines, "error", 3) == lines[0:10]  # overlapping groups merge, no separator
    assert filter_lines(lines, "") == lines
    assert filter_lines(["a (b", "c"], "(b") == ["a (b"]  # not a valid regex: taken literally


def test_row_filter_on_name_status_drift_and_inverted():
    m = Model()
    view = DesiredView({"web": DesiredEntry("web", "drifted"), "db": DesiredEntry("db", "in-sync")})
    snap = m.update([reading("web"), reading("db", status="paused")], now=1.0, wall=WALL, desired=view)
    web, db = snap.by_id["web"], snap.by_id["db"]
    assert row_matches(web, "we") and not row_matches(db, "we")
    assert row_matches(db, "PAUSED") and row_matches(web, "drift")
    assert row_matches(db, "!web") and not row_matches(web, "!web")


def test_process_tree_puts_children_under_parents():
    procs = [ProcInfo(30, 10, "root", 0.0, 1, 1, "S", "sleep 1"), ProcInfo(10, 1, "root", 0.0, 1, 1, "S", "sh"),
             ProcInfo(20, 10, "root", 0.0, 1, 1, "S", "cat"), ProcInfo(40, 999, "root", 0.0, 1, 1, "S", "orphan")]
    assert [(d, p.pid) for d, p in process_tree(procs)] == [(0, 10), (1, 20), (1, 30), (0, 40)]
    assert model.tree_label(2, "x") == "  └ x"


def test_log_buffer_holds_partial_lines_and_tags_stderr():
    buf = model.LogBuffer(maxlen=3)
    assert buf.feed("stdout", b"one\ntw") == ["one"]
    assert buf.feed("stderr", b"bad\n") == ["! bad"]
    assert buf.feed("stdout", b"o\nthree\n") == ["two", "three"]
    assert list(buf.lines) == ["! bad", "two", "three"]  # bounded
    buf.feed("stdout", b"last words")
    assert buf.flush() == ["last words"]


def test_plan_actions_group_in_class_order():
    actions = [{"container": "b", "class": "live"}, {"container": "a", "class": "prune"},
               {"container": "c", "class": "create"}, {"container": "a", "class": "live"}]
    groups = model.group_actions(actions)
    assert [k for k, _ in groups] == ["create", "live", "prune"]
    assert [a["container"] for a in groups[1][1]] == ["a", "b"]


def test_journal_lines_become_events():
    e = model.journal_event({"time": "2023-11-14T22:13:20.000000000Z", "container": "web", "class": "live",
                             "cause": "resources.memory 1 → 2", "result": "failed", "error": "boom"}, WALL)
    assert e.time == WALL and e.level == "error" and e.text == "live (resources.memory 1 → 2): failed: boom"
    log = model.EventLog(maxlen=2)
    log.extend([e, e, model.Event(WALL, "", "apply", "done")])
    assert len(log) == 2 and [x.container for x in log.for_container("web")] == ["web"]


def test_model_backend_and_collector_load_without_textual():
    code = ("import sys, tui.model, tui.backend.real, tui.collector; "
            "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('textual', 'rich')); print(bad); "
            "sys.exit(1 if bad else 0)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert r.returncode == 0, r.stdout + r.stderr


def test_log_buffer_is_fair_to_both_streams_and_keeps_arrival_order():
    buf = model.LogBuffer(maxlen=10)
    buf.feed("stdout", b"out 1\nout 2\n")
    buf.feed("stderr", b"".join(b"err %d\n" % i for i in range(100)))
    buf.feed("stdout", b"out 3\n")
    lines = list(buf.lines)
    assert len(lines) == 10 and len(buf) == 10
    assert lines[:2] == ["out 1", "out 2"] and lines[-1] == "out 3"  # stdout kept, in arrival order
    assert lines[2:9] == [f"! err {i}" for i in range(93, 100)]
    buf.clear()
    assert len(buf) == 0 and list(buf.lines) == []


def test_real_backend_reads_logs_bounded_tail_first_then_skips_what_it_cannot_show(tmp_path):
    from tui.backend import LogCursor
    from tui.backend.files import LOG_READ_MAX, LOG_TAIL
    from tui.backend.real import RealBackend

    root = tmp_path / "root"
    (root / "c1").mkdir(parents=True)
    out, err = root / "c1" / "stdout.log", root / "c1" / "stderr.log"
    out.write_bytes(b"".join(b"out %06d\n" % i for i in range(100_000)))  # 1.1 MB
    err.write_bytes(b"err\n" * 10)
    os.utime(out, ns=(2_000_000_000, 2_000_000_000))
    os.utime(err, ns=(1_000_000_000, 1_000_000_000))  # written before stdout's last line
    backend = RealBackend(str(root))
    cursor = LogCursor()
    chunks = backend.read_logs("c1", cursor)
    assert [s for s, _ in chunks] == ["stderr", "stdout"]  # the file written last comes last
    assert len(chunks[1][1]) <= LOG_TAIL and chunks[1][1].endswith(b"out 099999\n")
    with open(out, "ab") as f:
        f.write(b"x" * (10 * LOG_READ_MAX) + b"\nnewest\n")
    chunks = dict(backend.read_logs("c1", cursor))
    assert len(chunks["stdout"]) <= LOG_READ_MAX and chunks["stdout"].endswith(b"newest\n")
    assert cursor.skipped["stdout"] > 9 * LOG_READ_MAX  # said on screen, not silently lost
    assert backend.read_logs("c1", cursor) == [] and not cursor.skipped


def test_a_missing_state_root_is_a_notice_not_an_error(tmp_path):
    from tui.backend.real import RealBackend

    backend = RealBackend(str(tmp_path / "nope"))
    assert backend.sample() == []
    assert backend.notices() == (f"no state root at {tmp_path / 'nope'} (no container was made there yet)",)
    (tmp_path / "nope").mkdir()
    assert backend.notices() == ()


def test_sparkline_scale_is_from_zero_to_the_limit():
    from rich.console import Console

    from tui.widgets import Bars

    def render(bars: Bars) -> list[str]:
        console = Console(width=10, record=True, file=open(os.devnull, "w"))
        console.print(bars)
        return console.export_text().splitlines()

    assert render(Bars([5.0] * 10, top=10.0, height=2)) == [" " * 10, "█" * 10]  # half the limit: half the height
    assert render(Bars([None] * 5 + [0.0] * 5, top=10.0, height=1)) == [" " * 5 + "▁" * 5]  # no data: blank
    flat = render(Bars([7.0] * 10, top=None, height=2))  # no limit: a flat line is not a full block
    assert flat[0] != "█" * 10
