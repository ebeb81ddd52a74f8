"""The TUI over real containers: the real backend (readings, processes, actions, logs, journal,
drift, plan → apply) and one end-to-end run of ``dct tui`` in a real terminal (tmux)."""

from __future__ import annotations

import contextlib
import json
import os
import select
import shutil
import signal
import subprocess
import time
import uuid

import pytest

from conftest import unique_id, wait_for
from declarative_ct.errors import ContainerError
from declarative_ct.reconcile.apply import JOURNAL_FILE
from declarative_ct.runtime import Process, console
from dct_cli import DCT, REPO
from tui.backend import LogCursor, PlanChanged
from tui.backend.real import RealBackend

pytestmark = pytest.mark.integration
LOOP = ["/bin/sh", "-c", "trap 'exit 0' TERM; echo hello; echo oops >&2; while :; do sleep 0.2; done"]


def start(runtime, busybox_config, prefix: str = "tui", args=LOOP):
    c = runtime.create(unique_id(prefix), busybox_config())
    c.run(Process(list(args)))
    return c


def by_id(backend: RealBackend, **kw) -> dict:
    return {r.id: r for r in backend.sample(**kw)}


def test_real_backend_reads_acts_and_forgets_what_vanished(runtime, busybox_config):
    a, b = start(runtime, busybox_config), start(runtime, busybox_config)
    backend = RealBackend(runtime.root)
    try:
        first = by_id(backend)
        r = first[a.id]
        assert r.status == "running" and r.pid == a.state().init_process_pid
        assert r.cpu_ns is not None and r.mem_usage and r.pids >= 1 and r.started is not None
        assert r.net_rx is None  # no interface counted yet: the table shows "-"
        # On screen: read every tick; off screen: the same object until its turn comes.
        second = by_id(backend, hot={a.id}, tick=1)
        assert second[a.id] is not first[a.id]
        cold = [first[b.id]] + [by_id(backend, hot={a.id}, tick=t)[b.id] for t in range(1, 6)]
        assert sum(cold[i + 1] is not cold[i] for i in range(5)) == 1  # read once in 5 ticks

        procs = wait_for(lambda: (p := backend.processes(a.id)) and len(p) >= 2 and p, 5)
        init = next(p for p in procs if p.pid == r.pid)
        assert init.cmdline.startswith("/bin/sh -c") and init.user == "root"
        child = next(p for p in procs if p.ppid == r.pid)
        with pytest.raises(ContainerError, match="another process"):
            backend.signal(a.id, signal.SIGKILL, child.pid, child.create_time + 100)
        backend.signal(a.id, signal.SIGKILL, child.pid, child.create_time)
        wait_for(lambda: child.pid not in [p.pid for p in backend.processes(a.id) or []], 5)
        assert by_id(backend)[a.id].status == "running"  # only that process went
        with pytest.raises(ContainerError, match="no longer in container"):
            backend.signal(b.id, signal.SIGTERM, child.pid)

        backend.pause(b.id)
        assert by_id(backend)[b.id].status == "paused"
        with pytest.raises(ContainerError):
            backend.pause(b.id)
        backend.resume(b.id)
        assert by_id(backend)[b.id].status == "running"

        cursor = LogCursor()  # the name's CRI logs, as the monitor copies them
        seen = []
        wait_for(lambda: seen.extend(backend.read_logs(a.id, cursor)) or len(seen) >= 2, 5)
        # the shell's own "Killed" line (the child killed above) may follow them
        assert {(e.stream, e.text) for e in seen[:2]} == {("stdout", b"hello"), ("stderr", b"oops")}
        wait_for(lambda: seen.extend(backend.read_logs(a.id, cursor)) or len(seen) >= 3, 5)
        assert (seen[2].stream, seen[2].text) == ("stderr", b"Killed")
        assert cursor.run is not None and backend.read_logs(a.id, cursor) == []  # nothing new
        cursor.close()

        kept = backend._kept[a.id]
        logs = os.path.dirname(a.log_path)
        assert os.path.isdir(logs)
        backend.destroy(a.id)
        assert a.id not in by_id(backend) and backend.processes(a.id) is None
        assert not os.path.exists(logs)  # not made by apply: its logs go with it, as with dct delete
        assert backend._read(kept) is None  # vanished mid-read: no reading, no error
    finally:
        backend.close()


def test_real_backend_journal_tail_is_incremental(runtime):
    os.makedirs(runtime.root, exist_ok=True)
    path = os.path.join(runtime.root, JOURNAL_FILE)
    with open(path, "w") as f:
        f.write(json.dumps({"container": "x", "class": "create", "result": "ok"}) + "\n")
    backend = RealBackend(runtime.root)
    assert [e["container"] for e in backend.journal()] == ["x"]
    with open(path, "a") as f:
        f.write(json.dumps({"container": "y", "class": "live", "result": "failed"}) + "\n{\"container\": \"z\"")
    assert [e["container"] for e in backend.journal()] == ["y"]  # the line being written waits
    with open(path, "a") as f:
        f.write(", \"result\": \"ok\"}\n")
    assert [e["container"] for e in backend.journal()] == ["z"]
    assert backend.journal() == []


def test_real_backend_drift_plan_and_apply(runtime, busybox_rootfs, tmp_path):
    name = unique_id("tuispec")
    spec = tmp_path / "specs.yaml"

    def write(memory: str) -> None:
        spec.write_text(f"name: {name}\nrootfs: {busybox_rootfs}\nprocess:\n"
                        f"  args: {json.dumps(LOOP)}\nresources: {{memory: {memory}}}\nstop_timeout: 1\n")

    write("32Mi")
    backend = RealBackend(runtime.root, [str(spec)])
    try:
        assert backend.desired().entries[name].drift == "missing"
        plan = backend.plan()
        assert [(a["container"], a["class"]) for a in plan.actions] == [(name, "create")]
        seen = []
        outcomes = backend.apply(plan, seen.append)
        assert [(o.kind, o.result) for o in outcomes] == [("create", "ok")] and seen == outcomes
        entry = backend.desired().entries[name]
        assert entry.drift == "in-sync" and entry.restarts == 0
        assert backend.spec_text(name)[1].startswith(f"name: {name}")

        write("48Mi")
        time.sleep(0.01)
        entry = backend.desired().entries[name]
        assert entry.drift == "drifted" and entry.live_changes == {"memory": 48 << 20}
        stale = backend.plan()
        assert stale.actions[0]["class"] == "live"
        write("40Mi")
        with pytest.raises(PlanChanged):
            backend.apply(stale)  # the specs moved since the plan shown: nothing done
        assert backend.desired().entries[name].observed_resources["memory"] == 32 << 20

        spec.write_text("name: [broken\n")
        view = backend.desired()
        assert view.errors and "specs.yaml" in view.errors[0]
        assert view.entries[name].drift == "drifted"  # the last good specs stay in force
        assert backend.plan().errors
    finally:
        backend.close()


# -- end to end, in a real terminal ---------------------------------------------------------

class Tmux:
    """A private tmux server (``-L``): never the user's; killed at teardown."""

    def __init__(self) -> None:
        self.socket = f"dct-test-{uuid.uuid4().hex[:8]}"

    def __call__(self, *args: str) -> str:
        return subprocess.run(["tmux", "-L", self.socket, *args], capture_output=True, text=True,
                              timeout=10).stdout

    def screen(self) -> str:
        return self("capture-pane", "-p", "-t", "tui")

    def kill(self) -> None:
        path = self("display-message", "-p", "#{socket_path}").strip()
        subprocess.run(["tmux", "-L", self.socket, "kill-server"], capture_output=True, timeout=10)
        if path.endswith(self.socket):
            with contextlib.suppress(OSError):
                os.unlink(path)  # tmux leaves the socket file behind


@pytest.fixture
def tmux():
    if shutil.which("tmux") is None:
        pytest.skip("tmux is not installed (apt-get install tmux)")
    t = Tmux()
    yield t
    t.kill()


def launch_tui(tmux, root: str, exit_file, seen: list[str]):
    """Start ``dct tui`` on ``root`` in a 120x30 tmux session ``tui`` (its exit code goes to
    ``exit_file``); returns ``screen_has(*texts)``: the screen when it shows every text, else
    False, each screen read appended to ``seen``."""
    command = " ".join([*DCT, "--root", root, "tui"])
    env = f"TERM=xterm-256color TEXTUAL_ANIMATIONS=none PYTHONPATH={REPO}"
    tmux("new-session", "-d", "-s", "tui", "-x", "120", "-y", "30", "-c", REPO,
         f"env {env} {command}; echo EXIT=$? > {exit_file}; sleep 60")

    def screen_has(*texts: str):
        s = tmux.screen()
        seen.append(s)
        return all(t in s for t in texts) and s

    return screen_has


def test_real_backend_apply_waits_for_no_condition(runtime, busybox_rootfs, tmp_path):
    """The TUI's apply holds the apply lock as long as it runs: a dependent whose dependency is not
    healthy yet is skipped at once ("waiting for …", as dct watch does), not waited for up to a minute."""
    import threading

    db, web = unique_id("tuidb"), unique_id("tuiweb")
    spec = tmp_path / "specs.yaml"
    common = f"rootfs: {busybox_rootfs}\nprocess:\n  args: {json.dumps(LOOP)}\nstop_timeout: 1\n"
    spec.write_text(f"name: {db}\n{common}health: {{exec: [\"false\"], interval: 500ms, start_period: 1h}}\n---\n"
                    f"name: {web}\n{common}depends_on: {{{db}: healthy}}\n")
    backend = RealBackend(runtime.root, [str(spec)])
    try:
        began = time.monotonic()
        outcomes = {o.container: o for o in backend.apply(backend.plan())}
        assert time.monotonic() - began < 15
        assert outcomes[db].result == "ok"
        assert (outcomes[web].result, outcomes[web].error) == ("skipped", f"waiting for {db} to be healthy (starting)")
        assert not [t for t in threading.enumerate() if t.name.startswith("dct-prob")]  # no prober in the TUI
    finally:
        backend.close()


def test_dct_tui_in_a_real_terminal_pauses_with_the_key_and_quits_cleanly(runtime, busybox_config, tmux, tmp_path):
    first = start(runtime, busybox_config, "tuia")
    second = start(runtime, busybox_config, "tuib")
    exit_file = tmp_path / "exit.txt"
    seen: list[str] = []
    screen_has = launch_tui(tmux, runtime.root, exit_file, seen)

    def row(s: str, cid: str) -> str:
        return next((line for line in s.splitlines() if f" {cid} " in line), "")

    s = wait_for(lambda: screen_has(first.id, second.id, "2 running"), 30, 0.1, "both rows")
    assert "running" in row(s, first.id) and "running" in row(s, second.id)
    assert "? Help" in s and "Pause" in s  # the footer shows the keys
    tmux("send-keys", "-t", "tui", "p")  # the cursor starts on the first row (sorted by name: tuia-…)
    s = wait_for(lambda: (s := screen_has("1 paused")) and "paused" in row(s, first.id) and s, 15, 0.1,
                 f"{first.id} paused")
    assert "running" in row(s, second.id)
    assert str(first.status()) == "paused"
    tmux("send-keys", "-t", "tui", "q")
    wait_for(lambda: exit_file.exists() and exit_file.read_text().strip(), 15, 0.1, "the TUI to exit")
    assert exit_file.read_text().strip() == "EXIT=0"
    final = tmux.screen()
    assert not any("Traceback" in x for x in seen + [final])
    assert first.id not in final  # the alternate screen is gone: the shell's screen is back


def test_real_backend_shell_runs_on_the_callers_terminal(runtime, busybox_config):
    """RealBackend.shell in a process whose terminal is a pty made here: a shell in the container
    with a terminal of the caller's size, its exit code returned."""
    c = start(runtime, busybox_config, "tuish")
    master, slave = os.openpty()
    console.set_size(master, 27, 91)
    code = (f"import sys; sys.path[:0] = [{REPO!r}]; from tui.backend.real import RealBackend; "
            f"sys.exit(RealBackend({runtime.root!r}).shell({c.id!r}))")
    proc = subprocess.Popen([*DCT[:1], "-c", code], stdin=slave, stdout=slave, stderr=slave, start_new_session=True)
    os.close(slave)
    out = b""
    try:
        os.write(master, b"stty size; hostname; exit 6\n")
        deadline = time.monotonic() + 15
        while proc.poll() is None and time.monotonic() < deadline:
            with contextlib.suppress(OSError):
                if select.select([master], [], [], 0.1)[0]:
                    out += os.read(master, 4096)
        assert proc.wait(5) == 6, out
        assert b"27 91" in out and b"box" in out
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)


def test_dct_tui_shell_key_in_a_real_terminal(runtime, busybox_config, tmux, tmp_path):
    """``x``: the TUI hands the terminal to a shell in the container and takes it back on exit."""
    c = start(runtime, busybox_config, "tuix")
    exit_file = tmp_path / "exit.txt"
    seen: list[str] = []
    screen_has = launch_tui(tmux, runtime.root, exit_file, seen)

    wait_for(lambda: screen_has(c.id, "1 running"), 30, 0.1, "the row")
    tmux("send-keys", "-t", "tui", "x")
    wait_for(lambda: screen_has("/ #"), 15, 0.1, "the container's shell prompt")
    tmux("send-keys", "-t", "tui", "echo IN-$(hostname); stty size", "Enter")
    wait_for(lambda: screen_has("IN-box", "30 120"), 15, 0.1, "the shell's output")
    tmux("send-keys", "-t", "tui", "exit 4", "Enter")
    wait_for(lambda: screen_has(c.id, "1 running"), 15, 0.1, "the TUI back")
    tmux("send-keys", "-t", "tui", "q")
    wait_for(lambda: exit_file.exists() and exit_file.read_text().strip(), 15, 0.1, "the TUI to exit")
    assert exit_file.read_text().strip() == "EXIT=0"
    assert not any("Traceback" in x for x in seen)
