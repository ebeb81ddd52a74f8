"""A container's processes: :class:`ProcInfo` (from the backend) and their tree. Pure, no Textual."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ProcInfo:
    """One process of a container (psutil): ``cpu_pct`` is % of one core since the previous read,
    ``rss`` bytes, ``create_time`` epoch seconds (with ``pid``, identifies the process)."""

    pid: int
    ppid: int
    user: str
    cpu_pct: float | None
    rss: int | None
    threads: int | None
    state: str
    cmdline: str
    create_time: float = 0.0


def process_tree(procs: Iterable[ProcInfo]) -> list[tuple[int, ProcInfo]]:
    """``[(depth, proc)]`` in tree order: each process after its parent (within the set), children
    by PID; a process whose parent is outside the set (init, or an orphan) is a root."""
    procs = list(procs)
    by_pid = {p.pid: p for p in procs}
    children: dict[int, list[ProcInfo]] = {}
    roots = []
    for p in procs:
        if p.ppid in by_pid and p.ppid != p.pid:
            children.setdefault(p.ppid, []).append(p)
        else:
            roots.append(p)
    out: list[tuple[int, ProcInfo]] = []
    seen: set[int] = set()

    def walk(p: ProcInfo, depth: int) -> None:
        if p.pid in seen:  # a cycle cannot happen in /proc, but a torn read could fake one
            return
        seen.add(p.pid)
        out.append((depth, p))
        for c in sorted(children.get(p.pid, ()), key=lambda c: c.pid):
            walk(c, depth + 1)

    for p in sorted(roots, key=lambda p: p.pid):
        walk(p, 0)
    for p in sorted(procs, key=lambda p: p.pid):  # anything a torn read left out of the tree
        if p.pid not in seen:
            walk(p, 0)
    return out


def tree_label(depth: int, text: str) -> str:
    """``text`` indented for its depth in the tree (``└ `` before a child)."""
    return text if depth == 0 else "  " * (depth - 1) + "└ " + text
