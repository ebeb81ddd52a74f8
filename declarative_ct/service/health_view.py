"""A container's health as the front doors show it: ``dct status`` (the HEALTH column and the
``health`` object of ``--json``), the TUI and the Ansible ``info`` module all take it from here.

The view (a JSON object, or None for a container that declares no check)::

    {"status": "starting" | "healthy" | "unhealthy",
     "failing_streak": 2,             # the record's (0 before any probe)
     "since": "<time>" | null,        # when status last changed (null: no probe yet)
     "check": "http GET :8080/",      # HealthCheck.describe() of the declared probe
     "log": [{"start", "end", "exit_code", "output"}, …],   # the last results, oldest first
     "stale": false}                  # nobody is probing it (see below): the rest is as of the last result

It comes from the health record the supervisor's prober keeps in the container's state directory
(:mod:`declarative_ct.health.record`) and the check the container was applied with (its
last-applied spec's ``health``). A running container that declares a check but has no record for
its current run yet is ``starting``. ``stale`` is set only for a running container: when no
supervisor holds the state root's lock (nothing probes; :func:`probing`) or when its last result
is older than :func:`stale_after` (the prober does not reach it: a supervisor of other specs).
Times RFC 3339 UTC. Stdlib only (the TUI calls it from its collector thread).
"""

from __future__ import annotations

from ..health import record as health_record
from ..health.check import HealthCheck
from ..units import format_duration, parse_time

STALE_GRACE = 10.0  # seconds allowed beyond the probing schedule before a record is called stale


def check_of(applied: dict | None) -> HealthCheck | None:
    """The check a normalized spec declares (``applied.get("health")``); None when it declares
    none, or when the field is unreadable (a display never fails on it)."""
    try:
        return HealthCheck.from_normalized((applied or {}).get("health"))
    except (ValueError, KeyError, TypeError, AttributeError):
        return None


def stale_after(check: HealthCheck) -> float:
    """Seconds after its last result (or its start, before any) past which a running container's
    record is stale: three intervals and a timeout (a late probe or two is no alarm), plus
    :data:`STALE_GRACE`."""
    return 3 * check.interval + check.timeout + STALE_GRACE


def view(check: HealthCheck | None, record: dict | None, status: str, run: str, probing: bool,
         now: float) -> dict | None:
    """The health view (the module doc's object) of one container.

    ``check``: the declared check (None: no view); ``record``: its health record
    (:func:`declarative_ct.health.record.read`), dropped when it belongs to another run than
    ``run`` (the container state's ``created``, RFC 3339); ``status``: the container's status word
    (``running``, ``stopped``…); ``probing``: whether a supervisor runs on the state root; ``now``:
    epoch seconds. A container that is not running, paused or pausing and has no record has no view.
    """
    if check is None:
        return None
    if record is not None and record.get("run") not in (None, run):
        record = None  # an earlier run's: this one has not been probed yet
    if record is None:
        if status not in ("running", "paused", "pausing"):
            return None  # never started (created) or ended unprobed: nothing to say
        out = {"status": health_record.STARTING, "failing_streak": 0, "since": None, "check": check.describe(),
               "log": []}
        last = parse_time(run)
    else:
        log = [dict(e) for e in record.get("log") or [] if isinstance(e, dict)]
        out = {"status": record["status"], "failing_streak": int(record.get("failing_streak") or 0),
               "since": record.get("since"), "check": record.get("check") or check.describe(), "log": log}
        last = parse_time(log[-1].get("end")) if log else parse_time(record.get("started_at") or run)
    late = last is not None and now - last > stale_after(check)
    out["stale"] = status == "running" and (not probing or late)
    return out


def read(container, applied: dict | None, probing: bool, now: float, status: str | None = None) -> dict | None:  # noqa: ANN001 - runtime Container
    """:func:`view` of a loaded ``Container`` (its record read from its state directory only
    when ``applied`` declares a check: one small file). ``status``: its status word when the
    caller has it (else asked of the container)."""
    check = check_of(applied)
    if check is None:
        return None
    state = container.state()
    if status is None:
        status = container.status().value
    return view(check, health_record.read(container.state_dir), status, state.created, probing, now)


def probing(root: str) -> bool:
    """Whether a supervisor (``dct watch``, the service) runs on state root ``root``: the one
    that runs the probes. A non-blocking try of its lock (:mod:`.supervisor`)."""
    from . import supervisor

    info = supervisor.read(root)
    return info is not None and info.running


def cell(health: dict | None) -> str:
    """The HEALTH cell: ``healthy``, ``unhealthy (3)`` (with the failing streak), ``starting``;
    a ``?`` after it when stale; ``-`` without a view."""
    if not health:
        return "-"
    text = health["status"]
    if health["status"] == health_record.UNHEALTHY:
        text += f" ({health.get('failing_streak', 0)})"
    return text + ("?" if health.get("stale") else "")


def last_seen(health: dict | None, now: float) -> str:
    """How old a view's last result is (``3m ago``), or ``no probe yet``."""
    log = (health or {}).get("log") or []
    end = parse_time(log[-1].get("end")) if log else None
    if end is None:
        return "no probe yet"
    return f"{format_duration(max(0, round(now - end)))} ago"


def stale_note(views: dict[str, dict | None], probing_now: bool, root: str, now: float) -> str | None:
    """The line ``dct status`` prints under its table when some views are stale: why (no
    supervisor on ``root``, or its prober does not reach them) and as of when, per container;
    None when none is."""
    stale = {name: v for name, v in sorted(views.items()) if v and v.get("stale")}
    if not stale:
        return None
    ages = ", ".join(f"{name} {last_seen(v, now)}" for name, v in stale.items())
    if not probing_now:
        return (f"# no supervisor runs on {root}: nothing probes, HEALTH is as of the last probe ({ages}); "
                "run `dct watch` (dct service install)")
    return f"# no recent probe (the supervisor may not watch these specs): HEALTH as of {ages}"
