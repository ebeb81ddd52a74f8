"""The shared monitor: one lean process per state root forks every container's stage 1 and reaps every init.

Why one process and not one per container: a Python monitor costs ~8 MiB RSS (2.7 MiB of it
private) however little it does, against conmon's 1–2 MiB; shared by N containers the cost per
container is that divided by N. And since it is a fresh interpreter (exec'd, single-threaded),
creating containers from a multi-threaded caller such as the TUI never forks that caller.

Protocol (``<root>/#monitor.sock``, SOCK_SEQPACKET, peers must be root or our own uid):
the client sends one pickled request ``{"state_dir", "ctx"}`` with the fds of stage 1 attached
(SCM_RIGHTS: stdio, the sync socket, the exec fifo); the monitor forks, the child runs
``init.stage1`` with those fds, and the monitor replies ``{"pid": stage1_pid}`` or
``{"error": message}``. As a child subreaper it inherits each init when stage 1 exits, reaps it
and writes ``exit.json`` (:func:`monitor.record_exit`). It exits once it has had nothing to
watch for :data:`LINGER` seconds; a flock on the root directory keeps one monitor per root.

If the monitor is killed, running containers keep running (their inits go to the nearest
subreaper); only their exit codes are lost. The next create starts a new monitor.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import fcntl
import os
import pickle
import selectors
import signal
import socket
import struct
import sys
import time

from . import linux, monitor, procfs, store

# '#' is not allowed in a container id, so this never collides with a container's directory.
SOCKET_FILE = "#monitor.sock"
FILES = (SOCKET_FILE,)
LINGER = 10.0  # seconds the monitor stays with nothing to watch (saves a start for the next create)
LINGER_ENV = "DCT_MONITOR_LINGER"  # overrides LINGER (tests use a short one)
_CONNECT_TIMEOUT = 5.0
_RECHECK = 1.0  # seconds between looks for containers that went away without an exit to reap
_MAX_REQUEST = 1 << 20


# -- client side ---------------------------------------------------------------------------

def request_stage1(root: str, state_dir: str, ctx) -> int:
    """Have the monitor of ``root`` fork stage 1 for ``ctx`` (an ``init.InitContext``); its pid.

    The fds of ``ctx`` (stdio, sync socket, fifo) are passed over the socket; the caller keeps
    and closes its own copies. Starts the monitor if none runs.

    Raises:
        SystemError: the monitor could not be reached or started, or refused the request.
    """
    from ..errors import SystemError

    fds = [*ctx.stdio, ctx.sync.fileno(), ctx.fifo_fd]
    # Sent without live objects: the child gets the fds back by position.
    plain = dataclasses.replace(ctx, sync=None, stdio=(0, 1, 2), fifo_fd=4,
                                process=dataclasses.replace(ctx.process, stdin=None, stdout=None, stderr=None))
    payload = pickle.dumps({"state_dir": state_dir, "ctx": plain})
    for attempt in range(2):
        sock = _connect(root)
        try:
            socket.send_fds(sock, [payload], fds)
            reply = sock.recv(65536)
        except OSError as err:
            if attempt == 0 and err.errno in (errno.ECONNRESET, errno.EPIPE):
                continue  # the monitor was exiting as we came: start another
            raise SystemError(f"container monitor of {root}: {err.strerror}") from err
        finally:
            sock.close()
        if not reply and attempt == 0:
            continue
        answer = pickle.loads(reply) if reply else {"error": "the monitor closed the connection"}
        if "error" in answer:
            raise SystemError(f"container monitor of {root}: {answer['error']}")
        return answer["pid"]
    raise SystemError(f"container monitor of {root}: no answer")


def _connect(root: str) -> socket.socket:
    from ..errors import SystemError

    dirfd = os.open(root, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        # Through /proc/self/fd: a deep root would not fit in sun_path's 108 bytes.
        path = f"/proc/self/fd/{dirfd}/{SOCKET_FILE}"
        deadline = time.monotonic() + _CONNECT_TIMEOUT
        started = False
        while True:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET | socket.SOCK_CLOEXEC)
            try:
                sock.connect(path)
                return sock
            except (FileNotFoundError, ConnectionRefusedError):
                sock.close()
            if not started:
                _start(root)
                started = True
            if time.monotonic() > deadline:
                raise SystemError(f"the container monitor of {root} did not start")
            time.sleep(0.002)
    finally:
        os.close(dirfd)


def _start(root: str) -> None:
    """Start a monitor for ``root``: double fork, own session, exec a fresh interpreter."""
    pid = os.fork()
    if pid == 0:
        try:
            os.setsid()
            if os.fork() == 0:
                monitor.detach()
                os.execv(sys.executable, [sys.executable, "-m", "declarative_ct.runtime.monitord", root])
        finally:
            os._exit(0)
    os.waitpid(pid, 0)


# -- the monitor ---------------------------------------------------------------------------

class _Monitor:
    def __init__(self, root: str) -> None:
        self.root = root
        self.stage1: set[int] = set()
        self.watched: dict[str, tuple[int, int]] = {}  # state dir -> (init pid, start); 0s until state.json
        self.idle_since = time.monotonic()
        self.linger = float(os.environ.get(LINGER_ENV, LINGER))

    def serve(self) -> None:
        lock = os.open(self.root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)  # held until we exit
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return  # another monitor serves this root
        linux.prctl(linux.PR_SET_CHILD_SUBREAPER, 1)
        path = os.path.join(self.root, SOCKET_FILE)
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET | socket.SOCK_CLOEXEC)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        os.chdir(self.root)  # bind a relative name: the full path may not fit in sun_path
        old_umask = os.umask(0o077)
        try:
            listener.bind(SOCKET_FILE)
        finally:
            os.umask(old_umask)
            os.chdir("/")
        listener.listen(64)
        wake_r, wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        signal.set_wakeup_fd(wake_w)
        signal.signal(signal.SIGCHLD, lambda *_: None)
        sel = selectors.DefaultSelector()
        sel.register(listener, selectors.EVENT_READ)
        sel.register(wake_r, selectors.EVENT_READ)
        try:
            while True:
                busy = bool(self.stage1 or self.watched)
                # Busy, it still wakes now and then to notice containers destroyed or aborted meanwhile.
                events = sel.select(_RECHECK if busy else max(0.0, self.idle_since + self.linger - time.monotonic()))
                for key, _ in events:
                    if key.fileobj is listener:
                        self._accept(listener, sel)
                    else:
                        while os.read(wake_r, 512) == 512:
                            pass
                self._reap()
                if self.stage1 or self.watched:
                    self.idle_since = time.monotonic()
                elif not events and time.monotonic() >= self.idle_since + self.linger:
                    return
        finally:
            with contextlib.suppress(FileNotFoundError):  # the root may be gone
                os.unlink(path)  # still ours: the flock keeps any other monitor from binding it
            listener.close()

    def _accept(self, listener: socket.socket, sel) -> None:
        conn, _ = listener.accept()
        with conn:
            conn.settimeout(_CONNECT_TIMEOUT)
            try:
                uid = struct.unpack("3i", conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12))[1]
                if uid not in (0, os.getuid()):
                    conn.send(pickle.dumps({"error": f"uid {uid} may not create containers here"}))
                    return
                payload, fds, _, _ = socket.recv_fds(conn, _MAX_REQUEST, 8)
            except OSError:
                return
            try:
                request = pickle.loads(payload)
                pid = self._fork_stage1(request, fds, listener, conn, sel)
                reply = {"pid": pid}
            except Exception as err:  # noqa: BLE001 - any failure goes back to the client
                reply = {"error": str(err) or type(err).__name__}
            finally:
                for fd in fds:
                    os.close(fd)
            try:
                conn.send(pickle.dumps(reply))
            except OSError:
                pass

    def _fork_stage1(self, request: dict, fds: list[int], listener, conn, sel) -> int:
        from . import init

        if len(fds) != 5:
            raise ValueError(f"expected 5 fds, got {len(fds)}")
        ctx = request["ctx"]
        pid = os.fork()
        if pid == 0:
            try:
                signal.set_wakeup_fd(-1)
                signal.signal(signal.SIGCHLD, signal.SIG_DFL)
                sel.close()
                listener.close()
                ctx = dataclasses.replace(ctx, stdio=tuple(fds[:3]), fifo_fd=fds[4],
                                          sync=socket.socket(fileno=os.dup(fds[3])))
                init.stage1(ctx)
            finally:
                os._exit(1)
        self.stage1.add(pid)
        self.watched[request["state_dir"]] = (0, 0)
        return pid

    def _reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                break
            if pid in self.stage1:
                self.stage1.discard(pid)
                continue
            for state_dir in list(self.watched):
                if self._init_pid(state_dir) == pid:
                    monitor.record_exit(state_dir, pid, status)
                    del self.watched[state_dir]
                    break
            # else: an orphan of a container sharing our PID namespace, now reaped
        self._forget_gone()

    def _init_pid(self, state_dir: str) -> int:
        if not self.watched[state_dir][0]:
            try:
                saved = store.read_json(os.path.join(state_dir, store.STATE_FILE))
                self.watched[state_dir] = (saved["init_process_pid"], saved["init_process_start"])
            except (OSError, ValueError, KeyError):
                pass
        return self.watched[state_dir][0]

    def _forget_gone(self) -> None:
        """Drop containers destroyed meanwhile (or aborted creates), and inits that were never our children."""
        for state_dir in list(self.watched):
            if not os.path.isdir(state_dir):
                del self.watched[state_dir]
                continue
            pid = self._init_pid(state_dir)
            if pid and not procfs.is_alive(pid, self.watched[state_dir][1]):
                try:  # it may have died since _reap looked
                    reaped, status = os.waitpid(pid, os.WNOHANG)
                except ChildProcessError:
                    reaped = 0  # never our child: re-parented elsewhere (its monitor was killed)
                if reaped:
                    monitor.record_exit(state_dir, pid, status)
                if reaped or procfs.stat(pid) is None or procfs.stat(pid)[1] != self.watched[state_dir][1]:
                    del self.watched[state_dir]


def main() -> None:
    """``python -m declarative_ct.runtime.monitord ROOT``: serve ``ROOT`` until idle."""
    _Monitor(os.path.abspath(sys.argv[1])).serve()


if __name__ == "__main__":
    main()
