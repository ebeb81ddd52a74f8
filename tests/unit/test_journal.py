"""``#journal.jsonl``: a torn last line (a writer killed mid-append, a full disk) never swallows the next record."""

from __future__ import annotations

import json
import os

from declarative_ct.reconcile import apply as applying
from declarative_ct.reconcile.plan import Action


def _outcome(name: str) -> applying.Outcome:
    return applying.Outcome(Action(name, "create", "not created yet", ("create", "start")), "ok")


def test_a_torn_last_line_does_not_swallow_the_next_record(tmp_path):
    root = str(tmp_path)
    applying._journal(root, _outcome("a"))
    path = os.path.join(root, applying.JOURNAL_FILE)
    with open(path, "ab") as f:
        f.write(b'{"time":"2024-01-01T00:00:00Z","container":"torn","cla')  # cut short
    applying._journal(root, _outcome("b"))
    applying._journal(root, _outcome("c"))
    with open(path, "rb") as f:
        data = f.read()
    assert data.endswith(b"\n")
    records = []
    for line in data.splitlines():
        try:
            records.append(json.loads(line)["container"])
        except ValueError:
            assert line.startswith(b'{"time":"2024-01-01T00:00:00Z","container":"torn"')
    assert records == ["a", "b", "c"]
    assert b"\n\n" not in data  # records that follow whole lines start no empty one


def test_the_tui_reader_skips_the_torn_line(tmp_path):
    from tui.backend.real import RealBackend

    root = str(tmp_path)
    applying._journal(root, _outcome("a"))
    backend = RealBackend(root)
    assert [e["container"] for e in backend.journal()] == ["a"]
    with open(os.path.join(root, applying.JOURNAL_FILE), "ab") as f:
        f.write(b'{"container":"torn"')
    assert backend.journal() == []  # a line being written waits for its end
    applying._journal(root, _outcome("b"))
    assert [e["container"] for e in backend.journal()] == ["b"]
