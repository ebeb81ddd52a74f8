"""``dct exec``: runc's exec, and the process it runs (from the flags with the bundle's or spec's
defaults, or a ``--process`` file)."""

from __future__ import annotations

import argparse
import json
import os
import signal

from ..configs import DEFAULT_ENV
from ..errors import ConfigInvalid, ContainerError
from ..runtime import Container, Process, specconv
from .common import extra_files, runtime_for, write_pid_file
from .foreground import exec_wait, forward_signals, restore_signals, terminal, terminal_started


def _parse_user(value: str) -> tuple[int, int | None]:
    """``"uid[:gid]"`` as numbers; gid None when absent."""
    uid, sep, gid = value.partition(":")
    try:
        return int(uid), int(gid) if sep else None
    except ValueError:
        raise ConfigInvalid(f"--user {value!r}: expected uid[:gid] as numbers") from None


def _bundle_process(container: Container) -> Process | None:
    """The init process of the bundle's config.json: runc exec takes its defaults (user, env, cwd) there."""
    bundle = container.config.label("bundle")
    if not bundle:
        return _spec_process(container)
    try:
        return specconv.load_bundle(bundle)[1]
    except ContainerError as err:
        # As runc: without the bundle we do not know the user to run as; never guess root.
        raise ContainerError(f"exec needs the container's bundle for its defaults: {err}") from None


def _spec_process(container: Container) -> Process | None:
    """For a container made by ``dct apply``: the process of the spec it was created from (its
    last-applied spec); None when made through the library: no bundle, no spec, the defaults apply."""
    from ..reconcile import last_applied

    return last_applied.exec_process(container.config)


def _process_file(path: str) -> Process:
    """``exec --process FILE``: the OCI ``process`` object in FILE as the process to run (runc's
    ``getProcess``: the file is the whole process, nothing of the bundle's is merged in).

    Parsed by :func:`specconv.exec_process`. ``apparmorProfile``/``selinuxLabel`` are dropped when
    this host has no AppArmor/SELinux (podman sends its default profile's name where it has);
    where the LSM is on they stay and are refused by name, never silently dropped.

    Raises:
        ConfigInvalid: ``--process FILE: <field>: <reason>`` (unreadable file, bad JSON, a bad field).
    """
    where = f"--process {path}"
    try:
        with open(path, encoding="utf-8") as f:
            raw = json.load(f)
    except OSError as err:
        raise ConfigInvalid(f"{where}: cannot read: {err.strerror}") from None
    except UnicodeDecodeError:
        raise ConfigInvalid(f"{where}: not UTF-8 text (is it a JSON file?)") from None
    except json.JSONDecodeError as err:
        raise ConfigInvalid(f"{where}: invalid JSON at line {err.lineno}, column {err.colno}: {err.msg}") from None
    if isinstance(raw, dict):
        for key, lsm in (("apparmorProfile", "/sys/module/apparmor/parameters/enabled"),
                         ("selinuxLabel", "/sys/fs/selinux/enforce")):
            if key in raw and not _lsm_enabled(lsm):
                raw = {k: v for k, v in raw.items() if k != key}
    try:
        return specconv.exec_process(raw)
    except ConfigInvalid as err:
        raise ConfigInvalid(f"{where}: {err}") from None


def _lsm_enabled(path: str) -> bool:
    try:
        with open(path) as f:
            return f.read().strip() not in ("N", "")
    except OSError:
        return False


def cmd_exec(args: argparse.Namespace) -> int:
    """``dct exec``: runc's exec, a new process in the container's namespaces and cgroup; exit code passes.

    The process is ``--process FILE`` (an OCI process object, whole), or the command with the
    bundle's user, env and cwd as defaults (``-u``, ``-e``, ``--cwd``, ``-g`` change them).
    """
    command = list(args.command)
    if args.process:
        given = [flag for flag, value in (("the command", command), ("--env", args.env), ("--user", args.user),
                                          ("--additional-gids", args.additional_gids), ("--cwd", args.cwd))
                 if value]
        if given:
            raise ConfigInvalid(f"exec --process: the file is the whole process; not with {', '.join(given)}")
    elif not command:
        raise ConfigInvalid("exec: give the command after the id, e.g. dct exec ID -- sh -c 'echo hi'")
    container = runtime_for(args).load(args.id)
    if args.process:
        process = _process_file(args.process)
    else:
        base = _bundle_process(container) or Process(args=command, env=list(DEFAULT_ENV), init=False)
        uid, gid = base.uid, base.gid
        if args.user:
            uid, user_gid = _parse_user(args.user)
            gid = gid if user_gid is None else user_gid  # as runc: without ":gid" the bundle's gid stays
        process = Process(args=command, env=base.env + list(args.env), cwd=args.cwd or base.cwd, uid=uid, gid=gid,
                          additional_groups=list(args.additional_gids) or base.additional_groups, init=False)
    process.extra_files = extra_files(args.preserve_fds, listen=False)[0]
    peer = terminal(args, process, args.detach)  # detached or not, the caller's stdio, as runc
    try:
        handle = container.start(process, detach=args.detach)
    except BaseException:
        if peer is not None:
            peer.close()
        raise
    finally:
        terminal_started(process)
    try:
        write_pid_file(args.pid_file, handle.pid)
    except ContainerError:
        os.kill(handle.pid, signal.SIGKILL)  # as runc: a process we cannot report must not run on
        handle.wait()
        raise
    if args.detach:
        return 0
    forward_signals(handle.pid)
    try:
        return exec_wait(peer, handle)
    finally:
        restore_signals()
