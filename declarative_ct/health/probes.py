"""One probe of a running container: exec, HTTP GET or TCP connect; its result as the health log keeps it.

:func:`probe` runs the :class:`~.check.HealthCheck` once and returns a :func:`.record.result` entry:

- ``exec``: the command runs in the container as ``dct exec`` runs a process (libcontainer's
  setns process: its namespaces, cgroup, seccomp filter and capabilities), with the spec's user,
  env and cwd (the caller's :class:`~declarative_ct.runtime.process.Process` template; its args
  replaced). stdin is /dev/null; stdout and stderr go to one pipe, of which the first
  :data:`~.record.OUTPUT_MAX` bytes are kept (the rest is read and dropped, so a chatty command
  never blocks on a full pipe). The result's exit code is the command's (128 + signal when a
  signal ended it). On ``timeout``, the command and every process of its session (an exec'd
  process is a session leader: ``setsid`` in the runtime's exec init) get SIGKILL and are reaped;
  the result is exit code :data:`TIMEOUT_EXIT` with ``timed out after 1s`` (one still not dead
  :data:`_KILL_GRACE` later, frozen in a container paused meanwhile, is reaped by a thread of its own). The timeout bounds the
  exec's set-up too (``Container.start``'s ``timeout``): the process is in the container's PID
  namespace from its birth, and the container may stop it before it runs the command.
- ``http`` / ``tcp``: a connection to ``127.0.0.1:<port>`` made from inside the container's
  network namespace (:mod:`.netprobe`: no port needs publishing). HTTP sends a minimal ``GET``
  and reads the status line: exit code 0 when :meth:`~.check.HealthCheck.passes` accepts the
  status, else 1, output ``HTTP 200 OK``; TCP passes once the connection is made. Errors are exit
  code 1 with ``connection refused``, ``timed out after 1s``…

An exec probe goes through the runtime's fork server when one is given. A server that cannot
serve (it fails to start, goes away, ends before reporting the status: ``ForkServerError``) is
our helper's failure, not the probe's: that probe runs again as a plain exec (with its whole
timeout), the failure is said once on stderr, and the exec probes of that server go plain for
:data:`SERVER_REST` seconds before it is tried again. A probe never fails because of it.

Every wait also watches a ``cancel`` descriptor (the prober's stop): once it is readable the probe
ends at once (an exec'd command is killed and reaped), with exit code :data:`TIMEOUT_EXIT` and
``cancelled``. Errors of the probe itself (the container went away under it) are results too,
never exceptions: a probe that cannot run fails.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import select
import signal
import sys
import threading
import time
import weakref

from ..errors import ContainerError, ForkServerError
from ..runtime.process import Process
from ..units import format_duration
from . import netprobe, record
from .check import HealthCheck
from .netprobe import HOST, NamespaceLost, socket_in  # noqa: F401 - re-exported: this module's interface

TIMEOUT_EXIT = 124
"""The exit code of a probe that timed out or was cancelled (coreutils ``timeout``'s; docker's is -1)."""
_KILL_GRACE = 1.0  # seconds a killed probe command is waited for (a frozen one dies only once thawed)
_DEFAULT_PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
SERVER_REST = 30.0  # seconds exec probes go plain after their fork server failed, before it is tried again
_failed_servers: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # server -> monotonic time it failed
_failed_lock = threading.Lock()


def probe(container, check: HealthCheck, process: Process | None = None, fork_server=None,
          cancel: int = -1) -> dict:
    """Run ``check`` once against ``container`` (a running runtime ``Container``).

    Args:
        container: the runtime's :class:`~declarative_ct.runtime.Container`, running.
        check: the probe and its ``timeout`` (seconds).
        process: the exec template (the spec's user, env and cwd); None: root, ``/``, the default PATH.
        fork_server: the runtime's fork server, handed to ``Container.start`` when not None (one
            that cannot serve: a plain exec, see the module doc).
        cancel: a descriptor that turns readable when the probe must stop now (-1: none).

    Returns:
        A :func:`.record.result` entry (start and end in epoch seconds, exit code, output).

    Raises:
        NamespaceLost: an http/tcp probe could not bring its thread back to the supervisor's
            network namespace (the caller drops that thread).
    """
    start = time.time()
    if check.kind == "exec":
        code, output = _exec(container, check, process, fork_server, cancel)
    else:
        code, output = _network(container, check, cancel)
    return record.result(start, time.time(), code, output)


def timed_out(timeout: float) -> str:
    """``timed out after 1s``."""
    return f"timed out after {format_duration(timeout)}"


# -- exec -------------------------------------------------------------------------------------------


def exec_process(template: Process | None, args: list[str], stdin: int, output: int) -> Process:
    """The probe's process: ``template`` (the spec's user, env, cwd) with ``args``, not an init,
    no terminal, stdin ``stdin`` and stdout/stderr both ``output``."""
    base = template if template is not None else Process(args=list(args), env=[_DEFAULT_PATH])
    return dataclasses.replace(base, args=list(args), init=False, terminal=False, console_socket=None,
                               console_size=None, extra_files=[], stdin=stdin, stdout=output, stderr=output)


def _exec(container, check: HealthCheck, template: Process | None, fork_server, cancel: int) -> tuple[int, str]:
    """The exec probe through ``fork_server`` unless it failed lately; once more as a plain exec
    when the server could not serve (the module doc)."""
    if fork_server is not None and _resting(fork_server):
        fork_server = None
    if fork_server is None:
        return _exec_once(container, check, template, None, cancel)
    try:
        outcome = _exec_once(container, check, template, fork_server, cancel)
    except ForkServerError as err:
        _server_failed(fork_server, err)
        return _exec_once(container, check, template, None, cancel)
    with _failed_lock:
        _failed_servers.pop(fork_server, None)  # it serves again: a next failure is said again
    return outcome


def _exec_once(container, check: HealthCheck, template: Process | None, fork_server, cancel: int) -> tuple[int, str]:
    """One exec of the probe's command. Raises ForkServerError when ``fork_server`` could not serve
    it (the command then did not run, or was killed with its session)."""
    deadline = time.monotonic() + check.timeout
    read_end, write_end = os.pipe2(os.O_CLOEXEC)
    os.set_blocking(read_end, False)  # ours only: the command's end blocks (EAGAIN would fail its writes)
    devnull = os.open("/dev/null", os.O_RDONLY | os.O_CLOEXEC)
    try:
        proc = exec_process(template, list(check.command), devnull, write_end)
        kwargs = {"fork_server": fork_server} if fork_server is not None else {}
        try:
            # Bounded too: the container may stop the process before its exec (it is in its PID namespace).
            handle = container.start(proc, timeout=max(deadline - time.monotonic(), 0.001), **kwargs)
        except ForkServerError:
            raise
        except TimeoutError:
            return TIMEOUT_EXIT, timed_out(check.timeout)
        except (ContainerError, OSError) as err:
            return 126, f"exec failed: {err}"  # 126: found but not runnable (the shell's code)
        finally:
            os.close(write_end)
            write_end = -1
        return _wait_exec(container, handle, read_end, deadline, check.timeout, cancel)
    finally:
        os.close(read_end)
        os.close(devnull)
        if write_end >= 0:
            os.close(write_end)


def _resting(server) -> bool:  # noqa: ANN001 - runtime.forkserver.ForkServer
    """Whether ``server`` failed less than SERVER_REST seconds ago."""
    with _failed_lock:
        failed = _failed_servers.get(server)
    return failed is not None and time.monotonic() - failed < SERVER_REST


def _server_failed(server, err: Exception) -> None:  # noqa: ANN001 - runtime.forkserver.ForkServer
    """Note ``server``'s failure; said on stderr once while it keeps failing."""
    with _failed_lock:
        said = server in _failed_servers
        _failed_servers[server] = time.monotonic()
    if not said:
        print(f"dct: health: {err}; exec probes run as plain execs for now", file=sys.stderr)


def _wait_exec(container, handle, read_end: int, deadline: float, timeout: float, cancel: int) -> tuple[int, str]:
    """Collect the output until the process ends, the deadline passes or ``cancel`` fires."""
    # A pidfd of the command itself, for the kill: opened now, while stage 1 (its parent, which has
    # not reaped it yet unless it already ended) keeps its pid from being reused.
    try:
        target = os.pidfd_open(handle.pid)
    except OSError:
        target = -1  # already ended and reaped
    done = handle.pidfd()
    kept = bytearray()
    try:
        poller = select.poll()
        poller.register(done, select.POLLIN)
        poller.register(read_end, select.POLLIN)
        if cancel >= 0:
            poller.register(cancel, select.POLLIN)
        why = ""
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                why = timed_out(timeout)
                break
            ready = {fd for fd, _ in poller.poll(max(1, int(left * 1000)))}
            if read_end in ready and _drain(read_end, kept):
                # At end of file (the command closed its output, or ended) the pipe polls ready until
                # the process is seen ended: polling it still would spin until then.
                poller.unregister(read_end)
            if done in ready:
                break
            if cancel in ready:
                why = "cancelled"
                break
        code = TIMEOUT_EXIT
        if why:
            _kill_session(container, target, handle.pid)
            ended = select.poll()
            ended.register(done, select.POLLIN)
            if ended.poll(int(_KILL_GRACE * 1000)):
                with contextlib.suppress(ForkServerError):  # killed: its status no longer matters
                    code = handle.wait()
            else:
                # Not dead yet: frozen (its container paused meanwhile), it dies once thawed. Reaped
                # then by a thread of its own: the prober's thread (and its close) waits no longer.
                threading.Thread(target=_reap_later, args=(handle,), name="dct-reap-probe", daemon=True).start()
        else:
            try:
                code = handle.wait()
            except ForkServerError:  # the server that forked it ended first: its status is lost
                _kill_session(container, target, handle.pid)
                raise
        _drain(read_end, kept)  # what is left in the pipe (a background child may hold it open: no wait)
    finally:
        os.close(done)
        if target >= 0:
            os.close(target)
    text = kept.decode("utf-8", "replace")
    if why:
        # The reason last, where record.result's cut would drop it: the output makes room for it.
        text = text[:record.OUTPUT_MAX - len(why) - 2].rstrip()
        return TIMEOUT_EXIT, f"{text}\n{why}" if text.strip() else why
    return code, text


def _reap_later(handle) -> None:
    with contextlib.suppress(Exception):  # the fork server closed first: nothing left to reap
        handle.wait()


def _drain(fd: int, kept: bytearray) -> bool:
    """Read what the pipe holds now; keep up to OUTPUT_MAX bytes. True at EOF (no writer left)."""
    while True:
        try:
            chunk = os.read(fd, 65536)
        except BlockingIOError:
            return False
        if not chunk:
            return True
        room = record.OUTPUT_MAX - len(kept)
        if room > 0:
            kept += chunk[:room]


def _kill_session(container, target: int, pid: int) -> None:
    """SIGKILL the timed-out command and every process of its session in the container's cgroup.

    The command is a session leader (its sid is its pid); its children are in that session unless
    they made their own (a daemon). Each one is opened as a pidfd, then checked (its session read
    after the open), so a pid that was reused meanwhile is never signalled.
    """
    if target >= 0:
        with contextlib.suppress(OSError):
            signal.pidfd_send_signal(target, signal.SIGKILL)
    try:
        pids = container.processes()
    except (ContainerError, OSError):
        return
    for other in pids:
        if other == pid:
            continue
        try:
            fd = os.pidfd_open(other)
        except OSError:
            continue
        try:
            if _session(other) == pid:
                signal.pidfd_send_signal(fd, signal.SIGKILL)
        except OSError:
            pass
        finally:
            os.close(fd)


def _session(pid: int) -> int | None:
    """Field 6 of ``/proc/<pid>/stat`` (the session id, in our PID namespace); None if gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            raw = f.read()
    except OSError:
        return None
    fields = raw[raw.rfind(b")") + 2:].split()
    return int(fields[3])  # fields[0] is field 3


# -- http / tcp -------------------------------------------------------------------------------------


def _network(container, check: HealthCheck, cancel: int) -> tuple[int, str]:
    deadline = time.monotonic() + check.timeout
    try:
        sock = socket_in(container)
    except (ContainerError, OSError) as err:
        return 1, f"no network namespace: {err}"
    with sock:
        try:
            netprobe.connect(sock, (HOST, check.port), deadline, cancel)
            if check.kind == "tcp":
                return 0, f"connected to {HOST}:{check.port}"
            status, line = netprobe.http_get(sock, check, deadline, cancel)
        except TimeoutError:
            return 1, timed_out(check.timeout)
        except netprobe.Cancelled:
            return TIMEOUT_EXIT, "cancelled"
        except OSError as err:
            return 1, netprobe.describe_error(err)
    return (0 if check.passes(status) else 1), line
