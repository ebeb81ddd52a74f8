"""A sealed copy of the runtime's own executable (runc's ``exeseal``; CVE-2019-5736).

A process of the runtime that a container can see (init before it execs the program, the
``exec`` child before its ``execve``) must not be backed by a writable host file: a container
process holding CAP_SYS_PTRACE (which overrides "not dumpable") can open ``/proc/<pid>/exe`` and
write into the host's interpreter once the runtime is done with it; and a program that is
``/proc/self/exe`` itself makes the kernel run that same file inside the container. So every
process that forks into a container runs from a memfd copy of the interpreter sealed against
writes, shrinking and growing (``F_SEAL_SEAL|F_SEAL_SHRINK|F_SEAL_GROW|F_SEAL_WRITE``): opening
it through ``/proc/<pid>/exe`` gives a file on no host filesystem that nobody can change.

Only the executable is copied: the shared libraries it maps (libpython, libc) stay the host's,
reachable through ``/proc/<pid>/map_files`` only with CAP_SYS_ADMIN or CAP_CHECKPOINT_RESTORE in
the initial user namespace, which a container with either has a dozen other ways out with.

Stdlib only: the container's stage 1 imports it.
"""

from __future__ import annotations

import errno
import fcntl
import os
import threading

MFD_CLOEXEC = 0x0001
MFD_ALLOW_SEALING = 0x0002
MFD_EXEC = 0x0010  # Linux >= 6.3: executable on purpose (else vm.memfd_noexec may seal it noexec)
F_ADD_SEALS = 1033
F_GET_SEALS = 1034
F_SEAL_SEAL = 0x0001
F_SEAL_SHRINK = 0x0002
F_SEAL_GROW = 0x0004
F_SEAL_WRITE = 0x0008
SEALS = F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE
MEMFD_NAME = "dct-exe"  # shows as /memfd:dct-exe (deleted) in /proc/<pid>/exe and maps

_lock = threading.Lock()
_cached: tuple[int, int, int] | None = None  # (fd, st_dev, st_ino) of this process's sealed image


def is_sealed(fd: int) -> bool:
    """True when ``fd`` is a memfd (no link on any filesystem) carrying every seal of :data:`SEALS`."""
    try:
        seals = fcntl.fcntl(fd, F_GET_SEALS)
    except OSError:  # EINVAL: not a file that takes seals (any file on a disk, a pipe…)
        return False
    return seals & SEALS == SEALS and os.fstat(fd).st_nlink == 0


def running_sealed() -> bool:
    """True when the calling process runs from a sealed image (its forks need no copy of their own)."""
    fd = os.open("/proc/self/exe", os.O_RDONLY | os.O_CLOEXEC)
    try:
        return is_sealed(fd)
    finally:
        os.close(fd)


def sealed_executable() -> int:
    """An fd (close-on-exec, owned by this module: do not close it) of a sealed image of the
    running executable, for ``os.execve(fd, …)`` or ``/proc/self/fd/<fd>``.

    Made once per process and kept: the running image itself when :func:`running_sealed`,
    else a sealed memfd copy of ``/proc/self/exe`` (the copy costs about a page-cache read of
    the file: ~0.1 ms for pyenv's 17 KiB stub over libpython, a few ms for a 7 MiB static
    interpreter). A fork inherits it. Thread-safe.

    Raises:
        OSError: memfd_create(2) or sealing is not available (Linux < 3.17, vm.memfd_noexec=2):
            the runtime refuses to run containers rather than expose the host's interpreter.
    """
    global _cached
    # Made already: no lock (a thread may hold it for as long as a copy takes, or have held it at
    # a fork). The tuple is swapped whole: read once, it is read whole.
    cached = _cached
    if _still_open(cached):
        return cached[0]
    with _lock:
        cached = _cached
        if _still_open(cached):
            return cached[0]
        fd = _make_sealed_copy()
        st = os.fstat(fd)
        _cached = (fd, st.st_dev, st.st_ino)
        return fd


def _still_open(cached: tuple[int, int, int] | None) -> bool:
    """True when ``cached`` (fd, st_dev, st_ino) still names the image it was made for; False
    after a close behind our back (a close-all-fds in this process), and for None."""
    if cached is None:
        return False
    fd, dev, ino = cached
    try:
        st = os.fstat(fd)
    except OSError:
        return False
    return (st.st_dev, st.st_ino) == (dev, ino)


def _make_sealed_copy() -> int:
    src = os.open("/proc/self/exe", os.O_RDONLY | os.O_CLOEXEC)
    try:
        if is_sealed(src):
            return src  # already a sealed image: executing it again is as safe
        try:
            fd = os.memfd_create(MEMFD_NAME, MFD_CLOEXEC | MFD_ALLOW_SEALING | MFD_EXEC)
        except OSError as err:
            if err.errno != errno.EINVAL:  # a kernel before MFD_EXEC (< 6.3), where memfds are executable anyway
                raise
            fd = os.memfd_create(MEMFD_NAME, MFD_CLOEXEC | MFD_ALLOW_SEALING)
        try:
            _copy(src, fd, os.fstat(src).st_size)
            fcntl.fcntl(fd, F_ADD_SEALS, SEALS)
        except BaseException:
            os.close(fd)
            raise
        os.close(src)
        return fd
    except BaseException:
        os.close(src)
        raise


def _copy(src: int, dst: int, size: int) -> None:
    """Copy ``size`` bytes in the kernel (sendfile; a read/write loop where it is refused)."""
    offset = 0
    try:
        while offset < size:
            sent = os.sendfile(dst, src, offset, size - offset)
            if sent == 0:
                break
            offset += sent
    except OSError:
        os.lseek(src, offset, os.SEEK_SET)
        while chunk := os.read(src, 1 << 20):
            os.write(dst, chunk)
        return
    if offset != size:
        raise OSError(errno.EIO, f"copying /proc/self/exe: {offset} of {size} bytes")
