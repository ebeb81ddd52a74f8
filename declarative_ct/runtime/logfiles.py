"""Where a container's logs live: per container **name** (id), under the data root, one set of
files per run, so a restart or recreate keeps the previous run's output (``dct logs --previous``).

Layout (``<data_root>`` is :attr:`.factory.Runtime.data_root`, e.g. ``/var/lib/dct``)::

    <data_root>/logs/<name>/<run>.log       the run's current file; run = 0, 1, 2 … (a new one per
                                            start of a monitored container; the highest is the latest)
    <data_root>/logs/<name>/<run>.log.1     its newest rotated file … ``.log.<max_files - 1>`` the oldest

Only the latest :data:`KEEP_RUNS` runs are kept: starting run N deletes the files of runs below
N - 1. Each line of a file is in the CRI log format (the kubelet's, containerd's, podman's
``k8s-file``): ``<RFC 3339 UTC, nanoseconds> <stdout|stderr> <F|P> <text>\\n``, where ``P`` marks a
part of a line that continues in the next entry and ``F`` its final part.

Stdlib only.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil

LOGS_DIR = "logs"
KEEP_RUNS = 2  # the current run and the previous one (the kubelet keeps one previous container's log)
_RUN = re.compile(r"(0|[1-9][0-9]{0,17})\.log")


def log_dir(data_root: str, name: str) -> str:
    """``<data_root>/logs/<name>`` (not made here; ``name`` is a validated container id)."""
    return os.path.join(data_root, LOGS_DIR, name)


def runs(directory: str) -> list[int]:
    """The run numbers that have a current file in ``directory``, ascending; [] when it is absent."""
    try:
        names = os.listdir(directory)
    except (FileNotFoundError, NotADirectoryError):
        return []
    return sorted(int(m.group(1)) for n in names if (m := _RUN.fullmatch(n)))


def run_path(directory: str, run: int) -> str:
    """The current file of ``run``: ``<directory>/<run>.log``."""
    return os.path.join(directory, f"{run}.log")


def run_files(directory: str, run: int) -> list[str]:
    """Every existing file of ``run``, oldest first (``.log.<k>`` … ``.log.1``, then ``.log``)."""
    current = run_path(directory, run)
    rotated = []
    k = 1
    while os.path.exists(f"{current}.{k}"):
        rotated.append(f"{current}.{k}")
        k += 1
    return [*reversed(rotated), *([current] if os.path.exists(current) else [])]


def new_run(directory: str) -> str:
    """Make ``directory`` (0700) if needed, start the next run (an empty ``<run>.log``, 0640) and
    delete the files of runs older than the previous one. Returns the new run's current file.

    Raises:
        OSError: the directory or file cannot be made.
    """
    os.makedirs(directory, mode=0o700, exist_ok=True)
    existing = runs(directory)
    run = existing[-1] + 1 if existing else 0
    path = run_path(directory, run)
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC | os.O_NOFOLLOW, 0o640))
    for old in existing[:-(KEEP_RUNS - 1)] if KEEP_RUNS > 1 else existing:
        for f in run_files(directory, old):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(f)
    return path


def remove(data_root: str, name: str) -> None:
    """Delete every log of ``name`` (its container was removed for good, not restarted)."""
    shutil.rmtree(log_dir(data_root, name), ignore_errors=True)
