"""The real backend's collector-side reads: one :class:`~tui.model.Reading` per container per tick
(from ``Container.stats()``, containers kept between ticks, and their health records), and the
processes of one container."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import time

from ..model import Reading
from ..processes import ProcInfo
from . import COLD_EVERY

PROBING_EVERY = 5.0
"""Seconds between two looks at whether a supervisor runs (the one that probes): a lock try."""


class _Kept:
    """A container kept between ticks (its cgroup files stay open), with what does not change per run."""

    __slots__ = ("container", "identity", "started", "cpu_limit", "owned", "oom", "exit", "last", "turn",
                 "run", "applied", "record_id", "record", "shown")

    def __init__(self, container, identity: tuple, turn: int = 0) -> None:
        from declarative_ct.reconcile import last_applied
        from declarative_ct.reconcile.convert import made_by_apply
        from declarative_ct.units import parse_time
        from declarative_ct.runtime import cgroups

        self.container = container
        self.identity = identity
        state = container.state()
        self.started = parse_time(state.created)
        self.cpu_limit = cpu_limit(container.config.cgroups.resources)
        self.owned = made_by_apply(container.config)
        self.oom = cgroups.manager_from_paths(state.cgroup_paths) if state.cgroup_paths else None
        self.exit: dict | None = None
        self.last: Reading | None = None
        self.turn = turn
        self.run = state.created
        self.applied = last_applied.read(container.config) if self.owned else {}  # the created spec
        self.record_id: tuple | None = None  # (inode, size, mtime) of the health record last read
        self.record: dict | None = None
        self.shown: tuple = (None, None)  # (what it was picked from, the check shown): see check()

    def check(self, desired: object):  # noqa: ANN201 - HealthCheck | None
        """The check shown (:func:`declarative_ct.health.view.shown_check`) of the record last
        read and ``desired`` (the desired spec's normalized ``health``, or ``view.NO_SPEC``);
        picked again only when either changed."""
        from declarative_ct.health import view

        key = (self.record_id, desired)
        if self.shown[0] != key:
            self.shown = (key, view.shown_check(self.record, self.applied, desired))
        return self.shown[1]

    def health_record(self) -> dict | None:
        """The container's health record, read again only when its file changed (a ``stat`` per
        call; the prober replaces it by a rename)."""
        from declarative_ct.health import record

        try:
            st = os.stat(os.path.join(self.container.state_dir, record.RECORD_FILE))
        except OSError:
            self.record_id = self.record = None
            return None
        identity = (st.st_ino, st.st_size, st.st_mtime_ns)
        if identity != self.record_id:
            self.record_id, self.record = identity, record.read(self.container.state_dir)
        return self.record


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
    from ..numbers import UNLIMITED_FROM

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


class Sampling:
    """:meth:`~tui.backend.Backend.sample` and :meth:`~tui.backend.Backend.processes` of
    :class:`~tui.backend.real.RealBackend` (uses its ``runtime``, ``root``, ``_kept``, ``_procs``, ``_users``)."""

    _probing_at = float("-inf")  # monotonic time of the last look at the supervisor's lock
    _probing_now = False
    _health_of: tuple = (None, {})  # (the loaded specs, their name → normalized health): _desired_health

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
                health, check = self._health(kept, "stopped")
                return Reading(c.id, "stopped", None, kept.started, kept.owned, cpu_limit=kept.cpu_limit,
                               exit_code=e.get("exit_code"), exit_signal=e.get("signal"),
                               oom_killed=bool(e.get("oom_killed")), health=health, health_check=check)
            t0 = time.monotonic()
            stats = c.stats()
            at = (t0 + time.monotonic()) / 2  # the rates' clock: when these counters were read
            if not oom:
                oom_kills = kept.last.oom_kills if kept.last is not None else None
            else:
                oom_kills = kept.oom.oom_kill_count() if kept.oom is not None else None
            reading = reading_from_stats(c.id, status.value, c.state().init_process_pid, stats, kept.started,
                                         kept.cpu_limit, kept.owned, oom_kills, at)
            health, check = self._health(kept, status.value)
            if check is None:
                return reading
            return dataclasses.replace(reading, health=health, health_check=check)
        except (ContainerError, OSError, ValueError):
            if not os.path.isdir(c.state_dir):
                return None
            return Reading(c.id, status.value if status is not None else "stopped", None, kept.started, kept.owned,
                           cpu_limit=kept.cpu_limit)

    def _health(self, kept: _Kept, status: str) -> tuple:
        """``(view, check)`` of a kept container: its health view (:mod:`declarative_ct.health.view`,
        a read-only mapping) and the check shown, both None without a check. Its record costs a
        ``stat`` (read again when it changed); whether a supervisor probes is looked at every
        :data:`PROBING_EVERY` s."""
        from types import MappingProxyType

        from declarative_ct.health import view
        from declarative_ct.service.supervisor import probing

        record = kept.health_record()
        check = kept.check(self._desired_health(kept.container.id))
        if check is None:
            return None, None
        now = time.monotonic()
        if now - self._probing_at >= PROBING_EVERY:
            self._probing_at, self._probing_now = now, probing(self.root)
        out = view.view(check, record, status, kept.run, self._probing_now, time.time())
        return (MappingProxyType(out) if out is not None else None), check

    def _desired_health(self, name: str) -> object:
        """The normalized ``health`` of ``name``'s desired spec (None: it declares none) when the
        TUI was given specs that name it (as last loaded for the desired view), else
        ``view.NO_SPEC``: the check shown is then the last probe's, else the created one's."""
        from declarative_ct.health.view import NO_SPEC

        docs = self._docs if self.paths else None
        if not docs:
            return NO_SPEC
        if self._health_of[0] is not docs:  # reloaded: a new list
            self._health_of = (docs, {d.spec.name: self._normalized(d).get("health") for d in docs})
        return self._health_of[1].get(name, NO_SPEC)

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
