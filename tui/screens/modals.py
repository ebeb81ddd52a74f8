"""Modal screens: confirm, signal picker, sort picker, plan → apply, help."""

from __future__ import annotations

from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, LoadingIndicator, OptionList, Static
from textual.widgets.option_list import Option

from declarative_ct.reconcile.kinds import ActionKind

from ..backend import SIGNALS, Backend
from ..columns import COLUMNS
from ..desired import PlanView, group_actions

KIND_STYLE = {ActionKind.CREATE: "green", ActionKind.RECREATE: "magenta", ActionKind.LIVE: "cyan",
              ActionKind.LIFECYCLE: "yellow", ActionKind.SIGNAL: "blue", ActionKind.DESTROY: "red",
              ActionKind.PRUNE: "red"}


class ConfirmScreen(ModalScreen[bool]):
    """A yes/no question; ``y`` or the confirm button says yes, ``n``/``esc`` or Cancel says no (the default)."""

    BINDINGS = [Binding("y", "answer(True)", "Yes"), Binding("n,escape", "answer(False)", "No")]

    def __init__(self, title: str, body: str, confirm: str = "OK") -> None:
        super().__init__()
        self.title_text, self.body, self.confirm = title, body, confirm

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Static(Text(self.title_text, style="bold"), classes="dialog-title")
            yield Static(Text(self.body), classes="dialog-body")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Cancel (n)", id="no", variant="primary")
                yield Button(f"{self.confirm} (y)", id="yes", variant="error")

    def on_mount(self) -> None:
        self.query_one("#no", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "yes")

    def action_answer(self, yes: bool) -> None:
        self.dismiss(yes)


class PickerScreen(ModalScreen):
    """A modal with one ``OptionList``: ``j``/``k`` move in it as the arrows do, ``esc`` cancels (None)."""

    BINDINGS = [Binding("escape", "cancel", "Cancel"), Binding("j", "cursor_down", "Down", show=False),
                Binding("k", "cursor_up", "Up", show=False)]

    def action_cursor_down(self) -> None:
        self.query_one(OptionList).action_cursor_down()

    def action_cursor_up(self) -> None:
        self.query_one(OptionList).action_cursor_up()

    def action_cancel(self) -> None:
        self.dismiss(None)


class SignalScreen(PickerScreen):
    """Pick a signal (htop's signal menu): returns its number, or None on ``esc``."""

    def __init__(self, target: str) -> None:
        super().__init__()
        self.target = target

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Static(Text(f"Send a signal to {self.target}", style="bold"), classes="dialog-title")
            yield OptionList(*(Option(f"{num:>2} {name}", id=name) for name, num in SIGNALS), id="signals")
            yield Static("enter: send · esc: cancel", classes="dialog-hint")

    def on_mount(self) -> None:
        self.query_one(OptionList).focus()

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(dict(SIGNALS)[event.option.id])


class SortScreen(PickerScreen):
    """Pick the sort column; the current one is highlighted (choosing it again reverses the order)."""

    def __init__(self, choices: tuple[tuple[str, str], ...], current: str) -> None:
        super().__init__()
        self.choices, self.current = choices, current

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Static(Text("Sort by", style="bold"), classes="dialog-title")
            yield OptionList(*(Option(label or key, id=key) for key, label in self.choices), id="sort-choices")
            yield Static("enter: sort (the current column again: reverse) · esc: cancel", classes="dialog-hint")

    def on_mount(self) -> None:
        options = self.query_one(OptionList)
        keys = [k for k, _ in self.choices]
        if self.current in keys:
            options.highlighted = keys.index(self.current)
        options.focus()

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(event.option.id)


class PlanScreen(ModalScreen[PlanView | None]):
    """The plan for the specs, grouped by class; ``y``/Apply returns it (the app applies it), ``x``
    plans again with prune toggled, ``esc`` returns None. Planning runs in a worker."""

    BINDINGS = [Binding("y", "apply", "Apply"), Binding("x", "toggle_prune", "Prune on/off"),
                Binding("escape,n", "cancel", "Cancel")]

    def __init__(self, backend: Backend, prune: bool = False) -> None:
        super().__init__()
        self.backend = backend
        self.prune = prune
        self.plan: PlanView | None = None

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog wide"):
            yield Static(Text("Plan", style="bold"), classes="dialog-title", id="plan-title")
            yield LoadingIndicator(id="plan-loading")
            with VerticalScroll(id="plan-scroll"):
                yield Static("", id="plan-body")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Cancel (esc)", id="cancel", variant="primary")
                yield Button("Apply (y)", id="apply", variant="warning", disabled=True)
            yield Static("y: apply · x: prune on/off · esc: cancel", classes="dialog-hint", id="plan-hint")

    def on_mount(self) -> None:
        self._make_plan()

    @work(thread=True, group="plan", exclusive=True, exit_on_error=False)
    def _make_plan(self) -> None:
        try:
            plan = self.backend.plan(prune=self.prune)
        except Exception as err:  # noqa: BLE001
            plan = PlanView(errors=(f"planning failed: {err}",), prune=self.prune)
        try:
            self.app.call_from_thread(self._show, plan)
        except RuntimeError:
            pass

    @property
    def cannot_plan(self) -> bool:
        """The plan came back with errors only (no spec paths, invalid specs): nothing to apply or prune."""
        return self.plan is not None and bool(self.plan.errors) and not self.plan.actions

    def _show(self, plan: PlanView) -> None:
        self.plan = plan
        self.query_one("#plan-loading").display = False
        if self.cannot_plan:
            title, hint = "Plan: cannot plan", "esc: close"
        else:
            title = f"Plan: {len(plan.actions)} action(s){' (prune on)' if plan.prune else ''}"
            hint = "y: apply · x: prune on/off · esc: cancel" if plan.actions else "x: prune on/off · esc: close"
        self.query_one("#plan-title", Static).update(Text(title, style="bold"))
        self.query_one("#plan-hint", Static).update(Text(hint))
        self.query_one("#plan-body", Static).update(plan_renderable(plan))
        apply = self.query_one("#apply", Button)
        apply.display = bool(plan.actions)
        apply.disabled = not plan.actions
        self.refresh_bindings()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "apply":
            return True if self.plan is not None and self.plan.actions else False
        if action == "toggle_prune":
            return not self.cannot_plan
        return True

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "apply":
            self.action_apply()
        else:
            self.dismiss(None)

    def action_apply(self) -> None:
        if self.plan is not None and self.plan.actions:
            self.dismiss(self.plan)

    def action_toggle_prune(self) -> None:
        self.prune = not self.prune
        self.plan = None
        self.query_one("#apply", Button).disabled = True
        self.query_one("#plan-loading").display = True
        self._make_plan()

    def action_cancel(self) -> None:
        self.dismiss(None)


def plan_renderable(plan: PlanView):
    """The plan grouped by class (create, recreate, live, lifecycle, signal, destroy, prune), then notes and errors."""
    parts: list = []
    if not plan.actions and not plan.errors:
        parts.append(Text("Nothing to do: the containers match the specs.", style="green"))
    for kind, actions in group_actions(plan.actions):
        parts.append(Text(f"{kind} ({len(actions)})", style=f"bold {KIND_STYLE.get(kind, '')}"))
        table = Table(box=None, show_header=False, pad_edge=False, expand=False)
        table.add_column(no_wrap=True)
        table.add_column()
        for a in actions:
            steps = " → ".join(a.get("steps", ()))
            table.add_row(Text(f"  {a['container']}"), Text(f"{a.get('cause', '')}  ({steps})"))
        parts.append(table)
    for note in plan.notes:
        parts.append(Text(f"# {note}", style="dim"))
    for err in plan.errors:
        parts.append(Text(f"error: {err}", style="bold red"))
    return Group(*parts)


HELP_KEYS = (
    ("Containers", (("↑ ↓ j k", "move"), ("enter", "open the container (processes, stats, logs, spec, events)"),
                    ("/", "filter rows (regex on name, status, drift, health; ! inverts); esc clears"),
                    ("s / S", "sort by a column (again: reverse) / reverse"),
                    ("space", "mark (actions apply to all marked)"),
                    ("p", "pause a running container, resume a paused one"),
                    ("ctrl+k / F9", "signal picker (init; on the processes tab: the chosen process)"),
                    ("ctrl+d", "destroy (asks first)"), ("x", "shell into the container (exit returns here)"),
                    ("l", "logs"), ("a", "plan → apply (asks first)"),
                    ("e", "event timeline"), ("ctrl+p", "command palette: every action"), ("q", "quit"))),
    ("Container", (("t i l h d v / [ ]", "tabs: processes, stats, logs, health, spec, events / previous, next"),
                   ("/ f + -", "logs: filter, follow/pause, context lines"),
                   ("s r", "logs: times on/off, the previous run (before a restart) / the current one"),
                   ("esc", "back"))),
)


class HelpScreen(ModalScreen[None]):
    """Keys and the meaning of every column (how each number is computed)."""

    BINDINGS = [Binding("escape,q,question_mark", "close", "Close")]

    def __init__(self, readonly: bool = False, specs_given: bool = False) -> None:
        super().__init__()
        self.readonly, self.specs_given = readonly, specs_given

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog wide"):
            yield Static(Text("Help", style="bold"), classes="dialog-title")
            with VerticalScroll():
                yield Static(help_renderable(self.readonly, self.specs_given))
            yield Static("esc: close", classes="dialog-hint")

    def action_close(self) -> None:
        self.dismiss(None)


def help_renderable(readonly: bool, specs_given: bool):
    parts: list = []
    if readonly:
        parts.append(Text("Read-only: pause, signal, destroy and apply are refused.", style="bold yellow"))
    for title, keys in HELP_KEYS:
        parts.append(Text(title, style="bold"))
        table = Table(box=None, show_header=False, pad_edge=False)
        table.add_column(style="bold", no_wrap=True)
        table.add_column()
        for key, what in keys:
            table.add_row(Text(f"  {key}"), Text(what))
        parts.append(table)
    parts.append(Text("Columns", style="bold"))
    table = Table(box=None, show_header=False, pad_edge=False)
    table.add_column(style="bold", no_wrap=True)
    table.add_column()
    for c in COLUMNS:
        if c.key == "drift" and not specs_given:
            continue
        table.add_row(Text(f"  {c.label or '*'}"), Text(c.help))
    parts.append(table)
    return Group(*parts)
