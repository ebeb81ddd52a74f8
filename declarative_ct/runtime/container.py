"""``Container``: libcontainer's container lifecycle (``BaseContainer`` + pause/resume)."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import select
import shutil
import signal as _signal
import socket
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..configs import HOST_ROOTFS, OCI_VERSION, Capabilities, Config, pair_memory_swap
from ..errors import (ConfigInvalid, ContainerError, ContainerNotRunning, InitFailed, InvalidStateTransition,
                      SystemError, log_warning)
from . import bootstrap, cgroups, console, init, monitor, procfs, store, sync
from .process import Process
from .state import State, Status, derive_status, require
from .sync import Kind, Message

if TYPE_CHECKING:
    from .stats import Stats


_KILL_WAIT = 5.0  # seconds to wait for SIGKILLed processes to leave the cgroup
SYNC_TIMEOUT = 60.0  # seconds for stage 1 and init to report each step of the set-up


@dataclass
class ExecProcess:
    """A process started in a running container by ``start(Process(init=False))`` (``runc exec``).

    ``pid`` is its host PID; :meth:`wait` returns its exit code (128 + signal when killed).
    """

    pid: int
    _waiter: int

    def pidfd(self) -> int:
        """A pidfd that polls readable once the process has ended (of the stage 1 process that waits
        for it and cannot be reused before :meth:`wait`); the caller closes it. Raises OSError."""
        return os.pidfd_open(self._waiter if self._waiter > 0 else self.pid)

    def wait(self) -> int:
        """Block until the process ends; its exit code (0 at once for a detached process)."""
        if self._waiter < 0:
            return 0
        _, status = os.waitpid(self._waiter, 0)
        return monitor.exit_record(self.pid, status)["exit_code"]


class Container:
    """One container in a state root, with libcontainer's methods.

    Status is derived on every :meth:`status` call (runc's ``refreshState``): a frozen cgroup is
    ``paused`` (``pausing`` while FREEZING), a dead or PID-reused init is ``stopped``, an exec fifo
    means ``created``, otherwise ``running``. Mutating methods hold the container's flock.
    """

    def __init__(self, root: str, container_id: str, config: Config, state: State | None = None) -> None:
        self._root = root
        self._id = container_id
        self._config = config
        self._state = state
        self._dir = os.path.join(root, container_id)
        self._network: dict | None = None  # network.json, read once by stats()
        if state is not None and state.cgroup_paths:
            self._cgroup = cgroups.manager_from_paths(state.cgroup_paths, config.cgroups.resources.devices)
        else:
            self._cgroup = cgroups.new_manager(container_id, config.cgroups.parent, config.cgroups.resources.devices,
                                               config.cgroups.path)

    # -- accessors -----------------------------------------------------------------------
    @property
    def id(self) -> str:
        """The container id (libcontainer ``ID()``)."""
        return self._id

    @property
    def config(self) -> Config:
        """The container's :class:`Config` (libcontainer ``Config()``)."""
        return self._config

    @property
    def state_dir(self) -> str:
        """``<root>/<id>``: state.json, exec.fifo, exit.json and the log files."""
        return self._dir

    def _fifo(self) -> str:
        return os.path.join(self._dir, store.EXEC_FIFO)

    def _init_alive(self) -> bool:
        st = self._state
        return st is not None and procfs.is_alive(st.init_process_pid, st.init_process_start)

    # -- status and state ----------------------------------------------------------------
    def status(self) -> Status:
        """The current :class:`Status`, read now (freezer, init liveness, exec fifo) and derived by
        :func:`~declarative_ct.runtime.state.derive_status`."""
        saved = self._state is not None
        freezer = self._cgroup.freezer_state() if saved else cgroups.THAWED
        alive = saved and self._init_alive()
        return derive_status(saved, freezer, alive, alive and os.path.exists(self._fifo()))

    def state(self) -> State:
        """libcontainer's ``State`` as saved in state.json (raises ContainerNotRunning before start)."""
        if self._state is None:
            raise ContainerNotRunning(f"container {self._id} has not been started")
        return self._state

    def oci_state(self) -> dict[str, object]:
        """The runtime-spec state: ``{ociVersion, id, status, pid (not when stopped), bundle, annotations}``."""
        status = self.status()
        out: dict[str, object] = {"ociVersion": self._config.version or OCI_VERSION, "id": self._id,
                               "status": str(status)}
        if status != Status.STOPPED and self._state is not None:
            out["pid"] = self._state.init_process_pid
        out.update(self._hook_state())
        return out

    def _hook_state(self) -> dict[str, object]:
        """The parts of the OCI state that do not change: ``{ociVersion, id, bundle[, annotations]}``."""
        out: dict[str, object] = {"ociVersion": self._config.version or OCI_VERSION, "id": self._id,
                                  "bundle": self._config.label("bundle") or ""}
        annotations = {k: v for k, _, v in (lb.partition("=") for lb in self._config.labels) if k != "bundle"}
        if annotations:
            out["annotations"] = annotations
        return out

    def _run_hooks(self, name: str, status: str, pid: int | None, warn: bool = False) -> None:
        """Run the config's ``name`` hooks with the OCI state (``status``, ``pid`` when given) on stdin.

        Raises:
            ContainerError: a hook failed (not with ``warn``: then it is logged as a warning).
        """
        if not self._config.hooks.get(name):
            return
        from . import hooks

        state = {**self._hook_state(), "status": status}
        if pid is not None:
            state["pid"] = pid
        try:
            hooks.run_hooks(name, self._config.hooks[name], state)
        except hooks.HookError as err:
            if not warn:
                raise ContainerError(f"container {self._id}: {err}") from None
            log_warning("container %s: %s", self._id, err)

    def exit_status(self) -> dict[str, object] | None:
        """Our extension: ``{"pid", "exit_code", "signal", "exited_at"}`` once the monitor saw init exit."""
        try:
            return store.read_json(os.path.join(self._dir, store.EXIT_FILE))
        except (OSError, ValueError):
            return None

    def processes(self) -> list[int]:
        """Host PIDs in the container's cgroup (libcontainer ``Processes()``); ``[]`` once it is gone."""
        return self._cgroup.get_all_pids()

    def set(self, config: Config) -> None:
        """Apply ``config.cgroups.resources`` live and persist it (libcontainer ``Set()``).

        Only the resource limits change: fields left None keep their value, device rules and every
        other part of ``config`` are ignored (they are fixed at create). The cgroup files are read
        back; if one write fails, every file already written is restored before raising. The
        merged config is saved in state.json only after all writes succeeded; if that save fails
        (a full disk), the cgroup files are restored too: the kernel and state.json always agree.

        Raises:
            ContainerNotRunning: the container is stopped (or was never started).
            ConfigInvalid: a bad value, or a controller that is not available (named, with the fix).
            SystemError: the kernel refused a value, or state.json could not be saved (the file and
                the reason named); the previous values are back in force.
        """
        with store.locked(self._dir):
            self._reload()  # another handle (dct update, the TUI) may have changed the limits since
            require("set", self.status(), self._id)  # (stopped too when there is no state)
            update = pair_memory_swap(config.cgroups.resources, self._config.cgroups.resources)
            written = self._cgroup.set(update)
            try:
                new = dataclasses.replace(self._config, cgroups=dataclasses.replace(
                    self._config.cgroups, resources=self._config.cgroups.resources.merged(update)))
                state = dataclasses.replace(self._state, config=new.to_dict())
                store.write_json_atomic(os.path.join(self._dir, store.STATE_FILE), state.to_dict())
            except BaseException as err:
                errors = written.rollback()  # state.json keeps the old limits: so must the kernel
                if not isinstance(err, OSError):
                    raise
                undone = (f"restoring the previous limits failed too: {'; '.join(errors)}" if errors
                          else "the previous limits are back in force")
                raise SystemError(f"cannot save {err.filename}: {err.strerror}; {undone}") from err
            self._config, self._state = new, state

    def _reload(self) -> None:
        """Re-read state.json (the caller holds the lock): the saved config is the one in force."""
        try:
            raw = store.read_json(os.path.join(self._dir, store.STATE_FILE))
        except FileNotFoundError:
            return  # not started yet, or destroyed: status() says which
        self._state = State.from_dict(raw)
        self._config = Config.from_dict(self._state.config)

    def close(self) -> None:
        """Release the cgroup files that :meth:`stats` keeps open (also done by :meth:`destroy` and at GC)."""
        self._cgroup.close()

    def stats(self) -> Stats:
        """libcontainer ``Stats()``: :class:`~declarative_ct.runtime.stats.Stats` read from the cgroup files now.

        CPU times are ns, memory bytes; a controller that is not mounted leaves its part None.
        ``interfaces``: the veth of a bridge network (libcontainer's NetworkInterface, rx/tx as the
        container sees them), empty for other network modes.

        Raises:
            ContainerNotRunning: the container was never started, or is stopped and its cgroup is gone.
        """
        if self._state is None:
            raise ContainerNotRunning(f"container {self._id} has not been started")
        cgroup_stats = self._cgroup.stats()
        if cgroup_stats.cpu_stats is None and cgroup_stats.memory_stats is None and not self._cgroup.exists():
            raise ContainerNotRunning(f"container {self._id} is not running (its cgroup is gone)")
        from .stats import NetworkInterface, Stats  # here: the stats classes cost other CLI verbs ~5 ms

        interfaces = []
        if self._config.networks:
            from . import network

            if self._network is None:
                self._network = network.load(self._dir)
            counters = network.interface_counters(self._network, self._state.init_process_pid) \
                if self._network else None
            if counters is not None:
                interfaces.append(NetworkInterface(Name=self._network["host_interface_name"], **counters))
        return Stats(cgroup_stats=cgroup_stats, interfaces=interfaces)

    # -- start / run / exec --------------------------------------------------------------
    def start(self, process: Process, monitor: bool = True, detach: bool = False) -> ExecProcess | None:
        """libcontainer ``Start()``.

        For ``process.init`` it builds the container and returns with init blocked on the exec
        fifo: status ``created``, the program not yet run. With ``monitor`` (the default) a
        detached monitor reaps init and records ``exit.json``; without it init is re-parented to
        the caller's nearest subreaper, as with ``runc create``. ``None`` stdio of an init means
        /dev/null in and ``stdout.log``/``stderr.log`` in the state dir.

        For a non-init process (``runc exec``) it joins the container's namespaces and cgroup and
        returns an :class:`ExecProcess`; ``None`` stdio means the caller's. With ``detach`` nothing
        of ours waits for it (it is re-parented to the container's init)
        and ``ExecProcess.wait()`` returns at once with 0.

        Raises:
            ContainerError: already started; ContainerNotRunning/ContainerPaused for exec; any
                failure inside the new process (missing program, mount error…) with its message.
            ConfigInvalid: ``process.extra_files`` of an init with ``monitor``.
                A failed start leaves no process, cgroup or state directory behind.
        """
        if not process.init:
            return self._start_exec(process, detach)
        self._start_locked(process, monitor, release=False)
        return None

    def run(self, process: Process, monitor: bool = True) -> None:
        """libcontainer ``Run()``: :meth:`start` then :meth:`exec`, in one go for an init.

        The exec fifo is opened as soon as state.json is saved, so init runs its program once its
        last set-up step is done, without waiting for a separate :meth:`exec` (one round trip
        less); what can fail, and how, is as with the two calls.
        """
        if not process.init:
            self.start(process, monitor)
            self.exec()
            return
        self._start_locked(process, monitor, release=True)
        self._run_hooks("poststart", "running", self._state.init_process_pid, warn=True)

    def _start_locked(self, process: Process, monitor: bool, release: bool) -> None:
        _check_terminal(process)
        if monitor and process.extra_files:  # the monitor gets a fixed set of fds over its socket
            raise ConfigInvalid("process.extra_files (--preserve-fds): only without the monitor")
        if not os.path.isdir(self._dir):
            raise ContainerError(f"container {self._id} was destroyed")
        with store.locked(self._dir):
            if self._state is not None:
                raise ContainerError(f"container {self._id} already has an init process")
            self._start_init(process, monitor, release)

    def _guarded(self, process: Process) -> Process:
        """``process`` without CAP_MKNOD when device rules exist but the cgroup driver cannot enforce them.

        Without a device cgroup (v2 needs eBPF, not done yet) a container holding CAP_MKNOD could
        create a node for a host disk and read it; dropping the capability closes that door.
        """
        if self._cgroup.enforces_devices() or not self._config.cgroups.resources.devices:
            return process
        caps = process.capabilities or self._config.capabilities
        return dataclasses.replace(process, capabilities=Capabilities(
            *([c for c in getattr(caps, s) if c != "CAP_MKNOD"]
              for s in ("Bounding", "Effective", "Permitted", "Inheritable", "Ambient"))))

    def _open_stdio(self, process: Process, detached: bool) -> tuple[tuple[int, int, int], list[int]]:
        opened: list[int] = []
        fds = []
        for i, value in enumerate((process.stdin, process.stdout, process.stderr)):
            if value is None:
                if not detached:
                    fds.append(i)
                    continue
                if i == 0:
                    fd = os.open("/dev/null", os.O_RDONLY | os.O_CLOEXEC)
                else:
                    name = store.STDOUT_LOG if i == 1 else store.STDERR_LOG
                    fd = os.open(os.path.join(self._dir, name), os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC,
                                 0o640)
                opened.append(fd)
                fds.append(fd)
            else:
                fds.append(value if isinstance(value, int) else value.fileno())
        return (fds[0], fds[1], fds[2]), opened

    def _start_init(self, process: Process, use_monitor: bool, release: bool = False) -> None:
        parent_sock, child_sock = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        parent_sock.settimeout(SYNC_TIMEOUT)  # a wedged init must not hold the container lock forever
        opened: list[int] = []
        init_pid = -1
        stage1_pid = -1
        cgroup_made = False
        try:
            fifo = self._fifo()
            os.mkfifo(fifo, 0o622)
            os.chmod(fifo, 0o622)
            stdio, opened = self._open_stdio(process, detached=True)
            opened.append(os.open(fifo, os.O_PATH | os.O_CLOEXEC))
            rootfs = self._config.rootfs
            if rootfs == HOST_ROOTFS:
                rootfs = os.path.join(self._dir, "rootfs")
                os.makedirs(rootfs, exist_ok=True)
            joins, flags = init.plan_namespaces(self._config)
            if use_monitor and self._config.namespace("NEWNET") is None:
                # The host's network is the caller's: init comes from the monitor, which may have
                # been started from another network namespace (nsenter --net=…), so join ours.
                joins = init.ordered_joins(joins + [("NEWNET", f"/proc/{os.getpid()}/task/"
                                                               f"{threading.get_native_id()}/ns/net")])
            self._cgroup.check(self._config.cgroups.resources)  # before anything exists
            net_record = None
            if self._config.networks:  # lease and ports first: a conflict refuses before any process exists
                from . import network

                net_record = network.reserve(self._root, self._dir, self._id, self._config)
            ctx = init.InitContext(config=self._config, process=self._guarded(_in_child(process)), sync=child_sock,
                                   cgroup=self._cgroup, stdio=stdio, rootfs=rootfs, fifo_fd=opened[-1], join=joins,
                                   unshare=flags)
            if self._config.hooks:
                ctx.hook_state = self._hook_state()
            if any(m.device in ("cgroup", "cgroup2") for m in self._config.mounts):
                ctx.cgroup_mounts = cgroups.hierarchies(self._cgroup.paths())
            if self._config.seccomp is not None:  # compiled here: init only loads the bytes
                from . import seccomp

                ctx.seccomp = seccomp.compile_filter(self._config.seccomp,
                                                     cache_dir=os.path.join(self._root, seccomp.CACHE_DIR))
                ctx.seccomp_flags = seccomp.load_flags(self._config.seccomp)
                seccomp.save(self._dir, ctx.seccomp)
            self._cgroup.create()  # refuses a cgroup that holds processes: it is someone else's
            cgroup_made = True
            # Recorded at once, so that delete finds a custom (cgroupsPath) cgroup even if we die now.
            store.write_json_atomic(os.path.join(self._dir, store.CGROUP_FILE), self._cgroup.paths())
            # What state.json needs that does not depend on init: built while init sets up.
            config_dict = self._config.to_dict()
            descriptors = [_readlink_fd(os.getpid(), fd) for fd in stdio]  # init's 0-2 once it is set up
            if use_monitor:  # the root's shared monitor forks init and will reap it
                from . import monitord
                asked = monitord.request_init(self._root, self._dir, ctx)
                child_sock.close()
                # The monitor answers (init's pid) before init is ready: read the answer once
                # "ready" (or the end of the sync socket) is in, one wake-up less per create.
                try:
                    msg = sync.recv(parent_sock)
                    if self._config.namespace("NEWUSER") is not None:
                        # Its child is a stage 1 here (the PID namespace must be made after the
                        # user namespace, to be owned by it), which asks for the maps, then says
                        # init's pid.
                        stage1, asked = monitord.answer(self._root, asked), None
                        init_pid = self._expected(self._past_user_maps(parent_sock, stage1, msg), Kind.PID).pid
                        msg = sync.recv(parent_sock)
                    ready = self._past_console(parent_sock, process, msg)
                finally:
                    if asked is not None:
                        init_pid = monitord.answer(self._root, asked)
            else:
                stage1_pid = bootstrap.fork_stage1(ctx, parent_sock)
                child_sock.close()
                init_pid = self._expected(self._past_user_maps(parent_sock, stage1_pid, sync.recv(parent_sock)),
                                          Kind.PID).pid
                os.waitpid(stage1_pid, 0)  # after this, init is re-parented to our subreaper
                stage1_pid = -1
                ready = self._past_console(parent_sock, process, sync.recv(parent_sock))
            limits_set = False
            if ready is not None and ready.kind == Kind.HOOKS:
                # runc's procHooks: limits first, then prestart and createRuntime, in our namespaces.
                self._cgroup.set(self._config.cgroups.resources)
                limits_set = True
                self._run_hooks("prestart", "creating", init_pid)
                self._run_hooks("createRuntime", "creating", init_pid)
                sync.send(parent_sock, Kind.HOOKS_DONE)
                ready = self._past_console(parent_sock, process, sync.recv(parent_sock))
            self._expected(ready, Kind.READY)
            if not limits_set:
                # runc applies limits at procReady: after init's own setup, before the program runs.
                self._cgroup.set(self._config.cgroups.resources)
            if net_record is not None:
                network.attach(self._dir, net_record, init_pid)
            st = procfs.stat(init_pid)
            if st is None:
                raise SystemError("container init exited during setup")
            state = State(id=self._id, init_process_pid=init_pid, init_process_start=st[1],
                          created=monitor.rfc3339_now(), config=config_dict,
                          cgroup_paths=self._cgroup.paths(), namespace_paths=init.namespace_paths(init_pid),
                          external_descriptors=descriptors)
            # Saved before init is released, so that delete can always clean up (runc's procReady).
            store.write_json_atomic(os.path.join(self._dir, store.STATE_FILE), state.to_dict())
            self._state = state
            sync.send(parent_sock, Kind.RUN)
            if release:
                self._release_at_once(parent_sock, init_pid)
            else:
                msg = sync.recv(parent_sock)
                if msg is not None:
                    raise _failure(msg, "container init")
        except BaseException:
            self._state = None
            self._abort(init_pid, stage1_pid, cgroup_made)
            raise
        finally:
            parent_sock.close()
            child_sock.close()
            for fd in opened:
                os.close(fd)

    def _release_at_once(self, sock: socket.socket, init_pid: int) -> None:
        """After "run": the exec fifo's reader, opened before init gets there (so its write does
        not wait for us); returns once init has written to it. Init's last set-up errors come on
        ``sock`` before it exits (raised as ContainerError)."""
        try:
            released = self._read_release(init_pid, SYNC_TIMEOUT)
        except ProcessLookupError:  # init failed its last step and was reaped before we looked
            released = b""
        if released == b"":  # (None: past the fifo already, as good)
            sock.setblocking(False)
            try:
                msg = sync.recv(sock)
            except (BlockingIOError, OSError):
                msg = None
            if msg is not None and msg.kind == Kind.ERROR:
                raise InitFailed(msg.stage, msg.errno, msg.message, who="container init")
            hint = " (did the seccomp profile refuse a syscall init needs?)" if self._config.seccomp is not None else ""
            raise ContainerNotRunning(f"container {self._id}: init died during set-up, before it was released{hint}")
        os.unlink(self._fifo())

    def _read_release(self, init_pid: int, timeout: float | None) -> bytes | None:
        """Open the exec fifo for reading (which lets init's write through) and wait for init's byte,
        or for init to die, at most ``timeout`` s (None: as long as init may still write).

        Returns the byte; b"" when init died or the time ran out without it; None when init is
        alive but past the fifo: a manager killed between reading the byte and removing the fifo
        released it already (it holds the fifo no more), and no byte will ever come.

        Raises:
            ProcessLookupError: init is gone (reaped) already.
        """
        # The pidfd first: opening the fifo releases init at once, and a short program (true)
        # can run, exit and be reaped before a pidfd_open made after it.
        pidfd = os.pidfd_open(init_pid)
        try:
            return self._read_fifo(pidfd, timeout)
        finally:
            os.close(pidfd)

    def _read_fifo(self, pidfd: int, timeout: float | None) -> bytes | None:
        """:meth:`_read_release` with init's ``pidfd`` open."""
        fd = os.open(self._fifo(), os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        try:
            poller = select.poll()
            poller.register(fd, select.POLLIN)
            poller.register(pidfd, select.POLLIN)
            deadline = None if timeout is None else time.monotonic() + timeout
            while True:
                wait = _FIFO_CHECK if deadline is None else min(_FIFO_CHECK, max(0.0, deadline - time.monotonic()))
                ready = dict(poller.poll(wait * 1000))
                if ready:
                    break
                if not self._init_holds_fifo(fd):
                    return None
                if deadline is not None and time.monotonic() >= deadline:
                    break
            if fd not in ready:  # init died; it may still have written just before
                ready = dict(poller.poll(0))
            return os.read(fd, 1) if fd in ready else b""
        finally:
            os.close(fd)

    def _init_holds_fifo(self, fifo_fd: int) -> bool:
        """Whether init still has the exec fifo open (the O_PATH fd it writes through): until it
        has written and exec'd its program. True when its fds cannot be read (wait on, as before)."""
        fifo = os.fstat(fifo_fd)
        fd_dir = f"/proc/{self._state.init_process_pid}/fd"
        try:
            names = os.listdir(fd_dir)
        except OSError:
            return True
        for name in names:
            try:
                st = os.stat(os.path.join(fd_dir, name))
            except OSError:
                continue
            if (st.st_ino, st.st_dev) == (fifo.st_ino, fifo.st_dev):
                return True
        return False

    def _past_user_maps(self, sock: socket.socket, stage1_pid: int, msg: Message | None) -> Message | None:
        """``msg``, or when it is stage 1's ``usermap`` request: its uid/gid maps written (by us, who
        hold the capabilities over its parent user namespace), then the next message.

        Raises:
            ContainerError: the kernel refused a map (naming the file and the lines).
        """
        if msg is None or msg.kind != Kind.USERMAP:
            return msg
        from . import userns  # only containers with a user namespace load it

        try:
            userns.write_id_maps(stage1_pid, self._config)
        except OSError as err:
            raise ContainerError(str(err)) from None
        sync.send(sock, Kind.USERMAP_DONE)
        return sync.recv(sock)

    @staticmethod
    def _past_console(sock: socket.socket, process: Process, msg: Message | None, what: str = "container init",
                      kill_pid: int = -1) -> Message | None:
        """``msg``, or when it is the ``console`` message of a ``process.terminal`` process: its pty
        master handed to ``process.console_socket`` (and our copy closed), then the next message.

        Raises:
            ContainerError: the master could not be sent (the receiver left); ``kill_pid``, the
                process that holds the slave (an exec'd one: init is killed by the caller's
                clean-up), is killed first.
            SystemError: a terminal process sent something else first.
        """
        if msg is None or msg.kind != Kind.CONSOLE:
            if process.terminal and msg is not None and msg.kind != Kind.ERROR:
                raise SystemError(f"{what} sent {msg.kind!r} before its console")
            return msg
        master = msg.fd
        try:
            if not process.terminal or master < 0:
                raise SystemError(f"{what} sent an unexpected console message")
            console.send_master(process.console_socket, master)
        except BaseException as err:
            if kill_pid > 0:
                with contextlib.suppress(OSError):
                    os.kill(kill_pid, _signal.SIGKILL)
            if isinstance(err, OSError):
                raise ContainerError(f"console socket: cannot send the pty master: {err.strerror or err}") from None
            raise
        finally:
            if master >= 0:
                os.close(master)
        return sync.recv(sock)

    @classmethod
    def _expect(cls, sock: socket.socket, kind: str, what: str = "container init") -> Message:
        return cls._expected(sync.recv(sock), kind, what)

    @staticmethod
    def _expected(msg: Message | None, kind: str, what: str = "container init") -> Message:
        """``msg`` when it is of ``kind``. Raises InitFailed for an ``error`` message (its text,
        errno and stage), SystemError when ``what`` closed the socket first or sent another kind."""
        if msg is None:
            raise SystemError(f"{what} exited before sending {kind!r}")
        if msg.kind == Kind.ERROR:
            raise InitFailed(msg.stage, msg.errno, msg.message, who=what)
        if msg.kind != kind:
            raise SystemError(f"unexpected sync message {msg.kind!r}, wanted {kind!r}")
        return msg

    def _abort(self, init_pid: int, stage1_pid: int, cgroup_made: bool) -> None:
        """Undo a failed start: kill what we started, remove our cgroup (never another's) and the state dir."""
        with contextlib.suppress(OSError):
            os.unlink(os.path.join(self._dir, store.STATE_FILE))
        for pid in (init_pid, stage1_pid):
            if pid > 0:
                with contextlib.suppress(OSError):
                    os.kill(pid, _signal.SIGKILL)
        if stage1_pid > 0:
            with contextlib.suppress(OSError):
                os.waitpid(stage1_pid, 0)
        teardown(self._cgroup if cgroup_made else None, self._dir)

    def _remove(self) -> None:
        teardown(self._cgroup, self._dir)

    def exec(self) -> None:
        """libcontainer ``Exec()``: release a created container's init through the exec fifo.

        Raises:
            InvalidStateTransition: the container is not ``created``.
            ContainerNotRunning: init died before it could be released.
        """
        try:
            self._release()
        except ContainerNotRunning as err:
            raise ContainerNotRunning(f"{err}{self._death_note()}") from None
        except InvalidStateTransition as err:
            if not getattr(err, "died_in_setup", False):
                raise
            # Said outside the lock: the monitor records the exit under it.
            raise InvalidStateTransition(err.from_status, err.to_status, "container init died during set-up, "
                                         f"before it was released{self._death_note()}") from None
        self._run_hooks("poststart", "running", self._state.init_process_pid, warn=True)

    def _death_note(self) -> str:
        """How init died, for an error message: `` (exit code N)`` or `` (killed by signal N (SIGx))``
        with a hint at the seccomp profile where there is one; '' when it cannot be known within 0.5 s.

        The monitor records the exit once our lock is released; a caller that is init's parent
        (``dct run`` in the foreground) reads it from the unreaped child instead.
        """
        pid = self._state.init_process_pid if self._state is not None else -1
        deadline = time.monotonic() + 0.5
        while (died := self.exit_status()) is None:
            try:  # WNOWAIT: the status stays for the caller's own reaping
                info = os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) if pid > 0 else None
            except ChildProcessError:
                info = None
            if info is not None:
                killed = info.si_code in (os.CLD_KILLED, os.CLD_DUMPED)
                died = {"exit_code": 128 + info.si_status if killed else info.si_status,
                        "signal": info.si_status if killed else None}
                break
            if time.monotonic() >= deadline:
                return ""
            time.sleep(0.005)
        sig = died.get("signal")
        if not sig:
            return f" (exit code {died.get('exit_code')})"
        try:
            name = _signal.Signals(sig).name
        except ValueError:
            name = "?"
        hint = ""
        if sig == _signal.SIGSYS:
            hint = ": killed by seccomp?"
        elif self._config.seccomp is not None:  # a denied syscall Python does not check can crash it
            hint = ": did the seccomp profile refuse a syscall init needs?"
        return f" (killed by signal {sig} ({name}){hint})"

    def _release(self) -> None:
        with store.locked(self._dir):
            status = self.status()
            if status == Status.STOPPED and self._state is not None and os.path.exists(self._fifo()):
                # Never released, yet dead: its last set-up steps (after "run") failed or killed it.
                err = InvalidStateTransition(status, Status.RUNNING, "container init died during set-up")
                err.died_in_setup = True
                raise err
            require("start", status, self._id)
            try:
                data = self._read_release(self._state.init_process_pid, None)
            except ProcessLookupError:  # init died (and was reaped) since status() looked
                raise ContainerNotRunning(f"container {self._id}: init died during set-up, before it was "
                                          "released") from None
            if data == b"":  # (None: released by a manager killed before it could remove the fifo)
                raise ContainerNotRunning(f"container {self._id}: init died during set-up, before it was "
                                          "released (exec fifo is empty)")
            os.unlink(self._fifo())

    def _start_exec(self, process: Process, detach: bool) -> ExecProcess:
        _check_terminal(process)
        require("exec", self.status(), self._id)
        joins = init.exec_joins(self._config, self._state.init_process_pid)
        filter_program = b"", 0
        if self._config.seccomp is not None:  # the container's filter, as its create compiled it
            from . import seccomp

            filter_program = (seccomp.saved(self._dir, self._config.seccomp),
                              seccomp.load_flags(self._config.seccomp))
        parent_sock, child_sock = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        stdio, _ = self._open_stdio(process, detached=False)
        ctx = init.InitContext(config=self._config, process=self._guarded(_in_child(process)), sync=child_sock,
                               cgroup=self._cgroup, stdio=stdio, join=joins, detach=detach)
        ctx.seccomp, ctx.seccomp_flags = filter_program
        try:
            stage1_pid = bootstrap.fork_stage1(ctx, parent_sock)
        except BaseException:  # no stage 1: no sealed image or memfd, or no fork
            parent_sock.close()
            child_sock.close()
            raise
        child_sock.close()
        try:
            exec_pid = self._expect(parent_sock, Kind.PID, "exec").pid
            msg = self._past_console(parent_sock, process, sync.recv(parent_sock), "exec", exec_pid)
            if msg is not None:
                raise _failure(msg, "exec")
        except ContainerError:
            # Stage 1 reaps its failed child and exits by itself; killing it first would leave
            # that child a zombie inside the container's PID namespace.
            with contextlib.suppress(OSError):
                os.waitpid(stage1_pid, 0)
            raise
        except BaseException:
            with contextlib.suppress(OSError):
                os.kill(stage1_pid, _signal.SIGKILL)
            with contextlib.suppress(OSError):
                os.waitpid(stage1_pid, 0)
            raise
        finally:
            parent_sock.close()
        if detach:
            os.waitpid(stage1_pid, 0)
            return ExecProcess(pid=exec_pid, _waiter=-1)
        return ExecProcess(pid=exec_pid, _waiter=stage1_pid)

    # -- signals, pause, destroy ---------------------------------------------------------
    def signal(self, sig: int, all: bool = False) -> None:  # noqa: A002 - libcontainer's name
        """Send ``sig`` to init, or with ``all`` to every process of the cgroup (runc v1.1 ``Signal``).

        Init is signalled only while it is alive with its saved start time, so a reused PID is
        never signalled. SIGKILL to a paused container also thaws it, so the kill takes effect.

        Raises:
            ContainerNotRunning: init is gone (and, with ``all``, so is the cgroup).
        """
        status = self.status()
        if all:
            if not self._cgroup.exists() or (status == Status.STOPPED and not self.processes()):
                raise ContainerNotRunning(f"container {self._id} is not running")
            self._cgroup.kill_all(sig)
            return
        # Signal through a pidfd taken while init is known alive: a reused PID can't be hit.
        try:
            pidfd = os.pidfd_open(self._state.init_process_pid) if self._state else -1
        except ProcessLookupError:
            pidfd = -1
        if pidfd < 0 or not self._init_alive():
            if pidfd >= 0:
                os.close(pidfd)
            raise ContainerNotRunning(f"container {self._id} is not running (init is gone)")
        try:
            _signal.pidfd_send_signal(pidfd, sig)
        finally:
            os.close(pidfd)
        if sig == _signal.SIGKILL and self._cgroup.can_freeze():
            # Init's death kills its PID namespace: tasks of a frozen sub-cgroup must be able to die too.
            self._cgroup.thaw_descendants()
            if status in (Status.PAUSED, Status.PAUSING):
                self._cgroup.thaw()

    def pause(self) -> None:
        """Freeze every process (libcontainer ``Pause()``): needs ``running`` or ``created``."""
        with store.locked(self._dir):
            require("pause", self.status(), self._id)
            self._cgroup.freeze()

    def resume(self) -> None:
        """Thaw a paused container (libcontainer ``Resume()``)."""
        with store.locked(self._dir):
            require("resume", self.status(), self._id)
            self._cgroup.thaw()

    def stop(self, sig: int | None = None, grace: float = 0.0, timeout: float = 10.0, exit_wait: float = 0.0,
             poll: float = 0.01) -> None:
        """Kill and wait: return once the container is ``stopped`` (runc's ``killContainer``; with
        ``sig``, ``docker stop``). A stopped container is left alone.

        Without ``sig``: SIGKILL to every process of the cgroup (SIGKILL thaws a paused one). With
        ``sig``: a paused container is resumed first (a frozen process cannot act on a signal);
        then a created one gets SIGKILL at once (it has not run its program), a running one ``sig``
        to init and, after ``grace`` seconds without it stopping, SIGKILL to every process. Then
        up to ``timeout`` seconds for ``stopped``, and up to ``exit_wait`` seconds for the monitor
        to record init's exit (exit.json), looking every ``poll`` seconds.

        Raises:
            ContainerError: still not stopped ``timeout`` seconds after the SIGKILL.
            ContainerNotPaused, SystemError: resuming or signalling failed (not "not running": then
                it stopped by itself meanwhile).
        """
        status = self.status()
        if status == Status.STOPPED:
            return
        if sig is not None and status in (Status.PAUSED, Status.PAUSING):
            self.resume()
            status = self.status()
        if sig is not None and status not in (Status.CREATED, Status.STOPPED):
            with contextlib.suppress(ContainerError):  # it may stop (or be paused) meanwhile: the wait says
                self.signal(sig)
            deadline = time.monotonic() + grace
            while self.status() != Status.STOPPED and time.monotonic() < deadline:
                time.sleep(poll)
            status = self.status()
        if status != Status.STOPPED:
            with contextlib.suppress(ContainerNotRunning):  # gone meanwhile
                self.signal(_signal.SIGKILL, all=True)
        deadline = time.monotonic() + timeout
        while self.status() != Status.STOPPED:
            if time.monotonic() > deadline:
                raise ContainerError(f"container {self._id} did not stop after SIGKILL")
            time.sleep(poll)
        deadline = time.monotonic() + exit_wait
        while self.exit_status() is None and time.monotonic() < deadline:
            time.sleep(poll)

    def destroy(self, force: bool = False, timeout: float = 10.0, exit_wait: float = 0.0) -> None:
        """libcontainer ``Destroy()``: remove the cgroup and state directory of a stopped container.

        A created container's init is killed first. Running or paused containers are refused
        (signal them first, as runc does), unless ``force``: then every process is killed and
        waited for first (:meth:`stop` with its ``timeout`` and ``exit_wait``; youki's
        ``container_delete(force)``, runc's ``delete --force``).

        Raises:
            ContainerRunning: init is alive and the container is running.
            ContainerPaused: the container is paused.
            ContainerError: with ``force``, it did not stop within ``timeout`` seconds.
        """
        if not os.path.isdir(self._dir):
            return
        if force:
            self.stop(timeout=timeout, exit_wait=exit_wait)
        with store.locked(self._dir):
            status = self.status()
            require("destroy", status, self._id)
            # Leftovers survive init when the PID namespace is shared, and a created init must go too.
            self._cgroup.close()
            if status == Status.STOPPED and not self._cgroup_still_ours():
                teardown(None, self._dir)  # the cgroup is another container's now: leave it be
            else:
                self._remove()
            self._state = None
        # After the container is gone (runtime-spec); a failure is a warning, as runc's delete.
        self._run_hooks("poststop", "stopped", None, warn=True)

    def _cgroup_still_ours(self) -> bool:
        """False when, our init being dead, the cgroup holds processes that cannot be ours.

        With a private PID namespace every process of the container dies with its init (the last
        ones within milliseconds). Processes that stay are another container's that took the
        same cgroup path after ours stopped (two configs giving one ``cgroupsPath``; the same id
        in two roots no longer can: each root has its own parent): destroying ours must neither
        kill them nor remove their cgroup.
        """
        if not self._config.private_namespace("NEWPID") or not self._cgroup.exists():
            return True
        deadline = time.monotonic() + _FOREIGN_WAIT
        while self._cgroup.get_all_pids():
            if time.monotonic() > deadline:
                return False
            time.sleep(0.01)
        return True


def _check_terminal(process: Process) -> None:
    """A terminal needs somewhere to send its master (runc refuses ``terminal`` without a socket too)."""
    if process.terminal and process.console_socket is None:
        raise ConfigInvalid("process.terminal: true needs a console socket to receive the pty master "
                            "(Process.console_socket; dct: --console-socket, or run/exec -t in the foreground)")


def _in_child(process: Process) -> Process:
    """``process`` as handed to stage 1 or the monitor: without the console socket, which stays
    with the caller (the master comes back over the sync socket)."""
    return process if process.console_socket is None else dataclasses.replace(process, console_socket=None)


_FOREIGN_WAIT = 0.5  # seconds the processes of a stopped container's PID namespace get to be gone
_FIFO_CHECK = 0.2  # seconds between looks at whether a silent init still holds its exec fifo


def teardown(cg: cgroups.Manager | None, state_dir: str) -> None:
    """Kill whatever is left in ``cg``, remove it and ``state_dir`` (libcontainer's ``destroy(c)``).

    ``cg`` None leaves cgroups alone (none of them is ours). Safe to repeat after a crash half-way:
    missing cgroup directories are skipped, present ones (on any hierarchy) removed.
    """
    if cg is not None:
        _kill_cgroup(cg)
        cg.destroy()
    if os.path.exists(os.path.join(state_dir, "network.json")):  # network.NETWORK_FILE, without its import
        from . import network

        network.release(state_dir)  # after the kill: the container end of the veth is gone with its namespace
    shutil.rmtree(state_dir, ignore_errors=True)


def _kill_cgroup(cg: cgroups.Manager) -> None:
    """SIGKILL everything in ``cg`` and wait (bounded) until it is empty."""
    deadline = time.monotonic() + _KILL_WAIT
    while cg.get_all_pids():
        cg.kill_all(_signal.SIGKILL)
        if time.monotonic() > deadline:
            raise SystemError(f"processes of {cg.paths()} did not die after SIGKILL")
        time.sleep(0.002)


def _readlink_fd(pid: int, fd: int) -> str:
    try:
        return os.readlink(f"/proc/{pid}/fd/{fd}")
    except OSError:
        return ""


def _failure(msg: Message, who: str) -> ContainerError:
    """What an unwanted sync message from ``who`` means: InitFailed for an ``error`` (its text,
    errno and stage), else a ContainerError naming the message."""
    if msg.kind == Kind.ERROR:
        return InitFailed(msg.stage, msg.errno, msg.message, who=who)
    return ContainerError(f"{who} failed: {msg.describe()}")
