"""Sizes as users type them: bytes, IEC suffixes (``64Mi``) and runc/docker's ``64m``/``1g``.

Stdlib only: the CLI, the reconciler and the runtime's spec conversion all use it.
"""

from __future__ import annotations

import re

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
