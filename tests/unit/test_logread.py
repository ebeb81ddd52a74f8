"""The log reader (declarative_ct/runtime/logread.py) on hand-written CRI files in a tmp dir: parsing
(P/F joins, garbage, torn lines), rotation order, tail across files (and that it reads only the
end), since, the previous run, and following a writer thread across real renames and into a new run."""

from __future__ import annotations

import os
import threading
import time

import pytest

from declarative_ct.errors import ConfigInvalid
from declarative_ct.runtime import logfiles, logread

T0 = 1_796_637_600  # 2026-12-07T10:00:00Z


def ts(second: float, ns: int = 0) -> str:
    whole = int(second)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(T0 + whole)) + f".{ns:09d}Z"


def cri(stream: str, text: str, second: float = 0, tag: str = "F", ns: int = 0) -> bytes:
    return f"{ts(second, ns)} {stream} {tag} {text}\n".encode()


def texts(entries) -> list[str]:
    return [("! " if e.stream == "stderr" else "") + e.text.decode() + ("" if e.newline else "…") for e in entries]


class Copier:
    """Writes one run's CRI file as the monitor's copier does: whole lines, rotation by renames
    (``.log`` → ``.log.1`` → … → dropped at ``max_files``), a new run by :func:`logfiles.new_run`."""

    def __init__(self, directory: str, max_size: int = 1 << 20, max_files: int = 3) -> None:
        self.directory, self.max_size, self.max_files = directory, max_size, max_files
        self.fd = -1
        self.rotations = 0
        self.new_run()

    def new_run(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
        self.path = logfiles.new_run(self.directory)
        self.fd = os.open(self.path, os.O_WRONLY | os.O_APPEND)
        self.size = 0

    def write(self, data: bytes) -> None:
        if self.size and self.size + len(data) > self.max_size:
            self.rotate()
        os.write(self.fd, data)
        self.size += len(data)

    def line(self, stream: str, text: str, tag: str = "F") -> None:
        now = time.time_ns()
        self.write(f"{ts(now // 10**9 - T0, now % 10**9)} {stream} {tag} {text}\n".encode())

    def rotate(self) -> None:
        self.rotations += 1
        if self.max_files == 1:
            os.ftruncate(self.fd, 0)
        else:
            for k in range(self.max_files - 1, 0, -1):
                src = self.path if k == 1 else f"{self.path}.{k - 1}"
                if os.path.exists(src):
                    os.rename(src, f"{self.path}.{k}")
            os.close(self.fd)
            self.fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
        self.size = 0

    def close(self) -> None:
        os.close(self.fd)


# -- parsing ---------------------------------------------------------------------------------------
def test_parse_line_takes_cri_lines_and_refuses_anything_else():
    assert logread.parse_line(b"2026-12-07T10:00:00.123456789Z stdout F hello world") == (
        "2026-12-07T10:00:00.123456789Z", "stdout", False, b"hello world")
    assert logread.parse_line(b"2026-12-07T10:00:00Z stderr P  two  spaces\r") == (
        "2026-12-07T10:00:00Z", "stderr", True, b" two  spaces\r")
    assert logread.parse_line(b"2026-12-07T11:00:00+01:00 stdout F ") == (
        "2026-12-07T11:00:00+01:00", "stdout", False, b"")
    assert logread.parse_line(b"2026-12-07T10:00:00Z stdout F")[3] == b""  # an empty line, space dropped
    for garbage in (b"", b"hello", b"2026-12-07T10:00:00Z stdin F x", b"2026-12-07T10:00:00Z stdout X x",
                    b"2026-12-07 10:00:00Z stdout F x", b"\x00\xff\xfe", b"2026-12-07T10:00:00Z stdout",
                    b"2026-12-07T10:00Z stdout F x"):
        assert logread.parse_line(garbage) is None, garbage


def test_parse_time_and_since():
    assert logread.parse_time("2026-12-07T10:00:00Z") == T0 * 10**9
    assert logread.parse_time("2026-12-07T10:00:00.5Z") == T0 * 10**9 + 500_000_000
    assert logread.parse_time(b"2026-12-07T12:00:00.000000001+02:00") == T0 * 10**9 + 1
    with pytest.raises(ValueError):
        logread.parse_time("2026-13-07T10:00:00Z")
    now = T0 + 7200.0
    assert logread.parse_since("10m", now) == (T0 + 7200 - 600) * 10**9
    assert logread.parse_since("1h30m", now) == (T0 + 1800) * 10**9
    assert logread.parse_since("90s", now) == (T0 + 7110) * 10**9
    assert logread.parse_since("2026-12-07T10:00:00Z", now) == T0 * 10**9
    assert logread.parse_since(str(T0), now) == T0 * 10**9  # Unix seconds, as docker
    for bad in ("bogus", "10x", "-5m", "2026-12-07"):
        with pytest.raises(ConfigInvalid, match="--since"):
            logread.parse_since(bad, now)


def test_parts_join_with_their_final_part_per_stream_and_garbage_is_skipped(tmp_path):
    d = str(tmp_path)
    with open(logfiles.run_path(d, 0), "wb") as f:
        f.write(cri("stdout", "hel", 1, "P") + cri("stderr", "err ", 2, "P") + b"not a log line\n"
                + cri("stdout", "lo", 3) + b"\x00\x01 binary junk\n" + cri("stderr", "one", 4)
                + cri("stdout", "", 5) + cri("stdout", "unfinished", 6, "P") + b"2026-12-07T10:00:07Z stdout F tor")
    reader = logread.Reader(d, 0)
    reader.start()
    got = list(reader.read())
    assert texts(got) == ["hello", "! err one", ""]
    assert [e.time for e in got] == [ts(3), ts(4), ts(5)]  # a joined line has its final part's time
    assert reader.garbage == 2
    assert texts(reader.flush()) == ["unfinished…"]  # held until the run ends; the torn line is not given
    with open(logfiles.run_path(d, 0), "ab") as f:
        f.write(b"n\n")  # the torn line ends: it is read
    assert texts(reader.read()) == ["torn"]
    reader.close()


def test_a_line_longer_than_max_line_comes_in_pieces(tmp_path, monkeypatch):
    monkeypatch.setattr(logread, "MAX_LINE", 10)
    d = str(tmp_path)
    with open(logfiles.run_path(d, 0), "wb") as f:
        f.write(b"".join(cri("stdout", "abcd", i, "P") for i in range(5)) + cri("stdout", "end", 6))
    assert texts(logread.read_run(d, 0)) == ["abcdabcdabcd…", "abcdabcdend"]


# -- files and runs --------------------------------------------------------------------------------
def rotated_run(d: str, run: int = 0) -> None:
    """Run ``run`` in three files: lines 0-9 in .log.2, 10-19 in .log.1 (line 19 begun there as a
    part), 20-29 in .log; stderr every fifth line."""
    base = logfiles.run_path(d, run)
    for name, first in ((f"{base}.2", 0), (f"{base}.1", 10), (base, 20)):
        with open(name, "wb") as f:
            for i in range(first, first + 10):
                stream = "stderr" if i % 5 == 0 else "stdout"
                if i == 19:
                    f.write(cri(stream, "line ", i, "P"))
                elif i == 20:
                    f.write(cri("stdout", "19", 19, ns=500_000_000) + cri(stream, f"line {i}", i))
                else:
                    f.write(cri(stream, f"line {i}", i))


def test_a_run_is_read_oldest_file_first_and_a_line_continues_across_a_rotation(tmp_path):
    d = str(tmp_path)
    rotated_run(d)
    entries = logread.read_run(d, 0)
    assert [e.text for e in entries] == [b"line %d" % i for i in range(30)]
    assert [e.stream for e in entries][:6] == ["stderr", "stdout", "stdout", "stdout", "stdout", "stderr"]
    assert [e.text for e in logread.read_run(d, 0, streams=["stderr"])] == [b"line %d" % i for i in range(0, 30, 5)]


def test_tail_spans_files_and_streams_and_since(tmp_path):
    d = str(tmp_path)
    rotated_run(d)
    tail = lambda n, **kw: [e.text.decode() for e in logread.read_run(d, 0, tail=n, **kw)]  # noqa: E731
    assert tail(3) == ["line 27", "line 28", "line 29"]
    assert tail(12) == [f"line {i}" for i in range(18, 30)]  # line 19: its part in .log.1 is joined
    assert tail(11) == [f"line {i}" for i in range(19, 30)]
    assert tail(100) == [f"line {i}" for i in range(30)]
    assert tail(0) == []
    assert tail(3, streams=["stderr"]) == ["line 15", "line 20", "line 25"]
    since = logread.parse_time(ts(24))
    assert tail(3, since_ns=since) == ["line 27", "line 28", "line 29"]
    assert tail(100, since_ns=since) == [f"line {i}" for i in range(24, 30)]
    assert [e.text.decode() for e in logread.read_run(d, 0, since_ns=logread.parse_time(ts(19, 500_000_000)))] == [
        f"line {i}" for i in range(19, 30)]  # .log.1 ends before since, but holds line 19's first part
    assert [e.text for e in logread.read_run(d, 0, since_ns=logread.parse_time(ts(99)))] == []


def test_tail_reads_the_end_of_a_big_log_not_all_of_it(tmp_path, monkeypatch):
    d = str(tmp_path)
    base = logfiles.run_path(d, 0)
    line = cri("stdout", "x" * 60, 1)
    for name in (f"{base}.1", base):
        with open(name, "wb") as f:
            f.write(line * ((4 << 20) // len(line)))  # 4 MiB each
    read = []
    pread = os.pread
    monkeypatch.setattr(os, "pread", lambda fd, n, off: read.append(n) or pread(fd, n, off))
    assert len(logread.read_run(d, 0, tail=100)) == 100
    assert sum(read) < 256 << 10  # a few blocks at the end, whatever the size of the log


def test_previous_is_the_run_before_the_latest_and_older_runs_go(tmp_path):
    d = str(tmp_path / "logs" / "web")
    for n in range(3):
        path = logfiles.new_run(d)
        with open(path, "ab") as f:
            f.write(cri("stdout", f"run {n}", n))
    assert logfiles.runs(d) == [1, 2]
    assert texts(logread.read_run(d, logfiles.runs(d)[-2])) == ["run 1"]
    assert [e.run for e in logread.read_run(d, 2)] == [2]


# -- following -------------------------------------------------------------------------------------
def follow_all(reader: logread.Reader, stopped, poll: float = 0.005) -> list[logread.Entry]:
    out = reader.start()
    for batch in logread.follow(reader, stopped, poll):
        out += batch
    reader.close()
    return out


def test_follow_reads_across_rotations_and_into_a_new_run_while_written(tmp_path):
    d = str(tmp_path)
    copier = Copier(d, max_size=4096, max_files=50)
    done = threading.Event()
    n = 6000

    def write() -> None:
        for i in range(n):
            split = i % 3 == 0
            copier.line("stderr" if i % 7 == 0 else "stdout", "line " if split else f"line {i:05d}", "P" if split else "F")
            if split:
                copier.line("stderr" if i % 7 == 0 else "stdout", f"{i:05d}")  # the rest of a split line
            if i == n // 2:
                copier.new_run()  # the container was restarted
            if i % 500 == 0:
                time.sleep(0.01)
        done.set()

    reader = logread.Reader(d, 0, next_runs=True)
    writer = threading.Thread(target=write)
    writer.start()
    try:
        got = follow_all(reader, done.is_set)
    finally:
        writer.join()
        copier.close()
    assert copier.rotations > 20
    assert [e.text for e in got] == [b"line %05d" % i for i in range(n)]  # in order, none lost, none twice
    assert {e.run for e in got[: n // 2 + 1]} == {0} and {e.run for e in got[n // 2 + 1:]} == {1}
    assert reader.run == 1


def test_a_slow_reader_loses_nothing_that_was_not_rotated_away(tmp_path):
    d = str(tmp_path)
    copier = Copier(d, max_size=4096, max_files=40)
    reader = logread.Reader(d, 0, next_runs=True)
    reader.start()
    for i in range(300):
        copier.line("stdout", f"a {i}")
    first = list(reader.read())  # holds the current file open
    for i in range(2000):  # many rotations while it does not read, none rotated away
        copier.line("stdout", f"b {i}")
    rest = list(reader.read())
    assert [e.text for e in first + rest] == [b"a %d" % i for i in range(300)] + [b"b %d" % i for i in range(2000)]

    for i in range(20000):  # now more than max_files hold: the oldest are rotated away
        copier.line("stdout", f"c {i}")
    got = [int(e.text.split()[1]) for e in reader.read()]
    assert got and got[-1] == 19999 and got == sorted(got) and len(set(got)) == len(got)  # no dupes, in order
    assert len(got) < 20000  # some were rotated away before it read them: said in the module's doc
    copier.close()
    reader.close()


def test_a_file_emptied_in_place_is_read_from_its_start(tmp_path):
    d = str(tmp_path)
    copier = Copier(d, max_size=4096, max_files=1)
    reader = logread.Reader(d, 0)
    reader.start()
    for i in range(50):
        copier.line("stdout", f"x {i}")
    assert len(list(reader.read())) == 50
    for i in range(150):  # emptied at least once
        copier.line("stdout", f"y {i}")
    got = [e.text for e in reader.read()]
    assert copier.rotations >= 1 and got and got[-1] == b"y 149" and all(t.startswith(b"y ") for t in got)
    copier.close()
    reader.close()


def test_follow_with_a_tail_begins_after_it_and_holds_a_line_in_progress(tmp_path):
    d = str(tmp_path)
    rotated_run(d)
    path = logfiles.run_path(d, 0)
    with open(path, "ab") as f:
        f.write(cri("stdout", "in ", 40, "P") + b"2026-12-07T10:00:41Z stdout F pro")
    reader = logread.Reader(d, 0)
    assert texts(reader.start(tail=2)) == ["line 28", "line 29"]
    assert list(reader.read()) == []
    with open(path, "ab") as f:
        f.write(b"gress\n" + cri("stdout", "after", 42))
    assert texts(reader.read()) == ["in progress", "after"]
    reader.close()


def test_the_latest_run_is_waited_for_and_read_from_its_first_line(tmp_path):
    d = str(tmp_path / "web")
    reader = logread.Reader(d, None, next_runs=True)
    assert reader.start(tail=10) == [] and list(reader.read()) == []
    path = logfiles.new_run(d)
    with open(path, "ab") as f:
        f.write(cri("stdout", "first", 1) + cri("stdout", "second", 2))
    assert texts(reader.read()) == ["first", "second"] and reader.run == 0
    reader.close()


def test_the_previous_run_ends_with_its_unfinished_line_and_the_reader_goes_on_into_the_new_one(tmp_path):
    d = str(tmp_path)
    path = logfiles.new_run(d)
    with open(path, "ab") as f:
        f.write(cri("stdout", "crash", 1) + cri("stdout", "no newline", 2, "P"))
    reader = logread.Reader(d, 0, next_runs=True)
    reader.start()
    assert texts(reader.read()) == ["crash"]
    with open(logfiles.new_run(d), "ab") as f:
        f.write(cri("stdout", "restarted", 3))
    got = list(reader.read())
    assert texts(got) == ["no newline…", "restarted"] and [e.run for e in got] == [0, 1]
    reader.close()


def test_rotations_during_a_scan_of_the_files_neither_hide_nor_reorder_them(tmp_path, monkeypatch):
    """Regression: a file made while the reader scanned a run's names overtook the scan (it was
    seen before an older one): the reader skipped the files between them."""
    d = str(tmp_path)
    copier = Copier(d, max_size=300, max_files=30)
    reader = logread.Reader(d, 0)
    reader.start()
    written = 0

    def write(lines: int) -> None:
        nonlocal written
        for _ in range(lines):
            copier.line("stdout", f"n {written}")
            written += 1

    write(5)
    assert len(list(reader.read())) == 5
    while copier.rotations == 0:  # once: the reader's file is now .log.1, the newer one .log
        write(1)
    real_open = os.open
    armed = [True]

    def open_and_rotate(path, flags, *args):
        fd = real_open(path, flags, *args)
        if armed[0] and str(path).endswith("0.log"):  # the scan opened .log: the writer rotates 4 times
            armed[0] = False
            while copier.rotations < 5:
                write(1)
        return fd

    monkeypatch.setattr(os, "open", open_and_rotate)
    got = [int(e.text.split()[1]) for e in reader.read()]
    monkeypatch.setattr(os, "open", real_open)
    got += [int(e.text.split()[1]) for e in reader.read()]
    assert not armed[0] and copier.rotations == 5
    assert got == list(range(5, written))
    copier.close()
    reader.close()


def test_a_rotation_just_before_a_new_run_is_read_before_the_new_run(tmp_path, monkeypatch):
    """Regression: the reader saw its file still current, then the new run, and went on into it:
    a rotation of the old run between the two looks (its last file) was skipped."""
    d = str(tmp_path)
    copier = Copier(d, max_size=300, max_files=5)
    reader = logread.Reader(d, 0, next_runs=True)
    reader.start()
    copier.line("stdout", "first")
    assert texts(reader.read()) == ["first"]
    real_stat = os.stat
    armed = [True]

    def stat_then_restart(path, *args, **kwargs):
        st = real_stat(path, *args, **kwargs)
        if armed[0] and str(path).endswith("/0.log"):  # the old run rotates, ends, and a new one begins
            armed[0] = False
            while copier.rotations == 0:
                copier.line("stdout", "last of run 0")
                armed.append(None)  # one more line written
            copier.new_run()
            copier.line("stdout", "run 1")
        return st

    monkeypatch.setattr(os, "stat", stat_then_restart)
    got = list(reader.read())
    monkeypatch.setattr(os, "stat", real_stat)
    got += reader.read()
    assert not armed[0]
    assert texts(got) == ["last of run 0"] * (len(armed) - 1) + ["run 1"]  # the old run's last file too
    copier.close()
    reader.close()
