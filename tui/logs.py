"""A container's output as the logs tab keeps it: :class:`LogBuffer`. Pure, no Textual."""

from __future__ import annotations

import heapq
from collections import deque

from .numbers import fmt_bytes


LOG_LINES = 5000
"""Lines a :class:`LogBuffer` keeps (both streams together)."""


class LogBuffer:
    """The last lines of a container's output, both streams, bounded and fair.

    At most ``maxlen`` lines in all; when full, the oldest line of the stream holding more lines
    goes, so each stream keeps at least ``maxlen // 2`` of its last lines (a chatty stderr cannot
    push stdout out). Lines are numbered as they arrive: :attr:`lines` gives them in that order.
    stderr lines start with ``! ``; a partial line is held until its newline arrives.

    :attr:`reordered` is set when a line went that was not the oldest of all (a view that drops
    its oldest line when full then differs from :attr:`lines`: draw it again); the reader resets it.
    """

    def __init__(self, maxlen: int = LOG_LINES) -> None:
        self.maxlen = max(2, maxlen)
        self._streams: dict[str, deque[tuple[int, str]]] = {}
        self._partial: dict[str, str] = {}
        self._seq = 0
        self._count = 0
        self.reordered = False

    def __len__(self) -> int:
        return self._count

    @property
    def lines(self) -> list[str]:
        """Every line kept, in arrival order."""
        if len(self._streams) == 1:
            return [t for _, t in next(iter(self._streams.values()))]
        return [t for _, t in heapq.merge(*self._streams.values())]

    def feed(self, stream: str, data: bytes) -> list[str]:
        """Add raw bytes of one stream; returns the complete lines they finished (already stored)."""
        text = self._partial.pop(stream, "") + data.decode("utf-8", errors="replace")
        parts = text.split("\n")
        self._partial[stream] = parts.pop()
        return self._add(stream, [_line(stream, p) for p in parts])

    def skipped(self, stream: str, nbytes: int) -> list[str]:
        """``nbytes`` of ``stream`` were not read (written faster than shown): the line held
        without its newline goes, and a note takes the place of what was skipped."""
        self._partial.pop(stream, None)
        return self._add(stream, [f"… {fmt_bytes(nbytes)} of {stream} skipped (written faster than shown) …"])

    def flush(self) -> list[str]:
        """Complete lines from what is held without a newline yet (a stopped container's last words)."""
        new: list[str] = []
        for stream, p in list(self._partial.items()):
            if p:
                new += self._add(stream, [_line(stream, p)])
        self._partial.clear()
        return new

    def clear(self) -> None:
        """Forget every line (and what is held)."""
        self._streams = {}
        self._partial = {}
        self._count = 0
        self.reordered = False

    def _add(self, stream: str, lines: list[str]) -> list[str]:
        if not lines:
            return []
        ring = self._streams.setdefault(stream, deque())
        first = self._seq
        ring.extend(zip(range(first, first + len(lines)), lines))
        self._seq += len(lines)
        self._count += len(lines)
        while self._count > self.maxlen:
            fullest = max(self._streams.values(), key=len)
            seq, _ = fullest.popleft()
            self._count -= 1
            if any(r and r[0][0] < seq for r in self._streams.values()):
                self.reordered = True
        return lines[-self.maxlen:]


def _line(stream: str, text: str) -> str:
    text = text.rstrip("\r").replace("\t", "    ")
    return f"! {text}" if stream == "stderr" else text
