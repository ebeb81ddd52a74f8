"""Sizes as users type them: bytes, IEC suffixes (``64Mi``) and runc/docker's ``64m``/``1g``;
durations (``2s``, ``1m30s``); RFC 3339 times of the records the reconciler and the prober keep.

Stdlib only: the CLI, the reconciler and the runtime's spec conversion all use it.
"""

from __future__ import annotations

import calendar
import re
import time

UNLIMITED = -1
"""libcontainer's value for "no limit" (memory, memory_swap, cpu_quota, pids_limit)."""

_MULTIPLIERS = {"": 1, "b": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50}
_SIZE = re.compile(r"^(\d+(?:\.\d+)?)\s*(?:([kmgtp])i?b?|b?)$", re.IGNORECASE)


def _bad(field: str | None, message: str) -> ValueError:
    return ValueError(f"{field}: {message}" if field else message)


def parse_size(value: object, field: str | None = "size") -> int:
    """Bytes from ``value``: an int, ``"1048576"``, ``"64Mi"``, ``"64MiB"``, ``"64m"``, ``"1g"``, ``"1.5Gi"``.

    Every suffix is binary (``k`` = 1024), as docker and runc read ``-m 64m``. ``"unlimited"``,
    ``"max"`` and ``-1`` give :data:`UNLIMITED`.

    Raises:
        ValueError: naming ``field`` (unless None) for a negative, fractional-byte or unparsable value.
    """
    if isinstance(value, bool):
        raise _bad(field, f"{value!r} is not a size (give bytes or e.g. 64Mi)")
    if isinstance(value, int):
        if value == UNLIMITED:
            return UNLIMITED
        if value < 0:
            raise _bad(field, f"{value} is negative (use -1 or \"unlimited\" for no limit)")
        return value
    if not isinstance(value, str):
        raise _bad(field, f"{value!r} is not a size (give bytes or e.g. 64Mi)")
    text = value.strip()
    if text.lower() in ("unlimited", "max", "-1"):
        return UNLIMITED
    match = _SIZE.match(text)
    if not match:
        raise _bad(field, f"{value!r} is not a size (give bytes, 64Mi, 1Gi, 64m or \"unlimited\")")
    number, unit = match.groups()
    mult = _MULTIPLIERS[(unit or "").lower()]
    size = float(number) * mult if "." in number else int(number) * mult
    if size != int(size):
        raise _bad(field, f"{value!r} is not a whole number of bytes")
    return int(size)


def format_size(value: int | None) -> str:
    """``67108864`` → ``"64Mi"``; -1 → ``"unlimited"``; None → ``"unset"``; exact IEC units only."""
    if value is None:
        return "unset"
    if value == UNLIMITED:
        return "unlimited"
    for unit in ("Pi", "Ti", "Gi", "Mi", "Ki"):
        mult = _MULTIPLIERS[unit[0].lower()]
        if value and value % mult == 0:
            return f"{value // mult}{unit}"
    return str(value)


def parse_time(text: object) -> float | None:
    """Seconds since the epoch of an RFC 3339 UTC time (``2024-05-01T10:00:00.123456789Z``); None if unreadable."""
    if not isinstance(text, str) or not text.endswith("Z"):
        return None
    head, _, frac = text[:-1].partition(".")
    try:
        whole = calendar.timegm(time.strptime(head, "%Y-%m-%dT%H:%M:%S"))
        return whole + (float("0." + frac) if frac else 0.0)
    except ValueError:
        return None


def format_time(epoch: float | None) -> str | None:
    """RFC 3339 UTC with milliseconds (``2024-05-01T10:00:00.500Z``) of an epoch time; None stays None."""
    if epoch is None:
        return None
    ms = int(round(epoch * 1000))
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms // 1000)) + f".{ms % 1000:03d}Z"


_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)")
_DURATION_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(value: object, field: str | None = "duration") -> float:
    """Seconds (float ≥ 0) of a duration as compose and Go write it: a number of seconds (``2``,
    ``0.5``) or units ``ms``, ``s``, ``m``, ``h``, alone or in sequence (``500ms``, ``1m30s``).

    Raises:
        ValueError: anything else (a bool, a negative number, ``2 s``, ``1d``), naming ``field``.
    """
    if isinstance(value, bool):
        raise _bad(field, f"expected a duration (2s, 500ms, 1m30s or seconds), got {value!r}")
    if isinstance(value, (int, float)):
        seconds = float(value)
    elif isinstance(value, str) and (value == "0" or value and not _DURATION_PART.sub("", value)):
        seconds = float(sum(float(n) * _DURATION_SECONDS[u] for n, u in _DURATION_PART.findall(value)))  # "0": 0.0
    else:
        raise _bad(field, f"{value!r} is not a duration (2s, 500ms, 1m30s or seconds)")
    if not seconds >= 0 or seconds == float("inf"):
        raise _bad(field, f"{value!r} is not a duration (2s, 500ms, 1m30s or seconds)")
    return seconds


def format_duration(seconds: float) -> str:
    """The short form of a duration in seconds: ``500ms``, ``2s``, ``1.5s``, ``1m30s``, ``2h``."""
    if seconds < 1 and seconds != 0:
        return f"{round(seconds * 1000):d}ms"
    if seconds < 60 or seconds % 1:
        return f"{seconds:g}s"
    whole = int(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return "".join(f"{n}{u}" for n, u in ((hours, "h"), (minutes, "m"), (secs, "s")) if n) or "0s"
