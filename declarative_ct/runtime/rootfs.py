"""The container's filesystem, built inside its new mount namespace (runc's ``rootfs_linux.go``).

Runs in the container init: stdlib, :mod:`linux` and :mod:`paths` only. Nothing here touches the
host's mount table, because ``/`` is made ``rslave`` before anything is mounted.

Every destination is opened by the confined walker (:mod:`paths`) as a descriptor and mounted
onto through it; a bind source is confined to the rootfs from wherever its path enters it. After
each mount the destination is opened afresh and must show the new mount exactly where the
descriptor was, inside the rootfs, or the create fails naming the destination (CVE-2021-30465: a
directory swapped for a symlink between the check and the mount): :mod:`.safemount`. The nodes
of ``/dev`` are made by :mod:`.devnodes`, ``tmpcopyup`` by :mod:`.copyup`; after the mounts,
:mod:`.finalize` pivots into the root and masks (init calls it directly).
"""

from __future__ import annotations

import errno
import os
import stat

from ..configs import HOST_ROOTFS, Config, Mount
from ..configs.mountflags import EXT_COPYUP
from . import linux, paths, userns
from .copyup import copy_up
from .devnodes import make_device, populate_dev
from .finalize import deferred_readonly
from .linux import MS_BIND, MS_NODEV, MS_NOSUID, MS_RDONLY, MS_REC, MS_SLAVE
from .paths import DIR, FILE
from .safemount import PSEUDO_MAGIC, MountError, bind, hold_mounted, mount_onto, named, open_source

# The host directories a ``rootfs: host`` container sees, read-only (symlinks are copied as links).
HOST_VIEW_DIRS = ("usr", "bin", "sbin", "lib", "lib32", "lib64", "libx32")
HOST_VIEW_ETC = ("alternatives", "ssl", "ld.so.cache", "ld.so.conf", "ld.so.conf.d", "localtime",
                 "nsswitch.conf", "mime.types", "protocols", "services")

_O_PATH = os.O_PATH | os.O_CLOEXEC

# The only files under /proc a mount may cover (as runc allows): those lxcfs emulates. Anything
# else there is the kernel's own interface; a volume over /proc/sys/net, say, would let a
# symlink in it send init's sysctl writes to a host-wide sysctl.
PROC_MOUNTABLE = frozenset(("/proc/cpuinfo", "/proc/diskstats", "/proc/meminfo", "/proc/stat", "/proc/swaps",
                            "/proc/uptime", "/proc/loadavg", "/proc/slabinfo", "/proc/sys/kernel/ns_last_pid"))
_PROC_ROOT_INO = 1  # the inode number of a procfs's root directory


def _mount_bind_source(root: paths.Root, dest: str, source: int, flags: int, recursive: bool = True,
                       mount: Mount | None = None) -> int:
    kind = DIR if stat.S_ISDIR(os.fstat(source).st_mode) else FILE
    target = root.open(dest, kind)
    try:
        if mount is not None:
            _check_target(root, mount, target, source)
        return bind(root, dest, target, source, flags, recursive)
    finally:
        os.close(target)


def _build_host_view(staging: str, hostname: str) -> paths.Root:
    root = hold_mounted(staging, "tmpfs", "tmpfs", MS_NOSUID | MS_NODEV, "mode=755")
    try:
        # A fresh tmpfs nobody else can reach yet; the binds still go through the walker.
        for name in HOST_VIEW_DIRS:
            src = "/" + name
            if os.path.islink(src):
                os.symlink(os.readlink(src), name, dir_fd=root.fd)
            elif os.path.isdir(src):
                _bind_host(root, src, src, MS_RDONLY | MS_NOSUID | MS_NODEV)
        os.mkdir("etc", 0o755, dir_fd=root.fd)
        etc = root.open("/etc")
        try:
            for name in HOST_VIEW_ETC:
                src = os.path.join("/etc", name)
                if os.path.islink(src):
                    os.symlink(os.readlink(src), name, dir_fd=etc)
                elif os.path.exists(src):
                    _bind_host(root, src, src, MS_RDONLY | MS_NOSUID | MS_NODEV)
            files = {
                "passwd": "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n",
                "group": "root:x:0:\ntty:x:5:\nnogroup:x:65534:\n",
                "hosts": f"127.0.0.1\tlocalhost {hostname}\n::1\tlocalhost ip6-localhost ip6-loopback\n",
                "hostname": (hostname or "localhost") + "\n",
                "resolv.conf": "",
            }
            for name, text in files.items():
                fd = os.open(name, os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644,
                             dir_fd=etc)
                with open(fd, "w") as f:
                    f.write(text)
        finally:
            os.close(etc)
        for name, mode in (("tmp", 0o1777), ("root", 0o700), ("var", 0o755), ("run", 0o755), ("home", 0o755),
                           ("var/tmp", 0o1777)):
            os.mkdir(name, mode, dir_fd=root.fd)
            os.chmod(name, mode, dir_fd=root.fd)
        tmp = root.open("/tmp")
        try:
            os.close(mount_onto(root, "/tmp", tmp, "tmpfs", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777"))
        finally:
            os.close(tmp)
    except BaseException:
        root.close()
        raise
    return root


def _bind_host(root: paths.Root, source: str, dest: str, flags: int) -> None:
    src = os.open(source, _O_PATH)
    try:
        os.close(_mount_bind_source(root, dest, src, flags))
    finally:
        os.close(src)


def _mount_one(root: paths.Root, m: Mount, private_netns: bool, cgroups: list[tuple[str, str]],
               cgroupns: bool, bind_nodes: bool = False) -> None:
    dest = m.destination
    try:
        if m.device in ("cgroup", "cgroup2"):
            new = _mount_cgroups(root, m, cgroups, cgroupns)
        elif m.device == "bind":
            new = _mount_bind(root, m)
        else:
            new = _mount_filesystem(root, m, private_netns)
        try:
            if m.device == "tmpfs" and os.path.normpath(dest) == "/dev":
                populate_dev(new, bind_nodes)
            for prop in m.propagation_flags:
                paths.mount(None, new, None, prop)
            if m.rec_attr_set or m.rec_attr_clr:
                linux.mount_setattr_recursive(new, m.rec_attr_set, m.rec_attr_clr)
        finally:
            os.close(new)
    except OSError as err:
        if err.errno == errno.ENODEV and m.device not in ("bind", "cgroup", "cgroup2"):
            raise MountError(err.errno, f"mount {dest}: unknown filesystem type {m.device!r}") from err
        raise named(err, f"mount {dest}") from err


def _mount_cgroups(root: paths.Root, m: Mount, cgroups: list[tuple[str, str]], cgroupns: bool) -> int:
    """A ``cgroup`` mount (``/sys/fs/cgroup`` in runc's and podman's configs) from the container's own
    cgroups, as runc 1.1 does: on v1 a tmpfs with each hierarchy's cgroup of the container bound
    below it under the hierarchy's name (``memory``, ``cpu,cpuacct`` plus a link per controller),
    with the mount's flags (read-only as a rule); on v2 cgroup2 itself with a private cgroup
    namespace, else a bind of the container's cgroup. ``cgroups``: ``[(name, host dir)]``, name
    ``""`` for v2. Returns the descriptor of the mount at the destination."""
    if cgroups and cgroups[0][0] == "":
        if cgroupns:
            target = root.open(m.destination, DIR)
            try:
                _check_target(root, m, target)
                return mount_onto(root, m.destination, target, "cgroup2", "cgroup2", m.flags)
            finally:
                os.close(target)
        src = _held(cgroups[0][1])
        try:
            return _mount_bind_source(root, m.destination, src, m.flags, recursive=False)
        finally:
            os.close(src)
    tmpfs = Mount("tmpfs", m.destination, "tmpfs", m.flags & ~MS_RDONLY, "mode=755")
    new = _mount_filesystem(root, tmpfs, True)
    try:
        for name, host_dir in cgroups:
            sub = os.path.join(m.destination, name)
            src = _held(host_dir)
            try:
                os.close(_mount_bind_source(root, sub, src, m.flags | MS_BIND, recursive=False))
            finally:
                os.close(src)
            if "," in name:  # a co-mounted hierarchy: a link per controller, as on the host
                for controller in name.split(","):
                    os.symlink(name, controller.removeprefix("name="), dir_fd=new)
    except BaseException:
        os.close(new)
        raise
    return new


def _held(host_dir: str) -> int:
    return os.open(host_dir, _O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW)


def _check_ordinary_dir(root: paths.Root, dest: str, target: int, device: str) -> None:
    """Refuse proc or sysfs on a destination that is, or passes through, a symlink (CVE-2023-28642).

    The masked and readonly paths are looked up after every mount, by ``/proc/…`` and
    ``/sys/…``; a symlink on the way could resolve elsewhere by then (a later volume changes
    what it points through) and leave the real procfs unmasked and writable.
    """
    try:
        plain = paths.open_no_symlinks(root.fd, dest)
    except OSError as err:
        if err.errno != errno.ELOOP:
            raise
        plain = -1
    try:
        ordinary = plain >= 0 and stat.S_ISDIR(os.fstat(plain).st_mode) and \
            (os.fstat(plain).st_dev, os.fstat(plain).st_ino) == (os.fstat(target).st_dev, os.fstat(target).st_ino)
    finally:
        if plain >= 0:
            os.close(plain)
    if not ordinary:
        raise MountError(errno.ELOOP, f"mount {dest}: {device} must be mounted on an ordinary directory "
                                      f"({dest} is or passes through a symlink); refusing")


def _check_target(root: paths.Root, m: Mount, target: int, source: int | None = None) -> None:
    """Refuse a config mount whose destination, as resolved (``target``), is the container's root
    or lies in procfs (runc's ``checkProcMount``), judged on the descriptor, not on the path given.

    A symlink in the rootfs can lead ``/vol`` to ``/proc/sys/net`` (or ``/proc/self``, or ``/``
    through ``/proc/..``): a volume mounted there would put its own files, symlinks included,
    where init writes the sysctls and ``oom_score_adj``. Allowed under ``/proc``: proc itself at
    ``/proc`` (or a bind of a procfs root there) and the files of :data:`PROC_MOUNTABLE`.
    Raises MountError naming the destination.
    """
    inner = root.inner(paths.where(target))
    shown = m.destination if os.path.normpath(m.destination) == inner else f"{m.destination} (resolved to {inner})"
    if inner == "/":
        raise MountError(errno.EPERM, f"mount {shown}: cannot be mounted over the container's root; refusing")
    if inner == "/proc":
        if m.device == "proc":
            return
        if source is not None and linux.fstatfs_type(source) == linux.PROC_SUPER_MAGIC:
            if os.fstat(source).st_ino == _PROC_ROOT_INO:
                return
            raise MountError(errno.EPERM, f"mount {shown}: {m.source} cannot be mounted on /proc: it is not "
                                          "the root of a procfs; refusing")
        raise MountError(errno.EPERM, f"mount {shown}: {m.source} cannot be mounted on /proc: it is not "
                                      "of type proc; refusing")
    if inner not in PROC_MOUNTABLE and (inner.startswith("/proc/") or
                                        linux.fstatfs_type(target) == linux.PROC_SUPER_MAGIC):
        raise MountError(errno.EPERM, f"mount {shown}: cannot be mounted inside /proc; refusing")


def _mount_bind(root: paths.Root, m: Mount) -> int:
    """The bind mount ``m``; returns the new mount's descriptor (see :func:`mount_onto`)."""
    src = open_source(root, m.source)
    try:
        return _mount_bind_source(root, m.destination, src, m.flags, recursive=bool(m.flags & MS_REC), mount=m)
    finally:
        os.close(src)


def _mount_filesystem(root: paths.Root, m: Mount, private_netns: bool) -> int:
    """The filesystem mount ``m`` (proc, tmpfs, sysfs…); returns the new mount's descriptor."""
    existed = not m.extensions & EXT_COPYUP or _exists(root, m.destination)
    target = root.open(m.destination, DIR)
    try:
        _check_target(root, m, target)
        if m.device in PSEUDO_MAGIC:
            _check_ordinary_dir(root, m.destination, target, m.device)
        flags = m.flags & ~MS_RDONLY if deferred_readonly(m) else m.flags
        if m.extensions & EXT_COPYUP:
            # A descriptor of the covered directory still lists it once the tmpfs is on top.
            below = os.open(".", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC, dir_fd=target)
            try:
                new = mount_onto(root, m.destination, target, m.source, m.device, flags, m.data or None)
                try:
                    copy_up(below, new, keep_mode=existed)
                except BaseException:
                    os.close(new)
                    raise
                return new
            finally:
                os.close(below)
        try:
            return mount_onto(root, m.destination, target, m.source, m.device, flags, m.data or None)
        except OSError as err:
            if not (m.device == "sysfs" and err.errno == errno.EPERM and not private_netns):
                raise
        return _bind_host_sysfs(root, m.destination, target, m.flags)
    finally:
        os.close(target)


def _bind_host_sysfs(root: paths.Root, dest: str, target: int, flags: int) -> int:
    """sysfs cannot be mounted without a private network namespace: bind the host's, read-only and
    not recursive (no read-write submounts). In a user namespace the host's submounts are locked
    to it, and the kernel refuses a bind that would uncover what they hide (EINVAL): there it is
    recursive, and read-only all the way down (``mount_setattr``)."""
    src = os.open("/sys", _O_PATH | os.O_DIRECTORY)
    try:
        try:
            return bind(root, dest, target, src, flags | MS_RDONLY, recursive=False)
        except OSError as err:
            if err.errno != errno.EINVAL:
                raise
        new = bind(root, dest, target, src, flags | MS_RDONLY, recursive=True)
        try:
            linux.mount_setattr_recursive(new, linux.MOUNT_ATTR_RDONLY, 0)
        except BaseException:
            os.close(new)
            raise
        return new
    finally:
        os.close(src)


def _exists(root: paths.Root, path: str) -> bool:
    try:
        os.close(root.open(path))
    except FileNotFoundError:
        return False
    return True


def prepare_rootfs(config: Config, rootfs: str, cgroups: list[tuple[str, str]] | None = None) -> None:
    """Mount everything the container sees under ``rootfs`` and make its device nodes (runc's
    ``prepareRootfs``).

    ``rootfs`` is the config's directory, or for :data:`HOST_ROOTFS` an empty staging directory
    that receives a tmpfs with the host view. Every destination is resolved inside ``rootfs`` by
    :mod:`paths` and mounted onto as a descriptor. ``cgroups`` (``[(hierarchy name, host dir of the
    container's cgroup)]``, name ``""`` on v2) feeds a ``cgroup`` mount. Raises OSError
    (MountError) naming the failing mount's destination or device path; in a user namespace a
    permission error also names the directory its root cannot search.
    """
    try:
        _prepare_rootfs(config, rootfs, cgroups)
    except PermissionError as err:
        blocked = _unsearchable(config, rootfs) if config.rootfs != HOST_ROOTFS else None
        if blocked is None:
            raise
        raise MountError(err.errno, f"{err.strerror or err}: the container's root (host uid {blocked[1]}, a user "
                                    f"namespace) cannot search {blocked[0]}") from None


def _unsearchable(config: Config, rootfs: str) -> tuple[str, int] | None:
    """``(directory, host uid)``: the first directory from ``/`` down to ``rootfs`` that the
    container's root, as its mapped host ids, may not search (mode bits; ACLs aside); None
    without a new user namespace or when every one is searchable."""
    uid, gid = userns.host_id(config.uid_mappings, 0), userns.host_id(config.gid_mappings, 0)
    if uid is None or gid is None:
        return None
    path = "/"
    for part in [""] + [p for p in rootfs.split("/") if p]:
        path = os.path.join(path, part)
        try:
            st = os.stat(path)
        except OSError:
            return None
        bit = stat.S_IXUSR if st.st_uid == uid else stat.S_IXGRP if st.st_gid == gid else stat.S_IXOTH
        if not st.st_mode & bit:
            return path, uid
    return None


def _prepare_rootfs(config: Config, rootfs: str, cgroups: list[tuple[str, str]] | None) -> None:
    paths.proc_self()  # held from the host's /proc, for the mounts after pivot_root too
    linux.mount(None, "/", None, MS_SLAVE | MS_REC)
    if config.rootfs == HOST_ROOTFS:
        root = _build_host_view(rootfs, config.hostname)
    else:
        # pivot_root needs the new root to be a mount point.
        root = hold_mounted(rootfs, None, None, MS_BIND | MS_REC)
    try:
        private_net = config.private_namespace("NEWNET")
        bind_nodes = config.namespace("NEWUSER") is not None
        for m in config.mounts:
            _mount_one(root, m, private_net, cgroups or [], config.private_namespace("NEWCGROUP"), bind_nodes)
        for dev in config.devices:
            make_device(root, dev, bind_nodes)
    finally:
        root.close()


