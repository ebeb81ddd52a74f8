"""The containers screen: one live row per container, updated in place every refresh."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import DataTable, Footer, Header, Input, Static

from ..model import COLUMNS, SORTABLE, Row, Snapshot, fmt_bytes, fmt_pct, row_matches
from . import DctScreen, cell_text

NUMERIC = {"pid", "cpu", "cpu_limit", "mem", "pids", "net", "uptime", "restarts"}


class ContainersScreen(DctScreen):
    """The table (row key = container id), a one-line summary, a filter input shown by ``/``.

    Rows are added, removed and updated cell by cell (never rebuilt), so the cursor stays on its
    container; sorting remembers the container under the cursor and moves back to it.
    """

    BINDINGS = [
        Binding("enter", "open", "Open", show=True),
        Binding("j", "cursor_down", "Down", show=False),
        Binding("k", "cursor_up", "Up", show=False),
        Binding("slash", "filter", "Filter", key_display="/"),
        Binding("s", "sort", "Sort"),
        Binding("S", "reverse", "Reverse", show=False),
        Binding("space", "mark", "Mark"),
        Binding("p", "pause", "Pause/resume"),
        Binding("ctrl+k,f9", "signal", "Signal", key_display="^k"),
        Binding("ctrl+d", "destroy", "Destroy", key_display="^d"),
        Binding("l", "logs", "Logs"),
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
        self._snapshot: Snapshot | None = None

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static("starting…", id="summary")
        table = DataTable(id="containers", cursor_type="row", zebra_stripes=False, fixed_columns=2, cell_padding=1)
        yield table
        yield Input(placeholder="filter: regex on name, status, drift (! inverts; esc clears)", id="filter")
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        for col in COLUMNS:
            if col.key == "drift":
                continue  # added when specs were given
            table.add_column(col.label, key=col.key, width=None if col.key == "name" else col.width)
        self.query_one("#filter", Input).display = False
        table.focus()
        if self.app.snapshot is not None:
            self.show_snapshot(self.app.snapshot)

    def on_screen_resume(self) -> None:
        self.app.collector.focus = None
        self.app.collector.want_processes = False
        if self.app.snapshot is not None:
            self.show_snapshot(self.app.snapshot)

    # -- rendering -----------------------------------------------------------------------
    @property
    def table(self) -> DataTable:
        return self.query_one("#containers", DataTable)

    def selected(self) -> str | None:
        """The container id under the cursor (None: empty table)."""
        table = self.table
        if not table.row_count:
            return None
        try:
            return table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        except Exception:  # noqa: BLE001 - cursor outside the rows
            return None

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
            table.add_column(col.label, key="drift", width=col.width)
            self._drift_shown = True
            self._shown.clear()
            table.clear()
        cursor = self.selected()
        visible = [r for r in snap.rows if row_matches(r, self.filter_text)]
        ids = {r.id for r in visible}
        changed_order = False
        sort_changed = False
        for cid in [c for c in self._shown if c not in ids]:
            table.remove_row(cid)
            del self._shown[cid]
            changed_order = True
        self.marked &= {r.id for r in snap.rows}
        for r in visible:
            cells = self._cells(r)
            old = self._shown.get(r.id)
            if old is None:
                table.add_row(*(self._cell_renderable(k, cells[k], r) for k in self._keys()), key=r.id)
                changed_order = True
            else:
                for k in self._keys():
                    if old[k] != cells[k]:
                        table.update_cell(r.id, k, self._cell_renderable(k, cells[k], r), update_width=k == "name")
                        if k == self.sort_key:
                            sort_changed = True
            self._shown[r.id] = cells
        if changed_order or sort_changed:
            self._sort(cursor)
        self._summary(snap, len(visible))

    def _keys(self) -> list[str]:
        return [c.key for c in COLUMNS if c.key != "drift" or self._drift_shown]

    def _cells(self, r: Row) -> dict[str, str]:
        cells = dict(r.cells)
        cells["mark"] = "*" if r.id in self.marked else ""
        return cells

    @staticmethod
    def _cell_renderable(key: str, value: str, r: Row) -> Text | str:
        return cell_text(key, value, r.status, r.drift, right=key in NUMERIC)

    def _sort(self, keep: str | None) -> None:
        table = self.table
        snap = self._snapshot
        key = self.sort_key

        def sort_key(name: str) -> tuple:
            row = snap.by_id.get(name) if snap else None
            return row.sort[key] if row is not None else (1, 0)

        table.sort("name", key=sort_key, reverse=self.sort_reverse)
        if keep is not None and keep in self._shown:
            table.move_cursor(row=table.get_row_index(keep), animate=False)

    def _summary(self, snap: Snapshot, shown: int) -> None:
        counts = snap.counts()
        parts = [f"{len(snap.rows)} containers"]
        parts += [f"{n} {s}" for s, n in sorted(counts.items())]
        if self.filter_text:
            parts.append(f"filter /{self.filter_text}/: {shown} shown")
        if self.marked:
            parts.append(f"{len(self.marked)} marked")
        label = next(lbl for k, lbl in self.SORT_CHOICES if k == self.sort_key)
        parts.append(f"sort {label.lower() or self.sort_key}{' ↓' if self.sort_reverse else ''}")
        if snap.self_cpu is not None:
            parts.append(f"tui {fmt_pct(snap.self_cpu)} cpu {fmt_bytes(snap.self_rss)}")
        if self.app.readonly:
            parts.append("READ-ONLY")
        self.query_one("#summary", Static).update(" · ".join(parts))

    # -- keys ----------------------------------------------------------------------------
    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in ("pause", "signal", "destroy") and self.app.readonly:
            return None  # shown dimmed, refused
        if action == "pause":
            cid = self.selected()
            status = self.app.status_of(cid) if cid else None
            return True if self.marked or status in ("running", "created", "paused", "pausing") else None
        return True

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        if event.row_key.value is not None:
            self.app.open_container(event.row_key.value)

    def on_data_table_header_selected(self, event: DataTable.HeaderSelected) -> None:
        event.stop()
        key = event.column_key.value
        if key in SORTABLE:
            self.sort_by(key)

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
        self.table.update_cell(cid, "mark", "*" if cid in self.marked else "")
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
                    self.table.update_cell(cid, "mark", "")
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
        self._sort(self.selected())
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
