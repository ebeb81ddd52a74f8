"""The default seccomp profile: the semantics of docker's (moby's) default, written here as rules.

What it does, as moby documents its profile:

- every syscall not allowed below fails with EPERM (``SCMP_ACT_ERRNO``, errno 1);
- a long list of ordinary syscalls is allowed for everyone (:data:`_ALLOWED`);
- syscalls that reach past the container's namespaces are allowed only when the container holds
  the capability that guards them anyway (:data:`_BY_CAPABILITY`: ``CAP_SYS_ADMIN`` unlocks
  mount, unshare, setns…; ``CAP_SYS_PTRACE`` kcmp and the cross-process calls…);
- without ``CAP_SYS_ADMIN``, ``clone`` is allowed only without namespace flags, and ``clone3``
  (whose flags sit in memory, out of a filter's reach) fails with ENOSYS so the C library falls
  back to ``clone``;
- ``personality`` only with the domains that change nothing dangerous; ``socket`` never for
  AF_VSOCK (it reaches the hypervisor), and the 32-bit ABIs' ``socketcall`` multiplexer never for
  ``SYS_SOCKET`` (ENOSYS): its arguments sit in memory, out of the filter's reach (moby allows
  it, and with it AF_VSOCK). A 32-bit program whose C library makes sockets through
  ``socketcall`` (glibc built for kernels before 4.3, Go's 386 port) cannot make a socket; one
  using the direct ``socket`` call (Linux 4.3) is unaffected;
- io_uring (``io_uring_setup``, ``_enter``, ``_register``) is refused like any unlisted call: the
  operations it submits are carried out without passing through the filter (moby's and
  containerd's defaults dropped it too);
- a few architecture-specific calls on their architecture; the 32-bit ABIs of the machine are
  added (x86 and x32 on x86_64, arm on aarch64…) with the same rules.

The capability-conditioned rules are resolved when the profile is built for a container
(:func:`default_profile`, from its bounding set), so the result is a plain OCI ``linux.seccomp``.
Stdlib only.
"""

from __future__ import annotations

import os

from ..configs.seccomp import Seccomp, SeccompArg, SeccompSyscall

# Ordinary syscalls, by what they are for. Names unknown on an architecture are skipped at compile.
_ALLOWED = {
    "files": (
        "access", "chdir", "chmod", "chown", "chown32", "close", "close_range", "copy_file_range", "creat",
        "dup", "dup2", "dup3", "faccessat", "faccessat2", "fadvise64", "fadvise64_64", "fallocate",
        "fanotify_mark", "fchdir", "fchmod", "fchmodat", "fchown", "fchown32", "fchownat", "fcntl", "fcntl64",
        "fdatasync", "fgetxattr", "flistxattr", "flock", "fremovexattr", "fsetxattr", "fstat", "fstat64",
        "fstatat64", "fstatfs", "fstatfs64", "fsync", "ftruncate", "ftruncate64", "futimesat", "getcwd",
        "getdents", "getdents64", "getxattr", "inotify_add_watch", "inotify_init", "inotify_init1",
        "inotify_rm_watch", "lchown", "lchown32", "lgetxattr", "link", "linkat", "listxattr", "llistxattr",
        "_llseek", "lremovexattr", "lseek", "lsetxattr", "lstat", "lstat64", "mkdir", "mkdirat", "mknod",
        "mknodat", "name_to_handle_at", "newfstatat", "open", "openat", "openat2", "pread64", "preadv",
        "preadv2", "pwrite64", "pwritev", "pwritev2", "read", "readahead", "readlink", "readlinkat", "readv",
        "removexattr", "rename", "renameat", "renameat2", "rmdir", "sendfile", "sendfile64", "setxattr",
        "splice", "stat", "stat64", "statfs", "statfs64", "statx", "symlink", "symlinkat", "sync",
        "sync_file_range", "syncfs", "tee", "truncate", "truncate64", "umask", "unlink", "unlinkat", "utime",
        "utimensat", "utimensat_time64", "utimes", "vmsplice", "write", "writev",
    ),
    "asynchronous I/O and polling": (
        "epoll_create", "epoll_create1", "epoll_ctl", "epoll_ctl_old", "epoll_pwait", "epoll_pwait2",
        "epoll_wait", "epoll_wait_old", "eventfd", "eventfd2", "io_cancel", "io_destroy", "io_getevents",
        "io_pgetevents", "io_pgetevents_time64", "io_setup", "io_submit", "ioctl", "ioprio_get", "ioprio_set",
        "_newselect", "pipe", "pipe2", "poll", "ppoll", "ppoll_time64", "pselect6", "pselect6_time64", "select",
        "signalfd", "signalfd4", "timerfd_create", "timerfd_gettime", "timerfd_gettime64", "timerfd_settime",
        "timerfd_settime64",
    ),
    "memory": (
        "brk", "madvise", "membarrier", "memfd_create", "memfd_secret", "mincore", "mlock", "mlock2",
        "mlockall", "mmap", "mmap2", "mprotect", "mremap", "msync", "munlock", "munlockall", "munmap",
        "pkey_alloc", "pkey_free", "pkey_mprotect", "remap_file_pages",
    ),
    "processes and identity": (
        "capget", "capset", "execve", "execveat", "exit", "exit_group", "fork", "get_robust_list",
        "get_thread_area", "getcpu", "getegid", "getegid32", "geteuid", "geteuid32", "getgid", "getgid32",
        "getgroups", "getgroups32", "getpgid", "getpgrp", "getpid", "getppid", "getpriority", "getresgid",
        "getresgid32", "getresuid", "getresuid32", "getrlimit", "getrusage", "getsid", "gettid", "getuid",
        "getuid32", "landlock_add_rule", "landlock_create_ruleset", "landlock_restrict_self", "pidfd_open",
        "pidfd_send_signal", "prctl", "prlimit64", "process_mrelease", "rseq", "sched_get_priority_max",
        "sched_get_priority_min", "sched_getaffinity", "sched_getattr", "sched_getparam", "sched_getscheduler",
        "sched_rr_get_interval", "sched_rr_get_interval_time64", "sched_setaffinity", "sched_setattr",
        "sched_setparam", "sched_setscheduler", "sched_yield", "seccomp", "set_robust_list", "set_thread_area",
        "set_tid_address", "setfsgid", "setfsgid32", "setfsuid", "setfsuid32", "setgid", "setgid32",
        "setgroups", "setgroups32", "setpgid", "setpriority", "setregid", "setregid32", "setresgid",
        "setresgid32", "setresuid", "setresuid32", "setreuid", "setreuid32", "setrlimit", "setsid", "setuid",
        "setuid32", "ugetrlimit", "uname", "vfork", "wait4", "waitid", "waitpid",
    ),
    "signals": (
        "kill", "pause", "restart_syscall", "rt_sigaction", "rt_sigpending", "rt_sigprocmask",
        "rt_sigqueueinfo", "rt_sigreturn", "rt_sigsuspend", "rt_sigtimedwait", "rt_sigtimedwait_time64",
        "rt_tgsigqueueinfo", "sigaltstack", "sigprocmask", "sigreturn", "tgkill", "tkill",
    ),
    "time": (
        "adjtimex", "alarm", "clock_adjtime", "clock_adjtime64", "clock_getres", "clock_getres_time64",
        "clock_gettime", "clock_gettime64", "clock_nanosleep", "clock_nanosleep_time64", "getitimer",
        "gettimeofday", "nanosleep", "setitimer", "time", "timer_create", "timer_delete", "timer_getoverrun",
        "timer_gettime", "timer_gettime64", "timer_settime", "timer_settime64", "times",
    ),
    "futexes": ("futex", "futex_time64", "futex_waitv"),
    "networking": (
        "accept", "accept4", "bind", "connect", "getpeername", "getsockname", "getsockopt", "listen", "recv",
        "recvfrom", "recvmmsg", "recvmmsg_time64", "recvmsg", "send", "sendmmsg", "sendmsg", "sendto",
        "setsockopt", "shutdown", "socketpair",
    ),
    "System V and POSIX IPC (namespaced by the IPC namespace)": (
        "ipc", "mq_getsetattr", "mq_notify", "mq_open", "mq_timedreceive", "mq_timedreceive_time64",
        "mq_timedsend", "mq_timedsend_time64", "mq_unlink", "msgctl", "msgget", "msgrcv", "msgsnd", "semctl",
        "semget", "semop", "semtimedop", "semtimedop_time64", "shmat", "shmctl", "shmdt", "shmget",
    ),
    "system information": ("sysinfo",),
}

# Before 4.8 a traced process could skip the filter through ptrace: allowed from 4.8 on.
_PTRACE = ("ptrace", "process_vm_readv", "process_vm_writev")

# Syscalls a capability guards anyway: allowed when the container's bounding set holds it.
_BY_CAPABILITY = {
    "CAP_SYS_ADMIN": (
        "bpf", "clone", "clone3", "fanotify_init", "fsconfig", "fsmount", "fsopen", "fspick", "lookup_dcookie",
        "mount", "mount_setattr", "move_mount", "open_tree", "perf_event_open", "quotactl", "quotactl_fd",
        "setdomainname", "sethostname", "setns", "syslog", "umount", "umount2", "unshare",
    ),
    "CAP_DAC_READ_SEARCH": ("open_by_handle_at",),
    "CAP_SYS_BOOT": ("reboot",),
    "CAP_SYS_CHROOT": ("chroot",),
    "CAP_SYS_MODULE": ("delete_module", "finit_module", "init_module"),
    "CAP_SYS_PACCT": ("acct",),
    "CAP_SYS_PTRACE": ("kcmp", "pidfd_getfd", "process_madvise") + _PTRACE,
    "CAP_SYS_RAWIO": ("ioperm", "iopl"),
    "CAP_SYS_TIME": ("clock_settime", "clock_settime64", "settimeofday", "stime"),
    "CAP_SYS_TTY_CONFIG": ("vhangup",),
    "CAP_SYS_NICE": ("get_mempolicy", "mbind", "set_mempolicy", "set_mempolicy_home_node"),
    "CAP_SYSLOG": ("syslog",),
    "CAP_BPF": ("bpf",),
    "CAP_PERFMON": ("perf_event_open",),
}

# By the machine (os.uname().machine): the ABIs the filter covers, and calls only that machine has.
_ARCHITECTURES = {
    "x86_64": ("SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"),
    "aarch64": ("SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"),
    "armv7l": ("SCMP_ARCH_ARM",),
    "i686": ("SCMP_ARCH_X86",),
    "ppc64le": ("SCMP_ARCH_PPC64LE",),
    "s390x": ("SCMP_ARCH_S390X", "SCMP_ARCH_S390"),
    "riscv64": ("SCMP_ARCH_RISCV64",),
    "mips64": ("SCMP_ARCH_MIPS64", "SCMP_ARCH_MIPS", "SCMP_ARCH_MIPS64N32"),
    "mips64el": ("SCMP_ARCH_MIPSEL64", "SCMP_ARCH_MIPSEL", "SCMP_ARCH_MIPSEL64N32"),
}
_ARCH_CALLS = {
    "x86_64": ("arch_prctl", "modify_ldt"),
    "i686": ("modify_ldt",),
    "aarch64": ("arm_fadvise64_64", "arm_sync_file_range", "breakpoint", "cacheflush", "set_tls",
                "sync_file_range2"),
    "armv7l": ("arm_fadvise64_64", "arm_sync_file_range", "breakpoint", "cacheflush", "set_tls",
               "sync_file_range2"),
    "ppc64le": ("swapcontext", "sync_file_range2"),
    "s390x": ("s390_pci_mmio_read", "s390_pci_mmio_write", "s390_runtime_instr"),
    "riscv64": ("riscv_flush_icache",),
}

# personality(2) domains that are harmless: PER_LINUX, PER_LINUX32, UNAME26 on either, and the query.
_PERSONALITIES = (0x0, 0x8, 0x20000, 0x20008, 0xFFFFFFFF)
_AF_VSOCK = 40
_SYS_SOCKET = 1  # socketcall(2)'s call number for socket()
# CLONE_NEWNS|NEWCGROUP|NEWUTS|NEWIPC|NEWUSER|NEWPID|NEWNET: a clone that makes a namespace.
_CLONE_NAMESPACE_FLAGS = 0x7E020000
_ENOSYS = 38


def default_profile(bounding: list[str], machine: str | None = None) -> Seccomp:
    """The default profile resolved for a container whose bounding set is ``bounding``
    (``CAP_*`` names), on ``machine`` (``os.uname().machine`` when None).

    Returns a new :class:`Seccomp` (an OCI ``linux.seccomp``): default ERRNO(EPERM), the machine's
    ABIs, and ALLOW rules for the ordinary syscalls plus those the capabilities unlock.
    """
    machine = machine or os.uname().machine
    caps = set(bounding)
    allowed = sorted({name for group in _ALLOWED.values() for name in group} | set(_ARCH_CALLS.get(machine, ()))
                     | (set(_PTRACE) if _kernel_at_least(4, 8) else set()))
    unlocked = sorted({name for cap, names in _BY_CAPABILITY.items() if cap in caps for name in names})
    # First: libseccomp orders a syscall's checks as its rules came, and the `socket` rules below
    # become an unconditional socketcall(SYS_SOCKET) ALLOW on the 32-bit x86 ABI (see _no_socketcall_socket).
    calls = [_no_socketcall_socket(), *_unless_low32("socketcall", 0, _SYS_SOCKET),
             SeccompSyscall(allowed, "SCMP_ACT_ALLOW")]
    if unlocked:
        calls.append(SeccompSyscall(unlocked, "SCMP_ACT_ALLOW"))
    calls += _unless_low32("socket", 0, _AF_VSOCK)
    # One rule per domain: several conditions on one argument in one rule would all have to hold.
    calls += [SeccompSyscall(["personality"], "SCMP_ACT_ALLOW", args=[SeccompArg(0, p, 0, "SCMP_CMP_EQ")])
              for p in _PERSONALITIES]
    if "CAP_SYS_ADMIN" not in caps:
        flags_arg = 1 if machine == "s390x" else 0  # s390's clone takes the stack first
        calls.append(SeccompSyscall(["clone"], "SCMP_ACT_ALLOW",
                                    args=[SeccompArg(flags_arg, _CLONE_NAMESPACE_FLAGS, 0, "SCMP_CMP_MASKED_EQ")]))
        calls.append(SeccompSyscall(["clone3"], "SCMP_ACT_ERRNO", errno_ret=_ENOSYS))
    return Seccomp("SCMP_ACT_ERRNO", 1, list(_ARCHITECTURES.get(machine, ())), [], calls)


def _no_socketcall_socket() -> SeccompSyscall:
    """``socketcall(SYS_SOCKET, args)`` (the 32-bit ABIs' multiplexer) fails with ENOSYS.

    Its arguments sit in memory, where a filter cannot see AF_VSOCK; and libseccomp turns a
    ``socket`` rule with argument conditions into an unconditional ``socketcall(SYS_SOCKET)`` rule
    on those ABIs, so without this one AF_VSOCK goes through (as in moby's profile). ENOSYS, not
    EPERM: libseccomp takes no rule whose action is the default's, and the answer fits: use the
    direct ``socket`` call (Linux 4.3), which the filter does check. The low 32 bits are compared
    (the kernel reads ``call`` as an ``int``); the other socketcall calls are allowed, by rules
    with a condition too (an unconditional one would override this one).
    """
    return SeccompSyscall(["socketcall"], "SCMP_ACT_ERRNO", errno_ret=_ENOSYS,
                          args=[SeccompArg(0, 0xFFFFFFFF, _SYS_SOCKET, "SCMP_CMP_MASKED_EQ")])


def _unless_low32(name: str, index: int, value: int) -> list[SeccompSyscall]:
    """ALLOW rules for ``name`` unless the low 32 bits of argument ``index`` equal ``value``.

    For ``socket``'s family (not AF_VSOCK) and ``socketcall``'s call (not SYS_SOCKET). The kernel
    reads both as an ``int``: a 64-bit ``SCMP_CMP_NE`` would let ``0x1_00000028`` through as
    AF_VSOCK. No operator compares only the low half against a value, so one rule per bit of it:
    allowed when that bit differs from ``value``'s. EPERM (the default action) otherwise: the
    refusal the direct call gets; ENOSYS would send no C library elsewhere.
    """
    return [SeccompSyscall([name], "SCMP_ACT_ALLOW",
                           args=[SeccompArg(index, 1 << bit, ~value & (1 << bit), "SCMP_CMP_MASKED_EQ")])
            for bit in range(32)]


def _kernel_at_least(major: int, minor: int) -> bool:
    parts = os.uname().release.split(".")
    try:
        return (int(parts[0]), int("".join(c for c in parts[1] if c.isdigit()) or 0)) >= (major, minor)
    except (IndexError, ValueError):
        return True
