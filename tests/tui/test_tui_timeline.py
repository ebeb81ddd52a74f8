"""The event timeline (tui/timeline.py): journal lines as events, the bounded log."""

from __future__ import annotations

from tui.timeline import Event, EventLog, journal_event

WALL = 1_700_000_000.0


def test_journal_lines_become_events():
    e = journal_event({"time": "2023-11-14T22:13:20.000000000Z", "container": "web", "class": "live",
                             "cause": "resources.memory 1 → 2", "result": "failed", "error": "boom"}, WALL)
    assert e.time == WALL and e.level == "error" and e.text == "live (resources.memory 1 → 2): failed: boom"
    log = EventLog(maxlen=2)
    log.extend([e, e, Event(WALL, "", "apply", "done")])
    assert len(log) == 2 and [x.container for x in log.for_container("web")] == ["web"]
