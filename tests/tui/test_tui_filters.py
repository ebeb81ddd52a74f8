"""The screens' filters (tui/filters.py): log lines with context, table rows."""

from __future__ import annotations

from readings import WALL, reading
from tui.desired import DesiredEntry, DesiredView
from tui.filters import filter_lines, row_matches
from tui.model import Model



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
