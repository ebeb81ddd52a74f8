"""Thin ctypes wrappers over the Linux syscalls Python 3.11 lacks.

One function per syscall; each raises ``OSError`` with the errno and the arguments, as runc's
``internal/linux`` does. Stdlib only: this module is imported by the container init.
"""

from __future__ import annotations

import ctypes
import errno
import functools
import os
import struct

_libc = ctypes.CDLL(None, use_errno=True)

# <sched.h> clone flags used by unshare/setns.
CLONE_NEWNS = 0x00020000
CLONE_NEWCGROUP = 0x02000000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000

from ..configs.mountflags import *  # noqa: E402,F401,F403 - MS_* flags live with the config

MNT_DETACH = 2

# <linux/openat2.h> resolve flags
RESOLVE_NO_XDEV = 0x01
RESOLVE_NO_MAGICLINKS = 0x02
RESOLVE_NO_SYMLINKS = 0x04
RESOLVE_BENEATH = 0x08
RESOLVE_IN_ROOT = 0x10

AT_EMPTY_PATH = 0x1000
STATX_MNT_ID = 0x1000

# <linux/prctl.h>
PR_SET_PDEATHSIG = 1
PR_SET_DUMPABLE = 4
PR_SET_KEEPCAPS = 8
PR_CAPBSET_DROP = 24
PR_SET_CHILD_SUBREAPER = 36
PR_SET_NO_NEW_PRIVS = 38
PR_CAP_AMBIENT = 47
PR_CAP_AMBIENT_RAISE = 2
PR_CAP_AMBIENT_CLEAR_ALL = 4

_SYS_PIVOT_ROOT = {"x86_64": 155, "aarch64": 41}.get(os.uname().machine, 155)
_SYS_OPENAT2 = 437  # one number on every architecture (added after the syscall tables were unified)
_SYS_SECCOMP = {"x86_64": 317, "aarch64": 277}.get(os.uname().machine, 317)

# <linux/seccomp.h>
SECCOMP_SET_MODE_FILTER = 1
SECCOMP_GET_ACTION_AVAIL = 2
_LINUX_CAPABILITY_VERSION_3 = 0x20080522

_libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p]
_libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]
_libc.unshare.argtypes = [ctypes.c_int]
_libc.setns.argtypes = [ctypes.c_int, ctypes.c_int]
_libc.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
_libc.sethostname.argtypes = [ctypes.c_char_p, ctypes.c_size_t]
_libc.setdomainname.argtypes = [ctypes.c_char_p, ctypes.c_size_t]


def _check(ret: int, what: str) -> int:
    if ret < 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")
    return ret


def _b(s: str | bytes | None) -> bytes | None:
    return s.encode() if isinstance(s, str) else s


def mount(source: str | None, target: str, fstype: str | None, flags: int = 0, data: str | None = None) -> None:
    """mount(2). Raises OSError naming source, target, type and flags."""
    while True:
        ret = _libc.mount(_b(source), _b(target), _b(fstype), flags, _b(data))
        if ret == 0:
            return
        err = ctypes.get_errno()
        if err != errno.EINTR:
            raise OSError(err, f"mount {source or 'none'} on {target} (type {fstype or 'none'}, "
                               f"flags {flags:#x}, data {data!r}): {os.strerror(err)}")


_SYS_MOUNT_SETATTR = 442  # the same number on x86_64 and aarch64 (the unified syscall table)
AT_RECURSIVE = 0x8000


class _MountAttr(ctypes.Structure):
    _fields_ = [("attr_set", ctypes.c_uint64), ("attr_clr", ctypes.c_uint64), ("propagation", ctypes.c_uint64),
                ("userns_fd", ctypes.c_uint64)]


def mount_setattr_recursive(fd: int, attr_set: int, attr_clr: int) -> None:
    """mount_setattr(2) (Linux 5.12) on the mount ``fd`` and every mount below it (``AT_RECURSIVE``):
    ``MOUNT_ATTR_*`` bits to set and to clear. Raises OSError (ENOSYS on an older kernel)."""
    attr = _MountAttr(attr_set, attr_clr, 0, 0)
    while True:
        ret = _libc.syscall(_SYS_MOUNT_SETATTR, fd, b"", AT_EMPTY_PATH | AT_RECURSIVE, ctypes.byref(attr),
                            ctypes.sizeof(attr))
        if ret == 0:
            return
        err = ctypes.get_errno()
        if err != errno.EINTR:
            raise OSError(err, f"mount_setattr (set {attr_set:#x}, clear {attr_clr:#x}): {os.strerror(err)}")


_SYS_FSOPEN, _SYS_FSCONFIG, _SYS_FSMOUNT = 430, 431, 432  # unified numbers, as mount_setattr
_FSOPEN_CLOEXEC = 1
_FSCONFIG_SET_STRING, _FSCONFIG_CMD_CREATE = 1, 6
_FSMOUNT_CLOEXEC = 1


def fsmount_detached(fstype: str, options: dict[str, str], attr: int) -> int:
    """A new instance of ``fstype`` mounted nowhere: fsopen(2) + fsconfig(2) + fsmount(2) (Linux 5.2).

    ``options`` are string parameters (``{"subset": "pid"}``), ``attr`` ``MOUNT_ATTR_*`` bits. The
    filesystem takes the caller's namespaces (procfs: its PID namespace). Returns the mount's
    descriptor (close-on-exec; the mount goes when it is closed). Raises OSError (ENOSYS on an
    older kernel), naming the step.
    """
    fs = _check(_libc.syscall(_SYS_FSOPEN, _b(fstype), _FSOPEN_CLOEXEC), f"fsopen {fstype}")
    try:
        for key, value in options.items():
            _check(_libc.syscall(_SYS_FSCONFIG, fs, _FSCONFIG_SET_STRING, _b(key), _b(value), 0),
                   f"fsconfig {fstype} {key}={value}")
        _check(_libc.syscall(_SYS_FSCONFIG, fs, _FSCONFIG_CMD_CREATE, None, None, 0), f"fsconfig {fstype} create")
        return _check(_libc.syscall(_SYS_FSMOUNT, fs, _FSMOUNT_CLOEXEC, ctypes.c_uint(attr)), f"fsmount {fstype}")
    finally:
        os.close(fs)


class _OpenHow(ctypes.Structure):
    _fields_ = [("flags", ctypes.c_uint64), ("mode", ctypes.c_uint64), ("resolve", ctypes.c_uint64)]


def openat2(dirfd: int, path: str, flags: int, resolve: int, mode: int = 0) -> int:
    """openat2(2) (Linux 5.6): open ``path`` relative to ``dirfd`` under the ``RESOLVE_*`` rules.

    Returns the new fd (``O_CLOEXEC`` is the caller's to pass). Raises OSError with the errno and
    ``path`` as its filename: ENOSYS on a kernel without openat2, EAGAIN when the kernel saw a
    rename race while resolving ``..`` under ``RESOLVE_IN_ROOT`` (retry), EXDEV/ELOOP when a
    ``RESOLVE_*`` rule refused the path.
    """
    how = _OpenHow(flags, mode, resolve)
    while True:
        fd = _libc.syscall(_SYS_OPENAT2, dirfd, _b(path), ctypes.byref(how), ctypes.sizeof(how))
        if fd >= 0:
            return fd
        err = ctypes.get_errno()
        if err != errno.EINTR:
            raise OSError(err, os.strerror(err), path)


_STATX_SIZE = 256
_STATX_MNT_ID_OFFSET = 0x90  # struct statx: stx_mnt_id after the four timestamps and dev numbers


_statx = getattr(_libc, "statx", None)  # glibc >= 2.28; looked up once


def mount_id(fd: int, proc_dir: int | None = None) -> int:
    """The id of the mount ``fd`` lies on, as ``/proc/self/mountinfo``'s first field: ``statx``
    ``STATX_MNT_ID`` (Linux 5.8), else the ``mnt_id`` line of ``fdinfo/<fd>`` read relative to
    ``proc_dir``, a descriptor of this process's ``/proc/<pid>`` (after ``pivot_root``, a path
    ``/proc/self`` is the container's /proc, if any); ``/proc/self`` when None.

    Raises:
        OSError: ENOTSUP when neither tells, or what reading ``fdinfo`` raised.
    """
    if _statx is not None:
        buf = ctypes.create_string_buffer(_STATX_SIZE)
        if _statx(fd, b"", AT_EMPTY_PATH, STATX_MNT_ID, buf) == 0:
            mask, = struct.unpack_from("I", buf, 0)
            if mask & STATX_MNT_ID:
                return struct.unpack_from("Q", buf, _STATX_MNT_ID_OFFSET)[0]
    path = f"fdinfo/{fd}" if proc_dir is not None else f"/proc/self/fdinfo/{fd}"
    info = os.open(path, os.O_RDONLY | os.O_CLOEXEC, dir_fd=proc_dir)
    with open(info) as f:
        for line in f:
            if line.startswith("mnt_id:"):
                return int(line.split()[1])
    raise OSError(errno.ENOTSUP, f"no mount id for fd {fd}")


def umount2(target: str, flags: int = 0) -> None:
    """umount2(2)."""
    _check(_libc.umount2(_b(target), flags), f"umount2 {target}")


def unshare(flags: int) -> None:
    """unshare(2) with CLONE_NEW* flags."""
    _check(_libc.unshare(flags), f"unshare {flags:#x}")


def setns(fd: int, nstype: int = 0) -> None:
    """setns(2): join the namespace open on ``fd``."""
    _check(_libc.setns(fd, nstype), f"setns fd {fd}")


def pivot_root(new_root: str, put_old: str) -> None:
    """pivot_root(2) through syscall(2): glibc has no wrapper."""
    _check(_libc.syscall(_SYS_PIVOT_ROOT, _b(new_root), _b(put_old)), f"pivot_root {new_root}")


def prctl(option: int, arg2: int = 0, arg3: int = 0, arg4: int = 0, arg5: int = 0) -> int:
    """prctl(2)."""
    return _check(_libc.prctl(option, arg2, arg3, arg4, arg5), f"prctl {option}")


def sethostname(name: str) -> None:
    """sethostname(2) in the current UTS namespace."""
    raw = name.encode()
    _check(_libc.sethostname(raw, len(raw)), "sethostname")


def setdomainname(name: str) -> None:
    """setdomainname(2) in the current UTS namespace."""
    raw = name.encode()
    _check(_libc.setdomainname(raw, len(raw)), "setdomainname")


def capset(effective: int, permitted: int, inheritable: int) -> None:
    """capset(2) for the calling thread with 64-bit masks (``_LINUX_CAPABILITY_VERSION_3``)."""
    header = struct.pack("Ii", _LINUX_CAPABILITY_VERSION_3, 0)
    lo = lambda v: v & 0xFFFFFFFF  # noqa: E731
    hi = lambda v: (v >> 32) & 0xFFFFFFFF  # noqa: E731
    data = struct.pack("6I", lo(effective), lo(permitted), lo(inheritable),
                       hi(effective), hi(permitted), hi(inheritable))
    hbuf = ctypes.create_string_buffer(header, len(header))
    dbuf = ctypes.create_string_buffer(data, len(data))
    _check(_libc.capset(hbuf, dbuf), "capset")


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


_SYS_KEYCTL = {"x86_64": 250, "aarch64": 219}.get(os.uname().machine, 250)
KEYCTL_JOIN_SESSION_KEYRING = 1


def join_session_keyring(name: str | None = None) -> None:
    """keyctl(KEYCTL_JOIN_SESSION_KEYRING, name): give the calling process a new session keyring
    (anonymous for None), so the container does not share the caller's keys (libcontainer's
    ``keys.JoinSessionKeyring``). A kernel without keys (ENOSYS) is left alone.

    Raises:
        OSError: the kernel refused it (EPERM under a seccomp filter or a quota, EDQUOT…).
    """
    arg = None if name is None else name.encode()
    if _libc.syscall(_SYS_KEYCTL, KEYCTL_JOIN_SESSION_KEYRING, ctypes.c_char_p(arg)) < 0:
        err = ctypes.get_errno()
        if err != errno.ENOSYS:
            raise OSError(err, f"joining a new session keyring: {os.strerror(err)}")


def seccomp_set_mode_filter(program: bytes, flags: int = 0) -> None:
    """seccomp(SECCOMP_SET_MODE_FILTER, flags, &sock_fprog): install the classic BPF ``program``
    (``struct sock_filter`` entries, 8 bytes each) on the calling thread.

    Needs no_new_privs or CAP_SYS_ADMIN. Raises OSError (EINVAL for a bad program or flag, EACCES
    without either privilege).
    """
    buf = ctypes.create_string_buffer(program, len(program))
    prog = _SockFprog(len(program) // 8, ctypes.cast(buf, ctypes.c_void_p))
    _check(_libc.syscall(_SYS_SECCOMP, SECCOMP_SET_MODE_FILTER, ctypes.c_uint(flags), ctypes.byref(prog)),
           f"seccomp(SECCOMP_SET_MODE_FILTER, flags {flags:#x})")


def seccomp_flag_available(flag: int) -> bool:
    """Whether the kernel knows the ``SECCOMP_FILTER_FLAG_*`` bit ``flag``: with no program, a known
    flag gets EFAULT and an unknown one EINVAL (libseccomp probes the same way); nothing is installed."""
    if _libc.syscall(_SYS_SECCOMP, SECCOMP_SET_MODE_FILTER, ctypes.c_uint(flag), None) == 0:
        return True  # cannot happen with a NULL program
    return ctypes.get_errno() == errno.EFAULT


def seccomp_action_available(action: int) -> bool:
    """seccomp(SECCOMP_GET_ACTION_AVAIL): whether the kernel has the ``SECCOMP_RET_*`` ``action``."""
    value = ctypes.c_uint32(action)
    return _libc.syscall(_SYS_SECCOMP, SECCOMP_GET_ACTION_AVAIL, ctypes.c_uint(0), ctypes.byref(value)) == 0


AT_FDCWD = -100
AT_EACCESS = 0x200  # <fcntl.h>: check with the effective ids and capabilities, as execve does


def access_effective(path: str, mode: int) -> None:
    """faccessat(AT_FDCWD, path, mode, AT_EACCESS): whether the caller's effective ids and
    capabilities may use ``path`` for ``mode`` (``os.X_OK``…), as execve will check.

    Raises:
        OSError: with the errno (``os.access`` only answers False: EACCES, ENOENT and a seccomp
            filter's EPERM would look alike).
    """
    if _libc.faccessat(AT_FDCWD, os.fsencode(path), mode, AT_EACCESS) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err), path)


def close_fds_except(keep: set[int]) -> None:
    """Close every fd above stdio not in ``keep``: ``os.closerange`` over the gaps between them
    (one close_range(2) each), without listing ``/proc/self/fd``."""
    low = 3
    for fd in sorted(k for k in keep if k >= 3):
        if fd > low:
            os.closerange(low, fd)
        low = max(low, fd + 1)
    os.closerange(low, _FD_LIMIT)


_FD_LIMIT = 1 << 30  # above any fd the kernel hands out (fs.nr_open caps RLIMIT_NOFILE at 2^30)


@functools.cache
def last_cap() -> int:
    """The highest capability number the running kernel knows (``/proc/sys/kernel/cap_last_cap``);
    read once per process (a fork inherits it: the monitor reads it before its first fork)."""
    with open("/proc/sys/kernel/cap_last_cap") as f:
        return int(f.read())


# <linux/magic.h>
PROC_SUPER_MAGIC = 0x9FA0
SYSFS_MAGIC = 0x62656572
_STATFS_SIZE = 256  # struct statfs is 120 bytes on the 64-bit ABIs; f_type (a word) comes first


def fstatfs_type(fd: int) -> int:
    """fstatfs(2)'s ``f_type`` for ``fd``: the filesystem's magic number (``PROC_SUPER_MAGIC``…).
    Raises OSError."""
    buf = ctypes.create_string_buffer(_STATFS_SIZE)
    _check(_libc.fstatfs(fd, buf), f"fstatfs {fd}")
    return ctypes.c_ulong.from_buffer(buf).value & 0xFFFFFFFF  # magic numbers are 32-bit
