"""The monitor's log copier (runtime/logcopy.py): CRI entries, partial lines, rotation, a deleted
file, a full disk (a real tmpfs of a few pages)."""

from __future__ import annotations

import contextlib
import os
import re
import subprocess

import pytest

from declarative_ct.runtime import logcopy, logfiles

STAMP = b"2026-12-07T10:00:00.123456789Z"
ENTRY = re.compile(rb"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z (stdout|stderr) ([FP]) (.*)\n", re.S)


def entries(path: str) -> list[tuple[bytes, bytes, bytes]]:
    """``[(stream, tag, text)]`` of a CRI file; fails on anything that is not a whole entry."""
    with open(path, "rb") as f:
        data = f.read()
    out = []
    for line in data.splitlines(keepends=True):
        m = ENTRY.fullmatch(line)
        assert m, f"{path}: not a CRI entry: {line[:100]!r}"
        out.append(m.groups())
    return out


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


# -- entries -------------------------------------------------------------------------------

def test_complete_lines_become_f_entries_with_one_timestamp_and_the_rest_is_kept():
    out, pending = logcopy.format_entries(b"one\ntwo\nthr", b"", STAMP, b"stdout")
    assert out == STAMP + b" stdout F one\n" + STAMP + b" stdout F two\n"
    assert pending == b"thr"
    out, pending = logcopy.format_entries(b"ee\n\nfour", pending, STAMP, b"stderr")
    assert out == STAMP + b" stderr F three\n" + STAMP + b" stderr F \n"  # an empty line is an entry too
    assert pending == b"four"


def test_a_read_without_a_newline_is_kept_until_the_line_limit_then_written_as_p():
    out, pending = logcopy.format_entries(b"a" * 10, b"", STAMP, b"stdout", limit=16)
    assert (out, pending) == (b"", b"a" * 10)
    out, pending = logcopy.format_entries(b"b" * 7, pending, STAMP, b"stdout", limit=16)
    assert (out, pending) == (STAMP + b" stdout P " + b"a" * 10 + b"b" * 7 + b"\n", b"")
    # The line goes on: its last part is an F entry.
    out, pending = logcopy.format_entries(b"c\n", pending, STAMP, b"stdout", limit=16)
    assert (out, pending) == (STAMP + b" stdout F c\n", b"")


def test_a_long_tail_after_the_last_newline_is_written_as_p_at_once():
    out, pending = logcopy.format_entries(b"x\n" + b"y" * 20, b"", STAMP, b"stdout", limit=16)
    assert out == STAMP + b" stdout F x\n" + STAMP + b" stdout P " + b"y" * 20 + b"\n"
    assert pending == b""


def test_stamp_is_rfc3339_utc_with_nanoseconds():
    stamp = logcopy.Stamp()
    assert stamp(1_796_637_600_123_456_789) == b"2026-12-07T10:00:00.123456789Z"
    assert stamp(1_796_637_601_000_000_005) == b"2026-12-07T10:00:01.000000005Z"  # the second moved on
    assert re.fullmatch(rb"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z", stamp())


def test_a_copier_joins_reads_and_writes_the_unfinished_line_as_p_at_the_end(tmp_path):
    path = str(tmp_path / "0.log")
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    copier = logcopy.Copier(path, 1 << 20, 3, {"stdout": out_r, "stderr": err_r}, "/run/x")
    os.write(out_w, b"hello wo")
    assert copier.read(out_r)
    os.write(err_w, b"oops\n")
    assert copier.read(err_r)
    os.write(out_w, b"rld\nbye")
    assert copier.read(out_r)
    assert copier.read(out_r)  # nothing there: a spurious wake-up is no end
    os.close(out_w)
    os.close(err_w)
    assert copier.drain() == [out_r, err_r]
    assert copier.end(out_r) is False and copier.end(err_r) is True
    assert entries(path) == [(b"stderr", b"F", b"oops"), (b"stdout", b"F", b"hello world"), (b"stdout", b"P", b"bye")]
    with pytest.raises(OSError):
        os.fstat(out_r)  # closed by the copier


def test_drain_takes_at_most_its_limit_from_a_pipe_that_keeps_filling(tmp_path, monkeypatch):
    monkeypatch.setattr(logcopy, "READ_SIZE", 4096)
    r, w = os.pipe()
    copier = logcopy.Copier(str(tmp_path / "0.log"), 1 << 30, 2, {"stdout": r})
    os.write(w, b"line\n" * 10_000)  # 50 kB, more than the limit below
    assert copier.drain(limit=8192) == []  # stopped at the limit, not at the end
    assert [text for _, _, text in entries(str(tmp_path / "0.log"))] == [b"line"] * (8192 // 5)
    os.close(w)
    assert copier.drain() == [r]
    copier.close()
    assert entries(str(tmp_path / "0.log")) == [(b"stdout", b"F", b"line")] * 10_000


# -- rotation ------------------------------------------------------------------------------

def _block(first: int, count: int, width: int = 20) -> bytes:
    return b"".join(b"%s stdout F %0*d\n" % (STAMP, width, i) for i in range(first, first + count))


def test_rotation_keeps_max_files_each_within_max_size_cut_between_entries(tmp_path):
    path = str(tmp_path / "0.log")
    log = logcopy.LogFile(path, 4096, 3)
    entry = len(_block(0, 1))
    for start in range(0, 2000, 50):
        log.write(_block(start, 50))
    log.close()
    files = logfiles.run_files(str(tmp_path), 0)
    assert files == [f"{path}.2", f"{path}.1", path]
    numbers = []
    for f in files:
        assert os.path.getsize(f) <= 4096
        numbers += [int(text) for _, _, text in entries(f)]
    # The newest entries, none missing, in order; each full file holds as many entries as fit.
    assert numbers == list(range(numbers[0], 2000))
    assert all(os.path.getsize(f) == 4096 // entry * entry for f in files[:-1])


def test_a_rotation_that_fails_lets_the_file_grow_and_is_tried_again_later(tmp_path):
    """A rotated name that cannot be replaced (here a non-empty directory where ``.log.2`` goes:
    EISDIR/ENOTEMPTY, like EBUSY or a full disk's rename): the write goes on past max_size instead
    of retrying the rotation for ever (the monitor's one loop would spin), and the rotation is
    tried again CHECK_INTERVAL later."""
    path = str(tmp_path / "0.log")
    os.makedirs(f"{path}.2/blocker")
    clock = Clock()
    log = logcopy.LogFile(path, 4096, 3, clock=clock)
    for start in range(0, 400, 50):
        log.write(_block(start, 50))  # returns: no spinning
    assert os.path.getsize(path) > 4096 and "cannot rotate" in log.lost_reason
    numbers = [int(text) for f in logfiles.run_files(str(tmp_path), 0) if os.path.isfile(f)
               for _, _, text in entries(f)]
    assert numbers == list(range(numbers[0], 400))  # nothing lost meanwhile
    os.rmdir(f"{path}.2/blocker")
    os.rmdir(f"{path}.2")
    clock.now += logcopy.CHECK_INTERVAL
    log.write(_block(400, 50))
    log.close()
    assert os.path.isfile(f"{path}.1") and os.path.getsize(path) <= 4096  # rotating again


def test_a_block_that_fills_the_file_exactly_rotates_and_one_longer_than_max_size_is_written_whole(tmp_path):
    path = str(tmp_path / "0.log")
    log = logcopy.LogFile(path, 4096, 5)
    log.write(b"x" * 4095 + b"\n")  # exactly full
    assert os.path.getsize(f"{path}.1") == 4096 and os.path.getsize(path) == 0
    log.write(b"short\n")
    huge = b"h" * 10_000 + b"\n"
    log.write(huge + b"after\n")
    log.close()
    assert [open(f, "rb").read() for f in logfiles.run_files(str(tmp_path), 0)] == [
        b"x" * 4095 + b"\n", b"short\n", huge, b"after\n"]  # the long one alone, in a file of its own


def test_max_files_one_empties_the_file(tmp_path):
    path = str(tmp_path / "0.log")
    log = logcopy.LogFile(path, 4096, 1)
    log.write(_block(0, 300))
    log.close()
    assert logfiles.run_files(str(tmp_path), 0) == [path]
    numbers = [int(text) for _, _, text in entries(path)]
    assert numbers == list(range(numbers[0], 300)) and os.path.getsize(path) <= 4096


def test_rotate_files_shifts_and_drops_the_oldest(tmp_path):
    path = str(tmp_path / "3.log")
    for name, text in (("3.log", "new"), ("3.log.1", "mid"), ("3.log.2", "old")):
        (tmp_path / name).write_text(text)
    logcopy.rotate_files(path, 3)
    assert sorted(os.listdir(tmp_path)) == ["3.log.1", "3.log.2"]
    assert (tmp_path / "3.log.1").read_text() == "new" and (tmp_path / "3.log.2").read_text() == "mid"


# -- a file deleted or renamed by someone else ---------------------------------------------

@pytest.mark.parametrize("how", ["delete", "rename"])
def test_a_deleted_or_renamed_file_is_made_again_within_the_check_interval(tmp_path, how):
    clock = Clock()
    path = str(tmp_path / "0.log")
    log = logcopy.LogFile(path, 1 << 20, 3, clock=clock)
    log.write(_block(0, 1))
    if how == "delete":
        os.unlink(path)
    else:
        os.rename(path, str(tmp_path / "elsewhere"))
    clock.now += 0.5
    log.write(_block(1, 1))  # not looked at yet: into the old file
    assert not os.path.exists(path)
    clock.now += logcopy.CHECK_INTERVAL
    log.write(_block(2, 1))
    log.close()
    assert [int(t) for _, _, t in entries(path)] == [2]


def test_a_removed_log_directory_is_not_made_again(tmp_path):
    clock = Clock()
    directory = tmp_path / "logs" / "c1"
    directory.mkdir(parents=True)
    log = logcopy.LogFile(str(directory / "0.log"), 1 << 20, 3, clock=clock)
    log.write(_block(0, 1))
    os.unlink(directory / "0.log")
    directory.rmdir()  # the name's logs were removed for good (logfiles.remove)
    clock.now += logcopy.CHECK_INTERVAL
    log.write(_block(1, 1))
    log.close()
    assert not directory.exists()


def test_a_run_pushed_out_by_newer_runs_is_not_made_again(tmp_path):
    clock = Clock()
    log = logcopy.LogFile(logfiles.new_run(str(tmp_path)), 1 << 20, 3, clock=clock)  # run 0
    logfiles.new_run(str(tmp_path))
    logfiles.new_run(str(tmp_path))  # run 2 deletes run 0's files
    clock.now += logcopy.CHECK_INTERVAL
    log.write(_block(0, 1))  # a late writer of run 0 (a process that kept its pipe)
    log.close()
    assert logfiles.runs(str(tmp_path)) == [1, 2]


# -- a full disk ---------------------------------------------------------------------------

@pytest.fixture
def small_tmpfs(tmp_path):
    """A real tmpfs of 64 KiB, unmounted after the test."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    mnt = tmp_path / "small"
    mnt.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k,mode=0700", "tmpfs", str(mnt)], check=True)
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def _fill(directory) -> str:
    """A file in ``directory`` that takes all its space."""
    path = str(directory / "filler")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    with contextlib.suppress(OSError):
        while True:
            os.write(fd, b"\0" * 4096)
    os.close(fd)
    return path


def test_a_full_disk_loses_whole_entries_and_says_so_once_writing_works_again(small_tmpfs):
    clock = Clock()
    path = str(small_tmpfs / "0.log")
    filler = _fill(small_tmpfs)
    os.truncate(filler, os.path.getsize(filler) - 4096)  # one page free
    log = logcopy.LogFile(path, 1 << 20, 3, clock=clock)
    written = 0
    for i in range(0, 400, 20):
        log.write(_block(i, 20))  # ~1 KiB each: the page fills after a few
        written += 20
    assert log.lost_entries > 0 and log.lost_bytes > 0 and "No space left" in log.lost_reason
    kept = entries(path)  # whole entries only, no torn one
    assert len(kept) + log.lost_entries == written
    lost = log.lost_entries
    os.unlink(filler)  # space again
    log.write(_block(1000, 1))
    log.close()
    after = entries(path)[len(kept):]
    assert after[0][:2] == (b"stderr", b"F")
    assert after[0][2] == b"[dct: %d log entries (%d bytes) were lost: No space left on device]" % (
        lost, lost * len(_block(0, 1)))
    assert [int(t) for _, _, t in after[1:]] == [1000]


def test_lost_entries_are_said_at_close_when_space_came_back_without_more_output(small_tmpfs):
    path = str(small_tmpfs / "0.log")
    filler = _fill(small_tmpfs)
    log = logcopy.LogFile(path, 1 << 20, 3)
    log.write(_block(0, 10))
    assert log.lost_entries == 10 and entries(path) == []
    os.unlink(filler)
    log.close()
    assert [(s, t) for s, t, _ in entries(path)] == [(b"stderr", b"F")]
    assert b"10 log entries" in entries(path)[0][2]


def test_make_pipe_grows_the_pipe_where_allowed():
    r, w = logcopy.make_pipe()
    try:
        import fcntl

        with open("/proc/sys/fs/pipe-max-size") as f:
            cap = int(f.read())
        assert fcntl.fcntl(r, fcntl.F_GETPIPE_SZ) == min(logcopy.PIPE_SIZE, cap) or os.geteuid() != 0
        assert fcntl.fcntl(r, fcntl.F_GETFD) & fcntl.FD_CLOEXEC and fcntl.fcntl(w, fcntl.F_GETFD) & fcntl.FD_CLOEXEC
    finally:
        os.close(r)
        os.close(w)


def test_formatting_needs_no_python_loop_per_line():
    """Not a timing test: the count of Python-level calls per chunk does not grow with its lines."""
    import sys

    calls = []

    def count(frame, event, arg):
        if event == "call":
            calls.append(frame.f_code.co_name)

    for lines in (10, 10_000):
        calls.clear()
        sys.setprofile(count)
        try:
            logcopy.format_entries(b"abc\n" * lines, b"", STAMP, b"stdout")
        finally:
            sys.setprofile(None)
        if lines == 10:
            few = len(calls)
    assert len(calls) == few


def test_a_copy_that_raises_keeps_reading_and_dropping_rather_than_closing_the_pipe(tmp_path, monkeypatch):
    """The monitor's answer to a copier bug: the pipe stays open (a closed one would give the
    container EPIPE/SIGPIPE at its next write) and its output is dropped; a copier that fails even
    then is given up. An event for a pipe already ended is ignored (its number may be reused)."""
    import selectors

    from declarative_ct.runtime import monitord

    r, w = os.pipe()
    copier = logcopy.Copier(str(tmp_path / "0.log"), 4096, 3, {"stdout": r})
    monitor = monitord._Monitor.__new__(monitord._Monitor)
    monitor.copiers = {copier}
    sel = selectors.DefaultSelector()
    sel.register(r, selectors.EVENT_READ, copier)

    def broken(block: bytes) -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr(copier.log, "_write", broken)
    os.write(w, b"one\n")
    monitor._copied(copier, r, sel)
    assert copier.log.discard and r in copier.streams  # still open, dropping
    os.write(w, b"two\n")  # the writer is not refused
    monitor._copied(copier, r, sel)
    assert r in copier.streams and copier.log.discard
    monkeypatch.setattr(copier, "read", lambda fd: broken(b""))
    monitor._copied(copier, r, sel)  # failing even while dropping: given up
    assert copier not in monitor.copiers and not copier.streams
    monitor._copied(copier, r, sel)  # a late event for the ended pipe: nothing happens
    os.close(w)
    sel.close()
