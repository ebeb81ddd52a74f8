"""Status, the libcontainer state machine, the operations each status allows, and ``State`` (state.json).

The runtime owns its lifecycle rules here, once: :func:`derive_status` (runc's ``refreshState``),
the transition table (runc's ``state_linux.go``) and :data:`OPERATIONS` (which verb each status
allows, with the error a refused one raises); ``Container``'s verbs, the CLI, the TUI and the
Ansible module ask :func:`require` / :func:`allowed_ops` instead of listing statuses themselves.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ..errors import (ContainerError, ContainerNotPaused, ContainerNotRunning, ContainerPaused, ContainerRunning,
                      InvalidStateTransition)

if TYPE_CHECKING:
    from collections.abc import Callable


class Status(enum.Enum):
    """libcontainer's ``Status``; ``pausing`` is the v1 freezer's ``FREEZING``. ``str()`` gives the word.

    ``unknown`` is ours: a container whose state.json cannot be read (:class:`~declarative_ct.errors.StateCorrupt`),
    as ``list`` and the reconciler show it; :meth:`Container.status` never returns it.
    """

    CREATED = "created"
    RUNNING = "running"
    PAUSING = "pausing"
    PAUSED = "paused"
    STOPPED = "stopped"
    UNKNOWN = "unknown"

    def __str__(self) -> str:
        return self.value


# runc's state_linux.go transition rules, X -> X being always allowed (a no-op).
_TRANSITIONS: dict[Status, frozenset[Status]] = {
    Status.STOPPED: frozenset({Status.RUNNING}),
    Status.CREATED: frozenset({Status.RUNNING, Status.PAUSING, Status.PAUSED, Status.STOPPED}),
    Status.RUNNING: frozenset({Status.PAUSING, Status.PAUSED, Status.STOPPED}),
    Status.PAUSING: frozenset({Status.PAUSED, Status.RUNNING, Status.STOPPED}),
    Status.PAUSED: frozenset({Status.RUNNING, Status.STOPPED}),
    Status.UNKNOWN: frozenset(),  # nothing is known to move from
}


def check_transition(current: Status, target: Status, detail: str = "") -> None:
    """Raise :class:`InvalidStateTransition` unless ``current -> target`` is legal in runc's machine."""
    if current != target and target not in _TRANSITIONS[current]:
        raise InvalidStateTransition(current, target, detail)


def derive_status(saved: bool, freezer: str, init_alive: bool, exec_fifo: bool) -> Status:
    """The status of a container, derived in runc's order (``refreshState``): pure, no I/O.

    ``saved``: state.json was read (no state: ``stopped``, as a destroyed container);
    ``freezer``: the cgroup's ``FROZEN``/``FREEZING``/``THAWED`` (a frozen cgroup is paused
    whatever init does); ``init_alive``: init's PID is alive with its saved start time (field 22
    of ``/proc/<pid>/stat``; a reused PID is dead); ``exec_fifo``: the exec fifo exists (init
    waits for ``start``). Never returns ``unknown``.
    """
    if not saved:
        return Status.STOPPED
    if freezer == "FROZEN":
        return Status.PAUSED
    if freezer == "FREEZING":
        return Status.PAUSING
    if not init_alive:
        return Status.STOPPED
    return Status.CREATED if exec_fifo else Status.RUNNING


class Operation:
    """One libcontainer verb: the statuses it is allowed in, the status it moves to (None: it
    moves none), and ``refused(container_id, status)``, the error raised in any other status."""

    __slots__ = ("allowed", "target", "refused")  # a plain class: the CLI imports this at start-up

    def __init__(self, allowed: frozenset[Status], target: Status | None,
                 refused: Callable[[str, Status], ContainerError]) -> None:
        self.allowed, self.target, self.refused = allowed, target, refused


def _not_running(verb: str) -> Callable[[str, Status], ContainerError]:
    return lambda cid, status: ContainerNotRunning(f"cannot {verb} container {cid}: it is {status}")


def _exec_refused(cid: str, status: Status) -> ContainerError:
    if status in (Status.PAUSED, Status.PAUSING):
        return ContainerPaused(f"container {cid} is paused; resume it before exec")
    return ContainerNotRunning(f"cannot exec in a stopped container {cid}")


def _destroy_refused(cid: str, status: Status) -> ContainerError:
    if status == Status.RUNNING:
        return ContainerRunning(f"cannot destroy container {cid}: it is running (stop it first)")
    if status in (Status.PAUSED, Status.PAUSING):
        return ContainerPaused(f"cannot destroy container {cid}: it is paused")
    return InvalidStateTransition(status, Status.STOPPED)


_S = Status
_LIVE = frozenset({_S.CREATED, _S.RUNNING, _S.PAUSING, _S.PAUSED})  # an init to act on

OPERATIONS: dict[str, Operation] = {
    # libcontainer Exec(): release a created init through the exec fifo (runc start)
    "start": Operation(frozenset({_S.CREATED}), _S.RUNNING, lambda cid, status: InvalidStateTransition(
        status, _S.RUNNING, "only a created container can be started (its exec fifo is gone)")),
    # Start(Process{Init: false}): a new process in the container (runc exec)
    "exec": Operation(frozenset({_S.CREATED, _S.RUNNING}), None, _exec_refused),
    # Signal(): Container.signal checks init's liveness itself (a pidfd), which is stronger
    "signal": Operation(_LIVE, None, lambda cid, status: ContainerNotRunning(f"container {cid} is not running")),
    "pause": Operation(frozenset({_S.CREATED, _S.RUNNING}), _S.PAUSED, _not_running("pause")),
    "resume": Operation(frozenset({_S.PAUSING, _S.PAUSED}), _S.RUNNING, lambda cid, status: ContainerNotPaused(
        f"cannot resume container {cid}: it is {status}, not paused")),
    # Set(): live resource limits (runc update)
    "set": Operation(_LIVE, None, _not_running("update")),
    # Destroy() without force: a created init is killed with it; running or paused ones are refused
    "destroy": Operation(frozenset({_S.CREATED, _S.STOPPED}), _S.STOPPED, _destroy_refused),
}


def require(op: str, status: Status, container_id: str) -> None:
    """Raise the error :data:`OPERATIONS` gives unless ``op`` is allowed in ``status``.

    Raises:
        ContainerNotRunning, ContainerPaused, ContainerNotPaused, ContainerRunning,
        InvalidStateTransition: as libcontainer's verb does (the container named, its status said).
        KeyError: ``op`` is not an operation.
    """
    operation = OPERATIONS[op]
    if status not in operation.allowed:
        raise operation.refused(container_id, status)
    if operation.target is not None:
        check_transition(status, operation.target)


def allowed_ops(status: Status) -> frozenset[str]:
    """The operations allowed in ``status`` (names of :data:`OPERATIONS`); empty for ``unknown``."""
    return frozenset(op for op, operation in OPERATIONS.items() if status in operation.allowed)


@dataclass
class State:
    """libcontainer's ``State`` (``BaseState`` + Linux fields); the keys of ``<root>/<id>/state.json``.

    ``init_process_pid`` is the host PID of init (-1 when none); ``init_process_start`` is field 22
    of ``/proc/<pid>/stat`` (clock ticks since boot); ``created`` is RFC 3339 UTC;
    ``cgroup_paths`` maps a v1 controller (or ``""`` on v2) to its absolute directory;
    ``namespace_paths`` maps ``NEWPID``… to ``/proc/<pid>/ns/<name>``; ``log_path`` (ours, podman's
    ``LogPath``) is the run's log file the monitor copies init's output into, None when none.
    """

    id: str
    init_process_pid: int
    init_process_start: int
    created: str
    config: dict[str, object]
    cgroup_paths: dict[str, str] = field(default_factory=dict)
    namespace_paths: dict[str, str] = field(default_factory=dict)
    external_descriptors: list[str] = field(default_factory=list)
    rootless: bool = False
    log_path: str | None = None

    def to_dict(self) -> dict[str, object]:
        """The state.json object (libcontainer's keys)."""
        return dict(self.__dict__)

    @classmethod
    def from_dict(cls, raw: dict[str, object]) -> "State":
        """Rebuild from a state.json object; unknown keys (e.g. written by a newer release) are ignored."""
        known = {k: raw[k] for k in cls.__dataclass_fields__ if k in raw}
        return cls(**known)
