"""The supervisor service's parts without containers: the shipped unit (its semantics, as parsed by
configparser, by our reader and by systemd-analyze), the ExecStart quoting, systemd's
notifications (a socket this test binds), the one-supervisor lock, and the watch loop's hooks
(the watchdog pings come from the loop itself)."""

from __future__ import annotations

import configparser
import json
import os
import shutil
import socket
import subprocess
import threading
import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from declarative_ct.cli.parser import parse
from declarative_ct.reconcile import watch as watching
from declarative_ct.service import notify, supervisor, unit
from declarative_ct.service.hooks import SupervisorHooks

DCT = ["/opt/dct/bin/dct"]


def _service(text: str) -> dict[str, list[str]]:
    return unit.parse(text)["Service"]


# -- the unit ---------------------------------------------------------------------------------------

def test_the_shipped_unit_says_what_the_service_needs():
    text = unit.template()
    # configparser (not strict: systemd allows repeated keys) reads the same values as our reader
    cp = configparser.ConfigParser(strict=False, interpolation=None)
    cp.optionxform = str  # keys are case-sensitive
    cp.read_string(text)
    ours = unit.parse(text)
    for section in ("Unit", "Service", "Install"):
        assert {k: v[-1] for k, v in ours[section].items()} == dict(cp[section])
    service = {k: v[-1] for k, v in ours["Service"].items()}
    assert service["Type"] == "notify" and service["NotifyAccess"] == "main"
    assert service["KillMode"] == "process"  # a stop must not kill the monitor (nor the containers)
    assert service["Delegate"] == "yes"
    assert service["Restart"] == "on-failure"
    assert service["ExecReload"] == "/bin/kill -HUP $MAINPID"
    assert unit.split_command(service["ExecStart"])[-2:] == ["watch", unit.DEFAULT_SPECS]
    # a stop waits for the action under way: a stop_timeout (10 s by default) + 10 s + 1 s (steps._stop)
    assert _seconds(service["TimeoutStopSec"]) >= 10 + 10 + 1
    assert _seconds(service["WatchdogSec"]) >= 2 * (10 + 10 + 1)  # one action between two pings
    assert not any(k.startswith("RuntimeDirectory") for k in service)  # it would delete /run/dct on stop
    assert "network-online.target" in ours["Unit"]["After"]
    assert ours["Install"]["WantedBy"] == ["multi-user.target"]


def _seconds(value: str) -> float:
    units = {"min": 60, "s": 1, "ms": 0.001, "h": 3600}
    for suffix, factor in units.items():
        if value.endswith(suffix) and value[: -len(suffix)].isdigit():
            return int(value[: -len(suffix)]) * factor
    return float(value)


def test_render_fills_in_execstart_only():
    text = unit.render("/etc/dct/specs", root="/run/other", data_root="/var/lib/other", dct=DCT)
    base = unit.template().splitlines()
    lines = text.splitlines()
    changed = [(a, b) for a, b in zip(base, lines) if a != b]
    assert len(base) == len(lines) and len(changed) == 1
    assert changed[0][1] == "ExecStart=/opt/dct/bin/dct --root /run/other --data-root /var/lib/other watch /etc/dct/specs"
    default = [line for line in unit.render("/etc/dct/specs", dct=DCT).splitlines() if line.startswith("ExecStart=")]
    assert default == ["ExecStart=/opt/dct/bin/dct watch /etc/dct/specs"]  # the default roots: not written


@pytest.mark.parametrize("arg, written", [
    ("/etc/dct/specs", "/etc/dct/specs"),
    ("/srv/my specs", '"/srv/my specs"'),
    ("/srv/100%", "/srv/100%%"),  # %: a specifier
    ("/srv/$HOME", "/srv/$$HOME"),  # $: a variable
    ('/srv/a"b', '"/srv/a\\"b"'),
])
def test_quote(arg, written):
    assert unit.quote(arg) == written
    assert unit.split_command(unit.quote(arg)) == [arg]


@given(st.lists(st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="\n\r"),
                        min_size=1), min_size=1, max_size=5))
def test_split_command_reads_back_what_quote_writes(argv):
    argv = ["/usr/bin/dct", *argv]
    assert unit.split_command(" ".join(unit.quote(a) for a in argv)) == argv
    assert unit.split_command("-" + " ".join(unit.quote(a) for a in argv)) == argv  # a prefix is not the path


def test_systemd_analyze_verifies_the_rendered_unit(tmp_path):
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is missing (apt package systemd; scripts/setup installs it)")
    dct = tmp_path / "dct"
    dct.write_text("#!/bin/sh\n")
    dct.chmod(0o755)
    path = tmp_path / unit.UNIT_NAME
    path.write_text(unit.render("/etc/dct/specs", root="/run/dct-test", dct=[str(dct)]))
    env = dict(os.environ, SYSTEMD_LOG_LEVEL="debug")
    done = subprocess.run([analyze, "verify", "--man=no", str(path)], capture_output=True, text=True, env=env,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    warnings = [line for line in done.stderr.splitlines() if str(path) in line and ":" in line
                and ("Unknown" in line or "ignoring" in line or "Failed" in line)]
    assert not warnings
    # systemd's own reading of the unit (the dump its verify prints at debug level)
    dump = dict(line.strip().split(": ", 1) for line in done.stdout.splitlines()
                if line.startswith("\t\t") and ": " in line.strip())
    if "KillMode" not in dump:
        pytest.skip("this systemd-analyze logs no unit dump at debug level: only the verify itself was checked")
    assert dump["Type"] == "notify" and dump["KillMode"] == "process" and dump["Delegate"] == "yes"
    assert dump["Restart"] == "on-failure" and dump["NotifyAccess"] == "main" and dump["WatchdogSec"] == "2min"
    # a unit with a mistake is not verified clean (the check can fail)
    path.write_text(path.read_text().replace("KillMode=process", "KillMode=proces"))
    bad = subprocess.run([analyze, "verify", "--man=no", str(path)], capture_output=True, text=True, timeout=60)
    assert "kill mode" in bad.stderr.lower()


# -- notifications -----------------------------------------------------------------------------------

@pytest.fixture
def listener(tmp_path, monkeypatch):
    """A bound NOTIFY_SOCKET (in $NOTIFY_SOCKET) and ``recv()`` of its next message as a dict."""
    path = str(tmp_path / "n")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(2)
    monkeypatch.setenv("NOTIFY_SOCKET", path)

    def recv() -> dict[str, str]:
        return dict(line.split("=", 1) for line in sock.recv(65536).decode().split("\n"))

    yield recv
    sock.close()


def test_notifier_messages(listener, monkeypatch):
    monkeypatch.setenv("WATCHDOG_USEC", "2000000")
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid()))
    clock = [100.0]
    n = notify.Notifier(clock=lambda: clock[0])
    assert n.enabled and n.watchdog_interval == 1.0
    for name in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"):  # children must not inherit them
        assert name not in os.environ
    n.ready("watching 2 containers in /etc/dct/spécs")
    assert listener() == {"READY": "1", "STATUS": "watching 2 containers in /etc/dct/spécs"}
    n.reloading()
    msg = listener()
    assert msg["RELOADING"] == "1" and 0 < int(msg["MONOTONIC_USEC"]) <= time.clock_gettime_ns(
        time.CLOCK_MONOTONIC) // 1000
    n.watchdog()
    assert listener() == {"WATCHDOG": "1"}
    n.watchdog()  # within the interval: nothing
    clock[0] += 1.0
    n.watchdog()
    n.stopping()
    assert listener() == {"WATCHDOG": "1"}  # the second ping, then STOPPING: nothing in between
    assert listener()["STOPPING"] == "1"


def test_notifier_without_a_socket_or_for_another_pid(monkeypatch, listener):
    monkeypatch.setenv("WATCHDOG_USEC", "1000000")
    monkeypatch.setenv("WATCHDOG_PID", "1")  # the watchdog is another process's
    n = notify.Notifier()
    assert n.enabled and n.watchdog_interval is None
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    quiet = notify.Notifier()
    assert not quiet.enabled and quiet.watchdog_interval is None
    quiet.ready("x")
    quiet.watchdog()
    quiet.stopping()  # no socket: nothing, no error


# -- one supervisor per root ---------------------------------------------------------------------------

def test_one_supervisor_per_root(tmp_path):
    root = str(tmp_path / "root")
    assert supervisor.read(root) is None
    first = supervisor.Supervisor.acquire(root, ["/etc/dct/specs"], "/var/lib/dct")
    try:
        info = supervisor.read(root)
        assert info.running and info.pid == os.getpid() and info.paths == ["/etc/dct/specs"] and info.last_pass is None
        first.passed(3)
        assert supervisor.read(root).last_pass and supervisor.read(root).containers == 3
        with pytest.raises(supervisor.SupervisorRunning) as err:  # another open of the lock: flock conflicts
            supervisor.Supervisor.acquire(root, ["/other"])
        assert f"pid {os.getpid()} watching /etc/dct/specs" in str(err.value) and root in str(err.value)
        with open(os.path.join(root, supervisor.INFO_FILE)) as f:
            assert json.load(f)["paths"] == ["/etc/dct/specs"]  # the refused one wrote nothing
    finally:
        first.release()
    info = supervisor.read(root)
    assert not info.running and info.stopped and info.passes == 1
    second = supervisor.Supervisor.acquire(root, ["/other"])  # free again
    second.release()
    assert not any(name.startswith(".") for name in os.listdir(root))  # atomic writes left no temp file


def test_a_killed_supervisor_frees_the_root(tmp_path):
    root = str(tmp_path / "root")
    code = ("import sys, time; from declarative_ct.service.supervisor import Supervisor; "
            "Supervisor.acquire(sys.argv[1], ['/s']); print('held', flush=True); time.sleep(60)")
    proc = subprocess.Popen([os.sys.executable, "-c", code, root], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline() == "held\n"
        assert supervisor.read(root).running and supervisor.read(root).pid == proc.pid
        proc.kill()
        proc.wait(10)
        info = supervisor.read(root)
        assert not info.running and info.stopped is None  # no clean stop recorded
        supervisor.Supervisor.acquire(root, ["/s"]).release()
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(10)


# -- the loop's hooks ----------------------------------------------------------------------------------

class _Hooks(watching.WatchHooks):
    def __init__(self) -> None:
        self.calls: list[tuple[float, str, str]] = []
        self.reloads = 0

    def reload_requests(self) -> int:
        return self.reloads

    def ready(self, containers, paths):
        self.calls.append((time.monotonic(), "ready", threading.current_thread().name))

    def reloading(self):
        self.calls.append((time.monotonic(), "reloading", threading.current_thread().name))

    def passed(self, containers):
        self.calls.append((time.monotonic(), "passed", threading.current_thread().name))

    def alive(self):
        self.calls.append((time.monotonic(), "alive", threading.current_thread().name))


def test_the_watchdog_pings_come_from_the_loop(tmp_path, monkeypatch):
    """A pass that hangs stops the pings (they are not a side thread's); READY after the first pass;
    a reload request: reloading, then ready again."""
    specs = tmp_path / "specs"
    specs.mkdir()
    hang = threading.Event()
    original = watching._Watcher.reconcile

    def reconcile(self):
        if hang.is_set():
            time.sleep(1.0)
            hang.clear()
        return original(self)

    monkeypatch.setattr(watching._Watcher, "reconcile", reconcile)
    hooks, stop, result = _Hooks(), threading.Event(), []
    loop = threading.Thread(target=lambda: result.append(watching.watch(
        [str(specs)], str(tmp_path / "root"), watching.WatchOptions(resync=0.05), stop, out=lambda _l: None,
        err=lambda _l: None, hooks=hooks, data_root=str(tmp_path / "data"))), name="the-loop")
    loop.start()
    try:
        wait = time.monotonic() + 10
        while not any(c[1] == "ready" for c in hooks.calls) and time.monotonic() < wait:
            time.sleep(0.01)
        assert [c[1] for c in hooks.calls if c[1] != "alive"][:2] == ["passed", "ready"]
        hang.set()
        time.sleep(1.3)
        hung = [c for c in hooks.calls if c[1] == "passed"]
        gaps = [b[0] - a[0] for a, b in zip(hooks.calls, hooks.calls[1:]) if b[1] == "alive" or a[1] == "alive"]
        assert max(gaps) >= 0.9, "pings went on while the pass hung"
        assert {c[2] for c in hooks.calls} == {"the-loop"}
        hooks.reloads += 1
        time.sleep(0.5)
        after = [c[1] for c in hooks.calls if c[1] in ("reloading", "ready")]
        assert after == ["ready", "reloading", "ready"] and hung
    finally:
        stop.set()
        loop.join(10)
    assert result == [0]


def test_supervisor_hooks_status_follows_the_count(tmp_path, listener):
    sup = supervisor.Supervisor.acquire(str(tmp_path / "root"), ["/specs"])
    try:
        hooks = SupervisorHooks(notify.Notifier(), sup)
        hooks.passed(1)  # before READY: no STATUS of its own
        hooks.ready(1, ["/specs"])
        assert listener() == {"READY": "1", "STATUS": "watching 1 container in /specs"}
        hooks.passed(1)  # unchanged: nothing sent
        hooks.passed(2)
        assert listener() == {"STATUS": "watching 2 containers in /specs"}
        hooks.stopping()
        hooks.stopping()  # once
        assert listener()["STOPPING"] == "1"
        assert supervisor.read(str(tmp_path / "root")).passes == 3
    finally:
        sup.release()


# -- the CLI's flags -------------------------------------------------------------------------------------

def test_data_root_flag_before_or_after_the_verb():
    assert parse(["--data-root", "/d", "status"]).data_root == "/d"
    assert parse(["status", "--data-root", "/d"]).data_root == "/d"
    assert parse(["status"]).data_root is None
    args = parse(["--root", "/r", "service", "install", "--specs", "/s", "--unit-dir", "/u", "--now"])
    assert (args.verb, args.action, args.specs, args.unit_dir, args.now, args.root) == (
        "service", "install", "/s", "/u", True, "/r")


def test_a_stop_seen_between_actions_is_said_once_and_the_end_too(tmp_path):
    """SIGTERM during an apply waits for the actions under way: the supervisor says so (once,
    whichever apply thread asks first), and says when it has stopped."""
    lines: list[str] = []
    stop = threading.Event()
    w = watching._Watcher([str(tmp_path)], str(tmp_path / "root"), watching.WatchOptions(), stop, lines.append,
                          lines.append, time.monotonic, time.time, watching.WatchHooks(), str(tmp_path / "data"))
    assert w._stopping() is False and lines == []
    stop.set()
    assert w._stopping() and w._stopping()
    assert lines == ["stopping: the actions under way finish, no other starts; the containers stay as they are"]
    assert watching.watch([str(tmp_path)], str(tmp_path / "root"), watching.WatchOptions(), stop,
                          out=lines.append, err=lines.append, data_root=str(tmp_path / "data")) == 0
    assert lines[-1] == "stopped: the containers are left as they are"
