"""``dct``: runc's verbs over a declarative-ct state root.

Thin: it parses arguments (argparse), calls :mod:`declarative_ct.runtime`, and turns a
:class:`~declarative_ct.errors.ContainerError` into ``dct: <message>`` on stderr with exit 1.
Options may come before or after the container id, as with runc.

Here: the dispatch (:func:`main`, :func:`run`). The argument parsing and runc's log are
:mod:`.parser`; each verb's handler (``cmd_<verb>``) lives in the module of its family (see
:data:`VERB_MODULES`), and only that module is imported.
"""

from __future__ import annotations

import argparse
import signal
import sys
from collections.abc import Sequence

from ..errors import ContainerError, StateCorrupt
from .parser import _LOG, PROG, build_parser, log, parse, verb_parser  # noqa: F401 - build_parser, verb_parser: the CLI's API


# Verbs of the desired-state side (YAML specs, the reconciler): their handlers live in cli/desired.py.
DESIRED_STATE_VERBS = frozenset({"validate", "schema", "plan", "apply", "status", "watch"})

# runc's verbs: the module of cli/ that holds each one's handler (cmd_<verb>), by family.
VERB_MODULES = {
    "spec": "bundle", "features": "features",
    "create": "create", "run": "create", "start": "lifecycle", "kill": "lifecycle", "delete": "lifecycle",
    "pause": "lifecycle", "resume": "lifecycle",
    "exec": "exec_process",
    "state": "observe", "list": "observe", "ps": "observe", "logs": "observe", "events": "observe",
    "update": "update", "network": "network",
    "service": "service",  # dct watch as a systemd service: the unit, install/uninstall/status
}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``dct``; returns the exit status (``exec``/``run`` pass the container's through)."""
    return _dispatch(parse(sys.argv[1:] if argv is None else argv))


def _dispatch(args: argparse.Namespace) -> int:
    if getattr(args, "data_root", None):
        # --data-root as $DCT_DATA_ROOT too: the root's monitor this call may start, and any code
        # that knows only the state root (runtime.factory.default_data_root), use the same one.
        import os

        os.environ["DCT_DATA_ROOT"] = os.path.abspath(args.data_root)  # runtime.factory.DATA_ROOT_ENV
    if args.verb in DESIRED_STATE_VERBS:  # pydantic/yaml are imported only for these
        from . import desired as commands
    elif args.verb == "tui":  # Textual is imported only for this one
        from tui import cli as commands
    else:
        import importlib

        commands = importlib.import_module(f"{__package__}.{VERB_MODULES[args.verb]}")
    handler = getattr(commands, "cmd_" + args.verb)
    if _LOG["debug"]:
        log("debug", f"{PROG} {args.verb}: " + " ".join(f"{k}={v}" for k, v in sorted(vars(args).items())
                                                         if k != "verb"))
    try:
        status = handler(args) or 0
        log("debug", f"{PROG} {args.verb}: exit status {status}")
        return status
    except ContainerError as err:
        hint = ""
        if isinstance(err, StateCorrupt) and getattr(args, "id", None):
            hint = f" (dct delete --force {args.id} removes it)"
        _error(f"{err}{hint}")
        return 1
    except BrokenPipeError:  # the reader left (dct events | head -1): quietly, no flush error at exit
        import os
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except OSError as err:  # e.g. not root, a read-only or vanished state root
        _error(f"{err.strerror or err}{': ' + str(err.filename) if err.filename else ''}")
        return 1
    except KeyboardInterrupt:
        return 128 + signal.SIGINT
    except Exception as err:  # a bug: the traceback goes to stderr, the log file gets its last line
        log("error", f"{args.verb}: internal error: {type(err).__name__}: {err}")
        raise


def _error(message: str) -> None:
    """An error: ``dct: <message>`` on stderr, and a line in ``--log``'s file when given."""
    print(f"{PROG}: {message}", file=sys.stderr)
    log("error", message)


def _forks_stage1(args) -> bool:
    """Whether the verb forks stage 1 itself (exec; create/run without the monitor, runc's way),
    which then forks into the container's PID namespace."""
    if args.verb == "exec":
        return True
    return args.verb in ("create", "run") and not args.monitor


def _run_sealed() -> None:
    """Re-execute this command from the sealed image of the interpreter, unless it runs from one.

    A process the container can see must not be backed by a host file (CVE-2019-5736; see
    :mod:`declarative_ct.runtime.exeseal`). Stage 1 forked from a sealed process needs no fresh
    interpreter of its own (~55 ms); this restart costs ~9 ms once.
    """
    import os

    from ..runtime import exeseal

    if not exeseal.running_sealed():
        os.execve(exeseal.sealed_executable(), [sys.executable, *sys.orig_argv[1:]], os.environ)


def run() -> None:
    """The ``dct`` command: :func:`main` as a process, which exits with its status.

    A one-shot desired-state verb (all but ``watch``) runs without the cyclic garbage collector:
    importing pydantic and validating allocate a few hundred thousand objects, and the
    collections they trigger cost ~20 ms of an apply, for cycles the process would free at its
    exit anyway (reference counting still frees the rest). After a desired-state verb the
    process leaves without the interpreter's clean-up: tearing down what they import (pydantic,
    its models, PyYAML) takes ~25 ms, a sixth of a ``dct plan``, and nothing of ours needs it
    (state is written with os.write and closed at once; no atexit handler; watch stops its
    observer before returning). stdout and stderr are flushed first.
    """
    args = parse(sys.argv[1:])
    if _forks_stage1(args):
        _run_sealed()
    if args.verb in DESIRED_STATE_VERBS and args.verb != "watch":
        import gc

        gc.disable()
    status = _dispatch(args)
    if args.verb not in DESIRED_STATE_VERBS:
        sys.exit(status)
    import os

    if "declarative_ct.runtime.monitord" in sys.modules:  # a monitor being started: reap its middle process
        sys.modules["declarative_ct.runtime.monitord"].wait_prestarted()
    for stream in (sys.stdout, sys.stderr):
        try:
            if stream is not None:  # None: the stream was closed when we started (dct … >&-)
                stream.flush()
        except (OSError, ValueError):  # the reader left, or nothing to write to
            status = status or 1
    os._exit(status & 0xFF)


if __name__ == "__main__":
    run()
