"""``libcontainer.Process``: what to run in a container (init or an extra process)."""

from __future__ import annotations

import socket
from dataclasses import dataclass, field
from io import IOBase

from ..configs import MAX_ID, Capabilities, Rlimit

Stdio = int | IOBase | None
"""A file descriptor, an open file, or None (detached default: /dev/null in, log files out)."""

_LIVE = ("stdin", "stdout", "stderr", "console_socket")  # the caller's open objects: never serialised


@dataclass
class Process:
    """``libcontainer.Process``.

    ``args`` is argv (``args[0]`` is looked up on the container's ``PATH`` at create time);
    ``env`` is a list of ``KEY=value``; ``uid``/``gid``/``additional_groups`` are container-side
    ids. ``capabilities``, ``no_new_privileges`` and ``rlimits`` override the container config
    when set. ``extra_files`` are open descriptors of the caller that the process receives as fds
    3, 4, … in that order (libcontainer ``ExtraFiles``; the stage-1 path only, not the monitor's).
    ``init`` is True for the container's init (exec fifo) and False for ``dct exec``.

    ``terminal`` (runtime-spec ``process.terminal``): the process gets a new pty of the
    container's devpts as controlling terminal and stdio (``stdin``/``stdout``/``stderr`` are then
    unused), and the pty master goes to ``console_socket``, a connected unix socket (or its fd),
    as one ``/dev/ptmx`` message with the fd in ``SCM_RIGHTS`` (runc's ``--console-socket``;
    libcontainer ``Process.ConsoleSocket``). ``console_size``: ``(rows, columns)`` set on the pty
    before the program runs (``process.consoleSize`` height, width).
    """

    args: list[str]
    env: list[str] = field(default_factory=list)
    cwd: str = "/"
    uid: int = 0
    gid: int = 0
    additional_groups: list[int] = field(default_factory=list)
    capabilities: Capabilities | None = None
    no_new_privileges: bool | None = None
    rlimits: list[Rlimit] | None = None
    umask: int | None = None
    # runc's ExtraFiles: descriptors of the caller that the process gets as 3, 4, … (--preserve-fds).
    extra_files: list[int] = field(default_factory=list)
    stdin: Stdio = None
    stdout: Stdio = None
    stderr: Stdio = None
    init: bool = True
    terminal: bool = False
    console_size: tuple[int, int] | None = None
    console_socket: socket.socket | int | None = None

    def __post_init__(self) -> None:
        from ..errors import ConfigInvalid

        if not self.args:
            raise ConfigInvalid("process.args: at least the program to run is required")
        if not self.cwd.startswith("/"):
            raise ConfigInvalid(f"process.cwd: {self.cwd!r} must be an absolute path")
        # 2**32 - 1 is (uid_t)-1, which set*id(2) read as "leave unchanged": never a real id.
        for name, value in (("uid", self.uid), ("gid", self.gid)):
            if not isinstance(value, int) or not 0 <= value < MAX_ID:
                raise ConfigInvalid(f"process.{name}: {value!r} is not a valid id (0 to {MAX_ID - 1})")
        for value in self.additional_groups:
            if not isinstance(value, int) or not 0 <= value < MAX_ID:
                raise ConfigInvalid(f"process.additional_groups: {value!r} is not a valid group id")
        if self.console_size is not None:
            rows_cols = tuple(self.console_size)
            if len(rows_cols) != 2 or not all(isinstance(v, int) and 0 <= v <= 0xFFFF for v in rows_cols):
                raise ConfigInvalid(f"process.consoleSize: {self.console_size!r} must be (height, width), "
                                    "each 0 to 65535")
        for item in self.env:
            if "=" not in item or item.startswith("="):
                raise ConfigInvalid(f"process.env: {item!r} must be KEY=value with a non-empty KEY")

    def to_dict(self) -> dict[str, object]:
        """The process as JSON types (``libcontainer.Process`` fields by our names), without the
        caller's live objects (``stdin``/``stdout``/``stderr``, ``console_socket``): what crosses to
        the monitor (:mod:`.monitord`). ``extra_files`` stay plain numbers of the caller's."""
        return {"args": list(self.args), "env": list(self.env), "cwd": self.cwd, "uid": self.uid, "gid": self.gid,
                "additional_groups": list(self.additional_groups),
                "capabilities": None if self.capabilities is None else dict(vars(self.capabilities)),
                "no_new_privileges": self.no_new_privileges,
                "rlimits": None if self.rlimits is None else [dict(vars(rl)) for rl in self.rlimits],
                "umask": self.umask, "extra_files": list(self.extra_files), "init": self.init,
                "terminal": self.terminal,
                "console_size": None if self.console_size is None else list(self.console_size)}

    @classmethod
    def from_dict(cls, raw: dict[str, object]) -> "Process":
        """Rebuild a process from :meth:`to_dict` (stdio and console socket unset).

        Raises:
            ConfigInvalid: not an object, an unknown or live field, a field of the wrong shape, or
                a value :class:`Process` refuses (naming it).
        """
        from ..errors import ConfigInvalid

        if not isinstance(raw, dict):
            raise ConfigInvalid(f"process: {type(raw).__name__} is not an object")
        raw = dict(raw)
        unknown = sorted(set(raw) - {f for f in cls.__dataclass_fields__ if f not in _LIVE})
        if unknown:
            raise ConfigInvalid(f"process: unknown fields {', '.join(unknown)}")
        try:
            if raw.get("capabilities") is not None:
                raw["capabilities"] = Capabilities(**raw["capabilities"])
            if raw.get("rlimits") is not None:
                raw["rlimits"] = [Rlimit(**rl) for rl in raw["rlimits"]]
            if raw.get("console_size") is not None:
                raw["console_size"] = tuple(raw["console_size"])
            return cls(**raw)
        except TypeError as err:
            raise ConfigInvalid(f"malformed process: {err}") from None
