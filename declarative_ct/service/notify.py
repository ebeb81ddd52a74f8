"""systemd's service notifications (``sd_notify``) for ``dct watch`` run as ``Type=notify``.

What is sent (each a datagram to ``$NOTIFY_SOCKET``; see systemd's ``sd_notify(3)``):

- ``READY=1`` + ``STATUS=watching N containers in DIR`` once the first reconcile pass is done
  (systemd then counts the unit as started: ``systemctl start`` returns, ``After=`` units go on);
- ``RELOADING=1`` + ``MONOTONIC_USEC=<CLOCK_MONOTONIC µs>`` + ``STATUS=reloading`` on SIGHUP, then
  ``READY=1`` again after the reload's pass;
- ``STOPPING=1`` + ``STATUS=stopping`` on SIGTERM/SIGINT;
- ``WATCHDOG=1`` every half of ``$WATCHDOG_USEC`` (``WatchdogSec=``), from the loop that does the
  work, so that a loop that hangs misses its pings and systemd restarts the service.

Without ``$NOTIFY_SOCKET`` (a ``dct watch`` in a terminal, or no systemd) every method does
nothing. The variables are taken out of the environment once read (as ``sd_notify``'s
``unset_environment``): the root's monitor, hooks and other children started from the
supervisor must not talk to systemd in its name.
"""

from __future__ import annotations

import os
import time

# sdnotify (pure Python, the protocol's few lines: one AF_UNIX datagram per message) rather than
# systemd-python (systemd's own, a C extension: libsystemd-dev, pkg-config and a compiler at
# install time, on every machine that installs dct) or cysystemd (wheels bundle libsystemd, but it
# sends one field per call, so RELOADING=1 cannot carry MONOTONIC_USEC= in the same message).
import sdnotify

WATCHDOG_FRACTION = 0.5  # ping at half the watchdog interval, as sd_watchdog_enabled(3) advises


class Notifier:
    """The service manager's side channel (see the module doc); a no-op without ``$NOTIFY_SOCKET``.

    Reads ``NOTIFY_SOCKET``, ``WATCHDOG_USEC`` and ``WATCHDOG_PID`` from ``os.environ`` (and
    removes them from it); ``clock``: monotonic seconds (injectable for tests).

    Attributes:
        enabled: a notification socket was given.
        watchdog_interval: seconds between ``WATCHDOG=1`` pings (half of ``$WATCHDOG_USEC``), or
            None when no watchdog is asked for us (unset, not a positive number, or
            ``$WATCHDOG_PID`` names another process).
    """

    def __init__(self, clock=time.monotonic) -> None:
        env = os.environ
        usec, for_pid = env.get("WATCHDOG_USEC", ""), env.get("WATCHDOG_PID", "")
        self.enabled = bool(env.get("NOTIFY_SOCKET"))
        self._clock = clock
        self.watchdog_interval: float | None = None
        if self.enabled and usec.isdigit() and int(usec) > 0 and (not for_pid or for_pid == str(os.getpid())):
            self.watchdog_interval = int(usec) / 1e6 * WATCHDOG_FRACTION
        # SystemdNotifier reads $NOTIFY_SOCKET and connects once, here ('@name': an abstract socket).
        self._notifier = sdnotify.SystemdNotifier() if self.enabled else None
        for name in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"):
            env.pop(name, None)
        self._last_ping: float | None = None

    def send(self, *fields: str) -> None:
        """Send ``fields`` (``"READY=1"``, ``"STATUS=…"``) as one message; errors are ignored (the
        manager may be gone; the service goes on)."""
        if self._notifier is None:
            return
        # sdnotify encodes as latin-1: pass the UTF-8 bytes through it unchanged (a spec path may be
        # any text); a newline inside a field would start another field, so it becomes a space.
        text = "\n".join(f.replace("\n", " ") for f in fields)
        self._notifier.notify(text.encode("utf-8", "surrogateescape").decode("latin-1"))

    def ready(self, status: str) -> None:
        """``READY=1`` with ``STATUS=status`` (after the first pass, and after each reload's pass)."""
        self.send("READY=1", "STATUS=" + status)

    def reloading(self) -> None:
        """``RELOADING=1``, ``MONOTONIC_USEC=`` (now on CLOCK_MONOTONIC, as systemd's notify-reload asks) and a STATUS."""
        usec = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        self.send("RELOADING=1", f"MONOTONIC_USEC={usec}", "STATUS=reloading the specs")

    def stopping(self) -> None:
        """``STOPPING=1`` and a STATUS: the supervisor ends (its containers keep running)."""
        self.send("STOPPING=1", "STATUS=stopping (finishing the current action; the containers keep running)")

    def status(self, text: str) -> None:
        """``STATUS=text`` alone (what ``systemctl status`` shows)."""
        self.send("STATUS=" + text)

    def watchdog(self) -> None:
        """``WATCHDOG=1`` when half the watchdog interval has passed since the last one (cheap to
        call often: from every turn of the loop and between the actions of an apply)."""
        if self.watchdog_interval is None:
            return
        now = self._clock()
        if self._last_ping is None or now - self._last_ping >= self.watchdog_interval:
            self._last_ping = now
            self.send("WATCHDOG=1")
