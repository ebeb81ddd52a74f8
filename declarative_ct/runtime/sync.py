"""The sync messages between the parent (the caller or the monitor) and stage 1 / init.

runc's ``syncT`` (``libcontainer/sync.go``): a ``SOCK_SEQPACKET`` socket pair, one message per
packet. On the wire a message is one JSON object, its kind under ``"type"`` and its fields beside
it: ``{"type": "pid", "pid": 4242}``, ``{"type": "error", "message": "…", "errno": 13, "stage":
"rootfs"}`` (errno and stage when known), ``{"type": "ready"}``;
a ``console`` message carries the pty master as ``SCM_RIGHTS``. The order they come in is in
:mod:`.init`'s docstring. Stdlib only (stage 1 and init import it).
"""

from __future__ import annotations

import json
import os
import socket
import struct


class Kind:
    """The message kinds: the wire's ``"type"`` strings, in the order a create sees them, and who
    sends each. Plain string constants rather than an ``enum.Enum``: defining one costs every
    stage 1 and init ~0.15 ms of start-up; the strings are compared as they come off the wire."""

    USERMAP = "usermap"  # stage 1: a new user namespace is made; write its uid/gid maps (runc SYNC_USERMAP_PLS)
    USERMAP_DONE = "usermap-done"  # parent: the maps are written
    PID = "pid"  # stage 1: the host PID of init or of the exec'd process (``pid``)
    CONSOLE = "console"  # init or the exec'd process: the pty master (``fd``, SCM_RIGHTS)
    HOOKS = "hooks"  # init: run the prestart/createRuntime hooks (runc procHooks)
    HOOKS_DONE = "hooks-done"  # parent: they ran
    READY = "ready"  # init: set up, waiting to be released (runc procReady); state.json is saved now
    RUN = "run"  # parent: go on to the exec fifo (runc procRun)
    ERROR = "error"  # any child side: a step failed (``message``); it exits next


KINDS = frozenset(value for name, value in vars(Kind).items() if name.isupper())
"""Every kind: a message of another is malformed."""


class Message:
    """One sync message. ``pid`` is set for :attr:`Kind.PID` (else 0), ``message`` for
    :attr:`Kind.ERROR` (else ""), with its ``errno`` (0: none) and ``stage`` (the set-up step, "" if
    unknown); ``fd`` is the descriptor received with it (a ``console``
    message's pty master, close-on-exec, owned by the receiver; else -1). ``kind`` is one of
    :class:`Kind`'s strings.

    A plain class with slots rather than a dataclass: defining one costs every stage 1 and init
    ~0.5 ms of start-up (its methods are generated and compiled at import)."""

    __slots__ = ("kind", "pid", "message", "fd", "errno", "stage")

    def __init__(self, kind: str, pid: int = 0, message: str = "", fd: int = -1, errno: int = 0,
                 stage: str = "") -> None:
        self.kind, self.pid, self.message, self.fd, self.errno, self.stage = kind, pid, message, fd, errno, stage

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Message):
            return NotImplemented
        return ((self.kind, self.pid, self.message, self.fd, self.errno, self.stage) ==
                (other.kind, other.pid, other.message, other.fd, other.errno, other.stage))

    __hash__ = None  # type: ignore[assignment]  # mutable, compared by value

    def __repr__(self) -> str:
        return f"Message({self.kind!r}, pid={self.pid}, message={self.message!r}, fd={self.fd})"

    def encode(self) -> bytes:
        """The packet: ``{"type": kind}`` plus the kind's field (``fd`` travels beside it)."""
        body: dict[str, object] = {"type": self.kind}
        if self.kind == Kind.PID:
            body["pid"] = self.pid
        elif self.kind == Kind.ERROR:
            body["message"] = self.message
            if self.errno:
                body["errno"] = self.errno
            if self.stage:
                body["stage"] = self.stage
        return json.dumps(body).encode()

    @classmethod
    def decode(cls, raw: bytes, fd: int = -1) -> "Message":
        """The message in the packet ``raw`` (with ``fd``, received beside it).

        Raises:
            ValueError: not JSON, an unknown kind, or a field of the wrong type.
        """
        body = json.loads(raw)
        if not isinstance(body, dict):
            raise ValueError(f"sync message is not an object: {raw[:80]!r}")
        kind, pid, message = body.get("type"), body.get("pid", 0), body.get("message", "")
        errno, stage = body.get("errno", 0), body.get("stage", "")
        if not isinstance(kind, str) or kind not in KINDS:
            raise ValueError(f"unknown sync message: {raw[:80]!r}")
        if type(pid) is not int or not isinstance(message, str) or type(errno) is not int or not isinstance(stage, str):
            raise ValueError(f"malformed {kind!r} sync message: {raw[:80]!r}")
        return cls(kind, pid=pid, message=message, fd=fd, errno=errno, stage=stage)

    def describe(self) -> str:
        """What an unwanted message says: an error's message, else its kind."""
        return self.message if self.kind == Kind.ERROR else f"unexpected sync message {self.kind!r}"


def send(sock: socket.socket, kind: str, *, pid: int = 0, message: str = "", fd: int = -1, errno: int = 0,
         stage: str = "") -> None:
    """Send one message of ``kind`` on ``sock``; ``fd`` (not closed here) goes along as ``SCM_RIGHTS``;
    an error's ``errno`` and ``stage`` (the set-up step) go with its message.

    Raises:
        OSError: the peer is gone (EPIPE, ECONNRESET) or the socket timed out.
    """
    packet = Message(kind, pid=pid, message=message, errno=errno, stage=stage).encode()
    if fd >= 0:
        socket.send_fds(sock, [packet], [fd])
    else:
        sock.send(packet)


def recv(sock: socket.socket) -> Message | None:
    """Receive one message; None when the peer closed its end.

    A descriptor sent with it is in its ``fd``, close-on-exec; the caller owns it (extra ones are closed).

    Raises:
        ValueError: a malformed message (see :meth:`Message.decode`); a descriptor sent with it is closed.
        OSError: from ``recvmsg`` (a timeout is ``TimeoutError``).
    """
    raw, ancdata, _, _ = sock.recvmsg(65536, socket.CMSG_SPACE(4), socket.MSG_CMSG_CLOEXEC)
    fds = [fd for level, kind, data in ancdata if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS
           for fd in struct.unpack(f"{len(data) // 4}i", data[:len(data) - len(data) % 4])]
    for fd in fds[1 if raw else 0:]:
        os.close(fd)
    if not raw:
        return None
    try:
        return Message.decode(raw, fds[0] if fds else -1)
    except ValueError:
        if fds:
            os.close(fds[0])
        raise


def received(sock: socket.socket, kind: str) -> bool:
    """Wait for the parent's answer on ``sock``: True when it is ``kind``; False when the parent
    closed its end or sent anything else (it gave up: it reports why and cleans up)."""
    msg = recv(sock)
    return msg is not None and msg.kind == kind
