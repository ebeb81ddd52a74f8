"""The screens' filters: a pattern (a regular expression, else plain text) over log lines (with
context, as ``grep -C``), table rows and events. Pure, no Textual."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .model import Row


def compile_filter(pattern: str) -> re.Pattern[str] | None:
    """A case-insensitive regular expression; a pattern that is not a valid one is taken literally.
    None for an empty pattern (everything matches)."""
    if not pattern:
        return None
    try:
        return re.compile(pattern, re.IGNORECASE)
    except re.error:
        return re.compile(re.escape(pattern), re.IGNORECASE)


def pattern_error(pattern: str) -> str | None:
    """Why ``pattern`` is not a valid regular expression (``re.error``'s message), or None.
    :func:`compile_filter` then matches it as plain text, and the screens say so."""
    try:
        re.compile(pattern)
    except re.error as err:
        return str(err)
    return None


def filter_lines(lines: Sequence[str], pattern: str, context: int = 0) -> list[str]:
    """Lines matching ``pattern`` (:func:`compile_filter`), each with ``context`` lines before and
    after it (as ``grep -C``); ``--`` separates groups that are not adjacent. All lines when the
    pattern is empty."""
    rx = compile_filter(pattern)
    if rx is None:
        return list(lines)
    context = max(0, context)
    keep: list[tuple[int, int]] = []  # merged [start, end) ranges
    for i, line in enumerate(lines):
        if rx.search(line):
            lo, hi = max(0, i - context), min(len(lines), i + context + 1)
            if keep and lo <= keep[-1][1]:
                keep[-1] = (keep[-1][0], max(keep[-1][1], hi))
            else:
                keep.append((lo, hi))
    out: list[str] = []
    for n, (lo, hi) in enumerate(keep):
        if n and context:
            out.append("--")
        out.extend(lines[lo:hi])
    return out


def row_matches(row: Row, pattern: str) -> bool:
    """The containers filter: ``pattern`` (:func:`compile_filter`) found in the name, status,
    drift or health (``unhealthy``); a leading ``!`` inverts it."""
    invert = pattern.startswith("!")
    rx = compile_filter(pattern[1:] if invert else pattern)
    if rx is None:
        return True
    hit = bool(rx.search(row.id) or rx.search(row.cells.get("status", "")) or (row.drift and rx.search(row.drift))
               or (row.health_status and rx.search(row.health_status)))
    return hit != invert
