#!/usr/bin/env python3
"""Per-call cost of ``podman run --rm <busybox image> true`` with dct vs runc as the OCI runtime.

One private podman (``tests/clients.py``: config, storage and runtime state under a temporary
directory, removed at the end), the busybox-static image imported once, one warm-up call per
runtime, then N calls per runtime alternating (runc, dct, runc, ...) so drift on this shared
machine hits both alike. Prints the median (min/max) wall time in milliseconds and the ratio
dct/runc. A runtime whose call fails is reported with its first error instead of a time.

    sudo .venv/bin/python bench/clients.py [-n 20]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))

from clients import IMAGE, RUNTIMES, Podman, build_rootfs_tar  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-n", type=int, default=20, help="calls per runtime (default 20)")
    args = ap.parse_args()
    times: dict[str, list[float]] = {r: [] for r in RUNTIMES}
    failed: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="dct-bench-clients-") as tmp:
        pm = Podman(os.path.join(tmp, "pm"))
        try:
            pm.import_image(build_rootfs_tar(os.path.join(tmp, "busybox.tar")))
            for runtime in RUNTIMES:  # warm-up: page cache, podman's own first-run work
                r = pm.run(runtime, "run", "--rm", IMAGE, "true")
                if r.rc != 0:
                    failed[runtime] = f"exit {r.rc}: {r.first_error}"
            for _ in range(args.n):
                for runtime in RUNTIMES:
                    if runtime in failed:
                        continue
                    t0 = time.perf_counter()
                    r = pm.run(runtime, "run", "--rm", IMAGE, "true")
                    elapsed = time.perf_counter() - t0
                    if r.rc != 0:
                        failed[runtime] = f"exit {r.rc}: {r.first_error}"
                        continue
                    times[runtime].append(elapsed * 1000)
        finally:
            problems = pm.teardown()
    print(f"podman run --rm {IMAGE} true, {args.n} calls per runtime, alternating")
    for runtime in RUNTIMES:
        if runtime in failed:
            print(f"  {runtime:5} FAILED: {failed[runtime]}")
        elif times[runtime]:
            t = times[runtime]
            print(f"  {runtime:5} median {statistics.median(t):7.1f} ms  (min {min(t):.1f}, max {max(t):.1f})")
    if times["runc"] and times["dct"] and "dct" not in failed:
        print(f"  ratio dct/runc: {statistics.median(times['dct']) / statistics.median(times['runc']):.2f}x")
    else:
        print("  ratio dct/runc: n/a (a runtime failed)")
    for p in problems:
        print(f"  leak: {p}", file=sys.stderr)
    return 1 if problems or "runc" in failed else 0


if __name__ == "__main__":
    sys.exit(main())
