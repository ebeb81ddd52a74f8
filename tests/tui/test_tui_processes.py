"""A container's process tree (tui/processes.py)."""

from __future__ import annotations

from tui.processes import ProcInfo, process_tree, tree_label


def test_process_tree_puts_children_under_parents():
    procs = [ProcInfo(30, 10, "root", 0.0, 1, 1, "S", "sleep 1"), ProcInfo(10, 1, "root", 0.0, 1, 1, "S", "sh"),
             ProcInfo(20, 10, "root", 0.0, 1, 1, "S", "cat"), ProcInfo(40, 999, "root", 0.0, 1, 1, "S", "orphan")]
    assert [(d, p.pid) for d, p in process_tree(procs)] == [(0, 10), (1, 20), (1, 30), (0, 40)]
    assert tree_label(2, "x") == "  └ x"
