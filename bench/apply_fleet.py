#!/usr/bin/env python3
"""Apply a fleet: ``dct apply DIR`` of N containers from nothing vs a loop of ``runc run -d``; then ``dct plan``.

N spec files (one container each: the busybox rootfs of ``_fleet``, a shell looping on ``sleep``
that exits on SIGTERM, the namespaces of runc's example spec) in one directory:

- apply: ``dct --root R apply DIR`` as a subprocess, from an empty state root, timed until it
  exits (every container running, checked afterwards); when runc is installed, the same N
  containers as N bundles on the same rootfs, started by a sequential loop of ``runc run -d``,
  timed likewise. Rounds alternate which goes first. Between rounds the dct containers go with
  a ``state: absent`` apply (timed, reported as teardown) and runc's with ``runc delete -f``.
- plan: with the N containers running and nothing to do, ``dct --root R plan DIR`` (the whole
  command, exit 0 expected) timed ``--plan-runs`` times; and the plan computed in this process as
  ``dct watch`` computes it at a resync: ``observe`` + ``make_plan`` (watch keeps the documents it
  loaded; it loads the spec files again only after one changed, shown as ``load`` and
  ``load+observe+plan``: figures, not the target).

    sudo .venv/bin/python bench/apply_fleet.py [--containers 50] [--rounds 3] [--plan-runs 20]
                                               [--watch-runs 50] [--parallel N] [--no-runc] [--json]

Both state roots live on a tmpfs (``--state-dir``, default /dev/shm), as /run/dct and /run/runc do
on most hosts: dct fsyncs every state file it writes, runc does not, and on this VM's disk an fsync
costs ~2 ms.

Targets (issue 5): apply of 50 <= 0.5x the runc loop; ``dct plan`` with 100 running and nothing
to do <= 150 ms wall; the same plan inside watch <= 20 ms.
Every container, cgroup, process and directory started is removed on exit, Ctrl-C and failure
included (``dct`` containers by a ``state: absent`` apply, then ``_fleet``'s clean-up of the root;
runc's by ``runc delete -f``).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid

from _fleet import DctFleet, RuncFleet, build_rootfs, dct_command, final_cleanup, log, reap, run_cmd, setup_process
from _fleet import children, finish, shielded, summary, write_bundle
from declarative_ct.runtime import Runtime, Status
from declarative_ct.runtime.monitord import LINGER, LINGER_ENV

# Exits on SIGTERM (a stop is quick); two processes, no churn, like _fleet.SLEEP_LOOP.
ARGS = ["sh", "-c", "trap 'exit 0' TERM; while :; do sleep 3600 & wait $!; done"]
NAMESPACES = ["pid", "mount", "uts", "ipc", "net", "cgroup"]  # those of runc's example spec (specconv.example_spec)
TARGET_APPLY_RATIO = 0.5
TARGET_PLAN_MS = 150.0
TARGET_WATCH_MS = 20.0


def write_specs(directory: str, names: list[str], rootfs: str, state: str) -> str:
    """One spec file per container (``<name>.yaml``) in ``directory``; returns it."""
    os.makedirs(directory)
    for name in names:
        with open(os.path.join(directory, f"{name}.yaml"), "w") as f:
            f.write(f"name: {name}\nrootfs: {rootfs}\nprocess:\n  args: {json.dumps(ARGS)}\n"
                    f"namespaces: {json.dumps(NAMESPACES)}\nstate: {state}\n")
    return directory


def run_logged(argv: list[str], log_path: str) -> float:
    """Run ``argv`` (own session, stdout+stderr to ``log_path``, never a pipe a container could keep);
    seconds it took. Raises with the log's tail on a non-zero exit. On Ctrl-C the command is let
    finish (60 s at most) so that the clean-up finds a consistent state."""
    with open(log_path, "wb") as out:
        t = time.perf_counter()
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
        try:
            proc.wait()
        except BaseException:
            with shielded():
                try:
                    proc.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
            raise
        elapsed = time.perf_counter() - t
    if proc.returncode != 0:
        with open(log_path, errors="replace") as f:
            tail = f.read()[-2000:]
        raise RuntimeError(f"{' '.join(argv)}: exit {proc.returncode}:\n{tail}")
    return elapsed


def check_running(root: str, names: list[str]) -> None:
    """Every one of ``names`` exists in ``root`` and is running."""
    statuses = {c.id: c.status() for c in Runtime(root).list()}
    bad = {n: statuses.get(n) for n in names if statuses.get(n) != Status.RUNNING}
    if bad:
        raise RuntimeError(f"after apply, not running: {dict(list(bad.items())[:5])} ({len(bad)} of {len(names)})")


def check_gone(root: str, names: list[str]) -> None:
    left = sorted(set(names) & {c.id for c in Runtime(root).list()})
    if left:
        raise RuntimeError(f"after the state: absent apply, still there: {left[:5]} ({len(left)})")


def runc_count(runc: str, root: str) -> int:
    out = subprocess.run([runc, "--root", root, "list", "--format", "json"], capture_output=True, text=True,
                         check=True).stdout.strip()
    return sum(1 for c in json.loads(out or "[]") or [] if c.get("status") == "running")


def runc_loop(rfleet: RuncFleet, ids: list[str], bundles: dict[str, str]) -> float:
    """``runc run -d`` over the bundles, one after the other; seconds."""
    t = time.perf_counter()
    for cid in ids:
        rfleet.ids.append(cid)  # before: a run interrupted half-way is deleted all the same
        run_cmd([rfleet.runc, "--root", rfleet.root, "run", "-d", "-b", bundles[cid], cid])  # stdout: /dev/null
    return time.perf_counter() - t


def plan_cli_runs(dct: list[str], root: str, specs: str, runs: int) -> list[float]:
    """Milliseconds of ``dct plan`` (the whole command); each must exit 0 (nothing to do)."""
    out = []
    for i in range(runs + 2):
        t = time.perf_counter()
        proc = subprocess.run(dct + ["--root", root, "plan", specs], stdin=subprocess.DEVNULL, capture_output=True,
                              text=True)
        elapsed = (time.perf_counter() - t) * 1000
        if proc.returncode != 0:
            raise RuntimeError(f"dct plan: exit {proc.returncode} (0 = nothing to do expected):\n"
                               f"{proc.stdout[-1500:]}{proc.stderr[-1500:]}")
        if i >= 2:  # two warm-ups
            out.append(elapsed)
    return out


def plan_in_process(root: str, specs: str, runs: int) -> dict[str, list[float]]:
    """Milliseconds of the plan as watch computes it, and of its parts."""
    from declarative_ct.reconcile.plan import make_plan, observe, scope_of
    from declarative_ct.spec.load import load_paths

    runtime = Runtime(root)
    scope = scope_of([specs])
    parts: dict[str, list[float]] = {"load+observe+plan": [], "observe+plan": [], "load": [], "observe": [],
                                     "make_plan": []}
    kept: dict = {}  # watch keeps what observe parsed between resyncs
    for i in range(runs + 2):
        t0 = time.perf_counter()
        docs = load_paths([specs])
        t1 = time.perf_counter()
        observed = observe(runtime, kept)
        t2 = time.perf_counter()
        plan = make_plan(docs, observed, scope=scope)
        t3 = time.perf_counter()
        if plan.actions or plan.errors:
            raise RuntimeError(f"in-process plan is not empty: {[str(a) for a in plan.actions]} {plan.errors}")
        if i < 2:
            continue  # warm-ups (imports, page cache)
        parts["load+observe+plan"].append((t3 - t0) * 1000)
        parts["observe+plan"].append((t3 - t1) * 1000)
        parts["load"].append((t1 - t0) * 1000)
        parts["observe"].append((t2 - t1) * 1000)
        parts["make_plan"].append((t3 - t2) * 1000)
    return parts


def wait_for_monitors() -> None:
    """Reap the dct monitors as they exit on their own, idle for LINGER s after their last container."""
    linger = float(os.environ.get(LINGER_ENV, LINGER))
    log(f"waiting for the idle dct monitor to exit on its own (up to {linger + 2:.0f} s)…")
    deadline = time.monotonic() + linger + 2
    while time.monotonic() < deadline:
        reap()
        if not children():
            return
        time.sleep(0.05)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--containers", type=int, default=50, help="containers applied and planned (default 50)")
    ap.add_argument("--rounds", type=int, default=3, help="timed applies from nothing, and runc loops (default 3)")
    ap.add_argument("--plan-runs", type=int, default=20, help="timed `dct plan` commands (default 20)")
    ap.add_argument("--watch-runs", type=int, default=50, help="timed in-process plans (default 50)")
    ap.add_argument("--parallel", type=int, default=0, help="dct apply --parallel (default: dct's, the CPU count)")
    ap.add_argument("--settle", type=float, default=1.0,
                    help="seconds left between timed runs for the kernel's deferred clean-up (default 1)")
    ap.add_argument("--no-runc", action="store_true", help="skip the runc comparison")
    ap.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    ap.add_argument("--state-dir", default="/dev/shm" if os.path.isdir("/dev/shm") else None,
                    help="where both state roots go (default /dev/shm: a tmpfs, as /run is for /run/dct and "
                         "/run/runc on most hosts; runc does not fsync its state, dct does)")
    args = ap.parse_args()
    if min(args.containers, args.rounds, args.plan_runs, args.watch_runs) < 1:
        ap.error("--containers, --rounds, --plan-runs and --watch-runs must be at least 1")
    setup_process()
    tag = "af" + uuid.uuid4().hex[:6]  # every id, cgroup and directory of this run carries it
    work = tempfile.mkdtemp(prefix=f"dct-bench-{tag}-")
    states = tempfile.mkdtemp(prefix=f"dct-bench-{tag}-", dir=args.state_dir)
    root = os.path.join(states, "dct-root")
    fleet = DctFleet(root)
    fleets: list = [fleet]
    runc = None if args.no_runc else shutil.which("runc")
    rfleet = None
    absent_dir = None
    dct = dct_command()
    n = args.containers
    names = [f"{tag}-{i:03d}" for i in range(n)]
    apply_extra = ["--parallel", str(args.parallel)] if args.parallel else []
    report: dict = {"containers": n, "rounds": args.rounds, "cpus": os.cpu_count(),
                    "parallel": args.parallel or os.cpu_count()}
    try:
        rootfs = build_rootfs(os.path.join(work, "rootfs"))
        specs = write_specs(os.path.join(work, "specs"), names, rootfs, "running")
        absent_dir = write_specs(os.path.join(work, "specs-absent"), names, rootfs, "absent")
        warm_dir = write_specs(os.path.join(work, "specs-warm"), [f"{tag}-warm"], rootfs, "running")
        warm_absent = write_specs(os.path.join(work, "specs-warm-absent"), [f"{tag}-warm"], rootfs, "absent")
        logfile = os.path.join(work, "dct.log")
        runs: dict[str, list[float]] = {"dct apply": [], "dct apply (absent)": []}
        bundles: dict[str, str] = {}
        rids = [f"{tag}-r{i:03d}" for i in range(n)]
        if runc:
            rfleet = RuncFleet(runc, os.path.join(states, "runc-root"), os.path.join(work, "runc-bundles"),
                               f"dct-bench-{tag}")
            fleets.append(rfleet)
            for cid in rids:
                bundles[cid] = write_bundle(os.path.join(rfleet.bundles, cid), rootfs, ARGS,
                                            f"/{rfleet.cgroup_parent}/{cid}")
            runs["runc run -d loop"] = []
            report["runc_version"] = subprocess.run([runc, "--version"], capture_output=True, text=True,
                                                    check=False).stdout.splitlines()[0]
        log("warm-up (one container each way)…")
        run_logged(dct + ["--root", root, "apply", warm_dir], logfile)
        run_logged(dct + ["--root", root, "apply", warm_absent], logfile)
        if rfleet:
            warm = f"{tag}-rwarm"
            bundles[warm] = write_bundle(os.path.join(rfleet.bundles, warm), rootfs, ARGS,
                                         f"/{rfleet.cgroup_parent}/{warm}")
            runc_loop(rfleet, [warm], bundles)
            problems = rfleet.cleanup()
            if problems:
                raise RuntimeError(f"runc clean-up: {problems}")
        reap()

        def dct_round() -> None:
            s = run_logged(dct + ["--root", root, "apply", specs] + apply_extra, logfile)
            check_running(root, names)
            runs["dct apply"].append(s)
            log(f"  dct apply of {n}: {s:.2f} s")

        def dct_teardown() -> None:
            s = run_logged(dct + ["--root", root, "apply", absent_dir] + apply_extra, logfile)
            check_gone(root, names)
            runs["dct apply (absent)"].append(s)
            log(f"  dct apply of {n} × state: absent: {s:.2f} s")

        def runc_round() -> None:
            s = runc_loop(rfleet, rids, bundles)
            running = runc_count(rfleet.runc, rfleet.root)
            if running != n:
                raise RuntimeError(f"runc: {running} of {n} running after the loop")
            runs["runc run -d loop"].append(s)
            log(f"  runc run -d × {n}: {s:.2f} s")
            problems = rfleet.cleanup()
            if problems:
                raise RuntimeError(f"runc clean-up: {problems}")

        for r in range(args.rounds):
            log(f"round {r + 1}/{args.rounds}…")
            last = r == args.rounds - 1
            order = ["dct", "runc"] if r % 2 == 0 else ["runc", "dct"]
            if last:
                order = ["runc", "dct"]  # the dct fleet stays up for the plan figures
            for who in order:
                if who == "runc" and rfleet:
                    runc_round()
                elif who == "dct":
                    dct_round()
                    if not last:
                        dct_teardown()
                reap()
                # The kernel tears down the network namespaces and cgroups of the run before in
                # work queues, after RCU grace periods; new namespaces wait on the same locks.
                time.sleep(args.settle)

        log(f"timing `dct plan` with {n} running, nothing to do ({args.plan_runs} runs)…")
        plan_ms = plan_cli_runs(dct, root, specs, args.plan_runs)
        log(f"timing the in-process plan as watch computes it ({args.watch_runs} runs)…")
        watch_ms = plan_in_process(root, specs, args.watch_runs)
        dct_teardown()
        wait_for_monitors()
        report["seconds"] = {k: summary(v) for k, v in runs.items() if v}
        report["plan_ms"] = {"dct plan (command)": summary(plan_ms, 1),
                             **{f"in-process {k}": summary(v, 2) for k, v in watch_ms.items()}}
        med = {k: statistics.median(v) for k, v in runs.items() if v}
        if "runc run -d loop" in med:
            report["apply_vs_runc"] = round(med["dct apply"] / med["runc run -d loop"], 3)
        report["targets"] = {
            "apply <= 0.5x runc loop": (report.get("apply_vs_runc", float("nan")) <= TARGET_APPLY_RATIO
                                        if "apply_vs_runc" in report else None),
            "dct plan <= 150 ms": statistics.median(plan_ms) <= TARGET_PLAN_MS,
            "plan inside watch (observe+plan) <= 20 ms":
                statistics.median(watch_ms["observe+plan"]) <= TARGET_WATCH_MS,
        }
    finally:
        with shielded():
            if absent_dir and os.path.isdir(root) and any(c.id in names for c in Runtime(root).list()):
                log("removing the dct containers (state: absent apply)…")
                try:
                    run_logged(dct + ["--root", root, "apply", absent_dir], os.path.join(work, "cleanup.log"))
                except Exception as err:  # noqa: BLE001 - the fleet clean-up below kills what is left
                    log(f"state: absent apply failed: {err}")
        cleanup = final_cleanup(fleets, work, f"dct*/{tag}-*")
        shutil.rmtree(states, ignore_errors=True)
    return finish(report, cleanup, args.json, _print_table)


def _print_table(report: dict) -> None:
    n = report["containers"]
    print(f"{n} containers, {report['cpus']} CPUs, dct apply --parallel {report['parallel']}, "
          f"{report['rounds']} rounds" + (f", {report['runc_version']}" if "runc_version" in report else ""))
    print(f"{'seconds':<40} {'min':>8} {'median':>8} {'max':>8}")
    for name, s in report["seconds"].items():
        print(f"{name:<40} {s['min']:>8.3f} {s['median']:>8.3f} {s['max']:>8.3f}")
    if "apply_vs_runc" in report:
        print(f"dct apply / runc loop (medians): {report['apply_vs_runc']:.2f}x   (target <= {TARGET_APPLY_RATIO}x)")
    else:
        print("runc not installed (apt-get install runc) or --no-runc: no apply ratio")
    print(f"{'ms, ' + str(n) + ' running, nothing to do':<40} {'min':>8} {'median':>8} {'max':>8}")
    for name, s in report["plan_ms"].items():
        print(f"{name:<40} {s['min']:>8.2f} {s['median']:>8.2f} {s['max']:>8.2f}")
    print(f"targets: dct plan <= {TARGET_PLAN_MS:.0f} ms, in watch <= {TARGET_WATCH_MS:.0f} ms (issue 5: with 100)")
    for name, ok in report["targets"].items():
        print(f"  {name}: {'-' if ok is None else 'met' if ok else 'MISSED'}")


if __name__ == "__main__":
    sys.exit(main())
