"""Observe → plan: what ``apply`` would do to make the containers of a root match the specs.

The plan compares, container by container, the desired spec (normalized), the spec last applied
(the ``dct.spec`` label the container was created with) and what is observed now (status, and
the resources ``set()`` last saved), field by field. Each difference becomes one :class:`Action`
with its class and cause:

- ``create``: no such container; ``destroy``: ``state: absent``; ``prune``: ours, from the given
  paths, no longer declared (acted on only with ``--prune``);
- ``recreate``: a field only a new container can change (rootfs, process, mounts, namespaces…);
- ``live``: resources, applied in place through ``Container.set()``;
- ``lifecycle``: start, pause, resume, stop, or restart of a container that exited.

Stdlib only beyond the spec models; nothing here changes a container.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field

from ..configs import LIMIT_FIELDS
from ..runtime import Runtime, Status
from ..units import UNLIMITED, format_size
from .convert import LABEL_MANAGER, LABEL_SOURCE, LABEL_SPEC, MANAGER, MUTABLE_FIELDS, spec_hash

KINDS = ("create", "recreate", "live", "lifecycle", "destroy", "prune")
# Resources whose "no limit" value the kernel shows: equal to an absent field.
_RESOURCE_DEFAULTS = {"memory": UNLIMITED, "memory_reservation": UNLIMITED, "memory_swap": UNLIMITED,
                      "cpu_quota": UNLIMITED, "pids_limit": UNLIMITED, "cpu_shares": 1024, "cpu_period": 100000}
_SIZES = ("memory", "memory_reservation", "memory_swap")


@dataclass(frozen=True)
class Action:
    """One step of a plan for one container.

    ``kind`` is one of :data:`KINDS`; ``steps`` the runtime operations in order (``stop``,
    ``destroy``, ``create``, ``start``, ``pause``, ``resume``, ``set``); ``resources`` the
    libcontainer fields a ``set`` writes (bytes, shares, µs; -1 lifts a limit).
    """

    container: str
    kind: str
    cause: str
    steps: tuple[str, ...]
    resources: dict = field(default_factory=dict)

    def __str__(self) -> str:
        if self.kind == "live":
            return f"{self.container}: live update {self.cause}"
        return f"{self.container}: {self.kind} ({self.cause})"

    def to_dict(self) -> dict[str, object]:
        """JSON form (``dct plan --json``)."""
        return {"container": self.container, "class": self.kind, "cause": self.cause, "steps": list(self.steps),
                "resources": self.resources}


@dataclass
class Observed:
    """A container as found in the state root."""

    id: str
    status: Status
    owned: bool
    source: str
    applied: dict  # the normalized spec it was created with ({} when not ours)
    resources: dict  # libcontainer Resources fields in force (what set() saved)
    container: object = None


@dataclass
class Plan:
    """Actions in no particular order (apply orders them), plus problems and notes.

    ``errors``: containers that cannot be reconciled (a name taken by a container we did not
    make); ``notes``: things left alone (unmanaged containers, prune candidates without ``--prune``).
    ``fingerprint``: the observed state the plan was made from (``apply --plan`` refuses if it moved).
    """

    actions: list[Action] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    fingerprint: str = ""

    def to_dict(self) -> dict[str, object]:
        return {"actions": [a.to_dict() for a in self.actions], "errors": self.errors, "notes": self.notes,
                "fingerprint": self.fingerprint}


def observe(runtime: Runtime) -> dict[str, Observed]:
    """Every container of the root, by id, with its status and what it was created from."""
    out = {}
    for c in runtime.list():
        owned = c.config.label(LABEL_MANAGER) == MANAGER
        try:
            applied = json.loads(c.config.label(LABEL_SPEC) or "{}") if owned else {}
        except ValueError:
            applied = {}
        out[c.id] = Observed(c.id, c.status(), owned, c.config.label(LABEL_SOURCE) or "", applied,
                             c.config.cgroups.resources.limits(), c)
    return out


def fingerprint(observed: dict[str, Observed]) -> str:
    """A digest of the observed state (ids, statuses, applied hashes, resources)."""
    import hashlib

    items = sorted((o.id, o.status.value, o.owned, json.dumps(o.applied, sort_keys=True),
                    json.dumps(o.resources, sort_keys=True)) for o in observed.values())
    return hashlib.sha256(json.dumps(items).encode()).hexdigest()[:16]


def make_plan(docs, observed: dict[str, Observed], prune: bool = False, scope: list[str] | None = None) -> Plan:
    """The plan that makes ``observed`` match ``docs`` (``SpecDocument``-likes: ``.spec``, ``.source``).

    ``scope``: absolute files/directories the specs came from; prune candidates are our
    containers whose source lies in them and which no spec names any more.
    """
    plan = Plan(fingerprint=fingerprint(observed))
    declared = set()
    for doc in docs:
        spec = doc.spec
        declared.add(spec.name)
        obs = observed.get(spec.name)
        if obs is not None and not obs.owned:
            plan.errors.append(f"{spec.name}: a container with this name exists and was not made by declarative-ct "
                               "(delete it or rename the spec)")
            continue
        action = _plan_one(spec, obs)
        if action is not None:
            plan.actions.append(action)
    for obs in sorted(observed.values(), key=lambda o: o.id):
        if obs.id in declared:
            continue
        if not obs.owned:
            plan.notes.append(f"{obs.id}: unmanaged (not made by declarative-ct), left alone")
        elif _in_scope(obs.source, scope or []):
            if prune:
                plan.actions.append(Action(obs.id, "prune", "no longer in specs", _teardown(obs.status)))
            else:
                plan.notes.append(f"{obs.id}: no longer in specs (apply --prune removes it)")
    return plan


def _in_scope(source: str, scope: list[str]) -> bool:
    return bool(source) and any(source == p or source.startswith(p.rstrip("/") + "/") for p in scope)


def _teardown(status: Status) -> tuple[str, ...]:
    return ("stop", "destroy") if status in (Status.RUNNING, Status.PAUSED, Status.PAUSING) else ("destroy",)


def _startup(state: str) -> tuple[str, ...]:
    return {"running": ("create", "start"), "paused": ("create", "start", "pause"), "stopped": ("create",)}[state]


def _plan_one(spec, obs: Observed | None) -> Action | None:
    name, state = spec.name, spec.state
    if state == "absent":
        return None if obs is None else Action(name, "destroy", "state: absent", _teardown(obs.status))
    if obs is None:
        return Action(name, "create", "not created yet" if state != "stopped" else "not created yet; state: stopped",
                      _startup(state))
    desired = spec.normalized()
    changed = _changed_fields(obs.applied, desired)
    if spec_hash(desired) != spec_hash(obs.applied) or not obs.applied:
        return Action(name, "recreate", f"{', '.join(changed) or 'spec'} changed",
                      _teardown(obs.status) + _startup(state))
    status = Status.PAUSED if obs.status == Status.PAUSING else obs.status
    if status == Status.STOPPED and state in ("running", "paused"):
        return Action(name, "lifecycle", "restart: it exited", _teardown(status) + _startup(state))
    live = _resource_changes(desired["resources"], obs.resources)
    lifecycle = {
        (Status.CREATED, "running"): ("start",), (Status.CREATED, "paused"): ("start", "pause"),
        (Status.RUNNING, "paused"): ("pause",), (Status.RUNNING, "stopped"): ("stop",),
        (Status.PAUSED, "running"): ("resume",), (Status.PAUSED, "stopped"): ("stop",),
    }.get((status, state), ())
    if live and not lifecycle:
        return Action(name, "live", ", ".join(_describe(k, obs.resources.get(k), v) for k, v in live.items()),
                      ("set",), live)
    if lifecycle:
        cause = f"{status.value} → {state}"
        if live:  # resources first, while the container is in a state that takes them
            cause += "; resources " + ", ".join(_describe(k, obs.resources.get(k), v) for k, v in live.items())
        return Action(name, "lifecycle", cause, (("set",) if live and status != Status.STOPPED else ()) + lifecycle,
                      live)
    return None


def _changed_fields(applied: dict, desired: dict, prefix: str = "") -> list[str]:
    """Dotted names of the immutable fields that differ (nested one level: ``process.args``)."""
    out = []
    for key in sorted(set(applied) | set(desired)):
        if not prefix and key in MUTABLE_FIELDS:
            continue
        a, d = applied.get(key), desired.get(key)
        if a == d:
            continue
        if isinstance(a, dict) and isinstance(d, dict) and not prefix:
            out.extend(_changed_fields(a, d, f"{key}."))
        else:
            out.append(prefix + key)
    return out


def _effective(resources: dict) -> dict:
    """Without the fields at their default value: "unset" and "the default" compare equal."""
    return {k: v for k, v in resources.items()
            if v is not None and _RESOURCE_DEFAULTS.get(k) != v and not (k in _RESETS and _reset_value(k) == v)}


def _resource_changes(desired: dict, observed: dict) -> dict:
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
        return ",".join(str(c) for c in sorted(online_cpus("cpu" if name == "cpuset_cpus" else "node")))
    return 100  # blkio_weight: the BFQ / io.weight default


def _describe(name: str, old: object, new: object) -> str:
    def show(v: object) -> str:
        if v is None or v == _RESOURCE_DEFAULTS.get(name):
            return "unset" if v is None else "unlimited" if v == UNLIMITED else str(v)
        return format_size(v) if name in _SIZES else str(v)

    return f"resources.{name} {show(old)} → {show(new)}"


def scope_of(paths: list[str]) -> list[str]:
    """The absolute files/directories a set of spec paths covers (for prune)."""
    return [os.path.abspath(p) for p in paths]
