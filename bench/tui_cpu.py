#!/usr/bin/env python3
"""TUI cost: CPU (% of one core) and RSS of ``dct tui`` showing N running containers, in a real terminal.

N busybox containers (a shell looping on ``sleep``) are started through the library; then
``dct --root ROOT tui`` runs in a detached tmux session of its own (private socket, 120x40,
``TERM=xterm-256color``) at the default 1 s refresh. Once its table shows every container and a
warm-up has passed, the TUI process's CPU time (user + system, all threads, psutil) is measured
over ``--seconds``, and its RSS sampled every second (max reported). Variants, each a fresh TUI:

- ``table``: the containers screen;
- ``table+specs``: the same with a spec directory naming every container (the drift column: a
  desired-state pass, observe + plan, every 2 s); the containers are made by ``dct apply``;
- ``container``: the container screen of one container (processes tab: psutil every tick).

    sudo .venv/bin/python bench/tui_cpu.py [--containers 100] [--seconds 30] [--variants table,...] [--json]

Targets (issue 6): <= 3 % of one core, RSS <= 100 MiB, with 100 running containers at 1 s.
Every container, cgroup, process and tmux server started is removed on exit, Ctrl-C and failure included.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import subprocess
import sys
import tempfile
import time
import uuid

from _fleet import REPO, DctFleet, build_rootfs, dct_command, final_cleanup, finish, log, reap, run_cmd, setup_process
from _fleet import SLEEP_LOOP, run_benchmark, write_bundle

TARGET_CPU_PCT = 3.0
TARGET_RSS_MIB = 100.0
VARIANTS = ("table", "table+specs", "container")


class Tmux:
    """A private tmux server (``-L``) holding one session; :meth:`kill` ends the server."""

    def __init__(self, tag: str) -> None:
        self.socket = f"dct-bench-{tag}"
        self.path = ""

    def run(self, *args: str) -> str:
        return subprocess.run(["tmux", "-L", self.socket, *args], capture_output=True, text=True,
                              check=False).stdout

    def start(self, command: str, width: int = 120, height: int = 40) -> int:
        """Start ``command`` (exec'd by the pane's shell, so the pane's pid is the command's); its pid."""
        subprocess.run(["tmux", "-L", self.socket, "new-session", "-d", "-s", "b", "-x", str(width),
                        "-y", str(height), f"exec {command}"], check=True)
        self.path = self.run("display-message", "-p", "#{socket_path}").strip()
        return int(self.run("display-message", "-p", "-t", "b", "#{pane_pid}").strip())

    def capture(self) -> str:
        return self.run("capture-pane", "-p", "-t", "b")

    def keys(self, *keys: str) -> None:
        self.run("send-keys", "-t", "b", *keys)

    def kill(self) -> None:
        path = self.path or self.run("display-message", "-p", "#{socket_path}").strip()
        self.run("kill-server")
        if path.endswith(self.socket):
            with contextlib.suppress(OSError):
                os.unlink(path)  # tmux leaves the socket file behind
        reap()


def wait_for_text(tmux: Tmux, text: str, timeout: float = 60.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        screen = tmux.capture()
        if text in screen:
            return screen
        time.sleep(0.2)
    raise RuntimeError(f"the TUI never showed {text!r}; last screen:\n{tmux.capture()}")


def measure(pid: int, seconds: float) -> dict:
    """CPU % of one core (all threads) over ``seconds``, RSS every second: {cpu_pct, rss_mib_max, rss_mib_end}."""
    import psutil

    p = psutil.Process(pid)
    t0, c0 = time.monotonic(), p.cpu_times()
    rss = []
    end = t0 + seconds
    while time.monotonic() < end:
        time.sleep(min(1.0, max(0.0, end - time.monotonic())))
        rss.append(p.memory_info().rss / (1 << 20))
    t1, c1 = time.monotonic(), p.cpu_times()
    used = (c1.user - c0.user) + (c1.system - c0.system)
    return {"cpu_pct": round(used / (t1 - t0) * 100, 3), "rss_mib_max": round(max(rss), 1),
            "rss_mib_end": round(rss[-1], 1), "cpu_seconds": round(used, 3), "seconds": round(t1 - t0, 2)}


def write_specs(directory: str, rootfs: str, names: list[str]) -> str:
    """One spec file naming every container (a sleep loop each, state running)."""
    os.makedirs(directory, exist_ok=True)
    docs = [f"name: {n}\nrootfs: {rootfs}\nprocess:\n  args: [\"sh\", \"-c\", \"while :; do sleep 3600; done\"]\n"
            f"resources: {{memory: 16Mi, pids: 16}}\nstop_timeout: 1\n" for n in names]
    with open(os.path.join(directory, "fleet.yaml"), "w") as f:
        f.write("---\n".join(docs))
    return directory


def run_variant(name: str, root: str, n: int, seconds: float, warmup: float, tag: str, specs: str | None) -> dict:
    tmux = Tmux(f"{tag}-{name.replace('+', '-')}")
    command = " ".join(dct_command() + ["--root", root, "tui"] + ([specs] if specs else []))
    try:
        pid = tmux.start(f"env -C {REPO} TERM=xterm-256color TEXTUAL_ANIMATIONS=none {command}")
        wait_for_text(tmux, f"{n} containers")
        if name == "container":
            tmux.keys("Enter")
            wait_for_text(tmux, "COMMAND")
        time.sleep(warmup)
        result = measure(pid, seconds)
        screen = tmux.capture()
        if "Traceback" in screen:
            raise RuntimeError(f"the TUI crashed:\n{screen}")
        return result
    finally:
        tmux.keys("q")
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and tmux.run("list-sessions"):
            time.sleep(0.1)
        tmux.kill()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--containers", type=int, default=100, help="running containers (default 100)")
    ap.add_argument("--seconds", type=float, default=30.0, help="measured seconds per variant (default 30)")
    ap.add_argument("--warmup", type=float, default=5.0, help="seconds after the table is full before measuring")
    ap.add_argument("--variants", default=",".join(VARIANTS), help=f"comma-separated, of {', '.join(VARIANTS)}")
    ap.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    args = ap.parse_args()
    variants = [v for v in args.variants.split(",") if v]
    if args.containers < 1 or args.seconds <= 0 or any(v not in VARIANTS for v in variants):
        ap.error(f"--containers >= 1, --seconds > 0, --variants among {', '.join(VARIANTS)}")
    if subprocess.run(["which", "tmux"], capture_output=True).returncode != 0:
        sys.exit("tmux not found: apt-get install tmux")
    setup_process()
    os.environ.setdefault("DCT_MONITOR_LINGER", "0.5")  # the root's monitor leaves soon after its last container
    tag = "tu" + uuid.uuid4().hex[:6]
    work = tempfile.mkdtemp(prefix=f"dct-bench-{tag}-")
    fleets: list = []
    results: dict[str, dict] = {}
    try:
        rootfs = build_rootfs(os.path.join(work, "rootfs"))
        bundle = write_bundle(os.path.join(work, "bundle"), rootfs, SLEEP_LOOP)
        n = args.containers
        plain = [v for v in variants if v != "table+specs"]
        if plain:
            fleet = DctFleet(os.path.join(work, "dct"))
            fleets.append(fleet)
            log(f"starting {n} containers…")
            for i in range(n):
                fleet.start_library(f"{tag}-{i:04d}", bundle)
            reap()
            fleet.containers.clear()  # the benchmark keeps no cgroup files open meanwhile
            for v in plain:
                log(f"variant {v}: TUI for {args.warmup + args.seconds:.0f} s…")
                results[v] = run_variant(v, fleet.root, n, args.seconds, args.warmup, tag, None)
            with contextlib.suppress(Exception):
                fleets.remove(fleet)
                problems = fleet.cleanup()
                if problems:
                    log("clean-up problems: " + "; ".join(problems))
        if "table+specs" in variants:
            sfleet = DctFleet(os.path.join(work, "dct-specs"))
            fleets.append(sfleet)
            specs = write_specs(os.path.join(work, "specs"), rootfs, [f"{tag}-s{i:04d}" for i in range(n)])
            log(f"dct apply of {n} containers…")
            run_cmd(dct_command() + ["--root", sfleet.root, "apply", specs])
            reap()
            log(f"variant table+specs: TUI for {args.warmup + args.seconds:.0f} s…")
            results["table+specs"] = run_variant("table+specs", sfleet.root, n, args.seconds, args.warmup, tag, specs)
        report = {"benchmark": "tui_cpu", "containers": n, "seconds": args.seconds, "refresh_s": 1.0,
                  "target_cpu_pct": TARGET_CPU_PCT, "target_rss_mib": TARGET_RSS_MIB, "variants": results,
                  "target_met": all(r["cpu_pct"] <= TARGET_CPU_PCT and r["rss_mib_max"] <= TARGET_RSS_MIB
                                    for r in results.values()),
                  "cpus": os.cpu_count(), "load_avg": [round(x, 2) for x in os.getloadavg()]}
    finally:
        cleanup = final_cleanup(fleets, work, f"dct*/{tag}-*")
    return finish(report, cleanup, args.json, _print_table)


def _print_table(r: dict) -> None:
    print(f"dct tui with {r['containers']} running containers, refresh {r['refresh_s']:g} s, "
          f"{r['seconds']:g} s measured per variant ({r['cpus']} CPUs, load {r['load_avg']})")
    print(f"{'variant':<14} {'cpu % of 1 core':>16} {'rss max MiB':>12} {'rss end MiB':>12}")
    for name, v in r["variants"].items():
        print(f"{name:<14} {v['cpu_pct']:>16.2f} {v['rss_mib_max']:>12.1f} {v['rss_mib_end']:>12.1f}")
    verdict = "met" if r["target_met"] else "NOT met"
    print(f"targets <= {r['target_cpu_pct']:g} % of one core, <= {r['target_rss_mib']:g} MiB: {verdict}")


if __name__ == "__main__":
    run_benchmark(main)
