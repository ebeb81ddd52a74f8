"""A container's health record: its status, failing streak and last probe results, kept in its
state directory (``<root>/<id>/health.json``), so it goes with the container (a restart under
the policy or a recreate makes a new container: it starts ``starting`` again).

The record (JSON object; times RFC 3339 UTC, :func:`~declarative_ct.units.format_time`)::

    {"status": "starting" | "healthy" | "unhealthy",
     "failing_streak": 2,          # consecutive failed results counted (not those in the start period)
     "since": "<time>",            # when status last changed
     "run": "<created>",           # the container run it belongs to (its state's created time)
     "started_at": "<time>",       # when that run started: the start period counts from here
     "check": "http GET :8080/",   # HealthCheck.describe() of the probe that made the last result
     "probe": {…},                 # that probe's normalized health (HealthCheck.to_normalized()): its timing
     "log": [{"start": "<time>", "end": "<time>", "exit_code": 0, "output": "HTTP 200 OK"}, …]}  # oldest first

Docker's ``State.Health`` (``Status``, ``FailingStreak``, ``Log``) in snake case. The rules
(:func:`add_result`): a pass makes the container healthy at once; a failure counts unless the
container is still ``starting`` within its start period; ``retries`` counted failures in a row make
it unhealthy; the last :data:`LOG_SIZE` results are kept, each output cut to :data:`OUTPUT_MAX`
characters.

Readers (``dct status``, the TUI, the Ansible modules, the planner) call :func:`read`; the prober
writes with :func:`store`, under the container's lock, never into a directory being destroyed.
"""

from __future__ import annotations

import contextlib
import os

from ..jsonfile import read_json, write_json_atomic
from ..units import format_time, parse_time
from .check import HealthCheck

RECORD_FILE = "health.json"
STARTING, HEALTHY, UNHEALTHY = "starting", "healthy", "unhealthy"
STATUSES = (STARTING, HEALTHY, UNHEALTHY)
LOG_SIZE = 5  # results kept (docker keeps 5)
OUTPUT_MAX = 1024  # characters of a probe's output kept per result


def new(run: str, started_at: float, now: float) -> dict:
    """The record of a run that no probe has answered yet: ``starting``.

    ``run``: the container state's ``created`` time (RFC 3339); ``started_at``: when the run
    started (epoch seconds; the start period counts from it); ``now``: epoch seconds.
    """
    return {"status": STARTING, "failing_streak": 0, "since": format_time(now), "run": run,
            "started_at": format_time(started_at), "check": "", "log": []}


def result(start: float, end: float, exit_code: int, output: str) -> dict:
    """One probe result as the log keeps it: times in epoch seconds; ``exit_code`` 0 is a pass
    (exec: the command's exit code; http/tcp: 0 or 1, as docker's health log has them); ``output``
    (the command's output, the HTTP status line, the error) made inert (:func:`inert`) and cut to
    :data:`OUTPUT_MAX`."""
    text = inert(output)
    text = text if len(text) <= OUTPUT_MAX else text[:OUTPUT_MAX - 1] + "…"
    return {"start": format_time(start), "end": format_time(end), "exit_code": int(exit_code), "output": text}


def inert(text: str) -> str:
    """``text`` with each character a terminal acts on written as its escape (``\\x1b``,
    ``\\u202e``): C0 and C1 controls but newline and tab, DEL, format characters (bidi overrides).
    A probe's output is the container's to choose, and ``dct watch``, ``dct apply``, ``dct status``
    and the TUI print it to the admin's terminal."""
    if text.isascii() and text.isprintable():
        return text
    return "".join(ch if ch.isprintable() or ch in "\n\t" else _escape(ord(ch)) for ch in text)


def _escape(code: int) -> str:
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def add_result(record: dict, entry: dict, check: HealthCheck) -> dict:
    """``record`` (not modified) with one more result ``entry`` (:func:`result`) applied by
    ``check``'s rules (the module doc); a new dict."""
    out = {**record, "log": [*record.get("log", []), entry][-LOG_SIZE:], "check": check.describe(),
           "probe": check.to_normalized()}
    end = parse_time(entry["end"]) or 0.0
    started = parse_time(record.get("started_at")) or end
    status = record.get("status", STARTING)
    if entry["exit_code"] == 0:
        out["failing_streak"], new_status = 0, HEALTHY
    elif status == STARTING and end - started < check.start_period:
        new_status = STARTING  # still starting: failures do not count yet
    else:
        out["failing_streak"] = record.get("failing_streak", 0) + 1
        new_status = UNHEALTHY if out["failing_streak"] >= check.retries else status
    if new_status != status:
        out["status"], out["since"] = new_status, entry["end"]
    return out


def last_output(record: dict | None) -> str:
    """The last result's output with its exit code (``exit 1: connection refused``; ``exit 1`` when
    it printed nothing); '' without a result."""
    log = (record or {}).get("log") or []
    if not log:
        return ""
    last = log[-1]
    output = str(last.get("output", "")).strip()
    return f"exit {last.get('exit_code')}: {output}" if output else f"exit {last.get('exit_code')}"


def last_result_at(record: dict | None) -> float | None:
    """When the last result ended (epoch seconds); else when the run started; None without either."""
    log = (record or {}).get("log") or []
    return parse_time(log[-1].get("end")) if log else parse_time((record or {}).get("started_at"))


STALE_WAIT = 2.0  # seconds beyond one interval + timeout: apply no longer takes the record at its word
STALE_SHOWN = 10.0  # seconds beyond three intervals + timeout: dct status, the TUI and Ansible mark it stale


def is_stale(record: dict | None, check: HealthCheck, now: float, intervals: int = 1, grace: float = STALE_WAIT) -> bool:
    """Whether nobody has probed for longer than ``intervals`` × interval + timeout + ``grace`` seconds
    since :func:`last_result_at` (a record without a time is stale). apply's waits use the
    defaults (a record one probe late is probed anew); the displays use ``intervals=3,
    grace=STALE_SHOWN`` (a supervisor a little behind is not called absent)."""
    last = last_result_at(record)
    return last is None or now - last > intervals * check.interval + check.timeout + grace


def read(state_dir: str) -> dict | None:
    """The record in a container's state directory; None when there is none (no probe has run for
    this container) or it is unreadable (a reader shows no health rather than failing)."""
    try:
        data = read_json(os.path.join(state_dir, RECORD_FILE))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and data.get("status") in STATUSES else None


def store(state_dir: str, record: dict) -> bool:
    """Write ``record`` atomically into a container's state directory, holding the container's
    lock without waiting for it (``runtime.store.try_locked``): False, and nothing written, while
    another holds it (a destroy, a start) or once the container is gone; the prober keeps the
    record and writes it with the next result. Never raises for a missing container."""
    from ..runtime import store as state_store

    with contextlib.suppress(OSError), state_store.try_locked(state_dir) as held:
        if held and os.path.exists(os.path.join(state_dir, state_store.STATE_FILE)):
            # Not fsync'd: rewritten after every probe (100 probes/s for 100 containers) and worth
            # nothing after a crash (/run/dct is usually a tmpfs; an unreadable record reads as none).
            write_json_atomic(os.path.join(state_dir, RECORD_FILE), record, 0o644, durable=False)
            return True
    return False
