#!/usr/bin/env python3
"""Networking cost: create + start + wait + destroy of ``true`` with a ``bridge`` network vs ``none``.

Both variants run through the library on the same busybox bundle, in turn (A B A B…), inside a
network namespace this script creates (``ip netns add``) and deletes at the end: the bridge,
the veths and the NAT table never touch the machine's own namespace. A third variant adds one
published port (an ``nft`` batch to add and one to delete). The first bridge run (bridge made,
pyroute2 imported) is a warm-up and not counted; it is printed apart.

    sudo .venv/bin/python bench/network.py [-n 40]

Target (issue 4): bridge adds <= 15 ms per container over none.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from _fleet import remove_data_roots  # noqa: E402
from lifecycle import build_bundle, interleaved, library_once  # noqa: E402

from declarative_ct.configs import Network, PortMapping  # noqa: E402
from declarative_ct.runtime import Runtime, specconv  # noqa: E402
from declarative_ct.runtime.network import netns  # noqa: E402

TARGET_ADDED_MS = 15.0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-n", type=int, default=40, help="runs per variant (median reported)")
    ap.add_argument("--state-dir", default="/dev/shm" if os.path.isdir("/dev/shm") else None,
                    help="where the state root goes (default /dev/shm: a tmpfs, as /run is on most hosts)")
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("run as root")
    from declarative_ct.runtime import linux

    linux.prctl(linux.PR_SET_CHILD_SUBREAPER, 1)  # reap the monitors ourselves
    work = tempfile.mkdtemp(prefix="dct-bench-net-")
    name = f"dct-bench-{uuid.uuid4().hex[:8]}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        bundle = build_bundle(os.path.join(work, "bundle"))
        root = tempfile.mkdtemp(prefix="dct-bench-root-", dir=args.state_dir)
        with netns.entered(f"/run/netns/{name}"):
            subprocess.run(["ip", "link", "set", "lo", "up"], check=True)

            def bridged(ports: bool) -> None:
                config, process = specconv.load_bundle(bundle)
                config.networks = [Network(bridge="dctb0", subnet="10.201.0.0/16")]
                config.ports = [PortMapping(18000, 80)] if ports else []
                c = Runtime(root).create("bench-" + uuid.uuid4().hex[:8], config)
                c.run(process)
                while c.status().value != "stopped":
                    time.sleep(0.0005)
                c.destroy()

            t = time.perf_counter()
            bridged(False)  # makes the bridge, imports pyroute2
            first = (time.perf_counter() - t) * 1000
            results = interleaved(args.n, {
                "none": lambda: library_once(root, bundle),
                "bridge": lambda: bridged(False),
                "bridge+port": lambda: bridged(True),
            })
        base = statistics.median(results["none"])
        print(f"{'variant':<12} {'median ms':>10} {'min':>8} {'max':>8} {'added':>8}   (n={args.n})")
        for variant, runs in results.items():
            med = statistics.median(runs)
            print(f"{variant:<12} {med:>10.1f} {min(runs):>8.1f} {max(runs):>8.1f} {med - base:>+8.1f}")
        added = statistics.median(results["bridge"]) - base
        print(f"first bridge run (bridge made, pyroute2 imported): {first:.1f} ms")
        print(f"bridge adds {added:.1f} ms per container: target <= {TARGET_ADDED_MS:.0f} ms "
              f"{'met' if added <= TARGET_ADDED_MS else 'NOT met'}")
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False)
        shutil.rmtree(work, ignore_errors=True)
        if "root" in locals():
            shutil.rmtree(root, ignore_errors=True)
            remove_data_roots(root)
    return 0


if __name__ == "__main__":
    sys.exit(main())
