"""The containers table's columns. Pure, no Textual."""

from __future__ import annotations

from dataclasses import dataclass


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
    # listed last (sort picker, help); the table shows it after STATUS (HEALTH_AFTER)
    Column("health", "HEALTH", 13, "its health check, when its spec declares one: starting, healthy, "
                                   "unhealthy (n failed in a row); ? after it: nobody probes it now (no "
                                   "supervisor runs); shown once a container declares a check"),
)
HEALTH_AFTER = "status"
"""The column the HEALTH column follows in the table, once a container declares a check."""
COLUMN_KEYS = tuple(c.key for c in COLUMNS)
SORTABLE = tuple(c.key for c in COLUMNS if c.key != "mark")
