"""What the TUI reads and does, behind one interface (:class:`Backend`, this module):
:class:`~tui.backend.real.RealBackend` over a state root (``declarative_ct.runtime`` +
``declarative_ct.reconcile``); the tests' fake is ``tests/tui/fake_backend.py``.

The real one is put together from one module per job: :mod:`.sampling` (the collector's reads:
readings, processes), :mod:`.files` (journal, logs, spec text), :mod:`.desired` (drift, plan,
apply) and :mod:`.actions` (pause, resume, signal, destroy, shell).

No Textual here. Threads: :meth:`Backend.sample`, :meth:`~Backend.desired`,
:meth:`~Backend.processes` and :meth:`~Backend.journal` are called from the collector thread
only, one call at a time (the real backend keeps ``Container`` objects, whose cgroup file cache
is not thread-safe, between those calls); actions (:meth:`~Backend.pause`…, :meth:`~Backend.apply`)
run in worker threads and use containers of their own. Every method may raise
:class:`~declarative_ct.errors.ContainerError` or ``OSError``; the app turns them into
notifications.
"""

from __future__ import annotations

import signal as _signal
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..desired import DesiredView, PlanView
from ..model import Reading
from ..processes import ProcInfo

if TYPE_CHECKING:
    from declarative_ct.runtime.logread import Entry

COLD_EVERY = 5
"""A container off screen is read every this many ticks (5 s at the default refresh), each in its own
turn so that every tick reads about the same number; on screen, every tick."""

SIGNALS: tuple[tuple[str, int], ...] = tuple((s.name, int(s)) for s in (
    _signal.SIGTERM, _signal.SIGKILL, _signal.SIGHUP, _signal.SIGINT, _signal.SIGQUIT, _signal.SIGUSR1,
    _signal.SIGUSR2, _signal.SIGSTOP, _signal.SIGCONT, _signal.SIGWINCH))
"""The signal picker's choices, most used first."""


SHELL = ("sh",)
"""What "shell into this container" runs: the one shell every image has."""


class PlanChanged(Exception):
    """The containers or specs moved between the plan shown and its confirmation: plan again."""


@dataclass(frozen=True)
class Outcome:
    """What became of one applied action (``result``: ok, failed, skipped)."""

    container: str
    kind: str
    cause: str
    result: str
    error: str = ""


@dataclass
class LogCursor:
    """Where the logs tab is in a container name's logs: which run it shows (``previous``: the run
    before the latest; otherwise the latest, and the next one when the container restarts).

    The backend keeps its reader in ``reader`` (the real one: a
    :class:`~declarative_ct.runtime.logread.Reader` holding one file open; :meth:`close` it) and
    sets, after each read: ``run`` (the run shown, None: none), ``skipped`` (bytes the read skipped,
    see :data:`~tui.backend.files.LOG_READ_MAX`) and ``note`` (why nothing is shown, or "").
    """

    previous: bool = False
    reader: object | None = None
    run: int | None = None
    skipped: int = 0
    note: str = ""

    def close(self) -> None:
        """Release the reader (its open file); the next read starts again from the tail."""
        close = getattr(self.reader, "close", None)
        if close is not None:
            close()
        self.reader = None


class Backend:
    """The interface (and its documentation); see :class:`RealBackend` for the real behaviour."""

    root: str = ""
    specs_given: bool = False
    readonly: bool = False

    def sample(self, hot: set[str] | None = None, tick: int = 0) -> list[Reading]:
        """Every container's :class:`Reading`, in one pass (collector thread).

        ``hot``: the containers on screen, read every tick; the others may be read only every
        :data:`COLD_EVERY` ticks (their previous Reading object is returned meanwhile, the very
        same object). None: read all. ``tick``: the collector's tick count (spreads the cold reads).
        """
        raise NotImplementedError

    def desired(self) -> DesiredView | None:
        """Drift per container name against the specs (collector thread, every few ticks)."""
        raise NotImplementedError

    def processes(self, container_id: str) -> list[ProcInfo] | None:
        """The processes of one container (collector thread); None if it has none to show."""
        raise NotImplementedError

    def journal(self) -> list[dict]:
        """Journal lines appended since the previous call (the recent past on the first call)."""
        raise NotImplementedError

    def read_logs(self, container_id: str, cursor: LogCursor) -> list[Entry]:
        """New lines of a container name's logs since ``cursor`` (updated in place), oldest first
        (:class:`~declarative_ct.runtime.logread.Entry`: time, stream, text, run); the first read
        gives the tail. Bounded per read; what was skipped is in ``cursor.skipped``."""
        raise NotImplementedError

    def notices(self) -> tuple[str, ...]:
        """Conditions worth a line on screen that are not errors (collector thread, every tick)."""
        return ()

    def spec_text(self, container_id: str) -> tuple[str, str] | None:
        """``(title, YAML text)`` of the spec a container comes from, or None."""
        raise NotImplementedError

    def pause(self, container_id: str) -> None:
        raise NotImplementedError

    def resume(self, container_id: str) -> None:
        raise NotImplementedError

    def signal(self, container_id: str, sig: int, pid: int | None = None, create_time: float | None = None) -> None:
        """``sig`` to the container's init, or to one of its processes (``pid`` with its ``create_time``)."""
        raise NotImplementedError

    def destroy(self, container_id: str) -> None:
        raise NotImplementedError

    def shell(self, container_id: str, argv: Sequence[str] = SHELL) -> int:
        """Run ``argv`` (a shell) in the container on a new pty proxied to this process's terminal
        (stdin/stdout), as ``dct exec -t`` does; its exit code. Blocks until it ends: call it on the
        main thread with the app suspended (it sets the terminal raw and handles SIGWINCH)."""
        raise NotImplementedError

    def plan(self, prune: bool = False) -> PlanView:
        raise NotImplementedError

    def apply(self, plan: PlanView, on_outcome: Callable[[Outcome], None] | None = None) -> list[Outcome]:
        raise NotImplementedError

    def close(self) -> None:
        """Release what the backend keeps open."""
