"""Small helpers shared by the v1 and v2 drivers: read/write one cgroup file, remove a tree."""

from __future__ import annotations

import contextlib
import errno
import os
import time
import weakref
from typing import Iterator

from ...errors import CgroupWriteError, SystemError


def write(directory: str, name: str, value: str) -> None:
    """Write ``value`` to ``<directory>/<name>``; raises CgroupWriteError (path, value, errno)."""
    write_each(directory, name, [value])


def write_each(directory: str, name: str, values: list[str]) -> None:
    """Write each of ``values`` to ``<directory>/<name>`` with a write(2) of its own, through one open
    file (``devices.allow`` takes one rule per write). Raises CgroupWriteError with the path, the
    value refused and the errno; the values before it are written."""
    path = os.path.join(directory, name)
    value = values[0] if values else ""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
        try:
            for value in values:
                os.write(fd, value.encode())
        finally:
            os.close(fd)
    except OSError as err:
        raise CgroupWriteError(path, value, err.errno) from err


def read(directory: str, name: str) -> str:
    """Read ``<directory>/<name>`` stripped; raises OSError (FileNotFoundError if the cgroup is gone)."""
    try:
        with open(os.path.join(directory, name)) as f:
            return f.read().strip()
    except OSError as err:
        if err.errno == errno.ENODEV:  # the cgroup is being removed right now: as good as gone
            raise FileNotFoundError(errno.ENOENT, "cgroup removed", os.path.join(directory, name)) from None
        raise


def pids_recursive(directory: str) -> list[int]:
    """PIDs in ``cgroup.procs`` of ``directory`` and all its descendants; ``[]`` if it is gone."""
    pids: list[int] = []
    for dirpath, _, _ in os.walk(directory):
        try:
            with open(os.path.join(dirpath, "cgroup.procs")) as f:
                pids.extend(int(line) for line in f if line.strip())
        except FileNotFoundError:
            continue
    return pids


def descendants(directory: str) -> list[str]:
    """The cgroup directories below ``directory``, parents before children; ``[]`` if it is gone."""
    out: list[str] = []
    for dirpath, dirnames, _ in os.walk(directory):
        out.extend(os.path.join(dirpath, d) for d in dirnames)
    return out


def thaw_self_frozen(top: str, marker: str, control: str, thawed: str) -> None:
    """Write ``thawed`` to ``<dir>/<control>`` of every cgroup below ``top`` whose ``<dir>/<marker>``
    reads ``1``: frozen by a write to that very cgroup, which thawing ``top`` does not undo (v1:
    ``freezer.self_freezing`` / ``freezer.state`` / ``THAWED``; v2: ``cgroup.freeze`` / itself / ``0``).
    A cgroup or file that is gone is skipped; raises SystemError for a write refused otherwise."""
    for child in descendants(top):
        raw = read_raw(os.path.join(child, marker))
        if raw is not None and raw.strip() == b"1":
            try:
                write(child, control, thawed)
            except SystemError:
                if os.path.isdir(child):
                    raise


def nearest_existing(directory: str) -> str:
    """``directory`` or its closest existing ancestor (a cgroup not made yet has its parent's files)."""
    while not os.path.isdir(directory) and os.path.dirname(directory) != directory:
        directory = os.path.dirname(directory)
    return directory


ROOT_PARENT_PREFIX = "dct-"  # per-state-root parents (dct-<hash>): removed once their last cgroup goes


def prune_root_parent(directory: str) -> None:
    """rmdir the parent of a removed container cgroup when it is a per-state-root parent left empty
    (a create racing with this retries: see :func:`make_leaf`); any other parent is left alone."""
    parent = os.path.dirname(directory.rstrip("/"))
    if os.path.basename(parent).startswith(ROOT_PARENT_PREFIX):
        try:
            os.rmdir(parent)
        except OSError:
            pass  # not empty (another container of the root), or gone already


def make_leaf(directory: str, attempts: int = 5) -> None:
    """``makedirs(directory)``, again if a concurrent :func:`prune_root_parent` removed the parent
    between its mkdirs."""
    for i in range(attempts):
        try:
            os.makedirs(directory, exist_ok=True)
            return
        except FileNotFoundError:
            if i == attempts - 1:
                raise


@contextlib.contextmanager
def files_of(directory: str) -> Iterator[str]:
    """A directory with the files ``directory`` will have once made: its nearest existing
    ancestor, or, when that is the hierarchy's root (which lacks files such as ``pids.max``), a
    probe cgroup made beside it for the check and removed at once."""
    base = nearest_existing(directory)
    if not os.path.ismount(base):
        yield base
        return
    probe = os.path.join(base, f"dct-probe-{os.getpid()}-{os.urandom(3).hex()}")
    try:
        os.mkdir(probe)
    except OSError:
        yield base  # cannot make one (read-only?): the root's files are the best we have
        return
    try:
        yield probe
    finally:
        with contextlib.suppress(OSError):
            os.rmdir(probe)


def remove_tree(directory: str, attempts: int = 50) -> None:
    """rmdir ``directory`` and its child cgroups, deepest first, retrying EBUSY while tasks exit.

    Raises SystemError if the cgroup still holds tasks after ``attempts`` tries (about 0.5 s).
    """
    delay = 0.001
    for i in range(attempts):
        if not os.path.isdir(directory):
            return
        try:
            for dirpath, dirnames, _ in os.walk(directory, topdown=False):
                os.rmdir(dirpath)
            return
        except FileNotFoundError:
            continue
        except OSError as err:
            if err.errno != errno.EBUSY or i == attempts - 1:
                raise SystemError(f"failed to remove cgroup {directory}: {err.strerror}") from err
            time.sleep(delay)
            delay = min(delay * 2, 0.02)


PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")
_HUGE = 1 << 62  # the kernel shows an unlimited v1 limit as 2^63 rounded down to a page
# Files holding one "MAJ:MIN value" line per block device: a write changes one device's entry.
DEVICE_FILES = ("blkio.throttle.read_bps_device", "blkio.throttle.write_bps_device",
                "blkio.throttle.read_iops_device", "blkio.throttle.write_iops_device", "io.max")
_MEMORY_FILES = ("memory.limit_in_bytes", "memory.soft_limit_in_bytes", "memory.memsw.limit_in_bytes",
                 "memory.max", "memory.low", "memory.swap.max")


def read_raw(path: str) -> bytes | None:
    """The bytes of ``path``, or None if it does not exist (a controller or cgroup that isn't there).

    ``os.open``/``os.read`` rather than ``open()``: stats read a dozen files per container per tick.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    try:
        return os.read(fd, 1 << 16)
    except OSError as err:
        if err.errno == errno.ENODEV:  # the cgroup went while we read it
            return None
        raise
    finally:
        os.close(fd)


def device_entries(text: str) -> dict[str, str]:
    """``{"8:0": "1048576"}`` from a v1 throttle file; ``{"8:0": "rbps=1 wbps=max ..."}`` from io.max."""
    out = {}
    for line in text.splitlines():
        dev, _, rest = line.strip().partition(" ")
        if ":" in dev:
            out[dev] = rest.strip()
    return out


def matches(name: str, written: str, shown: str) -> bool:
    """True when ``shown`` (read back from cgroup file ``name``) is what writing ``written`` should give.

    The kernel normalises: memory limits are rounded down to a page, "unlimited" reads as a huge
    number on v1, cpu lists are re-formatted, device files list one line per device.
    """
    if written == shown:
        return True
    if name.startswith("cpuset."):
        from ...configs import parse_cpu_list
        try:
            return parse_cpu_list(written) == parse_cpu_list(shown)
        except ValueError:
            return False
    if name in DEVICE_FILES:
        dev, _, value = written.partition(" ")
        entry = device_entries(shown).get(dev)
        if name == "io.max":
            keys = dict(kv.split("=", 1) for kv in value.split())
            have = dict(kv.split("=", 1) for kv in (entry or "").split())
            return all(have.get(k, "max") == v for k, v in keys.items())
        return entry == value if value not in ("0", "") else entry is None
    if name in _MEMORY_FILES and written.lstrip("-").isdigit() and shown.isdigit():
        want, got = int(written), int(shown)
        return got >= _HUGE if want == -1 else got == want // PAGE_SIZE * PAGE_SIZE
    if name.endswith("bfq.weight"):  # "default 100" on v2 (and some v1 kernels)
        return shown.split()[-1] == written.split()[-1]
    return False


class Transaction:
    """Writes cgroup files, checking each one back; :meth:`rollback` undoes them, newest first.

    A journal entry is kept per write the kernel accepted, with what the file held just before
    it; rollback replays them in exact reverse order, so every intermediate state it passes
    through is one the kernel accepted on the way forward (memory vs memory+swap, CFS period vs
    quota). Device files (one line per device) are undone per device, removals included.
    """

    def __init__(self) -> None:
        self._journal: list[tuple[str, str, str, str]] = []  # (dir, name, old text, device or "")

    def write(self, directory: str, name: str, value: str) -> None:
        """Write ``value`` and read it back. Raises SystemError on a refused write or a differing read."""
        old = read(directory, name)
        write(directory, name, value)  # refused: nothing happened, nothing to undo
        self._journal.append((directory, name, old, value.split(" ", 1)[0] if name in DEVICE_FILES else ""))
        shown = read(directory, name)
        if not matches(name, value, shown):
            raise SystemError(f"{os.path.join(directory, name)}: wrote {value!r} but it reads {shown!r}")

    def rollback(self) -> list[str]:
        """Undo every accepted write, newest first; returns the errors (empty when all old values are back)."""
        errors = []
        for directory, name, old, device in reversed(self._journal):
            try:
                if device:
                    reset = "rbps=max wbps=max riops=max wiops=max" if name == "io.max" else "0"
                    write(directory, name, f"{device} {device_entries(old).get(device, reset)}")
                else:
                    write(directory, name, old)
            except SystemError as err:
                errors.append(str(err))
        self._journal.clear()
        return errors


class FileCache:
    """Keeps cgroup files open and re-reads them with ``pread(fd, n, 0)``, which regenerates the content.

    Re-reading an open cgroup file costs about 1 µs against 9 µs for open+read+close by path, and
    stats read ~25 files per container per tick. An open fd does not stop the cgroup's removal
    (reads then fail with ENODEV: the cache empties itself). A file absent from an existing
    cgroup directory is remembered as absent. At EMFILE it falls back to reading by path.
    :meth:`close` (or garbage collection) closes every fd. Not thread-safe: one thread per cache.
    """

    def __init__(self) -> None:
        self._fds: dict[object, int] = {}
        self._finalizer = weakref.finalize(self, _close_all, self._fds)

    def read(self, directory: str, name: str = "") -> bytes | None:
        """The content of ``<directory>/<name>`` (or of the path ``directory``) now; None if absent or removed.

        Keyed by the (directory, name) pair, so a hot loop builds no path string.
        """
        key = (directory, name) if name else directory
        fd = self._fds.get(key)
        if fd is None:
            path = f"{directory}/{name}" if name else directory
            try:
                fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
            except FileNotFoundError:
                if not os.path.isdir(os.path.dirname(path)):
                    return None  # no cgroup (yet): nothing to remember
                fd = -1  # the controller does not offer this file: it never will
            except OSError as err:
                if err.errno in (errno.EMFILE, errno.ENFILE):
                    return read_raw(path)
                raise
            self._fds[key] = fd
        if fd < 0:
            return None
        try:
            return os.pread(fd, 1 << 16, 0)
        except OSError as err:
            if err.errno not in (errno.ENODEV, errno.ENOENT):
                raise
            self.close()
            return None

    def close(self) -> None:
        """Close every cached fd."""
        _close_all(self._fds)


def _close_all(fds: dict[str, int]) -> None:
    for fd in fds.values():
        if fd >= 0:
            os.close(fd)
    fds.clear()
