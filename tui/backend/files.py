"""The real backend's file reads: the reconciler's journal, a container's log files, the text of
the spec a container comes from."""

from __future__ import annotations

import contextlib
import os

from . import LogCursor

JOURNAL_TAIL = 256 << 10
"""Bytes of the journal read at start: the recent past, not all of it."""

LOG_TAIL = 128 << 10
"""Bytes of each log file (stdout, stderr) read when the logs are opened: the recent past."""

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
    def read_logs(self, container_id: str, cursor: LogCursor) -> list[tuple[str, bytes]]:
        """What ``stdout.log``/``stderr.log`` gained since ``cursor``: ``[(stream, bytes)]``.

        The first read gives the last :data:`LOG_TAIL` bytes of each file (from a line start);
        later ones at most :data:`LOG_READ_MAX` bytes per file, the newest: the bytes skipped
        before them are in ``cursor.skipped``. A file replaced or truncated is read anew. The two
        files carry no timestamps: the chunks come in the order their files were last written
        (mtime), so lines of one stream keep their order, and lines of both interleave as
        they were read (to within one read).
        """
        from declarative_ct.runtime import store

        out = []
        cursor.skipped = {}
        for stream, name in (("stdout", store.STDOUT_LOG), ("stderr", store.STDERR_LOG)):
            path = os.path.join(self.root, container_id, name)
            try:
                fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
            except OSError:
                continue
            try:
                st = os.fstat(fd)
                first = stream not in cursor.positions
                inode, offset = cursor.positions.get(stream, (st.st_ino, max(0, st.st_size - LOG_TAIL)))
                if inode != st.st_ino or st.st_size < offset:
                    offset = 0
                if st.st_size - offset > LOG_READ_MAX:
                    cursor.skipped[stream] = st.st_size - LOG_READ_MAX - offset
                    offset = st.st_size - LOG_READ_MAX
                data = os.pread(fd, st.st_size - offset, offset) if st.st_size > offset else b""
                cursor.positions[stream] = (st.st_ino, offset + len(data))
                if data and offset > 0 and (first or stream in cursor.skipped):
                    data = data[data.find(b"\n") + 1:]  # begun mid-line: from the next line
            finally:
                os.close(fd)
            if data:
                out.append((st.st_mtime_ns, stream, data))
        return [(stream, data) for _, stream, data in sorted(out, key=lambda c: c[0])]

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

