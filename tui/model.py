"""The TUI's model: plain Python, no Textual import (the widgets only render what it computes).

Data flows one way, once per tick:

    backend.sample()  ──►  [Reading]  ──►  Model.update()  ──►  Snapshot (immutable)  ──►  widgets

* :class:`Reading`: one container's raw counters as read in one pass of its cgroup files
  (CPU ns, bytes, counts, epoch seconds), plus its status; produced by a backend.
* :class:`Model`: keeps the previous reading of each container (rates come from counter deltas
  over the elapsed time), a bounded :class:`~tui.history.History` ring per container (kept across
  screens, dropped when the container goes), and turns status changes into
  :class:`~tui.timeline.Event` objects.
* :class:`Snapshot`: what the UI shows: one :class:`Row` per container with its cells already
  formatted and its sort keys, the desired-state view (:class:`~tui.desired.DesiredView`: drift
  per container), the history and processes of the focused container, the new events.

The rest of the model, all pure, one job per module: :mod:`tui.columns` (the table's columns),
:mod:`tui.numbers` (counter deltas, rates, number formats: :func:`~tui.numbers.fmt_bytes`…),
:mod:`tui.history`, :mod:`tui.timeline` (events), :mod:`tui.desired` (drift as the reconciler
classifies it, as ``dct status``; the field-level spec diff; plan grouping), :mod:`tui.processes`
(the process tree), :mod:`tui.filters` (the log filter with context lines, the row filter) and
:mod:`tui.logs` (the log buffer). Units: CPU time in ns, memory and IO in bytes, rates per second,
times in seconds (``wall`` = epoch, ``now`` = a monotonic clock).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING

from declarative_ct.runtime.state import Status, allowed_ops

from .desired import DesiredEntry, DesiredView
from .health import health_cell, health_events, health_sort
from .history import HISTORY_LEN, History
from .numbers import _fmt_count, fmt_bytes, fmt_cores, fmt_duration, fmt_pct, fmt_used_limit, rate
from .processes import ProcInfo, process_tree
from .timeline import Event, journal_event

if TYPE_CHECKING:
    from declarative_ct.health.check import HealthCheck

STATUSES = ("created", "running", "pausing", "paused", "stopped", "unknown")


# -- inputs ------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Reading:
    """One container's raw state at one instant (all counters cumulative; None = not available).

    ``cpu_ns``: CPU time used (ns); ``throttled_periods``/``throttled_ns``: CFS periods throttled
    and time throttled; ``cpu_limit``: cores allowed (quota/period, else cpuset size, else None =
    the host's CPUs); ``mem_usage``/``mem_limit`` bytes (limit None = unlimited), ``mem_cache``
    bytes of page cache; ``pids``/``pids_limit`` tasks; ``io_read``/``io_write`` bytes;
    ``net_rx``/``net_tx`` bytes over every interface (None: no interface); ``oom_kills``:
    processes killed by the OOM killer; ``started``: epoch seconds of its creation;
    ``exit_code``: of a stopped container, when recorded; ``at``: when its counters were read
    (monotonic seconds; None: at the end of the pass), the time its rates are computed over;
    ``health``: its health view (:mod:`declarative_ct.health.view`: status, streak, check, last
    results, stale) and ``health_check`` the check shown (the desired spec's, else the last
    probe's, else the created one's: ``view.shown_check``), both None without a check.
    """

    id: str
    status: str
    pid: int | None = None
    started: float | None = None
    owned: bool = False
    cpu_ns: int | None = None
    throttled_periods: int | None = None
    throttled_ns: int | None = None
    periods: int | None = None
    cpu_limit: float | None = None
    mem_usage: int | None = None
    mem_limit: int | None = None
    mem_cache: int | None = None
    pids: int | None = None
    pids_limit: int | None = None
    io_read: int | None = None
    io_write: int | None = None
    net_rx: int | None = None
    net_tx: int | None = None
    oom_kills: int | None = None
    exit_code: int | None = None
    exit_signal: int | None = None
    oom_killed: bool = False
    at: float | None = None
    health: Mapping | None = None
    health_check: HealthCheck | None = None


# -- rows and snapshots ------------------------------------------------------------------------

@dataclass(frozen=True)
class Rates:
    """What the deltas since the previous reading give: ``cpu`` cores, the rest bytes per second."""

    cpu: float | None = None
    io_read: float | None = None
    io_write: float | None = None
    net_rx: float | None = None
    net_tx: float | None = None


@dataclass(frozen=True)
class Row:
    """One container as the table shows it: ``cells`` (column key → text) and ``sort`` (column
    key → sort key; unknown values sort last), with the reading, rates and drift behind them."""

    id: str
    status: str
    cells: Mapping[str, str]
    sort: Mapping[str, tuple]
    reading: Reading | None
    rates: Rates
    drift: str | None = None
    cpu_limit_pct: float | None = None

    @property
    def health_status(self) -> str | None:
        """``starting``, ``healthy``, ``unhealthy``; None without a declared check."""
        health = self.reading.health if self.reading is not None else None
        return health["status"] if health else None


@dataclass(frozen=True)
class Snapshot:
    """Everything one tick produced, immutable: handed from the collector thread to the UI.

    ``rows`` by id in id order; ``history`` and ``processes`` only for the focused container
    (``focus``); ``events``: the new ones since the previous snapshot; ``self_cpu`` the TUI's own
    CPU (% of one core) and ``self_rss`` (bytes); ``errors``: problems of this tick (not fatal);
    ``notices``: conditions worth a line on screen that are not errors (no state root yet).
    """

    wall: float
    rows: tuple[Row, ...]
    by_id: Mapping[str, Row]
    desired: DesiredView | None = None
    focus: str | None = None
    history: Mapping[str, tuple[float, ...]] | None = None
    processes: tuple[tuple[int, ProcInfo], ...] | None = None
    events: tuple[Event, ...] = ()
    self_cpu: float | None = None
    self_rss: int | None = None
    host_cpus: int = 1
    errors: tuple[str, ...] = ()
    specs_given: bool = False
    notices: tuple[str, ...] = ()

    def counts(self) -> dict[str, int]:
        """Rows per status."""
        out: dict[str, int] = {}
        for r in self.rows:
            out[r.status] = out.get(r.status, 0) + 1
        return out

    def unhealthy(self) -> int:
        """Rows whose health check fails (``unhealthy``)."""
        return sum(1 for r in self.rows if r.health_status == "unhealthy")

    def health_shown(self) -> bool:
        """Whether any container declares a health check (the HEALTH column is worth its width)."""
        return any(r.reading is not None and r.reading.health is not None for r in self.rows)


def _key(value: float | str | None) -> tuple:
    """A sort key placing unknown values last: ``(0, value)`` or ``(1, 0)``."""
    return (1, 0) if value is None else (0, value)


def ops(status: str | None) -> frozenset[str]:
    """The runtime's operations (``start``, ``exec``, ``signal``, ``pause``, ``resume``, ``set``,
    ``destroy``) allowed in a snapshot's status word; none for ``absent``, ``unknown`` or None."""
    try:
        return allowed_ops(Status(status))
    except ValueError:
        return frozenset()


def is_live(status: str | None) -> bool:
    """Whether the status has an init (created, running, pausing, paused): one it can signal."""
    return "signal" in ops(status)


_STATUS_ORDER = {s: i for i, s in enumerate(("running", "pausing", "paused", "created", "stopped", "absent"))}


class Model:
    """Turns successive readings into snapshots (not thread-safe: one collector thread owns it).

    Args:
        host_cpus: the host's CPU count (the CPU limit of a container without quota or cpuset).
        history_len: samples per metric and container.
    """

    def __init__(self, host_cpus: int = 1, history_len: int = HISTORY_LEN) -> None:
        self.host_cpus = max(1, host_cpus)
        self.history_len = history_len
        self._prev: dict[str, tuple[float, Reading]] = {}
        self._rates: dict[str, Rates] = {}
        self._row_cache: dict[str, tuple[Reading, DesiredEntry | None, Row]] = {}
        self._history: dict[str, History] = {}
        self._ticks = 0

    def history(self, container_id: str) -> Mapping[str, tuple[float, ...]] | None:
        """The history of one container (a copy), or None if it has none."""
        h = self._history.get(container_id)
        return h.view() if h is not None else None

    def update(self, readings: Iterable[Reading], now: float, wall: float, desired: DesiredView | None = None,
               focus: str | None = None, processes: Sequence[ProcInfo] | None = None,
               journal: Iterable[Mapping] = (), self_cpu: float | None = None, self_rss: int | None = None,
               errors: Iterable[str] = (), specs_given: bool = False, notices: Iterable[str] = ()) -> Snapshot:
        """One tick: rates against the previous readings, history appended, rows formatted.

        ``now``: monotonic seconds, the end of the pass; a rate's elapsed time is between the two
        readings' own ``at`` (``now`` for a reading without one), never the nominal refresh
        interval; ``wall``: epoch seconds (uptime, event times). A container missing from
        ``readings`` (destroyed, or vanished while being read) loses its row, previous reading and
        history. A reading that is the very object of the previous tick (not read again: off
        screen) keeps its rates. ``journal``: new lines of the reconciler's journal (dicts),
        turned into events; ``notices``: see :class:`Snapshot`.
        """
        events: list[Event] = []
        rows: dict[str, Row] = {}
        seen = set()
        for r in readings:
            seen.add(r.id)
            prev = self._prev.get(r.id)
            if prev is not None and prev[1] is r:  # not read again this tick (off screen): as it was
                rates = self._rates.get(r.id) or Rates()
            else:
                at = now if r.at is None else r.at
                rates = self._rates[r.id] = self._rate(prev, r, at)
                self._prev[r.id] = (at, r)
            hist = self._history.get(r.id)
            if hist is None:
                hist = self._history[r.id] = History(self.history_len)
            hist.append({"cpu": rates.cpu, "mem": r.mem_usage, "pids": r.pids, "io_read": rates.io_read,
                         "io_write": rates.io_write, "net_rx": rates.net_rx, "net_tx": rates.net_tx})
            if self._ticks and (prev is None or prev[1] is not r):
                events.extend(_transition(prev[1] if prev else None, r, wall))
            entry = desired.entries.get(r.id) if desired is not None else None
            cached = self._row_cache.get(r.id)
            if (cached is not None and cached[0] is r and cached[1] is entry
                    and cached[2].cells["uptime"] == fmt_duration(_uptime(r, wall))):
                rows[r.id] = cached[2]  # nothing it shows changed: the same Row (the UI skips it)
            else:
                rows[r.id] = self._row(r, rates, entry, wall)
                self._row_cache[r.id] = (r, entry, rows[r.id])
        for gone in set(self._prev) - seen:
            old = self._prev.pop(gone)[1]
            self._history.pop(gone, None)
            self._rates.pop(gone, None)
            self._row_cache.pop(gone, None)
            if self._ticks:
                events.append(Event(wall, gone, "status", f"removed (was {old.status})"))
        if desired is not None:
            for name, entry in desired.entries.items():
                if name not in rows and entry.drift == "missing":
                    rows[name] = self._row(None, Rates(), entry, wall, name=name)
        for line in journal:
            events.append(journal_event(line, wall))
        self._ticks += 1
        ordered = tuple(rows[k] for k in sorted(rows))
        hist = self._history.get(focus) if focus else None
        return Snapshot(
            wall=wall, rows=ordered, by_id=MappingProxyType(rows), desired=desired, focus=focus,
            history=hist.view() if hist is not None else None,
            processes=tuple(process_tree(processes)) if processes is not None else None,
            events=tuple(events), self_cpu=self_cpu, self_rss=self_rss, host_cpus=self.host_cpus,
            errors=tuple(errors), specs_given=specs_given, notices=tuple(notices))

    @staticmethod
    def _rate(prev: tuple[float, Reading] | None, r: Reading, now: float) -> Rates:
        if prev is None:
            return Rates()
        t0, p = prev
        if p.started != r.started:  # a new run under the same name: its counters started over
            return Rates()
        dt = now - t0
        cpu = rate(p.cpu_ns, r.cpu_ns, dt)
        return Rates(cpu=None if cpu is None else cpu / 1e9, io_read=rate(p.io_read, r.io_read, dt),
                     io_write=rate(p.io_write, r.io_write, dt), net_rx=rate(p.net_rx, r.net_rx, dt),
                     net_tx=rate(p.net_tx, r.net_tx, dt))

    def _row(self, r: Reading | None, rates: Rates, entry: DesiredEntry | None, wall: float,
             name: str = "") -> Row:
        cid = r.id if r is not None else name
        status = r.status if r is not None else "absent"
        live = is_live(status)
        limit = (r.cpu_limit or float(self.host_cpus)) if r is not None else None
        cpu_pct = rates.cpu / limit * 100 if rates.cpu is not None and limit else None
        uptime = _uptime(r, wall)
        net_known = r is not None and r.net_rx is not None
        restarts = entry.restarts if entry is not None else None
        drift = entry.drift if entry is not None else None
        status_text = status
        if r is not None and status == "stopped" and r.exit_code is not None:
            reason = "oom" if r.oom_killed else _signal_name(r.exit_signal)
            status_text = f"exit {r.exit_code}" + (f" {reason}" if reason else "")
        cells = {
            "mark": "",
            "name": cid,
            "status": status_text,
            "pid": str(r.pid) if r is not None and r.pid and live else "-",
            "cpu": fmt_cores(rates.cpu) if live else "-",
            "cpu_limit": fmt_pct(cpu_pct) if live else "-",
            "mem": fmt_used_limit(r.mem_usage, r.mem_limit) if r is not None and live else "-",
            "pids": fmt_used_limit(r.pids, r.pids_limit, _fmt_count) if r is not None and live else "-",
            "net": (f"{fmt_bytes(rates.net_rx)}/{fmt_bytes(rates.net_tx)}" if net_known and live else "-"),
            "uptime": fmt_duration(uptime),
            "restarts": "-" if restarts is None else str(restarts),
            "drift": _drift_text(drift, entry, wall),
            "health": health_cell(r.health if r is not None else None),
        }
        mem_sort = r.mem_usage if r is not None and live else None
        sort = {
            "mark": (0, 0),
            "name": (0, cid),
            "status": (0, _STATUS_ORDER.get(status, 9), cid),
            "pid": _key(r.pid if r is not None and live else None),
            "cpu": _key(rates.cpu if live else None),
            "cpu_limit": _key(cpu_pct if live else None),
            "mem": _key(mem_sort),
            "pids": _key(r.pids if r is not None and live else None),
            "net": _key((rates.net_rx or 0) + (rates.net_tx or 0) if net_known and live else None),
            "uptime": _key(uptime),
            "restarts": _key(restarts),
            "drift": _key(drift),
            "health": health_sort(r.health if r is not None else None),
        }
        return Row(cid, status, MappingProxyType(cells), MappingProxyType(sort), r, rates, drift, cpu_pct)


def _signal_name(number: int | None) -> str:
    """``SIGKILL`` for 9 (the signal that ended a run, from its exit record); ``""`` for none."""
    from declarative_ct.reconcile.restart import exit_reason

    return exit_reason({"signal": number}) if number else ""


def _uptime(r: Reading | None, wall: float) -> float | None:
    """Seconds since a live container was created (None: stopped, absent or unknown)."""
    if r is None or r.started is None or not is_live(r.status):
        return None
    return wall - r.started


def _transition(prev: Reading | None, r: Reading, wall: float) -> list[Event]:
    return _status_transition(prev, r, wall) + health_events(prev, r, wall)


def _status_transition(prev: Reading | None, r: Reading, wall: float) -> list[Event]:
    if prev is None:
        return [Event(wall, r.id, "status", f"appeared ({r.status})")]
    if prev.started != r.started and r.started is not None:
        return [Event(wall, r.id, "status", f"new run ({r.status})")]
    if prev.status == r.status:
        if prev.oom_kills is not None and r.oom_kills is not None and r.oom_kills > prev.oom_kills:
            return [Event(wall, r.id, "status", f"OOM killer: {r.oom_kills - prev.oom_kills} process(es) killed",
                          "warning")]
        return []
    text = f"{prev.status} → {r.status}"
    level = "info"
    if r.status == "stopped" and r.exit_code is not None:
        reason = "OOM-killed" if r.oom_killed else _signal_name(r.exit_signal)
        text += f" (exit {r.exit_code}{', ' + reason if reason else ''})"
        level = "warning" if r.exit_code != 0 else "info"
    return [Event(wall, r.id, "status", text, level)]


def _drift_text(drift: str | None, entry: DesiredEntry | None, wall: float) -> str:
    """The DRIFT cell: the drift, with the seconds to the next restart while a backoff runs (``backoff 4s``)."""
    if drift == "backoff" and entry is not None and entry.next_restart is not None:
        return f"backoff {max(0.0, entry.next_restart - wall):.0f}s"
    return drift or "-"
