"""``dct watch`` as the supervisor service, run the way the shipped unit runs it.

The unit (``declarative_ct/service/dct.service``) is installed into a temporary unit directory by
``dct service install``; its ``ExecStart=`` line, split as systemd splits it, is run as is, with a
``NOTIFY_SOCKET`` this test binds (AF_UNIX, SOCK_DGRAM) and ``WATCHDOG_USEC`` set, as systemd
would for ``Type=notify`` and ``WatchdogSec=``. Checked: READY=1 after the first pass (the
containers exist by then), WATCHDOG=1 keeps coming, SIGHUP gives RELOADING=1 then READY=1 and a
spec change applied without its debounce, SIGTERM gives STOPPING=1, exit 0, the containers and the
root's monitor alive; a second supervisor on the root is refused; a restarted one adopts the
running containers (same inits, no action); after a simulated reboot (the state root emptied) the
declared containers come up at once whatever restart records the data root holds.

Not testable here (no systemd as PID 1): systemd's own handling of these notifications (start
returning at READY, the watchdog's kill and Restart=on-failure, reload's wait for READY), and
that KillMode=process and Delegate=yes keep the monitor and containers alive through
``systemctl stop/restart`` (here: the unit's values checked by systemd-analyze, and SIGTERM sent
to the main process alone, which is what KillMode=process makes systemd do). A VM with systemd
as init is a separate test bed.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

import pytest

from conftest import cleanup_state_root, unique_id, wait_for
from declarative_ct.reconcile import restart
from declarative_ct.runtime import Runtime, Status, logfiles
from declarative_ct.service import unit
from declarative_ct.units import parse_time
from dct_cli import REPO

pytestmark = pytest.mark.integration
SLEEP = ["/bin/sh", "-c", "trap 'exit 0' TERM; while :; do sleep 0.1; done"]
WATCHDOG_USEC = 600_000  # pings every 0.3 s


class Notifications:
    """A bound NOTIFY_SOCKET and the messages received on it (a thread reads them)."""

    def __init__(self) -> None:
        self.dir = tempfile.mkdtemp(prefix="dn-")  # short: sun_path is 108 bytes
        self.path = os.path.join(self.dir, "notify")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.sock.settimeout(0.1)
        self.messages: list[tuple[float, dict[str, str]]] = []
        self._lock = threading.Lock()
        self._closed = False
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        while not self._closed:
            try:
                data = self.sock.recv(65536)
            except (TimeoutError, socket.timeout):
                continue
            except OSError:
                return
            fields = dict(line.split("=", 1) for line in data.decode().split("\n") if "=" in line)
            with self._lock:
                self.messages.append((time.monotonic(), fields))

    def seen(self, key: str, value: str | None = None, after: float = 0.0) -> list[dict[str, str]]:
        """The messages (after the monotonic time ``after``) with ``key`` (equal to ``value`` if given)."""
        with self._lock:
            return [m for t, m in self.messages if t >= after and key in m and (value is None or m[key] == value)]

    def close(self) -> None:
        self._closed = True
        self.thread.join(2)
        self.sock.close()
        shutil.rmtree(self.dir, ignore_errors=True)


class Supervisor:
    """The unit's ExecStart as a process, with systemd's notification variables."""

    def __init__(self, argv: list[str], notify: Notifications, tmp_path, n: int) -> None:
        self.out_path, self.err_path = tmp_path / f"watch{n}.out", tmp_path / f"watch{n}.err"
        env = dict(os.environ, NOTIFY_SOCKET=notify.path, WATCHDOG_USEC=str(WATCHDOG_USEC),
                   PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""))
        with open(self.out_path, "w") as out, open(self.err_path, "w") as err:
            self.proc = subprocess.Popen(argv, stdout=out, stderr=err, stdin=subprocess.DEVNULL, env=env)
        self.pid = self.proc.pid

    def out(self) -> str:
        return self.out_path.read_text()

    def err(self) -> str:
        return self.err_path.read_text()

    def stop(self) -> None:
        """Kill it if still running, and reap it (the finally of every test)."""
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)


@pytest.fixture
def service(tmp_path, state_root, busybox_rootfs):
    """``(specs dir, write(name, **fields), start() -> Supervisor)``: the unit installed (no systemd)
    for ``state_root`` and a data root in tmp_path; each started supervisor is killed and reaped at
    the end, pass or fail, before the state root is cleaned."""
    specs, unit_dir, data_root = tmp_path / "specs", tmp_path / "units", tmp_path / "data"
    done = subprocess.run([sys.executable, "-m", "declarative_ct.cli.main", "--root", state_root, "--data-root",
                           str(data_root), "service", "install", "--specs", str(specs), "--unit-dir", str(unit_dir)],
                          capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=REPO), timeout=30)
    assert done.returncode == 0, done.stderr
    assert "systemd is not running here" in done.stdout and "dct --root" in done.stdout
    assert specs.is_dir()  # install made the spec directory
    text = (unit_dir / unit.UNIT_NAME).read_text()
    argv = unit.split_command(unit.parse(text)["Service"]["ExecStart"][-1])
    assert argv[1:] == ["--root", state_root, "--data-root", str(data_root), "watch", str(specs)]
    notify = Notifications()
    started: list[Supervisor] = []

    def write(name: str, **fields) -> None:
        doc = {"name": name, "rootfs": busybox_rootfs, "process": {"args": SLEEP}, "stop_timeout": 1, **fields}
        tmp = specs / f".{name}.tmp"
        tmp.write_text(json.dumps(doc) + "\n")
        os.rename(tmp, specs / f"{name}.yaml")

    def start() -> Supervisor:
        started.append(Supervisor(argv, notify, tmp_path, len(started)))
        return started[-1]

    yield specs, write, start, notify, Runtime(state_root, str(data_root))
    for s in started:
        s.stop()
        print(f"--- supervisor {s.pid} stdout:\n{s.out()}--- stderr:\n{s.err()}")
    notify.close()


def _ppid(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        return int(next(line.split()[1] for line in f if line.startswith("PPid:")))


def _pid(runtime: Runtime, name: str) -> int | None:
    try:
        c = runtime.load(name)
        return c.state().init_process_pid if c.status() == Status.RUNNING else None
    except Exception:  # noqa: BLE001 - absent or half-made
        return None


def test_the_units_command_line_as_a_notify_service(service):
    specs, write, start, notify, runtime = service
    a, b = unique_id("sa"), unique_id("sb")
    write(a, restart="always")
    write(b, depends_on=[a])
    sup = start()
    try:
        # READY=1 after the first pass: the declared containers exist by then
        ready = wait_for(lambda: notify.seen("READY", "1"), timeout=30, message="READY=1")
        assert _pid(runtime, a) and _pid(runtime, b)
        assert ready[0]["STATUS"] == f"watching 2 containers in {specs}"
        pids = {n: _pid(runtime, n) for n in (a, b)}
        monitor = _ppid(pids[a])  # the root's monitor forked the inits: it is their parent
        assert monitor not in (sup.pid, os.getpid()) and _ppid(pids[b]) == monitor

        # WATCHDOG=1 keeps coming, every half of WATCHDOG_USEC
        t0 = time.monotonic()
        wait_for(lambda: len(notify.seen("WATCHDOG", "1", after=t0)) >= 4, timeout=5, message="watchdog pings")

        # a second supervisor on the same root: refused, naming the first one's pid and specs
        second = start()
        assert second.proc.wait(30) == 1
        assert f"pid {sup.pid} watching {specs}" in second.err() and "one supervisor per state root" in second.err()
        assert not notify.seen("READY", after=t0)  # the refused one said nothing to systemd
        with open(os.path.join(runtime.root, "#supervisor.json")) as f:
            info = json.load(f)
        assert info["pid"] == sup.pid and info["paths"] == [str(specs)] and info["last_pass"]

        # SIGHUP: a file that never settles (rewritten every 50 ms, so the debounce never ends) is
        # read at once; RELOADING=1 (with MONOTONIC_USEC) then READY=1; the change applied
        c = unique_id("sc")
        stop_touching = threading.Event()

        def keep_writing() -> None:
            while not stop_touching.is_set():
                write(c)
                time.sleep(0.05)

        toucher = threading.Thread(target=keep_writing, daemon=True)
        toucher.start()
        try:
            time.sleep(1.5)  # debounce 0.3 s, resync 2 s: the unsettled file is not read
            assert _pid(runtime, c) is None, "the file was read before it settled"
            t1 = time.monotonic()
            sup.proc.send_signal(signal.SIGHUP)
            wait_for(lambda: _pid(runtime, c), timeout=10, message="the reloaded spec applied")
        finally:
            stop_touching.set()
            toucher.join(5)
        reloading = wait_for(lambda: notify.seen("RELOADING", "1", after=t1), message="RELOADING=1")
        assert int(reloading[0]["MONOTONIC_USEC"]) <= time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        ready = wait_for(lambda: notify.seen("READY", "1", after=t1), message="READY=1 after the reload")
        assert ready[-1]["STATUS"] == f"watching 3 containers in {specs}"
        order = [m for _, m in notify.messages if "RELOADING" in m or "READY" in m]
        assert "RELOADING" in order[-2] and "READY" in order[-1]

        # SIGTERM (what KillMode=process sends to the main process alone): STOPPING=1, exit 0,
        # the containers running with the same inits, the root's monitor still recording exits
        t2 = time.monotonic()
        sup.proc.send_signal(signal.SIGTERM)
        assert sup.proc.wait(30) == 0
        assert notify.seen("STOPPING", "1", after=t2)
        assert "Traceback" not in sup.err()
        assert sup.out().splitlines()[-1] == "stopped: the containers are left as they are"
        assert {n: _pid(runtime, n) for n in (a, b)} == pids
        assert _ppid(pids[a]) == monitor  # the monitor lives on (not killed, the inits not re-parented)
        pids[c] = _pid(runtime, c)
        with open(os.path.join(runtime.root, "#supervisor.json")) as f:
            assert json.load(f)["stopped"]

        # a new supervisor adopts them: same inits, no action
        again = start()
        t3 = time.monotonic()
        wait_for(lambda: notify.seen("READY", "1", after=t3), timeout=30, message="READY=1 of the new supervisor")
        time.sleep(0.5)
        assert {n: _pid(runtime, n) for n in (a, b, c)} == pids
        assert " done, " not in again.out(), again.out()

        # the monitor lived on through the supervisor's restart: an exit is recorded, and acted on
        runtime.load(a).signal(signal.SIGKILL)
        wait_for(lambda: runtime.load(a).exit_status() or _pid(runtime, a) not in (None, pids[a]),
                 message="the exit recorded by the monitor")
        wait_for(lambda: _pid(runtime, a) not in (None, pids[a]), timeout=10, message="the restart (always)")
        record = restart.load_record(runtime, a)  # kept under the data root given to install
        assert record["restarts"] == 1 and record["last_exit"]["signal"] == signal.SIGKILL
        assert os.path.isfile(os.path.join(runtime.data_root, "restarts", a + ".json"))
        # dct status: the last exit and its reason, from the record (the new run has none yet)
        status = [sys.executable, "-m", "declarative_ct.cli.main", "--root", runtime.root, "--data-root",
                  runtime.data_root, "status", str(specs)]
        env = dict(os.environ, PYTHONPATH=REPO)
        rows = {r["name"]: r for r in json.loads(subprocess.run(status + ["--json"], capture_output=True, text=True,
                                                                env=env, timeout=30, check=True).stdout)}
        assert rows[a]["restarts"] == 1 and rows[a]["status"] == "running"
        assert rows[a]["last_exit"]["signal"] == 9 and rows[a]["last_exit"]["exit_code"] == 137
        assert rows[a]["last_exit"]["oom_killed"] is False and rows[a]["last_exit"]["exited_at"].endswith("Z")
        table = subprocess.run(status, capture_output=True, text=True, env=env, timeout=30, check=True).stdout
        assert next(line for line in table.splitlines() if line.startswith(a)).split()[5:8] == ["137", "SIGKILL", "1"]
        again.proc.send_signal(signal.SIGINT)
        assert again.proc.wait(30) == 0
    finally:
        sup.stop()


def test_restart_counts_and_backoff_survive_a_restart_of_the_service(service):
    specs, write, start, notify, runtime = service
    a = unique_id("rc")
    write(a, restart="always")
    sup = start()
    try:
        wait_for(lambda: notify.seen("READY", "1"), timeout=30, message="READY=1")
        for attempt in (1, 2):
            pid = _pid(runtime, a)
            runtime.load(a).signal(signal.SIGKILL)
            wait_for(lambda: _pid(runtime, a) not in (None, pid), timeout=10, message=f"restart {attempt}")
        wait_for(lambda: (restart.load_record(runtime, a) or {}).get("restarts") == 2, message="the count")
        sup.proc.send_signal(signal.SIGTERM)
        assert sup.proc.wait(30) == 0
        # it exits while no supervisor runs; the next one goes on with the count: attempt 3, after
        # backoff(2) = 2 s from the exit (not 0.5 s, as a fresh count would wait)
        pid = _pid(runtime, a)
        runtime.load(a).signal(signal.SIGKILL)
        exited = parse_time(wait_for(lambda: runtime.load(a).exit_status(), message="the exit")["exited_at"])
        again = start()
        wait_for(lambda: _pid(runtime, a) not in (None, pid), timeout=15, message="the restart by the new supervisor")
        assert parse_time(runtime.load(a).state().created) - exited >= restart.backoff(2) - 0.01
        record = restart.load_record(runtime, a)
        assert record["restarts"] == 3
        wait_for(lambda: "attempt 3" in again.out(), message="the outcome line")
    finally:
        sup.stop()


def test_a_reboot_brings_the_declared_containers_back_at_once(service):
    """The state root emptied (a reboot: tmpfs gone, with the monitor); the data root still holds
    restart records of the previous boot (a count, a backoff far in the future, a run that no longer
    exists): the declared containers are absent, not exited, and come up at once, in dependency
    order; the stale records are forgotten when they are created."""
    specs, write, start, notify, runtime = service
    a, b = unique_id("ra"), unique_id("rb")
    write(a, restart="always")
    write(b, restart="always", depends_on=[a])
    for name in (a, b):
        restart.save_record(runtime, name, {
            "policy": "always", "restarts": 7, "last_exit": {"exit_code": 137, "signal": 9, "oom_killed": False,
                                                             "exited_at": "2020-01-01T00:00:00Z"},
            "exited_run": "2020-01-01T00:00:00.000000000Z", "exit_time": time.time(),
            "next_restart": time.time() + 3600})
    sup = start()
    try:
        t0 = time.monotonic()
        wait_for(lambda: notify.seen("READY", "1"), timeout=30, message="READY=1")
        assert time.monotonic() - t0 < 20  # not the hour of the stale backoff
        assert _pid(runtime, a) and _pid(runtime, b)
        assert runtime.load(a).state().created <= runtime.load(b).state().created  # depends_on honoured
        assert restart.load_record(runtime, a) is None and restart.load_record(runtime, b) is None
        sup.proc.send_signal(signal.SIGTERM)
        assert sup.proc.wait(30) == 0

        # the next reboot: the state root emptied while no supervisor runs
        assert not cleanup_state_root(runtime.root)
        shutil.rmtree(runtime.root)
        again = start()
        t1 = time.monotonic()
        wait_for(lambda: notify.seen("READY", "1", after=t1), timeout=30, message="READY=1 after the reboot")
        assert _pid(runtime, a) and _pid(runtime, b)
        again.proc.send_signal(signal.SIGTERM)
        assert again.proc.wait(30) == 0
    finally:
        sup.stop()


CHATTY = ["/bin/sh", "-c", "i=0; while [ $i -lt 3000 ]; do i=$((i+1)); echo line-$i-of-a-log-past-its-rotation; done; "
                           "trap 'exit 0' TERM; while :; do sleep 0.1; done"]
TOKEN = ["/bin/sh", "-c", "echo run $(head -c6 /dev/urandom | od -An -tx1 | tr -d ' '); echo to-stderr >&2; "
                          "trap 'exit 0' TERM; while :; do sleep 0.1; done"]


def _logs(runtime: Runtime, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "declarative_ct.cli.main", "--root", runtime.root, "--data-root",
                           runtime.data_root, "logs", *args], capture_output=True, text=True, timeout=30,
                          env=dict(os.environ, PYTHONPATH=REPO))


def _run_token(runtime: Runtime, name: str, *flags: str) -> str:
    out = _logs(runtime, *flags, name)
    assert out.returncode == 0, out.stderr
    return next(line.split()[-1] for line in out.stdout.splitlines() if " run " in f" {line}")


def test_supervised_restarts_keep_the_crashed_runs_log_and_a_reboot_brings_all_back(service):
    """The issue's scenario end to end, with the supervisor started as the unit starts it: a killed
    container comes back within its backoff and ``dct logs --previous`` shows the crashed run's
    output with timestamps and streams; the supervisor restarted leaves the containers running
    (same inits); a reboot (everything killed, the state root emptied) brings every declared
    container back and keeps the logs of the names; a log filled past its rotation size keeps
    ``max_files`` files of at most ``max_size`` bytes, the lines in them consecutive up to the last."""
    specs, write, start, notify, runtime = service
    crash, chatty, web = unique_id("dc"), unique_id("dl"), unique_id("dw")
    write(crash, restart="always", process={"args": TOKEN})
    write(chatty, process={"args": CHATTY}, logging={"max_size": "4Ki", "max_files": 3})
    write(web, depends_on=[crash])
    sup = start()
    try:
        wait_for(lambda: notify.seen("READY", "1"), timeout=30, message="READY=1")
        first = wait_for(lambda: _pid(runtime, crash), message="the crashing container")
        crashed_run = wait_for(lambda: _run_token(runtime, crash), message="the first run's output")
        runtime.load(crash).signal(signal.SIGKILL)
        killed = time.monotonic()
        wait_for(lambda: _pid(runtime, crash) not in (None, first), timeout=10, message="the restart")
        assert time.monotonic() - killed < restart.backoff(0) + 5  # within its backoff (0.5 s) and a pass
        wait_for(lambda: _run_token(runtime, crash) != crashed_run, message="the new run's output")
        previous = _logs(runtime, "--previous", "-t", crash)
        assert previous.returncode == 0, previous.stderr
        stamp, text = previous.stdout.splitlines()[0].split(" ", 1)
        assert text == f"run {crashed_run}" and re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z", stamp)
        assert previous.stderr.split(" ", 1)[1] == "to-stderr\n"  # the stream kept, with its own time

        # the log past its rotation: bounded files, each at most max_size, nothing lost in them
        wait_for(lambda: "line-3000-" in _logs(runtime, "--tail", "1", chatty).stdout, message="all of chatty's lines")
        files = logfiles.run_files(logfiles.log_dir(runtime.data_root, chatty), logfiles.runs(
            logfiles.log_dir(runtime.data_root, chatty))[-1])
        assert len(files) == 3 and all(os.path.getsize(f) <= 4096 for f in files)
        kept = [int(line.split("-")[1]) for line in _logs(runtime, chatty).stdout.splitlines()]
        assert kept == list(range(kept[0], 3001)) and kept[0] > 1  # a consecutive tail; the rest rotated away

        # the supervisor restarted: the containers keep running, not restarted
        pids = {n: _pid(runtime, n) for n in (crash, chatty, web)}
        sup.proc.send_signal(signal.SIGTERM)
        assert sup.proc.wait(30) == 0
        again = start()
        t1 = time.monotonic()
        wait_for(lambda: notify.seen("READY", "1", after=t1), timeout=30, message="READY=1 after the restart")
        assert {n: _pid(runtime, n) for n in pids} == pids
        again.proc.send_signal(signal.SIGTERM)
        assert again.proc.wait(30) == 0

        # a reboot: every process of the root gone (containers, then their monitor), the tmpfs state root empty
        monitor = _ppid(pids[crash])
        before_reboot = _run_token(runtime, crash)
        assert not cleanup_state_root(runtime.root)
        os.kill(monitor, signal.SIGKILL)
        shutil.rmtree(runtime.root)
        booted = start()
        t2 = time.monotonic()
        wait_for(lambda: notify.seen("READY", "1", after=t2), timeout=30, message="READY=1 after the reboot")
        assert all(_pid(runtime, n) for n in pids)
        assert runtime.load(crash).state().created <= runtime.load(web).state().created  # depends_on honoured
        assert _run_token(runtime, crash, "--previous") == before_reboot  # the name's logs outlived the boot
        booted.proc.send_signal(signal.SIGTERM)
        assert booted.proc.wait(30) == 0
    finally:
        sup.stop()


def test_service_install_status_uninstall_without_systemd(tmp_path, state_root):
    env = dict(os.environ, PYTHONPATH=REPO)
    units, specs = tmp_path / "units", tmp_path / "specs"

    def dct(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "declarative_ct.cli.main", *args], capture_output=True,
                              text=True, env=env, timeout=30)

    done = dct("--root", state_root, "service", "install", "--specs", str(specs), "--unit-dir", str(units))
    assert done.returncode == 0, done.stderr
    assert f"wrote {units / 'dct.service'}" in done.stdout
    assert "systemd is not running here" in done.stdout
    assert f"--root {state_root} watch {specs}" in done.stdout  # the foreground command to use
    assert oct((units / "dct.service").stat().st_mode & 0o777) == "0o644"
    assert not list(units.glob(".*"))  # written atomically: no temp file left
    refused = dct("--root", state_root, "service", "install", "--specs", str(specs), "--unit-dir", str(units), "--now")
    assert refused.returncode == 1 and "--now: nothing was started (no systemd)" in refused.stderr  # not a silent 0
    a_file = tmp_path / "one.yaml"
    a_file.write_text("name: x\n")
    refused = dct("--root", state_root, "service", "install", "--specs", str(a_file), "--unit-dir", str(units))
    assert refused.returncode == 1 and f"--specs {a_file}: not a directory" in refused.stderr

    status = dct("service", "status", "--unit-dir", str(units), "--json")  # no --root: the unit's
    data = json.loads(status.stdout)
    assert data["unit"]["installed"] and data["unit"]["enabled"] == "disabled" and data["systemd"] is False
    assert data["unit"]["exec_start"][1:] == ["--root", state_root, "watch", str(specs)]
    assert data["root"] == state_root and data["supervisor"] is None
    text = dct("service", "status", "--unit-dir", str(units)).stdout
    assert "installed, disabled" in text and f"supervisor: none has run on {state_root}" in text

    # a supervisor running on the root (in the foreground): status shows it, from the lock and its record
    proc = subprocess.Popen([sys.executable, "-m", "declarative_ct.cli.main", "--root", state_root, "watch",
                             str(specs)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        wait_for(lambda: os.path.exists(os.path.join(state_root, "#supervisor.json")) and json.loads(
            dct("service", "status", "--unit-dir", str(units), "--json").stdout)["supervisor"]["last_pass"],
            timeout=20, message="the supervisor's first pass")
        data = json.loads(dct("service", "status", "--unit-dir", str(units), "--json").stdout)["supervisor"]
        assert data["running"] and data["pid"] == proc.pid and data["paths"] == [str(specs)]
        assert data["started"] and data["stopped"] is None
        text = dct("service", "status", "--unit-dir", str(units)).stdout
        assert f"supervisor: running on {state_root}, pid {proc.pid}" in text
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(10)
    data = json.loads(dct("service", "status", "--unit-dir", str(units), "--json").stdout)["supervisor"]
    assert not data["running"] and data["stopped"] and data["pid"] == proc.pid

    done = dct("service", "uninstall", "--unit-dir", str(units))
    assert done.returncode == 0 and "removed" in done.stdout
    assert not (units / "dct.service").exists() and specs.is_dir()  # the specs stay
    assert "not installed" in dct("service", "uninstall", "--unit-dir", str(units)).stdout


def test_a_stop_during_an_apply_finishes_the_action_under_way_and_starts_no_other(runtime, busybox_rootfs,
                                                                                  tmp_path):
    """What the supervisor does on SIGTERM mid-apply: the action running goes to its end (its
    container runs), the others are skipped (not started), nothing is torn down."""
    from types import SimpleNamespace

    from declarative_ct.reconcile import apply as applying
    from declarative_ct.reconcile.plan import make_plan, observe
    from declarative_ct.spec.model import ContainerSpec

    names = [unique_id("st") for _ in range(3)]
    docs = [SimpleNamespace(spec=ContainerSpec.model_validate(
        {"name": n, "rootfs": busybox_rootfs, "process": {"args": SLEEP}}), source=str(tmp_path / "s.yaml"))
        for n in names]
    plan = make_plan(docs, observe(runtime), scope=[str(tmp_path / "s.yaml")])
    stopping = threading.Event()
    seen = []

    def on_outcome(outcome) -> None:
        seen.append(outcome)
        stopping.set()  # SIGTERM arrives while the first action ends

    with applying.locked(runtime.root):
        outcomes = applying.apply(plan, docs, runtime, parallel=1, on_outcome=on_outcome, stopping=stopping.is_set)
    assert [o.result for o in outcomes] == ["ok", "skipped", "skipped"]
    assert all(o.error == "not started: stopping" for o in outcomes[1:])
    done = outcomes[0].action.container
    assert _pid(runtime, done)
    assert not [n for n in names if n != done and os.path.exists(os.path.join(runtime.root, n))]
