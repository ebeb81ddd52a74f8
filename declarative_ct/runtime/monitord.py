# Size: both ends of the monitor's socket protocol and their shared constants (cli finds a started one by this name)
"""The shared monitor: one lean process per state root forks every container's init and reaps it.

Why one process and not one per container: a Python monitor costs ~8 MiB RSS (2.7 MiB of it
private) however little it does, against conmon's 1–2 MiB; shared by N containers the cost per
container is that divided by N. And since it is a fresh interpreter (exec'd, single-threaded),
every init is a fork of the monitor, never of a multi-threaded caller such as the TUI (which
only starts the monitor, as ``subprocess`` does). It runs from the sealed copy of the interpreter
(:mod:`.exeseal`), so an init, seen in its container until it execs the program, is backed by no
host file; the copy is made once per monitor, not per container. ``exec`` and ``monitor=False`` still fork the caller.

Protocol (``<root>/#monitor.2.sock``, SOCK_SEQPACKET; each side checks the other's SO_PEERCRED is
root or its own uid): the client sends one JSON request ``{"state_dir", "init", "inherit", "log"}``
(:mod:`.monitor_request`: the init context as data, the config as ``Config.to_dict`` has it,
the cgroup as its paths, the log file and its rotation) with the fds of init attached (SCM_RIGHTS:
stdio, the sync socket, the exec fifo, by position, then the read ends of init's output pipes);
the monitor rebuilds the context (:func:`.monitor_request.decode`), forks init straight into the
container's PID namespace (``init.pid_namespace_for_children``), the child takes on the
caller's rlimits/umask/oom_score_adj and runs ``init.enter`` with those fds, and the monitor
replies in JSON ``{"pid": init_pid}`` or ``{"error": message}`` (a malformed request too). One fork of the
monitor per container: runc's stage 1 (a fork only to be born in the new PID namespace) is not
needed here. Init is the monitor's child; it reaps it and writes ``exit.json``
(:func:`monitor.record_exit`). As a child subreaper it also reaps orphans of a container sharing
its PID namespace. It exits once it has had nothing to watch (no init, no output pipe open) for
:data:`LINGER` s; a flock on ``#monitor.<PROTOCOL>.lock`` keeps one monitor per root and protocol.

Upgrades: the socket and lock carry the protocol's version (:data:`PROTOCOL`). A monitor started
by an older dct lives as long as its containers (on a server: indefinitely) and would refuse
requests it does not know (the log pipes); a new dct starts its own monitor beside it instead, and
the old one goes on reaping its inits until they are all gone.

Logs (conmon's job): a container whose stdout/stderr the caller left to us writes them into
pipes; the monitor copies them into the run's CRI log file with rotation (:mod:`.logcopy`), in
the same single-threaded loop (a :class:`.logcopy.Copier` per container, its pipes in the
selector). When init exits, what its pipes hold is copied before ``exit.json`` is written (so
init's own output is in the file once its exit is), and the copy goes on until the pipes' end,
which processes that inherited them may hold open after init; the monitor does not linger-exit
while a pipe is open.

If the monitor is killed, running containers keep running (their inits go to the nearest
subreaper); their exit codes are lost, and so is their output from then on: their pipes have
no reader, so a container's next write to stdout/stderr gets EPIPE (SIGPIPE, which kills a
program that does not handle it), as with a killed conmon. The next create starts a new monitor.

Its lifetime is its own, not its starter's: it runs in a session and process group of its own
(``setsid`` by :func:`_start`, then a fork so that it is no session leader, its middle process
reaped by the starter) and ignores SIGINT, SIGHUP, SIGTERM and SIGQUIT: a closed terminal or a
stopped caller does not take it along. Under systemd it is never a service's main process (the
unit's main process is ``dct watch``, which started it), but it stays in the service's cgroup:
only ``KillMode=process`` (SIGTERM and the final SIGKILL to the main process alone) leaves it
alive when the service stops or restarts; ``control-group`` and ``mixed`` send the final SIGKILL
to every process of the cgroup, the monitor included (its inits, in the containers' own cgroups,
survive, as above).
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import fcntl
import gc
import json
import os
import resource
import select
import selectors
import signal
import socket
import struct
import sys
import threading
import time

from . import exeseal, linux, logcopy, monitor, monitor_request, procfs, store

# '#' is not allowed in a container id, so this never collides with a container's directory.
PROTOCOL = 2  # 1: "#monitor.sock" with a flock on the root directory (before the log pipes)
SOCKET_FILE = f"#monitor.{PROTOCOL}.sock"
LOCK_FILE = f"#monitor.{PROTOCOL}.lock"
FILES = (SOCKET_FILE, LOCK_FILE)
LINGER = 10.0  # seconds the monitor stays with nothing to watch (saves a start for the next create)
LINGER_ENV = "DCT_MONITOR_LINGER"  # overrides LINGER (tests use a short one)
_CONNECT_TIMEOUT = 5.0  # seconds for a request to arrive whole once connected
_START_TIMEOUT = 10.0  # seconds for a new monitor to listen (an exiting one may hold the root a moment)
_REPLY_TIMEOUT = 60.0  # seconds for the fork of init to be answered
_SETUP_TIMEOUT = 120.0  # seconds after which a create that never saved state.json is forgotten
_RECHECK = 1.0  # seconds between looks for containers that went away without an exit to reap
_MAX_REQUEST = 1 << 20
# Not "-m declarative_ct.runtime.monitord": the package imports this module first (a warning on stderr).
_ENTRY = "import sys; from declarative_ct.runtime.monitord import main; main(*sys.argv[1:])"


# -- client side ---------------------------------------------------------------------------

def request_init(root: str, state_dir: str, ctx, log: dict | None = None, log_fds: tuple[int, ...] = ()
                 ) -> socket.socket:
    """Ask the monitor of ``root`` to fork the init of ``ctx`` (an ``init.InitContext``); the
    connection its answer comes on (read it with :func:`answer`).

    The fds of ``ctx`` (stdio, sync socket, fifo) are passed over the socket, then ``log_fds``, the
    read ends of init's output pipes that the monitor copies into the log file ``log`` describes
    (:func:`.monitor_request.encode`); the caller keeps and closes its own copies. The caller's
    rlimits, umask and oom_score_adj go along, so that init inherits them from the caller as with
    runc, not from the monitor. Starts the monitor if
    none runs. The answer is left to be read later: a caller that next waits for init's "ready"
    reads it after that, without waking up for it on the way.

    Raises:
        SystemError: the monitor could not be reached or started.
    """
    from ..errors import SystemError

    fds = [*ctx.stdio, ctx.sync.fileno(), ctx.fifo_fd, *log_fds]
    payload = monitor_request.encode(state_dir, ctx, _caller_context(), log)
    for attempt in range(2):
        sock = _connect(root)
        try:
            sock.settimeout(_REPLY_TIMEOUT)
            socket.send_fds(sock, [payload], fds)
            return sock  # no retry from here on: init may already be forked
        except OSError as err:
            sock.close()
            if attempt == 0 and err.errno in (errno.ECONNRESET, errno.EPIPE):
                continue  # the monitor was closing as we came: nothing was done, start another
            raise SystemError(f"container monitor of {root}: {err.strerror or err}") from err
    raise SystemError(f"container monitor of {root}: it kept closing connections")


def answer(root: str, sock: socket.socket) -> int:
    """The monitor's answer to :func:`request_init` on ``sock``: init's host pid. Closes ``sock``.

    Raises:
        SystemError: the monitor refused the request or went away without answering.
    """
    from ..errors import SystemError

    try:
        reply = sock.recv(65536)
    except OSError as err:
        raise SystemError(f"container monitor of {root}: {err.strerror or err}") from err
    finally:
        sock.close()
    try:
        answered = json.loads(reply)
        if "error" in answered:
            raise SystemError(f"container monitor of {root}: {answered['error']}")
        return int(answered["pid"])
    except (ValueError, TypeError, KeyError):
        raise SystemError(f"container monitor of {root}: no valid answer ({reply[:80]!r})") from None


_RLIMITS = sorted({getattr(resource, name) for name in dir(resource) if name.startswith("RLIMIT_")})


def _caller_context() -> dict:
    limits = {}
    for res in _RLIMITS:
        with contextlib.suppress(ValueError, OSError):
            limits[res] = resource.getrlimit(res)
    umask = os.umask(0)
    os.umask(umask)
    try:
        with open("/proc/self/oom_score_adj") as f:
            oom_score_adj = f.read().strip()
    except OSError:
        oom_score_adj = ""
    return {"rlimits": limits, "umask": umask, "oom_score_adj": oom_score_adj}


def _differences(inherit: dict, own: dict) -> dict:
    """The part of a caller's context (:func:`_caller_context`) that differs from ``own``, the
    monitor's: mostly nothing, since the monitor took its own from a caller too."""
    rlimits = {res: limits for res, limits in inherit.get("rlimits", {}).items()
               if tuple(own["rlimits"].get(res, ())) != tuple(limits)}
    out: dict = {"rlimits": rlimits} if rlimits else {}
    for key in ("umask", "oom_score_adj"):
        if key in inherit and inherit[key] != own.get(key):
            out[key] = inherit[key]
    return out


def _apply_caller_context(inherit: dict) -> None:
    """In init (a fork of the monitor): take on the caller's rlimits, umask and oom_score_adj
    (those of ``inherit``: what differs from the monitor's).

    Best effort: without CAP_SYS_RESOURCE a hard limit cannot be raised above the monitor's, nor
    oom_score_adj lowered; the soft limit is then kept within the hard one.
    """
    for res, (soft, hard) in inherit.get("rlimits", {}).items():
        try:
            resource.setrlimit(res, (soft, hard))
        except (ValueError, OSError):
            cur_hard = resource.getrlimit(res)[1]
            with contextlib.suppress(ValueError, OSError):
                resource.setrlimit(res, (soft if cur_hard == resource.RLIM_INFINITY or
                                         (soft != resource.RLIM_INFINITY and soft <= cur_hard) else cur_hard,
                                         cur_hard))
    if "umask" in inherit:
        os.umask(inherit["umask"])
    if inherit.get("oom_score_adj"):
        with contextlib.suppress(OSError), open("/proc/self/oom_score_adj", "w") as f:
            f.write(inherit["oom_score_adj"])


_prestarting: dict[str, threading.Thread] = {}  # root -> the thread starting its monitor (prestart)


def prestart(root: str) -> None:
    """Start the monitor of an existing ``root`` in the background when none listens there.

    A monitor's start (a fresh interpreter importing the runtime, ~50 ms) then runs on another
    CPU while the caller does its own start-up (``dct apply`` imports and validates its specs),
    rather than in front of the first create. Nothing is made if the root does not exist; a
    monitor started for an apply that creates nothing exits after :data:`LINGER` s. The next
    :func:`request_init` waits for it; :func:`wait_prestarted` lets it finish. Never raises.
    """
    if root in _prestarting or not os.path.isdir(root) or os.path.exists(os.path.join(root, SOCKET_FILE)):
        return
    thread = threading.Thread(target=_start_quietly, args=(root,), name="dct-monitor-start", daemon=True)
    _prestarting[root] = thread
    thread.start()


def _start_quietly(root: str) -> None:
    with contextlib.suppress(Exception):  # request_init starts one again and reports what fails
        _start(root)


def wait_prestarted(timeout: float = _START_TIMEOUT) -> None:
    """Wait for the monitors :func:`prestart` is starting (and the start's middle process to be reaped)."""
    for thread in list(_prestarting.values()):
        thread.join(timeout)


def _connect(root: str) -> socket.socket:
    """A connection to the monitor of ``root``, started if needed; refuses a server not run by us or root."""
    from ..errors import SystemError

    if root in _prestarting:
        _prestarting[root].join(_START_TIMEOUT)
    dirfd = os.open(root, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        # Through /proc/self/fd: a deep root would not fit in sun_path's 108 bytes.
        path = f"/proc/self/fd/{dirfd}/{SOCKET_FILE}"
        for attempt in range(3):
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET | socket.SOCK_CLOEXEC)
            try:
                sock.connect(path)
            except (FileNotFoundError, ConnectionRefusedError):
                sock.close()
                if attempt == 2:
                    break
                _start(root)  # returns once a monitor listens (or another one holds the root)
                continue
            uid = _peer_uid(sock)
            if uid not in (0, os.geteuid()):
                sock.close()
                raise SystemError(f"{os.path.join(root, SOCKET_FILE)} is served by uid {uid}, not by root: "
                                  f"refusing to hand it a container (is {root} writable by others?)")
            return sock
    finally:
        os.close(dirfd)
    raise SystemError(f"the container monitor of {root} did not start")


def _started(words: bytes) -> bool:
    lines = words.splitlines(keepends=True)
    return b"ready\n" in lines or b"busy\n" in lines


def _peer_uid(sock: socket.socket) -> int:
    return struct.unpack("3i", sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12))[1]


def _start(root: str) -> None:
    """Start a monitor for ``root`` and wait until it listens.

    A fresh interpreter in its own session, started as subprocess does (fork+exec done in C, safe
    from a multi-threaded caller); it forks once to leave us (we reap that middle process at once) and
    reports on its stderr, a pipe to us: ``ready``, ``busy`` (another monitor holds the root),
    or the error that stopped it.

    Raises:
        SystemError: the monitor failed to start (with its last words), or said nothing in time.
    """
    from ..errors import SystemError

    import declarative_ct

    import subprocess

    r, w = os.pipe()
    env = dict(os.environ)
    package_dir = os.path.dirname(os.path.dirname(os.path.abspath(declarative_ct.__file__)))
    env["PYTHONPATH"] = package_dir + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    for name, value in logcopy.MALLOC_ENV.items():  # (the containers' programs get their own env, not ours)
        env.setdefault(name, value)
    try:
        # subprocess, not posix_spawn: glibc's posix_spawn leaves its internal signals (32, 33)
        # ignored in the child, and ignored signals would reach every container's init.
        # From the sealed image (exeseal): every init is a fork of the monitor, seen in its container.
        exe = exeseal.sealed_executable()
        middle = subprocess.Popen([sys.executable, "-c", _ENTRY, root, str(exe)], executable=f"/proc/self/fd/{exe}",
                                  pass_fds=(exe,), env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                  stderr=w, start_new_session=True, cwd="/")
    finally:
        os.close(w)
    try:
        middle.wait()
        words = b""
        deadline = time.monotonic() + _START_TIMEOUT
        while time.monotonic() < deadline:
            ready, _, _ = select.select([r], [], [], max(0.0, deadline - time.monotonic()))
            chunk = os.read(r, 4096) if ready else b""
            words += chunk
            if _started(words) or not chunk:
                break
    finally:
        os.close(r)
    if not _started(words):
        last = words.decode(errors="replace").strip().splitlines()[-1:] or ["it said nothing"]
        raise SystemError(f"the container monitor of {root} failed to start: {last[0]}")


# -- the monitor ---------------------------------------------------------------------------

class _Monitor:
    def __init__(self, root: str) -> None:
        self.root = root
        self.watched: dict[str, tuple[int, int]] = {}  # state dir -> (init pid, start); 0s until state.json
        self.requested: dict[str, float] = {}  # state dir -> when its init was forked
        self.copiers: set[logcopy.Copier] = set()  # containers' output still being copied (pipes open)
        self.idle_since = time.monotonic()
        self.checked = time.monotonic()  # last look for containers gone without an exit (_forget_gone)
        self.own = _caller_context()  # what each init would inherit from us: only the rest is set in it
        linux.last_cap()  # read once here, inherited by every fork
        self.linger = float(os.environ.get(LINGER_ENV, LINGER))

    def serve(self) -> None:
        """Take the root's lock, listen, tell the starter (``ready``/``busy`` on stderr), serve until idle."""
        # held until we exit (not the root directory, which a monitor of protocol 1 still locks)
        lock = os.open(os.path.join(self.root, LOCK_FILE), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
        deadline = time.monotonic() + _START_TIMEOUT / 2
        while True:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                # Held: by a monitor that serves (use it), or one on its way out (wait for its lock).
                if _serving(self.root) or time.monotonic() > deadline:
                    _report(b"busy\n")
                    return
                time.sleep(0.01)
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
        # What exists now is never freed: the collector leaves it be, so that forks of the monitor
        # do not copy the pages it would touch.
        gc.freeze()
        _report(b"ready\n")
        wake_r, wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        signal.set_wakeup_fd(wake_w)
        signal.signal(signal.SIGCHLD, lambda *_: None)
        sel = selectors.DefaultSelector()
        sel.register(listener, selectors.EVENT_READ)
        sel.register(wake_r, selectors.EVENT_READ)
        try:
            while True:
                busy = bool(self.watched or self.copiers)
                # Busy, it still wakes now and then to notice containers destroyed or aborted meanwhile.
                events = sel.select(_RECHECK if busy else max(0.0, self.idle_since + self.linger - time.monotonic()))
                for key, _ in events:
                    if key.data is not None:
                        self._copied(key.data, key.fd, sel)
                    elif key.fileobj is listener:
                        self._accept(listener, sel)
                    else:
                        while os.read(wake_r, 512) == 512:
                            pass
                self._reap(sel)
                if time.monotonic() - self.checked >= _RECHECK:
                    # Not at every event: it looks at each watched container (O(N) per create).
                    self._forget_gone(sel)
                    self.checked = time.monotonic()
                if self.watched or self.copiers:  # no linger-exit while a pipe may still bring output
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
                if uid not in (0, os.geteuid()):  # no one else has an init forked by us
                    conn.send(json.dumps({"error": f"uid {uid} may not create containers here"}).encode())
                    return
                payload, fds = _recv_fds(conn, _MAX_REQUEST, 8)
            except OSError:
                return
            try:
                state_dir, ctx, inherit, log = monitor_request.decode(payload)
                streams = log["streams"] if log else []
                if len(fds) != 5 + len(streams):
                    raise ValueError(f"expected {5 + len(streams)} fds, got {len(fds)}")
                pid = self._fork_init(state_dir, ctx, inherit, fds[:5], listener, sel)
                if log:  # the read ends are the copier's from now on
                    readers, fds = fds[5:], fds[:5]
                    try:
                        copier = logcopy.Copier(log["path"], log["max_size"], log["max_files"],
                                                dict(zip(streams, readers)), state_dir)
                    except BaseException:
                        fds += readers
                        raise
                    self._copy(copier, sel)
                reply = {"pid": pid}
            except Exception as err:  # noqa: BLE001 - any failure goes back to the client
                reply = {"error": str(err) or type(err).__name__}
            finally:
                for fd in fds:
                    os.close(fd)
            try:
                conn.send(json.dumps(reply).encode())
            except OSError:
                pass

    def _copy(self, copier: logcopy.Copier, sel) -> None:
        """Watch the pipes of ``copier`` (a new container's output) until their end."""
        self.copiers.add(copier)
        for fd in copier.fds:
            sel.register(fd, selectors.EVENT_READ, copier)

    def _copied(self, copier: logcopy.Copier, fd: int, sel) -> None:
        """``fd`` of ``copier`` is readable: copy a chunk, or close it at its end."""
        if fd not in copier.streams:  # ended earlier in this batch of events (its number may be reused since)
            return
        try:
            if not copier.read(fd):
                self._ended(copier, [fd], sel)
        except Exception:  # noqa: BLE001 - a bug in one copy must not take the monitor (and every container) down
            self._failed(copier, sel)

    def _failed(self, copier: logcopy.Copier, sel) -> None:
        """A copy raised: keep reading its pipes and drop what comes (closing them would give the
        container EPIPE/SIGPIPE at its next write); one that fails even so is given up."""
        if copier.log.discard:
            self._ended(copier, copier.fds, sel)
        else:
            copier.log.discard = True

    def _ended(self, copier: logcopy.Copier, fds: list[int], sel) -> None:
        """Stop watching ``fds`` of ``copier`` and close them; forget the copier once none is left."""
        for fd in fds:
            with contextlib.suppress(KeyError, ValueError):
                sel.unregister(fd)
            try:
                last = copier.end(fd)
            except Exception:  # noqa: BLE001 - closed all the same
                copier.streams.pop(fd, None)
                with contextlib.suppress(OSError):
                    os.close(fd)
                last = not copier.streams
            if last:
                self.copiers.discard(copier)

    def _drain(self, state_dir: str, sel) -> None:
        """Init of ``state_dir`` exited: what it wrote goes into its log before its exit is recorded
        (its pipes may stay open in other processes: their copy goes on in the loop)."""
        for copier in [c for c in self.copiers if c.state_dir == state_dir]:
            try:
                self._ended(copier, copier.drain(), sel)
            except Exception:  # noqa: BLE001 - as in _copied
                self._failed(copier, sel)

    def _fork_init(self, state_dir: str, ctx, inherit: dict, fds: list[int], listener, sel) -> int:
        from . import init

        inherit = _differences(inherit, self.own)
        # With a new user namespace the PID namespace must come after it (to be owned by it, or
        # the container's root could not mount its /proc): the child is a stage 1 that makes both
        # and forks init, which then falls to us (we are a subreaper). Otherwise one fork, straight
        # into the PID namespace.
        stage1 = ctx.config.namespace("NEWUSER") is not None
        with contextlib.nullcontext() if stage1 else init.pid_namespace_for_children(ctx):
            pid = os.fork()
            if pid == 0:  # never leaves this block (the way out restores the monitor's namespace)
                try:
                    gc.disable()  # it execs soon: a collection would only copy pages
                    signal.set_wakeup_fd(-1)
                    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
                    sel.close()
                    listener.close()
                    _apply_caller_context(inherit)
                    ctx = dataclasses.replace(ctx if stage1 else init.without_pid_namespace(ctx), stdio=tuple(fds[:3]),
                                              fifo_fd=fds[4], sync=socket.socket(fileno=os.dup(fds[3])))
                    init.stage1(ctx) if stage1 else init.enter(ctx)
                finally:
                    os._exit(1)
        self.watched[state_dir] = (0, 0)  # the pid and start time come with state.json
        self.requested[state_dir] = time.monotonic()
        return pid

    def _reap(self, sel) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                break
            for state_dir in list(self.watched):
                if self._init_pid(state_dir) == pid:
                    self._drain(state_dir, sel)
                    monitor.record_exit(state_dir, pid, status)
                    del self.watched[state_dir]
                    break
            # else: an init whose create failed, or an orphan of a container sharing our PID namespace

    def _init_pid(self, state_dir: str) -> int:
        if not self.watched[state_dir][0]:
            try:
                saved = store.read_json(os.path.join(state_dir, store.STATE_FILE))
                self.watched[state_dir] = (saved["init_process_pid"], saved["init_process_start"])
            except (OSError, ValueError, KeyError):
                pass
        return self.watched[state_dir][0]

    def _forget_gone(self, sel) -> None:
        """Drop containers destroyed meanwhile (or aborted creates), and inits that were never our children."""
        for state_dir in list(self.watched):
            pid = self._init_pid(state_dir)
            started = self.requested.get(state_dir, 0.0)
            if not os.path.isdir(state_dir) or (not pid and time.monotonic() - started > _SETUP_TIMEOUT):
                del self.watched[state_dir]  # destroyed, or a create whose caller died before saving state
                self.requested.pop(state_dir, None)
                continue
            if pid and not procfs.is_alive(pid, self.watched[state_dir][1]):
                try:  # it may have died since _reap looked
                    reaped, status = os.waitpid(pid, os.WNOHANG)
                except ChildProcessError:
                    reaped = 0  # never our child: re-parented elsewhere (its monitor was killed)
                if reaped:
                    self._drain(state_dir, sel)
                    monitor.record_exit(state_dir, pid, status)
                if reaped or procfs.stat(pid) is None or procfs.stat(pid)[1] != self.watched[state_dir][1]:
                    del self.watched[state_dir]


def _recv_fds(conn: socket.socket, size: int, maxfds: int) -> tuple[bytes, list[int]]:
    """``socket.recv_fds`` with the fds received close-on-exec (``MSG_CMSG_CLOEXEC``; Python 3.11's
    ``recv_fds`` drops its ``flags``): the copier's read ends must never reach a later init or hook."""
    import array

    fds = array.array("i")
    msg, ancdata, _, _ = conn.recvmsg(size, socket.CMSG_LEN(maxfds * fds.itemsize), socket.MSG_CMSG_CLOEXEC)
    for level, kind, data in ancdata:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds.frombytes(data[:len(data) - len(data) % fds.itemsize])
    return msg, list(fds)


def _serving(root: str) -> bool:
    """True when a monitor accepts connections on ``root``'s socket (another create started it first)."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET | socket.SOCK_CLOEXEC)
    try:
        os.chdir(root)  # a relative name: the full path may not fit in sun_path
        sock.connect(SOCKET_FILE)
        return True
    except OSError:
        return False
    finally:
        os.chdir("/")
        sock.close()


def _report(words: bytes) -> None:
    """Tell the starter how we fared (our stderr is its pipe), then let go of it."""
    with contextlib.suppress(OSError):
        os.write(2, words)
    null = os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, 2)
    os.close(null)


def main(root: str, image_fd: str = "-1") -> None:
    """The monitor process (started by :func:`_start`): leave the starter, serve ``root`` until idle.

    stdin/stdout are /dev/null and stderr is the starter's pipe (see :func:`_start`). ``image_fd``
    is the inherited descriptor of the sealed image it was executed from (-1: none).
    """
    if not exeseal.running_sealed():  # started by hand: every init it forks must come from a sealed image
        os.execve(exeseal.sealed_executable(), [sys.executable, "-c", _ENTRY, root], os.environ)
    if int(image_fd) >= 0:
        # Our own /proc/self/exe is that image now (what the inits are forked from): the inherited
        # descriptor, not close-on-exec, need not stay open.
        with contextlib.suppress(OSError):
            os.close(int(image_fd))
    with contextlib.suppress(OSError), open("/proc/self/comm", "w") as f:
        f.write("dct-monitor")  # exec'd through /proc/self/fd/N, it would be called "N"
    if os.fork():
        os._exit(0)  # the starter reaps this middle process; the monitor is re-parented away
    os.chdir("/")
    linux.close_fds_except({0, 1, 2})
    for sig in (signal.SIGINT, signal.SIGHUP, signal.SIGTERM, signal.SIGQUIT):
        signal.signal(sig, signal.SIG_IGN)  # containers outlive a terminal; SIGKILL still works
    try:
        _Monitor(os.path.abspath(root)).serve()
    except BaseException as err:  # noqa: BLE001 - the starter shows it
        _report(f"{type(err).__name__}: {err}\n".encode())
        raise SystemExit(1) from None

