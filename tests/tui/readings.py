"""A model :class:`~tui.model.Reading` for the TUI's model tests, with plausible defaults."""

from __future__ import annotations

from tui.model import Reading

WALL = 1_700_000_000.0  # the tests' "now" (seconds since the epoch)


def reading(cid: str = "c1", status: str = "running", cpu_ns: int = 0, started: float = WALL - 90, **kw) -> Reading:
    """One collector reading of ``cid``: 8 MiB of a 64 MiB limit, 2 pids, started 90 s before :data:`WALL`."""
    kw.setdefault("mem_usage", 8 << 20)
    kw.setdefault("mem_limit", 64 << 20)
    kw.setdefault("pids", 2)
    return Reading(cid, status, 1234, started, True, cpu_ns=cpu_ns, **kw)
