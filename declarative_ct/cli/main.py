"""``dct``: runc's verbs over a declarative-ct state root.

Thin: it parses arguments (argparse), calls :mod:`declarative_ct.runtime`, and turns a
:class:`~declarative_ct.errors.ContainerError` into ``dct: <message>`` on stderr with exit 1.
Options may come before or after the container id, as with runc.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from typing import Sequence

from ..errors import ContainerError

PROG = "dct"


def _add_root(p: argparse.ArgumentParser, default: object) -> None:
    p.add_argument("--root", default=default, metavar="DIR",
                   help="state root (default $DCT_ROOT or /run/dct)")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser: one sub-command per runc verb."""
    parser = argparse.ArgumentParser(prog=PROG, description="declarative-ct: run and manage Linux containers")
    _add_root(parser, None)
    sub = parser.add_subparsers(dest="verb", required=True, metavar="COMMAND")

    def cmd(name: str, help_: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_, description=help_)
        _add_root(p, argparse.SUPPRESS)
        return p

    p = cmd("spec", "write a default OCI config.json in the bundle (like 'runc spec')")
    p.add_argument("-b", "--bundle", default=".", help="bundle directory (default: current directory)")

    for name, help_ in (("create", "create a container: set up, with the program not yet run"),
                        ("run", "create and start a container")):
        p = cmd(name, help_)
        p.add_argument("-b", "--bundle", default=".", help="bundle directory holding config.json (default: .)")
        p.add_argument("--pid-file", help="write init's host PID to this file")
        p.add_argument("--no-monitor", action="store_true",
                       help="no monitor: init keeps the caller's stdio and is re-parented to the caller's "
                            "subreaper, which collects its exit status (for conmon/shim-like callers)")
        if name == "run":
            p.add_argument("-d", "--detach", action="store_true", help="detach; output goes to the log files")
            p.add_argument("--keep", action="store_true", help="keep the container after it exits (foreground)")
        p.add_argument("id")

    p = cmd("start", "start a created container (run its program)")
    p.add_argument("id")

    p = cmd("exec", "run a new process inside a running container")
    p.add_argument("--cwd", help="working directory inside the container")
    p.add_argument("-e", "--env", action="append", default=[], help="KEY=value (repeatable)")
    p.add_argument("-u", "--user", help="uid[:gid]")
    p.add_argument("-g", "--additional-gids", action="append", type=int, default=[], help="extra group id")
    p.add_argument("-d", "--detach", action="store_true", help="do not wait for the process")
    p.add_argument("--pid-file", help="write the process's host PID to this file")
    p.add_argument("id")
    p.add_argument("command", nargs="*", help="the program and its arguments; put them after '--'")

    p = cmd("kill", "send a signal to the container's init (default SIGTERM)")
    p.add_argument("-a", "--all", action="store_true", help="signal every process in the container's cgroup")
    p.add_argument("id")
    p.add_argument("signal", nargs="?", default="SIGTERM")

    p = cmd("delete", "delete a stopped container and its resources")
    p.add_argument("-f", "--force", action="store_true", help="kill it first, whatever its status")
    p.add_argument("id")

    for name, help_ in (("pause", "freeze every process of the container"),
                        ("resume", "thaw a paused container"),
                        ("state", "print the container's state as JSON")):
        p = cmd(name, help_)
        p.add_argument("id")

    p = cmd("list", "list containers")
    p.add_argument("-f", "--format", choices=("table", "json"), default="table")
    p.add_argument("-q", "--quiet", action="store_true", help="print only the ids")

    p = cmd("ps", "list the processes of a container")
    p.add_argument("-f", "--format", choices=("table", "json"), default="table")
    p.add_argument("id")
    p.add_argument("ps_args", nargs="*", help="arguments for ps(1) after '--' (default -ef)")

    p = cmd("logs", "print a detached container's stdout and stderr")
    p.add_argument("-f", "--follow", action="store_true", help="keep printing new output")
    p.add_argument("id")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``dct``; returns the exit status (``exec``/``run`` pass the container's through)."""
    args = build_parser().parse_args(argv)
    from . import commands
    handler = getattr(commands, "cmd_" + args.verb)
    try:
        return handler(args) or 0
    except ContainerError as err:
        print(f"{PROG}: {err}", file=sys.stderr)
        return 1
    except BrokenPipeError:
        return 1
    except KeyboardInterrupt:
        return 128 + signal.SIGINT


if __name__ == "__main__":
    sys.exit(main())
