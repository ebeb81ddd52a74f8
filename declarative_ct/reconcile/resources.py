"""Resource limits as the planner compares them: "unset" and "the kernel's default" are equal.

A live update writes only the limits that differ (:func:`resource_changes`); a limit removed
from the spec is lifted (``-1``, every CPU, weight 100). libcontainer ``Resources`` field names
and units (bytes, shares, µs). Used by :mod:`.plan` and the Ansible module's diff (:func:`effective`).
"""

from __future__ import annotations

from ..configs import LIMIT_FIELDS, format_cpu_list
from ..units import UNLIMITED, format_size

# Resources whose "no limit" value the kernel shows: equal to an absent field.
_RESOURCE_DEFAULTS = {"memory": UNLIMITED, "memory_reservation": UNLIMITED, "memory_swap": UNLIMITED,
                      "cpu_quota": UNLIMITED, "pids_limit": UNLIMITED, "cpu_shares": 1024, "cpu_period": 100000}
_SIZES = ("memory", "memory_reservation", "memory_swap")


def effective(resources: dict) -> dict:
    """The limits of ``resources`` (libcontainer ``Resources`` fields) as the plan compares them: a field
    at its "no limit" or kernel default value (``-1``, 1024 shares, every CPU…) is left out, so that
    "unset" and "the default" compare equal. For views of a container's limits (the Ansible diff)."""
    return _effective(resources)


def _effective(resources: dict) -> dict:
    """Without the fields at their default value: "unset" and "the default" compare equal."""
    return {k: v for k, v in resources.items()
            if v is not None and _RESOURCE_DEFAULTS.get(k) != v and not (k in _RESETS and _reset_value(k) == v)}


def resource_changes(desired: dict, observed: dict) -> dict:
    """``{field: value}`` to write so that ``observed`` becomes ``desired``; a removed limit is lifted."""
    want, have = _effective(desired), _effective(observed)
    out = {k: v for k, v in want.items() if have.get(k) != v}
    for k in have.keys() - want.keys():
        out[k] = _RESOURCE_DEFAULTS[k] if k in _RESOURCE_DEFAULTS else _reset_value(k)
    return {k: out[k] for k in LIMIT_FIELDS if k in out}  # libcontainer's field order, for stable output


_RESETS = ("cpuset_cpus", "cpuset_mems", "blkio_weight")


def _reset_value(name: str) -> object:
    """What a removed cpuset or blkio weight goes back to: every online CPU/node, weight 100."""
    from ..runtime.cgroups import online_cpus

    if name in ("cpuset_cpus", "cpuset_mems"):
        return format_cpu_list(online_cpus("cpu" if name == "cpuset_cpus" else "node"))
    return 100  # blkio_weight: the BFQ / io.weight default


def describe(name: str, old: object, new: object) -> str:
    """A plan's cause for the resource ``name`` going from ``old`` to ``new``: ``memory 64Mi -> 128Mi``,
    with ``unset`` and ``unlimited`` spelled out."""
    def show(v: object) -> str:
        if v is None or v == _RESOURCE_DEFAULTS.get(name):
            return "unset" if v is None else "unlimited" if v == UNLIMITED else str(v)
        return format_size(v) if name in _SIZES else str(v)

    return f"resources.{name} {show(old)} → {show(new)}"
