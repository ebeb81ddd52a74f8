"""The ``dct`` verbs: one function per command, each a thin call into the runtime."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import sys
import time

from ..configs import DEFAULT_ENV
from ..errors import ConfigInvalid, ContainerError, ContainerNotExists
from ..errors import SystemError as ContainerSystemError
from ..runtime import Container, Process, Runtime, Status
from ..runtime import linux, monitor, specconv, store
from ..runtime.factory import default_root
from ..configs.signals import parse_signal
from ..runtime.state import allowed_ops

# Signals a foreground run/exec forwards to the container's process (runc forwards all but these).
_NOT_FORWARDED = {signal.SIGCHLD, signal.SIGWINCH, signal.SIGURG, signal.SIGKILL, signal.SIGSTOP}


def _runtime(args: argparse.Namespace) -> Runtime:
    return Runtime(getattr(args, "root", None) or default_root())


def _write_pid_file(path: str | None, pid: int) -> None:
    """Write ``pid`` to ``path`` atomically (temp file + rename, as runc's createPidFile)."""
    if not path:
        return
    path = os.path.abspath(path)
    tmp = os.path.join(os.path.dirname(path), "." + os.path.basename(path))
    try:
        with open(tmp, "w") as f:
            f.write(str(pid))
        os.rename(tmp, path)
    except OSError as err:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise ContainerError(f"--pid-file {path}: {err.strerror}") from None


def cmd_spec(args: argparse.Namespace) -> int:
    """``dct spec``: write ``specconv.example_spec()`` as ``<bundle>/config.json`` (refuses to overwrite);
    ``--rootless``: runc's rootless shape of it (:func:`rootless_spec`)."""
    path = os.path.join(args.bundle, "config.json")
    if os.path.exists(path):
        raise ContainerError(f"{path} exists: remove it first")
    spec = specconv.example_spec()
    if args.rootless:
        rootless_spec(spec)
    try:
        with open(path, "w") as f:
            json.dump(spec, f, indent="\t")
            f.write("\n")
    except OSError as err:
        raise ContainerError(f"cannot write {path}: {err.strerror}") from None
    return 0


def rootless_spec(spec: dict) -> None:
    """Change ``spec`` (an :func:`specconv.example_spec`) in place into runc's ``spec --rootless`` shape:
    a user namespace mapping container root to the caller's uid and gid (one id each), no network or
    cgroup namespace, no ``linux.resources``, ``/sys`` bound from the host (a user namespace may not
    mount sysfs without its own network namespace) and ``/dev/pts`` without ``gid=5``.

    dct writes it for runc's callers; it runs containers as root only (create refuses otherwise).
    """
    linux = spec["linux"]
    linux["namespaces"] = [ns for ns in linux["namespaces"] if ns["type"] not in ("network", "cgroup")]
    linux["namespaces"].append({"type": "user"})
    linux["uidMappings"] = [{"containerID": 0, "hostID": os.geteuid(), "size": 1}]
    linux["gidMappings"] = [{"containerID": 0, "hostID": os.getegid(), "size": 1}]
    linux.pop("resources", None)
    mounts = []
    for mount in spec["mounts"]:
        if mount["destination"] == "/sys":
            mount = {"destination": "/sys", "type": "none", "source": "/sys",
                     "options": ["rbind", "nosuid", "noexec", "nodev", "ro"]}
        elif mount["destination"] == "/dev/pts":
            mount = dict(mount, options=[o for o in mount["options"] if not o.startswith("gid=")])
        elif mount["type"] == "cgroup":
            continue
        mounts.append(mount)
    spec["mounts"] = mounts


def version_text() -> str:
    """``dct -v``: runc's lines, ``dct version X``, ``commit: <git>``, ``spec: <runtime-spec version>``,
    then ``python:`` (runc says ``go:``) and ``libseccomp:`` when the library loads."""
    import platform

    from .. import __version__
    from ..configs import OCI_VERSION

    lines = [f"dct version {__version__}", f"commit: {_commit()}", f"spec: {OCI_VERSION}",
             f"python: {platform.python_version()}"]
    libseccomp = _libseccomp_version()
    if libseccomp:
        lines.append(f"libseccomp: {libseccomp}")
    return "\n".join(lines) + "\n"


def _commit() -> str:
    """The git commit of this checkout (``git describe``-like, ``-dirty`` when changed); ``unknown``
    for an installed copy or without git."""
    import subprocess

    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    if not os.path.exists(os.path.join(repo, ".git")):
        return "unknown"
    try:
        out = subprocess.run(["git", "-C", repo, "describe", "--always", "--dirty"], capture_output=True,
                             text=True, timeout=5, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    return out.stdout.strip() if out.returncode == 0 and out.stdout.strip() else "unknown"


def _libseccomp_version() -> str:
    """``major.minor.micro`` of the system's libseccomp (``seccomp_version()``); '' when it cannot load."""
    import ctypes

    try:
        lib = ctypes.CDLL("libseccomp.so.2")
        lib.seccomp_version.restype = ctypes.POINTER(ctypes.c_uint * 3)
        major, minor, micro = lib.seccomp_version().contents
    except (OSError, AttributeError, ValueError):
        return ""
    return f"{major}.{minor}.{micro}"


def features() -> dict:
    """runc's ``features`` JSON (runtime-spec ``features.md``): what this runtime implements.

    ``ociVersionMin``/``Max``: the config versions we read; ``mountOptions``: the options a mount
    may carry (flags and propagation; other words are filesystem data, passed as they are);
    ``linux.namespaces``/``capabilities``: the ones we create and set; cgroup v1 and v2 drivers,
    no systemd one; seccomp with the actions, operators and architectures we compile; no
    AppArmor or SELinux; ``hooks``: the six hook points. Derived from the tables the config is
    checked with, so it says what a config.json is accepted with.
    """
    from ..configs import CAPABILITIES, HOOK_NAMES, OCI_VERSION
    from ..configs import seccomp as seccomp_config
    from ..configs.mountflags import OPTION_FLAGS, PROPAGATION_FLAGS, RECURSIVE_ATTR_FLAGS

    options = sorted((set(OPTION_FLAGS) | set(PROPAGATION_FLAGS) | set(RECURSIVE_ATTR_FLAGS) | {"tmpcopyup"})
                     - specconv.UNSUPPORTED_MOUNT_OPTIONS)
    libseccomp = _libseccomp_version()
    out = {
        "ociVersionMin": "1.0.0",
        "ociVersionMax": OCI_VERSION,
        "hooks": list(HOOK_NAMES),
        "mountOptions": options,
        "linux": {
            "namespaces": sorted(specconv.NAMESPACE_MAP),
            "capabilities": sorted(CAPABILITIES, key=CAPABILITIES.__getitem__),
            "cgroup": {"v1": True, "v2": True, "systemd": False, "systemdUser": False},
            "seccomp": {"enabled": bool(libseccomp), "actions": sorted(seccomp_config.ACTIONS),
                        "operators": sorted(seccomp_config.OPERATORS),
                        "archs": sorted(seccomp_config.ARCHITECTURES)},
            "apparmor": {"enabled": False},
            "selinux": {"enabled": False},
        },
        "annotations": {"org.declarative-ct.version": _package_version()},
    }
    if libseccomp:
        out["annotations"]["io.github.seccomp.libseccomp.version"] = libseccomp
    return out


def _package_version() -> str:
    from .. import __version__

    return __version__


def cmd_features(args: argparse.Namespace) -> int:
    """``dct features``: :func:`features` as indented JSON (as ``runc features``)."""
    sys.stdout.write(json.dumps(features(), indent=4) + "\n")
    return 0


def _extra_files(count: int, listen: bool) -> tuple[list[int], list[str]]:
    """``(fds, env)``: the caller's fds a process gets as 3, 4, … (runc's ``ExtraFiles``), and what to
    add to its env.

    ``count`` is ``--preserve-fds N``: the caller's fds 3 … 3+N-1. With ``listen`` (create/run) and
    systemd's socket activation aimed at us (``LISTEN_PID`` our pid, ``LISTEN_FDS`` L), as runc: fds
    3 … 3+L-1 go first, the preserved ones after them, and the env gets ``LISTEN_FDS=L`` and
    ``LISTEN_PID=1`` (init is PID 1). Raises ConfigInvalid naming a fd that is not open.
    """
    env: list[str] = []
    listen_fds = 0
    if listen and os.environ.get("LISTEN_PID") == str(os.getpid()):
        listen_fds = int(os.environ.get("LISTEN_FDS", "0")) if os.environ.get("LISTEN_FDS", "").isdigit() else 0
        if listen_fds:
            env = [f"LISTEN_FDS={listen_fds}", "LISTEN_PID=1"]
    fds = list(range(3, 3 + listen_fds + count))
    for fd in fds:
        try:
            os.fstat(fd)
        except OSError as err:
            what = f"--preserve-fds {count}" if fd >= 3 + listen_fds else f"LISTEN_FDS={listen_fds}"
            raise ConfigInvalid(f"{what}: fd {fd} of the caller is not open ({err.strerror})") from None
    return fds, env


def _create(args: argparse.Namespace) -> Container:
    """Load the bundle, create and start the container; on failure nothing is left behind.

    As runc by default: init keeps our stdio (and the --preserve-fds) and, once stage 1 exits, is
    re-parented to our nearest subreaper (the caller's: conmon, a containerd shim, or ourselves
    for a foreground run), which reaps it. With ``--monitor``: the state root's monitor forks and
    reaps init and records exit.json; init's stdio is /dev/null and the log files.
    """
    if args.monitor and args.no_monitor:
        raise ConfigInvalid("--monitor and --no-monitor: give one (--no-monitor is the default now)")
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
        process.extra_files, listen_env = _extra_files(args.preserve_fds, listen=True)
        process.env = process.env + listen_env
    detached = getattr(args, "verb", "create") != "run" or args.detach  # a foreground run keeps our terminal
    args.console_peer = _terminal(args, process, detached)
    rt = _runtime(args)
    try:
        container = rt.create(args.id, config)
    except BaseException:
        _terminal_failed(args, process)
        raise
    try:
        container.start(process, monitor=args.monitor)
        _write_pid_file(args.pid_file, container.state().init_process_pid)
    except BaseException as err:
        _terminal_failed(args, process)
        rt.cleanup(args.id)
        if os.path.isdir(container.state_dir):  # started: state.json exists, so cleanup left it
            container.destroy(force=True)
        if hasattr(err, "renamed"):  # an error about a resources field: name it as the bundle's key
            where = f"{os.path.join(os.path.abspath(args.bundle), 'config.json')}: linux.resources"
            raise err.renamed(specconv.oci_names(where)) from None
        raise
    _terminal_started(process)
    return container


def _terminal(args: argparse.Namespace, process: Process, detached: bool):
    """runc's terminal rules for ``process`` (see :func:`declarative_ct.cli.tty.prepare`): our end
    of the console socket pair for a foreground terminal, else None."""
    if not (process.terminal or getattr(args, "tty", False) or getattr(args, "console_socket", None)):
        return None  # the common case pays no import
    from . import tty

    return tty.prepare(args, process, detached)


def _terminal_started(process: Process) -> None:
    """Once the runtime sent the master: close our copy of the console socket."""
    if process.console_socket is not None:
        from . import tty

        tty.release(process)


def _terminal_failed(args: argparse.Namespace, process: Process) -> None:
    _terminal_started(process)
    peer = getattr(args, "console_peer", None)
    if peer is not None:
        peer.close()
        args.console_peer = None


def _foreground_wait(args: argparse.Namespace, pid: int) -> int:
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


def _exec_wait(peer, handle) -> int:
    """Wait for a foreground exec'd process; with a terminal (``peer``), proxy ours to its pty meanwhile."""
    if peer is None:
        return handle.wait()
    from . import tty

    done = handle.pidfd()
    try:
        return tty.attach(peer, done, handle.wait)
    finally:
        os.close(done)


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
    _forward_signals(pid)
    try:
        container.exec()
        status = _foreground_wait(args, pid)
    except BaseException:
        container.stop()  # never leave a container behind a failed foreground run
        if not args.keep:
            container.destroy()
        raise
    finally:
        _restore_signals()
    monitor.record_exit(container.state_dir, pid, status)
    code = monitor.exit_record(pid, status)["exit_code"]
    if not args.keep:
        container.destroy()
    return code


def _forward_signals(pid: int) -> None:
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


def _restore_signals() -> None:
    for sig in signal.valid_signals():
        if sig in _NOT_FORWARDED or not 0 < sig < signal.SIGRTMIN:
            continue
        try:
            signal.signal(sig, signal.SIG_DFL)
        except (OSError, ValueError):
            pass


def cmd_start(args: argparse.Namespace) -> int:
    """``dct start``: release a created container (libcontainer ``Exec()``), with runc's refusals."""
    container = _runtime(args).load(args.id)
    status = container.status()
    if status == Status.STOPPED:
        if os.path.exists(os.path.join(container.state_dir, store.EXEC_FIFO)):
            container.exec()  # never released: raises, saying how init died during its set-up
        raise ContainerError("cannot start a container that has stopped")
    if status == Status.RUNNING:
        raise ContainerError("cannot start an already running container")
    if status != Status.CREATED:
        raise ContainerError(f"cannot start a container in the {status} state")
    container.exec()
    return 0


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
    container = _runtime(args).load(args.id)
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
    process.extra_files = _extra_files(args.preserve_fds, listen=False)[0]
    peer = _terminal(args, process, args.detach)  # detached or not, the caller's stdio, as runc
    try:
        handle = container.start(process, detach=args.detach)
    except BaseException:
        if peer is not None:
            peer.close()
        raise
    finally:
        _terminal_started(process)
    try:
        _write_pid_file(args.pid_file, handle.pid)
    except ContainerError:
        os.kill(handle.pid, signal.SIGKILL)  # as runc: a process we cannot report must not run on
        handle.wait()
        raise
    if args.detach:
        return 0
    _forward_signals(handle.pid)
    try:
        return _exec_wait(peer, handle)
    finally:
        _restore_signals()


def cmd_kill(args: argparse.Namespace) -> int:
    """``dct kill``: signal init (or every process with --all); default SIGTERM."""
    sig = parse_signal(args.signal)
    _runtime(args).load(args.id).signal(sig, all=args.all)
    return 0


def cmd_delete(args: argparse.Namespace) -> int:
    """``dct delete``: runc's delete rules (created is killed; running/paused need --force)."""
    rt = _runtime(args)
    try:
        container = rt.load(args.id)
    except ContainerNotExists:
        if rt.exists(args.id) and rt.cleanup(args.id):  # an aborted create: no state.json
            return 0
        if not rt.exists(args.id):
            if args.force:
                return 0
            raise
        container = rt.load(args.id)  # a create finished while we waited for its lock
    except ContainerSystemError:
        if not args.force:
            raise
        rt.cleanup(args.id, force=True)  # corrupt state.json: fall back to what the id tells
        return 0
    status = container.status()
    if not args.force and "destroy" not in allowed_ops(status):  # runc's words, not Destroy()'s
        raise ContainerError(f"cannot delete container {args.id} that is not stopped: {status}")
    # runc kills a created init too, and waits (10 s) for it to be gone before the destroy
    container.destroy(force=args.force or status == Status.CREATED, timeout=10.0)
    return 0


def cmd_pause(args: argparse.Namespace) -> int:
    """``dct pause``: freeze the container's cgroup."""
    _runtime(args).load(args.id).pause()
    return 0


def cmd_resume(args: argparse.Namespace) -> int:
    """``dct resume``: thaw the container's cgroup."""
    _runtime(args).load(args.id).resume()
    return 0


def _state_json(container: Container, owner: str = "") -> dict:
    """runc's ``containerState``: ociVersion, id, pid (0 when stopped), status, bundle, rootfs, created…"""
    oci = container.oci_state()
    st = container.state()
    out = {"ociVersion": oci["ociVersion"], "id": container.id, "pid": oci.get("pid", 0),
           "status": oci["status"], "bundle": oci["bundle"], "rootfs": container.config.rootfs,
           "created": st.created}
    if "annotations" in oci:
        out["annotations"] = oci["annotations"]
    out["owner"] = owner
    return out


def _corrupt_row(cid: str, err: Exception, owner: str = "") -> dict:
    """:func:`_state_json`'s shape for a container whose state.json cannot be read back: status
    ``unknown``, the fields it would take from the state empty, and the reason in ``error``."""
    return {"ociVersion": "", "id": cid, "pid": 0, "status": str(Status.UNKNOWN), "bundle": "", "rootfs": "",
            "created": "", "owner": owner, "error": str(err)}


def cmd_state(args: argparse.Namespace) -> int:
    """``dct state``: runc's state JSON, indented, no trailing newline."""
    sys.stdout.write(json.dumps(_state_json(_runtime(args).load(args.id)), indent=2))
    return 0


def _owner(container: Container) -> str:
    return _owner_of(container.state_dir)


def _owner_of(state_dir: str) -> str:
    import pwd
    try:
        return pwd.getpwuid(os.stat(state_dir).st_uid).pw_name
    except (KeyError, OSError):
        return ""


def _print_table(table: list[tuple[str, ...]]) -> None:
    """Rows as left-aligned columns three spaces apart (runc's tabwriter look)."""
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
    for row in table:
        print("   ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())


def cmd_list(args: argparse.Namespace) -> int:
    """``dct list``: runc's table (ID PID STATUS BUNDLE CREATED OWNER), or a JSON array (``null`` when empty).

    A container whose state.json cannot be read is listed too, with status ``unknown`` (and, in
    JSON, its ``error``), and an error line naming it goes to stderr: its processes may be running.
    """
    rt = _runtime(args)
    containers, corrupt = rt.list_with_errors()
    for cid, err in corrupt.items():
        print(f"dct: {err} (dct delete --force {cid} removes it)", file=sys.stderr)
    if args.quiet:
        for cid in sorted([c.id for c in containers] + list(corrupt)):
            print(cid)
        return 0
    rows = [_state_json(c, _owner(c)) for c in containers]
    rows += [_corrupt_row(cid, err, _owner_of(os.path.join(rt.root, cid))) for cid, err in corrupt.items()]
    rows.sort(key=lambda r: r["id"])
    if args.format == "json":
        print(json.dumps(rows or None))
        return 0
    table = [("ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER")]
    table += [(r["id"], str(r["pid"]), r["status"], r["bundle"], r["created"], r["owner"]) for r in rows]
    _print_table(table)
    return 0


def cmd_ps(args: argparse.Namespace) -> int:
    """``dct ps``: the cgroup's host PIDs as JSON, or the host's ``ps`` rows for them."""
    pids = _runtime(args).load(args.id).processes()
    if args.format == "json":
        print(json.dumps(pids))
        return 0
    import subprocess

    # As runc: run the host's ps and keep the header and the rows whose PID is in the cgroup.
    out = subprocess.run(["ps", *(args.ps_args or ["-ef"])], capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise ContainerError(f"ps {' '.join(args.ps_args or ['-ef'])} failed: {out.stderr.strip()}")
    lines = out.stdout.splitlines()
    header = lines[0].split()
    if "PID" not in header:
        raise ContainerError("ps output has no PID column")
    col = header.index("PID")
    print(lines[0])
    wanted = set(pids)
    for line in lines[1:]:
        fields = line.split()
        if len(fields) > col and fields[col].isdigit() and int(fields[col]) in wanted:
            print(line)
    return 0


def cmd_logs(args: argparse.Namespace) -> int:
    """``dct logs``: a detached container's stdout.log to stdout and stderr.log to stderr; -f follows."""
    rt = _runtime(args)
    store.validate_id(args.id)
    if not rt.exists(args.id):
        raise ContainerNotExists(f"container {args.id!r} does not exist in {rt.root}")
    state_dir = os.path.join(rt.root, args.id)
    streams = []
    for name, out in ((store.STDOUT_LOG, sys.stdout.buffer), (store.STDERR_LOG, sys.stderr.buffer)):
        try:
            streams.append((open(os.path.join(state_dir, name), "rb"), out))
        except FileNotFoundError:
            continue
    if not streams:
        raise ContainerError(f"container {args.id} has no log files: its output went to the caller's stdio "
                             "(only containers made with create --monitor or run -d --monitor have them)")
    while True:
        stopped = not args.follow or _stopped(rt, args.id)  # read once more after it stopped
        for f, out in streams:
            data = f.read()
            if data:
                out.write(data)
                out.flush()
        if stopped:
            return 0
        time.sleep(0.2)


def _stopped(rt: Runtime, container_id: str) -> bool:
    try:
        return rt.load(container_id).status() == Status.STOPPED
    except ContainerError:
        return True


# -- update / events -------------------------------------------------------------------------------
# dct update's flags, by Resources field (argparse dest == field): how the value is read.
_UPDATE_FLAGS = {"memory": "size", "memory_reservation": "size", "memory_swap": "size", "cpu_shares": "int",
                 "cpu_quota": "limit", "cpu_period": "int", "cpuset_cpus": "list", "cpuset_mems": "list",
                 "pids_limit": "limit", "blkio_weight": "int"}
def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _update_value(name: str, text: str) -> object:
    """The value of ``--<name> text`` in Resources' units; ConfigInvalid naming the flag."""
    from ..units import parse_size

    kind = _UPDATE_FLAGS[name]
    if kind != "list" and text.strip().startswith("-") and text.strip() != "-1":
        raise ConfigInvalid(f"{_flag(name)}: {text!r} is negative (-1 means unlimited where a limit can be lifted)")
    if kind == "size":
        try:
            return parse_size(text, _flag(name))
        except ValueError as err:
            raise ConfigInvalid(str(err)) from None
    if kind == "list":
        return text
    if kind == "limit" and text.strip().lower() in ("unlimited", "max"):
        return -1
    try:
        return int(text)
    except ValueError:
        hint = " or -1 for unlimited" if kind == "limit" else ""
        raise ConfigInvalid(f"{_flag(name)}: {text!r} is not an integer{hint}") from None


def _read_resources_file(path: str) -> object:
    """The JSON of ``-r FILE`` (``-`` is stdin); ConfigInvalid naming the file."""
    where = f"--resources {path}"
    try:
        if path == "-":
            text = sys.stdin.read()
        else:
            with open(path, encoding="utf-8") as f:
                text = f.read()
    except OSError as err:
        raise ConfigInvalid(f"{where}: cannot read: {err.strerror}") from None
    except UnicodeDecodeError:
        raise ConfigInvalid(f"{where}: not UTF-8 text (is it a JSON file?)") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise ConfigInvalid(f"{where}: invalid JSON at line {err.lineno}, column {err.colno}: {err.msg}") from None


def cmd_update(args: argparse.Namespace) -> int:
    """``dct update``: runc's update, the given limits applied live through ``Container.set``.

    Either flags (``--memory 64m`` …) or ``-r FILE`` (an OCI ``linux.resources`` object, ``-``
    for stdin), not both. Only the limits given change; every value is checked before any
    cgroup file is written, and a kernel refusal restores what was written. Errors name the
    flag (or the ``linux.resources`` key) and change nothing.
    """
    from ..configs import Config, Resources

    given = {name: getattr(args, name) for name in _UPDATE_FLAGS if getattr(args, name) is not None}
    if not given and args.resources is None:
        from .main import verb_parser
        verb_parser("update").error("give the limits to change (e.g. --memory 64m) or -r FILE")
    if given and args.resources is not None:
        raise ConfigInvalid(f"update: give either -r/--resources or flags ({', '.join(map(_flag, given))}), "
                            "not both")
    if args.resources is not None:
        names = {f"resources.{k}": f"--resources {args.resources}: linux.resources.{v}"
                 for k, v in specconv.OCI_RESOURCE_NAMES.items()}
        raw = _read_resources_file(args.resources)
        try:
            update = specconv.resources_from_oci(raw, devices=False, validate=False)
        except ConfigInvalid as err:
            raise err.located(f"--resources {args.resources}") from None
        if not update.limits():
            raise ConfigInvalid(f"--resources {args.resources}: sets no limit (e.g. {{\"memory\": {{\"limit\": "
                                "67108864}})")
    else:
        names = {f"resources.{k}": _flag(k) for k in _UPDATE_FLAGS}
        update = Resources(**{name: _update_value(name, text) for name, text in given.items()})
    container = _runtime(args).load(args.id)
    try:
        change = Config(rootfs=container.config.rootfs)
        change.cgroups.resources = update
        container.set(change)
    except (ConfigInvalid, ContainerSystemError) as err:  # name fields as the user typed them (flag, OCI key)
        if hasattr(err, "renamed"):
            raise err.renamed(names) from None
        raise
    return 0


def cmd_events(args: argparse.Namespace) -> int:
    """``dct events``: runc's JSON lines, ``{"type":"stats","id","data"}`` every --interval and ``oom`` at once.

    With ``--stats`` one stats line and exit. Otherwise it ends (exit 0) when the container
    stops; a stopped container is refused at the start, as by runc.
    """
    from ..runtime import events

    interval = events.parse_duration(args.interval, "--interval")
    container = _runtime(args).load(args.id)
    stream = [events.stats_event(container)] if args.stats else events.events(container, interval)
    for event in stream:
        sys.stdout.write(json.dumps(event, separators=(",", ":")) + "\n")
        sys.stdout.flush()
    return 0


def cmd_network(args: argparse.Namespace) -> int:
    """``dct network ls`` (NAME SUBNET GATEWAY CONTAINERS PRESENT, or JSON) / ``dct network rm NAME``."""
    from ..runtime import network

    root = _runtime(args).root
    if args.action == "rm":
        if not args.name:
            raise ContainerError("network rm: give the bridge's name")
        network.remove_bridge(root, args.name)
        print(args.name)
        return 0
    rows = network.bridges(root)
    if args.format == "json":
        print(json.dumps(rows))
        return 0
    table = [("NAME", "SUBNET", "GATEWAY", "CONTAINERS", "PRESENT")]
    table += [(r["name"], r["subnet"], r["gateway"], str(r["leases"]), "yes" if r["present"] else "no") for r in rows]
    _print_table(table)
    return 0
