"""The health check's shape and the record's rules: starting, healthy, unhealthy, the start period."""

from __future__ import annotations

import json
import os

import pytest

from declarative_ct.health import record
from declarative_ct.health.check import HealthCheck
from declarative_ct.units import format_duration, parse_duration

T0 = 1_800_000_000.0
CHECK = HealthCheck("exec", command=("test", "-f", "/tmp/ready"), interval=2, timeout=1, retries=3, start_period=5)


def _after(rec: dict, at: float, code: int, check: HealthCheck = CHECK) -> dict:
    return record.add_result(rec, record.result(at - 0.01, at, code, f"out {code}"), check)


def test_from_normalized_shapes():
    assert HealthCheck.from_normalized(None) is None
    http = HealthCheck.from_normalized({"exec": None, "tcp": None, "http": {"port": 8080, "path": "/hz",
                                        "expect_status": [204]}, "interval": 2.0, "timeout": 1.0,
                                        "retries": 3, "start_period": 0.0, "on_unhealthy": "restart"})
    assert (http.kind, http.port, http.path, http.expect_status, http.on_unhealthy) == ("http", 8080, "/hz", (204,),
                                                                                      "restart")
    assert http.describe() == "http GET :8080/hz → 204"
    assert http.passes(204) and not http.passes(200)
    tcp = HealthCheck.from_normalized({"tcp": {"port": 5432}})
    assert tcp.describe() == "tcp :5432" and tcp.passes(302) and not tcp.passes(404)
    assert CHECK.describe() == "exec test -f /tmp/ready"
    assert CHECK.timing() == "every 2s, timeout 1s, 3 retries, start period 5s"
    with pytest.raises(ValueError, match="exactly one"):
        HealthCheck.from_normalized({"exec": ["true"], "tcp": {"port": 1}})


def test_starting_then_healthy_at_the_first_pass():
    rec = record.new("2027-01-15T08:00:00.000Z", T0, T0)
    assert rec["status"] == record.STARTING
    rec = _after(rec, T0 + 1, 0)
    assert (rec["status"], rec["failing_streak"], rec["since"]) == ("healthy", 0, rec["log"][-1]["end"])


def test_failures_in_the_start_period_do_not_count():
    rec = record.new("r", T0, T0)
    for t in (1, 2, 3, 4):
        rec = _after(rec, T0 + t, 1)
    assert (rec["status"], rec["failing_streak"]) == ("starting", 0)
    for t in (5, 6):
        rec = _after(rec, T0 + t, 1)
    assert (rec["status"], rec["failing_streak"]) == ("starting", 2)
    rec = _after(rec, T0 + 7, 1)
    assert (rec["status"], rec["failing_streak"]) == ("unhealthy", 3)


def test_healthy_turns_unhealthy_after_retries_and_back_at_one_pass():
    rec = _after(record.new("r", T0, T0), T0 + 1, 0)
    rec = _after(rec, T0 + 2, 1)  # within the start period, but no longer starting: it counts
    rec = _after(rec, T0 + 3, 1)
    assert (rec["status"], rec["failing_streak"]) == ("healthy", 2)
    rec = _after(rec, T0 + 4, 1)
    assert (rec["status"], rec["failing_streak"], rec["since"]) == ("unhealthy", 3, rec["log"][-1]["end"])
    rec = _after(rec, T0 + 5, 7)
    assert rec["failing_streak"] == 4
    assert record.last_output(rec) == "exit 7: out 7"
    rec = _after(rec, T0 + 6, 0)
    assert (rec["status"], rec["failing_streak"]) == ("healthy", 0)


def test_log_keeps_the_last_results_and_cuts_outputs():
    rec = record.new("r", T0, T0)
    for t in range(12):
        rec = _after(rec, T0 + 10 + t, t % 2)
    assert len(rec["log"]) == record.LOG_SIZE
    assert [e["exit_code"] for e in rec["log"]] == [1, 0, 1, 0, 1]
    long = record.result(T0, T0 + 1, 1, "x" * 5000)
    assert len(long["output"]) == record.OUTPUT_MAX and long["output"].endswith("…")
    assert record.last_output(None) == "" and record.last_output(record.new("r", T0, T0)) == ""


def test_read_ignores_missing_and_malformed(tmp_path):
    d = str(tmp_path)
    assert record.read(d) is None
    (tmp_path / record.RECORD_FILE).write_text("{")
    assert record.read(d) is None
    (tmp_path / record.RECORD_FILE).write_text(json.dumps({"status": "weird"}))
    assert record.read(d) is None


def test_store_needs_the_container_and_its_lock(tmp_path):
    d = str(tmp_path / "c")
    os.makedirs(d)
    rec = record.new("r", T0, T0)
    assert not record.store(d, rec)  # no lock file: no container was ever started here
    (tmp_path / "c" / ".lock").write_text("")
    assert not record.store(d, rec)  # no state.json: being destroyed or not yet created
    (tmp_path / "c" / "state.json").write_text("{}")
    assert record.store(d, rec) and record.read(d) == rec
    assert not record.store(str(tmp_path / "gone"), rec)


def test_store_skips_while_the_container_lock_is_held(tmp_path):
    from declarative_ct.runtime import store as state_store

    d = str(tmp_path)
    (tmp_path / "state.json").write_text("{}")
    with state_store.locked(d):
        assert not record.store(d, record.new("r", T0, T0))
    assert record.store(d, record.new("r", T0, T0))


def test_store_does_not_fsync(tmp_path, monkeypatch):
    # rewritten after every probe (100/s with 100 containers probed twice every 2 s): an fsync each
    # was most of the prober's write cost on a journaling file system, for a file of no worth after a crash
    synced = []
    monkeypatch.setattr(os, "fsync", synced.append)
    (tmp_path / ".lock").write_text("")
    (tmp_path / "state.json").write_text("{}")
    rec = record.new("r", T0, T0)
    assert record.store(str(tmp_path), rec) and record.read(str(tmp_path)) == rec
    assert synced == []


@pytest.mark.parametrize("text,seconds", [(2, 2.0), (0.5, 0.5), ("2s", 2.0), ("500ms", 0.5), ("1m30s", 90.0),
                                          ("0", 0.0), ("1h", 3600.0), ("1.5s", 1.5)])
def test_parse_duration(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", [True, -1, "2 s", "1d", "", "s", float("nan"), float("inf"), None, "0x", "5"])
def test_parse_duration_refuses(text):
    with pytest.raises(ValueError, match="duration"):
        parse_duration(text, "health.interval")


@pytest.mark.parametrize("seconds,text", [(0.5, "500ms"), (2, "2s"), (1.5, "1.5s"), (90, "1m30s"), (7200, "2h"),
                                          (0, "0s")])
def test_format_duration(seconds, text):
    assert format_duration(seconds) == text


def test_to_normalized_is_from_normalized_inverse():
    for check in (CHECK, HealthCheck("http", port=8080, path="/hz", expect_status=(200, 204), on_unhealthy="restart"),
                  HealthCheck("tcp", port=5432, interval=0.5)):
        assert HealthCheck.from_normalized(check.to_normalized()) == check
    rec = _after(record.new("r", T0, T0), T0 + 1, 0)
    assert rec["probe"] == CHECK.to_normalized()


def test_last_output_without_output_is_the_exit_code_alone():
    rec = record.add_result(record.new("r", T0, T0), record.result(T0, T0 + 1, 1, " \n"), CHECK)
    assert record.last_output(rec) == "exit 1"


def test_is_stale_counts_from_the_last_result_else_the_start():
    rec = record.new("r", T0, T0)
    check = HealthCheck("tcp", port=1, interval=2, timeout=1)
    assert record.last_result_at(rec) == T0 and record.last_result_at(None) is None
    assert not record.is_stale(rec, check, T0 + 2 + 1 + record.STALE_WAIT)
    assert record.is_stale(rec, check, T0 + 2 + 1 + record.STALE_WAIT + 0.01)
    rec = _after(rec, T0 + 100, 0, check)
    assert record.last_result_at(rec) == T0 + 100
    assert not record.is_stale(rec, check, T0 + 100 + 3 * 2 + 1 + record.STALE_SHOWN, 3, record.STALE_SHOWN)
    assert record.is_stale(rec, check, T0 + 100 + 3 * 2 + 1 + record.STALE_SHOWN + 0.01, 3, record.STALE_SHOWN)
    assert record.is_stale(None, check, T0)


def test_store_refuses_a_lock_file_removed_while_it_was_taken(tmp_path, monkeypatch):
    """A destroy between the open of the lock file and the flock: the flock is of no container."""
    from declarative_ct.runtime import store as state_store

    d = tmp_path / "c"
    d.mkdir()
    (d / ".lock").write_text("")
    (d / "state.json").write_text("{}")
    real_flock = state_store.fcntl.flock

    def flock_after_a_destroy_and_create(fd, op):
        os.unlink(d / ".lock")  # destroyed, then made again: a new lock file at the same path
        (d / ".lock").write_text("")
        return real_flock(fd, op)

    monkeypatch.setattr(state_store.fcntl, "flock", flock_after_a_destroy_and_create)
    assert not record.store(str(d), record.new("r", T0, T0))
    assert record.read(str(d)) is None
