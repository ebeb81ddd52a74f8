"""``runc events``: a container's statistics every interval and its OOM kills as they happen.

:func:`events` is a generator of runc's event objects (``types.Event`` in runc's ``types/events.go``)::

    {"type": "stats", "id": ID, "data": {"cpu": ..., "memory": ..., "pids": ..., "blkio": ...,
                                         "network_interfaces": null}}
    {"type": "oom", "id": ID}

``data`` is :func:`~declarative_ct.runtime.stats.events_data` of :meth:`Container.stats` (CPU
times in ns, memory in bytes). The CLI prints them as JSON lines (``dct events``); the TUI and
the reconciler can iterate the same generator. :func:`stats_event` is the one-shot
``runc events --stats``. Stdlib only.

OOM detection (runc's ``notify_linux.go`` for v1, ``fs2/memory.go``'s ``registerMemoryEvent``
for v2), always confirmed by the cgroup's ``oom_kill`` counter (``Manager.oom_kill_count``):

* v1: an eventfd registered in ``cgroup.event_control`` against ``memory.oom_control``; the
  kernel signals it when the cgroup is under OOM, and once more when the cgroup is removed.
* v2: ``poll(POLLPRI)`` on an open ``memory.events``, which the kernel notifies on each change.
* otherwise (no memory controller, registration refused): the counter is read every 0.2 s.

The kernel notifies v1 listeners *before* the OOM killer picks its victim, so a wake-up without
a higher counter is followed by a short re-check (:data:`CONFIRM_WINDOW`); an OOM that ended
without a kill (memory was reclaimed) gives no event. One ``oom`` event per observed increase
of the counter, as runc's v2 code does. The counter is also read on every wake-up, so a kill by
the host's global OOM killer (counted, but not notified) shows at the next stats event at the latest.
"""

from __future__ import annotations

import contextlib
import math
import os
import re
import select
import time
from collections.abc import Iterator

from ..errors import ConfigInvalid, ContainerNotRunning
from . import cgroups
from .state import Status
from .stats import events_data

DEFAULT_INTERVAL = 5.0
"""Seconds between stats events, runc's ``--interval`` default (5s)."""

FALLBACK_POLL = 0.2
"""Seconds between reads of the ``oom_kill`` counter when no kernel notification is available."""

CONFIRM_WINDOW = 1.0
"""Seconds during which a notification not (yet) matched by a higher ``oom_kill`` is re-checked."""

_CONFIRM_POLL = 0.01
_MAX_POLL = 60.0  # seconds per poll() call, whatever the interval (its timeout is a C int of ms)

_DURATION_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)")


def parse_duration(text: str, name: str = "interval") -> float:
    """Seconds from a Go duration (``"5s"``, ``"500ms"``, ``"1m30s"``, ``"1.5h"``) or plain seconds (``"2"``).

    runc parses ``--interval`` with Go's ``time.ParseDuration`` and needs it above zero.

    Raises:
        ConfigInvalid: naming ``name``: not a duration, or not positive.
    """
    value = text.strip()
    seconds: float | None = None
    try:
        seconds = float(value)
    except ValueError:
        if value and _DURATION_PART.sub("", value) == "":
            seconds = sum(float(n) * _DURATION_UNITS[u] for n, u in _DURATION_PART.findall(value))
    if seconds is None or not math.isfinite(seconds):
        raise ConfigInvalid(f"{name}: {text!r} is not a duration (e.g. 5s, 500ms, 1m, or seconds)")
    if seconds <= 0:
        raise ConfigInvalid.at(name, f"{text!r} must be greater than 0", seconds)
    return seconds


def stats_event(container) -> dict[str, object]:
    """``{"type": "stats", "id", "data"}`` read now (``runc events --stats``).

    Raises:
        ContainerNotRunning: the container is stopped (runc refuses those), or its cgroup is gone.
    """
    _require_live(container)
    return _stats(container)


def _stats(container) -> dict[str, object]:
    return {"type": "stats", "id": container.id, "data": events_data(container.stats())}


def _require_live(container) -> None:
    if container.status() == Status.STOPPED:
        raise ContainerNotRunning(f"container with id {container.id} is not running")


def events(container, interval: float = DEFAULT_INTERVAL) -> Iterator[dict[str, object]]:
    """Yield runc's events for ``container`` until it stops (``runc events`` without ``--stats``).

    A ``stats`` event at once and then every ``interval`` seconds (runc waits one interval for
    the first), and an ``oom`` event as soon as the OOM killer kills a process of the cgroup.
    The generator returns when init exits (watched through a pidfd) or the cgroup is removed,
    after a last look at the ``oom_kill`` counter so that an OOM which killed init is reported.
    Closing the generator releases its file descriptors.

    Raises:
        ContainerNotRunning: the container is stopped (as runc); checked here, before iteration,
            and again when iteration starts.
        ValueError: ``interval`` is not positive.
    """
    if not interval > 0:
        raise ValueError(f"interval must be positive, not {interval!r}")
    _require_live(container)
    return _stream(container, interval)


def _stream(container, interval: float) -> Iterator[dict[str, object]]:
    pidfd = _init_pidfd(container)  # then the status check: this pidfd is of the live, verified init
    watcher = None
    try:
        _require_live(container)
        watcher = OomWatcher(container.state().cgroup_paths)
        poller = select.poll()
        poller.register(pidfd, select.POLLIN)
        if watcher.fileno() >= 0:
            poller.register(watcher.fileno(), watcher.poll_events)
        next_stats = time.monotonic()
        confirm_until = 0.0
        while True:
            now = time.monotonic()
            if now >= next_stats:
                try:
                    yield _stats(container)
                except ContainerNotRunning:
                    return  # the cgroup is gone
                next_stats = max(next_stats + interval, time.monotonic())
                continue
            timeout = min(next_stats - now, _MAX_POLL)
            if confirm_until > now:
                timeout = min(timeout, _CONFIRM_POLL)
            elif watcher.fileno() < 0:
                timeout = min(timeout, FALLBACK_POLL)
            ready = dict(poller.poll(int(timeout * 1000) + 1))
            notified = watcher.fileno() in ready
            if notified and watcher.acknowledge():  # v1: the cgroup was removed
                yield from _ooms(container, watcher.check())
                return
            kills = watcher.check()
            if notified and not kills:
                if watcher.counter_known and watcher.poll_events == select.POLLIN:
                    # v1 notifies before the OOM killer picks a victim: the kill may not be counted yet
                    # (v2 counts first, and memory.events also changes for high/max events).
                    confirm_until = time.monotonic() + CONFIRM_WINDOW
                elif watcher.poll_events == select.POLLIN:
                    kills = 1  # v1 without an oom_kill counter (kernel < 4.13): trust it, as runc does
            if kills:
                confirm_until = 0.0
                yield from _ooms(container, kills)
            if pidfd in ready:
                yield from _ooms(container, watcher.check())
                return
    finally:
        os.close(pidfd)
        if watcher is not None:
            watcher.close()


def _ooms(container, count: int) -> Iterator[dict[str, object]]:
    for _ in range(count):
        yield {"type": "oom", "id": container.id}


def _init_pidfd(container) -> int:
    try:
        return os.pidfd_open(container.state().init_process_pid)
    except ProcessLookupError:
        raise ContainerNotRunning(f"container with id {container.id} is not running") from None


class OomWatcher:
    """Wakes a poll loop on OOM in a cgroup and counts its OOM kills (see the module docstring).

    ``paths`` is the container's ``cgroup_paths`` (``{controller: dir}`` on v1, ``{"": dir}`` on
    v2). :meth:`fileno` is the fd to poll for :attr:`poll_events` (-1: none, read :meth:`check`
    every :data:`FALLBACK_POLL` s); after it is ready call :meth:`acknowledge`, then :meth:`check`.
    """

    def __init__(self, paths: dict[str, str]) -> None:
        self._manager = cgroups.manager_from_paths(paths)
        self._fd = -1
        self._extra: list[int] = []
        self._event_control = ""
        self.poll_events = select.POLLIN
        if set(paths) == {""}:
            self._open_v2(paths[""])
        elif paths.get("memory"):
            self._open_v1(paths["memory"])
        count = self._manager.oom_kill_count()
        self.counter_known = count is not None
        self._count = count or 0

    def _open_v1(self, directory: str) -> None:
        oom_control = efd = -1
        try:
            efd = os.eventfd(0, os.EFD_CLOEXEC | os.EFD_NONBLOCK)
            oom_control = os.open(os.path.join(directory, "memory.oom_control"), os.O_RDONLY | os.O_CLOEXEC)
            control = os.path.join(directory, "cgroup.event_control")
            fd = os.open(control, os.O_WRONLY | os.O_CLOEXEC)
            try:
                os.write(fd, f"{efd} {oom_control}".encode())
            finally:
                os.close(fd)
        except OSError:
            for fd in (efd, oom_control):
                if fd >= 0:
                    os.close(fd)
            return  # fall back to reading the counter
        self._fd, self._extra, self._event_control = efd, [oom_control], control

    def _open_v2(self, directory: str) -> None:
        try:
            fd = os.open(os.path.join(directory, "memory.events"), os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            return
        os.pread(fd, 4096, 0)  # arms the notification (kernfs compares against the last read)
        self._fd, self.poll_events = fd, select.POLLPRI

    def fileno(self) -> int:
        """The fd to poll, or -1 when only :meth:`check` polling is possible."""
        return self._fd

    def acknowledge(self) -> bool:
        """Consume the notification; True when it announced the cgroup's removal (v1)."""
        if self.poll_events == select.POLLPRI:
            with contextlib.suppress(OSError):
                os.pread(self._fd, 4096, 0)  # re-arm
            return not self._manager.exists()
        with contextlib.suppress(BlockingIOError):
            os.eventfd_read(self._fd)
        return not os.path.exists(self._event_control)  # runc's check after each read

    def check(self) -> int:
        """OOM kills since the previous call (0 when the counter is unknown or the cgroup gone)."""
        count = self._manager.oom_kill_count()
        if count is None:
            return 0
        new, self._count = max(0, count - self._count), count
        self.counter_known = True
        return new

    def close(self) -> None:
        """Close the eventfd / memory.events fd (removes the v1 registration)."""
        for fd in [self._fd, *self._extra]:
            if fd >= 0:
                os.close(fd)
        self._fd, self._extra = -1, []
