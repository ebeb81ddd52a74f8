"""``dct tui [PATH…] [--root DIR] [--readonly] [--interval S]``: imported only when ``dct tui`` runs."""

from __future__ import annotations

import argparse
import sys

PROG = "dct"


def cmd_tui(args: argparse.Namespace) -> int:
    """Check the arguments and the specs (every error as ``file:line:col: field: message``, exit 1)
    and that stdin/stdout are a terminal, then run the TUI until it is quit (exit 0). A state
    root that cannot be used is the CLI's ``dct: …`` error (exit 1)."""
    if not (args.interval > 0 and args.interval < 3600):
        print(f"{PROG} tui: --interval must be between 0 and 3600 seconds", file=sys.stderr)
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
    from .backend import RealBackend

    backend = RealBackend(args.root, args.paths, readonly=args.readonly)  # a bad root raises here
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        print(f"{PROG} tui: needs a terminal (stdin and stdout are not both one)", file=sys.stderr)
        return 1
    from .app import DctApp

    app = DctApp(backend, interval=args.interval, readonly=args.readonly)
    try:
        app.run()
    finally:
        backend.close()
    return app.return_code or 0
