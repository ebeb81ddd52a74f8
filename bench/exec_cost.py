#!/usr/bin/env python3
"""Exec cost: CPU and wall time per ``exec`` of ``true`` into one running busybox container,
with a fresh stage 1 (``start(Process(init=False))``: the caller forks, the fork executes the
sealed interpreter, which imports init) and through a fork server (``start(…, fork_server=srv)``:
runtime/forkserver.py), in one alternating run (blocks of each, in turn, so drift hits both).

CPU per exec is the caller's own (``getrusage(RUSAGE_SELF)``) plus its reaped children's
(``RUSAGE_CHILDREN``: the fresh path's stage 1 and the exec'd process) plus, for the fork server,
the server's own and its reaped children's (``/proc/<server>/stat`` utime, stime, cutime, cstime).
The caller first imports what ``dct watch`` runs (the reconciler and the spec models), as a
supervisor running exec probes would have: a fresh stage 1 is a fork of that process.
The bundle is ``dct spec``'s (default seccomp profile compiled and loaded); ``fork server,
unfiltered`` execs into a second container without ``linux.seccomp``, to show the share of the
filter's load (the kernel checks and JIT-compiles its ~1200 instructions for each exec, whichever
way the process is started).

    sudo .venv/bin/python bench/exec_cost.py [-n 200] [--block 20]

Target (issue 16): 50 exec probes/s (100 containers, one every 2 s) within 5 % of a core with the
rest of the probing, so about 1 ms of CPU per exec; the fresh path costs ~70.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _fleet import reap, remove_data_roots  # noqa: E402
from lifecycle import build_bundle, exec_target, stop_target  # noqa: E402
from declarative_ct.runtime import Process  # noqa: E402
from declarative_ct.runtime.forkserver import ForkServer  # noqa: E402

_TICK = os.sysconf("SC_CLK_TCK")


def server_cpu(pid: int | None) -> float:
    """Seconds of CPU of the fork server and of its reaped children (stage 1s, exec'd processes)."""
    if pid is None:
        return 0.0
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return sum(int(v) for v in fields[11:15]) / _TICK  # utime stime cutime cstime


def own_cpu() -> tuple[float, float]:
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime, kids.ru_utime + kids.ru_stime


def block(container, n: int, server: ForkServer | None) -> tuple[list[float], float, float]:
    """``n`` execs of ``true``: (wall ms of each, CPU ms per exec in the caller, elsewhere)."""
    walls = []
    self0, kids0 = own_cpu()
    srv0 = server_cpu(server.pid if server else None)
    for _ in range(n):
        t = time.perf_counter()
        handle = container.start(Process(["true"], init=False), fork_server=server)
        if handle.wait() != 0:
            raise RuntimeError("exec of true failed")
        walls.append((time.perf_counter() - t) * 1000)
    self1, kids1 = own_cpu()
    srv1 = server_cpu(server.pid if server else None)
    return walls, (self1 - self0) * 1000 / n, ((kids1 - kids0) + (srv1 - srv0)) * 1000 / n


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-n", type=int, default=200, help="execs per variant")
    ap.add_argument("--block", type=int, default=20, help="execs in a row before switching variant")
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("run as root")
    from declarative_ct import reconcile, spec  # noqa: F401 - the supervisor's weight (see the doc)
    from declarative_ct.runtime import linux

    linux.prctl(linux.PR_SET_CHILD_SUBREAPER, 1)  # reap the monitor ourselves
    work = tempfile.mkdtemp(prefix="dct-bench-")
    server = ForkServer()
    results = {"fresh": ([], [], []), "fork server": ([], [], []), "fork server, unfiltered": ([], [], [])}
    try:
        bundle = build_bundle(os.path.join(work, "bundle"))
        target = exec_target(os.path.join(work, "exec"), bundle)
        unfiltered = exec_target(os.path.join(work, "exec"),
                                 build_bundle(os.path.join(work, "unfiltered"), seccomp=False))
        variants = (("fresh", target, None), ("fork server", target, server),
                    ("fork server, unfiltered", unfiltered, server))
        try:
            server.start()
            for _, container, variant in variants:  # warm-up (page cache, the sealed image, imports)
                block(container, 3, variant)
            done = 0
            while done < args.n:
                k = min(args.block, args.n - done)
                for name, container, variant in variants:
                    walls, caller, elsewhere = block(container, k, variant)
                    results[name][0].extend(walls)
                    results[name][1].append(caller * k)
                    results[name][2].append(elsewhere * k)
                done += k
        finally:
            server.close()
            stop_target(target)
            stop_target(unfiltered)
        reap()
    finally:
        shutil.rmtree(work, ignore_errors=True)
        remove_data_roots(work)
    print(f"{'variant':<24} {'wall ms':>8} {'min':>6} {'max':>7} {'CPU ms':>7} {'caller':>7} {'others':>7}"
          f"   per exec of true (n={args.n}, blocks of {args.block})")
    cpu = {}
    for name, (walls, caller, elsewhere) in results.items():
        n = len(walls)
        cpu[name] = (sum(caller) + sum(elsewhere)) / n
        print(f"{name:<24} {statistics.median(walls):>8.2f} {min(walls):>6.2f} {max(walls):>7.2f} {cpu[name]:>7.2f}"
              f" {sum(caller) / n:>7.2f} {sum(elsewhere) / n:>7.2f}")
    ratio = cpu["fresh"] / cpu["fork server"] if cpu["fork server"] else float("inf")
    print(f"CPU fresh / fork server: {ratio:.1f}x; 50 execs/s through the server: "
          f"{cpu['fork server'] * 50 / 10:.1f} % of a core")
    return 0


if __name__ == "__main__":
    sys.exit(main())
