#!/usr/bin/env python3
"""Monitor memory: RSS, PSS and USS of the process that reaps each container's init.

N busybox containers (a shell looping on ``sleep``) are started through the CLI
(``dct run -d --monitor``) and N through the library (``Runtime.create`` + ``Container.run``), each way in
a state root of its own. A container's monitor is whatever process is the parent of its init
(``/proc/<init>/stat`` field 4, init's PID from ``Container.state()``), so any monitor design is
measured as it is: one per container, or one shared by many (counted once; its cost is then
split over the containers it serves). From ``/proc/<monitor>/smaps_rollup``: RSS, PSS and USS
(``Private_Clean + Private_Dirty``), in MiB, min/median/max over the distinct monitors and the
total over them divided by the N containers.

    sudo .venv/bin/python bench/monitor_rss.py [--containers 20] [--settle 1.0] [--json]

Target: <= 2 MiB per container (conmon is about 1-2 MiB), judged on PSS total / N (shared pages
split fairly between the processes that map them); RSS and USS are shown beside it.
Every container, cgroup and process started is removed on exit, Ctrl-C and failure included.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
import uuid

from _fleet import SLEEP_LOOP, DctFleet, build_rootfs, cmdline, final_cleanup, log, ppid, reap, setup_process
from _fleet import finish, run_benchmark, summary, write_bundle

from declarative_ct.runtime import procfs

TARGET_MIB = 2.0
METRICS = ("rss", "pss", "uss")


def smaps_rollup(pid: int) -> dict[str, float]:
    """``{rss, pss, uss}`` in MiB from ``/proc/<pid>/smaps_rollup``."""
    kb: dict[str, int] = {}
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            key, _, rest = line.partition(":")
            fields = rest.split()
            if len(fields) == 2 and fields[1] == "kB":
                kb[key] = int(fields[0])
    return {"rss": kb["Rss"] / 1024, "pss": kb["Pss"] / 1024,
            "uss": (kb["Private_Clean"] + kb["Private_Dirty"]) / 1024}


def find_monitor(container) -> int:
    """The PID of the parent of the container's init (its monitor); raises if that is not a monitor."""
    st = container.state()
    pid, start = st.init_process_pid, st.init_process_start
    if not procfs.is_alive(pid, start):
        raise RuntimeError(f"{container.id}: init {pid} is not running (status {container.status()})")
    parent = ppid(pid)
    if parent is None:
        raise RuntimeError(f"{container.id}: init {pid} vanished")
    if parent in (0, 1) or parent == os.getpid():
        raise RuntimeError(f"{container.id}: init {pid} has parent {parent}, not a monitor "
                           f"({'PID 1' if parent == 1 else 'this benchmark, its subreaper'})")
    return parent


def measure(containers) -> dict:
    """Figures for one way: the distinct monitors of ``containers`` and their memory."""
    by_monitor: dict[int, list[str]] = {}
    for c in containers:
        by_monitor.setdefault(find_monitor(c), []).append(c.id)
    mem = {pid: smaps_rollup(pid) for pid in by_monitor}
    for c in containers:  # the parent must not have changed under us (a stage 1 exiting late)
        if find_monitor(c) not in mem:
            raise RuntimeError(f"{c.id}: its init changed parent while measuring; raise --settle")
    n = len(containers)
    out: dict = {"containers": n, "monitors": len(mem),
                 "monitor_cmdlines": sorted({cmdline(pid) for pid in mem})}
    for m in METRICS:
        values = [v[m] for v in mem.values()]
        s = summary(values, 3)
        del s["mean"]
        s["total"] = round(sum(values), 3)
        s["per_container"] = round(sum(values) / n, 3)
        out[f"{m}_mib"] = s
    out["target_met"] = out["pss_mib"]["per_container"] <= TARGET_MIB
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--containers", type=int, default=20, help="running containers per way (default 20)")
    ap.add_argument("--settle", type=float, default=1.0,
                    help="seconds to wait after the last start before measuring (default 1.0)")
    ap.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    args = ap.parse_args()
    if args.containers < 1:
        ap.error("--containers must be at least 1")
    setup_process()
    tag = "mr" + uuid.uuid4().hex[:6]  # every id, cgroup and directory of this run carries it
    work = tempfile.mkdtemp(prefix=f"dct-bench-{tag}-")
    fleets = {"cli": DctFleet(os.path.join(work, "cli")), "library": DctFleet(os.path.join(work, "lib"))}
    try:
        rootfs = build_rootfs(os.path.join(work, "rootfs"))
        bundle = write_bundle(os.path.join(work, "bundle"), rootfs, SLEEP_LOOP)
        n = args.containers
        for way, fleet in fleets.items():
            log(f"starting {n} containers through the {way}…")
            t = time.perf_counter()
            for i in range(n):
                cid = f"{tag}-{way[:3]}-{i:04d}"
                if way == "cli":
                    fleet.start_cli(cid, bundle)
                else:
                    fleet.start_library(cid, bundle)
            log(f"  {time.perf_counter() - t:.1f} s")
            reap()
        time.sleep(args.settle)
        report = {"benchmark": "monitor_rss", "containers_per_way": n, "target_mib_per_container": TARGET_MIB,
                  "ways": {way: measure(fleet.containers) for way, fleet in fleets.items()},
                  "benchmark_process": smaps_rollup(os.getpid())}
        report["benchmark_process"] = {k: round(v, 3) for k, v in report["benchmark_process"].items()}
    finally:
        cleanup = final_cleanup(list(fleets.values()), work, f"dct*/{tag}-*")
    return finish(report, cleanup, args.json, _print_table)


def _print_table(r: dict) -> None:
    n = r["containers_per_way"]
    print(f"monitor memory, {n} running containers per way (MiB: min/median/max per monitor; "
          "total over the monitors / containers)")
    print(f"{'way':<8} {'monitors':>8} {'metric':>6} {'min':>7} {'median':>7} {'max':>7} {'total/N':>8}  "
          f"<= {r['target_mib_per_container']:g} MiB")
    for way, w in r["ways"].items():
        for i, m in enumerate(METRICS):
            s = w[f"{m}_mib"]
            ok = "yes" if s["per_container"] <= r["target_mib_per_container"] else "no"
            head = f"{way:<8} {w['monitors']:>8}" if i == 0 else f"{'':<8} {'':>8}"
            print(f"{head} {m.upper():>6} {s['min']:>7.2f} {s['median']:>7.2f} {s['max']:>7.2f} "
                  f"{s['per_container']:>8.3f}  {ok}")
    verdict = all(w["target_met"] for w in r["ways"].values())
    print(f"target <= {r['target_mib_per_container']:g} MiB per container (PSS total / N): "
          f"{'met' if verdict else 'NOT met'}")
    for way, w in r["ways"].items():
        cmds = w["monitor_cmdlines"]
        more = f" (and {len(cmds) - 1} more alike)" if len(cmds) > 1 else ""
        print(f"{way} monitor: {cmds[0]}{more}")
    b = r["benchmark_process"]
    print(f"this benchmark process: RSS {b['rss']:.1f}, PSS {b['pss']:.1f}, USS {b['uss']:.1f} MiB")


if __name__ == "__main__":
    run_benchmark(main)
