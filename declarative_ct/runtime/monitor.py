"""Exit records: what the monitor (``monitord``) or a foreground ``dct run`` writes when init exits.

runc never persists exit codes; we must not lose them. Stage 1 exits after forking init, so init
is re-parented to the nearest child subreaper — the shared monitor of the state root — which
reaps it and writes ``exit.json`` beside ``state.json`` with :func:`record_exit`.
"""

from __future__ import annotations

import os
import time

from . import store


def rfc3339_now() -> str:
    """UTC now as RFC 3339 with nanoseconds and a ``Z`` (runc's ``created`` format)."""
    now = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now % 1 * 1e9):09d}Z"


def exit_record(pid: int, status: int) -> dict:
    """``{"pid", "exit_code", "signal", "exited_at"}`` from a ``waitpid`` status.

    The monitor adds ``oom_killed`` (docker's ``OOMKilled``) to what it saves.

    ``exit_code`` follows the shell's convention (128 + signal number when killed by a signal).
    """
    sig = os.WTERMSIG(status) if os.WIFSIGNALED(status) else None
    code = 128 + sig if sig is not None else os.WEXITSTATUS(status)
    return {"pid": pid, "exit_code": code, "signal": sig, "exited_at": rfc3339_now()}


def record_exit(state_dir: str, pid: int, status: int) -> bool:
    """Write ``exit.json`` if ``pid`` is the init recorded in ``state.json`` (a failed create writes nothing).

    Holds the container's lock, so a concurrent ``destroy()`` either finishes first (and we write
    nothing) or waits for us; never does the write recreate a half-deleted directory. Returns
    False when ``pid`` is not the recorded init (an orphan re-parented to us).
    """
    try:
        with store.locked(state_dir, create=False):
            saved = store.read_json(os.path.join(state_dir, store.STATE_FILE))
            if saved.get("init_process_pid") != pid:
                return False
            record = exit_record(pid, status)
            record["oom_killed"] = _oom_killed(saved.get("cgroup_paths") or {})
            store.write_json_atomic(os.path.join(state_dir, store.EXIT_FILE), record, 0o644)
    except (OSError, ValueError):
        pass  # the container was destroyed meanwhile: nobody will ask
    return True


def _oom_killed(cgroup_paths: dict[str, str]) -> bool:
    """True when the OOM killer killed any process of the container (v1 oom_control, v2 memory.events)."""
    if not cgroup_paths:
        return False
    from . import cgroups
    try:
        return bool(cgroups.manager_from_paths(cgroup_paths).oom_kill_count())
    except (OSError, ValueError):
        return False


def reap_until(pid: int) -> int:
    """As a subreaper, reap every child (a shared PID namespace's orphans reach us) until ``pid`` exits.

    Returns ``pid``'s ``waitpid`` status. Used by a foreground ``dct run``, which is its own monitor.
    """
    while True:
        reaped, status = os.waitpid(-1, 0)
        if reaped == pid:
            return status
