"""Health in the TUI, pure (no Textual): the HEALTH cell and its sort key, events when a
container's health changes, and the container screen's probe history.

The data is a container's health view (:mod:`declarative_ct.health.view`, the object
``dct status --json`` prints): ``status``, ``failing_streak``, ``since``, ``check``, ``log`` (the
last results, oldest first: ``start``, ``end``, ``exit_code``, ``output``) and ``stale``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from declarative_ct.health import record as health_record
from declarative_ct.health.view import ago as _ago
from declarative_ct.health.view import cell as _cell
from declarative_ct.health.view import last_seen
from declarative_ct.units import format_duration, parse_time

from .timeline import Event

if TYPE_CHECKING:
    from declarative_ct.health.check import HealthCheck

    from .model import Reading

HEALTH_ORDER = {"unhealthy": 0, "starting": 1, "healthy": 2}
"""Sort order of the HEALTH column: the failing ones first."""


def health_cell(health: Mapping | None) -> str:
    """``healthy``, ``unhealthy (3)`` (the failing streak), ``starting``; ``?`` after it when nobody
    probes it now; ``-`` when the container declares no check."""
    return _cell(dict(health) if health else None)


def health_sort(health: Mapping | None) -> tuple:
    """The HEALTH column's sort key: unhealthy, starting, healthy; no check last."""
    if not health:
        return (1, 0)
    return (0, HEALTH_ORDER.get(str(health.get("status")), 3), -int(health.get("failing_streak") or 0))


def health_events(prev: Reading | None, r: Reading, wall: float) -> list[Event]:
    """An event when a run's health status changes (``health: healthy → unhealthy (exit 1: …)``,
    a warning when it turns unhealthy); none for a new run or the first reading."""
    if prev is None or prev.started != r.started:
        return []
    old = prev.health["status"] if prev.health else None
    new = r.health["status"] if r.health else None
    if old == new or new is None:
        return []
    text = f"health: {old or 'none'} → {new}"
    last = health_record.last_output(r.health)
    if new == "unhealthy" and last:
        text += f" ({_one_line(last)})"
    return [Event(wall, r.id, "status", text, "warning" if new == "unhealthy" else "info")]


@dataclass(frozen=True)
class ProbeLine:
    """One result of the probe history: ``at`` (``HH:MM:SS`` UTC of its start), ``ago``
    (``12s ago``), ``took`` (its duration, ``35ms``), ``exit_code``, ``passed`` and ``output``
    (one line)."""

    at: str
    ago: str
    took: str
    exit_code: int | None
    passed: bool
    output: str


@dataclass(frozen=True)
class ProbeHistory:
    """The container screen's health tab: ``status`` (None: no check declared), ``head`` (status,
    streak and since, one line), ``check`` (the probe), ``timing`` (its schedule), ``note`` (stale,
    not probed yet) and ``lines`` newest first."""

    status: str | None
    head: str = ""
    check: str = ""
    timing: str = ""
    note: str = ""
    lines: tuple[ProbeLine, ...] = ()


def probe_history(health: Mapping | None, check: HealthCheck | None, wall: float,
                  status: str | None = None) -> ProbeHistory:
    """The probe history of a container (``health``: its view, ``check``: its declared check,
    ``status``: its status word) at epoch ``wall``."""
    if not health:
        if check is None:
            return ProbeHistory(None, note="No health check declared (the spec's health: field).")
        return ProbeHistory(None, check=check.describe(), timing=check.timing(),
                            note=f"No probe while {status or 'not running'}.")
    since = parse_time(health.get("since"))
    head = health_cell(health).rstrip("?")
    if health.get("failing_streak") and health["status"] != "unhealthy":
        head += f", {health['failing_streak']} failed in a row"
    if since is not None:
        head += f" since {_clock(since)} UTC ({_ago(wall - since)})"
    lines = []
    for e in reversed(list(health.get("log") or [])):
        start, end = parse_time(e.get("start")), parse_time(e.get("end"))
        code = e.get("exit_code")
        lines.append(ProbeLine(at=_clock(start) if start is not None else "?",
                               ago=_ago(wall - end) if end is not None else "",
                               took=format_duration(max(0.0, end - start)) if start is not None and end is not None
                               else "?", exit_code=code, passed=code == 0, output=_one_line(e.get("output", ""))))
    note = ""
    if health.get("stale"):
        note = ("Nobody probes it now (no supervisor runs, or it does not watch this spec): as of "
                + (f"{last_seen(health, wall)}." if health.get("log") else "its start, no probe yet."))
    elif not lines:
        note = "No probe yet."
    return ProbeHistory(health["status"], head=head, check=str(health.get("check") or ""),
                        timing=check.timing() if check is not None else "", note=note, lines=tuple(lines))


def _clock(epoch: float) -> str:
    import time

    return time.strftime("%H:%M:%S", time.gmtime(epoch))


def _one_line(text: object) -> str:
    """A probe's output on one line (newlines as ``⏎``, trailing space dropped)."""
    return " ⏎ ".join(part for part in str(text).strip().splitlines() if part.strip())
