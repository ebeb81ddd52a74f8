"""The container screen: tabs for processes, stats, logs, health (the probe history), spec (and its
diff) and events of one container."""

# Size: one screen, six tabs (processes, stats, logs, health, spec, events) of one container; its pure parts:
# stats_tab, logs, health.

from __future__ import annotations

from rich.console import Group
from rich.highlighter import Highlighter
from rich.syntax import Syntax
from rich.table import Table
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.widgets import DataTable, Footer, Header, Input, Log, Static, TabbedContent, TabPane

from ..backend import LogCursor
from ..charts import BarChart
from ..desired import spec_diff
from ..filters import filter_lines, pattern_error
from ..health import probe_history
from ..logs import LOG_LINES, LogBuffer, line_styles
from ..model import Row, Snapshot
from ..numbers import fmt_bytes, fmt_pct
from ..processes import tree_label
from ..stats_tab import STAT_ROWS, spark_data, spark_top, stat_labels
from ..timeline import fmt_event
from . import DRIFT_STYLE, HEALTH_STYLE, STATUS_STYLE, DctScreen

TABS = ("processes", "stats", "logs", "health", "spec", "events")
_NOT_LOADED = object()
LOG_POLL = 0.5  # seconds between reads of the log files while following
PROC_COLUMNS = (("pid", "PID", 7), ("user", "USER", 8), ("cpu", "CPU%", 6), ("rss", "RSS", 7),
                ("threads", "THR", 4), ("state", "STATE", 12), ("command", "COMMAND", None))
"""``(key, header, width)``; STATE is as wide as psutil's longest status (``tracing-stop``)."""


class LogHighlighter(Highlighter):
    """The logs tab's look (:func:`~tui.logs.line_styles`): times dim, stderr red, notes in italics."""

    def highlight(self, text: Text) -> None:
        for start, end, style in line_styles(text.plain):
            text.stylize(style, start, end)


class ContainerScreen(DctScreen):
    """One container; the collector focuses on it (history, processes) while this screen is up."""

    BINDINGS = [
        Binding("escape", "back", "Back"),
        Binding("question_mark", "app.help", "Help", key_display="?"),
        Binding("p", "pause", "Pause"),
        Binding("ctrl+k,f9", "signal", "Signal", key_display="^k"),
        Binding("ctrl+d", "destroy", "Destroy", key_display="^d"),
        Binding("x", "shell", "Shell", show=False),
        Binding("t", "tab('processes')", "Procs", show=False),
        Binding("i", "tab('stats')", "Stats", show=False),
        Binding("l", "tab('logs')", "Logs"),
        Binding("h", "tab('health')", "Health", show=False),
        Binding("d", "tab('spec')", "Spec", show=False),
        Binding("v", "tab('events')", "Events", show=False),
        Binding("right_square_bracket", "next_tab", "Next tab", key_display="]"),
        Binding("left_square_bracket", "prev_tab", "Prev tab", show=False),
        Binding("j", "cursor_down", "Down", show=False),
        Binding("k", "cursor_up", "Up", show=False),
        Binding("slash", "log_filter", "Filter", key_display="/"),
        Binding("f", "follow", "Follow"),
        Binding("s", "timestamps", "Times"),
        Binding("r", "switch_run", "Prev/cur run"),
        Binding("plus,equals_sign", "context(1)", "+ctx", show=False),
        Binding("minus", "context(-1)", "-ctx", show=False),
    ]

    def __init__(self, container_id: str, tab: str = "processes") -> None:
        super().__init__()
        self.container_id = container_id
        self.initial_tab = tab if tab in TABS else "processes"
        self.following = True
        self.log_pattern = ""
        self.log_context = 0
        self.logs = LogBuffer()
        self.previous_run = False  # the logs tab shows the run before the latest
        self._cursor = LogCursor()
        self._log_reading = False
        self._proc_order: list[str] = []
        self._proc_cells: dict[str, tuple] = {}
        self._events_shown = -1
        self._log_generation = 0  # bumped when the logs are released: a read begun before is dropped
        self._log_seen: tuple[int | None, str] = (None, "")  # the cursor's run and note last shown
        self._spec_seen: object = _NOT_LOADED  # the desired-state view the spec text was loaded for
        self._spec_text: tuple[str, str] | None | bool = False  # the text shown (False: none yet)
        self._row: Row | None = None
        self.spec_title: str | None = None  # the spec shown in the spec tab (None: not loaded yet)

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static(Text(self.container_id), id="detail-summary")
        with TabbedContent(initial=self.initial_tab, id="tabs"):
            with TabPane("Processes", id="processes"):
                yield DataTable(id="procs", cursor_type="row", cell_padding=1)
            with TabPane("Stats", id="stats"):
                with VerticalScroll():
                    for key, _ in STAT_ROWS:
                        yield Static("", id=f"label-{key}", classes="stat-label")
                        yield BarChart(id=f"spark-{key}", classes="stat-spark")
            with TabPane("Logs", id="logs"):
                yield Static("", id="log-status")
                yield Log(id="log", max_lines=LOG_LINES, auto_scroll=True, highlight=True)
                yield Input(placeholder="filter: regex (esc: done); +/- context lines", id="log-filter")
            with TabPane("Health", id="health"):
                with VerticalScroll():
                    yield Static("", id="health-history")
            with TabPane("Spec", id="spec"):
                with VerticalScroll():
                    yield Static("", id="spec-diff")
                    yield Static("", id="spec-yaml")
            with TabPane("Events", id="events"):
                yield Log(id="events-log", max_lines=2000, auto_scroll=True)
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.sub_title = self.container_id
        table = self.query_one("#procs", DataTable)
        for key, label, width in PROC_COLUMNS:
            table.add_column(label, key=key, width=width)
        self.query_one("#log-filter", Input).display = False
        self.query_one("#log", Log).highlighter = LogHighlighter()
        self.app.collector.focus = self.container_id
        self.app.collector.want_processes = True
        self.app.collector.visible = set()  # the table is hidden: only this container every tick
        self.app.refresh_now()
        self.set_interval(LOG_POLL, self._poll_logs)
        self._poll_logs()
        self._log_status()
        if self.app.snapshot is not None:
            self.show_snapshot(self.app.snapshot)
        self._on_tab(self.initial_tab)

    def on_screen_resume(self) -> None:
        self.app.collector.focus = self.container_id
        self.app.collector.want_processes = True
        self.app.collector.visible = set()

    @property
    def active_tab(self) -> str:
        return self.query_one("#tabs", TabbedContent).active

    def on_tabbed_content_tab_activated(self, event: TabbedContent.TabActivated) -> None:
        self._on_tab(event.pane.id)

    def _on_tab(self, tab: str | None) -> None:
        if tab != "logs":
            self._release_logs()
        if tab == "processes":
            self.query_one("#procs", DataTable).focus()
        elif tab == "logs":
            self.query_one("#log", Log).focus()
            self._poll_logs()
        elif tab == "spec":
            self._spec_seen = _NOT_LOADED  # loaded afresh by the snapshot below
            if self.app.snapshot is None:
                self._load_spec()
        elif tab == "events":
            self.show_events()
        if self.app.snapshot is not None:
            self.show_snapshot(self.app.snapshot)
        self.refresh_bindings()

    # -- snapshot ------------------------------------------------------------------------
    def show_snapshot(self, snap: Snapshot) -> None:
        row = snap.by_id.get(self.container_id)
        self._row = row
        self._summary(row, snap)
        tab = self.active_tab
        if tab == "processes" and snap.focus == self.container_id and snap.processes is not None:
            self._show_processes(snap)
        elif tab == "stats":
            self._show_stats(row, snap)
        elif tab == "health":
            self._show_health(row, snap)
        elif tab == "spec":
            self._show_diff(snap)
            if snap.desired is not self._spec_seen:  # a desired-state pass ran: the spec file may have moved
                self._spec_seen = snap.desired
                self._load_spec()
        elif tab == "events":
            self.show_events()

    def _summary(self, row: Row | None, snap: Snapshot) -> None:
        if row is None or row.reading is None:
            self.query_one("#detail-summary", Static).update(
                Text(f"{self.container_id}: gone (esc: back)", style="bold red"), layout=False)
            return
        c = row.cells
        text = Text()
        text.append(self.container_id, style="bold")
        text.append("  ")
        text.append(c["status"], style=STATUS_STYLE.get(row.status, ""))
        if row.health_status:  # next to the status: the other half of "is it up"
            text.append("  ")
            text.append(c["health"], style=HEALTH_STYLE.get(row.health_status, ""))
        text.append(f"  pid {c['pid']}  cpu {c['cpu']} ({c['cpu_limit']} of limit)  mem {c['mem']}  "
                    f"pids {c['pids']}  up {c['uptime']}")
        if row.drift and snap.specs_given:
            text.append("  drift ")
            text.append(row.drift, style=DRIFT_STYLE.get(row.drift, ""))
        if self.app.readonly:
            text.append("  READ-ONLY", style="bold")
        self.query_one("#detail-summary", Static).update(text, layout=False)

    def _show_processes(self, snap: Snapshot) -> None:
        table = self.query_one("#procs", DataTable)
        procs = snap.processes or ()
        order = [str(p.pid) for _, p in procs]
        # Text, not str: DataTable reads a str as markup, and a command line is anything
        cells = {str(p.pid): (str(p.pid), Text(p.user), fmt_pct(p.cpu_pct), fmt_bytes(p.rss),
                              "-" if p.threads is None else str(p.threads), Text(p.state),
                              Text(tree_label(depth, p.cmdline))) for depth, p in procs}
        keys = [k for k, _, _ in PROC_COLUMNS]
        if order != self._proc_order:  # the tree changed: rebuild, the cursor stays on its process
            keep = self.selected_process()
            table.clear()
            for pid in order:
                table.add_row(*cells[pid], key=pid)
            if keep is not None and str(keep[0]) in cells:
                table.move_cursor(row=table.get_row_index(str(keep[0])), animate=False)
        else:
            for pid in order:
                old = self._proc_cells.get(pid)
                for i, key in enumerate(keys):
                    if old is None or old[i] != cells[pid][i]:
                        table.update_cell(pid, key, cells[pid][i], update_width=key == "command")
        self._proc_order, self._proc_cells = order, cells
        self._procs = {str(p.pid): p for _, p in procs}

    def selected_process(self) -> tuple[int, float] | None:
        """``(pid, create_time)`` under the processes cursor, or None."""
        table = self.query_one("#procs", DataTable)
        if not table.row_count:
            return None
        try:
            key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        except Exception:  # noqa: BLE001
            return None
        p = getattr(self, "_procs", {}).get(key)
        return (p.pid, p.create_time) if p is not None else None

    def _show_stats(self, row: Row | None, snap: Snapshot) -> None:
        hist = snap.history if snap.focus == self.container_id else None
        r = row.reading if row is not None else None
        labels = stat_labels(row)
        for key, _ in STAT_ROWS:
            self.query_one(f"#label-{key}", Static).update(Text(labels[key]), layout=False)
            chart = self.query_one(f"#spark-{key}", BarChart)
            data = list(hist[key]) if hist is not None else []
            if key.startswith("net") and (r is None or r.net_rx is None):
                data = []
            chart.show(spark_data(data), spark_top(key, row, snap.host_cpus))

    def _show_health(self, row: Row | None, snap: Snapshot) -> None:
        r = row.reading if row is not None else None
        history = probe_history(r.health if r is not None else None, r.health_check if r is not None else None,
                                snap.wall, row.status if row is not None else None)
        self.query_one("#health-history", Static).update(health_renderable(history), layout=False)

    # -- spec ----------------------------------------------------------------------------
    @work(thread=True, group="spec", exclusive=True, exit_on_error=False)
    def _load_spec(self) -> None:
        try:
            text = self.app.backend.spec_text(self.container_id)
        except Exception as err:  # noqa: BLE001
            text = ("error", f"# {err}")
        self.app._post(self._show_yaml, text)

    def _show_yaml(self, text: tuple[str, str] | None) -> None:
        if text == self._spec_text:
            return  # the same text: not drawn again
        self._spec_text = text
        box = self.query_one("#spec-yaml", Static)
        if text is None:
            box.update(Text("No spec: this container was not made from a spec (unmanaged), or is gone.",
                            style="dim"))
            return
        title, yaml_text = text
        self.spec_title = title
        box.update(Group(Text(title, style="bold"), Syntax(yaml_text, "yaml", theme="ansi_dark",
                                                           background_color="default", word_wrap=True)))

    def _show_diff(self, snap: Snapshot) -> None:
        box = self.query_one("#spec-diff", Static)
        box.update(diff_renderable(snap, self.container_id, self._row))

    # -- events --------------------------------------------------------------------------
    def show_events(self) -> None:
        events = self.app.events.for_container(self.container_id)
        if len(events) == self._events_shown:
            return
        log = self.query_one("#events-log", Log)
        log.clear()
        log.write_lines([fmt_event(e, with_container=False) for e in events] or ["(no events yet)"])
        self._events_shown = len(events)

    # -- logs ----------------------------------------------------------------------------
    def _poll_logs(self) -> None:
        if self._log_reading or self.active_tab != "logs":
            return  # read only while shown
        self._log_reading = True
        self._read_logs(self._cursor, self._log_generation)

    @work(thread=True, group="logs", exit_on_error=False)
    def _read_logs(self, cursor: LogCursor, generation: int) -> None:
        try:
            entries = self.app.backend.read_logs(self.container_id, cursor)
        except Exception:  # noqa: BLE001 - a vanished container: nothing more to read
            entries = []
        self.app._post(self._got_logs, entries, cursor, generation)

    def _got_logs(self, entries: list, cursor: LogCursor, generation: int) -> None:
        if generation != self._log_generation:
            cursor.close()  # read before the logs were released: this worker was its last user
            return
        self._log_reading = False
        new: list[str] = []
        if cursor.skipped:
            new += self.logs.skipped(cursor.skipped)
        new += self.logs.add(entries)
        status = (cursor.run, cursor.note)
        if status != self._log_seen:
            self._log_seen = status
            self._log_status()
        if not new or not self.following:
            if new:
                self._log_status()
            return
        log = self.query_one("#log", Log)
        if self.log_pattern or self.logs.reordered:
            self._redraw_logs()  # filtered, or the buffer kept an older line of the quieter stream
        else:
            log.write_lines(new)
            self._log_status()

    def _release_logs(self) -> None:
        """Forget the lines read (the tab is left, or the other run is asked for): coming back
        reads the tail again. The reader's file is closed here, or by the read under way."""
        if not len(self.logs) and self._cursor.reader is None and not self._log_reading:
            return
        self._log_generation += 1
        if not self._log_reading:
            self._cursor.close()
        self._log_reading = False
        self.logs.clear()
        self._cursor = LogCursor(previous=self.previous_run)
        self._log_seen = (None, "")
        self.query_one("#log", Log).clear()
        self._log_status()

    def on_unmount(self) -> None:
        self._log_generation += 1
        if not self._log_reading:
            self._cursor.close()

    def _redraw_logs(self) -> None:
        self.logs.reordered = False
        log = self.query_one("#log", Log)
        log.clear()
        log.write_lines(filter_lines(self.logs.lines, self.log_pattern, self.log_context))
        self._log_status()

    def _log_status(self) -> None:
        cursor = self._cursor
        if cursor.run is None:
            parts = [cursor.note or "no logs read yet"]
        else:
            parts = [f"run {cursor.run} ({'previous' if cursor.previous else 'current'})"]
        parts += [f"{len(self.logs)} lines", "following" if self.following else "paused (f: follow)"]
        if self.log_pattern:
            error = pattern_error(self.log_pattern)
            parts.append(f"filter /{self.log_pattern}/" + (f": bad pattern ({error}), matched as text" if error else
                                                           f" with {self.log_context} context line(s) (+/-)"))
        parts.append("s: times (UTC)" if not self.logs.timestamps else "times UTC (s)")
        parts.append(f"r: {'current' if cursor.previous else 'previous'} run")
        parts.append("stderr: '!'")
        self.query_one("#log-status", Static).update(Text(" · ".join(parts)), layout=False)  # never markup

    def action_follow(self) -> None:
        self.following = not self.following
        if self.following:
            self._redraw_logs()
        self._log_status()

    def action_timestamps(self) -> None:
        self.logs.timestamps = not self.logs.timestamps
        self._redraw_logs()

    def action_switch_run(self) -> None:
        """Show the previous run (the output before the container's restart or recreate), or back
        to the current one."""
        self.previous_run = not self.previous_run
        self._release_logs()
        self._cursor = LogCursor(previous=self.previous_run)
        self._log_status()
        self._poll_logs()

    def action_log_filter(self) -> None:
        if self.active_tab != "logs":
            self.action_tab("logs")
        box = self.query_one("#log-filter", Input)
        box.display = True
        box.value = self.log_pattern
        box.focus()

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input.id == "log-filter":
            self.log_pattern = event.value
            self._redraw_logs()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id == "log-filter":
            event.input.display = bool(self.log_pattern)
            self.query_one("#log", Log).focus()

    def action_context(self, delta: int) -> None:
        if self.active_tab != "logs":
            return
        self.log_context = max(0, min(20, self.log_context + delta))
        self._redraw_logs()

    # -- keys ----------------------------------------------------------------------------
    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        # pause, signal and destroy stay on: refused (read-only, a stopped container) with a word why
        if action in ("log_filter", "follow"):
            return True if self.active_tab == "logs" else None
        if action in ("timestamps", "switch_run"):  # in the footer of the logs tab only
            return self.active_tab == "logs"
        return True

    def action_back(self) -> None:
        box = self.query_one("#log-filter", Input)
        if box.has_focus:
            box.display = bool(self.log_pattern)
            self.query_one("#log", Log).focus()
            return
        self.app.pop_screen()

    def action_tab(self, tab: str) -> None:
        # Focus leaves the old pane first: a focused widget left in it (the log filter) pulls the
        # TabbedContent back to its pane (TabPane.Focused).
        self.set_focus(None)
        self.query_one("#tabs", TabbedContent).active = tab

    def action_next_tab(self) -> None:
        i = TABS.index(self.active_tab)
        self.action_tab(TABS[(i + 1) % len(TABS)])

    def action_prev_tab(self) -> None:
        i = TABS.index(self.active_tab)
        self.action_tab(TABS[(i - 1) % len(TABS)])

    def action_cursor_down(self) -> None:
        if self.active_tab == "processes":
            self.query_one("#procs", DataTable).action_cursor_down()

    def action_cursor_up(self) -> None:
        if self.active_tab == "processes":
            self.query_one("#procs", DataTable).action_cursor_up()

    def action_pause(self) -> None:
        self.app.pause_or_resume([self.container_id])

    def action_signal(self) -> None:
        if self.active_tab == "processes":
            chosen = self.selected_process()
            if chosen is not None:
                pid, created = chosen
                self.app.ask_signal([self.container_id], pid, created)
                return
        self.app.ask_signal([self.container_id])

    def action_destroy(self) -> None:
        self.app.ask_destroy([self.container_id])

    def action_shell(self) -> None:
        self.app.open_shell(self.container_id)


def diff_renderable(snap: Snapshot, container_id: str, row: Row | None):
    """The spec tab's top: drift and cause, then the field-level diff as a table (every cell a
    ``Text``: spec fields and values are never read as markup)."""
    entry = snap.desired.entries.get(container_id) if snap.desired is not None else None
    if not snap.specs_given:
        return Text("No spec paths given (dct tui PATH…): no desired state to compare with.", style="dim")
    if entry is None or entry.desired is None:
        drift = entry.drift if entry is not None else "-"
        return Text(f"drift: {drift} — no spec among the given paths names this container.", style="dim")
    head = Text()
    head.append("drift: ")
    head.append(entry.drift, style=DRIFT_STYLE.get(entry.drift, ""))
    if entry.cause:
        head.append(f" — {entry.cause}")
    if entry.action:
        head.append(f"\nplan: {entry.action} ({' → '.join(entry.steps)})")
    lines = spec_diff(entry, row.status if row is not None and row.reading is not None else None)
    if not lines:
        return Group(head, Text("desired and observed agree on every field.", style="green"))
    table = Table(box=None, show_edge=False, pad_edge=False, expand=False)
    table.add_column("FIELD")
    table.add_column("OBSERVED")
    table.add_column("DESIRED")
    table.add_column("ACTION")
    for d in lines:
        table.add_row(Text(d.field), Text(d.observed, style="red"), Text(d.desired, style="green"), Text(d.klass))
    return Group(head, Text(""), table)


def health_renderable(history):  # noqa: ANN001, ANN201 - tui.health.ProbeHistory -> a Rich renderable
    """The health tab: status, streak and since; the check and its timing; a note (stale, no probe
    yet); the last results newest first (time UTC, age, duration, exit code, output). Every cell a
    ``Text``: a probe's output is never read as markup."""
    parts: list = []
    if history.status is not None:
        head = Text()
        head.append(history.head, style=HEALTH_STYLE.get(history.status, ""))
        parts.append(head)
    if history.check:
        parts.append(Text(f"check: {history.check}" + (f" ({history.timing})" if history.timing else "")))
    if history.note:
        parts.append(Text(history.note, style="yellow" if history.status else "dim"))
    if history.lines:
        table = Table(box=None, show_edge=False, pad_edge=False, expand=False)
        for label, justify in (("TIME (UTC)", "left"), ("AGO", "right"), ("TOOK", "right"), ("EXIT", "right"),
                               ("OUTPUT", "left")):
            table.add_column(label, justify=justify, no_wrap=label != "OUTPUT")
        for line in history.lines:
            style = "green" if line.passed else "red"
            table.add_row(Text(line.at), Text(line.ago), Text(line.took),
                          Text("-" if line.exit_code is None else str(line.exit_code), style=style),
                          Text(line.output))
        parts += [Text(""), table]
    return Group(*parts)
