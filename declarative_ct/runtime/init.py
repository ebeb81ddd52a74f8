# Size: one stdlib-only module, imported whole before any namespace is joined: init loads nothing later
"""What runs inside the new container: stage 1 (cgroup, namespaces, fork) and init (stage 2).

Runs in processes forked from the manager, so it uses the stdlib and our stdlib-only modules
alone. The order is runc's (``nsexec.c`` + ``standard_init_linux.go``), with the reason beside
each step. Every failure is sent to the parent over the sync socket as an ``error`` message
(:mod:`.sync`) and the process exits; the parent then cleans up.

Two ways in. The state root's monitor forks init straight into the container's PID namespace
(:func:`pid_namespace_for_children` around its ``fork``; the child runs :func:`enter`): one fork
of the monitor per container. Without the monitor (``start(monitor=False)``, ``exec``) the caller
forks stage 1 (:func:`stage1`), which sets up the namespaces and forks init or the exec'd process,
as runc's ``nsexec`` does.

Sync protocol (:mod:`.sync`: its :class:`~.sync.Kind` names, one JSON object per SOCK_SEQPACKET message)::

    stage 1  --usermap-->         parent     (a new user namespace only: the parent writes
    stage 1  <--usermap-done--    parent      /proc/<pid>/uid_map and gid_map)
    stage 1  --pid{pid}-->        parent     (stage 1 only: host PID of init, or of the exec'd
                                              process; the monitor's reply carries it otherwise)
    init     --console+fd-->      parent     (process.terminal only: the pty master, SCM_RIGHTS)
    init     --hooks-->           parent     (only with prestart/createRuntime hooks: the parent
    init     <--hooks-done--      parent      applies the limits and runs them; init then runs
                                              createContainer and pivots)
    init     --ready-->           parent     [parent saves state.json]
    init     <--run--             parent
    init     --(close)-->         parent     init now blocks on exec.fifo (create/start split)
"""

from __future__ import annotations

import _frozen_importlib  # importlib's own finders, loaded at start-up (importlib.machinery is not)
import contextlib
import dataclasses
import errno
import fcntl
import functools
import os
import resource
import signal
import socket
import stat
import struct
import sys
from dataclasses import dataclass, field

from ..configs import CAPABILITIES, DEFAULT_ENV, NAMESPACE_PROC_NAMES, Capabilities, Config
from . import console, finalize, hooks, linux, paths, rootfs, sync
from .process import Process

_CLONE_FLAGS = {"NEWNS": linux.CLONE_NEWNS, "NEWUTS": linux.CLONE_NEWUTS, "NEWIPC": linux.CLONE_NEWIPC,
                "NEWNET": linux.CLONE_NEWNET, "NEWPID": linux.CLONE_NEWPID, "NEWCGROUP": linux.CLONE_NEWCGROUP,
                "NEWUSER": linux.CLONE_NEWUSER}
# runc's join order: ipc, uts, net, pid, mnt, cgroup (mnt late: it changes our root), and the user
# namespace last (runc 1.2's order): until then we hold the host's capabilities, which joining a
# namespace owned by another user namespace (a netns podman made, say) needs.
_JOIN_ORDER = ("NEWIPC", "NEWUTS", "NEWNET", "NEWPID", "NEWNS", "NEWCGROUP", "NEWUSER")


@dataclass
class InitContext:
    """Everything stage 1 and init need, handed over by ``fork``; to the monitor as JSON
    (:func:`.monitor_request.encode`), to a sealed stage 1 pickled in a memfd (``bootstrap``)."""

    config: Config
    process: Process
    sync: socket.socket
    cgroup: object  # a cgroups.Manager
    stdio: tuple[int, int, int]
    rootfs: str = ""
    fifo_fd: int = -1
    join: list[tuple[str, str]] = field(default_factory=list)  # (NEWxxx, /proc/.../ns/...)
    unshare: int = 0
    detach: bool = False  # exec only: do not wait for the process
    last_cap: int = -1  # the kernel's highest capability, read on the host side
    cgroup_fds: list[int] = field(default_factory=list)  # exec only: cgroup.procs to join
    seccomp: bytes = b""  # the compiled filter (runtime.seccomp, on the host side); b"": none
    seccomp_flags: int = 0  # SECCOMP_FILTER_FLAG_* bits
    cgroup_mounts: list[tuple[str, str]] = field(default_factory=list)  # for a cgroup mount: rootfs.prepare_rootfs
    hook_state: dict | None = None  # the OCI state of the hooks (id, bundle, annotations), when there are hooks


_stage = ""  # the set-up step under way (runc's stage names where it has them), sent with an error


def _step(stage: str) -> None:
    global _stage
    _stage = stage


def _fail(ctx: InitContext, err: BaseException) -> None:
    """Send ``err`` to the parent as an ``error`` message (its text, ``errno`` of an OSError and
    the step under way: ``errors.InitFailed`` on the other side), then exit 1."""
    msg = str(err) if not isinstance(err, OSError) or err.filename is None else f"{err.strerror}: {err.filename}"
    code = err.errno if isinstance(err, OSError) and isinstance(err.errno, int) else 0
    try:
        sync.send(ctx.sync, sync.Kind.ERROR, message=msg or type(err).__name__, errno=code, stage=_stage)
    finally:
        os._exit(1)


def plan_namespaces(config: Config) -> tuple[list[tuple[str, str]], int]:
    """``(joins, unshare_flags)``: namespaces with a path are joined, the others created."""
    joins = [(ns.type, ns.path) for t in _JOIN_ORDER for ns in config.namespaces if ns.type == t and ns.path]
    flags = 0
    for ns in config.namespaces:
        if not ns.path:
            flags |= _CLONE_FLAGS[ns.type]
    return joins, flags


def ordered_joins(joins: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """``joins`` in the order stage 1 must join them (user first, mount last)."""
    return sorted(joins, key=lambda join: _JOIN_ORDER.index(join[0]))


def exec_joins(config: Config, init_pid: int) -> list[tuple[str, str]]:
    """The namespaces an exec'd process joins: every one the container has, through init's ``/proc/<pid>/ns``."""
    return [(ns.type, f"/proc/{init_pid}/ns/{NAMESPACE_PROC_NAMES[ns.type]}")
            for t in _JOIN_ORDER for ns in config.namespaces if ns.type == t]


def _join(joins: list[tuple[str, str | int]]) -> None:
    # Open every namespace file before joining any: joining mnt changes what paths mean. An int
    # is a namespace file opened before the mount namespace was joined (the fork server's); closed here.
    fds = [(path if isinstance(path, int) else os.open(path, os.O_RDONLY | os.O_CLOEXEC), _CLONE_FLAGS[ns_type])
           for ns_type, path in joins]
    try:
        for fd, nstype in fds:
            linux.setns(fd, nstype)  # the kernel refuses a file of another namespace type
    finally:
        for fd, _ in fds:
            os.close(fd)


def no_path_imports() -> None:
    """From here on no module is loaded from a path: empties ``sys.path``, its importer cache and
    every finder but the builtin and frozen ones (a package's ``__path__`` and editable-install
    finders name paths too). After ``setns`` into the container's mount namespace a path names the
    container's files, so an import would run a module the container planted. Everything stage 1
    and init run is imported at the top of its module; one imported late fails (ModuleNotFoundError,
    sent to the parent) instead. Called first by :func:`stage1` and :func:`enter`."""
    sys.path[:] = []
    sys.path_hooks[:] = []
    sys.path_importer_cache.clear()
    sys.meta_path[:] = [finder for finder in sys.meta_path
                        if finder in (_frozen_importlib.BuiltinImporter, _frozen_importlib.FrozenImporter)]


def stage1(ctx: InitContext) -> None:
    """Stage 1 (no monitor, and ``exec``): join the cgroup first (so nothing forks outside it), then
    namespaces, then fork.

    A new PID namespace only applies to children, hence the fork. For an exec'd process stage 1
    stays outside the container's cgroup (it is not one of the container's processes): the child
    joins through ``cgroup.procs`` fds opened here, before the mount namespace hides them.
    Never returns.
    """
    try:
        no_path_imports()
        _enter_cgroup_and_namespaces(ctx)
        # The child waits on this gate until our "pid" message is out: the parent reads that before
        # anything the child sends, since both share the sync socket.
        gate_r, gate_w = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(gate_w)
            os.read(gate_r, 1)
            os.close(gate_r)
            _init(ctx) if ctx.process.init else _exec_child(ctx)
        os.close(gate_r)
        sync.send(ctx.sync, sync.Kind.PID, pid=pid)
        os.close(gate_w)
        if ctx.process.init or ctx.detach:
            # Re-parented to the caller's nearest subreaper (conmon, a containerd shim), which
            # collects its exit status: runc's contract for create and exec --detach.
            os._exit(0)
        # An exec'd process we wait for: stay and hand its exit status up to the caller, who
        # forwards signals to it: a terminal's ^C reaching us must not lose that status.
        ctx.sync.close()
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT):
            signal.signal(sig, signal.SIG_IGN)
        _, status = os.waitpid(pid, 0)
        # The shell's convention (128 + signal) rather than re-raising the signal on ourselves.
        os._exit(128 + os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status))
    except BaseException as err:  # noqa: BLE001 - everything goes back to the parent
        _fail(ctx, err)


def _enter_cgroup_and_namespaces(ctx: InitContext) -> None:
    """Join the cgroup (init) or open its ``cgroup.procs`` (exec), then join and unshare namespaces."""
    # Not dumpable and no stray fds before entering the container: a process in it must not
    # reach our fds through /proc/<pid>/fd (CVE-2016-9962). execve makes it dumpable again.
    _step("cgroup")
    linux.prctl(linux.PR_SET_DUMPABLE, 0)
    _close_fds_except({ctx.sync.fileno(), *ctx.stdio, ctx.fifo_fd, *ctx.process.extra_files, *ctx.cgroup_fds,
                       *(path for _, path in ctx.join if isinstance(path, int))})
    if ctx.process.init:
        ctx.cgroup.add(0)  # before anything else: nothing of the container may run outside it
    elif not ctx.cgroup_fds:  # (opened by the fork server, which forks us inside the mount namespace)
        ctx.cgroup_fds = [os.open(os.path.join(path, "cgroup.procs"), os.O_WRONLY | os.O_CLOEXEC)
                          for path in ctx.cgroup.paths().values()]
    ctx.last_cap = linux.last_cap()  # from the host's /proc: the container may have none
    _step("namespaces")
    _join(ctx.join)
    if ctx.unshare & linux.CLONE_NEWUSER:
        # First and alone: the namespaces made next are owned by it. Its maps are written by the
        # parent, which holds CAP_SETUID/CAP_SETGID over ours (runc's SYNC_USERMAP_PLS).
        linux.unshare(linux.CLONE_NEWUSER)
        sync.send(ctx.sync, sync.Kind.USERMAP)
        if not sync.received(ctx.sync, sync.Kind.USERMAP_DONE):
            os._exit(1)  # the parent failed (it reports why) or died
    if ctx.config.namespace("NEWUSER") is not None:
        # Root of the user namespace, new or joined (runc: setresuid(0, 0, 0) in stage 1).
        os.setresgid(0, 0, 0)
        os.setgroups([])
        os.setresuid(0, 0, 0)
    if ctx.unshare & ~linux.CLONE_NEWUSER:
        linux.unshare(ctx.unshare & ~linux.CLONE_NEWUSER)


@contextlib.contextmanager
def pid_namespace_for_children(ctx: InitContext):
    """Inside, the calling process's children are born in the PID namespace ``ctx`` asks for
    (``unshare(CLONE_NEWPID)``, or ``setns`` to a joined one); its own is restored on the way out.

    A process's PID namespace is fixed at its birth, which is why stage 1 has to fork. The
    monitor forks init inside this instead, and the child runs :func:`enter` with the context
    :func:`without_pid_namespace` gives: one fork per container instead of two. Only the
    calling process's ``pid_for_children`` changes; it must be single-threaded meanwhile. A child
    forked inside must never leave the block: restoring would fail there (EINVAL, an ancestor's
    namespace), so it ends with ``os._exit`` or ``execve`` inside.

    Raises:
        OSError: the namespace could not be created or joined (the caller's is restored).
    """
    own = os.open("/proc/self/ns/pid", os.O_RDONLY | os.O_CLOEXEC)
    try:
        joins = [join for join in ctx.join if join[0] == "NEWPID"]
        if joins:
            _join(joins)
        elif ctx.unshare & linux.CLONE_NEWPID:
            linux.unshare(linux.CLONE_NEWPID)
        yield
    finally:
        try:
            linux.setns(own, linux.CLONE_NEWPID)
        finally:
            os.close(own)


@contextlib.contextmanager
def joined(joins: list[tuple[str, str]]):
    """Inside, the calling process is in the namespaces ``joins`` (``(NEWxxx, path)``, never
    NEWUSER, which cannot be left) and its children are born in a joined PID namespace; its own
    are restored on the way out. For a fork made inside to start where stage 1's child starts
    (the fork server, :mod:`.forkserver`), with its root and cwd already the container's.

    As :func:`pid_namespace_for_children`: single-threaded meanwhile, and a child forked inside
    never leaves the block.

    Raises:
        OSError: a namespace could not be joined (those joined are left again); leaving one
            failed (the caller can no longer fork safely).
    """
    types = {ns_type for ns_type, _ in joins}
    if "NEWUSER" in types:
        raise ValueError("a user namespace cannot be left: join it in the child")
    own = [(os.open(f"/proc/self/ns/{NAMESPACE_PROC_NAMES[t]}", os.O_RDONLY | os.O_CLOEXEC), _CLONE_FLAGS[t])
           for t in _JOIN_ORDER if t in types]
    try:
        try:
            _join(ordered_joins(joins))
            yield
        finally:
            for fd, nstype in own:
                linux.setns(fd, nstype)
    finally:
        for fd, _ in own:
            os.close(fd)


def without_pid_namespace(ctx: InitContext) -> InitContext:
    """``ctx`` without its PID namespace step (done by :func:`pid_namespace_for_children`)."""
    return dataclasses.replace(ctx, join=[join for join in ctx.join if join[0] != "NEWPID"],
                               unshare=ctx.unshare & ~linux.CLONE_NEWPID)


def enter(ctx: InitContext) -> None:
    """Become the container's init in a process forked inside :func:`pid_namespace_for_children`.

    Joins the cgroup first, then the other namespaces, unshares the rest and runs init (stage 2)
    in place; errors go to the parent as with :func:`stage1`. Never returns.
    """
    try:
        no_path_imports()
        _enter_cgroup_and_namespaces(ctx)
    except BaseException as err:  # noqa: BLE001 - everything goes back to the parent
        _fail(ctx, err)
    _init(ctx)


def enter_exec(ctx: InitContext) -> None:
    """Become a process exec'd into a running container, in a process forked inside
    :func:`joined` (the fork server, :mod:`.forkserver`): ``ctx.join`` holds what is left to join
    (the user namespace, as an open descriptor) and ``ctx.cgroup_fds`` the cgroup's
    ``cgroup.procs``, all opened before the mount namespace was joined. Stage 1's remaining steps without its fork, then the exec'd
    child's. Errors go to the parent as with :func:`stage1`. Never returns.
    """
    try:
        no_path_imports()
        _enter_cgroup_and_namespaces(ctx)
    except BaseException as err:  # noqa: BLE001 - everything goes back to the parent
        _fail(ctx, err)
    _exec_child(ctx)


def _setup_stdio(stdio: tuple[int, int, int]) -> None:
    # Move the sources above 2 first so a source numbered 0-2 is not clobbered by an earlier dup2.
    high = [os.dup(fd) for fd in stdio]
    for target, fd in enumerate(high):
        os.dup2(fd, target, inheritable=True)
        os.close(fd)


def _loopback_up() -> None:
    siocgifflags, siocsifflags, iff_up = 0x8913, 0x8914, 0x1
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        ifr = struct.pack("16sh22x", b"lo", 0)
        flags = struct.unpack("16sh22x", fcntl.ioctl(s, siocgifflags, ifr))[1]
        fcntl.ioctl(s, siocsifflags, struct.pack("16sh22x", b"lo", flags | iff_up))


def _env(process: Process) -> dict[str, str]:
    env: dict[str, str] = {}
    for item in process.env or DEFAULT_ENV:
        key, _, value = item.partition("=")
        env[key] = value  # the last value wins, as libcontainer's env.go
    env.setdefault("PATH", DEFAULT_ENV[0].partition("=")[2])
    if "HOME" not in env:
        env["HOME"] = _home(process.uid)
    return env


def _home(uid: int) -> str:
    try:
        with open("/etc/passwd") as f:
            for line in f:
                fields = line.rstrip("\n").split(":")
                if len(fields) > 5 and fields[2] == str(uid):
                    return fields[5]
    except OSError:
        pass
    return "/"


def lookup(program: str, path_env: str) -> str:
    """Resolve ``program`` as ``execvp`` would, in the current root, with the caller's effective
    credentials and capabilities (what ``execve`` checks; call it as the container's user).

    Raises:
        PermissionError: a file was found but this user may not execute it, or a seccomp filter
            refused the lookup's stat/access (EPERM: named as the profile's doing).
        OSError: another error looking at a candidate (its errno).
        FileNotFoundError: no such file.
    """
    candidates = [program] if "/" in program else [os.path.join(d or ".", program) for d in path_env.split(":")]
    denied: tuple[str, int] | None = None  # as execvp: an error is reported only if no candidate runs
    for cand in candidates:
        try:
            if not stat.S_ISREG(os.stat(cand).st_mode):
                continue
            linux.access_effective(cand, os.X_OK)
            return cand
        except OSError as err:
            if err.errno not in (errno.ENOENT, errno.ENOTDIR, errno.ELOOP, errno.ENAMETOOLONG):
                denied = denied or (cand, err.errno)
    if denied:
        path, err = denied
        if err == errno.EACCES:
            raise PermissionError(f"exec: {path}: permission denied (uid {os.geteuid()}, gid {os.getegid()})")
        if err == errno.EPERM:  # the filter runs here when no_new_privs is off
            raise PermissionError(f"exec: {path}: operation not permitted (blocked by the seccomp profile?)")
        raise OSError(err, f"exec: {path}: {os.strerror(err)}")
    raise FileNotFoundError(f"exec: {program!r}: executable file not found in the container "
                            f"(looked in {', '.join(candidates) if '/' in program else 'PATH=' + path_env})")


def _enter_cwd(cwd: str, create: bool) -> None:
    """chdir to ``cwd``; a missing one is created for init (``create``: runc's createCwd), an
    error for an exec'd process (runc's setns init creates nothing)."""
    if os.path.exists(cwd) and not os.path.isdir(cwd):
        raise NotADirectoryError(f"cwd {cwd} is not a directory")
    if not os.path.isdir(cwd):
        if os.path.islink(cwd):
            raise NotADirectoryError(f"cwd {cwd} is a symlink to a missing directory ({os.readlink(cwd)})")
        if not create:
            raise FileNotFoundError(f"cwd {cwd} does not exist in the container")
        try:
            os.makedirs(cwd)
        except OSError as err:
            raise NotADirectoryError(f"cwd {cwd} does not exist and cannot be created: {err.strerror}") from None
    os.chdir(cwd)
    # CVE-2024-21626: a cwd reached through a leaked host fd is outside our root.
    try:
        real = os.getcwd()
    except OSError as err:
        raise PermissionError(f"cwd {cwd} is outside the container root") from err
    if not real.startswith("/"):
        raise PermissionError(f"cwd {cwd} is outside the container root ({real})")


def _cap_mask(names: list[str]) -> int:
    mask = 0
    for name in names:
        mask |= 1 << CAPABILITIES[name]
    return mask


def finalize_namespace(process: Process, caps: Capabilities, last_cap: int) -> None:
    """Drop the bounding set, switch user and groups, then set E/P/I and ambient caps (runc's order).

    KEEPCAPS keeps the permitted set across ``setuid`` so the final ``capset`` can pick from it.
    """
    keep = _cap_mask(caps.Bounding)
    for cap in range(last_cap + 1):
        if not keep & (1 << cap):
            linux.prctl(linux.PR_CAPBSET_DROP, cap)
    linux.prctl(linux.PR_SET_KEEPCAPS, 1)
    os.setgroups(process.additional_groups)
    os.setresgid(process.gid, process.gid, process.gid)
    os.setresuid(process.uid, process.uid, process.uid)
    linux.prctl(linux.PR_SET_KEEPCAPS, 0)
    linux.capset(_cap_mask(caps.Effective), _cap_mask(caps.Permitted), _cap_mask(caps.Inheritable))
    linux.prctl(linux.PR_CAP_AMBIENT, linux.PR_CAP_AMBIENT_CLEAR_ALL)
    for name in caps.Ambient:
        linux.prctl(linux.PR_CAP_AMBIENT, linux.PR_CAP_AMBIENT_RAISE, CAPABILITIES[name])


def _exit_on_signal(signum: int, _frame: object) -> None:
    os._exit(128 + signum)


def _reset_signals() -> None:
    """Default dispositions and an empty mask for the program: Python ignores SIGPIPE and SIGXFSZ.

    execve resets caught signals to the default by itself but keeps ignored ones and the mask, so
    only the ignored signals are set (``getsignal`` knows them all: Python reads every disposition
    at start-up and sees its own changes; None, a handler installed outside Python, is reset too).
    """
    for sig in signal.valid_signals():
        if sig not in (signal.SIGKILL, signal.SIGSTOP) and signal.getsignal(sig) in (signal.SIG_IGN, None):
            try:
                signal.signal(sig, signal.SIG_DFL)
            except (OSError, ValueError):
                pass  # signals the C library reserves for itself
    signal.pthread_sigmask(signal.SIG_SETMASK, [])


def _close_fds_except(keep: set[int]) -> None:
    """CVE-2024-21626: no host fd may reach the container's program."""
    linux.close_fds_except(keep)


def _place_extra_files(fds: list[int]) -> None:
    """Give the program ``fds`` as 3, 4, … (runc's ExtraFiles), once every other fd above stdio is
    closed: each is first copied above the target range, so that no source is overwritten before
    it is moved, then the copies are put in place and every original left outside the range closed."""
    if not fds:
        return
    end = 3 + len(fds)
    high = [fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, end) for fd in fds]
    for fd in set(fds):
        if fd >= end:
            os.close(fd)
    for target, fd in enumerate(high, start=3):
        os.dup2(fd, target, inheritable=True)
        os.close(fd)


def _apply_process_limits(config: Config, process: Process) -> None:
    for rl in process.rlimits if process.rlimits is not None else config.rlimits:
        resource.setrlimit(rl.type, (rl.soft, rl.hard))
    if process.umask is not None:
        os.umask(process.umask)
    if _no_new_privileges(config, process):
        linux.prctl(linux.PR_SET_NO_NEW_PRIVS, 1)


def _no_new_privileges(config: Config, process: Process) -> bool:
    return process.no_new_privileges if process.no_new_privileges is not None else config.no_new_privileges


def _load_seccomp(ctx: InitContext, before_capability_drop: bool) -> None:
    """Install the filter at runc's point: without no_new_privs loading needs CAP_SYS_ADMIN, so
    before the capability drop; with it, after, as close to execve as we can (the fewer of our own
    syscalls run under the filter, the fewer a profile must allow). Called at both points."""
    if ctx.seccomp and before_capability_drop != _no_new_privileges(ctx.config, ctx.process):
        linux.seccomp_set_mode_filter(ctx.seccomp, ctx.seccomp_flags)


def write_proc_file(dir_fd: int, path: str, value: str, what: str) -> None:
    """Write ``value`` to the procfs file ``path`` under the directory ``dir_fd`` (a sysctl, ``oom_score_adj``).

    The file is opened with no symlink anywhere on the way (:func:`paths.open_no_symlinks`) and
    must be on procfs, then reopened for writing through its own descriptor: a volume or a
    symlink where the file should be cannot send the write elsewhere (a host-wide sysctl).
    Raises OSError whose message names ``what`` (the field, and the file as the container sees it).
    """
    try:
        fd = paths.open_no_symlinks(dir_fd, path)
        try:
            if linux.fstatfs_type(fd) != linux.PROC_SUPER_MAGIC:
                raise OSError(errno.EXDEV, "not on procfs: a mount covers it; refusing")
            out = os.open(f"fd/{fd}", os.O_WRONLY | os.O_CLOEXEC, dir_fd=paths.proc_self())
        finally:
            os.close(fd)
        with open(out, "w") as f:
            f.write(value)
    except OSError as err:
        why = "a symlink is on the way; refusing" if err.errno == errno.ELOOP else err.strerror or str(err)
        raise OSError(err.errno, f"{what}: {why}") from None


def _init(ctx: InitContext) -> None:
    """Stage 2, PID 1 of the container: rootfs, pivot_root, hardening, then wait on the exec fifo."""
    try:
        cfg, proc = ctx.config, ctx.process
        _step("session")
        os.setsid()
        if not cfg.no_new_keyring:
            linux.join_session_keyring()  # not the caller's keys (runc: a keyring per container)
        _setup_stdio(ctx.stdio)
        if cfg.private_namespace("NEWNET"):
            _loopback_up()
        _step("rootfs")
        rootfs.prepare_rootfs(cfg, ctx.rootfs, ctx.cgroup_mounts)
        _step("hooks")
        if cfg.hooks.get("prestart") or cfg.hooks.get("createRuntime"):
            sync.send(ctx.sync, sync.Kind.HOOKS)  # the parent runs them, in its own namespaces
            if not sync.received(ctx.sync, sync.Kind.HOOKS_DONE):
                os._exit(1)  # a hook failed (the parent reports it) or the parent died: it cleans up
        if cfg.hooks.get("createContainer"):
            # In the container's mount namespace, before pivot_root (the path is the host's), as runc.
            hooks.run_hooks("createContainer", cfg.hooks["createContainer"],
                            {**ctx.hook_state, "status": "creating", "pid": os.getpid()})
        # Without a /proc mount, a procfs of the container's own for what init reaches there
        # (sysctls, the exec fifo). Made before pivot_root: in a user namespace the kernel makes
        # procfs only while a whole one is visible (the host's, still here), and before the
        # seccomp filter (which refuses fsopen).
        _step("procfs")
        own_proc = -1 if _has_proc_mount(cfg) else _own_proc(sysctls=False)
        sysctl_proc = _own_proc(sysctls=True) if cfg.sysctl and own_proc >= 0 else -1
        _step("pivot_root")
        if cfg.no_pivot_root:
            finalize.move_root(ctx.rootfs, cfg.root_propagation)
        else:
            finalize.pivot_root(ctx.rootfs, cfg.root_propagation)
        _step("console")
        if proc.terminal:  # runc's point: after the config's mounts, before the rootfs is made read-only
            console.setup(ctx.sync, proc.console_size, proc.uid, "/dev/console")
        _step("hostname")
        if cfg.hostname:
            linux.sethostname(cfg.hostname)
        if cfg.domainname:
            linux.setdomainname(cfg.domainname)
        _step("sysctl")
        if cfg.sysctl:
            top = sysctl_proc if sysctl_proc >= 0 else _mounted_proc()
            try:
                for key, value in cfg.sysctl.items():
                    path = "sys/" + key.replace(".", "/")
                    write_proc_file(top, path, value, f"sysctl {key} (/proc/{path})")
            finally:
                os.close(top)
        if cfg.oom_score_adj is not None:
            # Our /proc/<pid>, held from the host's /proc before pivot_root: no container mount reaches it.
            write_proc_file(paths.proc_self(), "oom_score_adj", str(cfg.oom_score_adj),
                            "process.oomScoreAdj (/proc/self/oom_score_adj)")
        # Before the rootfs turns read-only (runc creates a missing cwd there too).
        _step("cwd")
        _enter_cwd(proc.cwd, create=True)
        _step("readonly and masked paths")
        finalize.finalize_rootfs(cfg)
        _step("limits")
        env = _env(proc)
        _apply_process_limits(cfg, proc)
        sync.send(ctx.sync, sync.Kind.READY)
        if not sync.received(ctx.sync, sync.Kind.RUN):
            os._exit(1)  # the parent gave up (or died): it cleans up
        _step("seccomp")
        _load_seccomp(ctx, before_capability_drop=True)
        _step("capabilities")
        finalize_namespace(proc, proc.capabilities or cfg.capabilities, ctx.last_cap)
        # As the container's user, before the sync socket closes: a program missing or not
        # executable for that user is a create-time error, as in runc.
        _step("exec")
        program = lookup(proc.args[0], env["PATH"])
        _step("seccomp")
        _load_seccomp(ctx, before_capability_drop=False)
        ctx.sync.close()
    except BaseException as err:  # noqa: BLE001
        _fail(ctx, err)
    step = "waiting for the start on the exec fifo"
    try:
        _close_fds_except({ctx.fifo_fd, own_proc, *ctx.process.extra_files})
        # A created container must die on SIGTERM & co. as runc's does; as PID 1 of its namespace
        # it would ignore them with the default disposition. _reset_signals undoes this.
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2):
            signal.signal(sig, _exit_on_signal)
        # Block here until Container.exec() opens the fifo for reading: the create/start split.
        fd = _open_exec_fifo(own_proc, ctx.fifo_fd)
        os.write(fd, b"0")
        os.close(fd)
        os.close(ctx.fifo_fd)
        if cfg.hooks.get("startContainer"):
            step = "running the startContainer hooks"
            hooks.run_hooks("startContainer", cfg.hooks["startContainer"],
                            {**ctx.hook_state, "status": "created", "pid": os.getpid()})
        step = "passing the preserved fds"
        _place_extra_files(ctx.process.extra_files)
        step = "resetting signals before exec"
        _reset_signals()
        step = f"exec {program}"
        os.execve(program, proc.args, env)
    except BaseException as err:  # noqa: BLE001
        _fail_late(step, err, bool(ctx.seccomp))


def _has_proc_mount(cfg: Config) -> bool:
    return any(m.device == "proc" and os.path.normpath(m.destination) == "/proc" for m in cfg.mounts)


def _open_exec_fifo(own_proc: int, fifo_fd: int) -> int:
    """Reopen the exec fifo (held ``O_PATH``) for writing, which blocks until its reader opens it.

    Through the container's /proc (``own_proc`` -1), or without one through a procfs of its own
    (:func:`_own_proc`, closed here); never through the host's, which a process exec'd into the
    created container could reach through /proc/1/fd."""
    if own_proc < 0:
        return os.open(f"/proc/self/fd/{fifo_fd}", os.O_WRONLY | os.O_CLOEXEC)
    try:
        return os.open(f"self/fd/{fifo_fd}", os.O_WRONLY | os.O_CLOEXEC, dir_fd=own_proc)
    finally:
        os.close(own_proc)


def _mounted_proc() -> int:
    """The container's /proc mount (after ``pivot_root``), checked to be procfs. Raises OSError."""
    fd = os.open("/proc", os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    if linux.fstatfs_type(fd) != linux.PROC_SUPER_MAGIC:
        os.close(fd)
        raise OSError(errno.EXDEV, "/proc is not procfs: a mount covers it; refusing")
    return fd


def _own_proc(sysctls: bool) -> int:
    """A new procfs instance of init's PID namespace mounted nowhere (runc 1.1 fails without a /proc
    mount). Close-on-exec. Raises OSError naming the step.

    Whole only for ``sysctls`` (closed before init waits on the exec fifo); any other is
    ``subset=pid`` and read-only: the one init holds while the container is created can be taken
    by a process exec'd into it with CAP_SYS_PTRACE (pidfd_getfd), and its /proc/sys, past every
    masked and read-only path, would be the host's sysctls to a root without a user namespace."""
    options, attr = ({}, 0) if sysctls else ({"subset": "pid"}, linux.MOUNT_ATTR_RDONLY)
    try:
        return linux.fsmount_detached("proc", options, attr | linux.MOUNT_ATTR_NOSUID | linux.MOUNT_ATTR_NODEV |
                                      linux.MOUNT_ATTR_NOEXEC)
    except OSError as err:
        raise OSError(err.errno, f"no proc mount at /proc, and a procfs of the container's own cannot be "
                                 f"made ({err.strerror}): add one to mounts") from None


def _fail_late(step: str, err: BaseException, filtered: bool) -> None:
    """A failure once the sync socket is closed (``step``: waiting on the fifo, ``exec <program>``):
    said on the container's stderr, where its program's output would have gone (runc: ``exec
    /bin/echo: permission denied``), with a hint at the seccomp profile (``filtered``) for EPERM,
    then exit 127 (program not found) or 126 (cannot run), as a shell does."""
    if isinstance(err, OSError) and err.strerror:
        msg = f"{step}: {err.strerror.lower()}"
        if filtered and err.errno == errno.EPERM:
            msg += " (refused by the seccomp profile?)"
        code = 127 if err.errno == errno.ENOENT and step.startswith("exec ") else 126
    else:
        msg, code = f"container init, {step}: {err or type(err).__name__}", 1
    try:
        os.write(2, f"dct: {msg}\n".encode(errors="replace"))
    finally:
        os._exit(code)


def _exec_child(ctx: InitContext) -> None:
    """An extra process in a running container (runc's setns init): no rootfs work, no fifo.

    A detached one is left by stage 1 to the caller's nearest subreaper, as with ``runc exec
    --detach`` (a containerd shim or conmon waits for it there); a caller that is no subreaper
    leaves it to the host's init.
    """
    try:
        for fd in ctx.cgroup_fds:
            os.write(fd, b"0")  # "0" is the writer itself, whatever PID namespace it sees
        for fd in ctx.cgroup_fds:  # now, not at execve: nothing later needs a writable cgroup.procs
            os.close(fd)
        ctx.cgroup_fds = []
        cfg, proc = ctx.config, ctx.process
        _step("session")
        # A session of its own, as runc's setns init: the caller's controlling terminal (TIOCSTI
        # into the admin's shell) and process group (kill(0, …)) are not the container's to reach;
        # with a terminal, the pty becomes its controlling terminal.
        os.setsid()
        if not cfg.no_new_keyring:
            linux.join_session_keyring()
        if proc.terminal:
            console.setup(ctx.sync, proc.console_size, proc.uid)
        else:
            _setup_stdio(ctx.stdio)
        _step("cwd")
        env = _env(proc)
        _enter_cwd(proc.cwd, create=False)
        _step("limits")
        _apply_process_limits(cfg, proc)
        _step("seccomp")
        _load_seccomp(ctx, before_capability_drop=True)
        _step("capabilities")
        finalize_namespace(proc, proc.capabilities or cfg.capabilities, ctx.last_cap)
        _step("exec")
        program = lookup(proc.args[0], env["PATH"])  # as the process's user, as execve will check
        _step("seccomp")
        _load_seccomp(ctx, before_capability_drop=False)
        ctx.sync.close()
    except BaseException as err:  # noqa: BLE001
        _fail(ctx, err)
    step = "passing the preserved fds"
    try:
        _close_fds_except(set(proc.extra_files))
        _place_extra_files(proc.extra_files)
        step = "resetting signals before exec"
        _reset_signals()
        step = f"exec {program}"
        os.execve(program, proc.args, env)
    except BaseException as err:  # noqa: BLE001
        _fail_late(step, err, bool(ctx.seccomp))


def namespace_paths(pid: int) -> dict[str, str]:
    """libcontainer's ``namespace_paths`` for ``pid``: every namespace type the kernel has, host ones included."""
    return {t: f"/proc/{pid}/ns/{NAMESPACE_PROC_NAMES[t]}" for t in _kernel_namespaces()}


@functools.cache
def _kernel_namespaces() -> tuple[str, ...]:
    # Every process has a file for each type the kernel supports: looked up once, on ourselves.
    return tuple(t for t in NAMESPACE_PROC_NAMES if os.path.exists(f"/proc/self/ns/{NAMESPACE_PROC_NAMES[t]}"))
