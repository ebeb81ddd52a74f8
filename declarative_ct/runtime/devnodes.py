"""Device nodes in the container's ``/dev`` (runc's ``createDevices``): the standard nodes of a new
``/dev`` tmpfs and the config's ``devices``, made with ``mknodat`` through the confined walker, or
in a user namespace bound from the host's nodes.

Runs in the container init: stdlib, :mod:`.linux` and :mod:`.paths` only.
"""

from __future__ import annotations

import errno
import os
import stat

from ..configs import Device
from . import paths
from .linux import MS_BIND
from .paths import DIR
from .safemount import named

_O_PATH = os.O_PATH | os.O_CLOEXEC

# The standard device nodes (runc's ``DefaultSimpleDevices``): name -> (major, minor).
DEVICES = {"null": (1, 3), "zero": (1, 5), "full": (1, 7), "random": (1, 8), "urandom": (1, 9), "tty": (5, 0)}


def populate_dev(dev: int, bind_nodes: bool = False) -> None:
    """The standard nodes and links in the new ``/dev`` tmpfs, made relative to its descriptor
    (``bind_nodes``: the host's nodes bound instead, see :func:`bind_node`)."""
    umask = os.umask(0)  # the nodes are 0666 whatever init's umask
    try:
        for name, (major, minor) in DEVICES.items():
            if bind_nodes:
                bind_node(dev, name, "/dev/" + name)
            else:
                os.mknod(name, 0o666 | stat.S_IFCHR, os.makedev(major, minor), dir_fd=dev)
    finally:
        os.umask(umask)
    for name, target in (("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"), ("stdout", "/proc/self/fd/1"),
                         ("stderr", "/proc/self/fd/2"), ("ptmx", "pts/ptmx"), ("core", "/proc/kcore")):
        os.symlink(target, name, dir_fd=dev)


def bind_node(parent: int, name: str, host_path: str) -> None:
    """In a user namespace no device node can be made (mknod needs CAP_MKNOD over the host): bind
    the host's ``host_path`` onto an empty file ``name`` under the directory ``parent``, as runc's
    ``bindMountDeviceNode``. The node keeps the host's owner and mode (never chowned: it is the
    host's). Raises OSError: the host has no such node, or it is not one."""
    src = os.open(host_path, _O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        if not (stat.S_ISCHR(os.fstat(src).st_mode) or stat.S_ISBLK(os.fstat(src).st_mode)):
            raise OSError(errno.ENODEV, f"{host_path} on the host is not a device node")
        os.close(os.open(name, os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600,
                         dir_fd=parent))
        target = os.open(name, _O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=parent)
        try:
            paths.mount(src, target, None, MS_BIND)
        finally:
            os.close(target)
    finally:
        os.close(src)


def make_device(root: paths.Root, dev: Device, bind_nodes: bool = False) -> None:
    """The node ``dev`` (runc's ``createDeviceNode``), made with ``mknodat`` relative to its parent
    directory opened by the confined walker (created when missing): a symlink on the way resolves
    inside the rootfs, never on the host. A name that exists already is left as it is (as runc);
    a symlink there is not followed. With ``bind_nodes`` (a user namespace) a character or block
    device is the host's node at the same path, bound (:func:`bind_node`). Raises MountError
    naming the path."""
    parent, name = os.path.split(os.path.normpath(dev.path))
    kind = {"c": stat.S_IFCHR, "b": stat.S_IFBLK, "p": stat.S_IFIFO}[dev.type]
    try:
        held = root.open(parent, DIR)
        try:
            if not stat.S_ISDIR(os.fstat(held).st_mode):
                raise NotADirectoryError(errno.ENOTDIR, f"{parent} is not a directory")
            umask = os.umask(0)
            try:
                if bind_nodes and dev.type != "p":  # a fifo needs no privilege
                    bind_node(held, name, dev.path)
                    return
                os.mknod(name, dev.file_mode | kind, os.makedev(dev.major, dev.minor) if dev.type != "p" else 0,
                         dir_fd=held)
            except FileExistsError:
                return
            finally:
                os.umask(umask)
            os.chown(name, dev.uid, dev.gid, dir_fd=held, follow_symlinks=False)
        finally:
            os.close(held)
    except OSError as err:
        raise named(err, f"device {dev.path}") from err
