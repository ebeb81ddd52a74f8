"""Small helpers shared by the v1 and v2 drivers: read/write one cgroup file, remove a tree."""

from __future__ import annotations

import errno
import os
import time

from ...errors import SystemError


def write(directory: str, name: str, value: str) -> None:
    """Write ``value`` to ``<directory>/<name>``; raises SystemError naming the file and value."""
    path = os.path.join(directory, name)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
        try:
            os.write(fd, value.encode())
        finally:
            os.close(fd)
    except OSError as err:
        raise SystemError(f"failed to write {value!r} to {path}: {err.strerror}") from err


def read(directory: str, name: str) -> str:
    """Read ``<directory>/<name>`` stripped; raises OSError (FileNotFoundError if the cgroup is gone)."""
    with open(os.path.join(directory, name)) as f:
        return f.read().strip()


def pids_recursive(directory: str) -> list[int]:
    """PIDs in ``cgroup.procs`` of ``directory`` and all its descendants; ``[]`` if it is gone."""
    pids: list[int] = []
    for dirpath, _, _ in os.walk(directory):
        try:
            with open(os.path.join(dirpath, "cgroup.procs")) as f:
                pids.extend(int(line) for line in f if line.strip())
        except FileNotFoundError:
            continue
    return pids


def remove_tree(directory: str, attempts: int = 50) -> None:
    """rmdir ``directory`` and its child cgroups, deepest first, retrying EBUSY while tasks exit.

    Raises SystemError if the cgroup still holds tasks after ``attempts`` tries (about 0.5 s).
    """
    delay = 0.001
    for i in range(attempts):
        if not os.path.isdir(directory):
            return
        try:
            for dirpath, dirnames, _ in os.walk(directory, topdown=False):
                os.rmdir(dirpath)
            return
        except FileNotFoundError:
            continue
        except OSError as err:
            if err.errno != errno.EBUSY or i == attempts - 1:
                raise SystemError(f"failed to remove cgroup {directory}: {err.strerror}") from err
            time.sleep(delay)
            delay = min(delay * 2, 0.02)
