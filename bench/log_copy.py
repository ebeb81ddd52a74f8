#!/usr/bin/env python3
"""Log copy throughput: a container writing 100 MB of short lines as fast as it can, its stdout
copied by the root's monitor into its CRI log (runtime/logcopy.py), against the same container
writing the same lines to a plain file.

The lines (60 bytes each, numbered) are prepared once in a host file, bound read-only into the
container; the container is busybox ``dd bs=1M`` of that file to its stdout: ``copier``, the
monitor's pipe (``Container.run`` without stdout), or ``plain``, a file on a host directory
bound in (``> /out/plain.txt``, the same disk as the log). Runs alternate between the two.
``--writer yes``: ``yes <line> | head -c <bytes>`` instead (the same line over and over, written
a few KiB at a time through stdio, as a program printing lines does).

Per run: the throughput in MB/s of the container's output (100 MB / the time from the release
of init to its exit.json, which the monitor writes once what init wrote is in the log), the
monitor's CPU seconds per MB (``/proc/<monitor>/stat`` utime + stime, before and after), and a
check that no line was lost: the log's stdout entries, joined, are the input file byte for byte
(the plain file likewise). The log is not rotated (``max_size`` 1 GiB) so that every line can be
checked; ``--rotate`` uses the defaults (10 MiB × 3) and checks that the kept lines are the last
ones, contiguous.

    sudo .venv/bin/python bench/log_copy.py [-n 3] [--mb 100] [--rotate] [--json]

Target (issue 15): >= 200 MB/s through the copier, no lost lines.
Every container started is removed on exit, Ctrl-C and failure included.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
import uuid

from _fleet import build_rootfs, log, reap, reap_all, remove_cgroups, run_benchmark, setup_process, shielded

from declarative_ct.configs import Config, Mount
from declarative_ct.configs.logs import LogConfig
from declarative_ct.configs.mountflags import MS_BIND, MS_RDONLY, MS_REC
from declarative_ct.runtime import Process, Runtime, logfiles

LINE = 60  # bytes per line, the newline included
TARGET_MBPS = 200.0
TICKS = os.sysconf("SC_CLK_TCK")


YES_LINE = b"y" * (LINE - 1)


def make_lines(path: str, total: int, numbered: bool = True) -> int:
    """Write ``total // LINE`` lines of :data:`LINE` bytes to ``path`` (numbered, or all
    :data:`YES_LINE`); returns the count."""
    count = total // LINE
    pad = b"x" * (LINE - 14)
    with open(path, "wb") as f:
        for start in range(0, count, 100_000):
            n = min(count, start + 100_000) - start
            f.write(b"".join(b"%012d %s\n" % (i, pad) for i in range(start, start + n)) if numbered
                    else (YES_LINE + b"\n") * n)
    return count


def cpu_seconds(pid: int) -> float:
    """utime + stime of ``pid`` in seconds (``/proc/<pid>/stat`` fields 14 and 15)."""
    with open(f"/proc/{pid}/stat", "rb") as f:
        raw = f.read()
    fields = raw[raw.rfind(b")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def parent_of(pid: int) -> int:
    with open(f"/proc/{pid}/stat", "rb") as f:
        raw = f.read()
    return int(raw[raw.rfind(b")") + 2:].split()[1])


def one_run(rt: Runtime, rootfs: str, work: str, lines: str, way: str, log_config: LogConfig,
            writer: str = "dd") -> dict:
    """One container writing the lines ``way`` (``copier`` or ``plain``) with ``writer``; its figures and checks."""
    out_dir = os.path.join(work, "out")
    os.makedirs(out_dir, exist_ok=True)
    config = Config(rootfs=rootfs, hostname="bench", readonlyfs=True)
    config.mounts += [Mount(os.path.dirname(lines), "/data", "bind", MS_BIND | MS_REC | MS_RDONLY),
                      Mount(out_dir, "/out", "bind", MS_BIND | MS_REC)]
    if writer == "dd":
        script = "exec dd if=/data/lines.txt bs=1M 2>/dev/null"
    else:
        script = f"yes {YES_LINE.decode()} | head -c {os.path.getsize(lines)}"
    if way == "plain":
        script = f"{script} >/out/plain.txt"
    c = rt.create(f"logbench-{uuid.uuid4().hex[:8]}", config)
    try:
        c.start(Process(["/bin/sh", "-c", script]), log=log_config)
        monitor = parent_of(c.state().init_process_pid)
        cpu0 = cpu_seconds(monitor)
        t0 = time.perf_counter()
        c.exec()
        deadline = time.monotonic() + 300
        while (record := c.exit_status()) is None:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{way}: no exit recorded after 300 s (is the monitor alive?)")
            time.sleep(0.001)
        elapsed = time.perf_counter() - t0
        cpu = cpu_seconds(monitor) - cpu0
        if record["exit_code"] != 0:
            raise RuntimeError(f"{way}: the container exited with {record['exit_code']}")
        size = os.path.getsize(lines)
        checked = check_log(c, lines, log_config) if way == "copier" else check_plain(out_dir, lines)
        return {"way": way, "seconds": elapsed, "mbps": size / 1e6 / elapsed, "monitor_cpu_s": cpu,
                "monitor_cpu_ms_per_mb": cpu * 1000 / (size / 1e6), **checked}
    finally:
        c.destroy(force=True)
        logfiles.remove(rt.data_root, c.id)
        shutil.rmtree(out_dir, ignore_errors=True)
        reap()


def check_plain(out_dir: str, lines: str) -> dict:
    with open(os.path.join(out_dir, "plain.txt"), "rb") as a, open(lines, "rb") as b:
        same = a.read() == b.read()
    if not same:
        raise RuntimeError("plain: the file differs from the input")
    return {"lines_ok": True}


def check_log(c, lines: str, log_config: LogConfig) -> dict:
    """The stdout entries of the run's log files against the input, line for line."""
    directory = os.path.dirname(c.log_path)
    files = logfiles.run_files(directory, int(os.path.basename(c.log_path).split(".")[0]))
    texts: list[bytes] = []
    for path in files:
        if os.path.getsize(path) > log_config.max_size and log_config.max_size < (1 << 30):
            raise RuntimeError(f"{path}: larger than max_size")
        with open(path, "rb") as f:
            for entry in f:
                _, stream, tag, text = entry.split(b" ", 3)
                if stream != b"stdout":
                    continue
                if tag != b"F":
                    raise RuntimeError(f"{path}: a partial entry {entry[:80]!r}")
                texts.append(text)
    with open(lines, "rb") as f:
        source = f.read().split(b"\n")[:-1]
    want = [t + b"\n" for t in source]
    if log_config.max_size >= (1 << 30):
        if texts != want:
            raise RuntimeError(f"copier: {len(texts)} lines in the log, {len(want)} written; they differ")
    elif texts != want[len(want) - len(texts):]:
        raise RuntimeError("copier: the kept lines are not the last ones written, whole and in order")
    return {"lines_ok": True, "lines": len(texts), "files": len(files)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", type=int, default=3, help="runs of each way (alternating)")
    parser.add_argument("--mb", type=int, default=100, help="megabytes of lines the container writes")
    parser.add_argument("--rotate", action="store_true", help="rotate with the default LogConfig (10 MiB x 3)")
    parser.add_argument("--writer", choices=("dd", "yes"), default="dd",
                        help="dd bs=1M of numbered lines (default), or yes | head -c (stdio-sized writes)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()
    setup_process()
    work = tempfile.mkdtemp(prefix="dct-logbench-", dir="/var/tmp")
    rt = Runtime(os.path.join("/run", f"dct-logbench-{os.getpid()}"), data_root=os.path.join(work, "dataroot"))
    try:
        rootfs = build_rootfs(os.path.join(work, "rootfs"), ("sh", "dd", "yes", "head"))
        os.makedirs(os.path.join(work, "data"))
        lines = os.path.join(work, "data", "lines.txt")
        count = make_lines(lines, args.mb * 1_000_000, numbered=args.writer == "dd")
        log(f"{count} lines of {LINE} bytes ({os.path.getsize(lines) / 1e6:.0f} MB)")
        log_config = LogConfig() if args.rotate else LogConfig(max_size=1 << 30, max_files=1)
        runs: dict[str, list[dict]] = {"copier": [], "plain": []}
        for i in range(args.n):
            for way in ("copier", "plain") if i % 2 == 0 else ("plain", "copier"):
                r = one_run(rt, rootfs, work, lines, way, log_config, args.writer)
                log(f"{way:6} {r['mbps']:7.0f} MB/s  monitor {r['monitor_cpu_ms_per_mb']:.2f} ms CPU/MB")
                runs[way].append(r)
        report = {"lines": count, "bytes": os.path.getsize(lines), "rotate": args.rotate, "writer": args.writer,
                  "runs": runs}
        for way, rs in runs.items():
            report[way] = {"mbps_median": statistics.median(r["mbps"] for r in rs),
                           "mbps_min": min(r["mbps"] for r in rs), "mbps_max": max(r["mbps"] for r in rs),
                           "monitor_cpu_ms_per_mb_median": statistics.median(r["monitor_cpu_ms_per_mb"] for r in rs),
                           "lines_ok": all(r["lines_ok"] for r in rs)}
        if args.json:
            print(json.dumps(report, indent=2))
        else:
            print(f"{args.mb} MB of {LINE}-byte lines by {args.writer}, {args.n} runs each, "
                  f"{'rotated 10 MiB x 3' if args.rotate else 'no rotation'}")
            print(f"{'way':8}{'MB/s median':>12}{'min':>8}{'max':>8}{'monitor CPU ms/MB':>20}  lines")
            for way in ("copier", "plain"):
                s = report[way]
                print(f"{way:8}{s['mbps_median']:12.0f}{s['mbps_min']:8.0f}{s['mbps_max']:8.0f}"
                      f"{s['monitor_cpu_ms_per_mb_median']:20.2f}  {'all there' if s['lines_ok'] else 'LOST'}")
            ok = report["copier"]["mbps_median"] >= TARGET_MBPS
            print(f"target >= {TARGET_MBPS:.0f} MB/s through the copier: {'met' if ok else 'NOT met'}")
        return 0
    finally:
        with shielded():
            for c in rt.list():
                c.destroy(force=True)
            shutil.rmtree(rt.root, ignore_errors=True)  # the monitor, lingering, finds its socket gone
            remove_cgroups(rt.cgroup_parent, expected=True)
            shutil.rmtree(work, ignore_errors=True)
            reap_all()


if __name__ == "__main__":
    run_benchmark(main)
