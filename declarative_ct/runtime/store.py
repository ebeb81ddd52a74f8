"""The state root: id validation, atomic JSON files (:mod:`..jsonfile`), and a lock per container.

Layout (runc's, plus our monitor's files): ``<root>/<id>/state.json``, ``exec.fifo``,
``exit.json`` (exit code and time, written by the monitor) and ``.lock``. A monitored container's
output is not here but under the data root (:mod:`.logfiles`): it outlives the container.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
from collections.abc import Iterator

from ..errors import ContainerNotExists, InvalidID
# Shared with spec/cache.py (which may not import the runtime); callers use them as store.*.
from ..jsonfile import read_json, write_atomic, write_json_atomic  # noqa: F401

STATE_FILE = "state.json"
EXEC_FIFO = "exec.fifo"
EXIT_FILE = "exit.json"
CGROUP_FILE = "cgroup.json"  # the cgroup paths, written before the cgroup is made
LOCK_FILE = ".lock"

MANAGER_PREFIX = "#"
"""Entries of a state root named ``#…`` belong to the manager (monitor socket, apply lock, journal):
no container id can contain ``#``, so they never collide with a container's directory."""


def container_entries(root: str) -> list[str]:
    """The names in ``root`` that are containers' directories (not the manager's ``#…`` files, nor
    the ``.#….tmp`` that an atomic write of one leaves when its writer is killed); [] if no root."""
    try:
        return sorted(n for n in os.listdir(root) if MANAGER_PREFIX not in n)
    except FileNotFoundError:
        return []


_ID_RE = re.compile(r"^[A-Za-z0-9_+.-]+\Z")


def validate_id(container_id: str) -> None:
    """libcontainer's ``validateID``: non-empty, ``[A-Za-z0-9_+.-]`` only, not ``.`` or ``..``.

    Raises:
        InvalidID: with the offending id quoted.
    """
    if isinstance(container_id, str) and len(container_id) > 255:
        raise InvalidID(f"invalid container id {container_id[:20]!r}…: longer than 255 characters")
    if not isinstance(container_id, str) or not _ID_RE.match(container_id) or container_id in (".", ".."):
        raise InvalidID(f"invalid container id {container_id!r}: use letters, digits and _ + . - "
                        "(not '.' or '..')")


@contextlib.contextmanager
def locked(state_dir: str, create: bool = True) -> Iterator[None]:
    """Hold the exclusive ``flock`` of a container's state directory.

    The lock file lives inside the directory, so a waiter that gets it after a destroy must
    re-check that the directory still exists. With ``create=False`` a missing lock file raises
    FileNotFoundError instead of being made (for writers that must not revive a deleted dir).
    """
    flags = os.O_RDWR | os.O_CLOEXEC | (os.O_CREAT if create else 0)
    try:
        fd = os.open(os.path.join(state_dir, LOCK_FILE), flags, 0o600)
    except FileNotFoundError:
        if create:
            raise ContainerNotExists(f"container state directory {state_dir} is gone") from None
        raise
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


@contextlib.contextmanager
def try_locked(state_dir: str) -> Iterator[bool]:
    """:func:`locked` without waiting: yields True while holding the lock, False when another
    process holds it, the directory has no lock file (no start ever began there) or the lock file
    was removed meanwhile (a destroy: the flock taken is then of no container)."""
    path = os.path.join(state_dir, LOCK_FILE)
    try:
        fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
    except (FileNotFoundError, NotADirectoryError):
        yield False
        return
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            current = os.stat(path).st_ino == os.fstat(fd).st_ino
        except OSError:
            current = False
        yield current
    finally:
        os.close(fd)
