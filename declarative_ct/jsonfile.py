"""Atomic JSON files: written to a temp file in the same directory, fsync'd, renamed over.

Stdlib only, below every layer: the runtime's state root (:mod:`.runtime.store`) and the spec
cache in it (:mod:`.spec.cache`) both use it.
"""

from __future__ import annotations

import _thread
import contextlib
import json
import os


def write_json_atomic(path: str, data: object, mode: int = 0o600, durable: bool = True) -> None:
    """Write ``data`` as JSON to ``path`` atomically (:func:`write_atomic`, ``durable`` as there).

    Raises:
        OSError: with ``filename`` set to ``path``, the old content of ``path`` untouched.
    """
    write_atomic(path, json.dumps(data, separators=(",", ":")).encode(), mode, durable)  # dumps: the C encoder


def write_atomic(path: str, data: bytes, mode: int = 0o600, durable: bool = True) -> None:
    """Write ``data`` to ``path`` atomically: temp file in the same dir, fsync, rename.

    ``durable=False`` skips the fsync, for a file rewritten often that is worth nothing after a
    crash (readers never see it torn; after a power loss it may be empty or old): the fsync is most
    of the write's CPU on a journaling file system, and the journal's own work besides.

    Raises:
        OSError: with ``filename`` set to ``path`` (a full disk's ENOSPC comes from a write that
            names no file), the old content of ``path`` untouched.
    """
    # pid and thread: two threads of one process (apply's parallel creates) writing one path at once
    tmp = os.path.join(os.path.dirname(path), f".{os.path.basename(path)}.{os.getpid()}.{_thread.get_ident()}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, mode)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                if durable:
                    os.fsync(f.fileno())
            os.chmod(tmp, mode)
            os.rename(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
    except OSError as err:
        if err.filename == path:
            raise
        raise type(err)(err.errno, err.strerror or str(err), path) from err


def read_json(path: str) -> object:
    """Read a JSON file; raises FileNotFoundError or ValueError."""
    with open(path) as f:
        return json.load(f)
