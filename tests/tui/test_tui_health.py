"""Health in the TUI: the pure parts (tui/health.py: cell, sort key, events, probe history; the
model's HEALTH cell; the row filter) and, on the fake backend, the HEALTH column that appears once
a container declares a check, the unhealthy row's colours and the container screen's Health tab."""

from __future__ import annotations

from fake_backend import FakeBackend, FakeContainer, fake_fleet
from readings import WALL, reading
from declarative_ct.health.check import HealthCheck
from declarative_ct.units import format_time
from test_tui_app import make_app, run, text_of, tick, until
from tui.filters import row_matches
from tui.health import health_cell, health_events, health_sort, probe_history
from tui.model import Model
from tui.screens import UNHEALTHY_ROW
from tui.screens.container import ContainerScreen, health_renderable
from tui.screens.containers import row_styles

CHECK = HealthCheck("tcp", port=5432, interval=2, timeout=1, retries=3)


def _result(ago: float, code: int, output: str, took: float = 0.25) -> dict:
    return {"start": format_time(WALL - ago - took), "end": format_time(WALL - ago), "exit_code": code,
            "output": output}


def _health(status: str, streak: int = 0, *log: dict, stale: bool = False) -> dict:
    return {"status": status, "failing_streak": streak, "since": log[-1]["end"] if log else None,
            "check": CHECK.describe(), "log": list(log), "stale": stale}


SICK = _health("unhealthy", 3, _result(6, 0, "connected"), _result(4, 1, "refused"), _result(2, 1, "refused"),
               _result(0.4, 1, "line one\nline two\n"))
WELL = _health("healthy", 0, _result(1, 0, "connected"))


def test_cell_and_sort_key():
    assert health_cell(None) == "-" and health_cell(SICK) == "unhealthy (3)"
    assert health_cell(_health("starting")) == "starting" and health_cell({**WELL, "stale": True}) == "healthy?"
    keys = sorted([(health_sort(h), name) for name, h in
                   (("none", None), ("well", WELL), ("new", _health("starting")), ("sick", SICK),
                    ("sicker", {**SICK, "failing_streak": 9}))])
    assert [name for _, name in keys] == ["sicker", "sick", "new", "well", "none"]  # failing first, no check last


def test_model_row_shows_health_and_counts_the_unhealthy():
    m = Model()
    snap = m.update([reading("a", health=SICK, health_check=CHECK), reading("b", health=WELL), reading("c")],
                    now=1.0, wall=WALL)
    assert [snap.by_id[c].cells["health"] for c in "abc"] == ["unhealthy (3)", "healthy", "-"]
    assert [snap.by_id[c].health_status for c in "abc"] == ["unhealthy", "healthy", None]
    assert snap.unhealthy() == 1 and snap.health_shown()
    assert not m.update([reading("c")], now=2.0, wall=WALL).health_shown()


def test_health_changes_are_events_a_new_run_is_not():
    m = Model()
    m.update([reading("a", health=_health("starting"))], now=1.0, wall=WALL)
    events = m.update([reading("a", health=WELL)], now=2.0, wall=WALL).events
    assert [(e.text, e.level) for e in events] == [("health: starting → healthy", "info")]
    events = m.update([reading("a", health=SICK)], now=3.0, wall=WALL).events
    assert [(e.text, e.level) for e in events] == [("health: healthy → unhealthy (exit 1: line one ⏎ line two)",
                                                    "warning")]
    assert m.update([reading("a", health=SICK)], now=4.0, wall=WALL).events == ()
    events = m.update([reading("a", started=WALL - 1, health=_health("starting"))], now=5.0, wall=WALL).events
    assert [e.text for e in events] == ["new run (running)"]
    assert health_events(None, reading("a", health=SICK), WALL) == []


def test_the_filter_matches_health():
    m = Model()
    snap = m.update([reading("a", health=SICK), reading("b", health=WELL), reading("c")], now=1.0, wall=WALL)
    assert [r.id for r in snap.rows if row_matches(r, "unhealthy")] == ["a"]
    assert [r.id for r in snap.rows if row_matches(r, "!healthy")] == ["c"]  # unhealthy contains healthy


def test_unhealthy_rows_are_coloured_whole():
    m = Model()
    snap = m.update([reading("a", health=SICK), reading("b", health=WELL)], now=1.0, wall=WALL)
    sick, well = row_styles(snap.by_id["a"]), row_styles(snap.by_id["b"])
    assert all(UNHEALTHY_ROW in style for style in sick.values()) and "name" in sick and "pid" in sick
    assert sick["status"] == f"green {UNHEALTHY_ROW}" and sick["health"] == f"bold red {UNHEALTHY_ROW}"
    assert not any(UNHEALTHY_ROW in style for style in well.values()) and well["health"] == "green"


def test_probe_history():
    history = probe_history(SICK, CHECK, WALL)
    assert history.status == "unhealthy" and history.head.startswith("unhealthy (3) since ")
    assert history.head.endswith("(0s ago)") and history.check == "tcp :5432"
    assert history.timing == "every 2s, timeout 1s, 3 retries" and history.note == ""
    assert [(line.ago, line.took, line.exit_code, line.passed) for line in history.lines] == [
        ("0s ago", "250ms", 1, False), ("2s ago", "250ms", 1, False), ("4s ago", "250ms", 1, False),
        ("6s ago", "250ms", 0, True)]  # newest first
    assert history.lines[0].output == "line one ⏎ line two"
    assert "as of 1s ago" in probe_history({**WELL, "stale": True}, CHECK, WALL).note
    assert probe_history(_health("starting"), CHECK, WALL).note == "No probe yet."
    assert probe_history(_health("healthy", 2, _result(1, 0, "")), CHECK, WALL).head.startswith(
        "healthy, 2 failed in a row")
    assert probe_history(None, CHECK, WALL, "stopped").note == "No probe while stopped."
    assert probe_history(None, None, WALL).note.startswith("No health check declared")


def test_probe_output_is_never_markup():
    from rich.console import Console

    evil = _health("unhealthy", 3, _result(1, 1, "[bold red]not markup[/] [link=x]"))
    console = Console(width=100, record=True, color_system=None)
    console.print(health_renderable(probe_history(evil, CHECK, WALL)))
    assert "[bold red]not markup[/] [link=x]" in console.export_text()


def test_the_health_column_appears_once_a_container_declares_a_check():
    backend = FakeBackend(fake_fleet(3, started=WALL))

    async def scenario(app, pilot):
        table = app.screen.table
        assert "health" not in [c.key for c in table.columns]  # no check anywhere: no column
        backend.containers["c1"].health, backend.containers["c1"].health_check = SICK, CHECK
        await tick(app, pilot)
        keys = [c.key for c in table.columns]
        assert keys.index("health") == keys.index("status") + 1
        assert table.get_cell("c1", "health") == "unhealthy (3)" and table.get_cell("c2", "health") == "-"
        assert "1 unhealthy" in app.screen._summary_text
        backend.containers["c1"].health = WELL
        await tick(app, pilot)
        assert table.get_cell("c1", "health") == "healthy"
        assert any(e.text == "health: unhealthy → healthy" for e in app.events.for_container("c1"))
        backend.containers["c1"].health = None  # no longer declared: the column stays, the cell says -
        await tick(app, pilot)
        assert "health" in [c.key for c in table.columns] and table.get_cell("c1", "health") == "-"

    run(scenario, make_app(backend))


def test_the_health_tab_shows_the_probe_history():
    backend = FakeBackend([FakeContainer("db", started=WALL - 60, health=SICK, health_check=CHECK)])

    async def scenario(app, pilot):
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, ContainerScreen))
        await pilot.press("h")
        await until(pilot, lambda: app.screen.active_tab == "health")
        await tick(app, pilot)
        text = text_of(app.screen.query_one("#health-history"))
        assert "unhealthy (3) since" in text and "check: tcp :5432 (every 2s, timeout 1s, 3 retries)" in text
        assert [line.split()[-1] for line in text.splitlines() if "ago" in line and "since" not in line] == [
            "two", "refused", "refused", "connected"]  # newest first, one line each
        assert "running  unhealthy (3)  pid" in text_of(app.screen.query_one("#detail-summary"))

    run(scenario, make_app(backend))
