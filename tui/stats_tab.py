"""What the container screen's stats tab shows, computed without Textual: each chart's series on a
fixed time axis, the top of its scale (the container's limit), the line of figures above it."""

from __future__ import annotations

from .history import HISTORY_LEN
from .model import Row
from .numbers import fmt_bytes, fmt_cores, fmt_pct

STAT_ROWS = (("cpu", "CPU"), ("mem", "Memory"), ("pids", "PIDs"), ("io_read", "IO read"), ("io_write", "IO write"),
             ("net_rx", "Net rx"), ("net_tx", "Net tx"))


def spark_data(data: list[float], window: int = HISTORY_LEN) -> list[float | None]:
    """The series on a fixed time axis: None (drawn blank) on the left until the ring is full."""
    if not data:
        return []
    return [None] * (window - len(data)) + list(data[-window:])


def spark_top(key: str, row: Row | None, host_cpus: int) -> float | None:
    """The top of a chart's scale (its bottom is 0): the container's limit for the metric when it
    has one (CPU: its quota or cpuset, else every CPU of the host), else None (a round value above
    the series' highest, :func:`~tui.charts.nice_ceiling`)."""
    r = row.reading if row is not None else None
    if r is None:
        return None
    if key == "cpu":
        return r.cpu_limit or float(host_cpus)
    if key == "mem":
        return float(r.mem_limit) if r.mem_limit else None
    if key == "pids":
        return float(r.pids_limit) if r.pids_limit else None
    return None


def stat_labels(row: Row | None) -> dict[str, str]:
    """The line above each sparkline: value now, limit, throttling and OOM kills next to the limits."""
    r = row.reading if row is not None else None
    rates = row.rates if row is not None else None
    if r is None or rates is None:
        return {key: f"{label}: -" for key, label in STAT_ROWS}
    limit = f"{r.cpu_limit:.2f} cores" if r.cpu_limit else "every CPU (no limit)"
    throttled = ""
    if r.throttled_periods is not None and r.periods:
        throttled = (f" · throttled {r.throttled_periods} of {r.periods} periods "
                     f"({(r.throttled_ns or 0) / 1e9:.1f} s)")
    mem_pct = f" ({fmt_pct(r.mem_usage / r.mem_limit * 100)})" if r.mem_usage is not None and r.mem_limit else ""
    out = {
        "cpu": f"CPU: {fmt_cores(rates.cpu)} cores · {fmt_pct(row.cpu_limit_pct)} of limit {limit}{throttled}",
        "mem": (f"Memory: {fmt_bytes(r.mem_usage)} of {fmt_bytes(r.mem_limit) if r.mem_limit else 'no limit'}"
                f"{mem_pct} · page cache {fmt_bytes(r.mem_cache)} · OOM kills "
                f"{'-' if r.oom_kills is None else r.oom_kills}"),
        "pids": f"PIDs: {'-' if r.pids is None else r.pids} of {r.pids_limit or 'no limit'}",
        "io_read": f"IO read: {fmt_bytes(rates.io_read)}/s (total {fmt_bytes(r.io_read)})",
        "io_write": f"IO write: {fmt_bytes(rates.io_write)}/s (total {fmt_bytes(r.io_write)})",
        "net_rx": (f"Net rx: {fmt_bytes(rates.net_rx)}/s (total {fmt_bytes(r.net_rx)})" if r.net_rx is not None
                   else "Net rx: - (no network interface to count)"),
        "net_tx": (f"Net tx: {fmt_bytes(rates.net_tx)}/s (total {fmt_bytes(r.net_tx)})" if r.net_tx is not None
                   else "Net tx: -"),
    }
    return out
