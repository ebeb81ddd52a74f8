# Size: both ends of the fork server's protocol (the client in the owner, the server in the sealed image)
"""A pre-imported fork server for ``exec``: the exec'd process forked from a process that already
runs from the sealed image and has imported init (for exec health probes).

Why: a plain exec (:mod:`.bootstrap`) forks the caller and executes a fresh sealed interpreter
that imports init, whose stage 1 joins the container and forks again: ~60-70 ms of CPU per exec
(bench/exec_cost.py), most of it interpreter start-up and imports. A prober running 50 execs/s
would need over 3 cores for that alone. Here one helper process, started once from the sealed
image (:func:`.exeseal.sealed_executable`, as stage 1 is: ``/proc/<pid>/exe`` of it and of every
fork of it is the sealed memfd, never the host's interpreter, so CVE-2019-5736 stays closed),
imports everything stage 1 runs and serves one request per exec.

For each it joins the container's namespaces but the user namespace (:func:`.init.joined`,
restoring its own after the fork), so that its fork is born where stage 1's fork is born: in the
container's PID namespace, with the container's root and cwd (never the host's in a namespace a
container process can see). The fork runs :func:`.init.enter_exec`: the rest of stage 1 (the
cgroup through ``cgroup.procs`` opened beforehand, the user namespace, the ids) and then the same
code as stage 1's child: the same user, capabilities, no_new_privs, seccomp filter, environment,
cwd and errors. Stage 1's own fork, made only to be born in the PID namespace, is saved; the
server is the exec'd process's parent and reports its status. When the namespaces cannot be
joined or forked into (the container is gone) and for a detached exec (whose stage 1 exits at
once, leaving it to the caller's subreaper), the fork runs :func:`.init.stage1` instead, as
:func:`.bootstrap.exec_stage1` does in a sealed process: failures read exactly as without the
server.

Protocol (a SOCK_SEQPACKET socketpair; the server holds one end, its only descriptor besides
/dev/null stdio): the owner sends one message per exec, ``b"P"`` + the pickled
:class:`~.init.InitContext` without its live objects (:func:`.bootstrap.plain_context`), its
descriptors' numbers and the seccomp profile (its compiled program is in the context), or ``b"M"``
with the pickle in a memfd when it would not fit in one message, with the descriptors
(``SCM_RIGHTS``) ``[reply, sync, stdin, stdout, stderr, *extra_files, (memfd)]``: ``reply`` is the
server's end of a socketpair made for this request. On ``reply`` the server answers
``{"pid": pid}`` with a pidfd of its child attached (or ``{"error": text}`` when it could not
fork), and once it has reaped that child ``{"status": waitpid_status}``: the exec'd process's own
status, or its stage 1's (which exits with the exec'd process's exit code, 128 + signal when it
was killed): :meth:`.ExecProcess.wait` gives the same exit code either way. The same exec sends
the same bytes each time, so the server keeps the last :data:`_CACHED` contexts unpickled.

Isolation: the server is not dumpable (nor are its forks, until the program's ``execve``), and
each child closes every descriptor but its request's (the control socket, other requests'
sockets and pidfds) right after the fork, before it runs any of init. The server holds a
request's descriptors only between receiving it and the fork, imports nothing once started
(:func:`.init.no_path_imports`), checks after each fork that it is back in its own namespaces
(else it exits), and forks without CPython's after-fork hooks (:func:`_fork`: it has one thread).

Lifetime: started on first use by its owner (:class:`ForkServer`), in a session of its own (a
terminal's ^C or hang-up does not reach it). It ends when its control socket reaches EOF
(:meth:`ForkServer.close`, or the owner's death closes it) or when it finds itself re-parented
(checked every :data:`_PARENT_CHECK` s), and never lingers as an orphan. The exec'd processes
still running then stay in their containers (re-parented to the nearest subreaper, as when a
plain exec's caller dies); their :meth:`ServedProcess.wait` raises.

Process attributes that the exec'd process takes from its parent (rlimits, umask, oom_score_adj,
the session keyring with ``no_new_keyring``, controllers of no container cgroup) are the owner's
as they were when the server started: later changes in the owner do not reach exec'd processes.

Stdlib only: the server imports this module and init's, nothing else of the project.
"""

from __future__ import annotations

import array
import contextlib
import copy
import ctypes
import dataclasses
import errno
import gc
import json
import os
import pickle
import select
import signal
import socket
import sys
import threading
import time

from . import bootstrap, exeseal, linux

ENTRY = "import sys; sys.path[:0] = [sys.argv[1]]; from declarative_ct.runtime.forkserver import main; main()"
_INLINE_MAX = 64 << 10  # bytes of pickle sent in the message itself; more goes in a memfd
_MAX_FDS = 253  # the kernel's SCM_MAX_FD
_START_TIMEOUT = 10.0  # seconds for a new server to import init and say "ready"
_STOP_TIMEOUT = 5.0  # seconds close() waits for the server to exit before killing it
_PARENT_CHECK = 1.0  # seconds between the server's looks at whether its owner is still its parent
_RECV_MAX = _INLINE_MAX + 1
_CACHED = 256  # contexts the server keeps unpickled (an exec probe sends the same one each time)


class ForkServer:
    """A fork server for exec'd processes: ``Container.start(process, fork_server=srv)``.

    One helper process per object, started from the sealed image on first use (or by
    :meth:`start`), restarted when it died, stopped and reaped by :meth:`close` (also a context
    manager). Thread-safe: many threads may exec through one server at once; each request has a
    socket of its own for its answers. The owner is the process that made the object: a fork of
    it must not use it (make its own).

    Raises (from :meth:`start` and :meth:`spawn`):
        ForkServerError (a SystemError): the server cannot be started (its words), or it went away
            while forking.
        OSError: no sealed image can be made (:func:`.exeseal.sealed_executable`).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._proc = None  # subprocess.Popen of the server
        self._ctl: socket.socket | None = None
        self._owner = os.getpid()
        self._closed = False

    @property
    def pid(self) -> int | None:
        """The server's pid while one runs (None before the first use and after :meth:`close`)."""
        proc = self._proc
        return proc.pid if proc is not None and proc.returncode is None else None

    def __enter__(self) -> ForkServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start(self) -> None:
        """Start the server now if none runs (else the first :meth:`spawn` does). Raises as the class says."""
        with self._lock:
            self._control_locked()

    def close(self) -> None:
        """Stop the server and reap it (SIGKILL after :data:`_STOP_TIMEOUT` s). Exec'd processes
        still running go on in their containers, but their :meth:`ServedProcess.wait` raises
        SystemError (the server that would have reported their status is gone). Idempotent."""
        with self._lock:
            self._closed = True
            self._stop_locked()

    def spawn(self, ctx) -> ServedProcess:
        """Start the exec'd process of ``ctx`` (an ``init.InitContext`` of an exec'd process, as
        :func:`.bootstrap.fork_stage1` takes it) from the server; its :class:`ServedProcess`. As with
        ``fork_stage1``, the caller then reads the ``pid`` message and the rest on ``ctx.sync``.

        ``ctx``'s descriptors (sync socket, stdio, ``process.extra_files``) are copied to the
        server; the caller keeps and closes its own as with ``fork_stage1``. Never retried once
        the server may have received the request (the process may run); retried once on a new
        server when the old one was found gone before.

        Raises:
            ForkServerError (a SystemError): the server cannot be started, or did not fork (its reason).
            ConfigInvalid: more descriptors than one message carries.
        """
        from ..errors import ConfigInvalid, ForkServerError

        if ctx.process.init:
            raise ConfigInvalid("fork_server: serves exec'd processes (process.init false) only")
        # The descriptors' numbers are the server's own: without the caller's, the same exec
        # (a probe's) pickles to the same bytes each time, which the server keeps unpickled.
        # Nor the seccomp profile: the compiled program goes in ctx.seccomp (a third of the pickle's time).
        config = copy.copy(ctx.config)
        config.seccomp = None
        plain = bootstrap.plain_context(ctx)
        plain = dataclasses.replace(plain, config=config, stdio=(-1, -1, -1),
                                    process=dataclasses.replace(plain.process,
                                                                extra_files=[-1] * len(ctx.process.extra_files)))
        payload = pickle.dumps(plain, protocol=pickle.HIGHEST_PROTOCOL)
        fds = [ctx.sync.fileno(), *ctx.stdio, *ctx.process.extra_files]
        if len(fds) + 2 > _MAX_FDS:
            raise ConfigInvalid(f"process.extra_files: {len(ctx.process.extra_files)} descriptors, "
                                f"at most {_MAX_FDS - 6} through a fork server")
        memfd = -1
        if len(payload) > _INLINE_MAX:
            memfd = _memfd(payload)
        message = b"M" if memfd >= 0 else b"P" + payload
        try:
            for attempt in range(2):
                ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
                try:
                    ctl = self._control()
                    sent = [theirs.fileno(), *fds] + ([memfd] if memfd >= 0 else [])
                    ctl.sendmsg([message], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", sent))])
                except OSError as err:
                    ours.close()
                    if attempt == 0 and err.errno in (errno.EPIPE, errno.ECONNRESET, errno.ENOTCONN):
                        self._forget(ctl)  # it died since the last request: nothing was forked
                        continue
                    raise ForkServerError(f"fork server: {err.strerror or err}") from err
                finally:
                    theirs.close()
                return _first_answer(ours)
        finally:
            if memfd >= 0:
                os.close(memfd)
        raise ForkServerError("fork server: it kept going away")  # pragma: no cover - the loop returns or raises

    # -- the owner's side of the server's life -----------------------------------------------
    def _control(self) -> socket.socket:
        ctl, proc = self._ctl, self._proc  # read once: another thread may swap them
        if ctl is not None and proc is not None and proc.returncode is None:
            return ctl
        with self._lock:
            return self._control_locked()

    def _forget(self, ctl: socket.socket) -> None:
        """The server on ``ctl`` is gone: reap it, so that the next request starts another."""
        with self._lock:
            if self._ctl is ctl:
                self._stop_locked()

    def _control_locked(self) -> socket.socket:
        from ..errors import ForkServerError

        if self._closed:
            raise ForkServerError("fork server: closed")
        if os.getpid() != self._owner:
            raise ForkServerError("fork server: used in a fork of its owner (make a ForkServer of its own)")
        if self._ctl is not None and self._proc is not None and self._proc.poll() is None:
            return self._ctl
        self._stop_locked()
        self._proc, self._ctl = _start()
        return self._ctl

    def _stop_locked(self) -> None:
        ctl, proc = self._ctl, self._proc
        self._ctl = self._proc = None
        if ctl is not None:
            # EOF for the server even if a fork of ours holds a copy. Not closed here: another
            # thread may be sending on it (it gets EPIPE); the last reference closes it.
            with contextlib.suppress(OSError):
                ctl.shutdown(socket.SHUT_RDWR)
        if proc is not None:
            try:
                proc.wait(_STOP_TIMEOUT)
            except Exception:  # noqa: BLE001 - subprocess.TimeoutExpired: it must go all the same
                proc.kill()
                proc.wait()


class ServedProcess:
    """What a :class:`ForkServer` forked for one exec (``pid``: its host pid): the exec'd process
    itself, or its stage 1 (see the module doc).

    Not a child of the caller: :meth:`wait` takes its status from the server, :meth:`pidfd` and
    :meth:`kill` go through a pidfd the server opened before it could be reaped (so neither can
    reach a reused pid). Used by one thread.
    """

    def __init__(self, pid: int, pidfd: int, reply: socket.socket) -> None:
        self.pid = pid
        self._pidfd = pidfd
        self._reply = reply
        self._status: int | None = None

    def pidfd(self) -> int:
        """A new pidfd of the process (readable once it has exited); the caller closes it. Raises OSError."""
        if self._pidfd < 0:
            raise OSError(errno.EBADF, "the pidfd is closed (after wait() or close())")
        return os.dup(self._pidfd)

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Send ``sig`` to the process (nothing once it is gone)."""
        if self._pidfd >= 0:
            with contextlib.suppress(ProcessLookupError):
                signal.pidfd_send_signal(self._pidfd, sig)

    def wait(self) -> int:
        """Block until the process has ended; its ``waitpid`` status (the same on every call).

        Raises:
            ForkServerError (a SystemError): the server ended before the process did (no status will come).
        """
        from ..errors import ForkServerError

        if self._status is None:
            try:
                answer = _recv_json(self._reply)
            except OSError as err:
                raise ForkServerError(f"fork server: waiting for process {self.pid}: {err.strerror or err}") from err
            if answer is None or "status" not in answer:
                raise ForkServerError(f"fork server: it ended before process {self.pid} of the exec did")
            self._status = int(answer["status"])
            self.close()
        return self._status

    def close(self) -> None:
        """Release the pidfd and the answer socket (done by :meth:`wait`; waits for nothing)."""
        pidfd, self._pidfd = self._pidfd, -1
        if pidfd >= 0:
            os.close(pidfd)
        self._reply.close()

    def __del__(self) -> None:
        with contextlib.suppress(Exception):
            self.close()


def _first_answer(ours: socket.socket) -> ServedProcess:
    """The server's first answer to a request on ``ours``: the process it forked (its
    :class:`ServedProcess`), or why not."""
    from ..errors import ForkServerError

    try:
        msg, fds = _recv_fds(ours, 4096, 1)
    except OSError as err:
        ours.close()
        raise ForkServerError(f"fork server: {err.strerror or err}") from err
    try:
        answer = json.loads(msg) if msg else {}
    except ValueError:
        answer = {}
    if "pid" in answer and len(fds) == 1:
        return ServedProcess(int(answer["pid"]), fds[0], ours)
    for fd in fds:
        os.close(fd)
    ours.close()
    raise ForkServerError(f"fork server: {answer.get('error') or 'it went away before forking'}")


def _start():
    """Start a server: the sealed interpreter running :func:`main`, as subprocess does (fork+exec
    in C, safe from a multi-threaded owner), until it says ``ready``. ``(Popen, control socket)``.

    Raises:
        ForkServerError (a SystemError): it failed to start (its words) or said nothing in time.
        OSError: no sealed image.
    """
    import subprocess

    from ..errors import ForkServerError

    exe = exeseal.sealed_executable()
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    try:
        # subprocess, not posix_spawn: glibc's leaves its internal signals ignored in the child.
        proc = subprocess.Popen([sys.executable, "-I", "-S", "-c", ENTRY, bootstrap._PACKAGE_PARENT,
                                 str(theirs.fileno())], executable=f"/proc/self/fd/{exe}",
                                pass_fds=(exe, theirs.fileno()), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, start_new_session=True, cwd="/")
    except BaseException:
        ours.close()
        raise
    finally:
        theirs.close()
    ready, _, _ = select.select([ours], [], [], _START_TIMEOUT)
    words = ours.recv(4096) if ready else b""
    if words != b"ready":
        ours.close()
        proc.kill()
        proc.wait()
        said = words.decode(errors="replace") or "it said nothing"
        raise ForkServerError(f"fork server failed to start: {said}")
    return proc, ours


def _memfd(data: bytes) -> int:
    return bootstrap.memfd_of("dct-exec", data)


def _recv_fds(sock: socket.socket, size: int, maxfds: int) -> tuple[bytes, list[int]]:
    """One message and its descriptors, received close-on-exec (``MSG_CMSG_CLOEXEC``: Python
    3.11's ``socket.recv_fds`` drops its flags). Descriptors of a truncated message are closed
    and the message refused (OSError EMSGSIZE)."""
    fds = array.array("i")
    msg, ancdata, flags, _ = sock.recvmsg(size, socket.CMSG_SPACE(maxfds * fds.itemsize), socket.MSG_CMSG_CLOEXEC)
    for level, kind, data in ancdata:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds.frombytes(data[:len(data) - len(data) % fds.itemsize])
    if flags & (socket.MSG_TRUNC | socket.MSG_CTRUNC):
        for fd in fds:
            os.close(fd)
        raise OSError(errno.EMSGSIZE, "a message too large for the fork server's protocol")
    return msg, list(fds)


def _recv_json(sock: socket.socket) -> dict | None:
    """The next JSON answer on ``sock``; None at EOF or for anything else."""
    msg = sock.recv(4096)
    try:
        answer = json.loads(msg) if msg else None
    except ValueError:
        return None
    return answer if isinstance(answer, dict) else None


# -- the server ------------------------------------------------------------------------------

def main() -> None:
    """The server's entry in the sealed interpreter (``argv``: package parent, control socket fd).

    Imports what stage 1 runs, says ``ready`` on the control socket and serves it until EOF or
    until its owner is gone. Exits 1 (after saying why) when not run from a sealed image.
    """
    ctl = socket.socket(fileno=int(sys.argv[2]))
    try:
        # Nothing of ours may be reachable through /proc/<pid> by a container (its forks inherit it).
        linux.prctl(linux.PR_SET_DUMPABLE, 0)
        if not exeseal.running_sealed():
            raise RuntimeError("not running from a sealed image: refusing to fork into containers")
        linux.close_fds_except({ctl.fileno()})
        from . import init  # noqa: F401 - everything stage 1 runs, once for all its forks
        from .cgroups import v1, v2  # noqa: F401 - the managers a context carries

        if len(os.listdir("/proc/self/task")) != 1:
            raise RuntimeError("started with threads: refusing to fork without CPython's after-fork hooks")
        linux.last_cap()  # cached: each stage 1 would read /proc/sys/kernel/cap_last_cap again
        # From here on the server imports nothing (a context naming a module not loaded yet is
        # refused), and each fork finds the finders already gone (stage 1 empties them).
        init.no_path_imports()
        with contextlib.suppress(OSError), open("/proc/self/comm", "w") as f:
            f.write("dct-forkserver")
    except BaseException as err:  # noqa: BLE001 - the owner shows it
        with contextlib.suppress(OSError):
            ctl.send(f"{type(err).__name__}: {err}".encode())
        os._exit(1)
    gc.collect()
    gc.freeze()  # the forks neither scan nor copy what is here now
    ctl.send(b"ready")
    try:
        _Server(ctl).serve()
    except BaseException:  # noqa: BLE001 - _Fatal, or a bug: the owner starts another on its next request
        os._exit(1)
    os._exit(0)


_NAMESPACES = ("ipc", "uts", "net", "mnt", "cgroup", "pid_for_children")  # what init.joined changes


def _own_namespaces() -> list[str]:
    return [os.readlink(f"/proc/self/ns/{name}") for name in _NAMESPACES]


class _Fatal(BaseException):
    """The server can no longer fork safely (its own PID namespace could not be restored)."""


class _Server:
    def __init__(self, ctl: socket.socket) -> None:
        self.ctl = ctl
        # payload -> (context, its form for a fork inside its PID namespace), oldest first
        self.contexts: dict[bytes, tuple[object, object]] = {}
        self.namespaces = _own_namespaces()
        self.parent = os.getppid()
        self.children: dict[int, tuple[int, socket.socket]] = {}  # pidfd -> (child pid, reply socket)
        self.poller = select.poll()
        self.poller.register(ctl, select.POLLIN)

    def serve(self) -> None:
        last_check = time.monotonic()
        while True:
            for fd, _ in self.poller.poll(_PARENT_CHECK * 1000):
                if fd == self.ctl.fileno():
                    if not self._request():
                        return  # EOF: the owner closed us or died
                else:
                    self._reap(fd)
            now = time.monotonic()
            if now - last_check >= _PARENT_CHECK:
                last_check = now
                if os.getppid() != self.parent:
                    return  # the owner died and a copy of the control socket lives on elsewhere

    def _request(self) -> bool:
        try:
            msg, fds = _recv_fds(self.ctl, _RECV_MAX, _MAX_FDS)
        except InterruptedError:
            return True
        except OSError as err:
            return err.errno == errno.EMSGSIZE  # a request we refused (its fds closed); else the socket is gone
        if not msg and not fds:
            return False
        if not fds:
            return True  # no reply socket: nobody to answer
        reply = socket.socket(fileno=fds[0])
        try:
            pid = self._fork(msg, fds[1:])
        except Exception as err:  # noqa: BLE001 - the requester gets it; we keep serving
            with contextlib.suppress(OSError):
                reply.send(json.dumps({"error": f"{type(err).__name__}: {err}"}).encode())
            reply.close()
            return True
        finally:
            for fd in fds[1:]:
                os.close(fd)
        pidfd = os.pidfd_open(pid)
        self.children[pidfd] = (pid, reply)
        self.poller.register(pidfd, select.POLLIN)
        with contextlib.suppress(OSError):
            socket.send_fds(reply, [json.dumps({"pid": pid}).encode()], [pidfd])
        return True

    def _fork(self, msg: bytes, fds: list[int]) -> int:
        """Fork for the request ``msg`` with its descriptors ``fds`` (sync, stdio, extra files[, memfd]):
        the exec'd process itself (:meth:`_fork_exec`), or stage 1 when that cannot be."""
        from . import init

        if len(fds) < 4:
            raise ValueError(f"a request with {len(fds)} descriptors, not at least 4")
        if msg[:1] == b"M":
            data = _read_all(fds[-1])
            fds = fds[:-1]
        elif msg[:1] == b"P":
            data = msg[1:]
        else:
            raise ValueError(f"unknown request {msg[:1]!r}")
        plain, in_container = self._context(data)
        if len(fds) - 4 != len(plain.process.extra_files):
            raise ValueError(f"{len(fds) - 4} extra descriptors for {len(plain.process.extra_files)} extra files")
        if not plain.detach:
            pid = self._fork_exec(plain, in_container, fds)
            if pid > 0:
                return pid
        # A detached process is left to the caller's subreaper by a stage 1 that exits at once, and
        # a PID namespace we could not fork into makes stage 1 fail as it does without us.
        return self._fork_child(init.stage1, plain, fds)

    def _context(self, data: bytes) -> tuple[object, object]:
        """The context pickled in ``data`` and its form for :func:`.init.enter_exec` (only the user
        namespace left to join), unpickled once for all requests with the same bytes (the
        children change only their copies)."""
        from . import init

        cached = self.contexts.pop(data, None)
        if cached is None:
            plain = pickle.loads(data)
            if not isinstance(plain, init.InitContext) or plain.process.init:
                raise ValueError("not the context of an exec'd process")
            cached = (plain, dataclasses.replace(plain, join=[j for j in plain.join if j[0] == "NEWUSER"]))
            if len(self.contexts) >= _CACHED:
                del self.contexts[next(iter(self.contexts))]
        self.contexts[data] = cached  # last: the most recently used
        return cached

    def _fork_exec(self, plain, in_container, fds: list[int]) -> int:
        """Fork the exec'd process inside the container's namespaces (:func:`.init.joined`: all
        but the user namespace, which the child joins; born in the PID namespace, its root and
        cwd the container's): stage 1's fork, made only to be born there, is saved. We are its
        parent and report its own status (stage 1 would exit with its exit code: the same).
        Returns its pid, or -1 when the cgroup or a namespace cannot be reached or forked into
        (the container is gone): nothing was forked.

        The child sends nothing on the sync socket before our ``pid`` message is out (the gate).
        """
        from . import init, sync

        held: list[int] = []  # cgroup.procs files, then the user namespace's
        gate_r, gate_w = os.pipe()
        try:
            pid = -1
            try:
                # Before the mount namespace is joined: its paths are the host's here.
                for path in plain.cgroup.paths().values():
                    held.append(os.open(os.path.join(path, "cgroup.procs"), os.O_WRONLY | os.O_CLOEXEC))
                cgroups = len(held)
                held += [os.open(path, os.O_RDONLY | os.O_CLOEXEC) for t, path in plain.join if t == "NEWUSER"]
                with init.joined([j for j in plain.join if j[0] != "NEWUSER"]):
                    pid = self._fork_child(init.enter_exec, in_container, fds, gate_r, held[:cgroups], held[cgroups:])
            except OSError:
                pass  # stage 1 will say why, as without us
            finally:
                self._check_own_namespaces()
            if pid < 0:
                return -1
            sock = socket.socket(fileno=fds[0])
            try:
                sync.send(sock, sync.Kind.PID, pid=pid)
                os.write(gate_w, b"g")
            except OSError:
                os.kill(pid, signal.SIGKILL)  # the requester left: it would wait for nothing
            finally:
                sock.detach()
            return pid
        finally:
            for fd in (gate_r, gate_w, *held):
                os.close(fd)

    def _check_own_namespaces(self) -> None:
        """Raise _Fatal unless we are back in our own namespaces (a fork would land in a container's)."""
        if _own_namespaces() != self.namespaces:
            raise _Fatal("not back in our own namespaces after a fork into a container's")

    def _fork_child(self, run, ctx, fds: list[int], gate: int = -1, cgroup_fds: list[int] = (),
                    user_ns: list[int] = ()) -> int:
        """Fork a child that keeps only ``fds`` (and ``cgroup_fds`` and ``user_ns``, its
        ``cgroup_fds`` and user namespace to join; the ``gate``: waits for a byte on it) and runs
        ``run`` with ``ctx`` given them. Raises OSError (nothing forked)."""
        pid = _fork()
        if pid:
            return pid
        try:
            gc.disable()  # it execs soon: a collection would only copy pages
            # Only the request's descriptors from here on: not the control socket, nor other
            # requests' answers and pidfds (stage 1 closes the rest again before joining).
            linux.close_fds_except({*fds, *cgroup_fds, *user_ns, gate})
            if gate >= 0:
                if os.read(gate, 1) != b"g":
                    os._exit(1)  # the server did not say "pid": the requester is gone
                os.close(gate)
            # The server's copy stays as it was: this is the child's (copied on write).
            ctx.sync = socket.socket(fileno=fds[0])
            ctx.stdio = (fds[1], fds[2], fds[3])
            ctx.process.extra_files = fds[4:]
            if gate >= 0:
                ctx.cgroup_fds = list(cgroup_fds)
                ctx.join = [("NEWUSER", fd) for fd in user_ns]
            run(ctx)
        finally:
            os._exit(1)

    def _reap(self, pidfd: int) -> None:
        pid, reply = self.children.pop(pidfd)
        self.poller.unregister(pidfd)
        try:
            _, status = os.waitpid(pid, 0)
        except ChildProcessError:  # pragma: no cover - nobody else reaps our children
            status = 255 << 8
        finally:
            os.close(pidfd)
        with contextlib.suppress(OSError):
            reply.send(json.dumps({"status": status}).encode())
        reply.close()


_libc_fork = ctypes.PyDLL(None, use_errno=True).fork  # PyDLL: the GIL stays held across the call
_libc_fork.restype = ctypes.c_int
_libc_fork.argtypes = []


def _fork() -> int:
    """fork(2) without CPython's after-fork hooks (``os.fork`` runs them): 0 in the child, its pid
    in the parent. Raises OSError.

    The hooks re-initialise what other threads may have held at the fork (the GIL, the import
    lock, thread states) and run the modules' handlers (threading's rebuilds its thread table):
    ~0.5 ms of CPU and ~160 pages copied on write per fork here, a tenth of an exec. The server
    has a single thread (checked at start; it starts none) and keeps the GIL across the call,
    so there is nothing for them to repair; the children run init and exec.
    """
    pid = _libc_fork()
    if pid < 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))
    return pid


def _read_all(fd: int) -> bytes:
    chunks = []
    while chunk := os.read(fd, 1 << 16):
        chunks.append(chunk)
    return b"".join(chunks)
