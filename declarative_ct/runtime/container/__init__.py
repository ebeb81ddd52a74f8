"""``Container``: libcontainer's container lifecycle (``BaseContainer`` + pause/resume), the facade.

Each operation lives in its own module, as youki's ``container_*`` files, imported by the method
that needs it (a ``dct`` verb loads only its own):

- :mod:`.create`: build an init (``start``/``run``): namespaces, cgroup, the sync protocol with
  stage 1 and init, state.json; :mod:`.parent`: the parent's side of the sync socket, shared with exec
- :mod:`.start`: release a created init through the exec fifo (``exec``)
- :mod:`.exec`: a process in a running container (``start`` of a non-init process)
- :mod:`.kill`: ``signal`` and ``stop``; :mod:`.delete`: ``destroy`` and :func:`teardown`
- :mod:`.update`: ``set`` and ``stats``

Status, state and hooks stay here: every operation reads them.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from ...configs import OCI_VERSION, Config
from ...errors import ConfigInvalid, ContainerError, ContainerNotRunning, log_warning
from .. import cgroups, procfs, store
from ..process import Process
from ..state import State, Status, derive_status, require
from .delete import teardown

if TYPE_CHECKING:
    from ...configs.logs import LogConfig
    from ..forkserver import ForkServer
    from ..stats import Stats
    from .exec import ExecProcess

__all__ = ["Container", "ExecProcess", "teardown"]


def __getattr__(name: str) -> object:
    """``ExecProcess`` from :mod:`.exec`, loaded on first use (PEP 562): create does not need it."""
    if name == "ExecProcess":
        from .exec import ExecProcess

        return ExecProcess
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class Container:
    """One container in a state root, with libcontainer's methods.

    Status is derived on every :meth:`status` call (runc's ``refreshState``): a frozen cgroup is
    ``paused`` (``pausing`` while FREEZING), a dead or PID-reused init is ``stopped``, an exec fifo
    means ``created``, otherwise ``running``. Mutating methods hold the container's flock.

    ``data_root``: where its logs go (``Runtime.data_root``; None: the default for ``root``).
    """

    def __init__(self, root: str, container_id: str, config: Config, state: State | None = None,
                 data_root: str | None = None) -> None:
        self._root = root
        self._data_root = data_root
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
        """``<root>/<id>``: state.json, exec.fifo, exit.json."""
        return self._dir

    @property
    def data_root(self) -> str:
        """Where data of this container that outlives the state root goes (its logs: :mod:`..logfiles`)."""
        if self._data_root is None:
            from ..factory import default_data_root

            self._data_root = default_data_root(os.path.abspath(self._root))
        return self._data_root

    @property
    def log_path(self) -> str | None:
        """The log file of the current run (state.json's ``log_path``, podman's ``LogPath``): CRI
        entries of init's stdout/stderr copied by the monitor; None when nothing is copied (not
        started, no monitor, a terminal, or stdio given by the caller). Its run's older files and
        the previous run's: :func:`..logfiles.run_files` and :func:`..logfiles.runs` of its directory."""
        return self._state.log_path if self._state is not None else None

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
        from .. import hooks

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
        from .update import set_resources

        set_resources(self, config)

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
        from .update import stats

        return stats(self)

    # -- start / run / exec --------------------------------------------------------------
    def start(self, process: Process, monitor: bool = True, detach: bool = False,
              log: LogConfig | None = None, fork_server: ForkServer | None = None,
              timeout: float | None = None) -> ExecProcess | None:
        """libcontainer ``Start()``.

        For ``process.init`` it builds the container and returns with init blocked on the exec
        fifo: status ``created``, the program not yet run. With ``monitor`` (the default) a
        detached monitor reaps init and records ``exit.json``; without it init is re-parented to
        the caller's nearest subreaper, as with ``runc create``. ``None`` stdin of an init is
        /dev/null; ``None`` stdout/stderr are, with ``monitor`` (and no terminal), pipes the
        monitor copies into a new run's log file (:attr:`log_path`, CRI entries, rotated as
        ``log`` says: a ``configs.logs.LogConfig``, None for its defaults), else /dev/null.

        For a non-init process (``runc exec``) it joins the container's namespaces and cgroup and
        returns an :class:`ExecProcess`; ``None`` stdio means the caller's. With ``detach`` nothing
        of ours waits for it (it is re-parented to the container's init)
        and ``ExecProcess.wait()`` returns at once with 0. ``fork_server`` (a
        :class:`~declarative_ct.runtime.forkserver.ForkServer`) forks its stage 1 instead of the
        caller: the same process, at a fraction of the CPU (exec probes); for exec only.
        ``timeout`` (exec only; seconds, None: none) bounds its set-up until the program runs: a
        container can stop a process born in its PID namespace before that (a prober's exec).

        Raises:
            ContainerError: already started; ContainerNotRunning/ContainerPaused for exec; any
                failure inside the new process (missing program, mount error…) with its message.
            ConfigInvalid: ``process.extra_files`` of an init with ``monitor``; a ``log`` out of range;
                a ``fork_server`` for an init.
            SystemError: the log file cannot be made under :attr:`data_root`.
                A failed start leaves no process, cgroup or state directory behind (nor a log run).
            TimeoutError: an exec'd process not set up within ``timeout`` (it was killed).
        """
        if not process.init:
            from .exec import start_exec

            return start_exec(self, process, detach, fork_server, timeout)
        if fork_server is not None:
            raise ConfigInvalid("fork_server: serves exec'd processes (process.init false) only")
        from .create import start_locked

        start_locked(self, process, monitor, release=False, log=log)
        return None

    def run(self, process: Process, monitor: bool = True, log: LogConfig | None = None) -> None:
        """libcontainer ``Run()``: :meth:`start` then :meth:`exec`, in one go for an init.

        The exec fifo is opened as soon as state.json is saved, so init runs its program once its
        last set-up step is done, without waiting for a separate :meth:`exec` (one round trip
        less); what can fail, and how, is as with the two calls.
        """
        if not process.init:
            self.start(process, monitor)
            self.exec()
            return
        from .create import start_locked

        start_locked(self, process, monitor, release=True, log=log)
        self._run_hooks("poststart", "running", self._state.init_process_pid, warn=True)

    def exec(self) -> None:
        """libcontainer ``Exec()``: release a created container's init through the exec fifo.

        Raises:
            InvalidStateTransition: the container is not ``created``.
            ContainerNotRunning: init died before it could be released.
        """
        from .start import exec_

        exec_(self)

    # -- signals, pause, destroy ---------------------------------------------------------
    def signal(self, sig: int, all: bool = False) -> None:  # noqa: A002 - libcontainer's name
        """Send ``sig`` to init, or with ``all`` to every process of the cgroup (runc v1.1 ``Signal``).

        Init is signalled only while it is alive with its saved start time, so a reused PID is
        never signalled. SIGKILL to a paused container also thaws it, so the kill takes effect.

        Raises:
            ContainerNotRunning: init is gone (and, with ``all``, so is the cgroup).
        """
        from .kill import signal

        signal(self, sig, all)

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
        from .kill import stop

        stop(self, sig, grace, timeout, exit_wait, poll)

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
        from .delete import destroy

        destroy(self, force, timeout, exit_wait)
