"""Creating a container's init (libcontainer ``Start()`` of an init; youki's ``init_builder`` and
``builder_impl``): the exec fifo, namespaces and cgroup, then the sync protocol with stage 1 and
init (user maps, console hand-over, hooks, ``ready``), state.json saved, and with ``run`` the
release through the exec fifo at once. A failed create leaves nothing behind (:func:`abort`)."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import signal as _signal
import socket
import threading
from typing import TYPE_CHECKING

from ...configs import HOST_ROOTFS
from ...configs.logs import LogConfig
from ...errors import ConfigInvalid, ContainerError, SystemError
from .. import bootstrap, cgroups, init, logcopy, logfiles, monitor, procfs, store, sync
from ..process import Process
from ..state import State
from ..sync import Kind
from .delete import teardown
from .parent import (SYNC_TIMEOUT, check_terminal, expected, failure, guarded, in_child, open_stdio, past_console,
                     past_user_maps, readlink_fd)

if TYPE_CHECKING:
    from . import Container

def start_locked(c: Container, process: Process, use_monitor: bool, release: bool,
                 log: LogConfig | None = None) -> None:
    """:meth:`Container.start` (``release`` False) or :meth:`Container.run` of an init, under the
    container's lock; raises as they do."""
    check_terminal(process)
    if log is not None:
        log.validate()
    if use_monitor and process.extra_files:  # the monitor gets a fixed set of fds over its socket
        raise ConfigInvalid("process.extra_files (--preserve-fds): only without the monitor")
    if not os.path.isdir(c._dir):
        raise ContainerError(f"container {c._id} was destroyed")
    with store.locked(c._dir):
        if c._state is not None:
            raise ContainerError(f"container {c._id} already has an init process")
        start_init(c, process, use_monitor, release, log)


def start_init(c: Container, process: Process, use_monitor: bool, release: bool = False,
               log_config: LogConfig | None = None) -> None:
    """Build the container and leave init blocked on the exec fifo (or, with ``release``, past it);
    on any failure :func:`abort` first (the new run's log file included)."""
    parent_sock, child_sock = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    parent_sock.settimeout(SYNC_TIMEOUT)  # a wedged init must not hold the container lock forever
    opened: list[int] = []
    init_pid = -1
    stage1_pid = -1
    cgroup_made = False
    config = c._config
    log: dict | None = None
    readers: list[int] = []
    try:
        fifo = c._fifo()
        os.mkfifo(fifo, 0o622)
        os.chmod(fifo, 0o622)
        piped = process
        if use_monitor and not process.terminal:
            piped, log, readers = log_pipes(c, process, log_config or LogConfig(), opened)
        stdio, more = open_stdio(piped, detached=True)
        opened += more
        opened.append(os.open(fifo, os.O_PATH | os.O_CLOEXEC))
        rootfs = config.rootfs
        if rootfs == HOST_ROOTFS:
            rootfs = os.path.join(c._dir, "rootfs")
            os.makedirs(rootfs, exist_ok=True)
        joins, flags = init.plan_namespaces(config)
        if use_monitor and config.namespace("NEWNET") is None:
            # The host's network is the caller's: init comes from the monitor, which may have
            # been started from another network namespace (nsenter --net=…), so join ours.
            joins = init.ordered_joins(joins + [("NEWNET", f"/proc/{os.getpid()}/task/"
                                                           f"{threading.get_native_id()}/ns/net")])
        c._cgroup.check(config.cgroups.resources)  # before anything exists
        net_record = None
        if config.networks:  # lease and ports first: a conflict refuses before any process exists
            from .. import network

            net_record = network.reserve(c._root, c._dir, c._id, config)
        ctx = init.InitContext(config=config, process=guarded(c, in_child(process)), sync=child_sock,
                               cgroup=c._cgroup, stdio=stdio, rootfs=rootfs, fifo_fd=opened[-1], join=joins,
                               unshare=flags)
        if config.hooks:
            ctx.hook_state = c._hook_state()
        if any(m.device in ("cgroup", "cgroup2") for m in config.mounts):
            ctx.cgroup_mounts = cgroups.hierarchies(c._cgroup.paths())
        if config.seccomp is not None:  # compiled here: init only loads the bytes
            from .. import seccomp

            ctx.seccomp = seccomp.compile_filter(config.seccomp, cache_dir=os.path.join(c._root, seccomp.CACHE_DIR))
            ctx.seccomp_flags = seccomp.load_flags(config.seccomp)
            seccomp.save(c._dir, ctx.seccomp)
        c._cgroup.create()  # refuses a cgroup that holds processes: it is someone else's
        cgroup_made = True
        # Recorded at once, so that delete finds a custom (cgroupsPath) cgroup even if we die now.
        store.write_json_atomic(os.path.join(c._dir, store.CGROUP_FILE), c._cgroup.paths())
        # What state.json needs that does not depend on init: built while init sets up.
        config_dict = config.to_dict()
        descriptors = [readlink_fd(os.getpid(), fd) for fd in stdio]  # init's 0-2 once it is set up
        if use_monitor:  # the root's shared monitor forks init and will reap it
            from .. import monitord
            asked = monitord.request_init(c._root, c._dir, ctx, log, tuple(readers))
            child_sock.close()
            # The monitor answers (init's pid) before init is ready: read the answer once
            # "ready" (or the end of the sync socket) is in, one wake-up less per create.
            try:
                msg = sync.recv(parent_sock)
                if config.namespace("NEWUSER") is not None:
                    # Its child is a stage 1 here (the PID namespace must be made after the
                    # user namespace, to be owned by it), which asks for the maps, then says
                    # init's pid.
                    stage1, asked = monitord.answer(c._root, asked), None
                    init_pid = expected(past_user_maps(c, parent_sock, stage1, msg), Kind.PID).pid
                    msg = sync.recv(parent_sock)
                ready = past_console(parent_sock, process, msg)
            finally:
                if asked is not None:
                    init_pid = monitord.answer(c._root, asked)
        else:
            stage1_pid = bootstrap.fork_stage1(ctx, parent_sock)
            child_sock.close()
            init_pid = expected(past_user_maps(c, parent_sock, stage1_pid, sync.recv(parent_sock)), Kind.PID).pid
            os.waitpid(stage1_pid, 0)  # after this, init is re-parented to our subreaper
            stage1_pid = -1
            ready = past_console(parent_sock, process, sync.recv(parent_sock))
        limits_set = False
        if ready is not None and ready.kind == Kind.HOOKS:
            # runc's procHooks: limits first, then prestart and createRuntime, in our namespaces.
            c._cgroup.set(config.cgroups.resources)
            limits_set = True
            c._run_hooks("prestart", "creating", init_pid)
            c._run_hooks("createRuntime", "creating", init_pid)
            sync.send(parent_sock, Kind.HOOKS_DONE)
            ready = past_console(parent_sock, process, sync.recv(parent_sock))
        expected(ready, Kind.READY)
        if not limits_set:
            # runc applies limits at procReady: after init's own setup, before the program runs.
            c._cgroup.set(config.cgroups.resources)
        if net_record is not None:
            from ..network.attach import attach as attach_network

            attach_network(c._dir, net_record, init_pid)
        st = procfs.stat(init_pid)
        if st is None:
            raise SystemError("container init exited during setup")
        state = State(id=c._id, init_process_pid=init_pid, init_process_start=st[1],
                      created=monitor.rfc3339_now(), config=config_dict,
                      cgroup_paths=c._cgroup.paths(), namespace_paths=init.namespace_paths(init_pid),
                      external_descriptors=descriptors, log_path=log["path"] if log else None)
        # Saved before init is released, so that delete can always clean up (runc's procReady).
        store.write_json_atomic(os.path.join(c._dir, store.STATE_FILE), state.to_dict())
        c._state = state
        sync.send(parent_sock, Kind.RUN)
        if release:  # run, not create, releases init here: create loads no release code
            from .start import release_at_once

            release_at_once(c, parent_sock, init_pid)
        else:
            msg = sync.recv(parent_sock)
            if msg is not None:
                raise failure(msg, "container init")
    except BaseException:
        c._state = None
        abort(c, init_pid, stage1_pid, cgroup_made)
        if log is not None:  # the run that never ran: the previous one stays the latest
            with contextlib.suppress(OSError):
                os.unlink(log["path"])
        raise
    finally:
        parent_sock.close()
        child_sock.close()
        for fd in opened:
            os.close(fd)


def log_pipes(c: Container, process: Process, config: LogConfig, opened: list[int]
              ) -> tuple[Process, dict | None, list[int]]:
    """For init's stdout and stderr that the caller left None: a pipe each, whose write end init
    gets and whose read end goes to the monitor, which copies it into a new run's log file
    (:func:`.logfiles.new_run` under :attr:`Container.data_root`; :mod:`..logcopy`).

    Returns ``(process with the write ends as its stdout/stderr, the monitor request's log part
    (None: nothing to copy), the read ends)``; every fd made is appended to ``opened`` (the
    caller closes its copies once the monitor has them).

    Raises:
        SystemError: the log directory or file cannot be made (the data root named).
    """
    streams = [name for name in logcopy.STREAMS if getattr(process, name) is None]
    if not streams:
        return process, None, []
    from ..factory import data_dir

    readers, writers = [], {}
    for name in streams:  # first: a new run made before a failure here would push out the one that crashed
        r, w = logcopy.make_pipe()
        opened += [r, w]
        readers.append(r)
        writers[name] = w
    try:
        # Through data_dir: a new data root records the state root it serves (its marker).
        path = logfiles.new_run(os.path.join(data_dir(c.data_root, os.path.abspath(c._root), logfiles.LOGS_DIR), c._id))
    except OSError as err:
        raise SystemError(f"container {c._id}: cannot make its log file under {c.data_root}: "
                          f"{err.strerror or err}") from None
    return (dataclasses.replace(process, **writers),
            {"path": path, **config.to_dict(), "streams": streams}, readers)


def abort(c: Container, init_pid: int, stage1_pid: int, cgroup_made: bool) -> None:
    """Undo a failed start: kill what we started, remove our cgroup (never another's) and the state dir."""
    with contextlib.suppress(OSError):
        os.unlink(os.path.join(c._dir, store.STATE_FILE))
    for pid in (init_pid, stage1_pid):
        if pid > 0:
            with contextlib.suppress(OSError):
                os.kill(pid, _signal.SIGKILL)
    if stage1_pid > 0:
        with contextlib.suppress(OSError):
            os.waitpid(stage1_pid, 0)
    teardown(c._cgroup if cgroup_made else None, c._dir)
