#!/usr/bin/env python3
"""Lifecycle latency: create + start + wait + destroy of a container running ``true``.

Side by side on the same busybox bundle: the library (``Runtime``) with init forked by the
root's monitor (``library``) and by a stage 1 of the caller (``stage1``: ``start(monitor=False)``,
as ``runc create``), the CLI (``dct run``, foreground, which destroys on exit), ``runc run``
when runc is installed, and ``exec``: one ``true`` run in an already running container
(``start(Process(init=False))`` + wait), ``cli-exec`` (``dct exec``) and ``runc-exec`` (``runc exec``)
into a running container. Stage 1 and exec re-execute the
sealed interpreter (runtime/exeseal.py); the monitor pays that once, not per create.
The bundle is ``dct spec``'s, so its default seccomp profile is compiled (once per state root:
the compiled program is cached) and loaded; the ``-unfiltered`` variants run the same bundle
without ``linux.seccomp``, to show what the filter costs.
Prints the median (and min/max) of N runs in milliseconds, and the ratios to runc.

    sudo .venv/bin/python bench/lifecycle.py [-n 30]

Targets (issue 2): library <= 1.0x runc, CLI <= 1.5x runc.
"""

from __future__ import annotations

import argparse
import json
import os
import select
import signal
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from _fleet import reap, remove_data_roots  # noqa: E402
from declarative_ct.runtime import Process, Runtime, specconv  # noqa: E402


def build_bundle(directory: str, seccomp: bool = True) -> str:
    """A busybox bundle whose process is ``true`` (without ``linux.seccomp`` unless ``seccomp``); returns its path."""
    rootfs = os.path.join(directory, "rootfs")
    os.makedirs(os.path.join(rootfs, "bin"))
    shutil.copy("/bin/busybox", os.path.join(rootfs, "bin", "busybox"))
    os.symlink("busybox", os.path.join(rootfs, "bin", "true"))
    os.symlink("busybox", os.path.join(rootfs, "bin", "sh"))
    os.symlink("busybox", os.path.join(rootfs, "bin", "sleep"))
    for d in ("proc", "dev", "sys", "tmp", "etc"):
        os.makedirs(os.path.join(rootfs, d), exist_ok=True)
    spec = specconv.example_spec()
    spec["process"]["args"] = ["true"]
    if not seccomp:
        del spec["linux"]["seccomp"]
    with open(os.path.join(directory, "config.json"), "w") as f:
        json.dump(spec, f)
    return directory


def interleaved(n: int, variants: dict) -> dict[str, list[float]]:
    """Milliseconds per run of each variant, run in turn (A B C A B C…) so drift hits all alike."""
    for once in variants.values():
        once()  # warm-up (page cache, imports)
    out: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(n):
        for name, once in variants.items():
            t = time.perf_counter()
            once()
            out[name].append((time.perf_counter() - t) * 1000)
        reap()
    return out


def library_once(root: str, bundle: str, monitor: bool = True) -> None:
    config, process = specconv.load_bundle(bundle)
    rt = Runtime(root)
    c = rt.create("bench-" + uuid.uuid4().hex[:8], config)
    c.start(process, monitor=monitor)
    pidfd = os.pidfd_open(c.state().init_process_pid)
    c.exec()
    select.select([pidfd], [], [])
    os.close(pidfd)
    while c.status().value != "stopped":
        time.sleep(0.0005)
    c.destroy()


def exec_target(root: str, bundle: str):
    """A running container (``sleep``) to exec into; destroy it with :func:`stop_target`."""
    config, process = specconv.load_bundle(bundle)
    c = Runtime(root).create("bench-exec-" + uuid.uuid4().hex[:8], config)
    c.run(Process(["sleep", "100000"], env=process.env, cwd=process.cwd))
    return c


def runc_exec_target(runc: str, root: str, work: str, bundle: str) -> str:
    """A runc container running ``sleep`` on a copy of ``bundle`` (``runc run -d``); returns its id."""
    sleeper = os.path.join(work, "runc-sleep")
    os.makedirs(sleeper)
    with open(os.path.join(bundle, "config.json")) as f:
        spec = json.load(f)
    spec["root"]["path"] = os.path.join(bundle, "rootfs")
    spec["process"]["args"] = ["sleep", "100000"]
    with open(os.path.join(sleeper, "config.json"), "w") as f:
        json.dump(spec, f)
    cid = "bench-exec-" + uuid.uuid4().hex[:8]
    subprocess.run([runc, "--root", root, "run", "-d", "--bundle", sleeper, cid], check=True,
                   stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return cid


def exec_once(container) -> None:
    handle = container.start(Process(["true"], init=False))
    if handle.wait() != 0:
        raise RuntimeError("exec of true failed")


def stop_target(container) -> None:
    container.signal(signal.SIGKILL)
    while container.status().value != "stopped":
        time.sleep(0.001)
    container.destroy()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-n", type=int, default=25, help="runs per variant (median reported)")
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("run as root")
    from declarative_ct.runtime import linux
    linux.prctl(linux.PR_SET_CHILD_SUBREAPER, 1)  # reap the monitors ourselves
    work = tempfile.mkdtemp(prefix="dct-bench-")
    try:
        bundle = build_bundle(os.path.join(work, "bundle"))
        unfiltered = build_bundle(os.path.join(work, "unfiltered"), seccomp=False)
        variants = {"library": lambda: library_once(os.path.join(work, "lib"), bundle),
                    "library-unfiltered": lambda: library_once(os.path.join(work, "lib"), unfiltered),
                    "stage1": lambda: library_once(os.path.join(work, "stage1"), bundle, monitor=False)}
        exe = shutil.which("dct", path=os.path.dirname(sys.executable))
        dct = [exe] if exe else [sys.executable, "-m", "declarative_ct.cli.main"]
        for name, path in (("cli", bundle), ("cli-unfiltered", unfiltered)):
            variants[name] = lambda path=path: subprocess.run(
                dct + ["--root", os.path.join(work, "cli"), "run", "--bundle", path, "bench-" + uuid.uuid4().hex[:8]],
                check=True)
        runc = shutil.which("runc")
        runc_root = os.path.join(work, "runc")
        if runc:
            for name, path in (("runc", bundle), ("runc-unfiltered", unfiltered)):
                variants[name] = lambda path=path: subprocess.run(
                    [runc, "--root", runc_root, "run", "--bundle", path, "bench-" + uuid.uuid4().hex[:8]], check=True)
        target = exec_target(os.path.join(work, "exec"), bundle)
        variants["exec"] = lambda: exec_once(target)
        variants["cli-exec"] = lambda: subprocess.run(
            dct + ["--root", os.path.join(work, "exec"), "exec", target.id, "true"], check=True)
        runc_target = runc_exec_target(runc, runc_root, work, bundle) if runc else None
        if runc_target:
            variants["runc-exec"] = lambda: subprocess.run([runc, "--root", runc_root, "exec", runc_target, "true"],
                                                           check=True)
        try:
            results = interleaved(args.n, variants)
        finally:
            stop_target(target)
            if runc_target:
                subprocess.run([runc, "--root", runc_root, "delete", "--force", runc_target], check=False)
        reap()
        base = statistics.median(results["runc"]) if "runc" in results else None
        print(f"{'variant':<18} {'median ms':>10} {'min':>8} {'max':>8} {'vs runc':>8}   (n={args.n})")
        for name, runs in results.items():
            med = statistics.median(runs)
            ratio = f"{med / base:.2f}x" if base else "-"
            print(f"{name:<18} {med:>10.1f} {min(runs):>8.1f} {max(runs):>8.1f} {ratio:>8}")
        if not base:
            print("runc not installed (apt-get install runc) - no ratios")
    finally:
        shutil.rmtree(work, ignore_errors=True)
        remove_data_roots(work)
    return 0


if __name__ == "__main__":
    sys.exit(main())
