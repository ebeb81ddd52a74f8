"""``dct``'s argument parsing: every verb's arguments (argparse, one parser per verb: building all of
them costs start-up time), runc's global flags, options on both sides of the container id; and the
log those flags configure (``--log FILE``, ``--log-format``, ``--debug``: :func:`log`), here rather
than in a module of its own so that every ``dct`` call loads one module less."""

# Size: every verb's argument table (flags and help texts), and runc's log they configure (one module less).

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

PROG = "dct"


def _add_root(p: argparse.ArgumentParser, default: object) -> None:
    p.add_argument("--root", default=default, metavar="DIR",
                   help="state root (default $DCT_ROOT or /run/dct)")
    p.add_argument("--data-root", default=default, metavar="DIR",
                   help="where what outlives the state root goes: logs, restart records (default $DCT_DATA_ROOT, "
                        "else /var/lib/dct for /run/dct, else /var/lib/dct/roots/dct-<hash of the root>)")


def _add_log_flags(p: argparse.ArgumentParser) -> None:
    """runc's global logging flags (before the verb)."""
    p.add_argument("--log", metavar="FILE", help="also write errors (and --debug lines) to FILE, one per line")
    p.add_argument("--log-format", choices=("text", "json"), default="text",
                   help="the lines of --log: text (time=… level=… msg=…) or json (runc's: level, msg, time)")
    p.add_argument("--debug", action="store_true", help="add debug lines to the log (stderr without --log)")
    p.add_argument("-v", "--version", action=_VersionAction, help="print the version and exit")


class _VersionAction(argparse.Action):
    """``-v/--version``: runc's lines (``dct version X``, ``commit:``, ``spec:`` …), then exit 0."""

    def __init__(self, option_strings: list[str], dest: str, **kwargs: object) -> None:
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, **kwargs)

    def __call__(self, parser, namespace, values, option_string=None) -> None:  # noqa: ANN001
        from .features import version_text

        sys.stdout.write(version_text())
        parser.exit(0)


def _fd_count(text: str) -> int:
    """``--preserve-fds N``: 0 or more."""
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of file descriptors (0 or more)")
    return int(text)




def _log_size(text: str) -> int:
    """``--log-max-size``: a size as the spec's fields take it (``units.parse_size``: ``10m`` = ``10Mi``,
    every suffix binary); ``unlimited`` refused, rotation needs a limit."""
    from ..units import UNLIMITED, parse_size

    try:
        size = parse_size(text, None)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None
    if size == UNLIMITED:
        raise argparse.ArgumentTypeError(f"{text!r}: rotation needs a limit (a size such as 10m)")
    return size


def _duration(text: str) -> float:
    """``--timeout``: a duration as the spec's fields take it (``units.parse_duration``: ``60s``, ``1m30s``,
    ``500ms``, or seconds)."""
    from ..units import parse_duration

    try:
        return parse_duration(text, None)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def _args_spec(p: argparse.ArgumentParser) -> None:
    p.add_argument("-b", "--bundle", default=".", help="bundle directory (default: current directory)")
    p.add_argument("--rootless", action="store_true",
                   help="write runc's rootless shape (user namespace mapping the caller's uid, no network or "
                        "cgroup namespace, no resources, /sys bound); dct itself runs containers as root only")


def _args_preserve_fds(p: argparse.ArgumentParser) -> None:
    p.add_argument("--preserve-fds", type=_fd_count, default=0, metavar="N",
                   help="pass the caller's fds 3 … 3+N-1 on to the process as 3 … 3+N-1 (runc's; with "
                        "LISTEN_FDS/LISTEN_PID set for dct, create/run pass those first)")


def _args_create(p: argparse.ArgumentParser, run: bool = False) -> None:
    p.add_argument("-b", "--bundle", default=".", help="bundle directory holding config.json (default: .)")
    p.add_argument("--pid-file", help="write init's host PID to this file")
    p.add_argument("--monitor", action="store_true",
                   help="hand init to the state root's monitor, which reaps it and records exit.json; its "
                        "output goes to the container's log, kept per name under the data root (dct logs). "
                        "Without it, as runc: init keeps the caller's stdio and is left to the caller's "
                        "subreaper, which collects its exit status")
    p.add_argument("--log-max-size", type=_log_size, metavar="SIZE",
                   help="with --monitor: rotate the log file before it would exceed SIZE (10m, 512k; default 10m)")
    p.add_argument("--log-max-files", type=int, metavar="N",
                   help="with --monitor: log files kept per run, the current one included (default 3)")
    p.add_argument("--no-monitor", action="store_true", help=argparse.SUPPRESS)  # deprecated: the default now
    _args_preserve_fds(p)
    p.add_argument("--no-pivot", action="store_true",
                   help="move the rootfs onto / and chroot instead of pivot_root (a rootfs on a ramdisk); "
                        "weaker: the host's root stays under it, as with runc")
    p.add_argument("--no-new-keyring", action="store_true",
                   help="keep the caller's session keyring (by default init and exec'd processes join a new one)")
    if run:
        p.add_argument("-d", "--detach", action="store_true",
                       help="return once the container runs (its output: the caller's stdio, or the log files "
                            "with --monitor)")
        p.add_argument("--keep", action="store_true", help="keep the container after it exits (foreground)")
    _args_terminal(p, tty_flag=run)
    p.add_argument("id", help="container id")


def _args_terminal(p: argparse.ArgumentParser, tty_flag: bool) -> None:
    """runc's terminal options: ``--console-socket`` (create, run, exec) and ``-t/--tty`` (exec;
    on run ours: sets process.terminal)."""
    p.add_argument("--console-socket", metavar="PATH",
                   help="AF_UNIX socket that receives the pty master of a terminal process (SCM_RIGHTS); "
                        "needs process.terminal or -t, and create, run -d or exec -d")
    if tty_flag:
        p.add_argument("-t", "--tty", action="store_true",
                       help="allocate a pseudo-terminal (in the foreground: on this terminal)")


def _args_id(p: argparse.ArgumentParser) -> None:
    p.add_argument("id", help="container id")


def _args_exec(p: argparse.ArgumentParser) -> None:
    p.add_argument("-p", "--process", metavar="FILE",
                   help="an OCI process JSON object (args, env, cwd, user, capabilities, rlimits…): the whole "
                        "process, as runc exec --process; not with the command or -e/-u/-g/--cwd")
    p.add_argument("--cwd", help="working directory inside the container")
    p.add_argument("-e", "--env", action="append", default=[], help="KEY=value (repeatable)")
    p.add_argument("-u", "--user", help="uid[:gid]")
    p.add_argument("-g", "--additional-gids", action="append", type=int, default=[], help="extra group id (repeatable)")
    p.add_argument("-d", "--detach", action="store_true", help="do not wait for the process")
    p.add_argument("--pid-file", help="write the process's host PID to this file")
    _args_terminal(p, tty_flag=True)
    _args_preserve_fds(p)
    p.add_argument("id", help="container id")
    p.add_argument("command", nargs="*", help="the program and its arguments (after '--' if they look like options)")


def _args_kill(p: argparse.ArgumentParser) -> None:
    p.add_argument("-a", "--all", action="store_true", help="signal every process in the container's cgroup")
    p.add_argument("id", help="container id")
    p.add_argument("signal", nargs="?", default="SIGTERM")


def _args_delete(p: argparse.ArgumentParser) -> None:
    p.add_argument("-f", "--force", action="store_true", help="kill it first, whatever its status")
    p.add_argument("id", help="container id")


def _args_list(p: argparse.ArgumentParser) -> None:
    p.add_argument("-f", "--format", choices=("table", "json"), default="table", help="output format (default table)")
    p.add_argument("-q", "--quiet", action="store_true", help="print only the ids")


def _args_ps(p: argparse.ArgumentParser) -> None:
    p.add_argument("-f", "--format", choices=("table", "json"), default="table", help="output format (default table)")
    p.add_argument("id", help="container id")
    p.add_argument("ps_args", nargs="*", help="arguments for ps(1) after the id (default -ef)")


def _tail_count(text: str) -> int | None:
    """``--tail N``: 0 or more lines; ``all`` (docker's word): every line."""
    if text == "all":
        return None
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of lines (0 or more, or all)")
    return int(text)


def _args_logs(p: argparse.ArgumentParser) -> None:
    p.add_argument("-f", "--follow", action="store_true",
                   help="keep printing new output, across rotations, until the container stops (as docker logs -f; "
                        "a restart starts a new run: follow it again)")
    p.add_argument("--tail", type=_tail_count, metavar="N", help="only the last N lines (default: all)")
    p.add_argument("--since", metavar="WHEN",
                   help="only lines logged since WHEN: a duration before now (10m, 1h30m, 90s), an RFC 3339 time "
                        "(2026-12-07T10:00:00Z) or Unix seconds")
    p.add_argument("-t", "--timestamps", action="store_true", help="print each line's time (RFC 3339, UTC) first")
    p.add_argument("--previous", "-p", action="store_true",
                   help="the run before the current one (the output of a container before its restart or recreate)")
    p.add_argument("--stream", choices=("stdout", "stderr"), help="only this stream (default both)")
    p.add_argument("id", help="container name (its logs outlive the container)")


def _args_update(p: argparse.ArgumentParser) -> None:
    p.add_argument("-r", "--resources", metavar="FILE",
                   help="an OCI linux.resources JSON object (as runc update -r); '-' reads stdin")
    p.add_argument("--memory", metavar="SIZE", help="memory limit: bytes, 64m, 64Mi, 1g; -1 or unlimited: none")
    p.add_argument("--memory-reservation", metavar="SIZE", help="memory soft limit (same units)")
    p.add_argument("--memory-swap", metavar="SIZE", help="memory + swap limit (same units); -1: unlimited swap")
    p.add_argument("--cpu-shares", "--cpu-share", dest="cpu_shares", metavar="N", help="CPU shares (2..262144)")
    p.add_argument("--cpu-quota", metavar="USEC", help="CFS quota per period in microseconds; -1: none")
    p.add_argument("--cpu-period", metavar="USEC", help="CFS period in microseconds (1000..1000000)")
    p.add_argument("--cpuset-cpus", metavar="LIST", help="CPUs to run on, e.g. 0-1,3")
    p.add_argument("--cpuset-mems", metavar="LIST", help="memory nodes, e.g. 0")
    p.add_argument("--pids-limit", metavar="N", help="maximum number of tasks; -1: unlimited")
    p.add_argument("--blkio-weight", metavar="N", help="block IO weight (10..1000)")
    p.add_argument("id", help="container id")


def _args_events(p: argparse.ArgumentParser) -> None:
    p.add_argument("--interval", default="5s", metavar="DURATION",
                   help="time between stats events: 5s, 500ms, 1m or seconds (default 5s)")
    p.add_argument("--stats", action="store_true", help="print one stats event and exit")
    p.add_argument("id", help="container id")


def _args_validate(p: argparse.ArgumentParser) -> None:
    p.add_argument("paths", nargs="+", metavar="PATH",
                   help="spec files and directories (their *.yaml/*.yml files)")


def _args_schema(p: argparse.ArgumentParser) -> None:
    pass


def _args_features(p: argparse.ArgumentParser) -> None:
    pass


def _workers(text: str) -> int:
    """``--parallel N``: 0 (the CPU count) or more."""
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not 0 (the CPU count) or a positive number")
    return value


def _args_plan(p: argparse.ArgumentParser) -> None:
    p.add_argument("paths", nargs="+", metavar="PATH", help="spec files and directories")
    p.add_argument("--prune", action="store_true",
                   help="plan to remove our containers from these paths that no spec names any more")
    p.add_argument("--json", action="store_true", help="the plan as JSON (apply --plan FILE runs it)")


def _args_apply(p: argparse.ArgumentParser) -> None:
    p.add_argument("paths", nargs="*", metavar="PATH", help="spec files and directories")
    p.add_argument("--prune", action="store_true",
                   help="remove our containers from these paths that no spec names any more")
    p.add_argument("--dry-run", action="store_true", help="print the plan, change nothing")
    p.add_argument("--parallel", type=_workers, default=0, metavar="N",
                   help="containers set up at once (default: the CPU count)")
    p.add_argument("--plan", metavar="FILE", help="run a plan saved with 'dct plan --json' if nothing moved since")
    p.add_argument("--wait", action="store_true",
                   help="then wait until every container acted on is in its state and, where it declares health, "
                        "healthy (exit 1 naming those that are not)")
    p.add_argument("--timeout", type=_duration, default=60.0, metavar="DURATION",
                   help="how long --wait waits, and how long dependents wait for their depends_on conditions "
                        "(healthy, completed): 60s, 1m30s, 500ms, or seconds (default 60s)")


def _args_status(p: argparse.ArgumentParser) -> None:
    p.add_argument("paths", nargs="*", metavar="PATH", help="spec files and directories (desired state)")
    p.add_argument("--json", action="store_true", help="one JSON object per container")
    p.set_defaults(prune=False)


def _args_watch(p: argparse.ArgumentParser) -> None:
    p.add_argument("paths", nargs="+", metavar="PATH", help="spec files and directories (their *.yaml/*.yml files)")
    p.add_argument("--prune", action="store_true",
                   help="remove our containers whose spec file was deleted or no longer names them")
    p.add_argument("--resync", type=float, default=2.0, metavar="SECONDS",
                   help="plan and apply at least this often, to catch drift and exited containers (default 2)")
    p.add_argument("--debounce", type=float, default=0.3, metavar="SECONDS",
                   help="a changed file is read once it stayed the same this long (default 0.3)")
    p.add_argument("--parallel", type=_workers, default=0, metavar="N",
                   help="containers set up at once (default: the CPU count)")


def _args_service(p: argparse.ArgumentParser) -> None:
    p.add_argument("action", choices=("install", "uninstall", "status"),
                   help="install: write and enable the unit; uninstall: stop, disable and remove it (the containers "
                        "keep running); status: the unit and the root's supervisor")
    p.add_argument("--specs", default="/etc/dct/specs", metavar="DIR",
                   help="install: the spec directory the service watches (made if missing; default /etc/dct/specs)")
    p.add_argument("--unit-dir", default="/etc/systemd/system", metavar="DIR",
                   help="where the unit file dct.service goes (default /etc/systemd/system)")
    p.add_argument("--now", action="store_true", help="install: start it too (systemctl enable --now)")
    p.add_argument("--json", action="store_true", help="status: as a JSON object")


def _args_network(p: argparse.ArgumentParser) -> None:
    p.add_argument("action", choices=("ls", "rm"), help="ls: the bridges made here; rm NAME: delete an unused one")
    p.add_argument("name", nargs="?", help="bridge name (rm)")
    p.add_argument("-f", "--format", choices=("table", "json"), default="table", help="output format of ls")


def _args_tui(p: argparse.ArgumentParser) -> None:
    p.add_argument("paths", nargs="*", metavar="PATH",
                   help="spec files and directories: drift against them, plan → apply")
    p.add_argument("--readonly", action="store_true", help="refuse every action that changes something")
    p.add_argument("--interval", default="1s", metavar="DURATION",
                   help="refresh every DURATION: 1s, 500ms, 2 (seconds); 0.2s to 1h (default 1s)")


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
    "logs": ("print the logs of a container (made with --monitor, or by apply/watch): stdout lines to stdout, "
             "stderr lines to stderr", _args_logs),
    "update": ("change the resource limits of a running container", _args_update),
    "events": ("print stats (every interval) and OOM events of a container as JSON lines", _args_events),
    "features": ("print what this runtime supports as runtime-spec features JSON (like 'runc features')",
                 _args_features),
    "network": ("list the bridges declarative-ct made (ls), or delete one no container uses (rm NAME)",
                _args_network),
    "validate": ("check YAML container specs; print every error as file:line:col: field: message", _args_validate),
    "schema": ("print the JSON Schema of a YAML container spec", _args_schema),
    "plan": ("show what apply would do: one action per line with its class and cause (exit 2: changes)",
             _args_plan),
    "apply": ("make the containers match the YAML specs; print what was done", _args_apply),
    "status": ("desired vs observed state, drift, pid, last exit and restarts of each container", _args_status),
    "watch": ("apply the YAML specs on every change to them, and every --resync seconds (Ctrl-C stops)",
              _args_watch),
    "service": ("dct watch as a systemd service: install (write and enable the unit), uninstall, status",
                _args_service),
    "tui": ("the terminal UI: live containers, processes, stats, logs, actions, plan → apply", _args_tui),
}


# -- runc's log (--log FILE, --log-format, --debug) -------------------------------------------------
_LOG = {"path": None, "format": "text", "debug": False}


def log(level: str, message: str) -> None:
    """Write one line of runc's log: to ``--log FILE`` when given (appended), else ``debug`` lines
    only, to stderr (errors go to stderr as ``dct: …`` anyway, see :func:`_dispatch`).

    ``--log-format json`` gives runc's (logrus's) shape, which containerd's shim reads back from
    ``<bundle>/log.json``: ``{"level":"error","msg":"…","time":"<RFC 3339, UTC>"}``; ``text`` gives
    ``time="…" level=error msg="…"``. ``debug`` lines are written only with ``--debug``. A log that
    cannot be written is skipped (the error still reaches stderr).
    """
    path = _LOG["path"]
    if (level == "debug" and not _LOG["debug"]) or (path is None and level != "debug"):
        return
    import time

    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    import json

    if _LOG["format"] == "json":
        line = json.dumps({"level": level, "msg": message, "time": now}, separators=(",", ":"))
    else:
        line = f"time={json.dumps(now)} level={level} msg={json.dumps(message)}"
    if path is None:
        sys.stderr.write(line + "\n")
        return
    import os

    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o644)
        try:
            os.write(fd, (line + "\n").encode())
        finally:
            os.close(fd)
    except OSError:
        pass


def _configure_log(known: argparse.Namespace) -> None:
    _LOG.update(path=known.log or None, format=known.log_format, debug=known.debug)


class _Parser(argparse.ArgumentParser):
    """argparse with exit status 1 on a usage error, as for any other bad input (logged too)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        log("error", f"{self.prog}: {message}")  # stderr has it below: only --log's file gets it here
        self.print_usage(sys.stderr)
        self.exit(1, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    """The full parser (every verb as a sub-command): used for ``dct --help`` and unknown verbs."""
    parser = _Parser(prog=PROG, description="declarative-ct: run and manage Linux containers")
    _add_root(parser, None)
    _add_log_flags(parser)
    sub = parser.add_subparsers(dest="verb", required=True, metavar="COMMAND", parser_class=_Parser)
    for name, (help_, add_args) in VERBS.items():
        p = sub.add_parser(name, help=help_, description=help_)
        _add_root(p, argparse.SUPPRESS)
        add_args(p)
    return parser


def verb_parser(verb: str) -> argparse.ArgumentParser:
    """The parser of one verb alone (building all of them costs start-up time)."""
    help_, add_args = VERBS[verb]
    p = _Parser(prog=f"{PROG} {verb}", description=help_)
    _add_root(p, None)
    add_args(p)
    return p


_GLOBAL_WITH_VALUE = ("--root", "--data-root", "--log", "--log-format")


def _split_verb(argv: list[str]) -> tuple[list[str], str | None, list[str]]:
    """``(global options, verb, the verb's arguments)``; verb None when there is no known one."""
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg in _GLOBAL_WITH_VALUE:
            i += 2
            continue
        if arg.startswith("-"):
            i += 1
            continue
        return (argv[:i], arg, argv[i + 1:]) if arg in VERBS else (argv, None, [])
    return argv, None, []


def _split_tail(parser: argparse.ArgumentParser, args: list[str]) -> tuple[list[str], list[str]]:
    """Split ``exec ID [opts] [--] CMD...`` / ``ps ID [PS_ARGS]``: options may sit on both sides of
    the id, and the first word after the id (or everything after ``--``) starts the tail."""
    if "--" in args:
        i = args.index("--")
        return args[:i], args[i + 1:]
    takes_value = {o for a in parser._actions if a.option_strings and a.nargs != 0 for o in a.option_strings}
    positionals = 0
    i = 0
    while i < len(args):
        arg = args[i]
        if arg.startswith("-") and positionals == 1 and parser.prog.endswith(" ps"):
            return args[:i], args[i:]  # runc ps: everything after the id goes to ps(1)
        if arg.startswith("-") and arg != "-":
            i += 2 if arg in takes_value else 1
            continue
        positionals += 1
        if positionals == 2:
            return args[:i], args[i:]
        i += 1
    return args, []


def parse(argv: Sequence[str]) -> argparse.Namespace:
    """Parse ``dct`` arguments; exits 1 with a usage message on bad ones."""
    argv = list(argv)
    global_args, verb, rest = _split_verb(argv)
    root = _Parser(prog=PROG, add_help=False)
    _add_root(root, None)
    _add_log_flags(root)
    known, unknown = root.parse_known_args(global_args)
    _configure_log(known)
    if verb is None:
        return build_parser().parse_args(argv)
    parser = verb_parser(verb)
    if unknown:
        parser.error("unrecognized arguments before the command: " + " ".join(unknown))
    if verb in ("exec", "ps"):
        opts, tail = _split_tail(parser, rest)
        args = parser.parse_args(opts)
        setattr(args, "command" if verb == "exec" else "ps_args", tail)
    else:
        args = parser.parse_intermixed_args(rest)
    args.verb = verb
    if args.root is None:
        args.root = known.root
    if args.data_root is None:
        args.data_root = known.data_root
    args.log, args.log_format, args.debug = known.log, known.log_format, known.debug
    return args
