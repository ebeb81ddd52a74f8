"""Drift: how a container's observed status stands against its declared spec (``dct status``, the TUI)."""

from __future__ import annotations

from ..runtime.state import Status, allowed_ops

DRIFTS = ("in-sync", "drifted", "missing", "unmanaged", "undeclared", "exited", "backoff", "unknown")
"""The drift words :func:`classify_drift` returns (besides ``-``), in the order the TUI filters them."""


def classify_drift(desired_state: str | None, status: str | None, owned: bool, pending: bool,
                   undeclared_in_scope: bool, next_restart: float | None) -> str:
    """The drift word for one name, as ``dct status`` and the TUI show it.

    ``desired_state``: the spec's ``state`` (None: not declared); ``status``: observed (None: no
    such container); ``pending``: the plan has an action for it; ``undeclared_in_scope``: ours,
    from the given paths, no longer named; ``next_restart``: a restart is scheduled.
    Returns ``missing``, ``in-sync``, ``unmanaged``, ``undeclared``, ``-`` (ours but of another
    spec set), ``drifted``, ``backoff``, ``exited`` or ``unknown`` (its state.json cannot be read).
    """
    if status is None:
        return "missing" if desired_state not in (None, "absent") else "in-sync"
    if status == "unknown":
        return "unknown"
    if not owned:
        return "unmanaged"
    if desired_state is None:
        return "undeclared" if undeclared_in_scope else "-"
    if pending:
        return "drifted"
    if status == "stopped" and desired_state in ("running", "paused"):
        return "backoff" if next_restart is not None else "exited"
    return "in-sync"


def satisfied_state(status: Status) -> str:
    """The spec ``state`` a container in runtime ``status`` already satisfies, by the runtime's
    operations table: ``paused`` while it can be resumed (paused, pausing), ``running`` while
    running, ``stopped`` otherwise (a created init has not run its program); ``running`` for
    ``unknown`` (the plan reports it)."""
    if status == Status.UNKNOWN:
        return "running"
    if "resume" in allowed_ops(status):
        return "paused"
    return "running" if status == Status.RUNNING else "stopped"
