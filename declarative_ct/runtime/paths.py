"""The confined path walker: open a path inside a root as an ``O_PATH`` descriptor, never outside it.

Every path the container init mounts onto, masks, makes read-only or creates a node at goes
through :func:`open_in_root` (libcontainer does this with securejoin's ``OpenInRoot`` and
``MkdirAllInRoot``). Symlinks are followed as if the root were ``/``: an absolute target or a
``..`` climbing past the root stays inside it. The result is a descriptor, not a string, so a
directory swapped for a symlink after the walk cannot redirect what is done with it
(CVE-2021-30465): the mount is made onto ``/proc/self/fd/<fd>`` (:func:`mount`).

Two walkers: ``openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)`` where the kernel has it (5.6),
and a component-by-component ``O_NOFOLLOW`` walk otherwise, which also creates missing
components one at a time relative to the parent's descriptor.

Runs in the container init: stdlib and :mod:`linux` only.
"""

from __future__ import annotations

import errno
import os
import stat

from . import linux

_O_PATH = os.O_PATH | os.O_CLOEXEC
_RESOLVE = linux.RESOLVE_IN_ROOT | linux.RESOLVE_NO_MAGICLINKS
_MAX_LINKS = 40  # the kernel's MAXSYMLINKS
_RETRIES = 64  # openat2's EAGAIN (a rename raced the walk) and a name changing under mkdirat/open

DIR = "dir"
FILE = "file"

# False once openat2 has answered ENOSYS (or forced off by a test); the O_NOFOLLOW walk is used then.
use_openat2 = True


def _components(path: str) -> list[str]:
    return [p for p in path.split("/") if p not in ("", ".")]


def open_in_root(root_fd: int, path: str, create: str | None = None, mode: int = 0o755) -> int:
    """Open ``path`` inside the directory ``root_fd`` as an ``O_PATH | O_CLOEXEC`` descriptor.

    ``path`` is taken relative to the root whether it starts with ``/`` or not; every symlink on
    the way (the last component's too) is resolved as if ``root_fd`` were ``/``. With ``create``
    (:data:`DIR` or :data:`FILE`) missing components are made one at a time with ``mkdirat``
    (``mode``; an empty file of mode 0644 for the last one with :data:`FILE`) relative to the
    descriptor of their parent, so a concurrent symlink swap cannot move them out of the root.

    Returns a descriptor the caller closes (a fresh one also when ``path`` is the root itself).
    Raises OSError: ENOENT (missing, no ``create``), ENOTDIR, ELOOP (too many symlinks), or what
    ``openat2``/``mkdirat`` returned; ``filename`` is ``path``.
    """
    global use_openat2
    if use_openat2:
        for _ in range(_RETRIES):
            try:
                return linux.openat2(root_fd, path or ".", _O_PATH, _RESOLVE)
            except OSError as err:
                if err.errno == errno.EAGAIN:
                    continue
                if err.errno == errno.ENOSYS:
                    use_openat2 = False
                    break
                if err.errno == errno.ENOENT and create:
                    break  # the walk below creates the missing components, one by one
                raise
    return _walk(root_fd, path, create, mode)


def open_no_symlinks(root_fd: int, path: str) -> int:
    """Open ``path`` inside ``root_fd`` as an ``O_PATH | O_CLOEXEC`` descriptor, refusing any
    symlink on the way, the last component's included (``RESOLVE_NO_SYMLINKS``).

    ``..`` never climbs above the root. Raises OSError: ELOOP when a component is a symlink,
    ENOENT, ENOTDIR; ``filename`` is ``path``.
    """
    global use_openat2
    if use_openat2:
        for _ in range(_RETRIES):
            try:
                return linux.openat2(root_fd, path or ".", _O_PATH, _RESOLVE | linux.RESOLVE_NO_SYMLINKS)
            except OSError as err:
                if err.errno == errno.EAGAIN:
                    continue
                if err.errno != errno.ENOSYS:
                    raise
                use_openat2 = False
                break
    stack: list[int] = []
    try:
        for name in _components(path):
            if name == "..":
                if stack:
                    os.close(stack.pop())
                continue
            fd = os.open(name, _O_PATH | os.O_NOFOLLOW, dir_fd=stack[-1] if stack else root_fd)
            stack.append(fd)
            if stat.S_ISLNK(os.fstat(fd).st_mode):
                raise OSError(errno.ELOOP, os.strerror(errno.ELOOP), path)
        return stack.pop() if stack else os.open(".", _O_PATH, dir_fd=root_fd)
    except FileNotFoundError:
        raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), path) from None
    finally:
        for fd in stack:
            os.close(fd)


def _walk(root_fd: int, path: str, create: str | None, mode: int) -> int:
    """The ``O_NOFOLLOW`` walk: one ``openat`` per component from a held parent descriptor.

    ``..`` pops back to the parent held on a stack (never above the root); a symlink is read
    through its own ``O_PATH`` descriptor and its target spliced into the remaining components
    (from the root when absolute).
    """
    parts = _components(path)
    stack: list[int] = []  # descriptors below the root, innermost last
    links = retries = 0
    try:
        while parts:
            name = parts.pop(0)
            cur = stack[-1] if stack else root_fd
            if name == "..":
                if stack:
                    os.close(stack.pop())
                continue
            try:
                fd = os.open(name, _O_PATH | os.O_NOFOLLOW, dir_fd=cur)
            except FileNotFoundError:
                if not create:
                    raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), path) from None
                retries += 1
                if retries > _RETRIES:
                    raise OSError(errno.EAGAIN, "kept changing while it was created", path) from None
                _create(cur, name, FILE if create == FILE and not parts else DIR, mode)
                parts.insert(0, name)  # look it up again: whatever is there now is walked as usual
                continue
            st = os.fstat(fd)
            if stat.S_ISLNK(st.st_mode):
                target, links = _read_link(fd, links, path)
                if target.startswith("/"):
                    while stack:
                        os.close(stack.pop())
                parts[:0] = _components(target)
                continue
            if parts and not stat.S_ISDIR(st.st_mode):
                os.close(fd)
                raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), path)
            stack.append(fd)
        return stack.pop() if stack else os.open(".", _O_PATH, dir_fd=root_fd)
    finally:
        for fd in stack:
            os.close(fd)


def _read_link(fd: int, links: int, path: str) -> tuple[str, int]:
    """The target of the symlink opened as ``fd`` (closed here) and the walk's link count plus
    one. Raises OSError(ELOOP) naming ``path`` past the kernel's limit."""
    try:
        target = os.readlink("", dir_fd=fd)
    finally:
        os.close(fd)
    if links + 1 > _MAX_LINKS:
        raise OSError(errno.ELOOP, os.strerror(errno.ELOOP), path)
    return target, links + 1


def _create(dir_fd: int, name: str, kind: str, mode: int) -> None:
    """``mkdirat`` or an exclusive ``openat(O_CREAT)``; a name that appeared meanwhile is left
    to the caller's next lookup (which follows it, confined, if it is a symlink)."""
    try:
        if kind == DIR:
            os.mkdir(name, mode, dir_fd=dir_fd)
        else:
            os.close(os.open(name, os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644,
                             dir_fd=dir_fd))
    except FileExistsError:
        pass


class Root:
    """A directory held open as the root of confined lookups: ``fd`` (``O_PATH``), the ``path`` it
    was opened by, and ``real``, where the kernel says it is (what :func:`where` of a descriptor
    inside it starts with)."""

    def __init__(self, fd: int, path: str):
        self.fd = fd
        self.path = path
        self.real = where(fd)

    @classmethod
    def at(cls, path: str) -> "Root":
        """Hold the directory ``path`` (not a symlink: ``O_NOFOLLOW``). Raises OSError."""
        return cls(os.open(path, _O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW), path)

    def open(self, path: str, create: str | None = None, mode: int = 0o755) -> int:
        """:func:`open_in_root` under this root."""
        return open_in_root(self.fd, path, create, mode)

    def contains(self, real: str) -> bool:
        """True when the kernel path ``real`` (from :func:`where`) lies in this root."""
        return self.real == "/" or real == self.real or real.startswith(self.real + "/")

    def inner(self, real: str) -> str:
        """The kernel path ``real`` as seen from inside this root (``real`` itself when outside it)."""
        if not self.contains(real) or self.real == "/":
            return real
        return real[len(self.real):] or "/"

    def open_host(self, host_path: str) -> int:
        """Open the host path ``host_path`` as an ``O_PATH | O_CLOEXEC`` descriptor, confined to this
        root from wherever the walk enters it.

        The path is walked one component at a time from ``/`` with ``O_NOFOLLOW``, symlinks resolved
        as the host does, and after each step the descriptor is asked where it is (:func:`where`):
        once inside this root, the rest of the path is resolved by :meth:`open`, as if this root were
        ``/``. So a symlink in the rootfs (which the container can write) is never followed on the
        host's terms, whether the path names the rootfs or reaches it through a symlinked parent.

        Raises OSError as :func:`open_in_root` (ENOENT, ENOTDIR, ELOOP); ``filename`` is ``host_path``.
        """
        parts = _components(host_path)
        cur = os.open("/", _O_PATH | os.O_DIRECTORY)
        links = 0
        try:
            while True:
                real = where(cur)
                if self.contains(real):
                    return self.open(os.path.join(self.inner(real), *parts))
                if not parts:
                    cur, found = -1, cur
                    return found
                name = parts.pop(0)
                try:
                    fd = os.open(name, _O_PATH | os.O_NOFOLLOW, dir_fd=cur)
                except OSError as err:
                    raise OSError(err.errno, os.strerror(err.errno), host_path) from None
                st = os.fstat(fd)
                if stat.S_ISLNK(st.st_mode):
                    target, links = _read_link(fd, links, host_path)
                    parts[:0] = _components(target)
                    if target.startswith("/"):
                        os.close(cur)
                        cur = -1
                        cur = os.open("/", _O_PATH | os.O_DIRECTORY)
                    continue
                if parts and not stat.S_ISDIR(st.st_mode):
                    os.close(fd)
                    raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), host_path)
                os.close(cur)
                cur = fd
        finally:
            if cur >= 0:
                os.close(cur)

    def close(self) -> None:
        """Close the held descriptor."""
        os.close(self.fd)


# -- reaching a descriptor through /proc ------------------------------------------------------
_proc_self: tuple[int, int] | None = None  # (getpid() when opened, O_PATH fd of /proc/<pid>)


def proc_self() -> int:
    """An ``O_PATH`` descriptor of this process's ``/proc/<pid>``, opened once per process.

    Opened before ``pivot_root`` it stays usable after it (the old root is detached, not gone,
    while the descriptor holds it), so mounts after ``pivot_root`` do not depend on the
    container's own ``/proc``. :func:`release` closes it.
    """
    global _proc_self
    pid = os.getpid()
    if _proc_self is None or _proc_self[0] != pid:  # a forked child must not use its parent's
        _proc_self = (pid, os.open("/proc/self", _O_PATH | os.O_DIRECTORY))
    return _proc_self[1]


def release() -> None:
    """Close the descriptor of :func:`proc_self` (before the container's program runs)."""
    global _proc_self
    if _proc_self is not None:
        if _proc_self[0] == os.getpid():
            os.close(_proc_self[1])
        _proc_self = None


def where(fd: int) -> str:
    """The path ``fd`` is at now, as the kernel names it from our root (``/proc/self/fd/<fd>``)."""
    return os.readlink(f"fd/{fd}", dir_fd=proc_self())


def mount_id(fd: int) -> int:
    """:func:`linux.mount_id` of ``fd``, its ``fdinfo`` fallback read through :func:`proc_self`."""
    return linux.mount_id(fd, proc_self())


def mount(source: str | int | None, target_fd: int, fstype: str | None, flags: int = 0, data: str | None = None) -> None:
    """mount(2) onto the descriptor ``target_fd`` (through ``/proc/self/fd``), not onto a path.

    ``source`` is a descriptor (a bind mount's source, held the same way), a string (a
    filesystem's source such as ``proc``), or None. Raises OSError as :func:`linux.mount`.
    """
    cwd = os.open(".", _O_PATH)
    try:
        # The magic links are reached relative to the held /proc/<pid>: no absolute path is resolved.
        os.fchdir(proc_self())
        src = f"fd/{source}" if isinstance(source, int) else source
        linux.mount(src, f"fd/{target_fd}", fstype, flags, data)
    finally:
        os.fchdir(cwd)
        os.close(cwd)
