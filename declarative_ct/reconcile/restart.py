"""The restart policy of a container that exited: ``never`` | ``on-failure[:N]`` | ``always``.

Pure decisions (:func:`decide`, :func:`backoff`, :func:`reset_if_ran`) plus the small record the
reconciler keeps per container in ``<data_root>/restarts/<name>.json``: beside the state root's
data (``Runtime.data_root``, ``/var/lib/dct`` for ``/run/dct``), not in the tmpfs state root, so
that the count and the backoff outlive a restart of the supervisor and of its state root's
monitor. After a reboot the state root is empty: a declared container is then *absent* (created at
once, and its record forgotten), not exited; a record names the run it belongs to (its created
time), which no container of a new boot has. ``plan`` and ``dct apply`` / ``dct watch`` follow the
same rules:

- ``never``: an exited container stays exited (a plan note, no action);
- ``on-failure``: restarted only when its exit code is not 0 (or unknown: the monitor was gone),
  at most N times with ``on-failure:N`` (unlimited without N);
- ``always``: restarted whatever its exit code.

Restarts are spaced by an exponential backoff counted from the exit: :data:`BACKOFF_INITIAL`
seconds before the first, doubling for each further one, at most :data:`BACKOFF_MAX`; the count
goes back to 0 once a container has run :data:`RESET_AFTER` seconds. A spec change (recreate) is
never held back by the policy, and starts a new count.

The record (JSON object, times in seconds since the epoch, wall clock)::

    {"policy": "on-failure:3",       # the policy it was decided under
     "restarts": 2,                  # restarts done since the last reset
     "last_exit": {"exit_code": 137, "signal": 9, "oom_killed": false, "exited_at": "<RFC 3339>"} | null,
                                     # + "reason": "unhealthy", "health": "<last probe>" for a restart
                                     #   under health.on_unhealthy (.unhealthy); exit_code null then
     "exited_run": "<created>",      # which run of the container last_exit belongs to (its created time)
     "exit_time": 1712345678.25,     # when it exited (the monitor's time, else when first seen)
     "next_restart": 1712345679.25 | null,  # the next attempt; null when none is planned
     "restarted_at": 1712345679.3,   # present once the restart for that exit was done
     "stopped_run": "<created>"}     # a run that apply stopped (state: stopped): not an exit
"""

from __future__ import annotations

import contextlib
import math
import os
import signal
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ..units import parse_time

if TYPE_CHECKING:
    from ..runtime import Runtime

BACKOFF_INITIAL = 0.5  # seconds before the first restart after an exit
BACKOFF_FACTOR = 2.0  # each further restart waits this many times longer
BACKOFF_MAX = 30.0  # the longest wait between restarts (seconds)
RESET_AFTER = 60.0  # a container that ran this long (seconds) starts its count again

RECORD_DIR = "restarts"  # under the data root
OLD_RECORD_DIR = "#reconcile"  # where records were before the data root: <state root>/#reconcile/<name>.json
POLICIES = ("never", "on-failure", "always")


@dataclass(frozen=True)
class Policy:
    """A parsed restart policy: ``kind`` in :data:`POLICIES`; ``max_restarts`` None = unlimited."""

    kind: str
    max_restarts: int | None = None

    @classmethod
    def parse(cls, text: str) -> Policy:
        """``"never"``, ``"always"``, ``"on-failure"`` or ``"on-failure:N"`` (N ≥ 1).

        Raises:
            ValueError: anything else (the spec model has already refused it for specs).
        """
        kind, sep, count = (text or "never").partition(":")
        if kind not in POLICIES or (sep and (kind != "on-failure" or not count.isdigit() or int(count) < 1)):
            raise ValueError(f"restart policy {text!r}: must be never, always, on-failure or on-failure:N")
        return cls(kind, int(count) if sep else None)


@dataclass(frozen=True)
class Decision:
    """What to do about a container that exited.

    ``kind``: ``restart`` (now), ``wait`` (backoff not over: at ``record["next_restart"]``) or
    ``none`` (the policy says no). ``record``: what the reconciler should hold for the container
    now; ``after``: the record to write when the restart is done (``restart`` only). ``attempt``:
    the number of the restart in question (1-based, since the last reset); ``remaining``: seconds
    until it is due (0 unless ``wait``); ``reason``: why not, for ``none``.
    """

    kind: str
    record: dict
    after: dict | None = None
    attempt: int = 0
    remaining: float = 0.0
    reason: str = ""
    policy: Policy = field(default_factory=lambda: Policy("never"))

    def describe(self, name: str) -> str:
        """One line for a plan note or action cause (without the action's own prefix).

        ``wait``: ``name: restart in 2.5 s (on-failure, attempt 3)``; ``none``: ``name: exited
        (code 1), not restarted (restart: never)``; ``restart``: ``it exited (code 137;
        on-failure, attempt 1)``.
        """
        attempt = f"attempt {self.attempt}" + (f" of {self.policy.max_restarts}"
                                               if self.policy.max_restarts is not None else "")
        if self.kind == "wait":
            return f"{name}: restart in {math.ceil(self.remaining * 10) / 10:.1f} s ({self.policy.kind}, {attempt})"
        if self.kind == "none":
            return f"{name}: exited ({describe_exit(self.record.get('last_exit'))}), not restarted ({self.reason})"
        return f"it exited ({describe_exit(self.record.get('last_exit'))}; {self.policy.kind}, {attempt})"


def backoff(restarts: int) -> float:
    """Seconds to wait after an exit before the restart that follows ``restarts`` earlier ones.

    0.5, 1, 2, 4… capped at :data:`BACKOFF_MAX` (``restarts`` ≥ 0).
    """
    if restarts < 0:
        raise ValueError("restarts must be >= 0")
    if restarts > 64:  # 2**64 * 0.5 is far beyond the cap; avoid huge floats
        return BACKOFF_MAX
    return min(BACKOFF_INITIAL * BACKOFF_FACTOR ** restarts, BACKOFF_MAX)


def exit_reason(last_exit: dict | None) -> str:
    """Why a run ended, from an exit summary or ``exit.json`` (``signal``: a number, ``oom_killed``):
    ``unhealthy`` (stopped for ``on_unhealthy: restart``: ``reason``), ``OOM-killed``, a signal's
    name (``SIGKILL``; ``signal 99`` for one Python does not name), or ``""`` for an exit of its
    own (or when nothing is known)."""
    if not last_exit:
        return ""
    if last_exit.get("reason") == "unhealthy":
        return "unhealthy"
    if last_exit.get("oom_killed"):
        return "OOM-killed"
    sig = last_exit.get("signal")
    if not isinstance(sig, int) or isinstance(sig, bool) or sig <= 0:
        return ""
    try:
        return signal.Signals(sig).name
    except ValueError:
        return f"signal {sig}"


def describe_exit(last_exit: dict | None) -> str:
    """``code 137, OOM-killed`` / ``code 143, SIGTERM`` / ``code 0`` / ``unhealthy`` / ``exit code unknown``
    for an exit summary."""
    if last_exit and last_exit.get("exit_code") is None and exit_reason(last_exit) == "unhealthy":
        return "unhealthy"
    if not last_exit or last_exit.get("exit_code") is None:
        return "exit code unknown"
    reason = exit_reason(last_exit)
    return f"code {last_exit['exit_code']}" + (f", {reason}" if reason else "")


def _exit_summary(exit_record: dict | None) -> dict | None:
    if not exit_record:
        return None
    return {k: exit_record.get(k) for k in ("exit_code", "signal", "oom_killed", "exited_at")}


def decide(policy: str, stored: dict | None, run: str, exit_record: dict | None, created_at: float | None,
           now: float) -> Decision:
    """The policy's decision for a container that should run and has exited.

    Args:
        policy: the spec's ``restart`` (``never``, ``on-failure[:N]``, ``always``).
        stored: the container's record as kept (see the module doc), or None.
        run: identifies this run of the container (its ``created`` time): an exit of the same run
            is the same exit, whatever the number of plans that look at it.
        exit_record: the monitor's ``exit.json`` (``exit_code``, ``signal``, ``oom_killed``,
            ``exited_at``), or None when no exit was recorded (the code is then unknown and counts
            as a failure).
        created_at: when this run was created (epoch seconds), for the reset window; None if unknown.
        now: the current wall-clock time (epoch seconds).

    Returns:
        A :class:`Decision`. Pure: nothing is read or written.

    Raises:
        ValueError: an invalid ``policy``.
    """
    p = Policy.parse(policy)
    stored = stored or {}
    known = stored.get("exited_run") == run and "restarted_at" not in stored  # this exit was seen before
    exit_time = parse_time(exit_record.get("exited_at")) if exit_record else None
    if exit_time is None:
        exit_time = stored.get("exit_time") if known and isinstance(stored.get("exit_time"), (int, float)) else now
    if known:
        base = int(stored.get("restarts") or 0)
    else:
        ran = exit_time - created_at if created_at is not None else None
        base = 0 if ran is not None and ran >= RESET_AFTER else int(stored.get("restarts") or 0)
    record = {"policy": policy, "restarts": base, "last_exit": _exit_summary(exit_record), "exited_run": run,
              "exit_time": exit_time, "next_restart": None}
    code = exit_record.get("exit_code") if exit_record else None
    attempt = base + 1
    if p.kind == "never":
        return Decision("none", record, reason="restart: never", policy=p, attempt=attempt)
    if p.kind == "on-failure" and code == 0:
        return Decision("none", record, reason="restart: on-failure, and it exited with code 0", policy=p,
                        attempt=attempt)
    if p.max_restarts is not None and base >= p.max_restarts:
        return Decision("none", record, reason=f"restart: {policy}, gave up after {base} restart"
                                              f"{'s' if base != 1 else ''}", policy=p, attempt=attempt)
    due = exit_time + backoff(base)
    record["next_restart"] = due
    if now < due:
        return Decision("wait", record, attempt=attempt, remaining=due - now, policy=p)
    after = {**record, "restarts": attempt, "next_restart": None, "restarted_at": now}
    return Decision("restart", record, after=after, attempt=attempt, policy=p)


def reset_if_ran(stored: dict | None, created_at: float | None, now: float) -> dict | None:
    """For a running container: its record with the count back to 0 if it has run :data:`RESET_AFTER`
    seconds (``created_at``, ``now``: epoch seconds), else None (nothing to change)."""
    if not stored or not stored.get("restarts") or created_at is None or now - created_at < RESET_AFTER:
        return None
    return {**stored, "restarts": 0, "next_restart": None}


# --- the records on disk -------------------------------------------------------------------------


def _data_root(where: Runtime | str) -> str:
    """The data root of ``where``: a :class:`~declarative_ct.runtime.Runtime` (its ``data_root``)
    or a state root path (its default data root: ``$DCT_DATA_ROOT``, else ``/var/lib/dct`` for
    ``/run/dct``, else ``/var/lib/dct/roots/dct-<hash>``: ``runtime.factory.default_data_root``)."""
    if isinstance(where, str):
        from ..runtime.factory import default_data_root

        return default_data_root(os.path.abspath(where))
    return where.data_root


def record_path(where: Runtime | str, name: str) -> str:
    """``<data_root>/restarts/<name>.json`` (``where``: a Runtime or a state root path, see :func:`_data_root`)."""
    return os.path.join(_data_root(where), RECORD_DIR, name + ".json")


def load_record(where: Runtime | str, name: str) -> dict | None:
    """The stored record of container ``name``, or None (absent or unreadable: a fresh start).

    ``where``: the :class:`~declarative_ct.runtime.Runtime` (or a state root path) the record is kept for.
    """
    from ..runtime import store

    try:
        data = store.read_json(record_path(where, name))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or not isinstance(data.get("restarts", 0), int):
        return None
    nxt = data.get("next_restart")
    if nxt is not None and not (isinstance(nxt, (int, float)) and math.isfinite(nxt)):
        data["next_restart"] = None
    return data


def save_record(where: Runtime | str, name: str, record: dict) -> None:
    """Write the record of ``name`` atomically (``runtime.store.write_json_atomic``) under the data
    root of ``where`` (a Runtime or a state root path); makes the directories (mode 0700).

    Raises:
        OSError: the data root cannot be written.
    """
    from ..runtime import Runtime, store

    runtime = where if not isinstance(where, str) else Runtime(where)
    runtime.data_dir(RECORD_DIR)
    store.write_json_atomic(record_path(runtime, name), record, 0o600)


def remove_record(where: Runtime | str, name: str) -> None:
    """Forget ``name``'s record (its container was destroyed, pruned, created or recreated afresh)."""
    with contextlib.suppress(FileNotFoundError):
        os.unlink(record_path(where, name))


def migrate_records(runtime: Runtime) -> None:
    """Move the records an older dct kept in ``<root>/#reconcile/`` to the data root, once (a record
    already there wins), and remove the old directory: counts and backoffs survive the upgrade.
    Unreadable old records are dropped. Nothing is done when the old directory is absent (one
    failed listdir per call); a data root that cannot be written leaves the rest for a later call
    (never raises: plans go on).
    """
    from ..runtime import store

    old = os.path.join(runtime.root, OLD_RECORD_DIR)
    try:
        names = os.listdir(old)
    except (FileNotFoundError, NotADirectoryError):
        return
    for entry in names:
        path = os.path.join(old, entry)
        name = entry[:-len(".json")] if entry.endswith(".json") else ""
        if name and not os.path.exists(record_path(runtime, name)):
            try:
                data = store.read_json(path)
            except (OSError, ValueError):
                data = None
            if isinstance(data, dict):
                try:
                    save_record(runtime, name, data)
                except OSError:
                    return
        with contextlib.suppress(OSError):
            os.unlink(path)
    with contextlib.suppress(OSError):
        os.rmdir(old)
