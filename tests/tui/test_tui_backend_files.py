"""The real backend's file reads (tui/backend/files.py): the log tail, bounded reads, the notice of
a missing state root."""

from __future__ import annotations

import os


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
