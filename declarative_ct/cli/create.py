"""``dct create`` and ``dct run``: a container made from an OCI bundle, as runc's (``run`` in the
foreground: we are init's subreaper, forward signals, reap it, exit with its code)."""

from __future__ import annotations

import argparse
import os

from ..configs.logs import DEFAULT_MAX_FILES, DEFAULT_MAX_SIZE, LogConfig
from ..errors import ConfigInvalid, ContainerError
from ..runtime import Container, linux, monitor, specconv
from .common import extra_files, runtime_for, write_pid_file
from .foreground import (foreground_wait, forward_signals, restore_signals, terminal, terminal_failed,
                         terminal_started)


def _create(args: argparse.Namespace) -> Container:
    """Load the bundle, create and start the container; on failure nothing is left behind.

    As runc by default: init keeps our stdio (and the --preserve-fds) and, once stage 1 exits, is
    re-parented to our nearest subreaper (the caller's: conmon, a containerd shim, or ourselves
    for a foreground run), which reaps it. With ``--monitor``: the state root's monitor forks and
    reaps init and records exit.json; init's stdin is /dev/null and its output goes to its log
    (rotated by ``--log-max-size``/``--log-max-files``).
    """
    if args.monitor and args.no_monitor:
        raise ConfigInvalid("--monitor and --no-monitor: give one (--no-monitor is the default now)")
    log = _log_config(args)
    if os.geteuid() != 0:
        raise ContainerError("dct runs containers as root only (rootless containers are not supported)")
    config, process = specconv.load_bundle(args.bundle)
    config.no_pivot_root = args.no_pivot
    config.no_new_keyring = args.no_new_keyring
    if args.monitor:
        if args.preserve_fds:
            raise ConfigInvalid("--preserve-fds: not with --monitor (the fds are the caller's, for its container)")
    else:
        process.stdin, process.stdout, process.stderr = 0, 1, 2
        process.extra_files, listen_env = extra_files(args.preserve_fds, listen=True)
        process.env = process.env + listen_env
    detached = getattr(args, "verb", "create") != "run" or args.detach  # a foreground run keeps our terminal
    args.console_peer = terminal(args, process, detached)
    rt = runtime_for(args)
    try:
        container = rt.create(args.id, config)
    except BaseException:
        terminal_failed(args, process)
        raise
    try:
        container.start(process, monitor=args.monitor, log=log)
        write_pid_file(args.pid_file, container.state().init_process_pid)
    except BaseException as err:
        terminal_failed(args, process)
        rt.cleanup(args.id)
        if os.path.isdir(container.state_dir):  # started: state.json exists, so cleanup left it
            container.destroy(force=True)
        if hasattr(err, "renamed"):  # an error about a resources field: name it as the bundle's key
            where = f"{os.path.join(os.path.abspath(args.bundle), 'config.json')}: linux.resources"
            raise err.renamed(specconv.oci_names(where)) from None
        raise
    terminal_started(process)
    return container


def _log_config(args: argparse.Namespace) -> LogConfig | None:
    """The log rotation of ``--log-max-size``/``--log-max-files`` (None: neither given).

    Raises:
        ConfigInvalid: given without ``--monitor`` (nothing copies the output then), or out of range
            (naming the flag).
    """
    size, files = getattr(args, "log_max_size", None), getattr(args, "log_max_files", None)
    if size is None and files is None:
        return None
    if not args.monitor:
        raise ConfigInvalid("--log-max-size/--log-max-files: only with --monitor (without it the "
                            "container's output is the caller's stdio, not a log)")
    config = LogConfig(DEFAULT_MAX_SIZE if size is None else size, DEFAULT_MAX_FILES if files is None else files)
    try:
        config.validate()
    except ConfigInvalid as err:
        raise ConfigInvalid(str(err).replace("log.max_size", "--log-max-size")
                            .replace("log.max_files", "--log-max-files")) from None
    return config


def cmd_create(args: argparse.Namespace) -> int:
    """``dct create``: runc's create; the container is left ``created`` (init blocked on the exec fifo).

    Init keeps the caller's stdio and goes to the caller's subreaper; ``--monitor`` hands it to
    the state root's monitor instead (exit.json, the log files).
    """
    _create(args)
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    """``dct run``: create + start.

    ``-d``: return once it runs (init left to the caller's subreaper, or the monitor with
    ``--monitor``). In the foreground, as runc: we are init's subreaper, forward signals, reap it,
    exit with its code and delete it (unless --keep).
    """
    if args.monitor and not args.detach:
        raise ConfigInvalid("run --monitor needs -d: a foreground run waits for the container itself "
                            "(use --keep to keep it, with its exit.json)")
    if args.detach:
        container = _create(args)
        try:
            container.exec()
        except ContainerError:
            container.destroy(force=True)
            raise
        return 0
    # Foreground, like runc run: we are the subreaper and monitor, forward signals, reap, record.
    linux.prctl(linux.PR_SET_CHILD_SUBREAPER, 1)
    container = _create(args)
    pid = container.state().init_process_pid
    forward_signals(pid)
    try:
        container.exec()
        status = foreground_wait(args, pid)
    except BaseException:
        container.stop()  # never leave a container behind a failed foreground run
        if not args.keep:
            container.destroy()
        raise
    finally:
        restore_signals()
    monitor.record_exit(container.state_dir, pid, status)
    code = monitor.exit_record(pid, status)["exit_code"]
    if not args.keep:
        container.destroy()
    return code
