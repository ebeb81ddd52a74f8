"""The logs tab's buffer (tui/logs.py): partial lines, stderr tags, fairness between streams."""

from __future__ import annotations

from tui.logs import LogBuffer


def test_log_buffer_holds_partial_lines_and_tags_stderr():
    buf = LogBuffer(maxlen=3)
    assert buf.feed("stdout", b"one\ntw") == ["one"]
    assert buf.feed("stderr", b"bad\n") == ["! bad"]
    assert buf.feed("stdout", b"o\nthree\n") == ["two", "three"]
    assert list(buf.lines) == ["! bad", "two", "three"]  # bounded
    buf.feed("stdout", b"last words")
    assert buf.flush() == ["last words"]


def test_log_buffer_is_fair_to_both_streams_and_keeps_arrival_order():
    buf = LogBuffer(maxlen=10)
    buf.feed("stdout", b"out 1\nout 2\n")
    buf.feed("stderr", b"".join(b"err %d\n" % i for i in range(100)))
    buf.feed("stdout", b"out 3\n")
    lines = list(buf.lines)
    assert len(lines) == 10 and len(buf) == 10
    assert lines[:2] == ["out 1", "out 2"] and lines[-1] == "out 3"  # stdout kept, in arrival order
    assert lines[2:9] == [f"! err {i}" for i in range(93, 100)]
    buf.clear()
    assert len(buf) == 0 and list(buf.lines) == []
