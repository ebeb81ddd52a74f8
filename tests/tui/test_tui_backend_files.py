"""The real backend's file reads (tui/backend/files.py): the log tail, bounded reads, the notice of
a missing state root."""

from __future__ import annotations

import os


def cri(i: int, stream: str = "stdout", text: str | None = None) -> bytes:
    return f"2026-12-07T10:{i // 60 % 60:02d}:{i % 60:02d}.000000000Z {stream} F {text or f'out {i:06d}'}\n".encode()


def test_real_backend_reads_the_cri_logs_tail_first_then_cheaply_then_skips_what_it_cannot_show(
        tmp_path, monkeypatch):
    from declarative_ct.runtime import logfiles
    from tui.backend import LogCursor
    from tui.backend.files import LOG_READ_MAX
    from tui.backend.real import RealBackend
    from tui.logs import LOG_LINES

    monkeypatch.setenv("DCT_DATA_ROOT", str(tmp_path / "data"))
    backend = RealBackend(str(tmp_path / "root"))
    d = logfiles.log_dir(backend.runtime.data_root, "c1")
    path = logfiles.new_run(d)
    with open(path + ".1", "wb") as f:  # a rotated file, then the current one
        f.write(b"".join(cri(i) for i in range(50_000)))
    with open(path, "wb") as f:
        f.write(b"".join(cri(i, "stderr" if i % 10 == 0 else "stdout") for i in range(50_000, 100_000)))
    cursor = LogCursor()
    entries = backend.read_logs("c1", cursor)
    assert len(entries) == LOG_LINES and entries[-1].text == b"out 099999" and entries[0].stream == "stderr"
    assert cursor.run == 0 and cursor.note == "" and not cursor.skipped

    reads = []
    pread = os.pread
    monkeypatch.setattr(os, "pread", lambda fd, n, off: reads.append(n) or pread(fd, n, off))
    assert backend.read_logs("c1", cursor) == [] and reads == []  # polled: nothing read again
    with open(path, "ab") as f:
        f.write(cri(1, "stdout", "x" * (10 * LOG_READ_MAX)) + cri(2, "stderr", "newest"))
    entries = backend.read_logs("c1", cursor)
    assert [(e.stream, e.text) for e in entries] == [("stderr", b"newest")]
    assert cursor.skipped > 9 * LOG_READ_MAX and sum(reads) <= LOG_READ_MAX  # said on screen, not silently lost
    assert backend.read_logs("c1", cursor) == [] and not cursor.skipped
    cursor.close()

    previous = LogCursor(previous=True)
    assert backend.read_logs("c1", previous) == [] and previous.note == "no previous run (only run 0)"
    with open(logfiles.new_run(d), "ab") as f:  # the container restarted
        f.write(cri(3, "stdout", "run 1 begins"))
    assert [e.text for e in backend.read_logs("c1", previous)][-1] == b"newest"
    assert previous.run == 0
    assert backend.read_logs("c1", previous) == []
    previous.close()
    current = LogCursor()
    assert [(e.run, e.text) for e in backend.read_logs("c1", current)] == [(1, b"run 1 begins")]
    none = LogCursor()
    assert backend.read_logs("c2", none) == [] and none.note.startswith("no logs yet") and none.run is None
    current.close()
    backend.close()


def test_a_missing_state_root_is_a_notice_not_an_error(tmp_path):
    from tui.backend.real import RealBackend

    backend = RealBackend(str(tmp_path / "nope"))
    assert backend.sample() == []
    assert backend.notices() == (f"no state root at {tmp_path / 'nope'} (no container was made there yet)",)
    (tmp_path / "nope").mkdir()
    assert backend.notices() == ()
