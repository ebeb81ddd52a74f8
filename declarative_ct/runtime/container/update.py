"""A running container's resources: live limits (libcontainer ``Set()``, ``runc update``) and
usage (libcontainer ``Stats()``)."""

from __future__ import annotations

import dataclasses
import os
from typing import TYPE_CHECKING

from ...configs import Config, pair_memory_swap
from ...errors import ContainerNotRunning, SystemError
from .. import store
from ..state import State, require

if TYPE_CHECKING:
    from ..stats import Stats
    from . import Container


def set_resources(c: Container, config: Config) -> None:
    """:meth:`Container.set`; raises as it does."""
    with store.locked(c._dir):
        reload(c)  # another handle (dct update, the TUI) may have changed the limits since
        require("set", c.status(), c._id)  # (stopped too when there is no state)
        current = c._config
        update = pair_memory_swap(config.cgroups.resources, current.cgroups.resources)
        written = c._cgroup.set(update)
        try:
            new = dataclasses.replace(current, cgroups=dataclasses.replace(
                current.cgroups, resources=current.cgroups.resources.merged(update)))
            state = dataclasses.replace(c._state, config=new.to_dict())
            store.write_json_atomic(os.path.join(c._dir, store.STATE_FILE), state.to_dict())
        except BaseException as err:
            errors = written.rollback()  # state.json keeps the old limits: so must the kernel
            if not isinstance(err, OSError):
                raise
            undone = (f"restoring the previous limits failed too: {'; '.join(errors)}" if errors
                      else "the previous limits are back in force")
            raise SystemError(f"cannot save {err.filename}: {err.strerror}; {undone}") from err
        c._config, c._state = new, state


def reload(c: Container) -> None:
    """Re-read state.json (the caller holds the lock): the saved config is the one in force."""
    try:
        raw = store.read_json(os.path.join(c._dir, store.STATE_FILE))
    except FileNotFoundError:
        return  # not started yet, or destroyed: status() says which
    c._state = State.from_dict(raw)
    c._config = Config.from_dict(c._state.config)


def stats(c: Container) -> Stats:
    """:meth:`Container.stats`; raises as it does."""
    if c._state is None:
        raise ContainerNotRunning(f"container {c._id} has not been started")
    cgroup_stats = c._cgroup.stats()
    if cgroup_stats.cpu_stats is None and cgroup_stats.memory_stats is None and not c._cgroup.exists():
        raise ContainerNotRunning(f"container {c._id} is not running (its cgroup is gone)")
    from ..stats import NetworkInterface, Stats  # here: the stats classes cost other CLI verbs ~5 ms

    interfaces = []
    if c._config.networks:
        from .. import network

        if c._network is None:
            c._network = network.load(c._dir)
        counters = network.interface_counters(c._network, c._state.init_process_pid) if c._network else None
        if counters is not None:
            interfaces.append(NetworkInterface(Name=c._network["host_interface_name"], **counters))
    return Stats(cgroup_stats=cgroup_stats, interfaces=interfaces)
