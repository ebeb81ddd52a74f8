"""``dct``: runc's verbs over a declarative-ct state root.

Thin: it parses arguments (argparse), calls :mod:`declarative_ct.runtime`, and turns a
:class:`~declarative_ct.errors.ContainerError` into ``dct: <message>`` on stderr with exit 1.
Options may come before or after the container id, as with runc.
"""

from __future__ import annotations

import argparse
import signal
import sys
from collections.abc import Callable, Sequence

from ..errors import ContainerError

PROG = "dct"


def _add_root(p: argparse.ArgumentParser, default: object) -> None:
    p.add_argument("--root", default=default, metavar="DIR",
                   help="state root (default $DCT_ROOT or /run/dct)")


def _args_spec(p: argparse.ArgumentParser) -> None:
    p.add_argument("-b", "--bundle", default=".", help="bundle directory (default: current directory)")


def _args_create(p: argparse.ArgumentParser, run: bool = False) -> None:
    p.add_argument("-b", "--bundle", default=".", help="bundle directory holding config.json (default: .)")
    p.add_argument("--pid-file", help="write init's host PID to this file")
    p.add_argument("--no-monitor", action="store_true",
                   help="no monitor: init keeps the caller's stdio and is re-parented to the caller's "
                        "subreaper, which collects its exit status (for conmon/shim-like callers)")
    if run:
        p.add_argument("-d", "--detach", action="store_true", help="detach; output goes to the log files")
        p.add_argument("--keep", action="store_true", help="keep the container after it exits (foreground)")
    p.add_argument("id")


def _args_id(p: argparse.ArgumentParser) -> None:
    p.add_argument("id")


def _args_exec(p: argparse.ArgumentParser) -> None:
    p.add_argument("--cwd", help="working directory inside the container")
    p.add_argument("-e", "--env", action="append", default=[], help="KEY=value (repeatable)")
    p.add_argument("-u", "--user", help="uid[:gid]")
    p.add_argument("-g", "--additional-gids", action="append", type=int, default=[], help="extra group id")
    p.add_argument("-d", "--detach", action="store_true", help="do not wait for the process")
    p.add_argument("--pid-file", help="write the process's host PID to this file")
    p.add_argument("id")
    p.add_argument("command", nargs="*", help="the program and its arguments; put them after '--'")


def _args_kill(p: argparse.ArgumentParser) -> None:
    p.add_argument("-a", "--all", action="store_true", help="signal every process in the container's cgroup")
    p.add_argument("id")
    p.add_argument("signal", nargs="?", default="SIGTERM")


def _args_delete(p: argparse.ArgumentParser) -> None:
    p.add_argument("-f", "--force", action="store_true", help="kill it first, whatever its status")
    p.add_argument("id")


def _args_list(p: argparse.ArgumentParser) -> None:
    p.add_argument("-f", "--format", choices=("table", "json"), default="table")
    p.add_argument("-q", "--quiet", action="store_true", help="print only the ids")


def _args_ps(p: argparse.ArgumentParser) -> None:
    p.add_argument("-f", "--format", choices=("table", "json"), default="table")
    p.add_argument("id")
    p.add_argument("ps_args", nargs="*", help="arguments for ps(1) after '--' (default -ef)")


def _args_logs(p: argparse.ArgumentParser) -> None:
    p.add_argument("-f", "--follow", action="store_true", help="keep printing new output")
    p.add_argument("id")


VERBS: dict[str, tuple[str, Callable[[argparse.ArgumentParser], None]]] = {
    "spec": ("write a default OCI config.json in the bundle (like 'runc spec')", _args_spec),
    "create": ("create a container: set up, with the program not yet run", _args_create),
    "start": ("start a created container (run its program)", _args_id),
    "run": ("create and start a container", lambda p: _args_create(p, run=True)),
    "exec": ("run a new process inside a running container", _args_exec),
    "kill": ("send a signal to the container's init (default SIGTERM)", _args_kill),
    "delete": ("delete a stopped container and its resources", _args_delete),
    "pause": ("freeze every process of the container", _args_id),
    "resume": ("thaw a paused container", _args_id),
    "state": ("print the container's state as JSON", _args_id),
    "list": ("list containers", _args_list),
    "ps": ("list the processes of a container", _args_ps),
    "logs": ("print a detached container's stdout and stderr", _args_logs),
}


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The argument parser: one sub-command per runc verb (only ``only``'s, to start faster)."""
    parser = argparse.ArgumentParser(prog=PROG, description="declarative-ct: run and manage Linux containers")
    _add_root(parser, None)
    sub = parser.add_subparsers(dest="verb", required=True, metavar="COMMAND")
    for name, (help_, add_args) in VERBS.items():
        if only is not None and name != only:
            continue
        p = sub.add_parser(name, help=help_, description=help_)
        _add_root(p, argparse.SUPPRESS)
        add_args(p)
    return parser


def _verb(argv: Sequence[str]) -> str | None:
    """The sub-command named in ``argv`` (skipping ``--root DIR``), if it is a known one."""
    skip = False
    for arg in argv:
        if skip:
            skip = False
        elif arg == "--root":
            skip = True
        elif not arg.startswith("-"):
            return arg if arg in VERBS else None
        elif arg in ("-h", "--help"):
            return None
    return None


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``dct``; returns the exit status (``exec``/``run`` pass the container's through)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser(_verb(argv)).parse_args(argv)
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
