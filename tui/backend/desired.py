"""The real backend's desired-state side: the specs (reloaded when a file changes), drift per
container (:meth:`~tui.backend.Backend.desired`), the plan and its apply."""

from __future__ import annotations

import os
from collections.abc import Callable

from declarative_ct.reconcile.drift import classify_drift
from declarative_ct.reconcile.kinds import ActionKind

from ..desired import DesiredEntry, DesiredView, PlanView
from . import Outcome, PlanChanged


class DesiredState:
    """:meth:`~tui.backend.Backend.desired`, :meth:`~tui.backend.Backend.plan` and
    :meth:`~tui.backend.Backend.apply` of :class:`~tui.backend.real.RealBackend` (uses its
    ``runtime``, ``root``, ``paths``, ``_docs*``, ``_observe_cache``, ``_normalized_cache``, ``_entries``)."""

    def _load_docs(self) -> None:
        """(Re)load the specs when a spec file appeared, went or changed (size, times, inode)."""
        from declarative_ct.errors import ContainerError
        from declarative_ct.spec.files import spec_files

        files = spec_files(self.paths)
        key: object = None
        if files is not None:
            try:
                key = [(f, *_identity(f)) for f in files]
            except OSError:
                key = None
        if key is not None and key == self._docs_key:
            return
        from declarative_ct.spec.load import load_paths

        try:
            self._docs = load_paths(self.paths)
            self._docs_errors = ()
            self._normalized_cache.clear()
        except ContainerError as err:
            errors = getattr(err, "errors", None)
            self._docs_errors = tuple(str(e) for e in errors) if errors else (str(err),)
            if self._docs is None:
                self._docs = []
        self._docs_key = key

    def desired(self) -> DesiredView | None:
        from declarative_ct.reconcile.plan import in_scope, make_plan, observe, scope_of

        docs: list = []
        if self.paths:
            self._load_docs()
            docs = self._docs or []
        observed = observe(self.runtime, cache=self._observe_cache)
        plan = make_plan(docs, observed, prune=False, scope=scope_of(self.paths)) if self.paths else None
        pending = {a.container: a for a in plan.actions} if plan else {}
        declared = {d.spec.name: d for d in docs}
        scope = scope_of(self.paths)
        entries: dict[str, DesiredEntry] = {}
        for name in sorted(set(declared) | set(observed)):
            doc, obs = declared.get(name), observed.get(name)
            record = (plan.restarts.get(name) if plan else None) or (obs.restart if obs is not None else None) or {}
            status = obs.status.value if obs is not None else None
            next_restart = record.get("next_restart") if status == "stopped" else None
            action = pending.get(name)
            drift = classify_drift(doc.spec.state if doc else None, status, obs.owned if obs else False,
                                   action is not None, bool(obs and in_scope(obs.source, scope)), next_restart)
            cause = action.cause if action else obs.error if obs is not None else ""
            if drift in ("exited", "backoff") and plan is not None:
                cause = next((n.removeprefix(f"{name}: ") for n in plan.notes if n.startswith(f"{name}: ")), "")
            if not self.paths and drift != "unknown":
                drift = "-" if obs is None or obs.owned else "unmanaged"
            entry = DesiredEntry(
                name=name, drift=drift, desired_state=doc.spec.state if doc else None, cause=cause,
                action=action.kind if action else None, steps=tuple(action.steps) if action else (),
                desired=self._normalized(doc) if doc else None, applied=obs.applied if obs else {},
                observed_resources=obs.resources if obs else {},
                live_changes=dict(action.resources) if action and action.kind in (ActionKind.LIVE, ActionKind.LIFECYCLE) else {},
                source=doc.source if doc else (obs.source if obs else ""), line=doc.line if doc else 0,
                restarts=record.get("restarts", 0) if obs is not None and obs.owned else None,
                next_restart=next_restart,
                last_exit=record.get("last_exit") if obs is not None and obs.owned else None)
            previous = self._entries.get(name)
            entries[name] = previous if previous == entry else entry  # the same object: its row stays cached
        self._entries = entries
        return DesiredView(entries=entries, notes=tuple(plan.notes) if plan else (), errors=self._docs_errors)

    def _normalized(self, doc) -> dict:
        """``doc.spec.normalized()``, computed once per loaded document (the specs are reloaded on change)."""
        key = id(doc)
        hit = self._normalized_cache.get(key)
        if hit is None or hit[0] is not doc:
            hit = self._normalized_cache[key] = (doc, doc.spec.normalized())
        return hit[1]

    def _plan(self, prune: bool):
        from declarative_ct.reconcile.plan import make_plan, observe, scope_of
        from declarative_ct.spec.load import load_paths

        docs = load_paths(self.paths)
        return docs, make_plan(docs, observe(self.runtime), prune=prune, scope=scope_of(self.paths))

    def plan(self, prune: bool = False) -> PlanView:
        """The plan ``dct plan`` would print for the spec paths (loaded afresh); spec errors in ``errors``."""
        from declarative_ct.errors import ContainerError

        if not self.paths:
            return PlanView(errors=("no spec paths given, so there is nothing to plan: start dct tui with spec "
                                    "files or directories (dct tui PATH…) to plan and apply",), prune=prune)
        try:
            _, plan = self._plan(prune)
        except ContainerError as err:
            errors = getattr(err, "errors", None)
            return PlanView(errors=tuple(str(e) for e in errors) if errors else (str(err),), prune=prune)
        return _plan_view(plan, prune)

    def apply(self, plan: PlanView, on_outcome: Callable[[Outcome], None] | None = None) -> list[Outcome]:
        """Apply exactly the plan shown: under the state root's apply lock the specs are loaded and
        planned again, and the actions run only if nothing moved since (as ``dct apply --plan``).

        Raises:
            PlanChanged: the observed state or the actions differ from ``plan``.
        """
        from declarative_ct.reconcile import apply as applying

        outcomes: list[Outcome] = []

        def record(o) -> None:
            out = Outcome(o.action.container, o.action.kind, o.action.cause, o.result, o.error)
            outcomes.append(out)
            if on_outcome is not None:
                on_outcome(out)

        with applying.locked(self.root):
            docs, now = self._plan(plan.prune)
            if not now.matches(plan.fingerprint, plan.actions):
                raise PlanChanged("the containers or specs changed since this plan was made; plan again")
            # As the supervisor: no waiting for depends_on conditions (a dependency not healthy yet skips its
            # dependent, "waiting for …"; apply again later), so the apply lock is never held for a probe.
            applying.apply(now, docs, self.runtime, on_outcome=record, condition_timeout=0)
        return outcomes


def _identity(path: str) -> tuple[int, int, int, int]:
    st = os.stat(path)
    return (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def _plan_view(plan, prune: bool) -> PlanView:
    return PlanView(actions=tuple(a.to_dict() for a in plan.actions), notes=tuple(plan.notes),
                    errors=tuple(plan.errors), fingerprint=plan.fingerprint, prune=prune)
