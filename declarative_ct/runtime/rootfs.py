"""The container's filesystem, built inside its new mount namespace (runc's ``rootfs_linux.go``).

Runs in the container init: stdlib, :mod:`linux` and :mod:`paths` only. Nothing here touches the
host's mount table, because ``/`` is made ``rslave`` before anything is mounted.

Every destination is opened by the confined walker (:mod:`paths`) as a descriptor and mounted
onto through it; a bind source is confined to the rootfs from wherever its path enters it. After
each mount the destination is opened afresh and must show the new mount exactly where the
descriptor was, inside the rootfs, or the create fails naming the destination (CVE-2021-30465: a
directory swapped for a symlink between the check and the mount).
"""

from __future__ import annotations

import errno
import os
import stat

from ..configs import HOST_ROOTFS, Config, Device, Mount
from ..configs.mountflags import EXT_COPYUP, MS_MOVE
from . import linux, paths, userns
from .paths import DIR, FILE
from .linux import (MNT_DETACH, MS_BIND, MS_NODEV, MS_NOEXEC, MS_NOSUID, MS_PRIVATE, MS_RDONLY, MS_REC,
                    MS_REMOUNT, MS_SLAVE)

# The host directories a ``rootfs: host`` container sees, read-only (symlinks are copied as links).
HOST_VIEW_DIRS = ("usr", "bin", "sbin", "lib", "lib32", "lib64", "libx32")
HOST_VIEW_ETC = ("alternatives", "ssl", "ld.so.cache", "ld.so.conf", "ld.so.conf.d", "localtime",
                 "nsswitch.conf", "mime.types", "protocols", "services")

# The standard device nodes (runc's ``DefaultSimpleDevices``): name -> (major, minor).
DEVICES = {"null": (1, 3), "zero": (1, 5), "full": (1, 7), "random": (1, 8), "urandom": (1, 9), "tty": (5, 0)}

_STATVFS_TO_MS = ((os.ST_NOSUID, MS_NOSUID), (os.ST_NODEV, MS_NODEV), (os.ST_NOEXEC, MS_NOEXEC))


_O_PATH = os.O_PATH | os.O_CLOEXEC

# The pseudo-filesystems whose paths are masked or made read-only, by type and where they belong.
_PSEUDO_MAGIC = {"proc": linux.PROC_SUPER_MAGIC, "sysfs": linux.SYSFS_MAGIC}
_PSEUDO_HOME = {"proc": "/proc", "sysfs": "/sys"}

# The only files under /proc a mount may cover (as runc allows): those lxcfs emulates. Anything
# else there is the kernel's own interface; a volume over /proc/sys/net, say, would let a
# symlink in it send init's sysctl writes to a host-wide sysctl.
PROC_MOUNTABLE = frozenset(("/proc/cpuinfo", "/proc/diskstats", "/proc/meminfo", "/proc/stat", "/proc/swaps",
                            "/proc/uptime", "/proc/loadavg", "/proc/slabinfo", "/proc/sys/kernel/ns_last_pid"))
_PROC_ROOT_INO = 1  # the inode number of a procfs's root directory


class MountError(OSError):
    """A mount, mask or node failed; the message names the destination (``mount /v3: …``)."""


def _named(err: OSError, what: str) -> OSError:
    if isinstance(err, MountError):
        return err
    detail = os.strerror(err.errno) if err.errno else str(err)
    if err.filename and err.filename not in what:
        detail += f" ({err.filename})"
    return MountError(err.errno, f"{what}: {detail}")


def _locked_flags(fd: int) -> int:
    # Keep the flags the kernel locks on the source (nosuid/nodev/noexec), or a remount fails.
    vfs = os.fstatvfs(fd).f_flag
    return sum(ms for st, ms in _STATVFS_TO_MS if vfs & st)


def _mount_onto(root: paths.Root, dest: str, target: int, source: str | int | None, fstype: str | None,
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


def _bind(root: paths.Root, dest: str, target: int, source: int, flags: int, recursive: bool = True) -> int:
    """Bind ``source`` (a descriptor) onto ``target``, then apply ``flags`` beyond MS_BIND/MS_REC by a
    remount of the new mount through its own descriptor. Returns that descriptor."""
    new = _mount_onto(root, dest, target, source, None, MS_BIND | (MS_REC if recursive else 0))
    try:
        extra = flags & ~(MS_BIND | MS_REC)
        if extra & ~(MS_PRIVATE | MS_SLAVE):
            paths.mount(None, new, None, MS_BIND | MS_REMOUNT | extra | _locked_flags(new))
    except BaseException:
        os.close(new)
        raise
    return new


def _hold_mounted(path: str, source: str | None, fstype: str | None, flags: int, data: str | None = None
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


def _open_source(root: paths.Root, source: str) -> int:
    """A bind source as an ``O_PATH`` descriptor: the host path the config names, confined to the
    rootfs from wherever it enters it (:meth:`paths.Root.open_host`), also through a symlinked
    parent: a symlink the container wrote in its rootfs must not pick a host file.

    A source that lands on procfs or sysfs only through a symlink is refused: a symlink planted in
    a volume the container can write (``vol/x -> /proc/sys/kernel/core_pattern``) would otherwise
    bind a host kernel setting into it, writable.
    """
    fd = root.open_host(source)
    try:
        if linux.fstatfs_type(fd) in _PSEUDO_MAGIC.values() and not _named_plainly(source, fd):
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


def _mount_bind_source(root: paths.Root, dest: str, source: int, flags: int, recursive: bool = True,
                       mount: Mount | None = None) -> int:
    kind = DIR if stat.S_ISDIR(os.fstat(source).st_mode) else FILE
    target = root.open(dest, kind)
    try:
        if mount is not None:
            _check_target(root, mount, target, source)
        return _bind(root, dest, target, source, flags, recursive)
    finally:
        os.close(target)


def _build_host_view(staging: str, hostname: str) -> paths.Root:
    root = _hold_mounted(staging, "tmpfs", "tmpfs", MS_NOSUID | MS_NODEV, "mode=755")
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
            os.close(_mount_onto(root, "/tmp", tmp, "tmpfs", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777"))
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
                _populate_dev(new, bind_nodes)
            for prop in m.propagation_flags:
                paths.mount(None, new, None, prop)
            if m.rec_attr_set or m.rec_attr_clr:
                linux.mount_setattr_recursive(new, m.rec_attr_set, m.rec_attr_clr)
        finally:
            os.close(new)
    except OSError as err:
        if err.errno == errno.ENODEV and m.device not in ("bind", "cgroup", "cgroup2"):
            raise MountError(err.errno, f"mount {dest}: unknown filesystem type {m.device!r}") from err
        raise _named(err, f"mount {dest}") from err


def _deferred_readonly(m: Mount) -> bool:
    """A read-only tmpfs is mounted read-write and made read-only after ``pivot_root`` (runc's
    order): /dev gets its nodes and submounts, a copy-up its files, first."""
    return m.device == "tmpfs" and bool(m.flags & MS_RDONLY)


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
                return _mount_onto(root, m.destination, target, "cgroup2", "cgroup2", m.flags)
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
    """The bind mount ``m``; returns the new mount's descriptor (see :func:`_mount_onto`)."""
    src = _open_source(root, m.source)
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
        if m.device in _PSEUDO_MAGIC:
            _check_ordinary_dir(root, m.destination, target, m.device)
        flags = m.flags & ~MS_RDONLY if _deferred_readonly(m) else m.flags
        if m.extensions & EXT_COPYUP:
            # A descriptor of the covered directory still lists it once the tmpfs is on top.
            below = os.open(".", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC, dir_fd=target)
            try:
                new = _mount_onto(root, m.destination, target, m.source, m.device, flags, m.data or None)
                try:
                    _copy_up(below, new, keep_mode=existed)
                except BaseException:
                    os.close(new)
                    raise
                return new
            finally:
                os.close(below)
        try:
            return _mount_onto(root, m.destination, target, m.source, m.device, flags, m.data or None)
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
            return _bind(root, dest, target, src, flags | MS_RDONLY, recursive=False)
        except OSError as err:
            if err.errno != errno.EINVAL:
                raise
        new = _bind(root, dest, target, src, flags | MS_RDONLY, recursive=True)
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


def _copy_up(src: int, dst_mount: int, keep_mode: bool = True) -> None:
    """``tmpcopyup``: copy the directory ``src`` (an open descriptor of what the tmpfs covers)
    into the new tmpfs ``dst_mount``, keeping modes, owners and times; with ``keep_mode`` (the
    directory was in the image) the tmpfs root takes its mode and owner, as runc does; a directory
    we made for the mount leaves tmpfs's own (1777, or the mount's ``mode=``). Nothing is
    followed: symlinks are copied as links, every name is opened relative to its parent's
    descriptor with ``O_NOFOLLOW``."""
    dst = os.open(".", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC, dir_fd=dst_mount)
    try:
        st = os.fstat(src)
        _copy_tree(src, dst)
        if keep_mode:
            os.chown(dst, st.st_uid, st.st_gid)
            os.chmod(dst, stat.S_IMODE(st.st_mode))
    finally:
        os.close(dst)


def _copy_tree(src: int, dst: int) -> None:
    umask = os.umask(0)
    try:
        for entry in os.scandir(src):
            name = entry.name
            st = os.stat(name, dir_fd=src, follow_symlinks=False)
            mode = stat.S_IMODE(st.st_mode)
            if stat.S_ISDIR(st.st_mode):
                os.mkdir(name, 0o700, dir_fd=dst)
                child_src = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=src)
                child_dst = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dst)
                try:
                    _copy_tree(child_src, child_dst)
                finally:
                    os.close(child_src)
                    os.close(child_dst)
            elif stat.S_ISREG(st.st_mode):
                fin = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=src)
                try:
                    fout = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600,
                                   dir_fd=dst)
                    try:
                        while os.sendfile(fout, fin, None, 1 << 20):
                            pass
                    finally:
                        os.close(fout)
                finally:
                    os.close(fin)
            elif stat.S_ISLNK(st.st_mode):
                os.symlink(os.readlink(name, dir_fd=src), name, dir_fd=dst)
            elif stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode) or stat.S_ISFIFO(st.st_mode):
                os.mknod(name, st.st_mode, st.st_rdev, dir_fd=dst)
            else:
                continue  # sockets: nothing to copy
            os.chown(name, st.st_uid, st.st_gid, dir_fd=dst, follow_symlinks=False)
            if not stat.S_ISLNK(st.st_mode):
                os.chmod(name, mode, dir_fd=dst)
            os.utime(name, ns=(st.st_atime_ns, st.st_mtime_ns), dir_fd=dst, follow_symlinks=False)
    finally:
        os.umask(umask)


def _populate_dev(dev: int, bind_nodes: bool = False) -> None:
    """The standard nodes and links in the new ``/dev`` tmpfs, made relative to its descriptor
    (``bind_nodes``: the host's nodes bound instead, see :func:`_bind_node`)."""
    umask = os.umask(0)  # the nodes are 0666 whatever init's umask
    try:
        for name, (major, minor) in DEVICES.items():
            if bind_nodes:
                _bind_node(dev, name, "/dev/" + name)
            else:
                os.mknod(name, 0o666 | stat.S_IFCHR, os.makedev(major, minor), dir_fd=dev)
    finally:
        os.umask(umask)
    for name, target in (("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"), ("stdout", "/proc/self/fd/1"),
                         ("stderr", "/proc/self/fd/2"), ("ptmx", "pts/ptmx"), ("core", "/proc/kcore")):
        os.symlink(target, name, dir_fd=dev)


def _bind_node(parent: int, name: str, host_path: str) -> None:
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
        root = _hold_mounted(rootfs, None, None, MS_BIND | MS_REC)
    try:
        private_net = config.private_namespace("NEWNET")
        bind_nodes = config.namespace("NEWUSER") is not None
        for m in config.mounts:
            _mount_one(root, m, private_net, cgroups or [], config.private_namespace("NEWCGROUP"), bind_nodes)
        for dev in config.devices:
            _make_device(root, dev, bind_nodes)
    finally:
        root.close()


def _make_device(root: paths.Root, dev: Device, bind_nodes: bool = False) -> None:
    """The node ``dev`` (runc's ``createDeviceNode``), made with ``mknodat`` relative to its parent
    directory opened by the confined walker (created when missing): a symlink on the way resolves
    inside the rootfs, never on the host. A name that exists already is left as it is (as runc);
    a symlink there is not followed. With ``bind_nodes`` (a user namespace) a character or block
    device is the host's node at the same path, bound (:func:`_bind_node`). Raises MountError
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
                    _bind_node(held, name, dev.path)
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
        raise _named(err, f"device {dev.path}") from err


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
            if _deferred_readonly(m):
                _in_place(root, m.destination, "mount", _remount_readonly)
        if config.readonlyfs:
            try:
                paths.mount(None, root.fd, None, MS_BIND | MS_REMOUNT | MS_RDONLY | _locked_flags(root.fd))
            except OSError as err:
                raise _named(err, "readonly rootfs /") from err
    finally:
        null.close()
        root.close()
        paths.release()


def _remount_readonly(root: paths.Root, path: str, target: int) -> None:
    paths.mount(None, target, None, MS_BIND | MS_REMOUNT | MS_RDONLY | _locked_flags(target))


def _check_pseudo_paths(root: paths.Root, config: Config) -> None:
    """Every readonly and masked path under a proc or sysfs mount of the config lies on it.

    Checked before any of them is acted on (a mask's tmpfs would hide a path under it).
    """
    homes = {os.path.normpath(m.destination): _PSEUDO_MAGIC[m.device] for m in config.mounts
             if m.device in _PSEUDO_HOME and os.path.normpath(m.destination) == _PSEUDO_HOME[m.device]}
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
            raise _named(err, f"{what} {path}") from err
    try:
        found = linux.fstatfs_type(fd)
    except OSError as err:
        raise _named(err, f"{what} {path}") from err
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
        raise _named(err, f"{what} {path}") from err
    try:
        act(root, path, target)
    except OSError as err:
        raise _named(err, f"{what} {path}") from err
    finally:
        os.close(target)


def _readonly(root: paths.Root, path: str, target: int) -> None:
    os.close(_bind(root, path, target, target, MS_RDONLY | MS_REC))


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
        os.close(_mount_onto(root, path, target, "tmpfs", "tmpfs", MS_RDONLY, "size=0k"))
    else:
        os.close(_mount_onto(root, path, target, null.fd(path), None, MS_BIND))
