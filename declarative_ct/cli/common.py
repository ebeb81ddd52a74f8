"""What several of the ``dct`` runc verbs share: the state root of ``--root``, ``--pid-file``,
``--preserve-fds``, runc's table look."""

from __future__ import annotations

import argparse
import contextlib
import os

from ..errors import ConfigInvalid, ContainerError
from ..runtime import Runtime
from ..runtime.factory import default_root


def runtime_for(args: argparse.Namespace) -> Runtime:
    """The :class:`~declarative_ct.runtime.Runtime` of ``--root`` (default ``$DCT_ROOT`` or ``/run/dct``)
    and ``--data-root`` (default: ``runtime.factory.default_data_root`` of the root)."""
    return Runtime(getattr(args, "root", None) or default_root(), getattr(args, "data_root", None))


def write_pid_file(path: str | None, pid: int) -> None:
    """Write ``pid`` to ``path`` atomically (temp file + rename, as runc's createPidFile)."""
    if not path:
        return
    path = os.path.abspath(path)
    tmp = os.path.join(os.path.dirname(path), "." + os.path.basename(path))
    try:
        with open(tmp, "w") as f:
            f.write(str(pid))
        os.rename(tmp, path)
    except OSError as err:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise ContainerError(f"--pid-file {path}: {err.strerror}") from None


def extra_files(count: int, listen: bool) -> tuple[list[int], list[str]]:
    """``(fds, env)``: the caller's fds a process gets as 3, 4, … (runc's ``ExtraFiles``), and what to
    add to its env.

    ``count`` is ``--preserve-fds N``: the caller's fds 3 … 3+N-1. With ``listen`` (create/run) and
    systemd's socket activation aimed at us (``LISTEN_PID`` our pid, ``LISTEN_FDS`` L), as runc: fds
    3 … 3+L-1 go first, the preserved ones after them, and the env gets ``LISTEN_FDS=L`` and
    ``LISTEN_PID=1`` (init is PID 1). Raises ConfigInvalid naming a fd that is not open.
    """
    env: list[str] = []
    listen_fds = 0
    if listen and os.environ.get("LISTEN_PID") == str(os.getpid()):
        listen_fds = int(os.environ.get("LISTEN_FDS", "0")) if os.environ.get("LISTEN_FDS", "").isdigit() else 0
        if listen_fds:
            env = [f"LISTEN_FDS={listen_fds}", "LISTEN_PID=1"]
    fds = list(range(3, 3 + listen_fds + count))
    for fd in fds:
        try:
            os.fstat(fd)
        except OSError as err:
            what = f"--preserve-fds {count}" if fd >= 3 + listen_fds else f"LISTEN_FDS={listen_fds}"
            raise ConfigInvalid(f"{what}: fd {fd} of the caller is not open ({err.strerror})") from None
    return fds, env


def print_table(table: list[tuple[str, ...]]) -> None:
    """Rows as left-aligned columns three spaces apart (runc's tabwriter look)."""
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
    for row in table:
        print("   ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())
