"""The containers screen: one live row per container, updated in place every refresh."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import Footer, Header, Input, Static

from ..columns import COLUMN_KEYS, COLUMNS, HEALTH_AFTER, SORTABLE
from ..filters import pattern_error, row_matches
from ..model import Row, Snapshot
from ..numbers import fmt_bytes, fmt_pct
from ..widgets import LiveTable, TableColumn
from . import DRIFT_STYLE, HEALTH_STYLE, STATUS_STYLE, UNHEALTHY_ROW, DctScreen

NUMERIC = {"pid", "cpu", "cpu_limit", "mem", "pids", "net", "uptime", "restarts"}


class ContainersScreen(DctScreen):
    """The table (row key = container id), a one-line summary, a filter input shown by ``/``.

    Rows are added, removed and updated in place (never rebuilt; only changed rows are drawn
    again), and the cursor stays on its container whatever the order (:class:`~tui.widgets.LiveTable`).
    """

    # Footer order = importance: at 80 columns the last ones are cut (? Help lists them all).
    BINDINGS = [
        Binding("question_mark", "app.help", "Help", key_display="?"),
        Binding("enter", "open", "Open", show=False),
        Binding("j", "cursor_down", "Down", show=False),
        Binding("k", "cursor_up", "Up", show=False),
        Binding("slash", "filter", "Filter", key_display="/"),
        Binding("s", "sort", "Sort"),
        Binding("S", "reverse", "Reverse", show=False),
        Binding("p", "pause", "Pause"),
        Binding("ctrl+k,f9", "signal", "Signal", key_display="^k"),
        Binding("ctrl+d", "destroy", "Destroy", key_display="^d"),
        Binding("x", "shell", "Shell", show=False),
        Binding("a", "app.plan", "Plan"),
        Binding("space", "mark", "Mark"),
        Binding("l", "logs", "Logs"),
        Binding("e", "app.events", "Events"),
        Binding("escape", "clear", "Clear", show=False),
    ]
    SORT_CHOICES = tuple((c.key, c.label) for c in COLUMNS if c.key in SORTABLE)

    def __init__(self) -> None:
        super().__init__()
        self.filter_text = ""
        self.sort_key = "name"
        self.sort_reverse = False
        self.marked: set[str] = set()
        self._shown: dict[str, dict[str, str]] = {}
        self._drift_shown: bool | None = None
        self._health_shown = False
        self._snapshot: Snapshot | None = None
        self._summary_text = ""
        self._rows: dict[str, Row] = {}

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static("starting…", id="summary")
        columns = [TableColumn(c.key, c.label, None if c.key == "name" else c.width, right=c.key in NUMERIC)
                   for c in COLUMNS if c.key not in ("drift", "health")]
        yield LiveTable(columns, fixed_columns=2, id="containers")
        yield Input(placeholder="filter: regex on name, status, drift, health (! inverts; esc clears)", id="filter")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.query_one("#filter", Input).display = False
        self.table.focus()
        if self.app.snapshot is not None:
            self.show_snapshot(self.app.snapshot)

    def on_screen_resume(self) -> None:
        self.app.collector.focus = None
        self.app.collector.want_processes = False
        if self.app.snapshot is not None:
            self.show_snapshot(self.app.snapshot)

    # -- rendering -----------------------------------------------------------------------
    @property
    def table(self) -> LiveTable:
        return self.query_one("#containers", LiveTable)

    def selected(self) -> str | None:
        """The container id under the cursor (None: empty table)."""
        return self.table.cursor_key

    def targets(self) -> list[str]:
        """The marked containers that are still shown, else the one under the cursor."""
        if self.marked:
            return sorted(cid for cid in self.marked if cid in self._shown)
        cid = self.selected()
        return [cid] if cid else []

    def show_snapshot(self, snap: Snapshot) -> None:
        self._snapshot = snap
        table = self.table
        if snap.specs_given and not self._drift_shown:
            col = next(c for c in COLUMNS if c.key == "drift")
            table.add_column(TableColumn("drift", col.label, col.width))
            self._drift_shown = True
            self._rows.clear()
        if not self._health_shown and snap.health_shown():  # once a container declares a check; stays
            col = next(c for c in COLUMNS if c.key == "health")
            keys = [c.key for c in table.columns]
            after = keys[keys.index(HEALTH_AFTER) + 1]
            table.add_column(TableColumn("health", col.label, col.width), before=after)
            self._health_shown = True
            self._rows.clear()
        visible = [r for r in snap.rows if row_matches(r, self.filter_text)]
        ids = {r.id for r in visible}
        reorder = False
        for cid in [c for c in self._shown if c not in ids]:
            table.remove_row(cid)
            del self._shown[cid]
        self.marked &= {r.id for r in snap.rows}
        last_rows = self._rows
        self._rows = {}
        for r in visible:
            self._rows[r.id] = r
            if last_rows.get(r.id) is r and r.id in self._shown:
                continue  # the very Row of the last tick: nothing changed
            cells = self._cells(r)
            styles = row_styles(r)
            old = self._shown.get(r.id)
            if old is None:
                table.add_row(r.id, cells, styles)
                reorder = True
            else:
                table.update_row(r.id, cells, styles)
                if old.get(self.sort_key) != cells.get(self.sort_key):
                    reorder = True
            self._shown[r.id] = cells
        if reorder:
            self._sort()
        self._summary(snap, len(visible))
        self.app.collector.visible = table.visible_keys()

    def on_live_table_row_highlighted(self, event: LiveTable.RowHighlighted) -> None:
        self.app.collector.visible = self.table.visible_keys()
        self.refresh_bindings()

    def _cells(self, r: Row) -> dict[str, str]:
        cells = dict(r.cells)
        cells["mark"] = "*" if r.id in self.marked else ""
        return cells

    def _sort(self) -> None:
        snap = self._snapshot
        key = self.sort_key

        reverse = self.sort_reverse

        def sort_key(name: str) -> tuple:
            row = snap.by_id.get(name) if snap else None
            k = row.sort[key] if row is not None else (1, 0)
            # (0, value) for known values, (1, 0) for unknown ones: those stay last either way
            return (k[0], _Descending(k[1:]) if reverse else k[1:], name)

        self.table.sort(sort_key)

    def _summary(self, snap: Snapshot, shown: int) -> None:
        counts = snap.counts()
        parts = [f"{len(snap.rows)} containers"]
        parts += [f"{n} {s}" for s, n in sorted(counts.items())]
        if snap.unhealthy():
            parts.append(f"{snap.unhealthy()} unhealthy")
        parts += snap.notices
        if self.filter_text:
            error = pattern_error(self.filter_text.removeprefix("!"))
            parts.append(f"filter /{self.filter_text}/: " + (f"bad pattern ({error}), matched as text: {shown} shown"
                                                              if error else f"{shown} shown"))
        if self.marked:
            parts.append(f"{len(self.marked)} marked")
        label = next(lbl for k, lbl in self.SORT_CHOICES if k == self.sort_key)
        parts.append(f"sort {label.lower() or self.sort_key}{' ↓' if self.sort_reverse else ''}")
        if snap.self_cpu is not None:
            parts.append(f"tui {fmt_pct(snap.self_cpu)} cpu {fmt_bytes(snap.self_rss)}")
        if self.app.readonly:
            parts.append("READ-ONLY")
        text = " · ".join(parts)
        if text != self._summary_text:  # one line, fixed size: no layout pass (it would redraw everything)
            self._summary_text = text
            self.query_one("#summary", Static).update(Text(text), layout=False)  # text, never markup

    # -- keys ----------------------------------------------------------------------------
    def on_live_table_row_selected(self, event: LiveTable.RowSelected) -> None:
        event.stop()
        self.app.open_container(event.key)

    def on_live_table_header_selected(self, event: LiveTable.HeaderSelected) -> None:
        event.stop()
        if event.column in SORTABLE:
            self.sort_by(event.column)

    def action_open(self) -> None:
        cid = self.selected()
        if cid:
            self.app.open_container(cid)

    def action_logs(self) -> None:
        cid = self.selected()
        if cid:
            self.app.open_container(cid, "logs")

    def action_cursor_down(self) -> None:
        self.table.action_cursor_down()

    def action_cursor_up(self) -> None:
        self.table.action_cursor_up()

    def action_mark(self) -> None:
        cid = self.selected()
        if not cid:
            return
        self.marked ^= {cid}
        self.table.update_row(cid, {"mark": "*" if cid in self.marked else ""})
        if cid in self._shown:
            self._shown[cid]["mark"] = "*" if cid in self.marked else ""
        self.table.action_cursor_down()
        if self._snapshot is not None:
            self._summary(self._snapshot, len(self._shown))
        self.refresh_bindings()

    def action_clear(self) -> None:
        if self.filter_text or self.query_one("#filter", Input).display:
            self.set_filter("")
        elif self.marked:
            for cid in list(self.marked):
                if cid in self._shown:
                    self.table.update_row(cid, {"mark": ""})
                    self._shown[cid]["mark"] = ""
            self.marked.clear()
            if self._snapshot is not None:
                self._summary(self._snapshot, len(self._shown))

    def action_filter(self) -> None:
        box = self.query_one("#filter", Input)
        box.display = True
        box.value = self.filter_text
        box.focus()

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input.id == "filter":
            self.set_filter(event.value, keep_input=True)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id == "filter":
            event.input.display = bool(self.filter_text)
            self.table.focus()

    def set_filter(self, text: str, keep_input: bool = False) -> None:
        """Filter the rows (:func:`~tui.model.row_matches`); '' shows every row."""
        self.filter_text = text
        box = self.query_one("#filter", Input)
        if not keep_input:
            box.value = text
            box.display = bool(text)
            self.table.focus()
        if self._snapshot is not None:
            self.show_snapshot(self._snapshot)

    def action_sort(self) -> None:
        from .modals import SortScreen

        def chosen(key: str | None) -> None:
            if key:
                self.sort_by(key)

        self.app.push_screen(SortScreen(self.SORT_CHOICES, self.sort_key), chosen)

    def sort_by(self, key: str) -> None:
        """Sort by column ``key``; the same column again reverses the order. The cursor stays on its container."""
        if key == self.sort_key:
            self.sort_reverse = not self.sort_reverse
        else:
            self.sort_key = key
            self.sort_reverse = key in ("cpu", "cpu_limit", "mem", "pids", "net", "restarts")  # biggest first
        self._sort()
        if self._snapshot is not None:
            self._summary(self._snapshot, len(self._shown))

    def action_reverse(self) -> None:
        self.sort_by(self.sort_key)

    def action_pause(self) -> None:
        self.app.pause_or_resume(self.targets())

    def action_signal(self) -> None:
        self.app.ask_signal(self.targets())

    def action_destroy(self) -> None:
        self.app.ask_destroy(self.targets())

    def action_shell(self) -> None:
        self.app.open_shell(self.selected())


def row_styles(r: Row) -> dict[str, str]:
    """The cell styles of a row: status, drift and health coloured; an unhealthy container's whole
    row on a dark red background (the HEALTH cell says it in words too)."""
    styles = {"status": STATUS_STYLE.get(r.status, ""), "drift": DRIFT_STYLE.get(r.drift or "", "dim"),
              "health": HEALTH_STYLE.get(r.health_status or "", "dim")}
    if r.health_status == "unhealthy":
        styles = {key: f"{styles.get(key, '')} {UNHEALTHY_ROW}".strip() for key in COLUMN_KEYS}
    return styles


class _Descending:
    """Wraps a sort key to order it the other way round (a descending key inside an ascending sort)."""

    __slots__ = ("value",)

    def __init__(self, value: object) -> None:
        self.value = value

    def __lt__(self, other: "_Descending") -> bool:
        return other.value < self.value

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Descending) and other.value == self.value
