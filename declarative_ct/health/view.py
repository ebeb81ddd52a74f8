"""A container's health as the front doors show it: ``dct status`` (the HEALTH column and the
``health`` object of ``--json``), the TUI and the Ansible ``info`` module all take it from here.

The view (a JSON object, or None for a container that has no check)::

    {"status": "starting" | "healthy" | "unhealthy",
     "failing_streak": 2,             # the record's (0 before any probe)
     "since": "<time>" | null,        # when status last changed (null: no probe yet)
     "check": "http GET :8080/",      # HealthCheck.describe() of the check shown (below)
     "log": [{"start", "end", "exit_code", "output"}, …],   # the last results, oldest first
     "stale": false}                  # nobody is probing it (see below): the rest is as of the last result

It comes from the health record the supervisor's prober keeps in the container's state directory
(:mod:`declarative_ct.health.record`) and the check shown (:func:`shown_check`): the one the
prober runs, which is the desired spec's ``health`` (``health`` changes without a recreate, so
the check the container was created with may be an old one); without a spec, the check that
made the record's last result, else the created one's. A record made by another probe (another
command, port or path) is not this check's: it is not shown. A running container that has a
check but no record for its current run yet is ``starting``. ``stale`` is set only for a running
container: when no supervisor runs on the state root (nothing probes; the caller says so) or when
nobody has probed it for three intervals and a timeout and :data:`~.record.STALE_SHOWN` seconds
(:func:`~.record.is_stale`: a supervisor of other specs). Times RFC 3339 UTC. Pure and stdlib only
(the TUI calls it from its collector thread).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping

from . import record as health_record
from .check import HealthCheck
from ..units import format_duration, parse_time

NO_SPEC = object()
"""``desired`` of :func:`shown_check` when the caller has no desired spec of the container."""


def check_of(applied: Mapping | None) -> HealthCheck | None:
    """The check a normalized spec declares (``applied.get("health")``); None when it declares
    none, or when the field is unreadable (a display never fails on it)."""
    return _check((applied or {}).get("health"))


def probed_check(record: Mapping | None) -> HealthCheck | None:
    """The check that made a health record's last result (its ``probe``); None without one (a
    record of no probe yet, or written before records kept it) or when unreadable."""
    return _check((record or {}).get("probe"))


def shown_check(record: Mapping | None, applied: Mapping | None, desired: object = NO_SPEC) -> HealthCheck | None:
    """The check to show for a container: the one being probed.

    ``desired``: the normalized ``health`` of the caller's desired spec of it (None: that spec
    declares none, so nothing is shown whatever the record says), or :data:`NO_SPEC` when the
    caller has none (``dct status`` without paths, a container of no given spec); then the
    record's :func:`probed_check` (``record``: :func:`~.record.read`'s), else the check of
    ``applied`` (the normalized spec the container was created with).
    """
    if desired is not NO_SPEC:
        return _check(desired)
    return probed_check(record) or check_of(applied)


def _check(health: object) -> HealthCheck | None:
    return HealthCheck.read(health)


def _probe(check: HealthCheck) -> HealthCheck:
    """``check`` without its timing: what it runs (two checks of the same probe compare equal)."""
    return dataclasses.replace(check, interval=0.0, timeout=0.0, retries=0, start_period=0.0, on_unhealthy="none")


def view(check: HealthCheck | None, record: dict | None, status: str, run: str, probing: bool,
         now: float) -> dict | None:
    """The health view (the module doc's object) of one container.

    ``check``: the check shown (:func:`shown_check`; None: no view); ``record``: its health record
    (:func:`declarative_ct.health.record.read`), dropped when it belongs to another run than
    ``run`` (the container state's ``created``, RFC 3339) or was made by another probe than
    ``check``'s; ``status``: the container's status word (``running``, ``stopped``…); ``probing``:
    whether a supervisor runs on the state root (``service.supervisor.probing``); ``now``: epoch
    seconds. A container that is not running, paused or pausing and has no record has no view.
    """
    if check is None:
        return None
    if record is not None and record.get("run") not in (None, run):
        record = None  # an earlier run's: this one has not been probed yet
    probed = probed_check(record)
    if probed is not None and _probe(probed) != _probe(check):
        record = None  # another check's results (the spec's probe changed): this one has none yet
    if record is None:
        if status not in ("running", "paused", "pausing"):
            return None  # never started (created) or ended unprobed: nothing to say
        out = {"status": health_record.STARTING, "failing_streak": 0, "since": None, "check": check.describe(),
               "log": []}
        record = {"started_at": run}  # no probe yet: counted from the run's start
    else:
        log = [dict(e) for e in record.get("log") or [] if isinstance(e, dict)]
        out = {"status": record["status"], "failing_streak": int(record.get("failing_streak") or 0),
               "since": record.get("since"), "check": check.describe(), "log": log}
        if not record.get("started_at") and not log:
            record = {"started_at": run}
    late = health_record.is_stale(record, check, now, 3, health_record.STALE_SHOWN)
    out["stale"] = status == "running" and (not probing or late)
    return out


def read(container, applied: dict | None, probing: bool, now: float,  # noqa: ANN001 - runtime Container
         status: str | None = None, desired: object = NO_SPEC) -> dict | None:
    """:func:`view` of a loaded ``Container`` with its record read from its state directory (one
    small file) and the check :func:`shown_check` picks (``applied``: the normalized spec it was
    created with; ``desired``: the caller's desired ``health`` of it, or :data:`NO_SPEC`).
    ``status``: its status word when the caller has it (else asked of the container). Raises
    ``ContainerError`` when its state cannot be read (``Container.state()``)."""
    record = health_record.read(container.state_dir)
    check = shown_check(record, applied, desired)
    if check is None:
        return None
    if status is None:
        status = container.status().value
    return view(check, record, status, container.state().created, probing, now)


def cell(health: dict | None) -> str:
    """The HEALTH cell: ``healthy``, ``unhealthy (3)`` (with the failing streak), ``starting``;
    a ``?`` after it when stale; ``-`` without a view."""
    if not health:
        return "-"
    text = health["status"]
    if health["status"] == health_record.UNHEALTHY:
        text += f" ({health.get('failing_streak', 0)})"
    return text + ("?" if health.get("stale") else "")


def last_seen(health: Mapping | None, now: float) -> str:
    """How old a view's last result is (``3m ago``), or ``no probe yet``."""
    end = health_record.last_result_at({"log": (health or {}).get("log") or []})
    return "no probe yet" if end is None else ago(now - end)


def ago(seconds: float) -> str:
    """``3m20s ago`` (whole seconds; never negative)."""
    return f"{format_duration(max(0, round(seconds)))} ago"


def supervisor_note(views: dict[str, dict | None], probing: bool, root: str, now: float,
                    restarts: Iterable[str] = ()) -> str | None:
    """The line ``dct status`` prints under its table when something waits for a supervisor; None
    when nothing does.

    Without a supervisor on ``root`` (``probing`` False): one line naming what is not restarted
    (``restarts``: the containers whose restart is due or pending, as NEXT shows) and what is
    not probed (the stale views, each with the age of its last result). With one, a line when
    some views are stale all the same (its prober does not reach them: it watches other specs).
    """
    stale = {name: v for name, v in sorted(views.items()) if v and v.get("stale")}
    ages = ", ".join(f"{name} {last_seen(v, now)}" for name, v in stale.items())
    if probing:
        return f"# no recent probe (the supervisor may not watch these specs): HEALTH as of {ages}" if stale else None
    restarts = sorted(restarts)
    if not stale and not restarts:
        return None
    parts = []
    if restarts:
        parts.append(f"restarts wait for the next `dct apply` ({', '.join(restarts)})")
    if stale:
        parts.append(f"nothing probes, HEALTH is as of the last probe ({ages})")
    return f"# no supervisor runs on {root}: {'; '.join(parts)}; run `dct watch` (dct service install)"
