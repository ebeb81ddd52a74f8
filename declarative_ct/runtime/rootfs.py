"""The container's filesystem, built inside its new mount namespace (runc's ``rootfs_linux.go``).

Runs in the container init: stdlib and :mod:`linux` only. Nothing here touches the host's
mount table, because ``/`` is made ``rslave`` before anything is mounted.
"""

from __future__ import annotations

import errno
import os
import stat

from ..configs import HOST_ROOTFS, Config, Mount
from . import linux
from .linux import (MNT_DETACH, MS_BIND, MS_NODEV, MS_NOEXEC, MS_NOSUID, MS_PRIVATE, MS_RDONLY, MS_REC,
                    MS_REMOUNT, MS_SLAVE)

# The host directories a ``rootfs: host`` container sees, read-only (symlinks are copied as links).
HOST_VIEW_DIRS = ("usr", "bin", "sbin", "lib", "lib32", "lib64", "libx32")
HOST_VIEW_ETC = ("alternatives", "ssl", "ld.so.cache", "ld.so.conf", "ld.so.conf.d", "localtime",
                 "nsswitch.conf", "mime.types", "protocols", "services")

# The standard device nodes (runc's ``DefaultSimpleDevices``): name -> (major, minor).
DEVICES = {"null": (1, 3), "zero": (1, 5), "full": (1, 7), "random": (1, 8), "urandom": (1, 9), "tty": (5, 0)}

_STATVFS_TO_MS = ((os.ST_NOSUID, MS_NOSUID), (os.ST_NODEV, MS_NODEV), (os.ST_NOEXEC, MS_NOEXEC))


def secure_join(root: str, unsafe: str) -> str:
    """Join ``unsafe`` under ``root``, resolving symlinks as if ``root`` were ``/`` (never escaping it).

    Components that do not exist yet are appended as they are. Raises OSError on a symlink loop.
    """
    parts = [p for p in unsafe.split("/") if p not in ("", ".")]
    resolved: list[str] = []
    links = 0
    while parts:
        part = parts.pop(0)
        if part == "..":
            if resolved:
                resolved.pop()
            continue
        candidate = os.path.join(root, *resolved, part)
        if os.path.islink(candidate):
            links += 1
            if links > 255:
                raise OSError(errno.ELOOP, f"too many symlinks resolving {unsafe} in {root}")
            target = os.readlink(candidate)
            if target.startswith("/"):
                resolved = []
            parts = [p for p in target.split("/") if p not in ("", ".")] + parts
            continue
        resolved.append(part)
    return os.path.join(root, *resolved)


def _make_mountpoint(path: str, source: str | None) -> None:
    if source and os.path.exists(source) and not os.path.isdir(source):
        os.makedirs(os.path.dirname(path), exist_ok=True)
        if not os.path.exists(path):
            os.close(os.open(path, os.O_CREAT | os.O_WRONLY | os.O_CLOEXEC, 0o644))
    else:
        os.makedirs(path, exist_ok=True)


def _bind(source: str, target: str, flags: int, recursive: bool = True) -> None:
    linux.mount(source, target, None, MS_BIND | (MS_REC if recursive else 0))
    extra = flags & ~(MS_BIND | MS_REC)
    if extra & ~(MS_PRIVATE | MS_SLAVE):
        # Keep the flags the kernel locks on the source (nosuid/nodev/noexec), or the remount fails.
        vfs = os.statvfs(target).f_flag
        locked = sum(ms for st, ms in _STATVFS_TO_MS if vfs & st)
        linux.mount(None, target, None, MS_BIND | MS_REMOUNT | extra | locked)


def _build_host_view(root: str, hostname: str) -> None:
    linux.mount("tmpfs", root, "tmpfs", MS_NOSUID | MS_NODEV, "mode=755")
    for name in HOST_VIEW_DIRS:
        src = "/" + name
        dst = os.path.join(root, name)
        if os.path.islink(src):
            os.symlink(os.readlink(src), dst)
        elif os.path.isdir(src):
            os.mkdir(dst)
            _bind(src, dst, MS_RDONLY | MS_NOSUID | MS_NODEV)
    etc = os.path.join(root, "etc")
    os.mkdir(etc)
    for name in HOST_VIEW_ETC:
        src = os.path.join("/etc", name)
        dst = os.path.join(etc, name)
        if os.path.islink(src):
            os.symlink(os.readlink(src), dst)
        elif os.path.exists(src):
            _make_mountpoint(dst, src)
            _bind(src, dst, MS_RDONLY | MS_NOSUID | MS_NODEV)
    files = {
        "passwd": "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n",
        "group": "root:x:0:\ntty:x:5:\nnogroup:x:65534:\n",
        "hosts": f"127.0.0.1\tlocalhost {hostname}\n::1\tlocalhost ip6-localhost ip6-loopback\n",
        "hostname": (hostname or "localhost") + "\n",
        "resolv.conf": "",
    }
    for name, text in files.items():
        with open(os.path.join(etc, name), "w") as f:
            f.write(text)
    for name, mode in (("tmp", 0o1777), ("root", 0o700), ("var", 0o755), ("run", 0o755), ("home", 0o755)):
        os.mkdir(os.path.join(root, name), mode)
        os.chmod(os.path.join(root, name), mode)
    os.mkdir(os.path.join(root, "var", "tmp"), 0o1777)
    linux.mount("tmpfs", os.path.join(root, "tmp"), "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777")


def _mount_one(root: str, m: Mount, private_netns: bool) -> None:
    target = secure_join(root, m.destination)
    if m.device == "bind":
        _make_mountpoint(target, m.source)
        _bind(m.source, target, m.flags, recursive=bool(m.flags & MS_REC))
    else:
        _make_mountpoint(target, None)
        try:
            linux.mount(m.source, target, m.device, m.flags, m.data or None)
        except OSError as err:
            # sysfs cannot be mounted without a private network namespace: bind the host's, read-only.
            if m.device == "sysfs" and err.errno == errno.EPERM and not private_netns:
                _bind("/sys", target, m.flags | MS_RDONLY, recursive=False)  # no rw submounts
            else:
                raise
        if m.device == "tmpfs" and m.destination == "/dev":
            _populate_dev(target)
    for prop in m.propagation_flags:
        linux.mount(None, target, None, prop)


def _populate_dev(dev: str) -> None:
    for name, (major, minor) in DEVICES.items():
        path = os.path.join(dev, name)
        os.mknod(path, 0o666 | stat.S_IFCHR, os.makedev(major, minor))
        os.chmod(path, 0o666)
    for name, target in (("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"), ("stdout", "/proc/self/fd/1"),
                         ("stderr", "/proc/self/fd/2"), ("ptmx", "pts/ptmx"), ("core", "/proc/kcore")):
        os.symlink(target, os.path.join(dev, name))


def prepare_rootfs(config: Config, rootfs: str) -> None:
    """Mount everything the container sees under ``rootfs`` (runc's ``prepareRootfs``).

    ``rootfs`` is the config's directory, or for :data:`HOST_ROOTFS` an empty staging directory
    that receives a tmpfs with the host view. Raises OSError naming the failing mount.
    """
    linux.mount(None, "/", None, MS_SLAVE | MS_REC)
    if config.rootfs == HOST_ROOTFS:
        _build_host_view(rootfs, config.hostname)
    else:
        # pivot_root needs the new root to be a mount point.
        linux.mount(rootfs, rootfs, None, MS_BIND | MS_REC)
    private_net = config.private_namespace("NEWNET")
    for m in config.mounts:
        _mount_one(rootfs, m, private_net)


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


def finalize_rootfs(config: Config) -> None:
    """Read-only paths, masked paths and a read-only root, after ``pivot_root`` (runc's order)."""
    for path in config.readonly_paths:
        if os.path.exists(path):
            _bind(path, path, MS_RDONLY | MS_REC)
    for path in config.mask_paths:
        if os.path.isdir(path) and not os.path.islink(path):
            linux.mount("tmpfs", path, "tmpfs", MS_RDONLY, "size=0k")
        elif os.path.exists(path):
            linux.mount("/dev/null", path, None, MS_BIND)
    if config.readonlyfs:
        vfs = os.statvfs("/").f_flag
        locked = sum(ms for st, ms in _STATVFS_TO_MS if vfs & st)
        linux.mount(None, "/", None, MS_BIND | MS_REMOUNT | MS_RDONLY | locked)
