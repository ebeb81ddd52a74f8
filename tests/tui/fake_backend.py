"""The tests' backend: deterministic and in memory (:class:`FakeBackend`), with :func:`fake_fleet`."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

from declarative_ct.health.check import HealthCheck
from declarative_ct.runtime.logread import Entry
from tui.backend import SHELL, Backend, LogCursor, Outcome
from tui.desired import DesiredView, PlanView
from tui.model import Reading, is_live
from tui.processes import ProcInfo


def fake_time(i: int) -> str:
    """The time of the fake's ``i``-th log line: 2026-12-07T10:00:00Z plus ``i`` s and ``i`` ms (UTC)."""
    return f"2026-12-07T10:{i // 60 % 60:02d}:{i % 60:02d}.{i % 1000:03d}000000Z"


@dataclass
class FakeContainer:
    """A container of :class:`FakeBackend`: its counters grow by the ``*_step`` values each sample."""

    id: str
    status: str = "running"
    pid: int = 1000
    started: float = 0.0
    owned: bool = True
    cpu_ns: int = 0
    cpu_step: int = 0
    cpu_limit: float | None = None
    mem_usage: int = 8 << 20
    mem_limit: int | None = 64 << 20
    pids: int = 2
    pids_limit: int | None = 64
    net: bool = False
    net_rx: int = 0
    net_tx: int = 0
    net_step: int = 0
    io: int = 0
    io_step: int = 0
    oom_kills: int = 0
    throttled_periods: int = 0
    exit_code: int | None = None
    logs: list[tuple[str, str]] = field(default_factory=list)  # the current run's lines: (stream, text)
    previous_logs: list[tuple[str, str]] | None = None  # the run before it (None: none)
    run: int = 0  # the current run's number
    health: dict | None = None  # its health view (declarative_ct.health.view), None: no check
    health_check: HealthCheck | None = None


class FakeBackend(Backend):
    """Deterministic, in memory; records every action in :attr:`calls` (``(name, args…)``).

    ``containers``: the fakes; ``desired_view``: what :meth:`desired` returns; ``plan_view``:
    what :meth:`plan` returns (``apply`` reports each of its actions ``ok``, or ``failed`` for
    containers in ``fail``); ``errors``: ``{method: exception}`` raised by that action.
    """

    def __init__(self, containers: Sequence[FakeContainer] = (), specs_given: bool = False,
                 desired_view: DesiredView | None = None, plan_view: PlanView | None = None,
                 root: str = "/run/dct-fake", readonly: bool = False) -> None:
        self.containers: dict[str, FakeContainer] = {c.id: c for c in containers}
        self.specs_given = specs_given
        self.desired_view = desired_view
        self.plan_view = plan_view or PlanView()
        self.root = root
        self.readonly = readonly
        self.calls: list[tuple] = []
        self.errors: dict[str, Exception] = {}
        self.fail: set[str] = set()
        self.journal_lines: list[dict] = []
        self.procs: dict[str, list[ProcInfo]] = {}
        self.spec_texts: dict[str, tuple[str, str]] = {}
        self.hot: set[str] | None = None
        self.notices_now: tuple[str, ...] = ()
        self.shell_exit = 0

    def notices(self) -> tuple[str, ...]:
        return self.notices_now

    def sample(self, hot: set[str] | None = None, tick: int = 0) -> list[Reading]:
        self.hot = hot
        out = []
        for c in self.containers.values():
            live = is_live(c.status)
            if c.status == "running":
                c.cpu_ns += c.cpu_step
                c.net_rx += c.net_step
                c.net_tx += c.net_step // 2
                c.io += c.io_step
            if not live:
                out.append(Reading(c.id, c.status, None, c.started, c.owned, exit_code=c.exit_code,
                                   health=c.health, health_check=c.health_check))
                continue
            out.append(Reading(c.id, c.status, c.pid, c.started, c.owned, cpu_ns=c.cpu_ns,
                               throttled_periods=c.throttled_periods, throttled_ns=c.throttled_periods * 1000,
                               periods=c.throttled_periods * 10, cpu_limit=c.cpu_limit, mem_usage=c.mem_usage,
                               mem_limit=c.mem_limit, mem_cache=c.mem_usage // 4, pids=c.pids,
                               pids_limit=c.pids_limit, io_read=c.io, io_write=c.io // 2,
                               net_rx=c.net_rx if c.net else None, net_tx=c.net_tx if c.net else None,
                               oom_kills=c.oom_kills, health=c.health, health_check=c.health_check))
        return out

    def desired(self) -> DesiredView | None:
        return self.desired_view

    def processes(self, container_id: str) -> list[ProcInfo] | None:
        if container_id not in self.containers:
            return None
        return list(self.procs.get(container_id, ()))

    def journal(self) -> list[dict]:
        out, self.journal_lines = self.journal_lines, []
        return out

    def read_logs(self, container_id: str, cursor: LogCursor) -> list[Entry]:
        c = self.containers.get(container_id)
        if c is None:
            return []
        if cursor.previous and c.previous_logs is None:
            cursor.run, cursor.note = None, f"no previous run (only run {c.run})"
            return []
        lines, run = (c.previous_logs, c.run - 1) if cursor.previous else (c.logs, c.run)
        done = cursor.reader or 0  # the fake's reader: the number of lines given
        cursor.reader, cursor.run, cursor.note = len(lines), run, ""
        return [Entry(fake_time(i), stream, text.encode(), run) for i, (stream, text) in enumerate(lines[done:], done)]

    def spec_text(self, container_id: str) -> tuple[str, str] | None:
        return self.spec_texts.get(container_id)

    def _act(self, name: str, *args) -> None:
        from declarative_ct.errors import ContainerError

        self.calls.append((name, *args))
        err = self.errors.get(name)
        if err is not None:
            raise err
        if args and args[0] not in self.containers:
            raise ContainerError(f"container {args[0]!r} does not exist")

    def pause(self, container_id: str) -> None:
        self._act("pause", container_id)
        self.containers[container_id].status = "paused"

    def resume(self, container_id: str) -> None:
        self._act("resume", container_id)
        self.containers[container_id].status = "running"

    def signal(self, container_id: str, sig: int, pid: int | None = None, create_time: float | None = None) -> None:
        self._act("signal", container_id, sig, pid)

    def destroy(self, container_id: str) -> None:
        self._act("destroy", container_id)
        del self.containers[container_id]

    def shell(self, container_id: str, argv: Sequence[str] = SHELL) -> int:
        self._act("shell", container_id, tuple(argv))
        return self.shell_exit

    def plan(self, prune: bool = False) -> PlanView:
        self.calls.append(("plan", prune))
        return replace(self.plan_view, prune=prune)

    def apply(self, plan: PlanView, on_outcome: Callable[[Outcome], None] | None = None) -> list[Outcome]:
        self.calls.append(("apply", tuple(a["container"] for a in plan.actions)))
        err = self.errors.get("apply")
        if err is not None:
            raise err
        outcomes = []
        for a in plan.actions:
            failed = a["container"] in self.fail
            o = Outcome(a["container"], a["class"], a["cause"], "failed" if failed else "ok",
                        "injected failure" if failed else "")
            outcomes.append(o)
            if on_outcome is not None:
                on_outcome(o)
        return outcomes


def fake_fleet(n: int = 3, started: float = 0.0) -> list[FakeContainer]:
    """``n`` fakes ``c1``…: running, with CPU and network moving, one paused and one stopped when n >= 3."""
    out = []
    for i in range(1, n + 1):
        status = "paused" if i == 2 else "stopped" if i == 3 else "running"
        out.append(FakeContainer(f"c{i}", status=status, pid=1000 + i, started=started - 60 * i,
                                 cpu_step=i * 100_000_000, cpu_limit=0.5 if i == 1 else None,
                                 mem_usage=(8 + i) << 20, net=i == 1, net_step=2048 * i, io_step=4096,
                                 exit_code=0 if status == "stopped" else None,
                                 logs=[("stdout", f"c{i} line {k}") for k in range(5)]))
    return out
