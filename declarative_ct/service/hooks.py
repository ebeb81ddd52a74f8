"""``dct watch`` as the supervisor: the watch loop's hooks (:class:`~declarative_ct.reconcile.watch.WatchHooks`)
that tell systemd (:mod:`.notify`) and the state root's supervisor record (:mod:`.supervisor`)
what the loop does, and the signals that drive it.

Signals (installed by :func:`install_signals`, as a service manager sends them):

- SIGTERM, SIGINT: stop. ``STOPPING=1`` at once; the loop ends once the actions of an apply in
  progress that have started are done (no new one starts); the containers stay as they are.
- SIGHUP (``systemctl reload``, ``ExecReload=kill -HUP $MAINPID``): reload every spec file now,
  without the debounce, and reconcile; ``RELOADING=1`` then ``READY=1`` after that pass.

The handlers only set flags and send one datagram: the loop does the work in its own thread.
"""

from __future__ import annotations

import signal
import threading

from ..reconcile.watch import WatchHooks
from .notify import Notifier
from .supervisor import Supervisor


def _count(containers: int) -> str:
    return f"{containers} container{'s' if containers != 1 else ''}"


class SupervisorHooks(WatchHooks):
    """The watch loop's hooks of a supervisor: ``notifier`` (systemd; a no-op without it) and
    ``supervisor`` (the root's lock and ``#supervisor.json``, updated after each pass)."""

    def __init__(self, notifier: Notifier, supervisor: Supervisor) -> None:
        self.notifier = notifier
        self.supervisor = supervisor
        self.reloads = 0  # SIGHUPs seen (a counter, not an Event: a handler must take no lock)
        self._status = ""
        self._stopping = False

    def reload_requests(self) -> int:
        return self.reloads

    def ready(self, containers: int, paths: list[str]) -> None:
        self._status = f"watching {_count(containers)} in {' '.join(paths)}"
        self.notifier.ready(self._status)

    def reloading(self) -> None:
        self.notifier.reloading()

    def passed(self, containers: int) -> None:
        self.supervisor.passed(containers)
        if self._status and not self._stopping:  # after READY: keep the count systemctl status shows current
            status = f"watching {_count(containers)} in {' '.join(self.supervisor.info.paths)}"
            if status != self._status:
                self._status = status
                self.notifier.status(status)

    def alive(self) -> None:
        self.notifier.watchdog()

    def stopping(self) -> None:
        """SIGTERM/SIGINT: ``STOPPING=1`` (once)."""
        if not self._stopping:
            self._stopping = True
            self.notifier.stopping()


def install_signals(hooks: SupervisorHooks, stop: threading.Event) -> dict:
    """Handle SIGTERM and SIGINT (set ``stop``, tell systemd) and SIGHUP (count a reload request).

    Returns the previous handlers (``{signum: handler}``), for :func:`restore_signals`. Call from
    the main thread.
    """

    def on_stop(signum, frame) -> None:  # noqa: ARG001 - signal's signature
        stop.set()  # the loop never waits on or clears this Event: no lock of it is held here
        hooks.stopping()

    def on_hup(signum, frame) -> None:  # noqa: ARG001
        hooks.reloads += 1

    previous = {sig: signal.signal(sig, on_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    previous[signal.SIGHUP] = signal.signal(signal.SIGHUP, on_hup)
    return previous


def restore_signals(previous: dict) -> None:
    """Put back the handlers :func:`install_signals` replaced."""
    for sig, handler in previous.items():
        signal.signal(sig, handler)
