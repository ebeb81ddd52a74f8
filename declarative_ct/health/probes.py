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
  network namespace, so no port needs publishing: the probing thread joins the namespace
  (``setns(CLONE_NEWNET)``, which is per thread), makes the socket, and goes back to the
  supervisor's own namespace before it connects; the socket stays in the namespace it was made
  in. The thread's mount namespace never changes: no container file is read. A container that
  shares the host's network namespace is probed in the supervisor's own. HTTP sends a minimal
  ``GET`` and reads the status line: exit code 0 when :meth:`~.check.HealthCheck.passes` accepts
  the status, else 1, output ``HTTP 200 OK``; TCP passes once the connection is made. Errors are
  exit code 1 with ``connection refused``, ``timed out after 1s``…

Every wait also watches a ``cancel`` descriptor (the prober's stop): once it is readable the probe
ends at once (an exec'd command is killed and reaped), with exit code :data:`TIMEOUT_EXIT` and
``cancelled``. Errors of the probe itself (the container went away under it) are results too,
never exceptions: a probe that cannot run fails.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import os
import select
import signal
import socket
import threading
import time

from ..errors import ContainerError
from ..runtime import linux, procfs
from ..runtime.process import Process
from ..units import format_duration
from . import record
from .check import HealthCheck

TIMEOUT_EXIT = 124
"""The exit code of a probe that timed out or was cancelled (coreutils ``timeout``'s; docker's is -1)."""
HOST = "127.0.0.1"
USER_AGENT = "dct-health"
_STATUS_LINE_MAX = 4096  # bytes read at most for an HTTP status line
_KILL_GRACE = 1.0  # seconds a killed probe command is waited for (a frozen one dies only once thawed)
_DEFAULT_PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
_own_netns = -1  # an fd of the supervisor's network namespace (opened once; the probing threads go back to it)
_own_netns_lock = threading.Lock()


class NamespaceLost(RuntimeError):
    """The probing thread could not go back to the supervisor's network namespace: it must not be used again."""


def probe(container, check: HealthCheck, process: Process | None = None, fork_server=None,
          cancel: int = -1) -> dict:
    """Run ``check`` once against ``container`` (a running runtime ``Container``).

    Args:
        container: the runtime's :class:`~declarative_ct.runtime.Container`, running.
        check: the probe and its ``timeout`` (seconds).
        process: the exec template (the spec's user, env and cwd); None: root, ``/``, the default PATH.
        fork_server: the runtime's fork server, handed to ``Container.start`` when not None.
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
                poller.unregister(read_end)  # EOF (its writers closed it): it would poll ready for good
            if done in ready:
                break
            if cancel in ready:
                why = "cancelled"
                break
        code = TIMEOUT_EXIT
        if why:
            _kill_session(container, target, handle.pid)
            if select.select([done], [], [], _KILL_GRACE)[0]:
                code = handle.wait()
            else:
                # Not dead yet: frozen (its container paused meanwhile), it dies once thawed. Reaped
                # then by a thread of its own: the prober's thread (and its close) waits no longer.
                threading.Thread(target=_reap_later, args=(handle,), name="dct-reap-probe", daemon=True).start()
        else:
            code = handle.wait()
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
            _connect(sock, (HOST, check.port), deadline, cancel)
            if check.kind == "tcp":
                return 0, f"connected to {HOST}:{check.port}"
            status, line = _http_get(sock, check, deadline, cancel)
        except TimeoutError:
            return 1, timed_out(check.timeout)
        except _Cancelled:
            return TIMEOUT_EXIT, "cancelled"
        except OSError as err:
            return 1, _describe_error(err)
    return (0 if check.passes(status) else 1), line


class _Cancelled(Exception):
    """The prober is stopping."""


def _describe_error(err: OSError) -> str:
    """``connection refused``, ``connection reset``, … (strerror, lower case)."""
    if err.errno == errno.ECONNREFUSED:
        return "connection refused"
    if err.errno == errno.ECONNRESET:
        return "connection reset"
    text = err.strerror or str(err)
    return text[:1].lower() + text[1:]


def socket_in(container) -> socket.socket:
    """A TCP socket made in ``container``'s network namespace (the supervisor's own when it has none).

    The namespace file is opened through the container's init, checked against PID reuse: a pidfd
    of the pid, then the saved start time, then ``/proc/<pid>/ns/net``, then the pidfd must show the
    process still alive (the namespace opened is its). Raises ContainerError (the init is gone) or
    OSError; NamespaceLost when the thread cannot go back (then it must not be used again).
    """
    if container.config.namespace("NEWNET") is None:
        return _nonblocking(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
    state = container.state()
    pid, start = state.init_process_pid, state.init_process_start
    pidfd = os.pidfd_open(pid)
    try:
        if not procfs.is_alive(pid, start):
            raise ContainerError(f"container {container.id}: its init is gone")
        ns = os.open(f"/proc/{pid}/ns/net", os.O_RDONLY | os.O_CLOEXEC)
        try:
            if select.select([pidfd], [], [], 0)[0]:
                raise ContainerError(f"container {container.id}: its init is gone")
            own = _own_namespace()
            linux.setns(ns, linux.CLONE_NEWNET)
            try:
                sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            finally:
                try:
                    linux.setns(own, linux.CLONE_NEWNET)
                except OSError as err:
                    raise NamespaceLost(f"setns back to the supervisor's network namespace: {err}") from err
        finally:
            os.close(ns)
    finally:
        os.close(pidfd)
    return _nonblocking(sock)


def _own_namespace() -> int:
    """An fd of the supervisor's network namespace, opened once (by the first prober thread, which
    is still in it) and kept for the process's life."""
    global _own_netns
    with _own_netns_lock:
        if _own_netns < 0:
            _own_netns = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
        return _own_netns


def _nonblocking(sock: socket.socket) -> socket.socket:
    sock.setblocking(False)
    return sock


def _wait(sock: socket.socket, events: int, deadline: float, cancel: int) -> None:
    """Until ``sock`` has ``events``; TimeoutError at ``deadline``, _Cancelled once ``cancel`` is readable."""
    poller = select.poll()
    poller.register(sock, events)
    if cancel >= 0:
        poller.register(cancel, select.POLLIN)
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError
        ready = {fd for fd, _ in poller.poll(max(1, int(left * 1000)))}
        if cancel in ready:
            raise _Cancelled
        if ready:
            return


def _connect(sock: socket.socket, address: tuple[str, int], deadline: float, cancel: int) -> None:
    code = sock.connect_ex(address)
    if code in (errno.EINPROGRESS, errno.EAGAIN):
        _wait(sock, select.POLLOUT, deadline, cancel)
        code = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
    if code:
        raise OSError(code, os.strerror(code))


def _http_get(sock: socket.socket, check: HealthCheck, deadline: float, cancel: int) -> tuple[int, str]:
    """Send ``GET path`` and read the status line: ``(status, "HTTP 200 OK")``; OSError/TimeoutError as they come."""
    request = (f"GET {check.path} HTTP/1.1\r\nHost: {HOST}:{check.port}\r\nUser-Agent: {USER_AGENT}\r\n"
               "Accept: */*\r\nConnection: close\r\n\r\n").encode("ascii", "replace")
    view = memoryview(request)
    while view:
        _wait(sock, select.POLLOUT, deadline, cancel)
        try:
            view = view[sock.send(view):]
        except BlockingIOError:
            continue
    data = bytearray()
    while b"\n" not in data and len(data) < _STATUS_LINE_MAX:
        _wait(sock, select.POLLIN, deadline, cancel)
        try:
            chunk = sock.recv(_STATUS_LINE_MAX)
        except BlockingIOError:
            continue
        if not chunk:
            break
        data += chunk
    line = bytes(data).split(b"\n", 1)[0].decode("latin-1").strip()
    version, _, rest = line.partition(" ")
    code, _, reason = rest.partition(" ")
    if not version.startswith("HTTP/") or not (len(code) == 3 and code.isdigit()):
        raise OSError(errno.EPROTO, f"not an HTTP response: {line[:80]!r}" if line else "empty response")
    return int(code), f"HTTP {code} {reason}".rstrip()
