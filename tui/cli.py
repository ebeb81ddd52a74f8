"""``dct tui [PATH…] [--root DIR] [--readonly] [--interval DURATION]``: imported only when ``dct tui`` runs."""

from __future__ import annotations

import argparse
import sys

PROG = "dct"
MAX_INTERVAL = 3600.0


def parse_interval(text: str) -> float | str:
    """``--interval`` in seconds, from a duration as ``dct events`` takes it (``2s``, ``500ms``,
    ``1m``, or seconds: ``2``, ``0.5``), from :data:`~tui.collector.MIN_INTERVAL` (why: see there)
    to an hour; else the error to print (a str naming the option and the value)."""
    from declarative_ct.errors import ConfigInvalid
    from declarative_ct.runtime.events import parse_duration

    from .collector import MIN_INTERVAL

    try:
        seconds = parse_duration(text, "--interval")
    except ConfigInvalid as err:
        if not err.problems or err.problems[0].value is None:  # not a duration at all
            return str(err)
        seconds = 0.0  # a duration, zero or negative: too short, said below
    if seconds < MIN_INTERVAL:
        return (f"--interval {text}: too short: {MIN_INTERVAL:g}s at least (a shorter window shows a "
                "CPU-limited container's bursts rather than its use, and the TUI's own cost grows with the rate)")
    if seconds > MAX_INTERVAL:
        return f"--interval {text}: too long: 1h at most"
    return seconds


def cmd_tui(args: argparse.Namespace) -> int:
    """Check the arguments and the specs (every error as ``file:line:col: field: message``, exit 1)
    and that stdin/stdout are a terminal, then run the TUI until it is quit (exit 0). A state
    root that cannot be used is the CLI's ``dct: …`` error (exit 1)."""
    interval = parse_interval(str(args.interval))
    if isinstance(interval, str):
        print(f"{PROG} tui: {interval}", file=sys.stderr)
        return 1
    if args.paths:
        from declarative_ct.errors import ContainerError
        from declarative_ct.spec.load import load_paths

        try:
            load_paths(args.paths)
        except ContainerError as err:
            for error in getattr(err, "errors", [err]):
                print(error, file=sys.stderr)
            return 1
    from .backend.real import RealBackend

    backend = RealBackend(args.root, args.paths, readonly=args.readonly)  # a bad root raises here
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        print(f"{PROG} tui: needs a terminal (stdin and stdout are not both one)", file=sys.stderr)
        return 1
    from .app import DctApp

    app = DctApp(backend, interval=interval, readonly=args.readonly)
    try:
        app.run()
    finally:
        backend.close()
    return app.return_code or 0
