"""Typed errors mirroring libcontainer's (``libcontainer/error.go``).

Every error the runtime raises on purpose derives from :class:`ContainerError`, so a
front door can catch one class and print ``str(err)`` without a traceback. Errors about
a field carry it as data (:class:`Problem`, :class:`CgroupWriteError`, :class:`InitFailed`),
as youki's errors carry path and data and runc's ``mountError`` its source and target:
a front door that names fields its own way (a CLI flag, an OCI key, a spec field) renders
them through :meth:`ConfigInvalid.renamed` instead of rewriting the text.

Imported by every CLI verb and by the container init: stdlib only, plain classes.
"""

from __future__ import annotations

import os

# A field's name -> the name a front door shows: a callable, or a dict that may leave names out
# (kept). Spelled as a string, for annotations only: importing typing/collections.abc here would
# cost the CLI's start-up.
Renamer = "Callable[[str], str] | Mapping[str, str]"


def _rename(names: "Renamer | None", field: str) -> str:
    if names is None:
        return field
    return names.get(field, field) if isinstance(names, dict) else names(field)


class Problem:
    """One thing wrong with a config: ``field`` (dotted as the reporter names it, e.g.
    ``resources.memory_swap``, ``networks[0].mac_address``; None when the problem has no single
    field), ``message`` (what is wrong, without the field), the ``value`` given (or None), and
    where it was read (``file``; ``line``/``column`` 1-based, None when unknown).

    ``message`` may refer to other fields as ``{0}``, ``{1}``… filled from ``refs`` (field
    names), so that a front door renaming fields renames those too.

    ``str()``: ``file:line:column: field: message`` with the parts that are absent left out.
    """

    __slots__ = ("field", "message", "value", "file", "line", "column", "refs")

    def __init__(self, field: str | None, message: str, value: object = None, file: str | None = None,
                 line: int | None = None, column: int | None = None, refs: tuple[str, ...] = ()) -> None:
        self.field = field
        self.message = message
        self.value = value
        self.file = file
        self.line = line
        self.column = column
        self.refs = tuple(refs)

    def detail(self, names: Renamer | None = None) -> str:
        """``message`` with its ``refs`` filled in (passed through ``names``): the text after the field."""
        return self.message.format(*(_rename(names, r) for r in self.refs)) if self.refs else self.message

    def render(self, names: Renamer | None = None) -> str:
        """The text shown to a user, each field name (``field`` and ``refs``) passed through ``names``."""
        message = self.detail(names)
        parts = []
        if self.file is not None:
            parts.append(self.file if self.line is None else f"{self.file}:{self.line}:{self.column or 0}")
        if self.field:
            parts.append(_rename(names, self.field))
        parts.append(message)
        return ": ".join(parts)

    def renamed(self, names: Renamer) -> "Problem":
        """A copy with ``field`` and ``refs`` passed through ``names``."""
        return Problem(None if self.field is None else _rename(names, self.field), self.message, self.value,
                       self.file, self.line, self.column, tuple(_rename(names, r) for r in self.refs))

    def __str__(self) -> str:
        return self.render()

    def __repr__(self) -> str:
        return f"Problem({self.field!r}, {self.message!r}, value={self.value!r}, file={self.file!r}, " \
               f"line={self.line!r}, column={self.column!r}, refs={self.refs!r})"

    def _key(self) -> tuple:
        return (self.field, self.message, self.file, self.line, self.column, self.refs)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Problem) and self._key() == other._key() and self.value == other.value

    def __hash__(self) -> int:
        return hash(self._key())

    def __reduce__(self) -> tuple:
        return (Problem, (self.field, self.message, self.value, self.file, self.line, self.column, self.refs))


class ContainerError(Exception):
    """Base class of every declarative-ct runtime error."""


class InvalidID(ContainerError):
    """The id breaks libcontainer's rule: non-empty, ``[A-Za-z0-9_+.-]``, not ``.``/``..`` (ErrInvalidID)."""


class ContainerExists(ContainerError):
    """A container with this id already exists in the state root (ErrExist)."""


class ContainerNotExists(ContainerError):
    """No container with this id in the state root (ErrNotExist)."""


class ConfigInvalid(ContainerError):
    """The container config (or an OCI ``config.json``) is invalid or asks for something unsupported.

    ``problems``: a tuple of :class:`Problem` (a plain message is a problem without a field);
    ``str()``: one problem per line. :meth:`at` makes the common one-field error.
    """

    def __init__(self, *problems: Problem | str) -> None:
        self.problems = tuple(p if isinstance(p, Problem) else Problem(None, str(p)) for p in problems)
        super().__init__(*self.problems)  # args: what pickle rebuilds it from

    @classmethod
    def at(cls, field: str, message: str, value: object = None, refs: tuple[str, ...] = ()) -> "ConfigInvalid":
        """The error of one field: ``ConfigInvalid.at("resources.memory", "is too large", 5)``."""
        return cls(Problem(field, message, value, refs=refs))

    @property
    def field(self) -> str | None:
        """The first problem's field (None if it has none)."""
        return self.problems[0].field if self.problems else None

    def render(self, names: Renamer | None = None) -> str:
        """``str()`` with each field name passed through ``names`` (see :meth:`Problem.render`)."""
        return "\n".join(p.render(names) for p in self.problems)

    def renamed(self, names: Renamer) -> "ConfigInvalid":
        """The same error (same class) with its fields named as a front door names them."""
        return type(self)(*(p.renamed(names) for p in self.problems))

    def located(self, file: str) -> "ConfigInvalid":
        """The same error with ``file`` (a path, or what stands for one: ``--resources -``) given to each
        problem that has none: ``str()`` then starts with it."""
        return type(self)(*(p if p.file is not None else Problem(p.field, p.message, p.value, file, p.line,
                                                                  p.column, p.refs) for p in self.problems))

    def __str__(self) -> str:
        return self.render()


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
        self.detail = detail
        msg = f"invalid state transition from {from_status} to {to_status}"
        super().__init__(f"{msg}: {detail}" if detail else msg)

    def __reduce__(self) -> tuple:  # args hold the message, not the three parameters
        return (type(self), (self.from_status, self.to_status, self.detail))


class NotSupported(ContainerError):
    """A libcontainer operation this release does not implement yet (never a silent no-op)."""


class SystemError(ContainerError):  # noqa: A001 - libcontainer's name for it
    """A kernel or I/O failure while acting on a container (carries the failing step)."""


class ForkServerError(SystemError):
    """The fork server (``runtime.forkserver``) could not serve an exec: it failed to start, went
    away before forking, refused the request, or ended before reporting the status of a process it
    forked. Its own failure, not the exec'd process's: a plain exec may still succeed."""


class CgroupWriteError(SystemError):
    """The kernel refused ``value`` written to the cgroup file ``path`` (``errno``, e.g. EINVAL, EBUSY).

    ``field``/``reason`` (optional) say what it means in the config's terms
    (``resources.memory``, "1000 bytes is below what the container uses now…"; ``reason`` may
    refer to other fields as ``{0}``… from ``refs``, as :class:`Problem` does). ``str()``: the
    reason when there is one, else ``failed to write '<value>' to <path>: <strerror>``.
    """

    def __init__(self, path: str, value: str, errno: int, field: str | None = None, reason: str | None = None,
                 refs: tuple[str, ...] = ()) -> None:
        self.path = path
        self.value = value
        self.errno = errno
        self.field = field
        self.reason = reason
        self.refs = tuple(refs)
        super().__init__(path, value, errno, field, reason, self.refs)

    @property
    def strerror(self) -> str:
        """``os.strerror(errno)``: what the kernel said."""
        return os.strerror(self.errno)

    def render(self, names: Renamer | None = None) -> str:
        """``str()`` with the field names passed through ``names``."""
        if self.reason is None:
            return f"failed to write {self.value!r} to {self.path}: {self.strerror}"
        return Problem(self.field, self.reason, refs=self.refs).render(names)

    def renamed(self, names: Renamer) -> "CgroupWriteError":
        """The same error with ``field`` and ``refs`` named as a front door names them."""
        return CgroupWriteError(self.path, self.value, self.errno,
                                None if self.field is None else _rename(names, self.field), self.reason,
                                tuple(_rename(names, r) for r in self.refs))

    def __str__(self) -> str:
        return self.render()


class ResourcesNotApplied(SystemError):
    """``set()`` failed part way (``cause``, a :class:`SystemError`) and the limits already written were
    restored, or not: ``rollback_errors`` (messages) lists the restores that failed too.

    ``str()``: ``<cause> (previous values restored)``, or ``<cause>; restoring the previous values
    failed too: <errors>``.
    """

    def __init__(self, cause: SystemError, rollback_errors: tuple[str, ...] = ()) -> None:
        self.cause = cause
        self.rollback_errors = tuple(rollback_errors)
        super().__init__(cause, self.rollback_errors)

    def render(self, names: Renamer | None = None) -> str:
        """``str()`` with the cause's field names passed through ``names`` (when it has fields)."""
        cause = self.cause.render(names) if names is not None and hasattr(self.cause, "render") else str(self.cause)
        if self.rollback_errors:
            return f"{cause}; restoring the previous values failed too: {'; '.join(self.rollback_errors)}"
        return f"{cause} (previous values restored)"

    def renamed(self, names: Renamer) -> "ResourcesNotApplied":
        """The same error with the cause's fields named as a front door names them."""
        cause = self.cause.renamed(names) if hasattr(self.cause, "renamed") else self.cause
        return ResourcesNotApplied(cause, self.rollback_errors)

    def __str__(self) -> str:
        return self.render()


class InitFailed(SystemError):
    """The container's init (or an exec'd process) failed at ``stage`` (``"rootfs"``,
    ``"pivot_root"``, ``"exec"``…) with ``errno`` (0 when no system call failed) and ``message``:
    what it reports over the sync socket, runc's ``initError``/``procError`` with its stage.
    ``who``: the process that failed (``"container init"``, ``"exec"``), as the runtime words it.
    ``str()``: ``<who> failed: <message>`` when ``who`` is given, else ``<stage>: <message>``.
    """

    def __init__(self, stage: str, errno: int, message: str, who: str = "") -> None:
        self.stage = stage
        self.errno = errno
        self.message = message
        self.who = who
        super().__init__(stage, errno, message, who)

    def __str__(self) -> str:
        if self.who:
            return f"{self.who} failed: {self.message}"
        return f"{self.stage}: {self.message}" if self.stage else self.message


class StateCorrupt(SystemError):
    """``<root>/<id>/state.json`` cannot be read back (truncated, not JSON, wrong shape): the container's
    processes may still run. ``list`` shows it as ``unknown``; ``delete --force`` removes it.

    ``id`` and ``reason`` (what is wrong, without the id) when given; ``str()``:
    ``container <id>: <reason>``.
    """

    def __init__(self, *args: object, id: str | None = None, reason: str | None = None) -> None:  # noqa: A002
        self.id = id
        self.reason = reason
        if reason is not None:
            args = (f"container {id}: {reason}",)
        super().__init__(*args)

    def __reduce__(self) -> tuple:
        return (_rebuild, (type(self), self.args, {"id": self.id, "reason": self.reason}))


class CreateInterrupted(StateCorrupt):
    """``<root>/<id>`` holds what a create left when it was killed before saving state.json (exec.fifo,
    cgroup.json, maybe processes) and no create holds its lock. ``list`` shows it as ``unknown``;
    ``delete --force`` removes it, and a create of the same id reclaims it when its cgroup is the state
    root's own placement for that id (one its config chose may hold another container: that create
    raises this instead)."""


def _rebuild(cls: type, args: tuple, attrs: dict) -> BaseException:
    """Unpickle an error whose constructor takes keywords: built from ``args``, then ``attrs`` set."""
    err = cls(*args)
    err.__dict__.update(attrs)
    return err


def log_warning(message: str, *args: object, logger: str = "declarative_ct.runtime") -> None:
    """Log a warning (``message % args``) on ``logger``: something ignored or failed that does not
    fail the operation (a field runc 1.1 ignores, a poststop hook). ``logging`` is imported only
    then, so the CLI's start-up does not pay for it."""
    import logging

    logging.getLogger(logger).warning(message, *args)
