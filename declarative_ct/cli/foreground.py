"""A process run in the foreground (``dct run`` without ``-d``, ``dct exec``): its terminal (runc's
rules, :mod:`.tty`), the signals we forward to it, and the wait for it."""

from __future__ import annotations

import argparse
import os
import signal

from ..runtime import Process, monitor


# Signals a foreground run/exec forwards to the container's process (runc forwards all but these).
_NOT_FORWARDED = {signal.SIGCHLD, signal.SIGWINCH, signal.SIGURG, signal.SIGKILL, signal.SIGSTOP}


def terminal(args: argparse.Namespace, process: Process, detached: bool):
    """runc's terminal rules for ``process`` (see :func:`declarative_ct.cli.tty.prepare`): our end
    of the console socket pair for a foreground terminal, else None."""
    if not (process.terminal or getattr(args, "tty", False) or getattr(args, "console_socket", None)):
        return None  # the common case pays no import
    from . import tty

    return tty.prepare(args, process, detached)


def terminal_started(process: Process) -> None:
    """Once the runtime sent the master: close our copy of the console socket."""
    if process.console_socket is not None:
        from . import tty

        tty.release(process)


def terminal_failed(args: argparse.Namespace, process: Process) -> None:
    """The create or start failed: close our copy of the console socket and our end of a foreground terminal."""
    terminal_started(process)
    peer = getattr(args, "console_peer", None)
    if peer is not None:
        peer.close()
        args.console_peer = None


def foreground_wait(args: argparse.Namespace, pid: int) -> int:
    """Reap init (``dct run`` in the foreground): with a foreground terminal, proxy our terminal to
    its pty until it exits. Returns its wait status."""
    peer = getattr(args, "console_peer", None)
    if peer is None:
        return monitor.reap_until(pid)
    from . import tty

    args.console_peer = None
    done = os.pidfd_open(pid)  # our child (stage 1 has exited): its pid cannot be reused before we reap
    try:
        return tty.attach(peer, done, lambda: monitor.reap_until(pid))
    finally:
        os.close(done)


def exec_wait(peer, handle) -> int:
    """Wait for a foreground exec'd process; with a terminal (``peer``), proxy ours to its pty meanwhile."""
    if peer is None:
        return handle.wait()
    from . import tty

    done = handle.pidfd()
    try:
        return tty.attach(peer, done, handle.wait)
    finally:
        os.close(done)


def forward_signals(pid: int) -> None:
    """Forward every signal we get (but those in ``_NOT_FORWARDED`` and the real-time ones) to ``pid``, as runc."""
    def forward(signum: int, _frame: object) -> None:
        try:
            os.kill(pid, signum)
        except ProcessLookupError:
            pass
    for sig in signal.valid_signals():
        if sig in _NOT_FORWARDED or not 0 < sig < signal.SIGRTMIN:
            continue
        try:
            signal.signal(sig, forward)
        except (OSError, ValueError):
            pass


def restore_signals() -> None:
    """Undo :func:`forward_signals`: the default action again for each signal it forwarded."""
    for sig in signal.valid_signals():
        if sig in _NOT_FORWARDED or not 0 < sig < signal.SIGRTMIN:
            continue
        try:
            signal.signal(sig, signal.SIG_DFL)
        except (OSError, ValueError):
            pass
