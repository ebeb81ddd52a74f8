"""What the TUI reads and does, behind one interface: :class:`RealBackend` over a state root
(``declarative_ct.runtime`` + ``declarative_ct.reconcile``), :class:`FakeBackend` for tests.

No Textual here. Threads: :meth:`Backend.sample`, :meth:`~Backend.desired`,
:meth:`~Backend.processes` and :meth:`~Backend.journal` are called from the collector thread
only, one call at a time (the real backend keeps ``Container`` objects, whose cgroup file cache
is not thread-safe, between those calls); actions (:meth:`~Backend.pause`…, :meth:`~Backend.apply`)
run in worker threads and use containers of their own. Every method may raise
:class:`~declarative_ct.errors.ContainerError` or ``OSError``; the app turns them into
notifications.
"""

from __future__ import annotations

import contextlib
import os
import signal as _signal
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

from .model import DesiredEntry, DesiredView, PlanView, ProcInfo, Reading, classify_drift, is_live

COLD_EVERY = 5
"""A container off screen is read every this many ticks (5 s at the default refresh), each in its own
turn so that every tick reads about the same number; on screen, every tick."""

JOURNAL_TAIL = 256 << 10
"""Bytes of the journal read at start: the recent past, not all of it."""

LOG_TAIL = 128 << 10
"""Bytes of each log file (stdout, stderr) read when the logs are opened: the recent past."""

LOG_READ_MAX = 128 << 10
"""Bytes of each log file read at most per read (the logs tab reads twice a second): when more was
written meanwhile, the older part is skipped (and said), so that the view stays current and the
memory a read takes stays bounded whatever a container writes."""

SIGNALS: tuple[tuple[str, int], ...] = tuple((s.name, int(s)) for s in (
    _signal.SIGTERM, _signal.SIGKILL, _signal.SIGHUP, _signal.SIGINT, _signal.SIGQUIT, _signal.SIGUSR1,
    _signal.SIGUSR2, _signal.SIGSTOP, _signal.SIGCONT, _signal.SIGWINCH))
"""The signal picker's choices, most used first."""


SHELL = ("sh",)
"""What "shell into this container" runs: the one shell every image has."""


class PlanChanged(Exception):
    """The containers or specs moved between the plan shown and its confirmation: plan again."""


@dataclass(frozen=True)
class Outcome:
    """What became of one applied action (``result``: ok, failed, skipped)."""

    container: str
    kind: str
    cause: str
    result: str
    error: str = ""


@dataclass
class LogCursor:
    """Where a log reader is in each of a container's log files: ``positions`` ``{stream: (inode,
    offset)}``; ``skipped`` ``{stream: bytes}`` not read by the last read (see :data:`LOG_READ_MAX`)."""

    positions: dict[str, tuple[int, int]] = field(default_factory=dict)
    skipped: dict[str, int] = field(default_factory=dict)


class Backend:
    """The interface (and its documentation); see :class:`RealBackend` for the real behaviour."""

    root: str = ""
    specs_given: bool = False
    readonly: bool = False

    def sample(self, hot: set[str] | None = None, tick: int = 0) -> list[Reading]:
        """Every container's :class:`Reading`, in one pass (collector thread).

        ``hot``: the containers on screen, read every tick; the others may be read only every
        :data:`COLD_EVERY` ticks (their previous Reading object is returned meanwhile, the very
        same object). None: read all. ``tick``: the collector's tick count (spreads the cold reads).
        """
        raise NotImplementedError

    def desired(self) -> DesiredView | None:
        """Drift per container name against the specs (collector thread, every few ticks)."""
        raise NotImplementedError

    def processes(self, container_id: str) -> list[ProcInfo] | None:
        """The processes of one container (collector thread); None if it has none to show."""
        raise NotImplementedError

    def journal(self) -> list[dict]:
        """Journal lines appended since the previous call (the recent past on the first call)."""
        raise NotImplementedError

    def read_logs(self, container_id: str, cursor: LogCursor) -> list[tuple[str, bytes]]:
        """New output of a container since ``cursor`` (updated in place): ``[(stream, bytes)]``,
        bounded per stream; what was skipped is in ``cursor.skipped``."""
        raise NotImplementedError

    def notices(self) -> tuple[str, ...]:
        """Conditions worth a line on screen that are not errors (collector thread, every tick)."""
        return ()

    def spec_text(self, container_id: str) -> tuple[str, str] | None:
        """``(title, YAML text)`` of the spec a container comes from, or None."""
        raise NotImplementedError

    def pause(self, container_id: str) -> None:
        raise NotImplementedError

    def resume(self, container_id: str) -> None:
        raise NotImplementedError

    def signal(self, container_id: str, sig: int, pid: int | None = None, create_time: float | None = None) -> None:
        """``sig`` to the container's init, or to one of its processes (``pid`` with its ``create_time``)."""
        raise NotImplementedError

    def destroy(self, container_id: str) -> None:
        raise NotImplementedError

    def shell(self, container_id: str, argv: Sequence[str] = SHELL) -> int:
        """Run ``argv`` (a shell) in the container on a new pty proxied to this process's terminal
        (stdin/stdout), as ``dct exec -t`` does; its exit code. Blocks until it ends: call it on the
        main thread with the app suspended (it sets the terminal raw and handles SIGWINCH)."""
        raise NotImplementedError

    def plan(self, prune: bool = False) -> PlanView:
        raise NotImplementedError

    def apply(self, plan: PlanView, on_outcome: Callable[[Outcome], None] | None = None) -> list[Outcome]:
        raise NotImplementedError

    def close(self) -> None:
        """Release what the backend keeps open."""


# -- the real one ------------------------------------------------------------------------------

class _Kept:
    """A container kept between ticks (its cgroup files stay open), with what does not change per run."""

    __slots__ = ("container", "identity", "started", "cpu_limit", "owned", "oom", "exit", "last", "turn")

    def __init__(self, container, identity: tuple, turn: int = 0) -> None:
        from declarative_ct.reconcile.convert import LABEL_MANAGER, MANAGER
        from declarative_ct.reconcile.restart import parse_time
        from declarative_ct.runtime import cgroups

        self.container = container
        self.identity = identity
        state = container.state()
        self.started = parse_time(state.created)
        self.cpu_limit = cpu_limit(container.config.cgroups.resources)
        self.owned = container.config.label(LABEL_MANAGER) == MANAGER
        self.oom = cgroups.manager_from_paths(state.cgroup_paths) if state.cgroup_paths else None
        self.exit: dict | None = None
        self.last: Reading | None = None
        self.turn = turn


def cpu_limit(resources) -> float | None:
    """Cores a container may use: CFS quota / period, else the size of its cpuset, else None (no limit)."""
    from declarative_ct.configs import parse_cpu_list

    quota, period = resources.cpu_quota, resources.cpu_period or 100000
    if quota is not None and quota > 0 and period > 0:
        return quota / period
    if resources.cpuset_cpus:
        with contextlib.suppress(ValueError):
            return float(len(parse_cpu_list(resources.cpuset_cpus))) or None
    return None


def reading_from_stats(cid: str, status: str, pid: int | None, stats, kept_started: float | None = None,
                       cpu_limit_cores: float | None = None, owned: bool = False,
                       oom_kills: int | None = None, at: float | None = None) -> Reading:
    """A :class:`Reading` from ``Container.stats()`` (``declarative_ct.runtime.stats.Stats``) read at
    ``at`` (monotonic seconds)."""
    from .model import UNLIMITED_FROM

    cg = stats.cgroup_stats
    cpu = cg.cpu_stats
    mem = cg.memory_stats
    pids = cg.pids_stats
    io_read = io_write = None
    if cg.blkio_stats is not None:
        io_read = io_write = 0
        for e in cg.blkio_stats.io_service_bytes_recursive:
            if e.op == "Read":
                io_read += e.value
            elif e.op == "Write":
                io_write += e.value
    net_rx = net_tx = None
    if stats.interfaces:
        net_rx = sum(i.RxBytes for i in stats.interfaces)
        net_tx = sum(i.TxBytes for i in stats.interfaces)
    mem_limit = mem.usage.limit if mem is not None else None
    return Reading(
        id=cid, status=status, pid=pid, started=kept_started, owned=owned,
        cpu_ns=cpu.cpu_usage.total_usage if cpu is not None else None,
        throttled_periods=cpu.throttling_data.throttled_periods if cpu is not None else None,
        throttled_ns=cpu.throttling_data.throttled_time if cpu is not None else None,
        periods=cpu.throttling_data.periods if cpu is not None else None,
        cpu_limit=cpu_limit_cores,
        mem_usage=mem.usage.usage if mem is not None else None,
        mem_limit=mem_limit if mem_limit and mem_limit < UNLIMITED_FROM else None,
        mem_cache=mem.cache if mem is not None else None,
        pids=pids.current if pids is not None else None,
        pids_limit=(pids.limit or None) if pids is not None else None,
        io_read=io_read, io_write=io_write, net_rx=net_rx, net_tx=net_tx, oom_kills=oom_kills, at=at)


class RealBackend(Backend):
    """The TUI over a state root.

    Args:
        root: the state root (``dct --root``; default ``$DCT_ROOT`` or ``/run/dct``).
        paths: spec files/directories (desired state); empty: no drift, no plan.
        readonly: refuse every action (also enforced by the app).

    Containers are loaded once and kept (``Container.stats()`` then re-reads open cgroup files:
    ~0.1 ms each); one whose ``state.json`` changed (a ``set()``, a new run) is loaded again.
    """

    def __init__(self, root: str | None = None, paths: Sequence[str] = (), readonly: bool = False) -> None:
        from declarative_ct.runtime import Runtime

        self.runtime = Runtime(root)
        self.root = self.runtime.root
        self.paths = [os.path.abspath(p) for p in paths]
        self.specs_given = bool(self.paths)
        self.readonly = readonly
        self._kept: dict[str, _Kept] = {}
        self._procs: dict[int, object] = {}
        self._users: dict[int, str] = {}
        self._journal_pos: tuple[int, int] | None = None
        self._docs: list | None = None
        self._docs_key: object = None
        self._docs_errors: tuple[str, ...] = ()
        self._observe_cache: dict = {}
        self._normalized_cache: dict[int, tuple[object, dict]] = {}
        self._entries: dict[str, DesiredEntry] = {}

    # -- collector side --------------------------------------------------------------------
    def sample(self, hot: set[str] | None = None, tick: int = 0) -> list[Reading]:
        from declarative_ct.errors import StateCorrupt
        from declarative_ct.runtime import store

        out = []
        names = store.container_entries(self.root)
        alive = set()
        for name in names:
            kept = self._kept.get(name)
            if (hot is not None and name not in hot and kept is not None and kept.last is not None
                    and (tick + kept.turn) % COLD_EVERY):
                out.append(kept.last)  # off screen, not its turn: the same object as last time
                alive.add(name)
                continue
            path = os.path.join(self.root, name, store.STATE_FILE)
            try:
                st = os.stat(path)
            except OSError:
                continue  # being created, or just destroyed
            identity = (st.st_ino, st.st_size, st.st_mtime_ns)
            kept = self._kept.get(name)
            if kept is None or kept.identity != identity:
                if kept is not None:
                    kept.container.close()
                try:
                    kept = _Kept(self.runtime.load(name), identity, turn=len(self._kept) % COLD_EVERY)
                except Exception as err:  # noqa: BLE001 - gone (not a row this tick) or corrupt
                    self._kept.pop(name, None)
                    if isinstance(err, StateCorrupt):  # its processes may run: never out of sight
                        out.append(Reading(name, "unknown"))
                    continue
                self._kept[name] = kept
            reading = self._read(kept, oom=hot is None or (tick + kept.turn) % COLD_EVERY == 0
                                 or kept.last is None)
            kept.last = reading
            if reading is not None:
                out.append(reading)
                alive.add(name)
        for gone in set(self._kept) - alive:
            self._kept.pop(gone).container.close()
        return out

    def _read(self, kept: _Kept, oom: bool = True) -> Reading | None:
        """One container's reading; None when it vanished meanwhile (its state directory is gone).

        ``oom``: read the OOM kill counter now (else the last count is kept: it is read on the
        container's turn, every :data:`COLD_EVERY` ticks, as it opens a file by path).
        """
        from declarative_ct.errors import ContainerError
        from declarative_ct.runtime import Status

        c = kept.container
        status = None
        try:
            status = c.status()
            if status == Status.STOPPED:
                if not os.path.isdir(c.state_dir):
                    return None  # destroyed since the directory was listed
                if kept.exit is None:
                    kept.exit = c.exit_status()
                e = kept.exit or {}
                return Reading(c.id, "stopped", None, kept.started, kept.owned, cpu_limit=kept.cpu_limit,
                               exit_code=e.get("exit_code"), exit_signal=e.get("signal"),
                               oom_killed=bool(e.get("oom_killed")))
            t0 = time.monotonic()
            stats = c.stats()
            at = (t0 + time.monotonic()) / 2  # the rates' clock: when these counters were read
            if not oom:
                oom_kills = kept.last.oom_kills if kept.last is not None else None
            else:
                oom_kills = kept.oom.oom_kill_count() if kept.oom is not None else None
            return reading_from_stats(c.id, status.value, c.state().init_process_pid, stats, kept.started,
                                      kept.cpu_limit, kept.owned, oom_kills, at)
        except (ContainerError, OSError, ValueError):
            if not os.path.isdir(c.state_dir):
                return None
            return Reading(c.id, status.value if status is not None else "stopped", None, kept.started, kept.owned,
                           cpu_limit=kept.cpu_limit)

    def _load_docs(self) -> None:
        """(Re)load the specs when a spec file appeared, went or changed (size, times, inode)."""
        from declarative_ct.errors import ContainerError
        from declarative_ct.spec.files import spec_files

        files = spec_files(self.paths)
        key: object = None
        if files is not None:
            try:
                key = [(f, *_identity(f)) for f in files]
            except OSError:
                key = None
        if key is not None and key == self._docs_key:
            return
        from declarative_ct.spec.load import load_paths

        try:
            self._docs = load_paths(self.paths)
            self._docs_errors = ()
            self._normalized_cache.clear()
        except ContainerError as err:
            errors = getattr(err, "errors", None)
            self._docs_errors = tuple(str(e) for e in errors) if errors else (str(err),)
            if self._docs is None:
                self._docs = []
        self._docs_key = key

    def desired(self) -> DesiredView | None:
        from declarative_ct.reconcile.plan import in_scope, make_plan, observe, scope_of

        docs: list = []
        if self.paths:
            self._load_docs()
            docs = self._docs or []
        observed = observe(self.runtime, cache=self._observe_cache)
        plan = make_plan(docs, observed, prune=False, scope=scope_of(self.paths)) if self.paths else None
        pending = {a.container: a for a in plan.actions} if plan else {}
        declared = {d.spec.name: d for d in docs}
        scope = scope_of(self.paths)
        entries: dict[str, DesiredEntry] = {}
        for name in sorted(set(declared) | set(observed)):
            doc, obs = declared.get(name), observed.get(name)
            record = (plan.restarts.get(name) if plan else None) or (obs.restart if obs is not None else None) or {}
            status = obs.status.value if obs is not None else None
            next_restart = record.get("next_restart") if status == "stopped" else None
            action = pending.get(name)
            drift = classify_drift(doc.spec.state if doc else None, status, obs.owned if obs else False,
                                   action is not None, bool(obs and in_scope(obs.source, scope)), next_restart)
            cause = action.cause if action else obs.error if obs is not None else ""
            if drift in ("exited", "backoff") and plan is not None:
                cause = next((n.removeprefix(f"{name}: ") for n in plan.notes if n.startswith(f"{name}: ")), "")
            if not self.paths and drift != "unknown":
                drift = "-" if obs is None or obs.owned else "unmanaged"
            entry = DesiredEntry(
                name=name, drift=drift, desired_state=doc.spec.state if doc else None, cause=cause,
                action=action.kind if action else None, steps=tuple(action.steps) if action else (),
                desired=self._normalized(doc) if doc else None, applied=obs.applied if obs else {},
                observed_resources=obs.resources if obs else {},
                live_changes=dict(action.resources) if action and action.kind in ("live", "lifecycle") else {},
                source=doc.source if doc else (obs.source if obs else ""), line=doc.line if doc else 0,
                restarts=record.get("restarts", 0) if obs is not None and obs.owned else None,
                next_restart=next_restart)
            previous = self._entries.get(name)
            entries[name] = previous if previous == entry else entry  # the same object: its row stays cached
        self._entries = entries
        return DesiredView(entries=entries, notes=tuple(plan.notes) if plan else (), errors=self._docs_errors)

    def _normalized(self, doc) -> dict:
        """``doc.spec.normalized()``, computed once per loaded document (the specs are reloaded on change)."""
        key = id(doc)
        hit = self._normalized_cache.get(key)
        if hit is None or hit[0] is not doc:
            hit = self._normalized_cache[key] = (doc, doc.spec.normalized())
        return hit[1]

    def processes(self, container_id: str) -> list[ProcInfo] | None:
        import psutil

        kept = self._kept.get(container_id)
        if kept is None:
            return None
        try:
            pids = kept.container.processes()
        except OSError:
            return None
        out = []
        live = set()
        for pid in pids:
            p = self._procs.get(pid)
            try:
                if p is None or not p.is_running():
                    p = psutil.Process(pid)
                    p.cpu_percent(None)  # primes the counter: the first figure comes next tick
                    self._procs[pid] = p
                    cpu = None
                else:
                    cpu = p.cpu_percent(None)
                with p.oneshot():
                    uids = p.uids()
                    out.append(ProcInfo(pid=pid, ppid=p.ppid(), user=self._user(uids.real), cpu_pct=cpu,
                                        rss=p.memory_info().rss, threads=p.num_threads(), state=p.status(),
                                        cmdline=" ".join(p.cmdline()) or f"[{p.name()}]",
                                        create_time=p.create_time()))
                live.add(pid)
            except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess, OSError):
                continue
        for gone in set(self._procs) - live:
            del self._procs[gone]
        return out

    def _user(self, uid: int) -> str:
        name = self._users.get(uid)
        if name is None:
            import pwd

            try:
                name = pwd.getpwuid(uid).pw_name
            except KeyError:
                name = str(uid)
            self._users[uid] = name
        return name

    def journal(self) -> list[dict]:
        import json

        from declarative_ct.reconcile.apply import JOURNAL_FILE

        path = os.path.join(self.root, JOURNAL_FILE)
        try:
            st = os.stat(path)
        except OSError:
            return []
        inode, offset = self._journal_pos or (st.st_ino, max(0, st.st_size - JOURNAL_TAIL))
        if inode != st.st_ino or st.st_size < offset:
            offset = 0  # replaced or truncated: read it anew
        if st.st_size == offset:
            self._journal_pos = (st.st_ino, offset)
            return []
        with open(path, "rb") as f:
            f.seek(offset)
            data = f.read()
        end = data.rfind(b"\n") + 1  # a line being written stays for the next call
        if self._journal_pos is None and offset > 0:
            data = data[data.find(b"\n") + 1:end]  # the tail began mid-line
        else:
            data = data[:end]
        self._journal_pos = (st.st_ino, offset + end)
        out = []
        for line in data.splitlines():
            with contextlib.suppress(ValueError):
                entry = json.loads(line)
                if isinstance(entry, dict):
                    out.append(entry)
        return out

    # -- any thread (files only) -----------------------------------------------------------
    def read_logs(self, container_id: str, cursor: LogCursor) -> list[tuple[str, bytes]]:
        """What ``stdout.log``/``stderr.log`` gained since ``cursor``: ``[(stream, bytes)]``.

        The first read gives the last :data:`LOG_TAIL` bytes of each file (from a line start);
        later ones at most :data:`LOG_READ_MAX` bytes per file, the newest: the bytes skipped
        before them are in ``cursor.skipped``. A file replaced or truncated is read anew. The two
        files carry no timestamps: the chunks come in the order their files were last written
        (mtime), so lines of one stream keep their order, and lines of both interleave as
        they were read (to within one read).
        """
        from declarative_ct.runtime import store

        out = []
        cursor.skipped = {}
        for stream, name in (("stdout", store.STDOUT_LOG), ("stderr", store.STDERR_LOG)):
            path = os.path.join(self.root, container_id, name)
            try:
                fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
            except OSError:
                continue
            try:
                st = os.fstat(fd)
                first = stream not in cursor.positions
                inode, offset = cursor.positions.get(stream, (st.st_ino, max(0, st.st_size - LOG_TAIL)))
                if inode != st.st_ino or st.st_size < offset:
                    offset = 0
                if st.st_size - offset > LOG_READ_MAX:
                    cursor.skipped[stream] = st.st_size - LOG_READ_MAX - offset
                    offset = st.st_size - LOG_READ_MAX
                data = os.pread(fd, st.st_size - offset, offset) if st.st_size > offset else b""
                cursor.positions[stream] = (st.st_ino, offset + len(data))
                if data and offset > 0 and (first or stream in cursor.skipped):
                    data = data[data.find(b"\n") + 1:]  # begun mid-line: from the next line
            finally:
                os.close(fd)
            if data:
                out.append((st.st_mtime_ns, stream, data))
        return [(stream, data) for _, stream, data in sorted(out, key=lambda c: c[0])]

    def notices(self) -> tuple[str, ...]:
        """``no state root at …`` while the state root does not exist (nothing was made there yet)."""
        if os.path.isdir(self.root):
            return ()
        return (f"no state root at {self.root} (no container was made there yet)",)

    def spec_text(self, container_id: str) -> tuple[str, str] | None:
        """The YAML document of the spec (from its file, at its line), or the applied spec as YAML."""
        docs = self._docs or []
        doc = next((d for d in docs if d.spec.name == container_id), None)
        if doc is not None:
            return f"{doc.source}:{doc.line}", yaml_document(doc.source, doc.line)
        from declarative_ct.reconcile import last_applied
        from declarative_ct.reconcile.convert import LABEL_SOURCE

        try:
            c = self.runtime.load(container_id)
        except Exception:  # noqa: BLE001
            return None
        data = last_applied.read(c.config)
        if not data:
            return None
        import yaml

        source = c.config.label(LABEL_SOURCE) or "?"
        return f"applied spec (from {source})", yaml.safe_dump(data, sort_keys=False, default_flow_style=None)

    # -- actions (worker threads) ----------------------------------------------------------
    def _load(self, container_id: str):
        return self.runtime.load(container_id)

    def pause(self, container_id: str) -> None:
        """``Container.pause()`` (freezes every process)."""
        self._load(container_id).pause()

    def resume(self, container_id: str) -> None:
        """``Container.resume()``."""
        self._load(container_id).resume()

    def signal(self, container_id: str, sig: int, pid: int | None = None, create_time: float | None = None) -> None:
        """``sig`` to init (``Container.signal``) or to process ``pid`` of the container.

        A process is signalled only if it is still in the container's cgroup and has the same
        start time as when it was shown (never a reused PID).

        Raises:
            ContainerError: the process left the container or is gone.
        """
        from declarative_ct.errors import ContainerError

        c = self._load(container_id)
        if pid is None:
            c.signal(sig)
            return
        import psutil

        if pid not in c.processes():
            raise ContainerError(f"process {pid} is no longer in container {container_id}")
        try:
            p = psutil.Process(pid)
            if create_time is not None and abs(p.create_time() - create_time) > 0.01:
                raise ContainerError(f"process {pid} is gone (its PID now belongs to another process)")
            p.send_signal(sig)
        except psutil.NoSuchProcess:
            raise ContainerError(f"process {pid} is gone") from None

    def destroy(self, container_id: str, timeout: float = 10.0) -> None:
        """Kill every process (SIGKILL), wait for the container to stop, then ``destroy()`` it,
        as ``dct delete --force`` does; the reconciler's restart record goes too.

        Raises:
            ContainerError: it did not stop within ``timeout`` seconds.
        """
        from declarative_ct.reconcile import restart

        # up to 1 s more for the monitor to record the exit first
        self._load(container_id).destroy(force=True, timeout=timeout, exit_wait=1.0)
        restart.remove_record(self.root, container_id)

    def shell(self, container_id: str, argv: Sequence[str] = SHELL) -> int:
        """An exec'd ``argv`` with a terminal (``Process(terminal=True)``), as the container's
        own user, environment and cwd (its bundle's or spec's process; root and the default
        environment for one made through the library), proxied to our terminal."""
        import socket

        from declarative_ct.cli import tty
        from declarative_ct.runtime import Process

        container = self._load(container_id)
        base = _default_process(container)
        env = [e for e in base.env if not e.startswith("TERM=")] + [f"TERM={os.environ.get('TERM', 'xterm')}"]
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
        try:
            process = Process(list(argv), env=env, cwd=base.cwd, uid=base.uid, gid=base.gid,
                              additional_groups=list(base.additional_groups), init=False, terminal=True,
                              console_socket=theirs)
            handle = container.start(process)
        except BaseException:
            ours.close()
            raise
        finally:
            theirs.close()
        done = handle.pidfd()
        try:
            return tty.attach(ours, done, handle.wait)
        finally:
            os.close(done)

    def _plan(self, prune: bool):
        from declarative_ct.reconcile.plan import make_plan, observe, scope_of
        from declarative_ct.spec.load import load_paths

        docs = load_paths(self.paths)
        return docs, make_plan(docs, observe(self.runtime), prune=prune, scope=scope_of(self.paths))

    def plan(self, prune: bool = False) -> PlanView:
        """The plan ``dct plan`` would print for the spec paths (loaded afresh); spec errors in ``errors``."""
        from declarative_ct.errors import ContainerError

        if not self.paths:
            return PlanView(errors=("no spec paths given, so there is nothing to plan: start dct tui with spec "
                                    "files or directories (dct tui PATH…) to plan and apply",), prune=prune)
        try:
            _, plan = self._plan(prune)
        except ContainerError as err:
            errors = getattr(err, "errors", None)
            return PlanView(errors=tuple(str(e) for e in errors) if errors else (str(err),), prune=prune)
        return _plan_view(plan, prune)

    def apply(self, plan: PlanView, on_outcome: Callable[[Outcome], None] | None = None) -> list[Outcome]:
        """Apply exactly the plan shown: under the state root's apply lock the specs are loaded and
        planned again, and the actions run only if nothing moved since (as ``dct apply --plan``).

        Raises:
            PlanChanged: the observed state or the actions differ from ``plan``.
        """
        from declarative_ct.reconcile import apply as applying

        outcomes: list[Outcome] = []

        def record(o) -> None:
            out = Outcome(o.action.container, o.action.kind, o.action.cause, o.result, o.error)
            outcomes.append(out)
            if on_outcome is not None:
                on_outcome(out)

        with applying.locked(self.root):
            docs, now = self._plan(plan.prune)
            if not now.matches(plan.fingerprint, plan.actions):
                raise PlanChanged("the containers or specs changed since this plan was made; plan again")
            applying.apply(now, docs, self.runtime, on_outcome=record)
        return outcomes

    def close(self) -> None:
        for kept in self._kept.values():
            kept.container.close()
        self._kept.clear()


def _default_process(container):
    """The process a shell takes its user, env and cwd from: the bundle's (``dct create``), the
    spec's (``dct apply``), else root with the default environment (runc exec's defaults)."""
    from declarative_ct.configs import DEFAULT_ENV
    from declarative_ct.reconcile import last_applied
    from declarative_ct.runtime import Process, specconv

    bundle = container.config.label("bundle")
    if bundle:
        return specconv.load_bundle(bundle)[1]
    return last_applied.exec_process(container.config, args=["sh"]) or Process(args=["sh"], env=list(DEFAULT_ENV),
                                                                               init=False)


def _identity(path: str) -> tuple[int, int, int, int]:
    st = os.stat(path)
    return (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def _plan_view(plan, prune: bool) -> PlanView:
    return PlanView(actions=tuple(a.to_dict() for a in plan.actions), notes=tuple(plan.notes),
                    errors=tuple(plan.errors), fingerprint=plan.fingerprint, prune=prune)


def yaml_document(path: str, line: int) -> str:
    """The YAML document of ``path`` that starts at 1-based ``line``: up to the next ``---``
    (comments just above it included); the whole file if it cannot be cut; an error text if unreadable."""
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            lines = f.read().splitlines()
    except OSError as err:
        return f"# {path}: {err.strerror}"
    start = max(0, line - 1)
    while start > 0 and lines[start - 1].startswith("#"):
        start -= 1
    end = start
    while end < len(lines) and not (end > start and lines[end].startswith("---")):
        end += 1
    return "\n".join(lines[start:end]) + "\n"


# -- the fake one ------------------------------------------------------------------------------

@dataclass
class FakeContainer:
    """A container of :class:`FakeBackend`: its counters grow by the ``*_step`` values each sample."""

    id: str
    status: str = "running"
    pid: int = 1000
    started: float = 0.0
    owned: bool = True
    cpu_ns: int = 0
    cpu_step: int = 0
    cpu_limit: float | None = None
    mem_usage: int = 8 << 20
    mem_limit: int | None = 64 << 20
    pids: int = 2
    pids_limit: int | None = 64
    net: bool = False
    net_rx: int = 0
    net_tx: int = 0
    net_step: int = 0
    io: int = 0
    io_step: int = 0
    oom_kills: int = 0
    throttled_periods: int = 0
    exit_code: int | None = None
    logs: list[tuple[str, str]] = field(default_factory=list)


class FakeBackend(Backend):
    """Deterministic, in memory; records every action in :attr:`calls` (``(name, args…)``).

    ``containers``: the fakes; ``desired_view``: what :meth:`desired` returns; ``plan_view``:
    what :meth:`plan` returns (``apply`` reports each of its actions ``ok``, or ``failed`` for
    containers in ``fail``); ``errors``: ``{method: exception}`` raised by that action.
    """

    def __init__(self, containers: Sequence[FakeContainer] = (), specs_given: bool = False,
                 desired_view: DesiredView | None = None, plan_view: PlanView | None = None,
                 root: str = "/run/dct-fake", readonly: bool = False) -> None:
        self.containers: dict[str, FakeContainer] = {c.id: c for c in containers}
        self.specs_given = specs_given
        self.desired_view = desired_view
        self.plan_view = plan_view or PlanView()
        self.root = root
        self.readonly = readonly
        self.calls: list[tuple] = []
        self.errors: dict[str, Exception] = {}
        self.fail: set[str] = set()
        self.journal_lines: list[dict] = []
        self.procs: dict[str, list[ProcInfo]] = {}
        self.spec_texts: dict[str, tuple[str, str]] = {}
        self.hot: set[str] | None = None
        self.notices_now: tuple[str, ...] = ()
        self.shell_exit = 0

    def notices(self) -> tuple[str, ...]:
        return self.notices_now

    def sample(self, hot: set[str] | None = None, tick: int = 0) -> list[Reading]:
        self.hot = hot
        out = []
        for c in self.containers.values():
            live = is_live(c.status)
            if c.status == "running":
                c.cpu_ns += c.cpu_step
                c.net_rx += c.net_step
                c.net_tx += c.net_step // 2
                c.io += c.io_step
            if not live:
                out.append(Reading(c.id, c.status, None, c.started, c.owned, exit_code=c.exit_code))
                continue
            out.append(Reading(c.id, c.status, c.pid, c.started, c.owned, cpu_ns=c.cpu_ns,
                               throttled_periods=c.throttled_periods, throttled_ns=c.throttled_periods * 1000,
                               periods=c.throttled_periods * 10, cpu_limit=c.cpu_limit, mem_usage=c.mem_usage,
                               mem_limit=c.mem_limit, mem_cache=c.mem_usage // 4, pids=c.pids,
                               pids_limit=c.pids_limit, io_read=c.io, io_write=c.io // 2,
                               net_rx=c.net_rx if c.net else None, net_tx=c.net_tx if c.net else None,
                               oom_kills=c.oom_kills))
        return out

    def desired(self) -> DesiredView | None:
        return self.desired_view

    def processes(self, container_id: str) -> list[ProcInfo] | None:
        if container_id not in self.containers:
            return None
        return list(self.procs.get(container_id, ()))

    def journal(self) -> list[dict]:
        out, self.journal_lines = self.journal_lines, []
        return out

    def read_logs(self, container_id: str, cursor: LogCursor) -> list[tuple[str, bytes]]:
        c = self.containers.get(container_id)
        if c is None:
            return []
        done = cursor.positions.get("fake", (0, 0))[1]
        new = c.logs[done:]
        cursor.positions["fake"] = (0, len(c.logs))
        return [(stream, (text + "\n").encode()) for stream, text in new]

    def spec_text(self, container_id: str) -> tuple[str, str] | None:
        return self.spec_texts.get(container_id)

    def _act(self, name: str, *args) -> None:
        from declarative_ct.errors import ContainerError

        self.calls.append((name, *args))
        err = self.errors.get(name)
        if err is not None:
            raise err
        if args and args[0] not in self.containers:
            raise ContainerError(f"container {args[0]!r} does not exist")

    def pause(self, container_id: str) -> None:
        self._act("pause", container_id)
        self.containers[container_id].status = "paused"

    def resume(self, container_id: str) -> None:
        self._act("resume", container_id)
        self.containers[container_id].status = "running"

    def signal(self, container_id: str, sig: int, pid: int | None = None, create_time: float | None = None) -> None:
        self._act("signal", container_id, sig, pid)

    def destroy(self, container_id: str) -> None:
        self._act("destroy", container_id)
        del self.containers[container_id]

    def shell(self, container_id: str, argv: Sequence[str] = SHELL) -> int:
        self._act("shell", container_id, tuple(argv))
        return self.shell_exit

    def plan(self, prune: bool = False) -> PlanView:
        self.calls.append(("plan", prune))
        return replace(self.plan_view, prune=prune)

    def apply(self, plan: PlanView, on_outcome: Callable[[Outcome], None] | None = None) -> list[Outcome]:
        self.calls.append(("apply", tuple(a["container"] for a in plan.actions)))
        err = self.errors.get("apply")
        if err is not None:
            raise err
        outcomes = []
        for a in plan.actions:
            failed = a["container"] in self.fail
            o = Outcome(a["container"], a["class"], a["cause"], "failed" if failed else "ok",
                        "injected failure" if failed else "")
            outcomes.append(o)
            if on_outcome is not None:
                on_outcome(o)
        return outcomes


def fake_fleet(n: int = 3, started: float = 0.0) -> list[FakeContainer]:
    """``n`` fakes ``c1``…: running, with CPU and network moving, one paused and one stopped when n >= 3."""
    out = []
    for i in range(1, n + 1):
        status = "paused" if i == 2 else "stopped" if i == 3 else "running"
        out.append(FakeContainer(f"c{i}", status=status, pid=1000 + i, started=started - 60 * i,
                                 cpu_step=i * 100_000_000, cpu_limit=0.5 if i == 1 else None,
                                 mem_usage=(8 + i) << 20, net=i == 1, net_step=2048 * i, io_step=4096,
                                 exit_code=0 if status == "stopped" else None,
                                 logs=[("stdout", f"c{i} line {k}") for k in range(5)]))
    return out

