"""A probe's socket in a container's network namespace, and the TCP connect and HTTP GET over it.

:func:`socket_in` makes the socket from inside the container's network namespace, so no port
needs publishing: the probing thread joins the namespace (``setns(CLONE_NEWNET)``, which is per
thread), makes the socket, and goes back to the supervisor's own namespace before it connects;
the socket stays in the namespace it was made in. The thread's mount namespace never changes: no
container file is read. A container that shares the host's network namespace is probed in the
supervisor's own. :func:`connect` and :func:`http_get` (a minimal ``GET``, the status line read)
wait on the socket until a deadline (TimeoutError) and watch a ``cancel`` descriptor
(:class:`Cancelled`). :mod:`.probes` turns their outcome into a result.
"""

from __future__ import annotations

import errno
import os
import select
import socket
import threading
import time

from ..errors import ContainerError
from ..runtime import linux, procfs
from .check import HealthCheck

HOST = "127.0.0.1"
USER_AGENT = "dct-health"
_STATUS_LINE_MAX = 4096  # bytes read at most for an HTTP status line
_own_netns = -1  # an fd of the supervisor's network namespace (opened once; the probing threads go back to it)
_own_netns_lock = threading.Lock()


class NamespaceLost(RuntimeError):
    """The probing thread could not go back to the supervisor's network namespace: it must not be used again."""


class Cancelled(Exception):
    """The prober is stopping."""


def describe_error(err: OSError) -> str:
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
            if _readable(pidfd):
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
            raise Cancelled
        if ready:
            return


def connect(sock: socket.socket, address: tuple[str, int], deadline: float, cancel: int) -> None:
    """Connect the non-blocking ``sock`` to ``address`` (host, port) by ``deadline`` (monotonic
    seconds). Raises OSError (its errno: ECONNREFUSED…), TimeoutError, :class:`Cancelled`."""
    code = sock.connect_ex(address)
    if code in (errno.EINPROGRESS, errno.EAGAIN):
        _wait(sock, select.POLLOUT, deadline, cancel)
        code = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
    if code:
        raise OSError(code, os.strerror(code))


def http_get(sock: socket.socket, check: HealthCheck, deadline: float, cancel: int) -> tuple[int, str]:
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


def _readable(fd: int) -> bool:
    """Whether ``fd`` polls readable now (poll, not select: a supervisor with many files open has
    descriptors past select's FD_SETSIZE, 1024)."""
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    return bool(poller.poll(0))
