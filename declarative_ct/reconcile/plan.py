"""Observe → plan: what ``apply`` would do to make the containers of a root match the specs.

The plan compares, container by container, the desired spec (normalized), the spec last applied
(the ``dct.spec`` label the container was created with) and what is observed now (status, and
the resources ``set()`` last saved), field by field. Each difference becomes one :class:`Action`
with its class and cause:

- ``create``: no such container; ``destroy``: ``state: absent``; ``prune``: ours, from the given
  paths, no longer declared (acted on only with ``--prune``);
- ``recreate``: a field only a new container can change (rootfs, process, mounts, namespaces,
  logging…); the cause names them, with the old and new values for the short ones
  (``logging.max_size 10Mi → 20Mi``);
- ``live``: resources, applied in place through ``Container.set()``;
- ``lifecycle``: start, pause, resume, stop, or restart of a container that exited, as its
  restart policy says (:mod:`.restart`: ``never`` leaves it exited, a restart waiting for its
  backoff is a note; the records to keep go in ``Plan.restarts``), or of an unhealthy one (:mod:`.unhealthy`).

Stdlib only beyond the spec models; nothing here changes a container.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field

from ..errors import ContainerError, StateCorrupt
from ..runtime import Runtime, Status, store
from ..spec.desired import desired_documents
from ..spec.forms import joined_container
from ..units import format_size, parse_time
from . import last_applied, restart as restarting, unhealthy
from .kinds import ActionKind, Step
from .convert import LABEL_SOURCE, MUTABLE_FIELDS, made_by_apply, spec_hash
from .resources import describe as _describe
from .resources import effective  # noqa: F401 - importers (the Ansible module) take it from here
from .resources import resource_changes as _resource_changes

KINDS = ActionKind.ALL


@dataclass(frozen=True)
class Action:
    """One step of a plan for one container.

    ``kind`` is an :class:`~.kinds.ActionKind`; ``steps`` the runtime operations in order
    (:class:`~.kinds.Step`: ``stop``, ``destroy``, ``create``, ``start``, ``pause``, ``resume``,
    ``signal``, ``set``); ``resources`` the libcontainer fields a ``set`` writes (bytes, shares,
    µs; -1 lifts a limit). ``restart``: the restart record apply stores before it runs the steps
    (a restart under the policy, with its count; a start after ``state: stopped``, a fresh count),
    else None; not in :meth:`to_dict`, not compared.
    """

    container: str
    kind: str
    cause: str
    steps: tuple[str, ...]
    resources: dict = field(default_factory=dict)
    restart: dict | None = field(default=None, compare=False)

    def __str__(self) -> str:
        if self.kind == ActionKind.LIVE:
            return f"{self.container}: live update {self.cause}"
        return f"{self.container}: {self.kind} ({self.cause})"

    def to_dict(self) -> dict[str, object]:
        """JSON form (``dct plan --json``)."""
        return {"container": self.container, "class": self.kind, "cause": self.cause, "steps": list(self.steps),
                "resources": self.resources}


@dataclass
class Observed:
    """A container as found in the state root (one whose state.json is corrupt has ``error`` set and
    status ``unknown``: never planned against, never taken for absent)."""

    id: str
    status: Status
    owned: bool
    source: str
    applied: dict  # the normalized spec it was created with ({} when not ours)
    resources: dict  # libcontainer Resources fields in force (what set() saved)
    container: object = None
    created: str = ""  # state.json's created (RFC 3339): identifies this run of the container
    exit: dict | None = None  # exit.json when stopped (exit_code, signal, oom_killed, exited_at)
    restart: dict | None = None  # the reconciler's restart record (restart.load_record)
    error: str = ""  # state.json cannot be read: status unknown, container None, nothing else known


@dataclass
class Plan:
    """Actions in no particular order (apply orders them), plus problems and notes.

    ``errors``: containers that cannot be reconciled (a name taken by a container we did not
    make); ``notes``: things left alone (unmanaged containers, prune candidates without ``--prune``,
    exited containers the restart policy keeps down or holds back for now).
    ``fingerprint``: the observed state the plan was made from (``apply --plan`` refuses if it moved).
    ``restarts``: restart records to store now (``apply.record_restarts``), by container;
    ``next_restart``: the earliest restart held back by its backoff (epoch seconds), or None.
    """

    actions: list[Action] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    fingerprint: str = ""
    restarts: dict[str, dict] = field(default_factory=dict)
    next_restart: float | None = None

    def to_dict(self) -> dict[str, object]:
        return {"actions": [a.to_dict() for a in self.actions], "errors": self.errors, "notes": self.notes,
                "fingerprint": self.fingerprint}

    def matches(self, fingerprint: str | None, actions) -> bool:
        """Whether this plan, made again now, is the one shown: the same observed state
        (``fingerprint``) and the same actions (``actions``: their dicts, as ``plan --json`` saves
        them). ``dct apply --plan`` and the TUI apply only then."""
        return (actions is not None and fingerprint == self.fingerprint
                and [a.to_dict() for a in self.actions] == list(actions))


def observe(runtime: Runtime, cache: dict | None = None) -> dict[str, Observed]:
    """Every container of the root, by id, with its status, what it was created from, its exit
    record when stopped and, for ours, the reconciler's restart record.

    ``cache``: a dict kept by a long-running caller (``watch``) between calls; a container whose
    state.json is unchanged (inode, size, mtime) is not parsed again, only its status derived anew.
    """
    restarting.migrate_records(runtime)  # an upgrade from records under the state root
    out = {}
    for name in store.container_entries(runtime.root):
        try:
            st = os.stat(os.path.join(runtime.root, name, store.STATE_FILE))
        except OSError:
            continue  # not created yet (or half-created): not a container to plan against
        identity = (st.st_ino, st.st_size, st.st_mtime_ns)
        hit = cache.get(name) if cache is not None else None
        if hit is not None and hit[0] == identity:
            _, c, owned, applied = hit
        else:
            try:
                c = runtime.load(name)
            except StateCorrupt as err:
                # Its processes may run: a create of that name would fail, a prune cannot tell it is ours.
                out[name] = Observed(name, Status.UNKNOWN, False, "", {}, {},
                                     error=err.reason if err.reason is not None else str(err))
                continue
            except ContainerError:
                continue
            owned = made_by_apply(c.config)
            applied = last_applied.read(c.config) if owned else {}
            if cache is not None:
                cache[name] = (identity, c, owned, applied)
        status = c.status()
        out[c.id] = Observed(c.id, status, owned, c.config.label(LABEL_SOURCE) or "", applied,
                             c.config.cgroups.resources.limits(), c, created=c.state().created,
                             exit=c.exit_status() if status == Status.STOPPED else None,
                             restart=restarting.load_record(runtime, c.id) if owned else None)
    if cache is not None:
        for gone in set(cache) - set(out):
            del cache[gone]
    return out


def fingerprint(observed: dict[str, Observed]) -> str:
    """A digest of the observed state (ids, statuses, applied hashes, resources)."""
    import hashlib

    items = sorted((o.id, o.status.value, o.owned, json.dumps(o.applied, sort_keys=True),
                    json.dumps(o.resources, sort_keys=True)) for o in observed.values())
    return hashlib.sha256(json.dumps(items).encode()).hexdigest()[:16]


def make_plan(docs, observed: dict[str, Observed], prune: bool = False, scope: list[str] | None = None,
              now: float | None = None, verb: str = "apply", recreate: frozenset[str] | set[str] = frozenset()) -> Plan:
    """The plan that makes ``observed`` match ``docs`` (``SpecDocument``-likes: ``.spec``, ``.source``;
    each read as its :class:`~declarative_ct.spec.desired.DesiredSpec`).

    ``scope``: absolute files/directories the specs came from; prune candidates are our
    containers whose source lies in them and which no spec names any more. ``now``: the wall
    clock (epoch seconds; default ``time.time()``) against which restart backoffs are measured.
    ``verb``: the command named in the note about prune candidates (``apply`` or ``watch``).
    ``recreate``: names to recreate even when their spec did not change (the Ansible module's
    ``recreate: true``, docker's ``--force-recreate``); a container to create, recreate anyway or
    destroy keeps its action.
    """
    import time

    now = time.time() if now is None else now
    docs = desired_documents(docs)
    plan = Plan(fingerprint=fingerprint(observed))
    declared = set()
    for doc in docs:
        spec = doc.spec
        declared.add(spec.name)
        obs = observed.get(spec.name)
        if obs is not None and obs.error:
            plan.errors.append(f"{spec.name}: {obs.error}; not planned (dct delete --force {spec.name} removes it)")
            continue
        if obs is not None and not obs.owned:
            plan.errors.append(f"{spec.name}: a container with this name exists and was not made by declarative-ct "
                               "(delete it or rename the spec)")
            continue
        action = _plan_one(spec, obs, plan, now)
        if spec.name in recreate and obs is not None and spec.state != "absent" and (
                action is None or action.kind not in (ActionKind.CREATE, ActionKind.RECREATE)):
            action = Action(spec.name, ActionKind.RECREATE, "recreate requested",
                            _teardown(obs.status) + _startup(spec.state))
        if spec.reload_on and obs is not None and obs.status == Status.RUNNING and (
                action is None or action.kind == ActionKind.LIVE):
            action = _reload(spec, obs, plan, action)
        if action is not None:
            plan.actions.append(action)
    _follow_network_owners(docs, observed, plan)
    for obs in sorted(observed.values(), key=lambda o: o.id):
        if obs.id in declared:
            continue
        if obs.error:
            plan.notes.append(f"{obs.id}: {obs.error}; left alone (dct delete --force {obs.id} removes it)")
        elif not obs.owned:
            plan.notes.append(f"{obs.id}: unmanaged (not made by declarative-ct), left alone")
        elif in_scope(obs.source, scope or []):
            if prune:
                plan.actions.append(Action(obs.id, ActionKind.PRUNE, "no longer in specs", _teardown(obs.status)))
            else:
                plan.notes.append(f"{obs.id}: no longer in specs ({verb} --prune removes it)")
    return plan


def _follow_network_owners(docs, observed: dict[str, Observed], plan: Plan) -> None:
    """A container made anew takes a new network namespace: those joined to the old one
    (``network.mode: container:<name>``) are recreated after it, as compose does for
    ``network_mode: service:<name>``."""
    by_name = {a.container: i for i, a in enumerate(plan.actions)}
    remade = {a.container for a in plan.actions if Step.CREATE in a.steps}
    changed = True
    while changed:
        changed = False
        for doc in docs:
            spec, obs = doc.spec, observed.get(doc.spec.name)
            owner = joined_container({"mode": spec.network_mode})
            if owner not in remade or spec.name in remade or obs is None or not obs.owned or spec.state == "absent":
                continue
            action = Action(spec.name, ActionKind.RECREATE, f"network namespace owner {owner} is made anew",
                            _teardown(obs.status) + _startup(spec.state))
            if spec.name in by_name:
                plan.actions[by_name[spec.name]] = action
            else:
                by_name[spec.name] = len(plan.actions)
                plan.actions.append(action)
            remade.add(spec.name)
            changed = True


def reload_hash(paths: list[str]) -> str:
    """sha256 over the files' paths and contents (a missing or unreadable file counts as such)."""
    import hashlib

    digest = hashlib.sha256()
    for path in sorted(paths):
        digest.update(path.encode() + b"\0")
        try:
            with open(path, "rb") as f:
                digest.update(hashlib.sha256(f.read()).digest())
        except OSError as err:
            digest.update(f"unreadable: {err.errno}".encode())
    return digest.hexdigest()


def _reload(spec, obs: Observed, plan: Plan, action: Action | None) -> Action | None:
    """A ``signal`` (reload) when a ``reload_on`` file changed since this run of the container saw it.

    The first look at a run only records the files' hash (in the reconciler's record for the
    container); later changes send ``reload_signal``, merged into a live update if there is one.
    """
    now_hash = reload_hash(spec.reload_on)
    record = plan.restarts.get(spec.name) or obs.restart or {}
    if record.get("reload_run") != obs.created:
        plan.restarts[spec.name] = {**record, "reload_run": obs.created, "reload_hash": now_hash}
        return action
    if record.get("reload_hash") == now_hash:
        return action
    changed = {**record, "reload_hash": now_hash}
    cause = f"reload_on changed: {spec.reload_signal}"
    if action is None:
        return Action(spec.name, ActionKind.SIGNAL, cause, (Step.SIGNAL,), restart=changed)
    return Action(spec.name, ActionKind.LIVE, f"{action.cause}; {cause}", action.steps + (Step.SIGNAL,),
                  action.resources, restart=changed)


def in_scope(source: str, scope: list[str]) -> bool:
    """True when ``source`` is one of the given files or directly in a given directory (loading is not recursive)."""
    return bool(source) and any(source == p or os.path.dirname(source) == p.rstrip("/") for p in scope)


def _teardown(status: Status) -> tuple[str, ...]:
    return (Step.STOP, Step.DESTROY) if status in (Status.RUNNING, Status.PAUSED, Status.PAUSING) else (Step.DESTROY,)


def _startup(state: str) -> tuple[str, ...]:
    return {"running": (Step.CREATE, Step.START), "paused": (Step.CREATE, Step.START, Step.PAUSE),
            "stopped": (Step.CREATE,)}[state]


def _plan_one(spec, obs: Observed | None, plan: Plan, now: float) -> Action | None:
    name, state = spec.name, spec.state
    if state == "absent":
        return None if obs is None else Action(name, ActionKind.DESTROY, "state: absent", _teardown(obs.status))
    if obs is None:
        return Action(name, ActionKind.CREATE,
                      "not created yet" if state != "stopped" else "not created yet; state: stopped", _startup(state))
    desired = spec.normalized()
    if spec_hash(desired) != spec_hash(obs.applied) or not obs.applied:
        return Action(name, ActionKind.RECREATE, _recreate_cause(obs.applied, desired),
                      _teardown(obs.status) + _startup(state))
    status = Status.PAUSED if obs.status == Status.PAUSING else obs.status
    if status == Status.STOPPED and state in ("running", "paused"):
        if obs.created and (obs.restart or {}).get("stopped_run") == obs.created:
            # stopped by apply (state: stopped), not an exit: the spec asks for it again, a fresh count
            return Action(name, ActionKind.LIFECYCLE, f"stopped → {state}", _teardown(status) + _startup(state),
                          restart={"restarts": 0})
        return _restart(spec, obs, plan, now)
    if status in (Status.RUNNING, Status.PAUSED):
        reset = restarting.reset_if_ran(obs.restart, parse_time(obs.created), now)
        if reset is not None:
            plan.restarts[name] = reset
        if state == "running" and (sick := unhealthy.plan_restart(spec, desired, obs, plan, now)) is not None:
            return sick  # health.on_unhealthy: restart (.unhealthy)
    # A stopped container takes no limits (set() needs a live init); it gets the spec's when it is started.
    live = _resource_changes(desired["resources"], obs.resources) if status != Status.STOPPED else {}
    lifecycle = {
        (Status.CREATED, "running"): (Step.START,), (Status.CREATED, "paused"): (Step.START, Step.PAUSE),
        (Status.RUNNING, "paused"): (Step.PAUSE,), (Status.RUNNING, "stopped"): (Step.STOP,),
        (Status.PAUSED, "running"): (Step.RESUME,), (Status.PAUSED, "stopped"): (Step.STOP,),
    }.get((status, state), ())
    if live and not lifecycle:
        return Action(name, ActionKind.LIVE, ", ".join(_describe(k, obs.resources.get(k), v) for k, v in live.items()),
                      (Step.SET,), live)
    if lifecycle:
        cause = f"{status.value} → {state}"
        if live:  # resources first, while the container is in a state that takes them
            cause += "; resources " + ", ".join(_describe(k, obs.resources.get(k), v) for k, v in live.items())
        return Action(name, ActionKind.LIFECYCLE, cause, ((Step.SET,) if live else ()) + lifecycle, live)
    return None


def _restart(spec, obs: Observed, plan: Plan, now: float) -> Action | None:
    """A container that should run has exited: what its restart policy says (:func:`restart.decide`)."""
    name = spec.name
    decision = restarting.decide(spec.restart, obs.restart, obs.created, obs.exit,
                                 parse_time(obs.created), now)
    if decision.record != obs.restart:
        plan.restarts[name] = decision.record
    if decision.kind == "restart":
        return Action(name, ActionKind.LIFECYCLE, "restart: " + decision.describe(name),
                      _teardown(obs.status) + _startup(spec.state), restart=decision.after)
    plan.notes.append(decision.describe(name))
    if decision.kind == "wait":
        due = decision.record["next_restart"]
        plan.next_restart = due if plan.next_restart is None else min(plan.next_restart, due)
    return None


# Immutable fields a recreate's cause shows with their values (short ones), as the spec writes them.
_SHOWN_FIELDS = {"logging.max_size": format_size, "logging.max_files": str}


def _recreate_cause(applied: dict, desired: dict) -> str:
    """``process.args, mounts changed; logging.max_size 10Mi → 20Mi``: the changed immutable fields,
    those of :data:`_SHOWN_FIELDS` with their old and new values; ``spec changed`` when none is named."""
    changed = _changed_fields(applied, desired)
    named = [f for f in changed if f not in _SHOWN_FIELDS]
    parts = [f"{', '.join(named)} changed"] if named else []
    for f in changed:
        if f in _SHOWN_FIELDS:
            top, key = f.split(".")
            old, new = (("unset" if v is None else _SHOWN_FIELDS[f](v)) for v in (applied[top].get(key),
                                                                                desired[top].get(key)))
            parts.append(f"{f} {old} → {new}")
    return "; ".join(parts) or "spec changed"


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


def scope_of(paths: list[str]) -> list[str]:
    """The absolute files/directories a set of spec paths covers (for prune)."""
    return [os.path.abspath(p) for p in paths]
