"""One supervisor (``dct watch``) per state root: a lock and a record of who holds it.

Files (``#…`` entries of a state root are the manager's, never a container's)::

    <root>/#supervisor.lock    flock(LOCK_EX) held for the supervisor's whole life (O_CLOEXEC: the
                               root's monitor and other children do not inherit it)
    <root>/#supervisor.json    {"pid", "paths", "root", "data_root", "started", "last_pass",
                                "passes", "containers", "stopped"}; times RFC 3339 UTC, written
                               atomically (temp file, fsync, rename); "stopped" is set by a clean exit

The lock says whether a supervisor runs (a killed one releases it with its last fd); the JSON
says which one (its pid and spec paths, for the refusal message and ``dct service status``).
Stdlib only, beside the runtime's state root helpers.
"""

from __future__ import annotations

import errno
import fcntl
import os
import time
from dataclasses import dataclass, field

from ..errors import ContainerError
from ..jsonfile import read_json, write_json_atomic
from ..units import format_time

LOCK_FILE = "#supervisor.lock"
INFO_FILE = "#supervisor.json"
_ACQUIRE_TRIES = 50  # a `dct service status` probing the lock holds it for microseconds: retry a little
_ACQUIRE_PAUSE = 0.01  # seconds between tries


class SupervisorRunning(ContainerError):
    """Another supervisor holds the state root's lock (``info``: its :class:`SupervisorInfo`, if readable)."""

    def __init__(self, message: str, info: SupervisorInfo | None) -> None:
        super().__init__(message)
        self.info = info


def _now() -> str:
    """Now as RFC 3339 UTC with milliseconds, as the restart records write their times."""
    return format_time(time.time())


@dataclass
class SupervisorInfo:
    """What ``#supervisor.json`` says, plus ``running`` (whether its lock is held now).

    ``pid``: the supervisor's process; ``paths``: its spec paths (absolute); ``started``,
    ``last_pass`` (the end of its last reconcile pass, None before the first) and ``stopped`` (a
    clean exit; None while running or after a crash): RFC 3339 UTC; ``passes``: passes done;
    ``containers``: containers declared at the last pass.
    """

    pid: int | None = None
    paths: list[str] = field(default_factory=list)
    root: str = ""
    data_root: str = ""
    started: str | None = None
    last_pass: str | None = None
    passes: int = 0
    containers: int = 0
    stopped: str | None = None
    running: bool = False

    def to_dict(self) -> dict:
        """The JSON object (the file's keys and ``running``)."""
        return {"pid": self.pid, "paths": list(self.paths), "root": self.root, "data_root": self.data_root,
                "started": self.started, "last_pass": self.last_pass, "passes": self.passes,
                "containers": self.containers, "stopped": self.stopped, "running": self.running}

    def describe(self) -> str:
        """``pid 1234 watching /etc/dct/specs (since …, last pass …)`` for messages."""
        pid = f"pid {self.pid}" if self.pid else "pid unknown"
        paths = " ".join(self.paths) or "unknown spec paths"
        when = f"since {self.started}" if self.started else "start time unknown"
        last = f", last pass {self.last_pass}" if self.last_pass else ", no pass done yet"
        return f"{pid} watching {paths} ({when}{last})"


def read(root: str) -> SupervisorInfo | None:
    """The supervisor record of state root ``root`` with ``running`` from a probe of its lock;
    None when no supervisor ever ran there (no record and no lock held). Never raises for a
    missing or unreadable record (``pid`` None then)."""
    root = os.path.abspath(root)
    running = _held(os.path.join(root, LOCK_FILE))
    try:
        data = read_json(os.path.join(root, INFO_FILE))
    except (OSError, ValueError):
        data = None
    if not isinstance(data, dict):
        return SupervisorInfo(root=root, running=True) if running else None
    info = SupervisorInfo(root=root, running=running)
    for key in ("pid", "passes", "containers"):
        if isinstance(data.get(key), int) and not isinstance(data.get(key), bool):
            setattr(info, key, data[key])
    for key in ("started", "last_pass", "stopped", "data_root"):
        if isinstance(data.get(key), str):
            setattr(info, key, data[key])
    if isinstance(data.get("paths"), list):
        info.paths = [p for p in data["paths"] if isinstance(p, str)]
    return info


def probing(root: str) -> bool:
    """Whether a supervisor (``dct watch``, the service) runs on state root ``root``: the one
    that runs the health probes (``dct status``, the TUI and the Ansible info module call a
    record stale without one). A non-blocking try of its lock, nothing read."""
    return _held(os.path.join(os.path.abspath(root), LOCK_FILE))


def _held(lock_path: str) -> bool:
    """Whether a process holds the lock: a shared, non-blocking try, released at once."""
    try:
        fd = os.open(lock_path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        return False
    except OSError as err:
        return err.errno in (errno.EWOULDBLOCK, errno.EAGAIN)
    finally:
        os.close(fd)


class Supervisor:
    """The lock of one running supervisor; :meth:`acquire` makes one.

    Use :meth:`passed` after each reconcile pass, :meth:`release` (or ``with``) at the end.
    """

    def __init__(self, root: str, fd: int, info: SupervisorInfo) -> None:
        self.root = root
        self._fd = fd
        self.info = info

    @classmethod
    def acquire(cls, root: str, paths: list[str], data_root: str = "") -> Supervisor:
        """Take the supervisor lock of state root ``root`` (made, mode 0700, if missing) and write
        ``#supervisor.json`` for this process, watching ``paths``.

        Raises:
            SupervisorRunning: another process holds the lock; the message names its pid and spec
                paths (from its ``#supervisor.json``).
            OSError: the root or its files cannot be made.
        """
        root = os.path.abspath(root)
        os.makedirs(root, mode=0o700, exist_ok=True)
        fd = os.open(os.path.join(root, LOCK_FILE), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            for attempt in range(_ACQUIRE_TRIES):
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if attempt == _ACQUIRE_TRIES - 1:
                        raise
                    time.sleep(_ACQUIRE_PAUSE)
        except BlockingIOError:
            os.close(fd)
            other = read(root)
            who = other.describe() if other is not None and other.pid else "a process whose record is unreadable"
            raise SupervisorRunning(
                f"state root {root} already has a supervisor: {who}; one supervisor per state root "
                f"(stop that one first: `systemctl stop dct` for the service, else kill "
                f"{other.pid if other is not None and other.pid else 'it'})", other) from None
        except BaseException:
            os.close(fd)
            raise
        info = SupervisorInfo(pid=os.getpid(), paths=[os.path.abspath(p) for p in paths], root=root,
                              data_root=data_root, started=_now(), running=True)
        supervisor = cls(root, fd, info)
        try:
            supervisor._write()
        except BaseException:
            supervisor.release(clean=False)
            raise
        return supervisor

    def _write(self) -> None:
        data = self.info.to_dict()
        del data["running"]
        write_json_atomic(os.path.join(self.root, INFO_FILE), data, 0o644)

    def passed(self, containers: int) -> None:
        """Record the end of a reconcile pass (``containers``: how many are declared). An OSError
        (the root went read-only…) is ignored: the record is for people, the lock is what counts."""
        self.info.last_pass = _now()
        self.info.passes += 1
        self.info.containers = containers
        try:
            self._write()
        except OSError:
            pass

    def release(self, clean: bool = True) -> None:
        """Note the stop in the record (``clean``) and drop the lock; idempotent."""
        if self._fd < 0:
            return
        if clean:
            self.info.stopped = _now()
            self.info.running = False
            try:
                self._write()
            except OSError:
                pass
        os.close(self._fd)
        self._fd = -1

    def __enter__(self) -> Supervisor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
