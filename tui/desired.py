"""The desired-state side as the TUI shows it: drift per container (:class:`DesiredView`, from the
backend), the field-level spec diff (:func:`spec_diff`), the plan preview (:class:`PlanView`,
:func:`group_actions`). Pure, no Textual; drift itself is classified by the reconciler
(``declarative_ct.reconcile.drift.classify_drift``, as ``dct status``)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from declarative_ct.reconcile import drift
from declarative_ct.runtime.state import Status
from declarative_ct.reconcile.kinds import ActionKind


DRIFTS = drift.DRIFTS
ACTION_KINDS = ActionKind.ALL
"""The reconciler's action classes (``declarative_ct.reconcile.plan.KINDS``), in display order."""


@dataclass(frozen=True)
class DesiredEntry:
    """The desired-state side of one container name (from the specs and the plan).

    ``drift``: see :func:`classify_drift`; ``cause``: the plan's cause (or the restart policy's
    note); ``action``: the plan's action class for it (None: nothing to do); ``desired``: the
    normalized spec (None: not declared); ``applied``: the normalized spec it was created with
    (``dct.spec`` label; {} when not ours); ``observed_resources``: libcontainer resource fields
    in force; ``live_changes``: ``{field: value}`` the plan would write live; ``source``/``line``:
    where the spec is (or, for an undeclared container, the file it came from); ``restarts``,
    ``next_restart`` (epoch seconds) and ``last_exit`` (``{exit_code, signal, oom_killed,
    exited_at}``: the last exit the restart policy saw, kept across its restarts): the reconciler's
    restart record, for containers it made.
    """

    name: str
    drift: str
    desired_state: str | None = None
    cause: str = ""
    action: str | None = None
    steps: tuple[str, ...] = ()
    desired: Mapping | None = None
    applied: Mapping = field(default_factory=dict)
    observed_resources: Mapping = field(default_factory=dict)
    live_changes: Mapping = field(default_factory=dict)
    source: str = ""
    line: int = 0
    restarts: int | None = None
    next_restart: float | None = None
    last_exit: Mapping | None = None


@dataclass(frozen=True)
class DesiredView:
    """Drift of every container name (declared or observed), the plan's notes and any spec errors."""

    entries: Mapping[str, DesiredEntry] = field(default_factory=dict)
    notes: tuple[str, ...] = ()
    errors: tuple[str, ...] = ()


@dataclass(frozen=True)
class PlanView:
    """A plan as the plan modal shows it: ``actions`` as ``Action.to_dict()`` dicts
    (``container``, ``class``, ``cause``, ``steps``, ``resources``), notes, errors, the
    observed-state ``fingerprint`` it was made from, and whether prune was on."""

    actions: tuple[Mapping, ...] = ()
    notes: tuple[str, ...] = ()
    errors: tuple[str, ...] = ()
    fingerprint: str = ""
    prune: bool = False


@dataclass(frozen=True)
class DiffLine:
    """One field that differs: dotted ``field``, ``observed`` and ``desired`` values (as text), and
    what the reconciler does about it (``klass``: recreate, live, lifecycle, create, none)."""

    field: str
    observed: str
    desired: str
    klass: str


def _flatten(value: object, prefix: str, depth: int, out: dict[str, object]) -> None:
    if isinstance(value, Mapping) and depth > 0 and value:
        for k in value:
            _flatten(value[k], f"{prefix}.{k}" if prefix else str(k), depth - 1, out)
    else:
        out[prefix] = value


def _show(value: object) -> str:
    import json

    if value is None:
        return "(unset)"
    if isinstance(value, str):
        return value
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def _show_size(value: object) -> str:
    """A size in bytes as the spec writes it (``10Mi``)."""
    from declarative_ct.units import format_size

    return format_size(value) if isinstance(value, int) and not isinstance(value, bool) else _show(value)


def _show_resource(name: str, value: object) -> str:
    """A libcontainer resource value as the spec writes it: sizes in IEC units, -1 as unlimited."""
    from declarative_ct.units import UNLIMITED, format_size

    if isinstance(value, int) and name.startswith("memory"):
        return format_size(value)
    if value == UNLIMITED:
        return "unlimited"
    return _show(value)


def spec_diff(entry: DesiredEntry | None, observed_status: str | None) -> list[DiffLine]:
    """Field-level differences, desired (the spec now) vs observed (what the container was created
    with, its live resources, its status), each with the reconciler's class for it.

    Immutable fields (``declarative_ct.reconcile.convert.MUTABLE_FIELDS`` excluded) compare the
    applied spec with the desired one (``recreate``); resources come from the plan's live changes
    (observed value → desired, ``live``); ``state`` compares with the observed status
    (``lifecycle``); other mutable fields (restart, stop_signal…) change nothing (``none``).
    """
    from declarative_ct.reconcile.convert import MUTABLE_FIELDS

    if entry is None or entry.desired is None:
        return []
    desired = entry.desired
    if observed_status is None or entry.drift == "missing":
        return [DiffLine("container", "(absent)", f"state: {desired.get('state', 'running')}", "create")]
    out: list[DiffLine] = []
    applied = entry.applied or {}
    flat_a: dict[str, object] = {}
    flat_d: dict[str, object] = {}
    _flatten({k: v for k, v in applied.items() if k not in ("resources", "state")}, "", 2, flat_a)
    _flatten({k: v for k, v in desired.items() if k not in ("resources", "state")}, "", 2, flat_d)
    for key in sorted(set(flat_a) | set(flat_d)):
        a, d = flat_a.get(key), flat_d.get(key)
        if a == d:
            continue
        top = key.split(".", 1)[0]
        show = _show_size if key == "logging.max_size" else _show
        out.append(DiffLine(key, show(a), show(d), "none" if top in MUTABLE_FIELDS else "recreate"))
    for name, value in entry.live_changes.items():
        out.append(DiffLine(f"resources.{name}", _show_resource(name, entry.observed_resources.get(name)),
                            _show_resource(name, value), "live"))
    want = desired.get("state")
    have = "paused" if observed_status == "pausing" else observed_status
    known = observed_status in {s.value for s in Status} and observed_status != Status.UNKNOWN.value
    satisfied = drift.satisfied_state(Status(observed_status)) if known else have
    if want and want != satisfied:
        out.append(DiffLine("state", have or "(absent)", str(want), "lifecycle"))
    return out


def group_actions(actions: Iterable[Mapping]) -> list[tuple[str, list[Mapping]]]:
    """Plan actions (``Action.to_dict()``) grouped by class, in :data:`ACTION_KINDS` order, each
    group sorted by container; unknown classes last."""
    groups: dict[str, list[Mapping]] = {}
    for a in actions:
        groups.setdefault(str(a.get("class")), []).append(a)
    order = list(ACTION_KINDS) + sorted(k for k in groups if k not in ACTION_KINDS)
    return [(k, sorted(groups[k], key=lambda a: str(a.get("container")))) for k in order if k in groups]
