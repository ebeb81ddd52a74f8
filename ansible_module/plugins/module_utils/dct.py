# -*- coding: utf-8 -*-
# Copyright: declarative-ct developers
# Apache License 2.0 (see LICENSE of declarative-ct)
"""What the declarative_ct.dct modules share: a thin layer over declarative_ct, which must be installed on the target.

The modules validate with ``declarative_ct.spec`` (``load_mapping`` for inline options,
``load_paths`` for files), plan with ``declarative_ct.reconcile.plan.make_plan`` (the plan
``dct plan`` prints) and apply with ``declarative_ct.reconcile.apply.apply`` under the state
root's apply lock (what ``dct apply`` runs). In check mode they only observe and plan: no lock,
no file, no cgroup, no state is touched.
"""

from __future__ import annotations

import copy
import dataclasses
import time
import traceback

from ansible.module_utils.basic import missing_required_lib
from ansible_collections.declarative_ct.dct.plugins.module_utils.schema import options_from_schema
from ansible_collections.declarative_ct.dct.plugins.module_utils.spec_options import SPEC_OPTIONS

try:
    from declarative_ct.errors import ContainerError, ContainerNotExists, StateCorrupt
    from declarative_ct.reconcile import apply as applying
    from declarative_ct.reconcile import last_applied
    from declarative_ct.reconcile import wait as waiting
    from declarative_ct.reconcile import restart as restarting
    from declarative_ct.reconcile.convert import LABEL_MANAGER, LABEL_SOURCE, MANAGER, MUTABLE_FIELDS
    from declarative_ct.reconcile.drift import satisfied_state  # noqa: F401 (the container module's)  pylint: disable=unused-import
    from declarative_ct.reconcile.kinds import ActionKind
    from declarative_ct.reconcile.last_applied import LABEL_SPEC
    from declarative_ct.reconcile.plan import effective, make_plan, observe
    from declarative_ct.runtime import Runtime, Status, store
    from declarative_ct.health import record as health_record
    from declarative_ct.health import view as health_view
    from declarative_ct.service import apply_probes
    from declarative_ct.service.supervisor import probing
    from declarative_ct.spec.load import HINT_QUOTE, SpecErrors, load_mapping
    from declarative_ct.spec.model import ContainerSpec
except ImportError:
    HAS_DCT = False
    IMPORT_ERROR = traceback.format_exc()
else:
    HAS_DCT = True
    IMPORT_ERROR = None

ROOT_OPTION = {"root": {"type": "path"}}
ABSENT = "absent"


def spec_options():
    """The argument spec of a spec document's fields: from the installed ``ContainerSpec`` (new fields
    are accepted at once), else the generated fallback (so that the module can say what is missing)."""
    if HAS_DCT:
        return options_from_schema(ContainerSpec.model_json_schema())
    return copy.deepcopy(SPEC_OPTIONS)


def require_dct(module):
    """``fail_json`` unless declarative_ct imports on the target."""
    if not HAS_DCT:
        module.fail_json(msg=missing_required_lib("declarative_ct"), exception=IMPORT_ERROR)


def runtime(module, root):
    """A ``Runtime`` on ``root`` (None: ``$DCT_ROOT`` on the target, else ``/run/dct``); bad roots fail."""
    try:
        return Runtime(root)
    except ContainerError as err:
        module.fail_json(msg="root: %s" % err, actions=[])


TEMPLATE_HINT = (' (a template that gives a number, such as "{{ port }}" with port: 8080, '
                 'needs the string filter: "{{ port | string }}")')


def spec_problems(err):
    """``{"field", "message"}`` per error of a ``SpecErrors`` from ``load_mapping`` (the option and the reason).

    A number where text is wanted (``process.env.*``, ``process.user``, ``labels.*``…) usually comes
    from a template here (ansible-core 2.19 keeps the rendered value's type), so the loader's hint to
    quote it (``SpecError.hint``) gets the ``| string`` filter added.
    """
    return [{"field": e.field, "message": e.message + TEMPLATE_HINT if e.hint == HINT_QUOTE else e.message}
            for e in err.errors]


def validate(module, data, source):
    """The ``SpecDocument`` of inline options ``data``, or ``fail_json`` naming each bad option (``msg``,
    ``errors``: its lines, ``problems``: ``{"field", "message"}`` each)."""
    try:
        return load_mapping(data, source)
    except SpecErrors as err:
        problems = spec_problems(err)
        lines = ["%s: %s" % (p["field"], p["message"]) for p in problems]
        module.fail_json(msg="; ".join(lines), errors=lines, problems=problems, actions=[])


@dataclasses.dataclass
class Converged:
    """What :func:`converge` did: the docs and observation planned from, the plan, the outcome of
    each action in the order they ran (None in check mode: nothing ran) and, with ``wait``, the
    ``wait.Readiness`` of each container acted on (None without a wait)."""

    docs: list
    observed: dict
    plan: object
    outcomes: list | None
    ready: list | None = None


WAIT_OPTIONS = {"wait": {"type": "bool", "default": False}, "wait_timeout": {"type": "int", "default": 60}}


def wait_options(module):
    """``(wait, wait_timeout)`` of the module's options; a negative timeout fails the module."""
    timeout = module.params["wait_timeout"]
    if timeout < 0:
        module.fail_json(msg="wait_timeout: seconds, 0 or more, got %d" % timeout, actions=[])
    return module.params["wait"], float(timeout)


def converge(module, rt, make_docs, prune=False, scope=None, recreate=(), parallel=0, wait=False,
             wait_timeout=60.0):
    """Observe the root, plan ``make_docs(observed)`` and, unless in check mode, apply the plan.

    Apply holds the root's apply lock from observation to the last action (one apply at a time
    per root, ``dct apply`` and ``dct watch`` included). An action that fails does not raise: its
    outcome says so. A root that cannot be used fails the module. Dependents wait for their
    ``depends_on`` conditions; with ``wait``, once the lock is released, the containers acted on
    are waited for as ``dct apply --wait`` does (``reconcile.wait.wait_applied``); both within
    ``wait_timeout`` seconds of the start (one deadline). What is waited for is probed here,
    unless the root's supervisor watches these specs (its records are read then:
    ``service.apply_probes``). Check mode: nothing is probed nor waited for.
    """
    deadline = time.monotonic() + wait_timeout  # one budget for the dependency waits and the wait
    probes = []

    def run():
        observed = observe(rt)
        docs = make_docs(observed)
        plan = make_plan(docs, observed, prune=prune, scope=scope, recreate=frozenset(recreate))
        if module.check_mode:
            return Converged(docs, observed, plan, None)
        if plan.actions:
            probes.append(apply_probes.wait_probes(rt, docs))
            outcomes = applying.apply(plan, docs, rt, parallel=parallel, probes=probes[0],
                                      condition_timeout=wait_timeout, deadline=deadline)
        else:
            applying.record_restarts(plan, rt)  # exits seen, backoffs scheduled, as dct apply does
            outcomes = []
        return Converged(docs, observed, plan, outcomes)

    try:
        if module.check_mode:
            return run()
        try:
            with applying.locked(rt.root):
                done = run()
            if wait:
                done.ready = waiting.wait_applied(rt, done.docs, done.outcomes, wait_timeout, deadline,
                                                  probes[0] if probes else None)
            return done
        finally:
            for p in probes:
                p.close()
    except (OSError, ContainerError) as err:
        module.fail_json(msg="root %s: %s" % (rt.root, getattr(err, "strerror", None) or err), actions=[])


def wait_result(done, timeout):
    """The ``wait`` return value: ``ready`` (all of them), ``timeout`` (s) and, by name, each container's
    ``ready``, ``status``, ``health`` (its record's status, None without health), ``detail`` and
    ``last_output``; None without a wait."""
    if done.ready is None:
        return None
    return {"ready": all(r.ready for r in done.ready), "timeout": timeout,
            "containers": {r.name: r.to_dict() for r in done.ready}}


def wait_failures(done):
    """``name: detail`` of each container the wait found not ready (its status, last probe output)."""
    return ["not ready: %s" % r for r in done.ready or [] if not r.ready]


def action_results(done):
    """Each action as ``dct plan --json`` gives it (container, class, cause, steps, resources) plus its
    ``result`` (``ok``, ``failed``, ``skipped``; ``planned`` in check mode) and ``error``."""
    if done.outcomes is None:
        return [dict(a.to_dict(), result="planned") for a in done.plan.actions]
    out = []
    for o in done.outcomes:
        item = dict(o.action.to_dict(), result=o.result)
        if o.error:
            item["error"] = o.error
        out.append(item)
    return out


def warnings(done, names):
    """The plan's notes about the containers ``names`` (``<name>: …``), to pass to ``module.warn``, without
    those the actions made obsolete: a note about a container that this task created or started
    (an action with a ``create`` or ``start`` step that ran, or is planned in check mode) is about
    the container as it was before (an exit its restart policy left alone)."""
    if done.outcomes is None:
        acted = [(a, "ok") for a in done.plan.actions]
    else:
        acted = [(o.action, o.result) for o in done.outcomes]
    renewed = {a.container for a, result in acted if result == "ok" and {"create", "start"} & set(a.steps)}
    out = []
    for note in done.plan.notes:
        name = note.partition(":")[0]
        if name in names and name not in renewed:
            out.append(note)
    return out


def changed(done):
    """True exactly when an action ran (or, in check mode, would run); a failed action may have done
    some of its steps, so it counts; a skipped one does not."""
    if done.outcomes is None:
        return bool(done.plan.actions)
    return any(o.result != "skipped" for o in done.outcomes)


def failures(done):
    """Messages for what went wrong: containers the plan could not reconcile, actions that failed or were skipped."""
    out = list(done.plan.errors)
    for o in done.outcomes or []:
        if o.result != "ok":
            out.append(str(o))
    return out


def spec_view(spec):
    """A spec as the diff shows it: normalized (the form the plan compares), limits at their default left out."""
    view = spec.normalized()
    view["resources"] = effective(view["resources"])
    return view


def observed_view(obs, after):
    """A container as the diff shows it: the spec it was made with, the limits and status in force now.

    The fields that never need an action (restart, stop_timeout…) are shown as ``after`` has them.
    """
    view = copy.deepcopy(obs.applied) if obs.applied else {"name": obs.id}
    view["resources"] = effective(obs.resources)
    view["state"] = obs.status.value
    for key in MUTABLE_FIELDS - {"resources", "state"}:
        if key in after:
            view[key] = after[key]
    return view


def diff(name, action, obs, doc):
    """Ansible's ``diff`` (before/after as mappings, and headers) for one container: ``before`` is the
    container as it is, ``after`` as the action leaves it; without an action both are the same."""
    absent = {"name": name, "state": ABSENT}
    wanted = spec_view(doc.spec) if doc is not None and doc.spec.state != ABSENT else absent
    if action is None:
        return {"before": wanted, "after": wanted, "before_header": name, "after_header": name}
    after = absent if action.kind in ActionKind.TEARDOWN else wanted
    before = absent if obs is None else observed_view(obs, after)
    return {"before": before, "after": after,
            "before_header": "%s (%s)" % (name, before["state"]),
            "after_header": "%s (%s: %s)" % (name, action.kind, action.cause)}


def _labels(config):
    return dict(label.partition("=")[::2] for label in config.labels)


def facts(rt, name, stats=False, desired=None):
    """Facts about container ``name`` of ``rt``'s root (what the info module returns per container).

    ``exists``, ``status`` (created, running, pausing, paused, stopped; ``absent`` when there is no
    such container; ``unknown`` with ``error`` and nothing else when its state.json cannot be
    read), ``pid`` (of init, None when stopped), ``created`` (RFC 3339), ``managed``
    (made by declarative-ct), ``source`` (the spec file, or ``ansible:<name>``: set when the container
    is created), ``labels`` (the user's), ``spec`` (the normalized spec it was created from: a live
    update changes ``resources``, not this), ``resources`` (the limits in force, libcontainer
    fields: bytes, shares, µs), ``exit`` (exit code, signal, oom_killed, exited_at when stopped),
    ``restarts`` (by its restart policy), ``health`` (as ``dct status --json`` gives it:
    :mod:`declarative_ct.health.view`; None without a check); with ``stats``, ``stats`` as ``dct
    events --stats`` prints it (cpu ns, memory bytes, pids, blkio), None when stopped.

    ``desired``: the desired spec of it the task has (a ``ContainerSpec`` or ``DesiredSpec``): its
    ``health`` is the check shown (the one the probes run); without one, the check of the last
    probe, else the created spec's.
    """
    try:
        c = rt.load(name)
    except ContainerNotExists:  # an invalid id raises InvalidID
        return {"name": name, "exists": False, "status": ABSENT}
    except StateCorrupt as err:  # its processes may run: it exists, in a state we cannot read
        return {"name": name, "exists": True, "status": Status.UNKNOWN.value, "error": str(err)}
    status = c.status()
    labels = _labels(c.config)
    managed = labels.get(LABEL_MANAGER) == MANAGER
    spec = last_applied.decode(labels.get(LABEL_SPEC)) if managed else {}
    record = restarting.load_record(rt, name) if managed else None
    out = {
        "name": name, "exists": True, "status": status.value,
        "pid": c.state().init_process_pid if status != Status.STOPPED else None,
        "created": c.state().created, "managed": managed, "source": labels.get(LABEL_SOURCE),
        "labels": {k: v for k, v in labels.items() if not k.startswith("dct.") and k != "bundle"},
        "spec": spec, "resources": c.config.cgroups.resources.limits(),
        "exit": c.exit_status() if status == Status.STOPPED else None,
        "restarts": (record or {}).get("restarts", 0) if managed else None,
        "health": _health(rt, c, spec, status, desired),
    }
    if stats:
        out["stats"] = None
        if status != Status.STOPPED:
            from declarative_ct.runtime.stats import events_data
            try:
                out["stats"] = events_data(c.stats())
            except ContainerError:
                pass  # stopped meanwhile
    c.close()
    return out


def _health(rt, c, applied, status, desired=None):
    """The health view of container ``c`` (None without a check; ``applied``: the normalized spec
    it was created with, ``desired``: the task's spec of it or None); the supervisor's lock is
    tried only for a container with a check."""
    record = health_record.read(c.state_dir)
    check = health_view.shown_check(record, applied, desired.desired().health if desired is not None
                                    else health_view.NO_SPEC)
    if check is None:
        return None
    return health_view.view(check, record, status.value, c.state().created, probing(rt.root), time.time())


def container_names(rt):
    """Every container id of the root (directories holding a state.json), sorted."""
    import os

    return [n for n in store.container_entries(rt.root) if os.path.exists(os.path.join(rt.root, n, store.STATE_FILE))]
