"""Status, the libcontainer state machine, and ``State`` (the ``state.json`` contents)."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from ..errors import InvalidStateTransition


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


@dataclass
class State:
    """libcontainer's ``State`` (``BaseState`` + Linux fields); the keys of ``<root>/<id>/state.json``.

    ``init_process_pid`` is the host PID of init (-1 when none); ``init_process_start`` is field 22
    of ``/proc/<pid>/stat`` (clock ticks since boot); ``created`` is RFC 3339 UTC;
    ``cgroup_paths`` maps a v1 controller (or ``""`` on v2) to its absolute directory;
    ``namespace_paths`` maps ``NEWPID``… to ``/proc/<pid>/ns/<name>``.
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

    def to_dict(self) -> dict[str, object]:
        """The state.json object (libcontainer's keys)."""
        return dict(self.__dict__)

    @classmethod
    def from_dict(cls, raw: dict[str, object]) -> "State":
        """Rebuild from a state.json object; unknown keys (e.g. written by a newer release) are ignored."""
        known = {k: raw[k] for k in cls.__dataclass_fields__ if k in raw}
        return cls(**known)
