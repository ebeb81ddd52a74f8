"""Typed errors mirroring libcontainer's (``libcontainer/error.go``).

Every error the runtime raises on purpose derives from :class:`ContainerError`, so a
front door can catch one class and print ``str(err)`` without a traceback.
"""

from __future__ import annotations


class ContainerError(Exception):
    """Base class of every declarative-ct runtime error."""


class InvalidID(ContainerError):
    """The id breaks libcontainer's rule: non-empty, ``[A-Za-z0-9_+.-]``, not ``.``/``..`` (ErrInvalidID)."""


class ContainerExists(ContainerError):
    """A container with this id already exists in the state root (ErrExist)."""


class ContainerNotExists(ContainerError):
    """No container with this id in the state root (ErrNotExist)."""


class ConfigInvalid(ContainerError):
    """The container config (or an OCI ``config.json``) is invalid or asks for something unsupported."""


class ContainerPaused(ContainerError):
    """The operation is refused because the container is paused (ErrPaused)."""


class ContainerRunning(ContainerError):
    """The operation needs a stopped container and init is still alive (ErrRunning)."""


ContainerNotStopped = ContainerRunning
"""Alias: runc's CLI says "cannot delete container that is not stopped"."""


class ContainerNotRunning(ContainerError):
    """The operation needs a live init (ErrNotRunning)."""


class ContainerNotPaused(ContainerError):
    """``resume()`` on a container that is not paused (ErrNotPaused)."""


class InvalidStateTransition(ContainerError):
    """An illegal status transition, libcontainer's ``stateTransitionError{From, To}``."""

    def __init__(self, from_status: object, to_status: object, detail: str = "") -> None:
        self.from_status = from_status
        self.to_status = to_status
        msg = f"invalid state transition from {from_status} to {to_status}"
        super().__init__(f"{msg}: {detail}" if detail else msg)


class NotSupported(ContainerError):
    """A libcontainer operation this release does not implement yet (never a silent no-op)."""


class SystemError(ContainerError):  # noqa: A001 - libcontainer's name for it
    """A kernel or I/O failure while acting on a container (carries the failing step)."""


class StateCorrupt(SystemError):
    """``<root>/<id>/state.json`` cannot be read back (truncated, not JSON, wrong shape): the container's
    processes may still run. ``list`` shows it as ``unknown``; ``delete --force`` removes it."""


class CreateInterrupted(StateCorrupt):
    """``<root>/<id>`` holds what a create left when it was killed before saving state.json (exec.fifo,
    cgroup.json, maybe processes) and no create holds its lock. ``list`` shows it as ``unknown``;
    ``delete --force`` removes it, and a create of the same id reclaims it when its cgroup is the state
    root's own placement for that id (one its config chose may hold another container: that create
    raises this instead)."""


def log_warning(message: str, *args: object, logger: str = "declarative_ct.runtime") -> None:
    """Log a warning (``message % args``) on ``logger``: something ignored or failed that does not
    fail the operation (a field runc 1.1 ignores, a poststop hook). ``logging`` is imported only
    then, so the CLI's start-up does not pay for it."""
    import logging

    logging.getLogger(logger).warning(message, *args)
