"""Shared by the fleet benchmarks (stats_sweep.py, monitor_rss.py): many running containers, cleaned up.

A busybox rootfs and bundles, fleets of ``dct`` containers (library or CLI) and of runc
containers, and the clean-up that removes every container, cgroup and process the benchmark
started, on success, failure or Ctrl-C alike. The benchmark process is a child subreaper: the
monitors, and runc's detached inits, are re-parented to it, and it reaps them (PID 1 may not).
"""

from __future__ import annotations

import contextlib
import glob
import json
import os
import shutil
import signal
import statistics
import struct
import subprocess
import sys
import tempfile
import time

REPO = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
sys.path.insert(0, REPO)

from declarative_ct.errors import ContainerError, ContainerNotExists, ContainerNotRunning  # noqa: E402
from declarative_ct.runtime import Container, Runtime, Status, linux, specconv  # noqa: E402

# The containers' program: a shell looping on a long sleep (two processes, no churn meanwhile).
SLEEP_LOOP = ["sh", "-c", "while :; do sleep 3600; done"]
_SHIELDED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
_STOP_WAIT = 10.0  # seconds for SIGKILLed containers to stop and leave their cgroups


def log(msg: str) -> None:
    """Progress on stderr (stdout carries only the results)."""
    print(msg, file=sys.stderr, flush=True)


# -- process set-up: root, subreaper, signals ------------------------------------------------

def run_benchmark(main) -> None:
    """``sys.exit(main())``; Ctrl-C (after main's own clean-up) says so and exits 130."""
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        log("interrupted")
        sys.exit(130)


def setup_process() -> None:
    """Check root, become a child subreaper and turn SIGTERM/SIGHUP into KeyboardInterrupt (like Ctrl-C)."""
    if os.geteuid() != 0:
        sys.exit("run as root")
    linux.prctl(linux.PR_SET_CHILD_SUBREAPER, 1)

    def interrupt(signum: int, _frame: object) -> None:
        raise KeyboardInterrupt(signal.Signals(signum).name)

    signal.signal(signal.SIGTERM, interrupt)
    signal.signal(signal.SIGHUP, interrupt)


@contextlib.contextmanager
def shielded():
    """Ignore Ctrl-C/SIGTERM/SIGHUP inside: a clean-up must not be cut short by a second Ctrl-C."""
    old = {sig: signal.signal(sig, signal.SIG_IGN) for sig in _SHIELDED}
    try:
        yield
    finally:
        for sig, handler in old.items():
            signal.signal(sig, handler)


def reap() -> None:
    """Reap every child that has exited, without blocking."""
    while True:
        try:
            if os.waitpid(-1, os.WNOHANG)[0] == 0:
                return
        except ChildProcessError:
            return


def children() -> list[int]:
    """PIDs whose parent is this process (alive or zombie)."""
    me = os.getpid()
    return [int(name) for name in os.listdir("/proc") if name.isdigit() and ppid(int(name)) == me]


def reap_all(grace: float = 3.0) -> list[dict]:
    """Reap children until none is left; after ``grace`` seconds SIGKILL (by PID) and reap those left.

    Called once every container is gone, so what is left is idle: a monitor that lingers after
    its last container (by design), or a bug. Returns ``[{pid, cmdline}]`` of those killed.
    """
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        reap()
        if not children():
            return []
        time.sleep(0.01)
    killed = []
    for pid in children():
        killed.append({"pid": pid, "cmdline": cmdline(pid)})
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
    for k in killed:
        with contextlib.suppress(ChildProcessError):
            os.waitpid(k["pid"], 0)
    return killed


# -- /proc -----------------------------------------------------------------------------------

def ppid(pid: int) -> int | None:
    """Field 4 of ``/proc/<pid>/stat`` (counted after the last ``)``: comm may hold anything); None if gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            raw = f.read()
    except OSError:
        return None
    return int(raw[raw.rfind(b")") + 2:].split()[1])


def cmdline(pid: int) -> str:
    """``/proc/<pid>/cmdline`` with spaces, or ``?``."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().rstrip(b"\0").replace(b"\0", b" ").decode(errors="replace") or "?"
    except OSError:
        return "?"


# -- rootfs and bundles ----------------------------------------------------------------------

def find_busybox() -> str:
    """A statically linked busybox (``apt-get install busybox-static``); exits with the fix if there is none."""
    for path in (shutil.which("busybox"), "/bin/busybox"):
        if path and os.path.isfile(path):
            if _has_interp(path):
                sys.exit(f"{path} is dynamically linked; the container rootfs needs busybox-static "
                         "(apt-get install busybox-static)")
            return path
    sys.exit("busybox not found: apt-get install busybox-static")


def _has_interp(path: str) -> bool:
    """True when the ELF64 file has a PT_INTERP program header (a dynamic executable)."""
    with open(path, "rb") as f:
        head = f.read(64)
        if head[:4] != b"\x7fELF" or head[4] != 2:
            return False  # not ELF64: let the container report it
        phoff, = struct.unpack_from("<Q", head, 32)
        phentsize, phnum = struct.unpack_from("<HH", head, 54)
        f.seek(phoff)
        table = f.read(phentsize * phnum)
    return any(struct.unpack_from("<I", table, i * phentsize)[0] == 3 for i in range(phnum))


def build_rootfs(directory: str, applets: tuple[str, ...] = ("sh", "sleep")) -> str:
    """A busybox rootfs with ``applets`` linked; returns its absolute path."""
    rootfs = os.path.abspath(directory)
    os.makedirs(os.path.join(rootfs, "bin"))
    shutil.copy(find_busybox(), os.path.join(rootfs, "bin", "busybox"))
    for applet in applets:
        os.symlink("busybox", os.path.join(rootfs, "bin", applet))
    for d in ("proc", "dev", "sys", "tmp", "etc"):
        os.makedirs(os.path.join(rootfs, d), exist_ok=True)
    return rootfs


def write_bundle(directory: str, rootfs: str, args: list[str], cgroups_path: str | None = None) -> str:
    """An OCI bundle (config.json only) whose read-only root is the shared ``rootfs``; returns its path."""
    os.makedirs(directory, exist_ok=True)
    spec = specconv.example_spec()
    spec["process"]["args"] = list(args)
    spec["root"] = {"path": rootfs, "readonly": True}
    if cgroups_path:
        spec["linux"]["cgroupsPath"] = cgroups_path
    with open(os.path.join(directory, "config.json"), "w") as f:
        json.dump(spec, f)
    return directory


# -- running commands ------------------------------------------------------------------------

def run_cmd(argv: list[str], capture: bool = False) -> subprocess.CompletedProcess:
    """Run ``argv`` in its own session; raise with its stderr on failure.

    Without ``capture`` stdout is /dev/null: a detached ``runc run -d`` hands its stdio to the
    container, which would hold a pipe open forever. On Ctrl-C the command is let finish (30 s
    at most) so that the clean-up finds a consistent state, never a half-made container.
    """
    with tempfile.TemporaryFile() as err:
        stdout = subprocess.PIPE if capture else subprocess.DEVNULL
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=stdout, stderr=err, start_new_session=True)
        try:
            out, _ = proc.communicate()
        except BaseException:
            with shielded():
                try:
                    proc.communicate(timeout=30)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
            raise
        if proc.returncode != 0:
            err.seek(0)
            message = err.read().decode(errors="replace").strip()
            raise RuntimeError(f"{' '.join(argv)}: exit {proc.returncode}: {message}")
        return subprocess.CompletedProcess(argv, proc.returncode, out, b"")


def dct_command() -> list[str]:
    """The ``dct`` CLI of this venv (or ``python -m declarative_ct.cli.main``)."""
    exe = shutil.which("dct", path=os.path.dirname(sys.executable))
    return [exe] if exe else [sys.executable, "-m", "declarative_ct.cli.main"]


# -- dct fleets ------------------------------------------------------------------------------

class DctFleet:
    """Running ``dct`` containers under one state root; :meth:`cleanup` removes all that the root holds."""

    def __init__(self, root: str) -> None:
        self.root = os.path.abspath(root)
        self.runtime = Runtime(self.root)
        self.containers: list[Container] = []  # kept, as a TUI collector keeps them

    def start_library(self, cid: str, bundle: str) -> Container:
        """``Runtime.create`` + ``Container.run`` (detached, with a monitor)."""
        config, process = specconv.load_bundle(bundle)
        container = self.runtime.create(cid, config)
        container.run(process)
        self.containers.append(container)
        return container

    def start_cli(self, cid: str, bundle: str) -> Container:
        """``dct --root ROOT run -d --monitor -b BUNDLE ID``; the container loaded afterwards."""
        run_cmd(dct_command() + ["--root", self.root, "run", "-d", "--monitor", "-b", bundle, cid])
        container = self.runtime.load(cid)
        self.containers.append(container)
        return container

    def cleanup(self) -> list[str]:
        """SIGKILL and destroy every container of the root (aborted creates too), then remove the root.

        Returns the problems met (empty when all went as it should).
        """
        problems: list[str] = []
        self.containers.clear()  # drops the kept cgroup fds (closed at garbage collection)
        if not os.path.isdir(self.root):
            return problems
        loaded: list[Container] = []
        for cid in sorted(os.listdir(self.root)):
            if cid.startswith("#") or not os.path.isdir(os.path.join(self.root, cid)):
                continue  # "#…" entries are the manager's (the compiled seccomp cache, the supervisor lock)
            try:
                container = self.runtime.load(cid)
            except ContainerNotExists:
                _try(problems, cid, lambda cid=cid: self.runtime.cleanup(cid, force=True))  # no state.json
                continue
            except ContainerError as err:
                problems.append(f"{cid}: load: {err}")
                _try(problems, cid, lambda cid=cid: self.runtime.cleanup(cid, force=True))
                continue
            try:
                container.signal(signal.SIGKILL, all=True)
            except ContainerNotRunning:
                pass
            except Exception as err:  # noqa: BLE001 - go on with the others
                problems.append(f"{cid}: kill: {err}")
            loaded.append(container)
        deadline = time.monotonic() + _STOP_WAIT
        for container in loaded:
            while container.status() != Status.STOPPED and time.monotonic() < deadline:
                time.sleep(0.01)
            _try(problems, container.id, container.destroy)
        shutil.rmtree(self.root, ignore_errors=True)
        remove_data_roots(self.root)
        return problems


def remove_data_roots(under: str) -> None:
    """Remove the data roots (the monitored containers' logs: ``/var/lib/dct/roots/…``) of the state
    roots at or below ``under``."""
    from declarative_ct.runtime import factory

    for path in factory.derived_data_roots(under):
        shutil.rmtree(path, ignore_errors=True)


def _try(problems: list[str], what: str, fn) -> None:
    try:
        fn()
    except Exception as err:  # noqa: BLE001 - clean-up goes on, the problem is reported
        problems.append(f"{what}: {type(err).__name__}: {err}")


# -- runc fleets -----------------------------------------------------------------------------

class RuncFleet:
    """runc containers under a private ``--root``, each with its cgroup under ``/<cgroup_parent>/<id>``."""

    def __init__(self, runc: str, root: str, bundles: str, cgroup_parent: str) -> None:
        self.runc = runc
        self.root = os.path.abspath(root)
        self.bundles = bundles
        self.cgroup_parent = cgroup_parent
        self.ids: list[str] = []

    def start(self, cid: str, rootfs: str, args: list[str]) -> None:
        """``runc run -d`` on a bundle of its own (config.json only; the rootfs is shared)."""
        bundle = write_bundle(os.path.join(self.bundles, cid), rootfs, args, f"/{self.cgroup_parent}/{cid}")
        self.ids.append(cid)  # before: a run interrupted half-way is deleted all the same
        run_cmd([self.runc, "--root", self.root, "run", "-d", "-b", bundle, cid])

    def stats(self, cid: str) -> dict:
        """``runc events --stats ID``, parsed (a collector would parse it)."""
        return json.loads(run_cmd([self.runc, "--root", self.root, "events", "--stats", cid], capture=True).stdout)

    def cleanup(self) -> list[str]:
        """``runc delete -f`` every container of the root; then remove the root and the cgroup parent."""
        problems: list[str] = []
        ids = set(self.ids)
        if os.path.isdir(self.root):
            ids.update(d for d in os.listdir(self.root) if os.path.isdir(os.path.join(self.root, d)))
        for cid in sorted(ids):
            try:
                run_cmd([self.runc, "--root", self.root, "delete", "-f", cid])
            except RuntimeError as err:
                if "does not exist" not in str(err):
                    problems.append(str(err))
        self.ids.clear()
        shutil.rmtree(self.root, ignore_errors=True)
        problems += remove_cgroups(f"/{self.cgroup_parent}", expected=True)
        return problems


# -- cgroups ---------------------------------------------------------------------------------

def cgroup_mounts() -> list[str]:
    """Mount points of every cgroup and cgroup2 hierarchy."""
    out = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            pre, _, post = line.partition(" - ")
            if post.split()[:1] in (["cgroup"], ["cgroup2"]):
                out.append(pre.split()[4])
    return out


def remove_cgroups(pattern: str, expected: bool = False) -> list[str]:
    """Kill the processes of, and remove, the cgroups matching ``pattern`` (relative to each mount) and below.

    ``expected`` False reports each one found as a leftover (something that should already be gone).
    """
    problems = []
    for mount in cgroup_mounts():
        for top in glob.glob(os.path.join(mount, pattern.lstrip("/"))):
            if not os.path.isdir(top):
                continue
            if not expected:
                problems.append(f"leftover cgroup {top} (removed now)")
            for directory, _, _ in os.walk(top, topdown=False):
                err = _remove_cgroup_dir(directory)
                if err:
                    problems.append(err)
    return problems


def _remove_cgroup_dir(directory: str) -> str | None:
    deadline = time.monotonic() + _STOP_WAIT
    while True:
        try:
            with open(os.path.join(directory, "cgroup.procs")) as f:
                pids = [int(p) for p in f.read().split()]
        except FileNotFoundError:
            return None
        if not pids:
            break
        if time.monotonic() > deadline:
            return f"{directory}: processes {pids} survive SIGKILL"
        for pid in pids:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        reap()
        time.sleep(0.01)
    try:
        os.rmdir(directory)
    except FileNotFoundError:
        pass
    except OSError as err:
        return f"rmdir {directory}: {err.strerror}"
    return None


def final_cleanup(fleets: list, work: str, dct_cgroup_pattern: str | None) -> dict[str, list]:
    """Clean every fleet, remove leftover dct cgroups and ``work``, reap all children; shielded from Ctrl-C.

    Returns ``{"problems": [str], "killed_children": [{pid, cmdline}]}``: problems are leftovers
    or failures; killed children are processes still alive (idle) once every container was gone.
    """
    problems: list[str] = []
    with shielded():
        log("cleaning up…")
        for fleet in fleets:
            try:
                problems += fleet.cleanup()
            except Exception as err:  # noqa: BLE001 - the other fleets still need cleaning
                problems.append(f"{type(fleet).__name__} clean-up: {type(err).__name__}: {err}")
        if dct_cgroup_pattern:
            problems += remove_cgroups(dct_cgroup_pattern)
        shutil.rmtree(work, ignore_errors=True)
        killed = reap_all()
    for p in problems:
        log(f"clean-up problem: {p}")
    for k in killed:
        log(f"clean-up: SIGKILLed child {k['pid']} still alive (idle) after every container was gone: {k['cmdline']}")
    return {"problems": problems, "killed_children": killed}


# -- figures ---------------------------------------------------------------------------------

def summary(values: list[float], digits: int = 3) -> dict[str, float]:
    """``{min, median, max, mean}`` rounded to ``digits``."""
    return {"min": round(min(values), digits), "median": round(statistics.median(values), digits),
            "max": round(max(values), digits), "mean": round(statistics.fmean(values), digits)}


def finish(report: dict, cleanup: dict, as_json: bool, print_table) -> int:
    """Print ``report`` (with its clean-up) as one JSON object or as ``print_table(report)`` and the
    clean-up lines; the exit status (1 when something was left behind)."""
    report["cleanup"] = cleanup
    if as_json:
        print(json.dumps(report))
    else:
        print_table(report)
        for k in cleanup["killed_children"]:
            print(f"clean-up: child {k['pid']} was still alive (idle) after every container was gone, "
                  f"SIGKILLed: {k['cmdline']}")
        if cleanup["problems"]:
            print(f"clean-up problems: {len(cleanup['problems'])} (see stderr)")
    return 1 if cleanup["problems"] else 0
