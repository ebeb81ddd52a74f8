#!/usr/bin/env python3
"""Stats sweep: the time to read the statistics of N running containers once, as a TUI collector does.

N busybox containers (a shell looping on ``sleep``) are started through the library and their
``Container`` objects kept; a sweep is ``Container.stats()`` on each of them (the cgroup files
stay open between sweeps). R sweeps are timed; min/median/max ms per sweep and µs per container
are reported. Two more variants, run in turn with it (A B C A B C…, so drift hits all alike):

- ``library, load+stats``: ``Runtime.load(id).stats()``, a collector that keeps nothing (state.json
  read and cgroup files opened on every call);
- ``runc events --stats``: when runc is installed, N runc containers on the same rootfs (private
  ``--root`` under /tmp) and a sweep of N ``runc events --stats ID`` calls, JSON parsed.

The first sweep of the kept objects (which opens the cgroup files) is reported on its own.

    sudo .venv/bin/python bench/stats_sweep.py [--containers 100] [--rounds 50] [--no-runc] [--json]

Target: a sweep of 100 containers in <= 10 ms (100 µs per container), kept objects, median.
Every container, cgroup and process started is removed on exit, Ctrl-C and failure included.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import tempfile
import time
import uuid

from _fleet import DctFleet, RuncFleet, build_rootfs, final_cleanup, log, reap, setup_process, summary, write_bundle
from _fleet import SLEEP_LOOP, finish, run_benchmark

TARGET_US_PER_CONTAINER = 100.0  # 10 ms per sweep of 100


def check_stats(container) -> None:
    """Fail loudly if stats() does not describe a live container (shell + sleep)."""
    cg = container.stats().cgroup_stats
    if cg.memory_stats is None or cg.cpu_stats is None or cg.pids_stats is None or cg.pids_stats.current < 1:
        raise RuntimeError(f"{container.id}: stats() looks empty: {cg}")


def check_runc_stats(data: dict, cid: str) -> None:
    if data.get("type") != "stats" or data.get("data", {}).get("pids", {}).get("current", 0) < 1:
        raise RuntimeError(f"runc events --stats {cid}: unexpected output {str(data)[:200]}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--containers", type=int, default=100, help="running containers per variant (default 100)")
    ap.add_argument("--rounds", type=int, default=50, help="timed sweeps per variant (default 50)")
    ap.add_argument("--no-runc", action="store_true", help="skip the runc comparison")
    ap.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    args = ap.parse_args()
    if args.containers < 1 or args.rounds < 1:
        ap.error("--containers and --rounds must be at least 1")
    setup_process()
    tag = "ss" + uuid.uuid4().hex[:6]  # every id, cgroup and directory of this run carries it
    work = tempfile.mkdtemp(prefix=f"dct-bench-{tag}-")
    fleet = DctFleet(os.path.join(work, "dct"))
    fleets: list = [fleet]
    runc = None if args.no_runc else shutil.which("runc")
    try:
        rootfs = build_rootfs(os.path.join(work, "rootfs"))
        bundle = write_bundle(os.path.join(work, "bundle"), rootfs, SLEEP_LOOP)
        n = args.containers
        log(f"starting {n} dct containers (library)…")
        t = time.perf_counter()
        for i in range(n):
            fleet.start_library(f"{tag}-{i:04d}", bundle)
        log(f"  {time.perf_counter() - t:.1f} s")
        reap()
        containers = list(fleet.containers)
        rt = fleet.runtime
        ids = [c.id for c in containers]

        t = time.perf_counter()
        for c in containers:
            check_stats(c)  # the first sweep: opens the cgroup files it keeps
        first_ms = (time.perf_counter() - t) * 1000

        def sweep_kept() -> None:
            for c in containers:
                c.stats()

        def sweep_load() -> None:
            for cid in ids:
                rt.load(cid).stats()

        variants = {"library": sweep_kept, "library, load+stats": sweep_load}
        runc_version = None
        if runc:
            runc_version = _runc_version(runc)
            rfleet = RuncFleet(runc, os.path.join(work, "runc-root"), os.path.join(work, "runc-bundles"),
                               f"dct-bench-{tag}")
            fleets.append(rfleet)
            log(f"starting {n} runc containers…")
            t = time.perf_counter()
            for i in range(n):
                rfleet.start(f"{tag}-runc-{i:04d}", rootfs, SLEEP_LOOP)
            log(f"  {time.perf_counter() - t:.1f} s")
            reap()
            for cid in rfleet.ids:
                check_runc_stats(rfleet.stats(cid), cid)

            def sweep_runc() -> None:
                for cid in rfleet.ids:
                    rfleet.stats(cid)

            variants["runc events --stats"] = sweep_runc
        for once in variants.values():
            once()  # warm-up
        log(f"timing {args.rounds} sweeps of {n} per variant, in turn…")
        runs: dict[str, list[float]] = {name: [] for name in variants}
        for _ in range(args.rounds):
            for name, once in variants.items():
                t = time.perf_counter()
                once()
                runs[name].append((time.perf_counter() - t) * 1000)
        report = _report(args, runs, first_ms, runc, runc_version)
    finally:
        cleanup = final_cleanup(fleets, work, f"dct*/{tag}-*")
    return finish(report, cleanup, args.json, _print_table)


def _runc_version(runc: str) -> str:
    out = subprocess.run([runc, "--version"], capture_output=True, text=True, check=False).stdout
    return out.splitlines()[0] if out else "?"


def _report(args, runs: dict[str, list[float]], first_ms: float, runc: str | None, runc_version: str | None) -> dict:
    n = args.containers
    target_ms = TARGET_US_PER_CONTAINER * n / 1000
    variants = {}
    base = runs.get("runc events --stats")
    for name, ms in runs.items():
        v = {"sweep_ms": summary(ms), "per_container_us": summary([x * 1000 / n for x in ms], 1)}
        if base:
            v["vs_runc"] = round(statistics.median(ms) / statistics.median(base), 4)
        variants[name] = v
    lib = variants["library"]["sweep_ms"]["median"]
    return {"benchmark": "stats_sweep", "containers": n, "rounds": args.rounds,
            "target_ms_per_sweep": target_ms, "target_us_per_container": TARGET_US_PER_CONTAINER,
            "target_met": lib <= target_ms, "first_sweep_ms": round(first_ms, 3), "variants": variants,
            "runc": runc_version if runc else None}


def _print_table(r: dict) -> None:
    n = r["containers"]
    print(f"stats sweep: {n} running containers, {r['rounds']} sweeps per variant (ms per sweep; µs per container)")
    print(f"{'variant':<22} {'median ms':>10} {'min':>8} {'max':>8} {'µs/ctr':>8} {'vs runc':>8}")
    for name, v in r["variants"].items():
        s = v["sweep_ms"]
        ratio = f"{v['vs_runc']:.3f}x" if "vs_runc" in v else "-"
        print(f"{name:<22} {s['median']:>10.2f} {s['min']:>8.2f} {s['max']:>8.2f} "
              f"{v['per_container_us']['median']:>8.1f} {ratio:>8}")
    print(f"first sweep of the kept objects (opens the cgroup files): {r['first_sweep_ms']:.2f} ms")
    verdict = "met" if r["target_met"] else "NOT met"
    print(f"target <= {r['target_ms_per_sweep']:g} ms per sweep of {n} (kept objects, median): {verdict}")
    if r["runc"]:
        print(f"runc: {r['runc']}")
    else:
        print("runc: not compared (--no-runc, or not installed: apt-get install runc)")


if __name__ == "__main__":
    run_benchmark(main)
