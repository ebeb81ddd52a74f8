"""A container's output as the logs tab keeps it: :class:`LogBuffer`, and how its lines look
(:func:`line_styles`). Pure, no Textual."""

from __future__ import annotations

import heapq
import re
from collections import deque
from collections.abc import Iterable
from typing import TYPE_CHECKING

from .numbers import fmt_bytes

if TYPE_CHECKING:
    from declarative_ct.runtime.logread import Entry

LOG_LINES = 5000
"""Lines a :class:`LogBuffer` keeps (both streams together)."""

NOTE = "note"  # the buffer's own lines (a run began, bytes skipped): a stream of their own


class LogBuffer:
    """The last lines of a container's logs, both streams, bounded and fair.

    At most ``maxlen`` lines in all; when full, the oldest line of the stream holding more lines
    goes, so each stream keeps at least ``maxlen // 2`` of its last lines (a chatty stderr cannot
    push stdout out). Lines are numbered as they arrive: :attr:`lines` gives them in that order,
    each as ``[<time> ]<text>`` with stderr lines starting ``! `` and :attr:`timestamps` saying
    whether the time (UTC, to the millisecond) is shown; a new run shows a line of its own.

    :attr:`reordered` is set when a line went that was not the oldest of all (a view that drops
    its oldest line when full then differs from :attr:`lines`: draw it again); the reader resets it.
    """

    def __init__(self, maxlen: int = LOG_LINES, timestamps: bool = True) -> None:
        self.maxlen = max(2, maxlen)
        self.timestamps = timestamps
        self._streams: dict[str, deque[tuple[int, str, str]]] = {}
        self._seq = 0
        self._count = 0
        self._run: int | None = None
        self.reordered = False

    def __len__(self) -> int:
        return self._count

    @property
    def lines(self) -> list[str]:
        """Every line kept, in arrival order, as shown."""
        if len(self._streams) == 1:
            items: Iterable[tuple[int, str, str]] = next(iter(self._streams.values()))
        else:
            items = heapq.merge(*self._streams.values())
        return [self._show(t, x) for _, t, x in items]

    def add(self, entries: Iterable[Entry]) -> list[str]:
        """Add log entries (:class:`~declarative_ct.runtime.logread.Entry`); returns the lines they
        made, as shown (already stored)."""
        new: list[str] = []
        batch: list[tuple[str, str, str]] = []
        for e in entries:
            if e.run != self._run:
                if self._run is not None:
                    batch.append((NOTE, e.time, f"── run {e.run} began (the container was restarted) ──"))
                self._run = e.run
            text = e.text.decode("utf-8", errors="replace").rstrip("\r").replace("\t", "    ")
            batch.append((e.stream, e.time, f"! {text}" if e.stream == "stderr" else text))
        i = 0
        while i < len(batch):  # consecutive lines of one stream together
            j = i
            while j < len(batch) and batch[j][0] == batch[i][0]:
                j += 1
            new += self._add(batch[i][0], [(t, x) for _, t, x in batch[i:j]])
            i = j
        return new[-self.maxlen:]

    def skipped(self, nbytes: int) -> list[str]:
        """``nbytes`` of the log were not read (written faster than shown): a note takes their place."""
        return self._add(NOTE, [("", f"… {fmt_bytes(nbytes)} of output skipped (written faster than shown) …")])

    def clear(self) -> None:
        """Forget every line."""
        self._streams = {}
        self._count = 0
        self._run = None
        self.reordered = False

    def _show(self, time: str, text: str) -> str:
        if self.timestamps and time:
            return f"{short_time(time)} {text}"
        return text

    def _add(self, stream: str, lines: list[tuple[str, str]]) -> list[str]:
        if not lines:
            return []
        ring = self._streams.setdefault(stream, deque())
        first = self._seq
        ring.extend((first + i, t, x) for i, (t, x) in enumerate(lines))
        self._seq += len(lines)
        self._count += len(lines)
        while self._count > self.maxlen:
            fullest = max(self._streams.values(), key=len)
            seq, _, _ = fullest.popleft()
            self._count -= 1
            if any(r and r[0][0] < seq for r in self._streams.values()):
                self.reordered = True
        return [self._show(t, x) for t, x in lines[-self.maxlen:]]


def short_time(rfc3339: str) -> str:
    """``2026-12-07T10:00:00.123456789Z`` → ``12-07 10:00:00.123`` (the month, day and time as
    stored: UTC; to the millisecond)."""
    if len(rfc3339) < 19:
        return rfc3339
    digits = ""
    if rfc3339[19:20] == ".":
        digits = rfc3339[20:23]
        digits = digits[:next((i for i, ch in enumerate(digits) if not ch.isdigit()), len(digits))]
    return f"{rfc3339[5:10]} {rfc3339[11:19]}.{digits.ljust(3, '0')}"


_STAMP = re.compile(r"\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} ")


def line_styles(line: str) -> list[tuple[int, int, str]]:
    """How a line of :attr:`LogBuffer.lines` looks: ``[(start, end, style)]`` (Rich style names):
    the time dim, a stderr line (``! …``) red, the buffer's notes (a new run, bytes skipped) in italics."""
    out = []
    m = _STAMP.match(line)
    start = 0
    if m is not None:
        out.append((0, m.end() - 1, "dim"))
        start = m.end()
    if line.startswith("! ", start):
        out.append((start, len(line), "red"))
    elif line.startswith(("── ", "… "), start):
        out.append((start, len(line), "italic cyan"))
    return out
