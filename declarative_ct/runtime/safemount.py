"""One mount made safely in a container's rootfs (runc's ``mountViaFds`` and its checks): onto a
descriptor opened by the confined walker (:mod:`.paths`), then checked to sit where that descriptor
was, inside the rootfs (CVE-2021-30465); errors name what was mounted (:class:`MountError`).

Runs in the container init: stdlib, :mod:`.linux` and :mod:`.paths` only.
"""

from __future__ import annotations

import errno
import os

from . import linux, paths
from .linux import MS_BIND, MS_NODEV, MS_NOEXEC, MS_NOSUID, MS_PRIVATE, MS_REC, MS_REMOUNT, MS_SLAVE

_O_PATH = os.O_PATH | os.O_CLOEXEC

# The pseudo-filesystems whose paths are masked or made read-only, by type and where they belong.
PSEUDO_MAGIC = {"proc": linux.PROC_SUPER_MAGIC, "sysfs": linux.SYSFS_MAGIC}
PSEUDO_HOME = {"proc": "/proc", "sysfs": "/sys"}

_STATVFS_TO_MS = ((os.ST_NOSUID, MS_NOSUID), (os.ST_NODEV, MS_NODEV), (os.ST_NOEXEC, MS_NOEXEC))


class MountError(OSError):
    """A mount, mask or node failed; the message names the destination (``mount /v3: …``)."""


def named(err: OSError, what: str) -> OSError:
    """``err`` as a MountError whose message names ``what`` (``mount /v3``, ``device /dev/x``) and
    the file the kernel named, if another; a MountError is returned as it is."""
    if isinstance(err, MountError):
        return err
    detail = os.strerror(err.errno) if err.errno else str(err)
    if err.filename and err.filename not in what:
        detail += f" ({err.filename})"
    return MountError(err.errno, f"{what}: {detail}")


def locked_flags(fd: int) -> int:
    """The ``MS_NOSUID``/``MS_NODEV``/``MS_NOEXEC`` bits the mount of ``fd`` has: a bind remount
    must keep them (the kernel locks them on a mount from a more privileged namespace, EPERM)."""
    vfs = os.fstatvfs(fd).f_flag
    return sum(ms for st, ms in _STATVFS_TO_MS if vfs & st)


def mount_onto(root: paths.Root, dest: str, target: int, source: str | int | None, fstype: str | None,
                flags: int, data: str | None = None) -> int:
    """Mount onto the descriptor ``target`` (opened in ``root`` for ``dest``), then check where it landed.

    Returns an ``O_PATH`` descriptor of the new mount's root (the caller closes it): a fresh
    confined open of ``dest``, which must be on a new mount that sits where ``target`` is, inside
    ``root``. Raises MountError naming ``dest`` otherwise (the directory moved or was swapped
    during the mount) and OSError from mount(2).
    """
    paths.mount(source, target, fstype, flags, data)
    try:
        new = root.open(dest)
    except OSError as err:
        raise MountError(err.errno, f"mount {dest}: the destination changed during the mount ({dest} cannot "
                                    f"be opened again: {os.strerror(err.errno)}); refusing") from err
    try:
        landed, shown = paths.where(target), paths.where(new)
        if not root.contains(landed) or not root.contains(shown):
            raise MountError(errno.EXDEV, f"mount {dest}: target escapes the rootfs ({landed}); refusing")
        if paths.mount_id(new) == paths.mount_id(target) or landed != shown:
            raise MountError(errno.EXDEV, f"mount {dest}: the destination changed during the mount (mounted "
                                          f"at {root.inner(landed)}, {dest} is now {root.inner(shown)}); refusing")
    except BaseException:
        os.close(new)
        raise
    return new


def bind(root: paths.Root, dest: str, target: int, source: int, flags: int, recursive: bool = True) -> int:
    """Bind ``source`` (a descriptor) onto ``target``, then apply ``flags`` beyond MS_BIND/MS_REC by a
    remount of the new mount through its own descriptor. Returns that descriptor."""
    new = mount_onto(root, dest, target, source, None, MS_BIND | (MS_REC if recursive else 0))
    try:
        extra = flags & ~(MS_BIND | MS_REC)
        if extra & ~(MS_PRIVATE | MS_SLAVE):
            paths.mount(None, new, None, MS_BIND | MS_REMOUNT | extra | locked_flags(new))
    except BaseException:
        os.close(new)
        raise
    return new


def hold_mounted(path: str, source: str | None, fstype: str | None, flags: int, data: str | None = None
                  ) -> paths.Root:
    """Mount onto the directory ``path`` (not inside any rootfs: the staging directory or the rootfs
    itself; ``source`` None binds it onto itself) and hold the new mount's root as a :class:`paths.Root`."""
    before = os.open(path, _O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW)
    try:
        paths.mount(before if source is None else source, before, fstype, flags, data)
        after = os.open(path, _O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW)
        if paths.mount_id(after) == paths.mount_id(before) or paths.where(after) != paths.where(before):
            os.close(after)
            raise MountError(errno.EXDEV, f"rootfs {path}: moved during the mount; refusing")
        return paths.Root(after, path)
    finally:
        os.close(before)


def open_source(root: paths.Root, source: str) -> int:
    """A bind source as an ``O_PATH`` descriptor: the host path the config names, confined to the
    rootfs from wherever it enters it (:meth:`paths.Root.open_host`), also through a symlinked
    parent: a symlink the container wrote in its rootfs must not pick a host file.

    A source that lands on procfs or sysfs only through a symlink is refused: a symlink planted in
    a volume the container can write (``vol/x -> /proc/sys/kernel/core_pattern``) would otherwise
    bind a host kernel setting into it, writable.
    """
    fd = root.open_host(source)
    try:
        if linux.fstatfs_type(fd) in PSEUDO_MAGIC.values() and not _named_plainly(source, fd):
            raise MountError(errno.ELOOP, f"bind source {source}: reaches {paths.where(fd)} on /proc or /sys "
                                          "through a symlink; refusing")
    except BaseException:
        os.close(fd)
        raise
    return fd


def _named_plainly(source: str, fd: int) -> bool:
    """Whether the host path ``source``, walked with no symlink, is the file ``fd`` holds."""
    host = os.open("/", _O_PATH | os.O_DIRECTORY)
    try:
        plain = paths.open_no_symlinks(host, source)
    except OSError:
        return False
    finally:
        os.close(host)
    try:
        a, b = os.fstat(plain), os.fstat(fd)
        return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)
    finally:
        os.close(plain)
