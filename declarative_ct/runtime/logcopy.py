"""The monitor's log copier (conmon's ``k8s-file`` writer; containerd's CRI ``redirectLogs``): a
container's stdout and stderr pipes copied into its run's log file as CRI entries, with rotation.

One :class:`Copier` per monitored container, driven by the monitor's single-threaded selector
loop (:mod:`.monitord`: no threads there, it forks inits): :meth:`Copier.read` is called when a
pipe is readable, reads one chunk (at most :data:`READ_SIZE` bytes) and appends it to the file
at once. Each chunk costs a few bytes operations in C whatever its number of lines (one
timestamp per read, ``bytes.replace`` of the newlines), never a Python loop per line.

Entries (:mod:`.logfiles`): ``<RFC 3339 UTC, 9 digits>Z <stdout|stderr> <F|P> <text>\\n``. The
trailing part of a read that has no newline yet is kept and joined with the next read; once it
exceeds :data:`LINE_LIMIT` bytes (the kubelet's and containerd's 16 KiB line buffer) it is written
as a ``P`` entry, and so is what is left at the end of the pipe (as containerd does). A ``\\r``
before a newline is kept (containerd drops it). The order of entries within a stream is exact;
across stdout and stderr it is the order in which the monitor read them (writes that are further
apart than one turn of its loop, a few microseconds to milliseconds, come out in order).

Backpressure: the only buffers are the pipe (:data:`PIPE_SIZE`, 1 MiB where the kernel allows)
and one read chunk (:data:`READ_SIZE`; its entries take more: 41 bytes of header per line, so a
chunk of short lines grows a few times, one of bare newlines about 40 times, bounded all the same). A slow
disk holds up the monitor's loop one chunk's write at a time; meanwhile the pipes fill, and a
container that writes faster than the disk takes blocks on its full pipe (as with conmon): no
memory grows and no line is dropped for being written fast or read slowly. (The other
containers' copies wait for that write too: one loop serves them all.)

Rotation (:class:`LogFile`, by ``configs.logs.LogConfig``): before a write would take the file
past ``max_size``, the block is cut after its last entry that fits, ``<run>.log`` is renamed to
``.log.1`` (``.log.1`` to ``.log.2`` …, the oldest beyond ``max_files - 1`` deleted) and a new
file opened. A single entry longer than ``max_size`` is written whole (into a fresh file) and the
file rotated before the next one. A file deleted or renamed by someone else is noticed (the
path's inode against ours, looked at most once per :data:`CHECK_INTERVAL` s) and a new one made.

Write errors (ENOSPC, EIO, EDQUOT, a file that cannot be opened) never stop the monitor: the
file is cut back to its last whole entry, the entries are counted as lost, and once a write
succeeds again a ``stderr F`` entry says how many were lost and why; a full disk is never silent.

Stdlib only (the monitor is lean).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time

from . import logfiles

READ_SIZE = 128 * 1024  # bytes per read (fewer, larger reads cost no less: see MALLOC_ENV)
PIPE_SIZE = 1 << 20  # bytes: the pipes' capacity asked for (F_SETPIPE_SZ; /proc/sys/fs/pipe-max-size caps it)
LINE_LIMIT = 16 * 1024  # bytes of an unfinished line kept before it is written as a P entry
CHECK_INTERVAL = 1.0  # seconds between looks at whether the file was deleted or renamed
STREAMS = ("stdout", "stderr")
# The environment the monitor is started with (monitord._start): glibc's malloc otherwise gives the
# few hundred KiB a read's copies take back to the kernel after every read (mmap'd, or trimmed off
# the heap) and faults them in again at the next: 5 times the CPU of the copy itself. With these
# they stay in the heap (about 1 MiB once a container wrote fast). See mallopt(3).
MALLOC_ENV = {"MALLOC_MMAP_THRESHOLD_": str(4 << 20), "MALLOC_TRIM_THRESHOLD_": str(8 << 20)}
_OPEN_FLAGS = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW


def make_pipe() -> tuple[int, int]:
    """A pipe for one stream of a container: ``(read_fd, write_fd)``, both close-on-exec, grown to
    :data:`PIPE_SIZE` where allowed (silently left at the kernel's default otherwise).

    Raises:
        OSError: no pipe could be made (EMFILE, ENFILE).
    """
    r, w = os.pipe2(os.O_CLOEXEC)
    with contextlib.suppress(OSError, AttributeError):
        fcntl.fcntl(r, fcntl.F_SETPIPE_SZ, PIPE_SIZE)
    return r, w


class Stamp:
    """RFC 3339 UTC timestamps with nanoseconds as bytes (``2026-12-07T10:00:00.123456789Z``); the
    date and time part is formatted once per second."""

    __slots__ = ("_second", "_prefix")

    def __init__(self) -> None:
        self._second = -1
        self._prefix = b""

    def __call__(self, ns: int | None = None) -> bytes:
        """The timestamp of ``ns`` (nanoseconds since the epoch; None: now)."""
        second, fraction = divmod(time.time_ns() if ns is None else ns, 1_000_000_000)
        if second != self._second:
            self._second = second
            self._prefix = time.strftime("%Y-%m-%dT%H:%M:%S.", time.gmtime(second)).encode()
        return b"%s%09dZ" % (self._prefix, fraction)


def format_entries(data: bytes, pending: bytes, stamp: bytes, stream: bytes,
                   limit: int = LINE_LIMIT) -> tuple[bytes, bytes]:
    """The CRI entries of ``pending + data`` read at ``stamp`` from ``stream`` (b"stdout"/b"stderr"),
    and the new pending part: ``(entries, pending)``.

    Every complete line becomes an ``F`` entry; the part after the last newline is returned as
    the new pending part, unless it is longer than ``limit`` bytes: then it is written as a ``P``
    entry and the pending part is empty. ``entries`` is b"" when nothing is complete yet.
    """
    last = data.rfind(b"\n")
    if last < 0:
        pending += data
        if len(pending) > limit:
            return b"%s %s P %s\n" % (stamp, stream, pending), b""
        return b"", pending
    head = b"%s %s F " % (stamp, stream)
    # Two copies of the chunk in all: the replace, then the join (the tail's head cut off by a view).
    tail = data[last + 1:]
    replaced = (pending + data if pending else data).replace(b"\n", b"\n" + head)
    with memoryview(replaced) as view:
        out = b"".join((head, view[:len(replaced) - len(head) - len(tail)]))
    if len(tail) > limit:
        return out + b"%s %s P %s\n" % (stamp, stream, tail), b""
    return out, tail


def rotate_files(path: str, max_files: int) -> None:
    """Shift ``path`` to ``path.1`` (``.1`` to ``.2`` …), deleting what would go past
    ``path.<max_files - 1>``; with ``max_files`` 1, ``path`` is deleted. Missing files are skipped.

    Raises:
        OSError: a rename or delete failed for another reason than a missing file.
    """
    with contextlib.suppress(FileNotFoundError):
        os.unlink(f"{path}.{max_files - 1}" if max_files > 1 else path)
    for k in range(max_files - 2, 0, -1):
        with contextlib.suppress(FileNotFoundError):
            os.rename(f"{path}.{k}", f"{path}.{k + 1}")
    if max_files > 1:
        with contextlib.suppress(FileNotFoundError):
            os.rename(path, f"{path}.1")


class LogFile:
    """One run's log file, appended to by whole blocks of entries, rotated by size; never raises
    on a write (see the module's docstring for what happens to errors).

    Args:
        path: the run's current file (``<data_root>/logs/<name>/<run>.log``, :mod:`.logfiles`).
        max_size: bytes per file (``LogConfig.max_size``); max_files: files kept (``LogConfig.max_files``).
        clock: monotonic seconds (tests pass their own).
    """

    def __init__(self, path: str, max_size: int, max_files: int, clock=time.monotonic) -> None:
        self.path = path
        self.max_size = max_size
        self.max_files = max_files
        self.clock = clock
        self.fd = -1
        self.size = 0  # bytes in the current file, as far as we wrote them
        self.checked = clock()
        self.lost_entries = 0
        self.lost_bytes = 0
        self.lost_reason = ""
        self.discard = False  # the name's logs were removed for good: output goes nowhere
        self.rotation_held_until = 0.0  # clock() until which a rotation that failed is not tried again
        self.stamp = Stamp()
        self._open(truncate=False)

    # -- opening, checking, rotating ----------------------------------------------------
    def _open(self, truncate: bool) -> bool:
        try:
            self.fd = os.open(self.path, _OPEN_FLAGS | (os.O_TRUNC if truncate else 0), 0o640)
            self.size = os.fstat(self.fd).st_size
            return True
        except OSError as err:
            self.fd = -1
            self.lost_reason = f"cannot open {self.path}: {err.strerror or err}"
            return False

    def _close(self) -> None:
        if self.fd >= 0:
            with contextlib.suppress(OSError):
                os.close(self.fd)
            self.fd = -1

    def _check(self) -> None:
        """Reopen when the path is no longer our file (deleted, renamed, replaced) or was never opened."""
        self.checked = self.clock()
        try:
            st = os.stat(self.path)
        except OSError:
            st = None
        if self.fd >= 0 and st is not None:
            own = os.fstat(self.fd)
            if (st.st_dev, st.st_ino) == (own.st_dev, own.st_ino):
                return
        self._close()
        if st is None and not self._may_recreate():
            self.discard = True
            return
        self._open(truncate=False)

    def _may_recreate(self) -> bool:
        """Whether a vanished file may be made again: not when its directory is gone (the name's
        logs were removed) nor when newer runs have since pushed this one out (:data:`logfiles.KEEP_RUNS`)."""
        directory, name = os.path.split(self.path)
        if not os.path.isdir(directory):
            return False
        runs = logfiles.runs(directory)
        try:
            own = int(name.split(".", 1)[0])
        except ValueError:
            return True
        return not runs or own >= runs[-1] - (logfiles.KEEP_RUNS - 1)

    def _rotate(self) -> None:
        self._close()
        try:
            rotate_files(self.path, self.max_files)
        except OSError as err:
            self.lost_reason = f"cannot rotate {self.path}: {err.strerror or err}"
            # The old file is reopened and grows past max_size until the next try, CHECK_INTERVAL
            # from now: better than losing output, and the loop never spins on a rotation that fails.
            self.rotation_held_until = self.clock() + CHECK_INTERVAL
        self._open(truncate=self.max_files == 1)

    def _room(self) -> float:
        """Bytes the current file may still take before a rotation (no limit while one is held back)."""
        if self.rotation_held_until and self.clock() < self.rotation_held_until:
            return float("inf")
        return self.max_size - self.size

    # -- writing ------------------------------------------------------------------------
    def write(self, block: bytes) -> None:
        """Append ``block`` (whole entries) to the file, rotating it where needed; entries that cannot
        be written are counted as lost (and said so in the file once writing works again)."""
        if not block or self.discard:
            return
        if self.fd < 0 or self.clock() - self.checked >= CHECK_INTERVAL:
            self._check()
            if self.discard:
                return
        if not self.lost_entries:
            self._lose(block, self._write(block))
            return
        # The note of what was lost goes with the block, in one go: written only if the block can be.
        note = self._note()
        data = note + block
        done = self._write(data)
        if done < len(note):  # (0: writes stop at an entry's boundary) nothing went in
            self._lose(block, 0)
            return
        self.lost_entries = self.lost_bytes = 0
        self._lose(data, done)

    def _write(self, block: bytes) -> int:
        """Write ``block`` (whole entries), rotating; how much was written (all: ``len(block)``),
        always ending at an entry's boundary."""
        start, end = 0, len(block)
        while start < end:
            room = self._room()
            if end - start <= room:
                cut = end
            else:
                cut = block.rfind(b"\n", start, start + max(room, 0)) + 1 if room > 0 else 0
                if cut <= start:  # not even the next entry fits
                    if self.size > 0:
                        self._rotate()
                        continue
                    cut = block.find(b"\n", start) + 1 or end  # alone longer than max_size: whole
            if not self._put(block, start, cut):
                return start
            start = cut
            if (start < end or self.size >= self.max_size) and self._room() != float("inf"):
                self._rotate()
        return end

    def _put(self, block: bytes, start: int, end: int) -> bool:
        """Write ``block[start:end]``; on failure cut the file back to where it was (no torn entry)."""
        if self.fd < 0:
            return False
        view = memoryview(block)[start:end]
        done = 0
        try:
            while done < len(view):
                done += os.write(self.fd, view[done:])
        except OSError as err:  # (EINTR is retried by os.write)
            self.lost_reason = err.strerror or str(err)
            if done:
                with contextlib.suppress(OSError):
                    os.ftruncate(self.fd, self.size)
            return False
        finally:
            view.release()
        self.size += done
        return True

    def _lose(self, block: bytes, start: int) -> None:
        """Count ``block[start:]`` as lost (nothing when ``start`` is its end)."""
        if start < len(block):
            self.lost_entries += block.count(b"\n", start)
            self.lost_bytes += len(block) - start

    def _note(self) -> bytes:
        """The entry that says what was lost (a stderr F entry, as the container's own errors)."""
        return (b"%s stderr F [dct: %d log entries (%d bytes) were lost: %s]\n"
                % (self.stamp(), self.lost_entries, self.lost_bytes, self.lost_reason.encode(errors="replace")))

    def close(self) -> None:
        """Say what was lost if it can now be said, and close the file."""
        if self.lost_entries and not self.discard:
            if self.fd < 0:
                self._check()
            note = self._note()
            if not self.discard and self._write(note) == len(note):
                self.lost_entries = self.lost_bytes = 0
        self._close()


class Copier:
    """A container's output pipes copied into its run's :class:`LogFile`.

    Args:
        path, max_size, max_files: as :class:`LogFile`.
        fds: read ends of the pipes by stream name (``{"stdout": fd, "stderr": fd}``, either may be
            missing); made non-blocking here and owned from now on (closed at their end).
        state_dir: the container's state directory (which copier drains before its exit is recorded).
    """

    def __init__(self, path: str, max_size: int, max_files: int, fds: dict[str, int], state_dir: str = "") -> None:
        self.state_dir = state_dir
        self.log = LogFile(path, max_size, max_files)
        self.streams: dict[int, list] = {}  # fd -> [stream name (bytes), pending part]
        for name, fd in fds.items():
            os.set_blocking(fd, False)
            self.streams[fd] = [name.encode(), b""]

    @property
    def fds(self) -> list[int]:
        """The pipes still open."""
        return list(self.streams)

    def read(self, fd: int) -> bool:
        """Read one chunk of ``fd`` and write its entries; False once ``fd`` is at its end (then call
        :meth:`end`). A spurious wake-up (nothing to read) returns True."""
        try:
            data = os.read(fd, READ_SIZE)
        except (BlockingIOError, InterruptedError):
            return True
        except OSError:
            return False
        if not data:
            return False
        stream = self.streams[fd]
        out, stream[1] = format_entries(data, stream[1], self.log.stamp(), stream[0])
        self.log.write(out)
        return True

    def drain(self, limit: int = PIPE_SIZE) -> list[int]:
        """Copy what the pipes hold now (at most ``limit`` bytes each, so a writer that keeps going
        cannot hold us): init has exited, and what it wrote must be in the file before its exit is
        recorded. Returns the fds found at their end (call :meth:`end` for each)."""
        ended = []
        for fd in list(self.streams):
            done = 0
            while done < limit:
                try:
                    data = os.read(fd, READ_SIZE)
                except (BlockingIOError, InterruptedError):
                    break
                except OSError:
                    data = b""
                if not data:
                    ended.append(fd)
                    break
                done += len(data)
                stream = self.streams[fd]
                out, stream[1] = format_entries(data, stream[1], self.log.stamp(), stream[0])
                self.log.write(out)
        return ended

    def end(self, fd: int) -> bool:
        """``fd`` reached its end: write its unfinished line (a ``P`` entry, as containerd) and close
        it. Returns True when no pipe is left (the log file is closed then)."""
        name, pending = self.streams.pop(fd)
        if pending:
            self.log.write(b"%s %s P %s\n" % (self.log.stamp(), name, pending))
        with contextlib.suppress(OSError):
            os.close(fd)
        if not self.streams:
            self.log.close()
            return True
        return False

    def close(self) -> None:
        """End every pipe now (the monitor is going away)."""
        for fd in list(self.streams):
            self.end(fd)
