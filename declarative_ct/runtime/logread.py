# Size: one reader of one file format: the tail (backwards) and the position (forwards, across renames and runs) share its line parser, joiner and file chain.
"""Reading a container name's logs (:mod:`.logfiles`' layout, CRI lines): ``dct logs``, the TUI's
logs tab.

A file line is ``<RFC 3339 time> <stdout|stderr> <P|F> <text>``; a line whose tag is ``P`` is a
part that continues in the next line of the same stream, and ``F`` ends the logical line. An
:class:`Entry` is one logical line (its parts joined). Lines that do not parse (garbage, a line torn
by a crash) are skipped, never raised.

:class:`Reader` is a position in one run's files that survives rotation: it reads the file it has
open to its end, and when the run's current file (``<run>.log``) is another inode (the copier
renamed it to ``.log.1`` and began a new one) it finishes the old file and goes on with the newer
ones, in order; with ``next_runs`` it then goes on into a newer run (the container was restarted).
It is cheap to poll: a read that finds nothing new is an ``fstat`` and two ``stat`` calls.
:meth:`Reader.start` with ``tail`` reads the files backwards from their end (``--tail 100`` of
a 30 MiB log reads a few blocks). :func:`follow` polls a reader until the container stops.

Lost lines: none for a slow reader, unless the copier rotated a file away (``max_files``) before
it was read; a read with ``max_bytes`` (the TUI) skips what exceeds it and counts it in
:attr:`Reader.skipped`. A file deleted by hand (not rotated) may make the reader read a rotated
file twice.

Stdlib only.
"""

from __future__ import annotations

import calendar
import contextlib
import functools
import itertools
import os
import re
import time
from collections.abc import Callable, Iterable, Iterator
from typing import NamedTuple

from ..errors import ConfigInvalid
from . import logfiles

STREAMS = ("stdout", "stderr")
BLOCK = 1 << 20  # bytes per read going forwards
BACK_BLOCK = 64 << 10  # bytes per read going backwards (a tail): a few of them for 100 lines
MAX_LINE = 1 << 20
"""Bytes of one logical line held at most while its parts arrive; a longer one is given in pieces
(:attr:`Entry.newline` False on all but the last), so a line without end cannot take all memory."""
BATCH = 4096  # lines per list of follow()
POLL = 0.2  # seconds between reads of :func:`follow` while nothing new was written
_MAX_GAP = 2  # missing rotated names in a row that end a scan (one may be mid-rename)
_RESCANS = 5  # scans of a run's files in a row while rotations under way disturb them

_LINE = re.compile(rb"(\d{4}-\d\d-\d\d[Tt]\d\d:\d\d:\d\d(?:\.\d{1,9})?(?:[Zz]|[+-]\d\d:\d\d)) "
                   rb"(stdout|stderr) ([PF])[^ ]*(?: (.*))?", re.S)
_TIME = re.compile(r"(\d{4})-(\d\d)-(\d\d)[Tt](\d\d):(\d\d):(\d\d)(?:\.(\d{1,9}))?([Zz]|([+-])(\d\d):(\d\d))")


class Entry(NamedTuple):
    """One logical line of a container's output.

    Fields:
        time: its RFC 3339 time as stored (the time of its last part), e.g.
            ``2026-12-07T10:00:00.123456789Z``; :func:`parse_time` gives epoch nanoseconds.
        stream: ``stdout`` or ``stderr``.
        text: the line's bytes, without its newline (the container's bytes: any encoding).
        run: the run it belongs to (:func:`.logfiles.runs`).
        newline: False when the line did not end: its run ended in the middle of it, or it is a
            piece of a line longer than :data:`MAX_LINE` (the next piece continues it).
    """

    time: str
    stream: str
    text: bytes
    run: int
    newline: bool = True


def parse_time(text: str | bytes) -> int:
    """Epoch nanoseconds of an RFC 3339 time (``2026-12-07T10:00:00Z``, ``…:00.5+02:00``; up to 9
    fraction digits).

    Raises:
        ValueError: ``text`` is not such a time.
    """
    if isinstance(text, bytes):
        text = text.decode("ascii", "replace")
    m = _TIME.fullmatch(text.strip())
    if m is None:
        raise ValueError(f"{text!r} is not an RFC 3339 time (e.g. 2026-12-07T10:00:00Z)")
    y, mo, d, h, mi, s, frac, zone, sign, zh, zm = m.groups()
    seconds = _epoch(int(y), int(mo), int(d), int(h), int(mi), int(s))
    if sign:
        seconds -= (1 if sign == "+" else -1) * (int(zh) * 3600 + int(zm) * 60)
    return seconds * 1_000_000_000 + (int(frac.ljust(9, "0")) if frac else 0)


@functools.lru_cache(maxsize=64)
def _epoch(y: int, mo: int, d: int, h: int, mi: int, s: int) -> int:
    if not (1 <= mo <= 12 and 1 <= d <= 31 and h < 24 and mi < 60 and s <= 60):
        raise ValueError(f"{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02} is out of range")
    return calendar.timegm((y, mo, d, h, mi, s, 0, 0, 0))


def parse_since(text: str, now: float | None = None, name: str = "--since") -> int:
    """Epoch nanoseconds of a ``--since`` value: a duration before ``now`` (``10m``, ``1h30m``,
    ``90s``, Go's units), an RFC 3339 time, or Unix seconds (``1765101600``, as docker).

    Raises:
        ConfigInvalid: naming ``name``: none of those.
    """
    value = text.strip()
    if re.fullmatch(r"\d+(\.\d+)?", value):
        return int(float(value) * 1e9)
    with contextlib.suppress(ValueError):
        return parse_time(value)
    if re.fullmatch(r"[0-9.]+[a-zµμ]+(?:[0-9.]+[a-zµμ]+)*", value):
        from .events import parse_duration  # Go's durations, as --interval

        seconds = parse_duration(value, name)
        return int(((time.time() if now is None else now) - seconds) * 1e9)
    raise ConfigInvalid(f"{name}: {text!r} is neither a duration (10m, 1h30m, 90s), an RFC 3339 time "
                        "(2026-12-07T10:00:00Z) nor Unix seconds")


def parse_line(line: bytes) -> tuple[str, str, bool, bytes] | None:
    """``(time, stream, partial, text)`` of one CRI file line (without its newline); None if it is
    not one (garbage, torn)."""
    m = _LINE.fullmatch(line)
    if m is None:
        return None
    ts, stream, tag, text = m.groups()
    return ts.decode(), stream.decode(), tag == b"P", text or b""


class _Joiner:
    """Joins the ``P`` parts of each stream with their ``F``."""

    __slots__ = ("parts", "size", "last")

    def __init__(self) -> None:
        self.parts: dict[str, list[bytes]] = {}
        self.size: dict[str, int] = {}
        self.last: dict[str, str] = {}  # stream -> time of its last part held

    def add(self, ts: str, stream: str, partial: bool, text: bytes, run: int) -> Entry | None:
        held = self.parts.get(stream)
        if partial:
            if held is None:
                held = self.parts[stream] = []
                self.size[stream] = 0
            held.append(text)
            self.last[stream] = ts
            self.size[stream] += len(text)
            if self.size[stream] < MAX_LINE:
                return None
            del self.parts[stream]
            return Entry(ts, stream, b"".join(held), run, False)
        if held is None:
            return Entry(ts, stream, text, run)
        del self.parts[stream]
        held.append(text)
        return Entry(ts, stream, b"".join(held), run)

    def flush(self, run: int) -> list[Entry]:
        """The lines held without their end (their run ended), oldest first; forgets them."""
        out = [Entry(self.last[s], s, b"".join(p), run, False) for s, p in self.parts.items() if p]
        self.parts.clear()
        out.sort(key=lambda e: e.time)
        return out


class Reader:
    """A position in the logs of one container name (the directory :func:`.logfiles.log_dir`).

    Args:
        directory: ``<data_root>/logs/<name>``.
        run: the run to read; None: the latest, once one exists (a new one starts from its first line).
        streams: the streams given (``stdout``, ``stderr``).
        since_ns: give only lines at or after this epoch time (ns), as ``--since``.
        next_runs: when the run has ended and a newer one began, go on into it (``-f`` of the
            current run); otherwise stay in ``run``.

    Use :meth:`start` once (optional: it reads the tail), then :meth:`read` as often as wanted,
    :meth:`flush` when no more lines will come (the container stopped), :meth:`close` at the
    end. Not thread-safe: one caller at a time. Attributes: :attr:`run` (the run being read),
    :attr:`skipped` (bytes the last :meth:`read` skipped for its ``max_bytes``), :attr:`garbage`
    (lines that did not parse so far).
    """

    def __init__(self, directory: str, run: int | None = None, streams: Iterable[str] = STREAMS,
                 since_ns: int | None = None, next_runs: bool = False) -> None:
        self._fd = -1  # first: __del__ closes it
        self.directory = directory
        self.run = run
        self.streams = frozenset(streams)
        self.since_ns = since_ns
        self.next_runs = next_runs
        self.skipped = 0
        self.garbage = 0
        self._ino = -1
        self._pos = 0
        self._rest = b""  # a line not ended yet (being written)
        self._align = False  # the position may be mid-line: skip to the next line start
        self._joiner = _Joiner()

    def __del__(self) -> None:
        self.close()

    def close(self) -> None:
        """Close the file held open (idempotent)."""
        if self._fd >= 0:
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._fd = -1

    # -- starting ------------------------------------------------------------------------------
    def start(self, tail: int | None = None, max_bytes: int | None = None) -> list[Entry]:
        """Open the run. Without ``tail``: at its first line (the first file holding lines at or
        after ``since``), returns []; :meth:`read` then gives them all. With ``tail`` N: the last
        N lines (of the streams, since ``since``), read backwards from the end of the newest files
        (at most ``max_bytes`` of them); :meth:`read` goes on after them. A run that does not
        exist (yet) gives [] and is looked for again by :meth:`read`.
        """
        if not self._pick_run():
            return []
        chain = self._chain(self.run)
        if not chain:
            return []
        try:
            if tail is None:
                keep = len(chain) - 1
                # Whole files that end before since are skipped, but the last of them: it may hold
                # the first parts of the first line given.
                while self.since_ns is not None and keep > 1 and _last_time_ns(chain[keep - 1][0]) < self.since_ns:
                    keep -= 1
                self._take(chain, keep, 0)
                return []
            end = _line_end(chain[0][0], os.fstat(chain[0][0]).st_size)
            entries = self._tail(chain, end, tail, max_bytes)
        except BaseException:
            for fd, _ in chain:
                os.close(fd)
            raise
        self._take(chain, 0, end)
        return entries

    def _pick_run(self) -> bool:
        if self.run is not None:
            return True
        runs = logfiles.runs(self.directory)
        if not runs:
            return False
        self.run = runs[-1]
        return True

    def _take(self, chain: list[tuple[int, int]], index: int, pos: int) -> None:
        """Hold ``chain[index]`` at ``pos``; close the rest of the chain."""
        for i, (fd, _) in enumerate(chain):
            if i != index:
                os.close(fd)
        self.close()
        self._fd, self._ino = chain[index]
        self._pos, self._rest, self._align = pos, b"", False

    def _tail(self, chain: list[tuple[int, int]], end: int, n: int, max_bytes: int | None) -> list[Entry]:
        """The last ``n`` lines, backwards over ``chain`` (newest first) from ``end`` in its first file.

        A line is counted when its ``F`` is met; the scan goes on until each stream counted met the
        end of an earlier line, so the parts of the oldest line counted are all read. A line not
        ended yet (trailing ``P`` parts) is not counted: it stays held for :meth:`read` (or :meth:`flush`).
        """
        if n <= 0:
            return []
        since = self.since_ns
        records: list[tuple[str, str, bool, bytes]] = []
        seen: set[str] = set()
        selected: set[str] = set()
        closed: set[str] = set()
        count = 0
        old = False  # a line before since was met: no more lines are counted
        scanned = 0
        for i, (fd, _) in enumerate(chain):
            for line in _reverse_lines(fd, end if i == 0 else os.fstat(fd).st_size):
                scanned += len(line) + 1
                if max_bytes is not None and scanned > max_bytes:
                    return self._join_tail(records, n)
                rec = parse_line(line)
                if rec is None:
                    self.garbage += bool(line)
                    continue
                ts, stream, partial, _ = rec
                if stream not in self.streams or stream in closed:
                    continue
                if since is not None and not old and _time_ns(ts) < since:
                    old = True
                if not partial or stream not in seen:  # the end of an earlier line, or a trailing part
                    seen.add(stream)
                    if count < n and not old:
                        count += not partial  # a line not ended yet is held, not counted
                        selected.add(stream)
                    else:
                        closed.add(stream)
                        if (count >= n or old) and selected <= closed:
                            return self._join_tail(records, n)
                        continue
                records.append(rec)
        return self._join_tail(records, n)

    def _join_tail(self, records: list[tuple[str, str, bool, bytes]], n: int) -> list[Entry]:
        out = []
        for ts, stream, partial, text in reversed(records):
            entry = self._joiner.add(ts, stream, partial, text, self.run)
            if entry is not None:
                out.append(entry)
        return out[-n:]

    # -- reading -------------------------------------------------------------------------------
    def read(self, max_bytes: int | None = None) -> Iterator[Entry]:
        """Yield the lines written since the last read, oldest first, across rotations (and into
        newer runs with ``next_runs``). Returns when it has read to the end of what is written; a
        line not ended yet stays for the next read. ``max_bytes``: read at most this many bytes of
        each file (its newest), the bytes skipped are added to :attr:`skipped`.
        """
        self.skipped = 0
        if self._fd < 0:
            self.start()  # not started, or its run had no file yet: from the first line
            if self._fd < 0:
                return
        while True:
            yield from self._drain(max_bytes)
            target = self._next()
            if target is None:
                return
            yield from self._drain(max_bytes)  # what was written before it moved on
            fd, ino, run = target
            if run != self.run:
                yield from self._joiner.flush(self.run)
                self.run = run
            self.close()
            self._fd, self._ino, self._pos, self._rest, self._align = fd, ino, 0, b"", False

    def flush(self) -> list[Entry]:
        """The lines held without their end, given as they are (the container stopped: no more parts)."""
        held = self._joiner.flush(self.run if self.run is not None else -1)
        since = self.since_ns
        return held if since is None else [e for e in held if _time_ns(e.time) >= since]

    def _drain(self, max_bytes: int | None) -> Iterator[Entry]:
        fd = self._fd
        size = os.fstat(fd).st_size
        if size < self._pos:  # emptied in place (max_files 1): from its start
            self._pos, self._rest, self._align = 0, b"", False
        if max_bytes is not None and size - self._pos > max_bytes:
            self.skipped += size - max_bytes - self._pos
            self._pos, self._rest, self._align = size - max_bytes, b"", True
            self._joiner.parts.clear()
        while self._pos < size:
            data = os.pread(fd, min(BLOCK, size - self._pos), self._pos)
            if not data:
                break
            self._pos += len(data)
            if self._align:
                cut = data.find(b"\n")
                if cut < 0:
                    continue
                data, self._align = data[cut + 1:], False
            yield from self._lines(data)

    def _lines(self, data: bytes) -> Iterator[Entry]:
        lines = data.split(b"\n")
        if self._rest:
            lines[0] = self._rest + lines[0]
        self._rest = lines.pop()
        streams, since, run, add = self.streams, self.since_ns, self.run, self._joiner.add
        for line in lines:
            m = _LINE.fullmatch(line)
            if m is None:
                self.garbage += bool(line)
                continue
            ts, stream, tag, text = m.groups()
            stream = stream.decode()
            if stream not in streams:
                continue
            ts = ts.decode()
            entry = add(ts, stream, tag == b"P", text or b"", run)
            if entry is not None and (since is None or _time_ns(entry.time) >= since):
                yield entry

    def _next(self) -> tuple[int, int, int] | None:
        """``(fd, inode, run)`` of the file to read after the one held, or None (none yet).

        Whether a newer run began is looked at *before* which file is our run's current one: a
        run's files are complete once the next run exists (its copier is done), so a rotation seen
        after that is the run's last, and none is missed between the two looks.
        """
        newer_run = self.next_runs and os.path.exists(logfiles.run_path(self.directory, self.run + 1))
        try:
            ino = os.stat(logfiles.run_path(self.directory, self.run)).st_ino
        except OSError:
            ino = None
        if ino is not None and ino != self._ino:  # rotated: the oldest file newer than ours
            chain = self._chain(self.run)
            mine = next((i for i, (_, c) in enumerate(chain) if c == self._ino), len(chain))
            if mine == len(chain) and os.fstat(self._fd).st_nlink > 0:
                mine = 0  # ours is still there, but rotations under way hid it: next time
            if mine > 0:  # ours found (every file newer is before it), or rotated away (all are newer)
                for fd, _ in chain[:mine - 1] + chain[mine:]:
                    os.close(fd)
                fd, c = chain[mine - 1]
                return fd, c, self.run
            for fd, _ in chain:
                os.close(fd)
            return None  # the new current file appeared after the scan: next time
        if not self.next_runs or (ino is not None and not newer_run):
            return None
        # Our file is the run's last and a newer run began (or the run's files are gone).
        for run in [r for r in logfiles.runs(self.directory) if r > self.run]:
            chain = self._chain(run)
            if chain:
                for fd, _ in chain[:-1]:
                    os.close(fd)
                return (*chain[-1], run)
        return None

    def _chain(self, run: int) -> list[tuple[int, int]]:
        """The files of ``run`` opened, newest first, as ``(fd, inode)``.

        Names are opened from the current one upwards (``.log``, ``.log.1``, …; one seen twice
        is dropped by its inode; a gap, a rename in progress, does not end the scan,
        :data:`_MAX_GAP` + 1 in a row do). A rotation during the scan can reorder what it sees (a
        file made after the scan began overtakes it), so a scan counts only if the current name
        still holds the file it opened first; else it is made again (:data:`_RESCANS` times, then
        the last one is taken).
        """
        base = logfiles.run_path(self.directory, run)
        for attempt in range(_RESCANS):
            out, first = _scan(base)
            try:
                stable = first is not None and os.stat(base).st_ino == first
            except OSError:
                stable = False
            if stable or attempt == _RESCANS - 1:
                return out
            for fd, _ in out:
                os.close(fd)
        return []  # not reached


def _scan(base: str) -> tuple[list[tuple[int, int]], int | None]:
    """One scan of :meth:`Reader._chain`: ``([(fd, inode)], inode of base or None)``."""
    out: list[tuple[int, int]] = []
    seen: set[int] = set()
    first = None
    k = misses = 0
    while misses <= _MAX_GAP:
        try:
            fd = os.open(base if k == 0 else f"{base}.{k}", os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            misses += k > 0
            k += 1
            continue
        ino = os.fstat(fd).st_ino
        if k == 0:
            first = ino
        misses = 0
        k += 1
        if ino in seen:
            os.close(fd)
            continue
        seen.add(ino)
        out.append((fd, ino))
    return out, first


def follow(reader: Reader, stopped: Callable[[], bool], poll: float = POLL) -> Iterator[list[Entry]]:
    """Yield ``reader``'s new lines in lists (of :data:`BATCH` at most) as they are written, until
    ``stopped()`` is true; then, after a last read, the lines held without their end. ``stopped``
    is asked before each read, so what was written before it stopped is read. ``poll``: seconds
    between reads while nothing new came.
    """
    while True:
        done = stopped()
        got = False
        lines = reader.read()
        while batch := list(itertools.islice(lines, BATCH)):
            got = True
            yield batch
        if done:
            if held := reader.flush():
                yield held
            return
        if not got:
            time.sleep(poll)


def read_run(directory: str, run: int, streams: Iterable[str] = STREAMS, since_ns: int | None = None,
             tail: int | None = None) -> list[Entry]:
    """Every line of one run (or its last ``tail``), oldest first, the unfinished ones included."""
    reader = Reader(directory, run, streams, since_ns)
    try:
        entries = reader.start(tail)
        if tail is None:
            entries = list(reader.read())
        entries += reader.flush()
        return entries[max(0, len(entries) - tail):] if tail is not None else entries
    finally:
        reader.close()


def _time_ns(ts: str) -> int:
    try:
        return parse_time(ts)
    except ValueError:
        return 0


def _reverse_lines(fd: int, end: int) -> Iterator[bytes]:
    """The lines of ``fd`` before offset ``end``, last first, without their newlines."""
    pos, rest = end, b""
    while pos > 0:
        n = min(BACK_BLOCK, pos)
        pos -= n
        lines = (os.pread(fd, n, pos) + rest).split(b"\n")
        rest = lines[0]
        for line in reversed(lines[1:]):
            yield line
    if rest:
        yield rest


def _line_end(fd: int, size: int) -> int:
    """The offset just after the last newline before ``size`` (0 if none): where the lines end."""
    pos = size
    while pos > 0:
        n = min(BACK_BLOCK, pos)
        cut = os.pread(fd, n, pos - n).rfind(b"\n")
        if cut >= 0:
            return pos - n + cut + 1
        pos -= n
    return 0


def _last_time_ns(fd: int) -> int:
    """The time of the last line of ``fd`` that parses (0: none)."""
    for line in _reverse_lines(fd, os.fstat(fd).st_size):
        rec = parse_line(line)
        if rec is not None:
            return _time_ns(rec[0])
    return 0
