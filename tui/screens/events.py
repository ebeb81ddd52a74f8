"""The event timeline: status changes seen, the reconciler's journal, actions taken here, apply progress."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import Footer, Header, Input, Log, Static

from ..filters import compile_filter, pattern_error
from ..timeline import fmt_event
from . import DctScreen


class EventsScreen(DctScreen):
    """Every event, newest last; ``/`` filters (regex on the whole line), ``esc`` goes back."""

    BINDINGS = [Binding("escape", "back", "Back"), Binding("slash", "filter", "Filter", key_display="/")]

    def __init__(self) -> None:
        super().__init__()
        self.pattern = ""
        self._shown = -1

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static("", id="events-summary")
        yield Log(id="all-events", max_lines=5000, auto_scroll=True)
        yield Input(placeholder="filter: regex (esc: done)", id="events-filter")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.sub_title = "events"
        self.query_one("#events-filter", Input).display = False
        self.query_one(Log).focus()
        self.show_events()

    def show_snapshot(self, snap) -> None:
        self.show_events()

    def show_events(self, force: bool = False) -> None:
        events = self.app.events.for_container()
        if len(events) == self._shown and not force:
            return
        rx = compile_filter(self.pattern)
        lines = [fmt_event(e) for e in events]
        if rx is not None:
            lines = [line for line in lines if rx.search(line)]
        log = self.query_one(Log)
        log.clear()
        log.write_lines(lines or ["(no events yet)"])
        self._shown = len(events)
        summary = f"{len(events)} events"
        if self.pattern:
            error = pattern_error(self.pattern)
            summary += f" · filter /{self.pattern}/: " + (f"bad pattern ({error}), matched as text: " if error else "")
            summary += f"{len(lines)} shown"
        self.query_one("#events-summary", Static).update(Text(summary), layout=False)  # text, never markup

    def action_filter(self) -> None:
        box = self.query_one("#events-filter", Input)
        box.display = True
        box.focus()

    def on_input_changed(self, event: Input.Changed) -> None:
        self.pattern = event.value
        self.show_events(force=True)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.input.display = bool(self.pattern)
        self.query_one(Log).focus()

    def action_back(self) -> None:
        box = self.query_one("#events-filter", Input)
        if box.has_focus:
            box.display = bool(self.pattern)
            self.query_one(Log).focus()
            return
        self.app.pop_screen()
