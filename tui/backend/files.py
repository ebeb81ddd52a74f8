"""The real backend's file reads: the reconciler's journal, a container's log files, the text of
the spec a container comes from."""

from __future__ import annotations

import contextlib
import os
from typing import TYPE_CHECKING

from . import LogCursor

if TYPE_CHECKING:
    from declarative_ct.runtime.logread import Entry

JOURNAL_TAIL = 256 << 10
"""Bytes of the journal read at start: the recent past, not all of it."""

LOG_TAIL = 512 << 10
"""Bytes of a container's log read at most (backwards) when the logs are opened: the recent past."""

LOG_READ_MAX = 128 << 10
"""Bytes of each log file read at most per read (the logs tab reads twice a second): when more was
written meanwhile, the older part is skipped (and said), so that the view stays current and the
memory a read takes stays bounded whatever a container writes."""


class FileReads:
    """:meth:`~tui.backend.Backend.journal`, :meth:`~tui.backend.Backend.read_logs`,
    :meth:`~tui.backend.Backend.notices` and :meth:`~tui.backend.Backend.spec_text` of
    :class:`~tui.backend.real.RealBackend` (uses its ``runtime``, ``root``, ``_journal_pos``, ``_docs``)."""

    def journal(self) -> list[dict]:
        import json

        from declarative_ct.reconcile.apply import JOURNAL_FILE

        path = os.path.join(self.root, JOURNAL_FILE)
        try:
            st = os.stat(path)
        except OSError:
            return []
        inode, offset = self._journal_pos or (st.st_ino, max(0, st.st_size - JOURNAL_TAIL))
        if inode != st.st_ino or st.st_size < offset:
            offset = 0  # replaced or truncated: read it anew
        if st.st_size == offset:
            self._journal_pos = (st.st_ino, offset)
            return []
        with open(path, "rb") as f:
            f.seek(offset)
            data = f.read()
        end = data.rfind(b"\n") + 1  # a line being written stays for the next call
        if self._journal_pos is None and offset > 0:
            data = data[data.find(b"\n") + 1:end]  # the tail began mid-line
        else:
            data = data[:end]
        self._journal_pos = (st.st_ino, offset + end)
        out = []
        for line in data.splitlines():
            with contextlib.suppress(ValueError):
                entry = json.loads(line)
                if isinstance(entry, dict):
                    out.append(entry)
        return out

    # -- any thread (files only) -----------------------------------------------------------
    def read_logs(self, container_id: str, cursor: LogCursor) -> list[Entry]:
        """The lines of the container name's logs since ``cursor``
        (:mod:`declarative_ct.runtime.logread` over ``<data_root>/logs/<name>``).

        The first read gives the last :data:`~tui.logs.LOG_LINES` lines (reading at most
        :data:`LOG_TAIL` bytes backwards); later ones what was written since, at most
        :data:`LOG_READ_MAX` bytes per file, the newest: the bytes skipped are in
        ``cursor.skipped``. A read that finds nothing new costs an ``fstat`` and two ``stat`` calls
        (the reader keeps its file open between reads: close the cursor when done).
        """
        from declarative_ct.runtime import logfiles, logread

        from ..logs import LOG_LINES

        entries: list[Entry] = []
        reader = cursor.reader
        if reader is None:
            directory = logfiles.log_dir(self.runtime.data_root, container_id)
            if cursor.previous:
                runs = logfiles.runs(directory)
                if len(runs) < 2:  # looked for again at the next read (a restart makes one)
                    cursor.run, cursor.skipped = None, 0
                    cursor.note = f"no previous run (only run {runs[-1]})" if runs else "no logs"
                    return []
                reader = logread.Reader(directory, runs[-2])
            else:
                reader = logread.Reader(directory, None, next_runs=True)
            cursor.reader = reader
            entries = reader.start(tail=LOG_LINES, max_bytes=LOG_TAIL)
        entries += reader.read(max_bytes=LOG_READ_MAX)
        cursor.run, cursor.skipped = reader.run, reader.skipped
        cursor.note = "" if reader.run is not None else (
            "no logs yet (a container made without --monitor writes to its caller's stdio)")
        return entries

    def notices(self) -> tuple[str, ...]:
        """``no state root at …`` while the state root does not exist (nothing was made there yet)."""
        if os.path.isdir(self.root):
            return ()
        return (f"no state root at {self.root} (no container was made there yet)",)

    def spec_text(self, container_id: str) -> tuple[str, str] | None:
        """The YAML document of the spec (from its file, at its line), or the applied spec as YAML."""
        docs = self._docs or []
        doc = next((d for d in docs if d.spec.name == container_id), None)
        if doc is not None:
            return f"{doc.source}:{doc.line}", yaml_document(doc.source, doc.line)
        from declarative_ct.reconcile import last_applied
        from declarative_ct.reconcile.convert import LABEL_SOURCE

        try:
            c = self.runtime.load(container_id)
        except Exception:  # noqa: BLE001
            return None
        data = last_applied.read(c.config)
        if not data:
            return None
        import yaml

        source = c.config.label(LABEL_SOURCE) or "?"
        return f"applied spec (from {source})", yaml.safe_dump(data, sort_keys=False, default_flow_style=None)



def yaml_document(path: str, line: int) -> str:
    """The YAML document of ``path`` that starts at 1-based ``line``: up to the next ``---``
    (comments just above it included); the whole file if it cannot be cut; an error text if unreadable."""
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            lines = f.read().splitlines()
    except OSError as err:
        return f"# {path}: {err.strerror}"
    start = max(0, line - 1)
    while start > 0 and lines[start - 1].startswith("#"):
        start -= 1
    end = start
    while end < len(lines) and not (end > start and lines[end].startswith("---")):
        end += 1
    return "\n".join(lines[start:end]) + "\n"

