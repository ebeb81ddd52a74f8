"""``libcontainer.Process``: what to run in a container (init or an extra process)."""

from __future__ import annotations

from dataclasses import dataclass, field
from io import IOBase

from ..configs import Capabilities, Rlimit

Stdio = int | IOBase | None
"""A file descriptor, an open file, or None (detached default: /dev/null in, log files out)."""

MAX_ID = 2**32 - 1
"""Ids are below this: it is ``(uid_t)-1``, which the set*id(2) calls read as "leave unchanged"."""


@dataclass
class Process:
    """``libcontainer.Process``.

    ``args`` is argv (``args[0]`` is looked up on the container's ``PATH`` at create time);
    ``env`` is a list of ``KEY=value``; ``uid``/``gid``/``additional_groups`` are container-side
    ids. ``capabilities``, ``no_new_privileges`` and ``rlimits`` override the container config
    when set. ``extra_files`` are open descriptors of the caller that the process receives as fds
    3, 4, … in that order (libcontainer ``ExtraFiles``; the stage-1 path only, not the monitor's).
    ``init`` is True for the container's init (exec fifo) and False for ``dct exec``.
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
        for item in self.env:
            if "=" not in item or item.startswith("="):
                raise ConfigInvalid(f"process.env: {item!r} must be KEY=value with a non-empty KEY")
