"""``dct`` verbs of the desired-state side: validate, schema, plan, apply, status, watch.

Thin: they load specs (:mod:`declarative_ct.spec`) and call the reconciler; imported only for
these verbs, so pydantic and PyYAML stay out of the runc-like verbs' start-up.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

PROG = "dct"

SCHEMA_URL = "https://json-schema.org/draft/2020-12/schema"


def schema_text() -> str:
    """The JSON Schema of one spec document (what ``dct schema`` prints and ``specs/schema.json`` holds)."""
    from ..spec.model import ContainerSpec

    schema = ContainerSpec.model_json_schema()
    schema["$schema"] = SCHEMA_URL
    schema["title"] = "declarative-ct container spec"
    schema["description"] = ("One YAML document describes one container (a file may hold several, separated by "
                             "---). Relative host paths resolve against the file's directory. Checked by "
                             "`dct validate`.")
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"


def cmd_validate(args: argparse.Namespace) -> int:
    """``dct validate PATH…``: load every spec; print a summary (exit 0) or every error on stderr (exit 1)."""
    docs = _docs(args.paths)
    if docs is None:
        return 1
    containers, files = len(docs), len({doc.source for doc in docs})
    print(f"{containers} container{'s' if containers != 1 else ''} in {files} file{'s' if files != 1 else ''}: valid")
    return 0


def cmd_schema(args: argparse.Namespace) -> int:
    """``dct schema``: print the JSON Schema of a spec document."""
    sys.stdout.write(schema_text())
    return 0


def _docs(paths: list[str], cached_in: str | None = None):
    """The spec documents of ``paths``, or None after printing every error (``file:line:col: field: message``).

    ``cached_in``: a state root whose spec cache may answer when no file changed (plan, status:
    they only read the specs; apply and validate always load them).
    """
    from ..errors import ContainerError

    try:
        if cached_in is not None:
            from ..spec import cache
            return cache.load(paths, cached_in)
        from ..spec.load import load_paths
        return load_paths(paths)
    except ContainerError as err:  # SpecErrors
        if not hasattr(err, "errors"):
            raise
        for error in err.errors:
            print(error, file=sys.stderr)
        return None


def _root(args: argparse.Namespace) -> str:
    from ..runtime.factory import default_root

    return os.path.abspath(args.root or default_root())


def _plan(args: argparse.Namespace, docs):
    from ..reconcile.plan import make_plan, observe, scope_of
    from ..runtime import Runtime

    runtime = Runtime(args.root, getattr(args, "data_root", None))
    return runtime, make_plan(docs, observe(runtime), prune=args.prune, scope=scope_of(args.paths))


def _print_plan(plan) -> None:
    for action in plan.actions:
        print(action)
    for note in plan.notes:
        print(f"# {note}")
    for error in plan.errors:
        print(f"{PROG}: {error}", file=sys.stderr)


def cmd_plan(args: argparse.Namespace) -> int:
    """``dct plan PATH…``: the actions ``apply`` would take, one per line with class and cause.

    Exit 0: nothing to do; 2: changes; 1: an error (invalid specs, a name taken by a container we
    did not make). ``--json``: the plan object (``apply --plan FILE`` executes it).
    """
    docs = _docs(args.paths, cached_in=_root(args))
    if docs is None:
        return 1
    _, plan = _plan(args, docs)
    if args.json:
        data = plan.to_dict()
        data["paths"] = [os.path.abspath(p) for p in args.paths]
        data["prune"] = args.prune
        print(json.dumps(data, indent=2, ensure_ascii=False))
    else:
        _print_plan(plan)
    return 1 if plan.errors else 2 if plan.actions else 0


def cmd_apply(args: argparse.Namespace) -> int:
    """``dct apply PATH… [--prune] [--dry-run] [--parallel N] | --plan FILE``: converge, print what was done.

    One apply per state root at a time. With ``--plan FILE`` (a ``plan --json`` output) the same
    specs are planned again and the actions run only if nothing moved since (same observed state,
    same actions). Exit 1 if any action failed or any container could not be reconciled.

    A container that exited is restarted only as its ``restart`` policy says, like ``dct watch``
    would (``never``: left exited; ``on-failure[:N]``; ``always``; a restart whose backoff has not
    run out is a note, not an action): an explicit apply does not override the policy. A spec
    change (recreate) always applies.

    A dependent's action waits for its ``depends_on`` conditions (``healthy``, ``completed``); a
    dependency that fails one skips its dependents. ``--wait``: then wait, outside the apply
    lock, until every container acted on is in its spec's state and, where it declares
    ``health``, healthy (exit 1 naming the others with their status and last probe output). One
    ``--timeout`` (default 60s) bounds both, from the start of the actions. Ctrl-C during a wait:
    exit 130, the containers left as they are. The probes run here, unless the root's supervisor
    watches these specs: then its health records are read (:mod:`declarative_ct.service.apply_probes`).
    """
    saved = None
    if args.plan:
        saved = _saved_plan(args)
        if saved is None:
            return 1
    if not args.paths:
        print(f"{PROG} apply: give spec paths or --plan FILE", file=sys.stderr)
        return 1
    # The specs load in a child (PyYAML, pydantic) while this process imports the runtime and the
    # reconciler and starts the root's monitor: the two start-ups overlap.
    from ..spec.background import BackgroundLoad

    loading = BackgroundLoad(args.paths)  # forks: before any thread is started
    try:
        from ..reconcile import apply as applying
        from ..reconcile.kinds import Result
        from ..runtime import Runtime

        if not args.dry_run:
            from ..runtime import monitord

            monitord.prestart(_root(args))
        docs, errors = loading.result()
    finally:
        loading.close()
    for error in errors:
        print(error, file=sys.stderr)
    if docs is None:
        return 1
    runtime = None
    with applying.locked(Runtime(args.root).root):
        runtime, plan = _plan(args, docs)
        if saved is not None and not plan.matches(saved.get("fingerprint"), saved.get("actions")):
            print(f"{PROG}: the containers changed since {args.plan} was made; make a new plan", file=sys.stderr)
            return 1
        if args.dry_run or not plan.actions:
            if not args.dry_run:
                applying.record_restarts(plan, runtime)  # exits seen, backoffs scheduled
            _print_plan(plan)
            if not plan.actions and not plan.errors:
                print("nothing to do")
            return 1 if plan.errors else 0
        for note in plan.notes:
            print(f"# {note}")
        for error in plan.errors:
            print(f"{PROG}: {error}", file=sys.stderr)
        from ..service.apply_probes import wait_probes

        deadline = time.monotonic() + args.timeout  # one --timeout for the dependency waits and --wait
        probes = wait_probes(runtime, docs)  # none beside a supervisor that probes these containers
        try:
            outcomes = applying.apply(plan, docs, runtime, parallel=args.parallel, on_outcome=_print_outcome,
                                      probes=probes, condition_timeout=args.timeout, deadline=deadline)
        except BaseException as err:  # the probes' threads stop with it
            probes.close()
            if not isinstance(err, KeyboardInterrupt):
                raise
            print(f"{PROG} apply: interrupted: the actions under way finished, no other started", file=sys.stderr)
            return 130
    try:
        failed = [o for o in outcomes if o.result != Result.OK]
        print(f"{len(outcomes) - len(failed)} done, {sum(o.result == Result.FAILED for o in failed)} failed, "
              f"{sum(o.result == Result.SKIPPED for o in failed)} skipped")
        status = 1 if failed or plan.errors else 0
        if args.wait:  # apply's probes go on for the wait
            from .waiting import wait_after_apply

            status = max(status, wait_after_apply(runtime, docs, outcomes, probes, args.timeout, deadline))
        return status
    finally:
        probes.close()


def _print_outcome(outcome) -> None:
    """Print one outcome line; once the reader has gone (``dct apply | head -1``) the rest of the
    output goes to /dev/null and the apply goes on."""
    try:
        print(outcome)
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


def _saved_plan(args: argparse.Namespace) -> dict | None:
    try:
        with open(args.plan, encoding="utf-8") as f:
            saved = json.load(f)
        paths, prune = saved["paths"], saved["prune"]
    except (OSError, ValueError, KeyError, TypeError) as err:
        print(f"{PROG}: {args.plan}: not a plan saved by 'dct plan --json' ({err})", file=sys.stderr)
        return None
    if args.paths and [os.path.abspath(p) for p in args.paths] != paths:
        print(f"{PROG}: {args.plan} was made for {' '.join(paths)}, not these paths", file=sys.stderr)
        return None
    args.paths, args.prune = paths, prune
    return saved


def cmd_status(args: argparse.Namespace) -> int:
    """``dct status [PATH…] [--json]``: per container, desired vs observed, drift, pid, last exit, OOM,
    restart count and next restart.

    Drift: ``in-sync`` (nothing to do), ``drifted`` (the plan has an action), ``missing``
    (declared, not created), ``unmanaged`` (not made by declarative-ct), ``undeclared`` (ours,
    no longer in the given specs), ``exited`` (should run, but its restart policy keeps it down),
    ``backoff`` (should run, restarts when its backoff runs out). Without paths, only what runs
    is shown. The exit shown is the current run's, else the last one the reconciler recorded,
    with its reason (the signal that killed it, OOM-killed). JSON keys ``last_exit``
    (``{exit_code, signal, oom_killed, exited_at}`` or null; ``signal`` a number, ``exited_at`` RFC
    3339 UTC), ``restarts`` (restarts since the count was last reset), ``next_restart`` (RFC
    3339 UTC, or null) and ``health`` (:mod:`declarative_ct.health.view`: status, failing
    streak, since, check, the last results, stale; null without a check). The check is the
    given spec's ``health`` (a container it names; none declared: null), else the one that made
    the last probe, else the created one's. HEALTH: ``healthy``, ``unhealthy (3)`` (the failing
    streak), ``starting``, ``?`` after it when nobody is probing. One line under the table says
    what waits for a supervisor when none runs (the restarts NEXT shows, the probes, as of when).
    """
    import time

    from ..reconcile import restart as restarting
    from ..units import format_time, parse_time
    from ..reconcile.drift import classify_drift
    from ..health import view as health_view
    from ..reconcile.plan import in_scope, observe, scope_of
    from ..service.supervisor import probing as supervisor_probing

    docs = _docs(args.paths, cached_in=_root(args)) if args.paths else []
    if docs is None:
        return 1
    runtime, plan = _plan(args, docs)
    observed = observe(runtime)
    pending = {a.container: a for a in plan.actions}
    rows = []
    declared = {d.spec.name: d.spec for d in docs}
    now = time.time()
    probing = supervisor_probing(runtime.root)  # whether a supervisor restarts and probes: a lock try
    for name in sorted(set(declared) | set(observed)):
        spec, obs = declared.get(name), observed.get(name)
        record = plan.restarts.get(name, obs.restart if obs is not None else None) or {}
        exit_record = (obs.container.exit_status() or record.get("last_exit")) if obs and obs.container else None
        next_restart = record.get("next_restart") if obs is not None and obs.status.value == "stopped" else None
        status = None if obs is None else "unknown" if obs.error else obs.status.value  # unknown: unreadable
        # ours from these paths but no longer named; a container of another spec set is none of theirs
        undeclared = bool(docs and obs is not None and in_scope(obs.source, scope_of(args.paths)))
        drift = classify_drift(spec.state if spec else None, status, obs is not None and obs.owned, name in pending,
                               undeclared, next_restart)
        cause = pending[name].cause if name in pending else ""
        if drift == "unknown":
            cause = obs.error
        if drift in ("exited", "backoff"):  # the restart policy's note: why not, or when
            cause = next((n.removeprefix(f"{name}: ") for n in plan.notes if n.startswith(f"{name}: ")), "")
        health = None
        if obs is not None and obs.container:
            desired = spec.desired().health if spec is not None else health_view.NO_SPEC  # what is probed
            health = health_view.read(obs.container, obs.applied, probing, now, obs.status.value, desired)
        rows.append({
            "name": name, "desired": spec.state if spec else None, "status": obs.status.value if obs else "absent",
            "drift": drift, "cause": cause,
            "pid": obs.container.state().init_process_pid if obs and obs.container and obs.status.value != "stopped"
            else None,
            "exit_code": exit_record.get("exit_code") if exit_record else None,
            "oom_killed": exit_record.get("oom_killed") if exit_record else None,
            "last_exit": ({k: exit_record.get(k) for k in ("exit_code", "signal", "oom_killed", "exited_at")}
                          if exit_record else None),
            "restarts": record.get("restarts", 0) if obs is not None and obs.owned else None,
            "next_restart": format_time(next_restart),
            "source": obs.source if obs else (next(d.source for d in docs if d.spec.name == name)),
            "health": health,
        })
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print(f"{'NAME':<20} {'DESIRED':<9} {'STATUS':<9} {'DRIFT':<11} {'PID':>7} {'EXIT':<14} {'RESTARTS':>8} "
          f"{'NEXT':>9}  {'HEALTH':<14} CAUSE")
    for r in rows:
        exit_code = "" if r["exit_code"] is None else " ".join(
            filter(None, (str(r["exit_code"]), restarting.exit_reason(r["last_exit"]))))
        due = parse_time(r["next_restart"])
        nxt = "" if due is None else "now" if due <= now else f"in {due - now:.1f}s"
        print(f"{r['name']:<20} {r['desired'] or '-':<9} {r['status']:<9} {r['drift']:<11} "
              f"{r['pid'] or '':>7} {exit_code:<14} {'' if r['restarts'] is None else r['restarts']:>8} "
              f"{nxt:>9}  {health_view.cell(r['health']):<14} {r['cause']}")
    # NEXT is what the policy says, HEALTH what was probed: say when nobody acts on either
    note = health_view.supervisor_note({r["name"]: r["health"] for r in rows}, probing, runtime.root, now,
                                       [r["name"] for r in rows if r["next_restart"]])
    if note:
        print(note)
    return 0


def cmd_watch(args: argparse.Namespace) -> int:
    """``dct watch PATH… [--prune] [--resync S] [--debounce S] [--parallel N]``: apply on every change.

    Runs :func:`declarative_ct.reconcile.watch.watch` as the state root's supervisor
    (:mod:`declarative_ct.service`): one per root (a second one is refused, exit 1, naming the
    first one's pid and spec paths); systemd's notifications when started by it (``Type=notify``:
    READY after the first pass, WATCHDOG, RELOADING, STOPPING; nothing without
    ``$NOTIFY_SOCKET``); SIGHUP reloads the specs now; SIGINT or SIGTERM stop it once the
    current actions are done (exit 0), leaving the containers running.
    Exit 1 at once if a path does not exist or the options are out of range.
    """
    import threading

    from ..reconcile.watch import WatchOptions, watch
    from ..service.hooks import SupervisorHooks, install_signals, restore_signals
    from ..service.notify import Notifier
    from ..service.supervisor import Supervisor, SupervisorRunning

    if args.resync <= 0 or args.debounce < 0 or args.parallel < 0:
        print(f"{PROG} watch: --resync must be > 0, --debounce >= 0 and --parallel >= 0", file=sys.stderr)
        return 1
    from ..runtime.factory import default_data_root

    root, data_root = _root(args), getattr(args, "data_root", None)
    try:
        supervisor = Supervisor.acquire(root, args.paths, os.path.abspath(data_root or default_data_root(root)))
    except SupervisorRunning as err:
        print(f"{PROG} watch: {err}", file=sys.stderr)
        return 1
    stop = threading.Event()
    hooks = SupervisorHooks(Notifier(), supervisor)
    previous = install_signals(hooks, stop)
    try:
        options = WatchOptions(prune=args.prune, resync=args.resync, debounce=args.debounce, parallel=args.parallel)
        return watch(args.paths, args.root, options, stop, hooks=hooks, data_root=data_root)
    finally:
        restore_signals(previous)
        supervisor.release()
