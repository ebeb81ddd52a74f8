#!/usr/bin/env python3
"""Log reading: ``dct logs --tail 100`` of a small log and of a full one (3 files of 10 MiB, the
default rotation), and ``dct logs`` of the whole full log to /dev/null.

The logs are CRI files written here (lines of 20-120 bytes, stderr one line in ten, a split line
now and then) in a data root of its own (``$DCT_DATA_ROOT``), removed at the end.

    .venv/bin/python bench/log_read.py [--repeat 7] [--json]

Target: the tail of the full log costs about as much as the tail of the small one (it reads
backwards from the end: a few 64 KiB blocks, whatever the log's size). Figures: median wall
time of the ``dct`` process (its start-up included), and of the reader alone in this process.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from declarative_ct.runtime import logfiles, logread  # noqa: E402

FILE_SIZE = 10 << 20


def write_log(directory: str, files: int, size: int) -> int:
    """One run of ``files`` files of ``size`` bytes each (oldest ``.log.<files-1>``); bytes written."""
    rng = random.Random(15)
    path = logfiles.new_run(directory)
    names = [f"{path}.{k}" for k in range(files - 1, 0, -1)] + [path]
    t = 1_796_637_600_000_000_000
    total = 0
    for name in names:
        chunks, n = [], 0
        while n < size:
            t += rng.randrange(1000, 100_000)
            stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t // 10**9)) + f".{t % 10**9:09d}Z"
            stream = "stderr" if rng.random() < 0.1 else "stdout"
            tag = "P" if rng.random() < 0.02 else "F"
            line = f"{stamp} {stream} {tag} {'x' * rng.randrange(20, 120)}\n".encode()
            chunks.append(line)
            n += len(line)
        with open(name, "wb") as f:
            f.write(b"".join(chunks))
        total += n
    return total


def median_seconds(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def dct(data_root: str, root: str, *args: str) -> None:
    env = {**os.environ, "DCT_DATA_ROOT": data_root, "PYTHONPATH": REPO}
    subprocess.run([sys.executable, "-m", "declarative_ct.cli.main", "--root", root, "logs", *args],
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, check=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="dct-log-read-")
    try:
        data, root = os.path.join(tmp, "data"), os.path.join(tmp, "state")
        small = write_log(logfiles.log_dir(data, "small"), 1, 10 << 10)
        full = write_log(logfiles.log_dir(data, "full"), 3, FILE_SIZE)
        out: dict[str, float] = {"small_bytes": small, "full_bytes": full}
        for name in ("small", "full"):
            directory = logfiles.log_dir(data, name)
            out[f"cli_tail100_{name}_ms"] = 1000 * median_seconds(lambda n=name: dct(data, root, "--tail", "100", n),
                                                                  args.repeat)
            out[f"reader_tail100_{name}_ms"] = 1000 * median_seconds(
                lambda d=directory: logread.read_run(d, 0, tail=100), args.repeat)
        whole = median_seconds(lambda: dct(data, root, "full"), max(1, args.repeat // 3))
        out["cli_all_full_s"] = whole
        out["cli_all_full_mb_per_s"] = full / 1e6 / whole
        if args.json:
            print(json.dumps(out))
        else:
            mib = full / (1 << 20)
            print(f"dct logs --tail 100: small log {out['cli_tail100_small_ms']:.1f} ms, {mib:.0f} MiB log "
                  f"{out['cli_tail100_full_ms']:.1f} ms (the reader alone: {out['reader_tail100_small_ms']:.2f} / "
                  f"{out['reader_tail100_full_ms']:.2f} ms)")
            print(f"dct logs (all of {mib:.0f} MiB) > /dev/null: {whole:.2f} s, {out['cli_all_full_mb_per_s']:.0f} MB/s")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
