"""The TUI's real backend: :class:`RealBackend`, put together from the reads, the desired-state side
and the actions (one module each)."""

from __future__ import annotations

import os
from collections.abc import Sequence

from ..desired import DesiredEntry
from . import Backend
from .actions import Actions
from .desired import DesiredState
from .files import FileReads
from .sampling import Sampling, _Kept


class RealBackend(Sampling, FileReads, DesiredState, Actions, Backend):
    """The TUI over a state root.

    Args:
        root: the state root (``dct --root``; default ``$DCT_ROOT`` or ``/run/dct``).
        paths: spec files/directories (desired state); empty: no drift, no plan.
        readonly: refuse every action (also enforced by the app).

    Containers are loaded once and kept (``Container.stats()`` then re-reads open cgroup files:
    ~0.1 ms each); one whose ``state.json`` changed (a ``set()``, a new run) is loaded again.
    """

    def __init__(self, root: str | None = None, paths: Sequence[str] = (), readonly: bool = False) -> None:
        from declarative_ct.runtime import Runtime

        self.runtime = Runtime(root)
        self.root = self.runtime.root
        self.paths = [os.path.abspath(p) for p in paths]
        self.specs_given = bool(self.paths)
        self.readonly = readonly
        self._kept: dict[str, _Kept] = {}
        self._procs: dict[int, object] = {}
        self._users: dict[int, str] = {}
        self._journal_pos: tuple[int, int] | None = None
        self._docs: list | None = None
        self._docs_key: object = None
        self._docs_errors: tuple[str, ...] = ()
        self._observe_cache: dict = {}
        self._normalized_cache: dict[int, tuple[object, dict]] = {}
        self._entries: dict[str, DesiredEntry] = {}


    def close(self) -> None:
        for kept in self._kept.values():
            kept.container.close()
        self._kept.clear()
