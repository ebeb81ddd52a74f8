"""Pure logic of the runtime: Status, the transition table, /proc/<pid>/stat parsing, ids, atomic JSON."""

from __future__ import annotations

import io
import json
import os
import stat
import threading

import pytest

from declarative_ct.errors import (ContainerError, ContainerNotPaused, ContainerNotRunning, ContainerPaused,
                                   ContainerRunning, InvalidID, InvalidStateTransition)
from declarative_ct.runtime import procfs, store
from declarative_ct.runtime.state import (OPERATIONS, State, Status, allowed_ops, check_transition, derive_status,
                                          require)

S = Status

# -- Status ----------------------------------------------------------------------------------


@pytest.mark.parametrize("status, word", [(S.CREATED, "created"), (S.RUNNING, "running"), (S.PAUSING, "pausing"),
                                          (S.PAUSED, "paused"), (S.STOPPED, "stopped")])
def test_status_str_is_the_runc_word(status, word):
    assert str(status) == word
    assert f"{status}" == word
    assert Status(word) is status


def test_status_has_libcontainers_five_members_and_unknown():
    # unknown is ours: a container whose state.json cannot be read (list, plan); status() never derives it
    assert {s.value for s in Status} == {"created", "running", "pausing", "paused", "stopped", "unknown"}


# -- transition table (runc's libcontainer/state_linux.go, pausing = v1 FREEZING) --------------

LEGAL = {
    (S.STOPPED, S.RUNNING),
    (S.CREATED, S.RUNNING), (S.CREATED, S.PAUSING), (S.CREATED, S.PAUSED), (S.CREATED, S.STOPPED),
    (S.RUNNING, S.PAUSING), (S.RUNNING, S.PAUSED), (S.RUNNING, S.STOPPED),
    (S.PAUSING, S.PAUSED), (S.PAUSING, S.RUNNING), (S.PAUSING, S.STOPPED),
    (S.PAUSED, S.RUNNING), (S.PAUSED, S.STOPPED),
} | {(s, s) for s in Status}  # X -> X is a no-op, always allowed

ALL_PAIRS = [(a, b) for a in Status for b in Status]


@pytest.mark.parametrize("current, target", [p for p in ALL_PAIRS if p in LEGAL], ids=lambda s: str(s))
def test_legal_transition_does_not_raise(current, target):
    assert check_transition(current, target) is None


@pytest.mark.parametrize("current, target", [p for p in ALL_PAIRS if p not in LEGAL], ids=lambda s: str(s))
def test_illegal_transition_raises(current, target):
    with pytest.raises(InvalidStateTransition) as info:
        check_transition(current, target, "some detail")
    err = info.value
    assert isinstance(err, ContainerError)
    assert err.from_status is current and err.to_status is target
    assert str(err) == f"invalid state transition from {current} to {target}: some detail"


def test_illegal_transitions_are_exactly_these():
    illegal = {p for p in ALL_PAIRS if p not in LEGAL}
    assert illegal == {(S.STOPPED, S.CREATED), (S.STOPPED, S.PAUSING), (S.STOPPED, S.PAUSED),
                       (S.RUNNING, S.CREATED), (S.PAUSING, S.CREATED), (S.PAUSED, S.CREATED),
                       (S.PAUSED, S.PAUSING)} | {
        # nothing moves to or from unknown (an unreadable state.json): only delete --force ends it
        (a, b) for a in Status for b in Status if S.UNKNOWN in (a, b) and a != b}


# -- status derivation (runc's refreshState: freezer, then init, then the exec fifo) ---------------

@pytest.mark.parametrize("saved, freezer, alive, fifo, status", [
    (False, "THAWED", False, False, S.STOPPED), (False, "FROZEN", True, True, S.STOPPED),  # no state: gone
    (True, "FROZEN", True, False, S.PAUSED), (True, "FROZEN", False, False, S.PAUSED),  # frozen wins
    (True, "FREEZING", True, False, S.PAUSING), (True, "FREEZING", True, True, S.PAUSING),
    (True, "THAWED", False, False, S.STOPPED), (True, "THAWED", False, True, S.STOPPED),  # died in set-up
    (True, "THAWED", True, True, S.CREATED), (True, "THAWED", True, False, S.RUNNING),
])
def test_derive_status_table(saved, freezer, alive, fifo, status):
    assert derive_status(saved, freezer, alive, fifo) is status


# -- operations: which verb each status allows, and the error a refused one raises ---------------

ALLOWED = {
    "start": {S.CREATED}, "exec": {S.CREATED, S.RUNNING}, "pause": {S.CREATED, S.RUNNING},
    "resume": {S.PAUSING, S.PAUSED}, "signal": {S.CREATED, S.RUNNING, S.PAUSING, S.PAUSED},
    "set": {S.CREATED, S.RUNNING, S.PAUSING, S.PAUSED}, "destroy": {S.CREATED, S.STOPPED},
}


def test_operations_are_libcontainers_verbs_allowed_in_these_statuses():
    assert {op: set(o.allowed) for op, o in OPERATIONS.items()} == ALLOWED
    for status in Status:
        assert allowed_ops(status) == {op for op, allowed in ALLOWED.items() if status in allowed}
    assert allowed_ops(S.UNKNOWN) == frozenset()


@pytest.mark.parametrize("op, status", [(op, s) for op in ALLOWED for s in Status if s in ALLOWED[op]],
                         ids=str)
def test_require_allows_and_each_allowed_move_is_a_legal_transition(op, status):
    assert require(op, status, "c1") is None
    if OPERATIONS[op].target is not None:
        assert check_transition(status, OPERATIONS[op].target) is None


REFUSED = {
    ("start", S.RUNNING): (InvalidStateTransition, "invalid state transition from running to running: only a "
                                                   "created container can be started (its exec fifo is gone)"),
    ("exec", S.PAUSED): (ContainerPaused, "container c1 is paused; resume it before exec"),
    ("exec", S.PAUSING): (ContainerPaused, "container c1 is paused; resume it before exec"),
    ("exec", S.STOPPED): (ContainerNotRunning, "cannot exec in a stopped container c1"),
    ("pause", S.PAUSED): (ContainerNotRunning, "cannot pause container c1: it is paused"),
    ("pause", S.STOPPED): (ContainerNotRunning, "cannot pause container c1: it is stopped"),
    ("resume", S.RUNNING): (ContainerNotPaused, "cannot resume container c1: it is running, not paused"),
    ("set", S.STOPPED): (ContainerNotRunning, "cannot update container c1: it is stopped"),
    ("signal", S.STOPPED): (ContainerNotRunning, "container c1 is not running"),
    ("destroy", S.RUNNING): (ContainerRunning, "cannot destroy container c1: it is running (stop it first)"),
    ("destroy", S.PAUSED): (ContainerPaused, "cannot destroy container c1: it is paused"),
    ("destroy", S.PAUSING): (ContainerPaused, "cannot destroy container c1: it is paused"),
    ("destroy", S.UNKNOWN): (InvalidStateTransition, "invalid state transition from unknown to stopped"),
}


@pytest.mark.parametrize("op, status", [(op, s) for op in ALLOWED for s in Status if s not in ALLOWED[op]],
                         ids=str)
def test_require_refuses_with_the_verbs_error(op, status):
    with pytest.raises(ContainerError) as info:
        require(op, status, "c1")
    if (op, status) in REFUSED:
        kind, message = REFUSED[op, status]
        assert type(info.value) is kind
        assert str(info.value) == message


def test_state_round_trips_and_ignores_unknown_keys():
    st = State(id="x", init_process_pid=12, init_process_start=345, created="2024-01-01T00:00:00.000000Z",
               config={"rootfs": "/r"}, cgroup_paths={"freezer": "/sys/fs/cgroup/freezer/dct/x"})
    raw = json.loads(json.dumps(st.to_dict()))
    raw["some_future_key"] = 1
    assert State.from_dict(raw) == st


# -- procfs.stat ---------------------------------------------------------------------------------


def _fake_stat_line(pid: int, comm: str, state: str, starttime: int) -> bytes:
    # Fields 3.. of proc(5): state ppid pgrp session tty_nr tpgid flags minflt cminflt majflt cmajflt
    # utime stime cutime cstime priority nice num_threads itrealvalue starttime(22) vsize rss ...
    rest = [state, "1", str(pid), str(pid), "0", "-1", "4194560", "10", "0", "0", "0",
            "3", "4", "0", "0", "20", "0", "1", "0", str(starttime), "123456", "789"] + ["0"] * 30
    return f"{pid} ({comm}) {' '.join(rest)}\n".encode()


@pytest.mark.parametrize("comm", ["sleep", "a b", "x) (y", ") S 1 2 3 (", "((", "))", "a) R 99 (b c"])
def test_procfs_stat_counts_fields_after_the_last_paren(monkeypatch, comm):
    line = _fake_stat_line(4242, comm, "S", 987654321)

    def fake_open(path, mode="r", *args, **kwargs):
        assert path == "/proc/4242/stat"
        return io.BytesIO(line)

    monkeypatch.setattr(procfs, "open", fake_open, raising=False)
    assert procfs.stat(4242) == ("S", 987654321)
    assert procfs.is_alive(4242, 987654321) is True
    assert procfs.is_alive(4242, 987654322) is False


@pytest.mark.parametrize("state", ["Z", "X"])
def test_procfs_zombie_or_dead_is_not_alive(monkeypatch, state):
    line = _fake_stat_line(77, "a) Z (b", state, 555)
    monkeypatch.setattr(procfs, "open", lambda *a, **k: io.BytesIO(line), raising=False)
    assert procfs.stat(77) == (state, 555)
    assert procfs.is_alive(77, 555) is False


def test_procfs_missing_process_is_none(monkeypatch):
    def gone(*a, **k):
        raise FileNotFoundError("/proc/5/stat")

    monkeypatch.setattr(procfs, "open", gone, raising=False)
    assert procfs.stat(5) is None
    assert procfs.is_alive(5, 1) is False


@pytest.mark.parametrize("pid", [0, -1])
def test_procfs_nonpositive_pid_is_not_alive(pid):
    assert procfs.is_alive(pid, 0) is False


def test_procfs_stat_of_a_real_thread_named_with_spaces_and_parens():
    """A real task whose comm is ``x) (y z R``: the parser must not be fooled by it."""
    ready, done = threading.Event(), threading.Event()
    box = {}

    def body():
        box["tid"] = threading.get_native_id()
        ready.set()
        done.wait(10)

    t = threading.Thread(target=body)
    t.start()
    try:
        assert ready.wait(5)
        tid = box["tid"]
        with open(f"/proc/self/task/{tid}/comm", "w") as f:
            f.write("x) (y z R")
        with open(f"/proc/{tid}/comm") as f:
            assert f.read().strip() == "x) (y z R"
        st = procfs.stat(tid)
        assert st is not None
        state, start = st
        assert state in ("S", "R")
        # The thread started after this process did, and within the last minute.
        own = procfs.stat(os.getpid())
        assert own is not None and start >= own[1]
        ticks = os.sysconf("SC_CLK_TCK")
        with open("/proc/uptime") as f:
            uptime_ticks = float(f.read().split()[0]) * ticks
        assert -ticks <= uptime_ticks - start < 60 * ticks  # /proc/uptime has 10 ms resolution
        assert procfs.is_alive(tid, start) is True
        assert procfs.is_alive(tid, start + 1) is False
    finally:
        done.set()
        t.join()


# -- store.validate_id ----------------------------------------------------------------------------


@pytest.mark.parametrize("cid", ["a", "A", "0", "abc-DEF_123", "a.b", "a+b", "...", "-x", "x" * 200,
                                 "t-ok-0123abcd"])
def test_validate_id_accepts(cid):
    assert store.validate_id(cid) is None


@pytest.mark.parametrize("cid", ["", ".", "..", "../x", "a/b", "/abs", "a b", " a", "a\n", "a\nb", "\n",
                                 "a\x00b", "é", "a:b", "a*b", "a\\b", None, 5])
def test_validate_id_rejects(cid):
    with pytest.raises(InvalidID) as info:
        store.validate_id(cid)
    assert repr(cid) in str(info.value)


# -- store.write_json_atomic ----------------------------------------------------------------------


def _entries(directory):
    return sorted(os.listdir(directory))


def test_write_json_atomic_writes_compact_json_with_mode(tmp_path):
    path = tmp_path / "state.json"
    store.write_json_atomic(str(path), {"a": 1, "b": [1, 2]})
    assert json.loads(path.read_text()) == {"a": 1, "b": [1, 2]}
    assert path.read_text() == '{"a":1,"b":[1,2]}'
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert _entries(tmp_path) == ["state.json"]  # no temp file left
    assert store.read_json(str(path)) == {"a": 1, "b": [1, 2]}


def test_write_json_atomic_custom_mode(tmp_path):
    path = tmp_path / "exit.json"
    store.write_json_atomic(str(path), {"exit_code": 3}, 0o644)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644


def test_write_json_atomic_replaces_by_rename(tmp_path):
    path = tmp_path / "state.json"
    path.write_text('{"old": true}')
    old_inode = path.stat().st_ino
    with open(path) as held:  # a reader holding the old file keeps seeing the old content
        store.write_json_atomic(str(path), {"new": True})
        assert held.read() == '{"old": true}'
    assert path.stat().st_ino != old_inode
    assert json.loads(path.read_text()) == {"new": True}
    assert _entries(tmp_path) == ["state.json"]


def test_write_json_atomic_failure_keeps_old_file_and_no_temp(tmp_path):
    path = tmp_path / "state.json"
    path.write_text('{"old": true}')
    with pytest.raises(TypeError):
        store.write_json_atomic(str(path), {"bad": object()})
    assert path.read_text() == '{"old": true}'
    assert _entries(tmp_path) == ["state.json"]


def test_write_json_atomic_missing_directory_raises(tmp_path):
    with pytest.raises(FileNotFoundError):
        store.write_json_atomic(str(tmp_path / "nope" / "state.json"), {})


def test_read_json_errors(tmp_path):
    with pytest.raises(FileNotFoundError):
        store.read_json(str(tmp_path / "missing.json"))
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ValueError):
        store.read_json(str(bad))


def test_process_validates_ids_cwd_and_env():
    """Regression: uid 2**32-1 is (uid_t)-1, which setresuid reads as "unchanged": it ran as root."""
    from declarative_ct.errors import ConfigInvalid
    from declarative_ct.runtime import Process

    for bad in (dict(uid=2**32 - 1), dict(gid=-1), dict(additional_groups=[2**32]), dict(cwd="rel"),
                dict(env=["=x"]), dict(env=["NOEQ"])):
        with pytest.raises(ConfigInvalid):
            Process(["true"], **bad)
    assert Process(["true"], uid=2**32 - 2, env=["A="]).uid == 2**32 - 2


def test_cgroups_path_replaces_parent_and_id(monkeypatch):
    from declarative_ct.runtime import cgroups

    monkeypatch.setattr(cgroups, "detect", lambda: ("v1", {"pids": "/sys/fs/cgroup/pids"}))
    assert cgroups.new_manager("c1").paths() == {"pids": "/sys/fs/cgroup/pids/dct/c1"}
    assert cgroups.new_manager("c1", path="/my/own").paths() == {"pids": "/sys/fs/cgroup/pids/my/own"}
