"""The container's root after its mounts (runc's ``rootfs_linux.go``, from ``pivotRoot`` on): into
it by ``pivot_root`` (or ``--no-pivot``'s move and chroot), then the read-only and masked paths and
a read-only root (:func:`finalize_rootfs`), each checked to be on the filesystem it belongs to.

Runs in the container init: stdlib, :mod:`.linux` and :mod:`.paths` only.
"""

from __future__ import annotations

import errno
import os
import stat

from ..configs import Config, Mount
from ..configs.mountflags import MS_MOVE
from . import linux, paths
from .linux import MNT_DETACH, MS_BIND, MS_RDONLY, MS_REC, MS_REMOUNT, MS_SLAVE
from .safemount import PSEUDO_HOME, PSEUDO_MAGIC, MountError, bind, locked_flags, mount_onto, named

def deferred_readonly(m: Mount) -> bool:
    """A read-only tmpfs is mounted read-write and made read-only after ``pivot_root`` (runc's
    order): /dev gets its nodes and submounts, a copy-up its files, first."""
    return m.device == "tmpfs" and bool(m.flags & MS_RDONLY)


def pivot_root(rootfs: str, propagation: int = 0) -> None:
    """``pivot_root(".", ".")`` into ``rootfs``, then detach the old root (runc's ``pivotRoot``).

    ``propagation`` (MS_* flags, OCI ``linux.rootfsPropagation``) is applied to the new ``/``
    afterwards, so it never touches the host's mounts.
    """
    os.chdir(rootfs)
    linux.pivot_root(".", ".")
    # Make the old root rslave first, so the detach does not propagate to the host.
    linux.mount(None, ".", None, MS_SLAVE | MS_REC)
    linux.umount2(".", MNT_DETACH)
    os.chdir("/")
    if propagation:
        linux.mount(None, "/", None, propagation)


def move_root(rootfs: str, propagation: int = 0) -> None:
    """``--no-pivot``: move the ``rootfs`` mount onto ``/`` and ``chroot`` into it (runc's ``msMoveRoot``).

    For a root pivot_root(2) refuses (a ramdisk's: initramfs can't be pivoted away). The rootfs
    then covers the old root, which stays below it in the mount namespace: a path walk (``..`` at
    the top included, so the classic chroot escape too) lands on the rootfs, but the old mounts are
    not gone. So first, as runc does, every whole proc and sysfs mount outside ``rootfs`` is
    detached (propagation is rslave since :func:`prepare_rootfs`, so the host keeps its own), or
    covered with a tmpfs where the detach is refused. ``propagation`` as for :func:`pivot_root`.
    """
    rootfs = os.path.realpath(rootfs)
    for mountpoint in _host_pseudo_mounts(rootfs):
        try:
            linux.umount2(mountpoint, MNT_DETACH)
        except OSError as err:
            if err.errno == errno.ENOENT:
                continue  # under one detached already
            if err.errno not in (errno.EINVAL, errno.EPERM):
                raise
            linux.mount("tmpfs", mountpoint, "tmpfs", 0, None)
    os.chdir(rootfs)
    linux.mount(rootfs, "/", None, MS_MOVE)
    os.chroot(".")
    os.chdir("/")
    if propagation:
        linux.mount(None, "/", None, propagation)


def _host_pseudo_mounts(rootfs: str) -> list[str]:
    """Mount points of the whole proc and sysfs mounts outside ``rootfs``, deepest first (mountinfo)."""
    out = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            sep = fields.index("-")
            root, mountpoint, fstype = fields[3], _unescape(fields[4]), fields[sep + 1]
            if root != "/" or fstype not in ("proc", "sysfs"):
                continue
            if mountpoint == rootfs or mountpoint.startswith(rootfs.rstrip("/") + "/"):
                continue
            out.append(mountpoint)
    return sorted(out, key=len, reverse=True)


def _unescape(field: str) -> str:
    """A mountinfo path field with its octal escapes (``\\040`` for a space) decoded."""
    parts = field.split("\\")
    return parts[0] + "".join(chr(int(p[:3], 8)) + p[3:] if p[:3].isdigit() else "\\" + p for p in parts[1:])


def finalize_rootfs(config: Config) -> None:
    """Read-only paths, masked paths and a read-only root, after ``pivot_root`` (runc's order).

    Then the read-only tmpfs mounts (a read-only ``/dev``) are made read-only.

    Each path is opened by the confined walker rooted at ``/``; a missing one (ENOENT) is skipped. When the
    config mounts proc at ``/proc`` (sysfs at ``/sys``), every path under it must first be found
    on that filesystem (itself, or its nearest existing parent): one that resolves elsewhere would
    be skipped or masked in the wrong place while the real one stays open (CVE-2023-28642). Raises
    OSError (MountError) naming the path.
    """
    root = paths.Root.at("/")
    null = _DevNull(root)
    try:
        _check_pseudo_paths(root, config)
        for path in config.readonly_paths:
            _in_place(root, path, "readonly path", _readonly)
        for path in config.mask_paths:
            _in_place(root, path, "masked path", lambda root, path, target: _mask(root, path, target, null))
        for m in config.mounts:
            if deferred_readonly(m):
                _in_place(root, m.destination, "mount", _remount_readonly)
        if config.readonlyfs:
            try:
                paths.mount(None, root.fd, None, MS_BIND | MS_REMOUNT | MS_RDONLY | locked_flags(root.fd))
            except OSError as err:
                raise named(err, "readonly rootfs /") from err
    finally:
        null.close()
        root.close()
        paths.release()


def _remount_readonly(root: paths.Root, path: str, target: int) -> None:
    paths.mount(None, target, None, MS_BIND | MS_REMOUNT | MS_RDONLY | locked_flags(target))


def _check_pseudo_paths(root: paths.Root, config: Config) -> None:
    """Every readonly and masked path under a proc or sysfs mount of the config lies on it.

    Checked before any of them is acted on (a mask's tmpfs would hide a path under it).
    """
    homes = {os.path.normpath(m.destination): PSEUDO_MAGIC[m.device] for m in config.mounts
             if m.device in PSEUDO_HOME and os.path.normpath(m.destination) == PSEUDO_HOME[m.device]}
    if not homes:
        return
    for what, listed in (("readonly path", config.readonly_paths), ("masked path", config.mask_paths)):
        for path in listed:
            norm = os.path.normpath("/" + path.lstrip("/"))  # ("//x" stays "//x")
            home = next((h for h in homes if norm == h or norm.startswith(h + "/")), None)
            if home is not None:
                _on_filesystem(root, path, norm, home, homes[home], what)


def _on_filesystem(root: paths.Root, path: str, norm: str, home: str, magic: int, what: str) -> None:
    probe = norm
    while True:
        try:
            fd = root.open(probe)
            break
        except (FileNotFoundError, NotADirectoryError):
            if probe == home:
                raise MountError(errno.ENOENT, f"{what} {path}: {home} cannot be found after the mounts; "
                                               "refusing") from None
            probe = os.path.dirname(probe)
        except OSError as err:
            raise named(err, f"{what} {path}") from err
    try:
        found = linux.fstatfs_type(fd)
    except OSError as err:
        raise named(err, f"{what} {path}") from err
    finally:
        os.close(fd)
    if found != magic:
        raise MountError(errno.EXDEV, f"{what} {path}: {probe} is not on the {home} mount (filesystem "
                                      f"{found:#x}): a symlink or a later mount moved it; refusing")


def _in_place(root: paths.Root, path: str, what: str, act) -> None:
    """``act(root, path, target)`` on ``path`` opened in ``root``; a missing path (ENOENT only, as
    runc) is skipped. Raises MountError naming ``what`` and ``path``, also for ENOTDIR (``/proc/keys/``:
    a trailing slash on a file), which must not leave the path silently unmasked."""
    try:
        target = root.open(path)
    except FileNotFoundError:
        return
    except OSError as err:
        raise named(err, f"{what} {path}") from err
    try:
        act(root, path, target)
    except OSError as err:
        raise named(err, f"{what} {path}") from err
    finally:
        os.close(target)


def _readonly(root: paths.Root, path: str, target: int) -> None:
    os.close(bind(root, path, target, target, MS_RDONLY | MS_REC))


class _DevNull:
    """The container's ``/dev/null``, opened in ``root`` (and checked to be the null device) the
    first time a masked file needs it; :meth:`close` closes it if it was."""

    def __init__(self, root: paths.Root):
        self._root = root
        self._fd = -1

    def fd(self, path: str) -> int:
        """The descriptor; raises MountError naming ``path`` when /dev/null is not the null device."""
        if self._fd < 0:
            fd = self._root.open("/dev/null")
            st = os.fstat(fd)
            if not stat.S_ISCHR(st.st_mode) or st.st_rdev != os.makedev(1, 3):
                os.close(fd)
                raise MountError(errno.EPERM, f"masked path {path}: /dev/null is not the null device; refusing")
            self._fd = fd
        return self._fd

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


def _mask(root: paths.Root, path: str, target: int, null: _DevNull) -> None:
    if stat.S_ISDIR(os.fstat(target).st_mode):
        os.close(mount_onto(root, path, target, "tmpfs", "tmpfs", MS_RDONLY, "size=0k"))
    else:
        os.close(mount_onto(root, path, target, null.fd(path), None, MS_BIND))
