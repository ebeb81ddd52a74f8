"""The TUI's numbers: counter deltas and rates (wraps and resets), and their formats (bytes, cores,
percent, durations). Pure, no Textual."""

from __future__ import annotations


_UNITS = ("B", "K", "M", "G", "T", "P")
UNLIMITED_FROM = 1 << 62
"""A memory limit at or above this (v1 shows 'unlimited' as ~2^63) means no limit."""


def fmt_bytes(n: float | None) -> str:
    """Binary units, 3 significant digits at most: ``0B``, ``512B``, ``1.5K``, ``12.3M``, ``123M``, ``1.0G``."""
    if n is None:
        return "-"
    value = float(n)
    for unit in _UNITS:
        if abs(value) < 1024 or unit == _UNITS[-1]:
            if unit == "B":
                return f"{int(value)}B"
            return f"{value:.1f}{unit}" if abs(value) < 100 else f"{value:.0f}{unit}"
        value /= 1024
    return "-"  # pragma: no cover


def fmt_cores(cores: float | None) -> str:
    """``0.25`` (cores, two decimals); ``-`` when unknown."""
    return "-" if cores is None else f"{cores:.2f}"


def fmt_pct(pct: float | None) -> str:
    """``3.2%`` below 10, ``42%`` above; ``-`` when unknown."""
    if pct is None:
        return "-"
    return f"{pct:.1f}%" if pct < 10 else f"{pct:.0f}%"


def fmt_duration(seconds: float | None) -> str:
    """Coarse on purpose (a cell that changes less often costs less to redraw): ``42s``, ``5m``, ``3h12m``, ``2d4h``."""
    if seconds is None:
        return "-"
    s = max(0, int(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m"
    if s < 86400:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{s // 86400}d{s % 86400 // 3600}h"


def fmt_used_limit(used: float | None, limit: float | None, fmt=fmt_bytes) -> str:
    """``used/limit`` (``12.3M/64.0M``), ``used/-`` without a limit, ``-`` when nothing is known."""
    if used is None:
        return "-"
    return f"{fmt(used)}/{fmt(limit) if limit is not None else '-'}"


def _fmt_count(n: float | None) -> str:
    return "-" if n is None else str(int(n))


def counter_delta(prev: int | None, cur: int | None) -> int | None:
    """How much a cumulative counter grew from ``prev`` to ``cur``.

    A counter that went down either wrapped or was reset (a new run of the container, a
    recreated interface). A 32-bit counter that was in its upper half and is now small is
    taken as wrapped once (``2**32 - prev + cur``); any other decrease is a reset and gives None
    (no rate this tick, never a negative or absurd one). None when either value is unknown.
    """
    if prev is None or cur is None:
        return None
    if cur >= prev:
        return cur - prev
    if (1 << 31) <= prev < (1 << 32) and cur < (1 << 31):
        return (1 << 32) - prev + cur
    return None


def rate(prev: int | None, cur: int | None, dt: float) -> float | None:
    """Per-second rate of a cumulative counter over ``dt`` seconds (None: unknown, reset or dt <= 0)."""
    delta = counter_delta(prev, cur)
    if delta is None or dt <= 0:
        return None
    return delta / dt

