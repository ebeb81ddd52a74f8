"""jsonfile.write_atomic from many threads of one process at once (apply's parallel creates)."""

from __future__ import annotations

import os
import threading

from declarative_ct import jsonfile


def test_threads_writing_one_path_at_once_all_succeed(tmp_path) -> None:
    path = str(tmp_path / "marker")
    errors: list[BaseException] = []
    start = threading.Barrier(8)

    def write(i: int) -> None:
        start.wait()
        for _ in range(50):
            try:
                jsonfile.write_json_atomic(path, {"writer": i})
            except OSError as err:  # a temp file shared by two threads: renamed away under the other
                errors.append(err)

    threads = [threading.Thread(target=write, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert jsonfile.read_json(path)["writer"] in range(8)
    assert [p.name for p in tmp_path.iterdir()] == ["marker"]  # no temp file left


def test_a_killed_writers_temp_file_of_a_manager_entry_is_not_a_container(tmp_path) -> None:
    """A supervisor killed inside write_atomic leaves ``.#supervisor.json.<pid>.<tid>.tmp`` in the
    state root: not a container's directory (no id contains ``#``)."""
    from declarative_ct.runtime import store

    for name in ("#supervisor.json", ".#supervisor.json.14242.139638853102464.tmp", "web"):
        (tmp_path / name).mkdir()
    assert store.container_entries(str(tmp_path)) == ["web"]


def test_durable_false_skips_the_fsync_and_the_default_does_not(tmp_path, monkeypatch) -> None:
    synced = []
    real = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (synced.append(fd), real(fd)))
    jsonfile.write_json_atomic(str(tmp_path / "kept"), {"a": 1})
    assert len(synced) == 1
    jsonfile.write_json_atomic(str(tmp_path / "often"), {"b": 2}, durable=False)
    assert len(synced) == 1
    assert jsonfile.read_json(str(tmp_path / "often")) == {"b": 2}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["kept", "often"]
