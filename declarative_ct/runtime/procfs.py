"""Reading ``/proc/<pid>/stat``: the PID-reuse-safe liveness check runc calls ``hasInit``."""

from __future__ import annotations


def stat(pid: int) -> tuple[str, int] | None:
    """Return ``(state, starttime)`` from ``/proc/<pid>/stat``, or None if the process is gone.

    ``state`` is field 3 (``R``, ``S``, ``Z``…); ``starttime`` is field 22, in clock ticks since
    boot. comm (field 2) may hold spaces and parentheses, so fields are counted after the
    *last* ``)``, as runc's ``system.Stat`` and psutil do.
    """
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            raw = f.read()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    fields = raw[raw.rfind(b")") + 2:].split()
    # fields[0] is field 3 (state); field 22 is therefore fields[19].
    return fields[0].decode(), int(fields[19])


def is_alive(pid: int, start_time: int) -> bool:
    """True when ``pid`` exists, has the saved ``start_time`` and is neither zombie nor dead."""
    if pid <= 0:
        return False
    st = stat(pid)
    return st is not None and st[1] == start_time and st[0] not in ("Z", "X")
