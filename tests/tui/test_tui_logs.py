"""The logs tab's buffer and look (tui/logs.py): stderr tags, times, runs, fairness between streams."""

from __future__ import annotations

from rich.text import Text

from declarative_ct.runtime.logread import Entry
from tui.logs import LogBuffer, short_time
from tui.screens.container import LogHighlighter

T = "2026-12-07T10:00:0{}.123456789Z"


def entries(*lines: tuple[str, str], run: int = 0, second: int = 0) -> list[Entry]:
    return [Entry(T.format(second), stream, text.encode(), run) for stream, text in lines]


def test_log_buffer_tags_stderr_shows_times_and_marks_a_new_run():
    buf = LogBuffer(maxlen=4)
    assert buf.add(entries(("stdout", "one"), ("stderr", "bad\tx\r"))) == [
        "12-07 10:00:00.123 one", "12-07 10:00:00.123 ! bad    x"]
    buf.timestamps = False
    assert buf.lines == ["one", "! bad    x"]
    assert buf.add(entries(("stdout", "two"), run=1)) == ["── run 1 began (the container was restarted) ──", "two"]
    assert buf.lines == ["! bad    x", "── run 1 began (the container was restarted) ──", "two"] or len(buf) <= 4
    assert buf.skipped(2048)[0].startswith("… 2.0") and len(buf) == 4  # bounded
    assert buf.add([Entry(T.format(1), "stdout", b"\xff\xfebin", 1)]) == ["\ufffd\ufffdbin"]  # any bytes
    buf.clear()
    assert len(buf) == 0 and buf.lines == []
    assert buf.add(entries(("stdout", "again"), run=1)) == ["again"]  # after a clear: no run line


def test_log_buffer_is_fair_to_both_streams_and_keeps_arrival_order():
    buf = LogBuffer(maxlen=10, timestamps=False)
    buf.add(entries(("stdout", "out 1"), ("stdout", "out 2")))
    buf.add(entries(*[("stderr", f"err {i}") for i in range(100)]))
    buf.add(entries(("stdout", "out 3")))
    lines = buf.lines
    assert len(lines) == 10 and len(buf) == 10
    assert lines[:2] == ["out 1", "out 2"] and lines[-1] == "out 3"  # stdout kept, in arrival order
    assert lines[2:9] == [f"! err {i}" for i in range(93, 100)]
    assert buf.reordered


def test_short_time_and_the_highlighter():
    assert short_time("2026-12-07T10:00:00.123456789Z") == "12-07 10:00:00.123"
    assert short_time("2026-12-07T10:00:00Z") == "12-07 10:00:00.000"
    assert short_time("2026-12-07T10:00:00.5Z") == "12-07 10:00:00.500"
    assert short_time("junk") == "junk"
    hl = LogHighlighter()
    text = hl(Text("12-07 10:00:00.123 ! boom"))
    styles = {(s.start, s.end, str(s.style)) for s in text.spans}
    assert (0, 18, "dim") in styles and (19, 25, "red") in styles
    assert [str(s.style) for s in hl(Text("plain ! not stderr")).spans] == []
    assert [str(s.style) for s in hl(Text("! boom")).spans] == ["red"]
