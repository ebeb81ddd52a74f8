"""Deleting a container (libcontainer ``Destroy()``; youki's ``container_delete``) and
:func:`teardown`, the clean-up a failed create and the factory use too."""

from __future__ import annotations

import os
import shutil
import signal as _signal
import time
from typing import TYPE_CHECKING

from ...errors import SystemError
from .. import cgroups, store
from ..state import Status, require

if TYPE_CHECKING:
    from . import Container

_KILL_WAIT = 5.0  # seconds to wait for SIGKILLed processes to leave the cgroup
_FOREIGN_WAIT = 0.5  # seconds the processes of a stopped container's PID namespace get to be gone


def destroy(c: Container, force: bool, timeout: float, exit_wait: float) -> None:
    """:meth:`Container.destroy`; raises as it does."""
    if not os.path.isdir(c._dir):
        return
    if force:
        c.stop(timeout=timeout, exit_wait=exit_wait)
    with store.locked(c._dir):
        status = c.status()
        require("destroy", status, c._id)
        # Leftovers survive init when the PID namespace is shared, and a created init must go too.
        c._cgroup.close()
        if status == Status.STOPPED and not _cgroup_still_ours(c):
            teardown(None, c._dir)  # the cgroup is another container's now: leave it be
        else:
            teardown(c._cgroup, c._dir)
        c._state = None
    # After the container is gone (runtime-spec); a failure is a warning, as runc's delete.
    c._run_hooks("poststop", "stopped", None, warn=True)


def _cgroup_still_ours(c: Container) -> bool:
    """False when, our init being dead, the cgroup holds processes that cannot be ours.

    With a private PID namespace every process of the container dies with its init (the last
    ones within milliseconds). Processes that stay are another container's that took the
    same cgroup path after ours stopped (two configs giving one ``cgroupsPath``; the same id
    in two roots no longer can: each root has its own parent): destroying ours must neither
    kill them nor remove their cgroup.
    """
    if not c._config.private_namespace("NEWPID") or not c._cgroup.exists():
        return True
    deadline = time.monotonic() + _FOREIGN_WAIT
    while c._cgroup.get_all_pids():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def teardown(cg: cgroups.Manager | None, state_dir: str) -> None:
    """Kill whatever is left in ``cg``, remove it and ``state_dir`` (libcontainer's ``destroy(c)``).

    ``cg`` None leaves cgroups alone (none of them is ours). Safe to repeat after a crash half-way:
    missing cgroup directories are skipped, present ones (on any hierarchy) removed.
    """
    if cg is not None:
        _kill_cgroup(cg)
        cg.destroy()
    if os.path.exists(os.path.join(state_dir, "network.json")):  # network.NETWORK_FILE, without its import
        from .. import network

        network.release(state_dir)  # after the kill: the container end of the veth is gone with its namespace
    shutil.rmtree(state_dir, ignore_errors=True)


def _kill_cgroup(cg: cgroups.Manager) -> None:
    """SIGKILL everything in ``cg`` and wait (bounded) until it is empty."""
    deadline = time.monotonic() + _KILL_WAIT
    while cg.get_all_pids():
        cg.kill_all(_signal.SIGKILL)
        if time.monotonic() > deadline:
            raise SystemError(f"processes of {cg.paths()} did not die after SIGKILL")
        time.sleep(0.002)
