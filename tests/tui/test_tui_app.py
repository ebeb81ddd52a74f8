"""Pilot tests of the TUI (``App.run_test``) against the fake backend: keys, screens, modals,
and what reaches the backend (its recorded calls)."""

from __future__ import annotations

import asyncio
import contextlib
import io
import signal

import pytest
from rich.console import Console

from declarative_ct.errors import ContainerError
from tui.app import DctApp
from fake_backend import FakeBackend, FakeContainer, fake_fleet
from tui.backend import PlanChanged
from tui.collector import Collector
from tui.desired import DesiredEntry, DesiredView, PlanView
from tui.processes import ProcInfo
from tui.screens.container import ContainerScreen
from tui.screens.containers import ContainersScreen
from tui.screens.events import EventsScreen
from tui.screens.modals import ConfirmScreen, HelpScreen, PlanScreen, SignalScreen, SortScreen

WALL = 1_700_000_000.0
PLAN = PlanView(actions=({"container": "c1", "class": "live", "cause": "resources.memory 64Mi → 128Mi",
                          "steps": ["set"], "resources": {"memory": 128 << 20}},
                         {"container": "new", "class": "create", "cause": "not created yet",
                          "steps": ["create", "start"], "resources": {}}),
                notes=("c9: unmanaged (not made by declarative-ct), left alone",), fingerprint="f00")


def make_app(backend: FakeBackend | None = None, readonly: bool = False) -> DctApp:
    """An app whose clock advances 1 s per collector pass and whose wall clock stands still;
    the refresh timer is an hour, so the tests drive the passes (``tick``)."""
    backend = backend or FakeBackend(fake_fleet(3, started=WALL), plan_view=PLAN)
    t = [0.0]

    def clock() -> float:
        t[0] += 1.0
        return t[0]

    collector = Collector(backend, clock=clock, wall=lambda: WALL, self_usage=lambda: (None, None))
    app = DctApp(backend, interval=3600, readonly=readonly, collector=collector)
    app.notes = []
    app.notify = lambda message, **kw: app.notes.append((str(message), kw.get("severity", "information")))
    return app


async def until(pilot, condition, timeout: float = 5.0) -> None:
    """Let the app run until ``condition()`` holds (fails the test after ``timeout`` seconds)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        if loop.time() > deadline:
            pytest.fail(f"timed out waiting for {condition}")
        await pilot.pause(0.02)


async def tick(app: DctApp, pilot, n: int = 1) -> None:
    """``n`` collector passes, shown."""
    for _ in range(n):
        want = app.ticks + 1
        await until(pilot, lambda: not app._collecting)
        app.refresh_now()
        await until(pilot, lambda: app.ticks >= want)
    await pilot.pause()


def run(scenario, app: DctApp | None = None, size: tuple[int, int] = (120, 30)) -> DctApp:
    app = app or make_app()

    async def main() -> None:
        async with app.run_test(size=size) as pilot:
            await until(pilot, lambda: app.ticks >= 1 and isinstance(app.screen, ContainersScreen))
            await tick(app, pilot)  # a second pass: rates
            await scenario(app, pilot)

    asyncio.run(main())
    return app


def table(app: DctApp):
    return app.screen.query_one("#containers")


def text_of(widget) -> str:
    """What a Static shows, as plain text (its content rendered by Rich, 200 columns)."""
    console = Console(width=200, record=True, file=io.StringIO())
    console.print(widget.content)
    return console.export_text()


def test_rows_cursor_navigation_open_and_back():
    async def scenario(app, pilot):
        t = table(app)
        assert t.ordered_keys == ("c1", "c2", "c3")
        assert t.get_cell("c1", "status") == "running" and t.get_cell("c2", "status") == "paused"
        assert t.get_cell("c1", "cpu") == "0.10" and t.get_cell("c1", "cpu_limit") == "20%"
        assert t.cursor_key == "c1"
        await pilot.press("j", "down")
        assert t.cursor_key == "c3"
        await pilot.press("k")
        assert t.cursor_key == "c2"
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, ContainerScreen))
        assert app.screen.container_id == "c2" and app.collector.focus == "c2"
        await pilot.press("escape")
        await until(pilot, lambda: isinstance(app.screen, ContainersScreen))
        assert table(app).cursor_key == "c2"
        await pilot.click("#containers", offset=(5, 3))  # the third row: the cursor goes there
        assert t.cursor_key == "c3" and isinstance(app.screen, ContainersScreen)
        await pilot.click("#containers", offset=(5, 3))  # clicked again: opened
        await until(pilot, lambda: isinstance(app.screen, ContainerScreen) and app.screen.container_id == "c3")
        await pilot.press("escape")
        await until(pilot, lambda: isinstance(app.screen, ContainersScreen))
        await pilot.click("#containers", offset=(10, 0))  # the STATUS header: sort by status
        assert app.screen.sort_key == "status"
        assert t.ordered_keys == ("c1", "c2", "c3") and t.cursor_key == "c3"  # running, paused, stopped

    run(scenario)


def test_rows_update_in_place_and_the_cursor_stays_on_its_container():
    backend = FakeBackend(fake_fleet(3, started=WALL))

    async def scenario(app, pilot):
        t = table(app)
        await pilot.press("down", "down")
        assert t.cursor_key == "c3"
        backend.containers["a-first"] = FakeContainer("a-first", started=WALL)  # sorts before c3
        del backend.containers["c1"]
        backend.containers["c2"].status = "running"
        await tick(app, pilot)
        assert t.ordered_keys == ("a-first", "c2", "c3")
        assert t.cursor_key == "c3"
        assert t.get_cell("c2", "status") == "running"

    run(scenario, make_app(backend))


def test_sort_keeps_the_cursor_on_its_container():
    async def scenario(app, pilot):
        t = table(app)
        await pilot.press("down")  # c2 (paused: 0 cores)
        await pilot.press("s")
        await until(pilot, lambda: isinstance(app.screen, SortScreen))
        await pilot.press("down", "down", "down", "enter")  # name, status, pid, cpu
        await until(pilot, lambda: isinstance(app.screen, ContainersScreen))
        screen = app.screen
        assert screen.sort_key == "cpu" and screen.sort_reverse  # biggest first
        assert t.ordered_keys == ("c4", "c1", "c2", "c3")  # 0.40, 0.10, 0.00 cores, then c3 (stopped: unknown)
        assert t.cursor_key == "c2"
        await pilot.press("S")  # reverse: smallest first, the unknown one still last
        assert t.ordered_keys == ("c2", "c1", "c4", "c3") and t.cursor_key == "c2"
        await pilot.press("down")
        assert t.cursor_key == "c1"
        screen.sort_by("name")
        assert t.ordered_keys == ("c1", "c2", "c3", "c4") and t.cursor_key == "c1"
        backend.containers["c1"].cpu_step = 10**9  # CPU changes: the rows move, the cursor follows c1
        screen.sort_by("cpu")
        await tick(app, pilot, 2)
        assert t.ordered_keys[0] == "c1" and t.cursor_key == "c1"

    backend = FakeBackend(fake_fleet(4, started=WALL))
    run(scenario, make_app(backend))


def test_filter_shows_matching_rows_and_escape_clears_it():
    async def scenario(app, pilot):
        t = table(app)
        await pilot.press("slash", "p", "a", "u", "s")
        assert t.ordered_keys == ("c2",)  # status paused
        await pilot.press("enter")
        await tick(app, pilot)
        assert t.ordered_keys == ("c2",)  # stays filtered across refreshes
        await pilot.press("slash", "ctrl+a", "!", "enter")
        await pilot.press("escape")
        assert t.ordered_keys == ("c1", "c2", "c3")

    run(scenario)


def test_pause_key_calls_the_backend_only_when_the_state_allows():
    backend = FakeBackend(fake_fleet(3, started=WALL))

    async def scenario(app, pilot):
        await pilot.press("p")  # c1 running
        await until(pilot, lambda: ("pause", "c1") in backend.calls)
        await tick(app, pilot)
        assert table(app).get_cell("c1", "status") == "paused"
        await pilot.press("down", "p")  # c2 paused
        await until(pilot, lambda: ("resume", "c2") in backend.calls)
        calls = len(backend.calls)
        await pilot.press("down", "p")  # c3 stopped: refused before the backend
        await pilot.pause(0.1)
        assert len(backend.calls) == calls
        assert any("c3: cannot pause or resume a container that is stopped" in m for m, _ in app.notes)

    run(scenario, make_app(backend))


def test_destroy_needs_confirmation():
    backend = FakeBackend(fake_fleet(3, started=WALL))

    async def scenario(app, pilot):
        await pilot.press("ctrl+d")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("enter")  # the focused button is Cancel
        await until(pilot, lambda: isinstance(app.screen, ContainersScreen))
        await pilot.press("ctrl+d")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("n")
        await pilot.pause(0.1)
        assert not any(c[0] == "destroy" for c in backend.calls)
        await pilot.press("ctrl+d")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("y")
        await until(pilot, lambda: ("destroy", "c1") in backend.calls)
        await tick(app, pilot)
        assert "c1" not in table(app).ordered_keys

    run(scenario, make_app(backend))


def test_plan_modal_applies_only_on_confirm_and_streams_outcomes():
    backend = FakeBackend(fake_fleet(3, started=WALL), plan_view=PLAN, specs_given=True)
    backend.fail = {"new"}

    async def scenario(app, pilot):
        await pilot.press("a")
        await until(pilot, lambda: isinstance(app.screen, PlanScreen) and app.screen.plan is not None)
        body = text_of(app.screen.query_one("#plan-body"))
        assert "live (1)" in body and "create (1)" in body and "unmanaged" in body
        await pilot.press("escape")
        await until(pilot, lambda: isinstance(app.screen, ContainersScreen))
        assert not any(c[0] == "apply" for c in backend.calls)
        await pilot.press("a")
        await until(pilot, lambda: isinstance(app.screen, PlanScreen) and app.screen.plan is not None)
        await pilot.press("x")  # prune on: planned again
        await until(pilot, lambda: app.screen.plan is not None)
        assert app.screen.plan.prune and ("plan", True) in backend.calls
        await pilot.press("y")
        await until(pilot, lambda: any(c[0] == "apply" for c in backend.calls))
        await until(pilot, lambda: any("apply: 1 done, 1 failed" in e.text for e in app.events.for_container()))
        assert isinstance(app.screen, EventsScreen)  # progress streams into the events view
        texts = [e.text for e in app.events.for_container("c1")]
        assert "live (resources.memory 64Mi → 128Mi): ok" in texts
        assert any("new: create failed" in m for m, sev in app.notes if sev == "error")

    run(scenario, make_app(backend))


def test_a_plan_that_moved_meanwhile_is_refused_with_a_notification():
    backend = FakeBackend(fake_fleet(3, started=WALL), plan_view=PLAN, specs_given=True)
    backend.errors["apply"] = PlanChanged("the containers or specs changed since this plan was made; plan again")

    async def scenario(app, pilot):
        await pilot.press("a")
        await until(pilot, lambda: isinstance(app.screen, PlanScreen) and app.screen.plan is not None)
        await pilot.press("y")
        await until(pilot, lambda: any("plan again" in m for m, _ in app.notes))
        assert app.is_running

    run(scenario, make_app(backend))


def test_nothing_to_apply_cannot_be_confirmed():
    backend = FakeBackend(fake_fleet(3, started=WALL), plan_view=PlanView(fingerprint="x"), specs_given=True)

    async def scenario(app, pilot):
        await pilot.press("a")
        await until(pilot, lambda: isinstance(app.screen, PlanScreen) and app.screen.plan is not None)
        assert "Nothing to do" in text_of(app.screen.query_one("#plan-body"))
        await pilot.press("y")
        await pilot.pause(0.1)
        assert isinstance(app.screen, PlanScreen)
        assert not any(c[0] == "apply" for c in backend.calls)

    run(scenario, make_app(backend))


def test_readonly_refuses_every_action():
    backend = FakeBackend(fake_fleet(3, started=WALL), plan_view=PLAN, specs_given=True)

    async def scenario(app, pilot):
        await pilot.press("p", "ctrl+d", "ctrl+k", "a")
        app.pause_or_resume(["c1"])  # as the command palette would
        app.ask_destroy(["c1"])
        await pilot.pause(0.1)
        assert isinstance(app.screen, ContainersScreen)
        assert backend.calls == []
        assert any("read-only" in m for m, _ in app.notes)
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, ContainerScreen))
        await pilot.press("p", "ctrl+d")
        await pilot.pause(0.1)
        assert backend.calls == []

    run(scenario, make_app(backend, readonly=True))


def test_a_failing_action_is_a_notification_never_a_crash():
    backend = FakeBackend(fake_fleet(3, started=WALL))
    backend.errors["pause"] = ContainerError("cannot pause container c1: the freezer is stuck")

    async def scenario(app, pilot):
        await pilot.press("p")
        await until(pilot, lambda: any("freezer is stuck" in m for m, _ in app.notes))
        assert app.is_running
        assert any("failed" in e.text and e.level == "error" for e in app.events.for_container("c1"))

    run(scenario, make_app(backend))


def test_signal_picker_sends_the_chosen_signal_to_init_or_to_a_process():
    backend = FakeBackend(fake_fleet(3, started=WALL))
    backend.procs["c1"] = [ProcInfo(1001, 1, "root", 0.0, 1 << 20, 1, "sleeping", "sh -c loop", 5.0),
                           ProcInfo(1050, 1001, "root", 2.0, 1 << 20, 1, "sleeping", "sleep 1", 6.0)]

    async def scenario(app, pilot):
        await pilot.press("ctrl+k")
        await until(pilot, lambda: isinstance(app.screen, SignalScreen))
        await pilot.press("escape")
        await until(pilot, lambda: isinstance(app.screen, ContainersScreen))
        assert not any(c[0] == "signal" for c in backend.calls)
        await pilot.press("f9")
        await until(pilot, lambda: isinstance(app.screen, SignalScreen))
        await pilot.press("down", "down", "enter")  # SIGTERM, SIGKILL, SIGHUP
        await until(pilot, lambda: ("signal", "c1", signal.SIGHUP, None) in backend.calls)
        await pilot.press("enter")  # the container screen, processes tab
        await until(pilot, lambda: isinstance(app.screen, ContainerScreen))
        await tick(app, pilot)
        procs = app.screen.query_one("#procs")
        assert procs.row_count == 2
        assert "└ sleep 1" in str(procs.get_row_at(1)[-1])
        await pilot.press("down", "ctrl+k")
        await until(pilot, lambda: isinstance(app.screen, SignalScreen))
        await pilot.press("down", "enter")  # SIGKILL to pid 1050
        await until(pilot, lambda: ("signal", "c1", signal.SIGKILL, 1050) in backend.calls)

    run(scenario, make_app(backend))


def test_marked_containers_are_acted_on_together():
    backend = FakeBackend(fake_fleet(4, started=WALL))

    async def scenario(app, pilot):
        t = table(app)
        await pilot.press("space")  # c1, then the cursor moves down
        await pilot.press("down", "space")  # c3 (stopped: skipped) ... c4
        assert app.screen.marked == {"c1", "c3"}
        assert t.get_cell("c1", "mark") == "*"
        await pilot.press("space")  # c4
        await pilot.press("p")
        await until(pilot, lambda: ("pause", "c1") in backend.calls and ("pause", "c4") in backend.calls)
        assert any("c3: cannot pause" in m for m, _ in app.notes)
        await pilot.press("escape")
        assert app.screen.marked == set() and t.get_cell("c1", "mark") == ""

    run(scenario, make_app(backend))


def test_command_palette_offers_the_actions():
    backend = FakeBackend(fake_fleet(3, started=WALL))

    async def scenario(app, pilot):
        titles = [t for t, _, _ in app.palette_commands()]
        assert {"Pause c1", "Resume c2", "Destroy c3…", "Plan and apply…", "Sort by CPU"} <= set(titles)
        await pilot.press("ctrl+p")
        await pilot.pause(0.2)
        await pilot.press(*"pause c1")
        await pilot.pause(0.5)
        await pilot.press("enter")
        await until(pilot, lambda: ("pause", "c1") in backend.calls)
        await pilot.press("ctrl+p")
        await pilot.pause(0.2)
        await pilot.press(*"sort by cpu")
        await pilot.pause(0.5)
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, ContainersScreen) and app.screen.sort_key == "cpu")

    run(scenario, make_app(backend))


def test_container_screen_tabs_stats_logs_filter_spec_events():
    backend = FakeBackend(fake_fleet(3, started=WALL), specs_given=True, desired_view=DesiredView({
        "c1": DesiredEntry("c1", "drifted", "running", cause="resources.memory 64Mi → 128Mi", action="live",
                           steps=("set",), desired={"name": "c1", "state": "running", "resources": {}},
                           applied={"name": "c1", "state": "running", "resources": {}},
                           observed_resources={"memory": 64 << 20}, live_changes={"memory": 128 << 20})}))
    backend.containers["c1"].logs = [("stdout", f"line {i}") for i in range(6)] + [("stderr", "ERROR disk full")]
    backend.spec_texts["c1"] = ("specs/c1.yaml:1", "name: c1\n")

    async def scenario(app, pilot):
        await pilot.press("l")  # straight to the logs tab
        await until(pilot, lambda: isinstance(app.screen, ContainerScreen))
        screen = app.screen
        assert screen.active_tab == "logs"
        log = screen.query_one("#log")
        await until(pilot, lambda: log.line_count == 7)
        assert list(log.lines)[-1] == "12-07 10:00:06.006 ! ERROR disk full"  # times shown, UTC
        await pilot.press("s")  # times hidden
        assert list(log.lines)[-2:] == ["line 5", "! ERROR disk full"]
        await pilot.press("slash", *"error", "enter")
        assert list(log.lines) == ["! ERROR disk full"]
        await pilot.press("plus", "plus")
        assert list(log.lines) == ["line 4", "line 5", "! ERROR disk full"]
        await pilot.press("f")  # pause following
        backend.containers["c1"].logs.append(("stdout", "error again"))
        await pilot.pause(0.8)
        assert "error again" not in list(log.lines)
        await pilot.press("f")
        await until(pilot, lambda: "error again" in list(log.lines))
        await pilot.press("i")
        await tick(app, pilot, 2)
        assert screen.active_tab == "stats"
        assert "of limit 0.50 cores" in text_of(screen.query_one("#label-cpu"))
        assert len(screen.query_one("#spark-cpu").data) > 0
        await pilot.press("d")
        await until(pilot, lambda: "specs/c1.yaml:1" in text_of(screen.query_one("#spec-yaml")))
        diff = text_of(screen.query_one("#spec-diff"))
        assert "drifted" in diff
        await pilot.press("v")
        assert screen.active_tab == "events"

    run(scenario, make_app(backend))


def test_too_small_terminal_shows_a_message_and_recovers():
    async def scenario(app, pilot):
        await pilot.resize_terminal(30, 8)
        await pilot.pause()
        assert app.screen.has_class("too-small")
        await pilot.resize_terminal(80, 24)
        await pilot.pause()
        assert not app.screen.has_class("too-small")

    run(scenario, size=(80, 24))


def test_help_and_events_screens_open_and_close():
    async def scenario(app, pilot):
        await pilot.press("question_mark")
        await until(pilot, lambda: isinstance(app.screen, HelpScreen))
        await pilot.press("escape")
        await pilot.press("e")
        await until(pilot, lambda: isinstance(app.screen, EventsScreen))
        await pilot.press("escape")
        await until(pilot, lambda: isinstance(app.screen, ContainersScreen))

    run(scenario)


# -- a fresh user's trial ----------------------------------------------------------------------

def test_markup_characters_in_filters_logs_and_processes_never_crash():
    backend = FakeBackend(fake_fleet(3, started=WALL))
    backend.containers["c1"].logs = [("stdout", "plain"), ("stderr", "[/red] not markup [b]x[/b]")]
    backend.procs["c1"] = [ProcInfo(1001, 1, "root", 0.0, 1 << 20, 1, "sleeping", "sh -c 'echo [/x] [b]y'", 5.0)]

    async def scenario(app, pilot):
        await pilot.press("slash", "[")
        summary = text_of(app.screen.query_one("#summary"))
        assert "filter /[/" in summary and "bad pattern" in summary  # said, not a silent 0 rows
        await pilot.press("/", "x", "]")  # "[/x]": a valid class (c3's "exit 0"), shown as typed
        assert "filter /[/x]/: 1 shown" in text_of(app.screen.query_one("#summary"))
        await pilot.press("escape")
        assert table(app).ordered_keys == ("c1", "c2", "c3")
        await pilot.press("home", "enter")  # c1: the processes tab, a command line with brackets
        await until(pilot, lambda: isinstance(app.screen, ContainerScreen))
        await tick(app, pilot)
        assert "[/x] [b]y" in str(app.screen.query_one("#procs").get_row_at(0)[-1])
        await pilot.press("l")
        log = app.screen.query_one("#log")
        await until(pilot, lambda: log.line_count == 2)
        await pilot.press("s")
        await pilot.press("slash", "[")
        status = text_of(app.screen.query_one("#log-status"))
        assert "filter /[/" in status and "bad pattern" in status
        await pilot.press("/", "r", "e", "d", "]", "enter")
        assert list(log.lines) == ["! [/red] not markup [b]x[/b]"]
        await pilot.press("escape")
        await until(pilot, lambda: isinstance(app.screen, ContainersScreen))
        await pilot.press("e")
        await until(pilot, lambda: isinstance(app.screen, EventsScreen))
        await pilot.press("slash", "[", "/")
        summary = text_of(app.screen.query_one("#events-summary"))
        assert "filter /[//" in summary and "bad pattern" in summary
        assert app.is_running

    run(scenario, make_app(backend))


def test_notifications_show_brackets_as_text():
    app = DctApp(FakeBackend(fake_fleet(3, started=WALL)), interval=3600)

    async def main() -> None:
        async with app.run_test(size=(100, 30), notifications=True) as pilot:
            app.notify("c1: pause failed: [/freezer] stuck [b]")
            await pilot.pause(0.2)
            assert app.is_running

    asyncio.run(main())


def test_leaving_the_logs_tab_releases_its_lines_and_coming_back_reads_the_tail_again():
    backend = FakeBackend(fake_fleet(3, started=WALL))

    async def scenario(app, pilot):
        await pilot.press("l")
        await until(pilot, lambda: isinstance(app.screen, ContainerScreen))
        screen = app.screen
        log = screen.query_one("#log")
        await until(pilot, lambda: log.line_count == 5)
        await pilot.press("i")  # the stats tab
        await pilot.pause()
        assert len(screen.logs) == 0 and log.line_count == 0
        await pilot.press("l")
        await until(pilot, lambda: log.line_count == 5)
        assert list(log.lines)[0] == "12-07 10:00:00.000 c1 line 0"

    run(scenario, make_app(backend))


def test_logs_tab_switches_to_the_previous_run_and_back_and_says_which_run_it_shows():
    backend = FakeBackend(fake_fleet(3, started=WALL))
    c1 = backend.containers["c1"]
    c1.run, c1.previous_logs = 4, [("stdout", "before the crash"), ("stderr", "panic: boom")]

    async def scenario(app, pilot):
        await pilot.press("l")
        await until(pilot, lambda: isinstance(app.screen, ContainerScreen))
        screen = app.screen
        log, status = screen.query_one("#log"), screen.query_one("#log-status")
        await until(pilot, lambda: log.line_count == 5)
        assert text_of(status).startswith("run 4 (current) · 5 lines") and "r: previous run" in text_of(status)
        await pilot.press("r")
        await until(pilot, lambda: log.line_count == 2)
        assert [line[19:] for line in log.lines] == ["before the crash", "! panic: boom"]
        assert text_of(status).startswith("run 3 (previous) · 2 lines") and "r: current run" in text_of(status)
        await pilot.press("s")
        assert list(log.lines) == ["before the crash", "! panic: boom"] and "s: times (UTC)" in text_of(status)
        c1.logs.append(("stdout", "only in the current run"))
        await pilot.pause(0.8)
        assert log.line_count == 2  # the previous run does not change
        await pilot.press("r")
        await until(pilot, lambda: log.line_count == 6)
        assert list(log.lines)[-1] == "only in the current run"  # times stay hidden
        assert text_of(status).startswith("run 4 (current)")
        c1.logs.append(("stderr", "after"))
        await until(pilot, lambda: log.line_count == 7)

    run(scenario, make_app(backend))


def test_logs_tab_says_when_there_is_no_previous_run():
    backend = FakeBackend(fake_fleet(3, started=WALL))

    async def scenario(app, pilot):
        await pilot.press("l")
        await until(pilot, lambda: isinstance(app.screen, ContainerScreen))
        await until(pilot, lambda: app.screen.query_one("#log").line_count == 5)
        await pilot.press("r")
        status = app.screen.query_one("#log-status")
        await until(pilot, lambda: text_of(status).startswith("no previous run (only run 0)"))
        assert app.screen.query_one("#log").line_count == 0

    run(scenario, make_app(backend))


def test_spec_yaml_follows_the_spec_file():
    first = DesiredView({"c1": DesiredEntry("c1", "in-sync", "running", desired={"name": "c1"})})
    backend = FakeBackend(fake_fleet(3, started=WALL), specs_given=True, desired_view=first)
    backend.spec_texts["c1"] = ("specs/c1.yaml:1", "name: c1\nstate: running\n")

    async def scenario(app, pilot):
        await pilot.press("enter", "d")
        await until(pilot, lambda: isinstance(app.screen, ContainerScreen))
        screen = app.screen
        await until(pilot, lambda: "state: running" in text_of(screen.query_one("#spec-yaml")))
        backend.spec_texts["c1"] = ("specs/c1.yaml:1", "name: c1\nstate: paused\n")
        backend.desired_view = DesiredView({"c1": DesiredEntry("c1", "drifted", "paused",
                                                               desired={"name": "c1", "state": "paused"})})
        app.collector.refresh_desired()
        await tick(app, pilot)
        await until(pilot, lambda: "state: paused" in text_of(screen.query_one("#spec-yaml")))

    run(scenario, make_app(backend))


@pytest.mark.parametrize("size", [(80, 24), (60, 20)])
def test_the_footer_reaches_the_last_column(size):
    async def scenario(app, pilot):
        key = app.screen.query_one("FooterKey.-command-palette")
        assert key.region.right == size[0]  # nothing of the keys behind it shows in the last column

    run(scenario, size=size)


def test_plan_without_specs_gives_the_reason_and_no_apply():
    backend = FakeBackend(fake_fleet(3, started=WALL),
                          plan_view=PlanView(errors=("no spec paths given: start with dct tui PATH…",)))

    async def scenario(app, pilot):
        await pilot.press("a")
        await until(pilot, lambda: isinstance(app.screen, PlanScreen) and app.screen.plan is not None)
        screen = app.screen
        assert "no spec paths given" in text_of(screen.query_one("#plan-body"))
        assert not screen.query_one("#apply").display
        hint = text_of(screen.query_one(".dialog-hint"))
        assert "apply" not in hint and "prune" not in hint
        await pilot.press("x", "y")
        await pilot.pause(0.1)
        assert backend.calls == [("plan", False)] and isinstance(app.screen, PlanScreen)

    run(scenario, make_app(backend))


def test_readonly_keys_say_why_they_do_nothing():
    backend = FakeBackend(fake_fleet(3, started=WALL))

    async def scenario(app, pilot):
        for key, what in (("p", "pause"), ("ctrl+k", "signal"), ("f9", "signal"), ("ctrl+d", "destroy")):
            app.notes.clear()
            await pilot.press(key)
            await pilot.pause()
            assert any(f"read-only: {what}" in m for m, _ in app.notes), key
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, ContainerScreen))
        for key, what in (("p", "pause"), ("ctrl+k", "signal"), ("ctrl+d", "destroy")):
            app.notes.clear()
            await pilot.press(key)
            await pilot.pause()
            assert any(f"read-only: {what}" in m for m, _ in app.notes), key
        assert backend.calls == []

    run(scenario, make_app(backend, readonly=True))


def test_pause_on_a_stopped_container_says_why():
    async def scenario(app, pilot):
        await pilot.press("down", "down")  # c3: stopped
        await pilot.press("p")
        await pilot.pause()
        assert any("c3" in m and "stopped" in m for m, _ in app.notes)

    run(scenario)


def test_j_and_k_move_in_the_pickers():
    async def scenario(app, pilot):
        await pilot.press("s")
        await until(pilot, lambda: isinstance(app.screen, SortScreen))
        await pilot.press("j", "j", "j", "k", "enter")  # name → status → pid → cpu → pid
        await until(pilot, lambda: isinstance(app.screen, ContainersScreen))
        assert app.screen.sort_key == "pid"
        await pilot.press("ctrl+k")
        await until(pilot, lambda: isinstance(app.screen, SignalScreen))
        await pilot.press("j", "j", "k", "enter")  # SIGTERM → SIGKILL → SIGHUP → SIGKILL
        await until(pilot, lambda: any(c[0] == "signal" for c in app.backend.calls))
        assert app.backend.calls[-1][2] == signal.SIGKILL

    run(scenario)


def test_process_state_is_shown_whole():
    backend = FakeBackend(fake_fleet(3, started=WALL))
    backend.procs["c1"] = [ProcInfo(1001, 1, "root", 0.0, 1 << 20, 1, "disk-sleep", "dd if=/dev/sda", 5.0),
                           ProcInfo(1002, 1001, "root", 0.0, 1 << 20, 1, "tracing-stop", "gdb -p 1", 5.0)]

    async def scenario(app, pilot):
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, ContainerScreen))
        await tick(app, pilot)
        shot = app.export_screenshot()
        assert "disk-sleep" in shot and "tracing-stop" in shot

    run(scenario, make_app(backend), size=(80, 24))


def test_a_missing_state_root_is_said():
    backend = FakeBackend(fake_fleet(0, started=WALL))
    backend.notices_now = ("no state root at /run/dct-nope (no container was made there yet)",)

    async def scenario(app, pilot):
        assert "no state root at /run/dct-nope" in text_of(app.screen.query_one("#summary"))
        assert any("no state root" in m and sev == "warning" for m, sev in app.notes)

    run(scenario, make_app(backend))


def test_spec_yaml_shows_without_a_desired_state_view():
    backend = FakeBackend(fake_fleet(3, started=WALL))  # no specs given: no desired-state view
    backend.spec_texts["c1"] = ("applied spec (from specs/c1.yaml)", "name: c1\n")

    async def scenario(app, pilot):
        await pilot.press("enter", "d")
        await until(pilot, lambda: isinstance(app.screen, ContainerScreen))
        await until(pilot, lambda: "applied spec" in text_of(app.screen.query_one("#spec-yaml")))

    run(scenario, make_app(backend))


def test_shell_suspends_the_app_and_runs_a_shell_in_the_container():
    """``x`` on the table and on the container screen: the app is suspended around the backend's
    shell (which owns the real terminal meanwhile); its exit is an event; stopped containers and a
    read-only app are refused without a call."""
    backend = FakeBackend(fake_fleet(3, started=WALL))
    backend.shell_exit = 3
    suspended = []

    async def scenario(app, pilot):
        @contextlib.contextmanager
        def suspend():  # the headless driver cannot suspend; record that the shell ran inside
            suspended.append("in")
            yield
            suspended.append("out")

        app.suspend = suspend
        await pilot.press("x")
        await until(pilot, lambda: ("shell", "c1", ("sh",)) in backend.calls)
        assert suspended == ["in", "out"]
        assert any("exited with 3" in e.text for e in app.events.for_container("c1"))
        await pilot.press("down", "down", "x")  # c3 is stopped
        await until(pilot, lambda: any("c3: a shell needs a running container" in m for m, _ in app.notes))
        assert [c for c in backend.calls if c[0] == "shell"] == [("shell", "c1", ("sh",))]
        await pilot.press("up", "up", "enter")
        await until(pilot, lambda: isinstance(app.screen, ContainerScreen))
        backend.errors["shell"] = ContainerError("exec failed: sh not found")
        await pilot.press("x")
        await until(pilot, lambda: any("shell failed: exec failed" in m for m, _ in app.notes))
        assert suspended == ["in", "out", "in", "out"] and app.is_running

    run(scenario, make_app(backend))


def test_shell_is_refused_when_read_only_or_not_suspendable():
    backend = FakeBackend(fake_fleet(3, started=WALL))

    async def scenario(app, pilot):
        await pilot.press("x")
        await until(pilot, lambda: any("read-only" in m for m, _ in app.notes))
        assert not any(c[0] == "shell" for c in backend.calls)

    run(scenario, make_app(backend, readonly=True))

    async def headless(app, pilot):  # the real suspend of a headless app: refused, said, no crash
        await pilot.press("x")
        await until(pilot, lambda: any("shell failed" in m for m, _ in app.notes))
        assert not any(c[0] == "shell" for c in backend.calls) and app.is_running

    run(headless, make_app(backend))
