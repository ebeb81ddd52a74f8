"""The TUI's model: plain Python, no Textual import (the widgets only render what it computes).

Data flows one way, once per tick:

    backend.sample()  ──►  [Reading]  ──►  Model.update()  ──►  Snapshot (immutable)  ──►  widgets

* :class:`Reading`: one container's raw counters as read in one pass of its cgroup files
  (CPU ns, bytes, counts, epoch seconds), plus its status; produced by a backend.
* :class:`Model`: keeps the previous reading of each container (rates come from counter deltas
  over the elapsed time), a bounded :class:`History` ring per container (kept across screens,
  dropped when the container goes), and turns status changes into :class:`Event`s.
* :class:`Snapshot`: what the UI shows: one :class:`Row` per container with its cells already
  formatted and its sort keys, the desired-state view (:class:`DesiredView`: drift per
  container), the history and processes of the focused container, the new events.

Also here, all pure: drift classification (:func:`classify_drift`, the reconciler's, as ``dct status``),
the field-level spec diff (:func:`spec_diff`), the process tree (:func:`process_tree`), the log
filter with context lines (:func:`filter_lines`), plan grouping (:func:`group_actions`) and the
number formats (:func:`fmt_bytes`…). Units: CPU time in ns, memory and IO in bytes, rates per
second, times in seconds (``wall`` = epoch, ``now`` = a monotonic clock).
"""

from __future__ import annotations

import heapq
import re
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType

from declarative_ct.reconcile.drift import classify_drift
from declarative_ct.runtime.state import Status, allowed_ops

HISTORY_LEN = 120
"""Samples kept per metric and container (2 minutes at the default 1 s refresh)."""

EVENTS_LEN = 2000
"""Events kept by an :class:`EventLog`."""

STATUSES = ("created", "running", "pausing", "paused", "stopped", "unknown")
DRIFTS = ("in-sync", "drifted", "missing", "unmanaged", "undeclared", "exited", "backoff", "unknown")
ACTION_KINDS = ("create", "recreate", "live", "lifecycle", "signal", "destroy", "prune")
"""The reconciler's action classes (``declarative_ct.reconcile.plan.KINDS``), in display order."""


@dataclass(frozen=True)
class Column:
    """A column of the containers table: ``key`` (DataTable column key), header ``label``, cell ``width``."""

    key: str
    label: str
    width: int
    help: str


COLUMNS: tuple[Column, ...] = (
    Column("mark", "", 1, "* marks a container chosen with space (actions apply to every marked one)"),
    Column("name", "NAME", 14, "the container id"),
    Column("status", "STATUS", 8, "created, running, pausing, paused, stopped (absent: declared, not created; "
                                  "unknown: its state.json cannot be read)"),
    Column("pid", "PID", 7, "host PID of the container's init"),
    Column("cpu", "CPU", 5, "CPU used, in cores (1.00 = one core busy), over the last refresh"),
    Column("cpu_limit", "CPU/L", 5, "CPU as % of the container's limit: its quota (cpus), else its cpuset, "
                                    "else every CPU of the host"),
    Column("mem", "MEM/LIMIT", 13, "memory used (page cache included, as the cgroup counts it) / its limit "
                                   "(- : none)"),
    Column("pids", "PIDS", 7, "tasks (threads included) / pids limit"),
    Column("net", "NET RX/TX", 13, "network receive / transmit per second (- : no interface to count)"),
    Column("uptime", "UP", 7, "time since the container was created"),
    Column("restarts", "RST", 3, "restarts by the reconciler's restart policy (since its count was last reset)"),
    Column("drift", "DRIFT", 10, "desired vs observed, when specs were given: in-sync, drifted, missing, "
                                 "unmanaged, undeclared, exited, backoff, unknown (state unreadable)"),
)
COLUMN_KEYS = tuple(c.key for c in COLUMNS)
SORTABLE = tuple(c.key for c in COLUMNS if c.key != "mark")


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
    (monotonic seconds; None: at the end of the pass), the time its rates are computed over.
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


@dataclass(frozen=True, slots=True)
class ProcInfo:
    """One process of a container (psutil): ``cpu_pct`` is % of one core since the previous read,
    ``rss`` bytes, ``create_time`` epoch seconds (with ``pid``, identifies the process)."""

    pid: int
    ppid: int
    user: str
    cpu_pct: float | None
    rss: int | None
    threads: int | None
    state: str
    cmdline: str
    create_time: float = 0.0


@dataclass(frozen=True)
class DesiredEntry:
    """The desired-state side of one container name (from the specs and the plan).

    ``drift``: see :func:`classify_drift`; ``cause``: the plan's cause (or the restart policy's
    note); ``action``: the plan's action class for it (None: nothing to do); ``desired``: the
    normalized spec (None: not declared); ``applied``: the normalized spec it was created with
    (``dct.spec`` label; {} when not ours); ``observed_resources``: libcontainer resource fields
    in force; ``live_changes``: ``{field: value}`` the plan would write live; ``source``/``line``:
    where the spec is (or, for an undeclared container, the file it came from).
    """

    name: str
    drift: str
    desired_state: str | None = None
    cause: str = ""
    action: str | None = None
    steps: tuple[str, ...] = ()
    desired: Mapping | None = None
    applied: Mapping = field(default_factory=dict)
    observed_resources: Mapping = field(default_factory=dict)
    live_changes: Mapping = field(default_factory=dict)
    source: str = ""
    line: int = 0
    restarts: int | None = None
    next_restart: float | None = None


@dataclass(frozen=True)
class DesiredView:
    """Drift of every container name (declared or observed), the plan's notes and any spec errors."""

    entries: Mapping[str, DesiredEntry] = field(default_factory=dict)
    notes: tuple[str, ...] = ()
    errors: tuple[str, ...] = ()


@dataclass(frozen=True)
class PlanView:
    """A plan as the plan modal shows it: ``actions`` as ``Action.to_dict()`` dicts
    (``container``, ``class``, ``cause``, ``steps``, ``resources``), notes, errors, the
    observed-state ``fingerprint`` it was made from, and whether prune was on."""

    actions: tuple[Mapping, ...] = ()
    notes: tuple[str, ...] = ()
    errors: tuple[str, ...] = ()
    fingerprint: str = ""
    prune: bool = False


@dataclass(frozen=True)
class Event:
    """One line of the event timeline: ``time`` epoch seconds, ``container`` ('' = global),
    ``source`` (``status``: a transition seen; ``journal``: the reconciler's journal; ``action``:
    something done from the TUI; ``apply``: a plan applied from the TUI), ``level`` info/warning/error."""

    time: float
    container: str
    source: str
    text: str
    level: str = "info"


# -- numbers -----------------------------------------------------------------------------------

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


# -- history -----------------------------------------------------------------------------------

METRICS = ("cpu", "mem", "pids", "io_read", "io_write", "net_rx", "net_tx")
"""History series: cpu (cores), mem (bytes), pids (tasks), io_* and net_* (bytes per second)."""


class History:
    """A bounded ring of samples per metric (:data:`METRICS`) for one container; O(1) per append."""

    def __init__(self, maxlen: int = HISTORY_LEN) -> None:
        self.series: dict[str, deque[float]] = {m: deque(maxlen=maxlen) for m in METRICS}

    def append(self, values: Mapping[str, float | None]) -> None:
        """One sample per metric; an unknown value (None) is stored as 0.0, keeping the series aligned."""
        for metric, ring in self.series.items():
            v = values.get(metric)
            ring.append(0.0 if v is None else float(v))

    def view(self) -> Mapping[str, tuple[float, ...]]:
        """An immutable copy: ``{metric: (oldest … newest)}``."""
        return MappingProxyType({m: tuple(r) for m, r in self.series.items()})


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
            status_text = f"exit {r.exit_code}" + (" oom" if r.oom_killed else "")
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
            "drift": drift or "-",
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
        }
        return Row(cid, status, MappingProxyType(cells), MappingProxyType(sort), r, rates, drift, cpu_pct)


def _uptime(r: Reading | None, wall: float) -> float | None:
    """Seconds since a live container was created (None: stopped, absent or unknown)."""
    if r is None or r.started is None or not is_live(r.status):
        return None
    return wall - r.started


def _transition(prev: Reading | None, r: Reading, wall: float) -> list[Event]:
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
        text += f" (exit {r.exit_code}{', OOM-killed' if r.oom_killed else ''})"
        level = "warning" if r.exit_code != 0 else "info"
    return [Event(wall, r.id, "status", text, level)]


def journal_event(entry: Mapping, default_time: float) -> Event:
    """An :class:`Event` from one ``#journal.jsonl`` object (``time``, ``container``, ``class``,
    ``cause``, ``steps``, ``result``, ``error``)."""
    from declarative_ct.reconcile.restart import parse_time

    t = parse_time(entry.get("time")) or default_time
    result = str(entry.get("result", ""))
    text = f"{entry.get('class', '?')} ({entry.get('cause', '')}): {result}"
    if entry.get("error"):
        text += f": {entry['error']}"
    level = "error" if result == "failed" else "warning" if result == "skipped" else "info"
    return Event(t, str(entry.get("container", "")), "journal", text, level)


class EventLog:
    """The event timeline, bounded (:data:`EVENTS_LEN`); newest last. Owned by the UI thread."""

    def __init__(self, maxlen: int = EVENTS_LEN) -> None:
        self._events: deque[Event] = deque(maxlen=maxlen)

    def extend(self, events: Iterable[Event]) -> None:
        self._events.extend(events)

    def add(self, event: Event) -> None:
        self._events.append(event)

    def __len__(self) -> int:
        return len(self._events)

    def for_container(self, container_id: str | None = None) -> list[Event]:
        """Every event, or those of one container (global ones, such as an apply's summary, excluded)."""
        if container_id is None:
            return list(self._events)
        return [e for e in self._events if e.container == container_id]


def fmt_event(e: Event, with_container: bool = True) -> str:
    """``HH:MM:SS name  [source] text`` in local time."""
    import time as _time

    stamp = _time.strftime("%H:%M:%S", _time.localtime(e.time))
    who = f"{e.container:<16} " if with_container else ""
    return f"{stamp} {who}[{e.source}] {e.text}"


# -- drift, diff, plan -------------------------------------------------------------------------

@dataclass(frozen=True)
class DiffLine:
    """One field that differs: dotted ``field``, ``observed`` and ``desired`` values (as text), and
    what the reconciler does about it (``klass``: recreate, live, lifecycle, create, none)."""

    field: str
    observed: str
    desired: str
    klass: str


def _flatten(value: object, prefix: str, depth: int, out: dict[str, object]) -> None:
    if isinstance(value, Mapping) and depth > 0 and value:
        for k in value:
            _flatten(value[k], f"{prefix}.{k}" if prefix else str(k), depth - 1, out)
    else:
        out[prefix] = value


def _show(value: object) -> str:
    import json

    if value is None:
        return "(unset)"
    if isinstance(value, str):
        return value
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def _show_resource(name: str, value: object) -> str:
    """A libcontainer resource value as the spec writes it: sizes in IEC units, -1 as unlimited."""
    from declarative_ct.units import UNLIMITED, format_size

    if isinstance(value, int) and name.startswith("memory"):
        return format_size(value)
    if value == UNLIMITED:
        return "unlimited"
    return _show(value)


def spec_diff(entry: DesiredEntry | None, observed_status: str | None) -> list[DiffLine]:
    """Field-level differences, desired (the spec now) vs observed (what the container was created
    with, its live resources, its status), each with the reconciler's class for it.

    Immutable fields (``declarative_ct.reconcile.convert.MUTABLE_FIELDS`` excluded) compare the
    applied spec with the desired one (``recreate``); resources come from the plan's live changes
    (observed value → desired, ``live``); ``state`` compares with the observed status
    (``lifecycle``); other mutable fields (restart, stop_signal…) change nothing (``none``).
    """
    from declarative_ct.reconcile.convert import MUTABLE_FIELDS

    if entry is None or entry.desired is None:
        return []
    desired = entry.desired
    if observed_status is None or entry.drift == "missing":
        return [DiffLine("container", "(absent)", f"state: {desired.get('state', 'running')}", "create")]
    out: list[DiffLine] = []
    applied = entry.applied or {}
    flat_a: dict[str, object] = {}
    flat_d: dict[str, object] = {}
    _flatten({k: v for k, v in applied.items() if k not in ("resources", "state")}, "", 2, flat_a)
    _flatten({k: v for k, v in desired.items() if k not in ("resources", "state")}, "", 2, flat_d)
    for key in sorted(set(flat_a) | set(flat_d)):
        a, d = flat_a.get(key), flat_d.get(key)
        if a == d:
            continue
        top = key.split(".", 1)[0]
        out.append(DiffLine(key, _show(a), _show(d), "none" if top in MUTABLE_FIELDS else "recreate"))
    for name, value in entry.live_changes.items():
        out.append(DiffLine(f"resources.{name}", _show_resource(name, entry.observed_resources.get(name)),
                            _show_resource(name, value), "live"))
    want = desired.get("state")
    have = "paused" if observed_status == "pausing" else observed_status
    if want and want != have and not (want == "stopped" and have == "created"):
        out.append(DiffLine("state", have or "(absent)", str(want), "lifecycle"))
    return out


def group_actions(actions: Iterable[Mapping]) -> list[tuple[str, list[Mapping]]]:
    """Plan actions (``Action.to_dict()``) grouped by class, in :data:`ACTION_KINDS` order, each
    group sorted by container; unknown classes last."""
    groups: dict[str, list[Mapping]] = {}
    for a in actions:
        groups.setdefault(str(a.get("class")), []).append(a)
    order = list(ACTION_KINDS) + sorted(k for k in groups if k not in ACTION_KINDS)
    return [(k, sorted(groups[k], key=lambda a: str(a.get("container")))) for k in order if k in groups]


# -- processes ---------------------------------------------------------------------------------

def process_tree(procs: Iterable[ProcInfo]) -> list[tuple[int, ProcInfo]]:
    """``[(depth, proc)]`` in tree order: each process after its parent (within the set), children
    by PID; a process whose parent is outside the set (init, or an orphan) is a root."""
    procs = list(procs)
    by_pid = {p.pid: p for p in procs}
    children: dict[int, list[ProcInfo]] = {}
    roots = []
    for p in procs:
        if p.ppid in by_pid and p.ppid != p.pid:
            children.setdefault(p.ppid, []).append(p)
        else:
            roots.append(p)
    out: list[tuple[int, ProcInfo]] = []
    seen: set[int] = set()

    def walk(p: ProcInfo, depth: int) -> None:
        if p.pid in seen:  # a cycle cannot happen in /proc, but a torn read could fake one
            return
        seen.add(p.pid)
        out.append((depth, p))
        for c in sorted(children.get(p.pid, ()), key=lambda c: c.pid):
            walk(c, depth + 1)

    for p in sorted(roots, key=lambda p: p.pid):
        walk(p, 0)
    for p in sorted(procs, key=lambda p: p.pid):  # anything a torn read left out of the tree
        if p.pid not in seen:
            walk(p, 0)
    return out


def tree_label(depth: int, text: str) -> str:
    """``text`` indented for its depth in the tree (``└ `` before a child)."""
    return text if depth == 0 else "  " * (depth - 1) + "└ " + text


# -- filters -----------------------------------------------------------------------------------

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
    """The containers filter: ``pattern`` (:func:`compile_filter`) found in the name, status or
    drift; a leading ``!`` inverts it."""
    invert = pattern.startswith("!")
    rx = compile_filter(pattern[1:] if invert else pattern)
    if rx is None:
        return True
    hit = bool(rx.search(row.id) or rx.search(row.cells.get("status", "")) or (row.drift and rx.search(row.drift)))
    return hit != invert


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
