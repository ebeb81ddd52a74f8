"""The TUI's own table widget: ``LiveTable`` (the history charts are :mod:`tui.charts`).

``LiveTable``: a table for rows that change every second, on Textual's Line API.

Why not ``DataTable``: any ``update_cell`` there bumps one counter that every cell's render cache
is keyed by, so a tick that changes a few cells re-renders every visible cell through Rich
(measured here: 100 rows whose CPU changes each second cost 6–7 % of a core in DataTable alone,
against 0.7 % for a Line-API widget). ``LiveTable`` caches one rendered line (a ``Strip``) per
row and renders again only the rows whose cells changed; the header stays at the top, the first
``fixed_columns`` stay put when scrolling sideways, the cursor stays on its row key whatever
happens to the order (add, remove, sort).
"""

# Size: LiveTable is one Line-API widget (row cache, cursor, sideways scroll, fixed columns) sharing its state.

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from rich.segment import Segment
from rich.style import Style
from textual import events
from textual.binding import Binding
from textual.geometry import Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip


@dataclass(frozen=True)
class TableColumn:
    """``key``; header ``label``; ``width`` in cells (None: as wide as the widest value so far);
    ``right``: right-aligned (numbers)."""

    key: str
    label: str
    width: int | None = None
    right: bool = False


class LiveTable(ScrollView, can_focus=True):
    """Rows keyed by a string, cells as plain text with an optional Rich style name per cell.

    Messages: :class:`RowHighlighted` (the cursor moved to another row), :class:`RowSelected`
    (``enter``, or a click on the cursor row / a double click), :class:`HeaderSelected` (a click
    on a column header).
    """

    COMPONENT_CLASSES = {"live-table--header", "live-table--cursor"}
    DEFAULT_CSS = """
    LiveTable {
        height: 1fr;
        background: $surface;
        color: $foreground;
        & > .live-table--header {
            text-style: bold;
            background: $panel;
            color: $foreground;
        }
        & > .live-table--cursor {
            background: $block-cursor-blurred-background;
            color: $block-cursor-blurred-foreground;
            text-style: $block-cursor-blurred-text-style;
        }
        &:focus > .live-table--cursor {
            background: $block-cursor-background;
            color: $block-cursor-foreground;
            text-style: $block-cursor-text-style;
        }
    }
    """
    BINDINGS = [
        Binding("up", "cursor_up", "Up", show=False),
        Binding("down", "cursor_down", "Down", show=False),
        Binding("pageup", "page_up", "Page up", show=False),
        Binding("pagedown", "page_down", "Page down", show=False),
        Binding("home", "first", "First", show=False),
        Binding("end", "last", "Last", show=False),
        Binding("left", "scroll_left", "Left", show=False),
        Binding("right", "scroll_right", "Right", show=False),
        Binding("enter", "select", "Select", show=False),
    ]

    class RowHighlighted(Message):
        """The cursor is on another row (``key`` None: the table is empty)."""

        def __init__(self, table: LiveTable, key: str | None) -> None:
            super().__init__()
            self.table, self.key = table, key

        @property
        def control(self) -> LiveTable:
            return self.table

    class RowSelected(Message):
        """The row under the cursor was chosen (enter, click)."""

        def __init__(self, table: LiveTable, key: str) -> None:
            super().__init__()
            self.table, self.key = table, key

        @property
        def control(self) -> LiveTable:
            return self.table

    class HeaderSelected(Message):
        """A column header was clicked."""

        def __init__(self, table: LiveTable, column: str) -> None:
            super().__init__()
            self.table, self.column = table, column

        @property
        def control(self) -> LiveTable:
            return self.table

    def __init__(self, columns: Sequence[TableColumn], fixed_columns: int = 0, *, id: str | None = None,
                 classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self._columns: list[TableColumn] = list(columns)
        self.fixed_columns = fixed_columns
        self._cells: dict[str, dict[str, str]] = {}
        self._styles: dict[str, dict[str, str]] = {}
        self._order: list[str] = []
        self._index: dict[str, int] = {}
        self._version: dict[str, int] = {}
        self._cache: dict[str, tuple[int, int, Style, Strip]] = {}
        self._widths: dict[str, int] = {}
        self._layout = 0  # bumped when a width changes: every cached line is stale
        self._parsed: dict[str, Style] = {}
        self.cursor_row = 0
        self._last_highlight: str | None = None
        self._bases: tuple[Style, Style, Style] | None = None
        self._measure_all()

    # -- data ----------------------------------------------------------------------------
    @property
    def columns(self) -> tuple[TableColumn, ...]:
        return tuple(self._columns)

    @property
    def row_count(self) -> int:
        return len(self._order)

    @property
    def ordered_keys(self) -> tuple[str, ...]:
        """Row keys in display order."""
        return tuple(self._order)

    @property
    def cursor_key(self) -> str | None:
        """The key of the row under the cursor (None: no rows)."""
        return self._order[self.cursor_row] if 0 <= self.cursor_row < len(self._order) else None

    def get_cell(self, key: str, column: str) -> str:
        """The text of one cell (KeyError: no such row or column)."""
        return self._cells[key][column]

    def get_row_index(self, key: str) -> int:
        return self._index[key]

    def add_column(self, column: TableColumn, before: str | None = None) -> None:
        """Append a column, or insert it before the column keyed ``before`` (existing rows show ''
        in it until updated)."""
        keys = [c.key for c in self._columns]
        self._columns.insert(keys.index(before) if before in keys else len(keys), column)
        for cells in self._cells.values():
            cells.setdefault(column.key, "")
        self._measure_all()

    def add_row(self, key: str, cells: Mapping[str, str], styles: Mapping[str, str] | None = None) -> None:
        """A new row at the end (ValueError: the key exists)."""
        if key in self._cells:
            raise ValueError(f"row {key!r} exists")
        self._cells[key] = {c.key: cells.get(c.key, "") for c in self._columns}
        self._styles[key] = dict(styles or {})
        self._version[key] = 0
        self._index[key] = len(self._order)
        self._order.append(key)
        self._measure(self._cells[key])
        self._resized()
        if len(self._order) == 1:
            self._highlighted()

    def update_row(self, key: str, cells: Mapping[str, str], styles: Mapping[str, str] | None = None) -> bool:
        """Set the cells given (and their styles); True when anything changed (the row is drawn again)."""
        row = self._cells[key]
        changed = False
        for col, value in cells.items():
            if col in row and row[col] != value:
                row[col] = value
                changed = True
        if styles is not None and styles != self._styles[key]:
            self._styles[key] = dict(styles)
            changed = True
        if changed:
            self._version[key] += 1
            if self._measure(row):
                self._resized()
            self._refresh_key(key)
        return changed

    def remove_row(self, key: str) -> None:
        """Remove a row; the cursor stays on the row it was on (or the one now at its place)."""
        keep = self.cursor_key
        for d in (self._cells, self._styles, self._version, self._cache):
            d.pop(key, None)
        self._order.remove(key)
        self._reindex()
        if keep is not None and keep != key:
            self.cursor_row = self._index[keep]
        self.cursor_row = max(0, min(self.cursor_row, len(self._order) - 1))
        self._resized()
        self._highlighted()

    def clear(self) -> None:
        """Remove every row."""
        for d in (self._cells, self._styles, self._version, self._cache, self._index):
            d.clear()
        self._order.clear()
        self.cursor_row = 0
        self._resized()
        self._highlighted()

    def sort(self, key: Callable[[str], object], reverse: bool = False) -> None:
        """Order the rows by ``key(row_key)``; the cursor stays on its row."""
        keep = self.cursor_key
        self._order.sort(key=key, reverse=reverse)
        self._reindex()
        if keep is not None:
            self.cursor_row = self._index[keep]
            self._scroll_to_cursor()
        self.refresh()

    def move_cursor(self, key: str | None = None, row: int | None = None) -> None:
        """Put the cursor on the row ``key`` (or at index ``row``) and scroll it into view."""
        if key is not None:
            row = self._index.get(key)
        if row is None or not self._order:
            return
        old = self.cursor_row
        self.cursor_row = max(0, min(row, len(self._order) - 1))
        self._scroll_to_cursor()
        self._refresh_row(old)
        self._refresh_row(self.cursor_row)
        self._highlighted()

    def visible_keys(self) -> set[str]:
        """Keys of the rows on screen."""
        first = int(self.scroll_y)
        return set(self._order[first:first + max(1, self._body_height())])

    # -- layout ----------------------------------------------------------------------------
    def _measure_all(self) -> None:
        self._widths = {c.key: c.width if c.width is not None else len(c.label) for c in self._columns}
        for cells in self._cells.values():
            self._measure(cells)
        self._resized()

    def _measure(self, cells: Mapping[str, str]) -> bool:
        """Widen auto columns for these cells; True when a width changed."""
        grown = False
        for c in self._columns:
            if c.width is None and len(cells.get(c.key, "")) > self._widths[c.key]:
                self._widths[c.key] = len(cells[c.key])
                grown = True
        if grown:
            self._layout += 1
        return grown

    def _total_width(self) -> int:
        return sum(self._widths[c.key] + 2 for c in self._columns)

    def _fixed_width(self) -> int:
        return sum(self._widths[c.key] + 2 for c in self._columns[:self.fixed_columns])

    def _resized(self) -> None:
        self.virtual_size = Size(self._total_width(), len(self._order) + 1)
        self.refresh()

    def _reindex(self) -> None:
        self._index = {k: i for i, k in enumerate(self._order)}

    def _body_height(self) -> int:
        return self.size.height - 1 - (1 if self.show_horizontal_scrollbar else 0)

    def _scroll_to_cursor(self) -> None:
        height = self._body_height()
        if height <= 0:
            return
        top = int(self.scroll_y)
        if self.cursor_row < top:
            self.scroll_to(y=self.cursor_row, animate=False, immediate=True)
        elif self.cursor_row >= top + height:
            self.scroll_to(y=self.cursor_row - height + 1, animate=False, immediate=True)

    def _refresh_key(self, key: str) -> None:
        i = self._index.get(key)
        if i is not None:
            self._refresh_row(i)

    def _refresh_row(self, i: int) -> None:
        top = int(self.scroll_y)
        if top <= i < top + self._body_height():
            self.refresh_line(i + 1)  # virtual line: the header is line 0

    def _highlighted(self) -> None:
        key = self.cursor_key
        if key != self._last_highlight:
            self._last_highlight = key
            self.post_message(self.RowHighlighted(self, key))

    # -- rendering -------------------------------------------------------------------------
    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._bases = None  # CSS or theme changed: the base styles are computed again

    def _base_styles(self) -> tuple[Style, Style, Style]:
        """``(rows, cursor row, header)`` Rich styles (``rich_style`` walks the DOM: computed once)."""
        bases = getattr(self, "_bases", None)
        if bases is None:
            base = self.rich_style
            bases = self._bases = (base, base + self.get_component_rich_style("live-table--cursor"),
                                   base + self.get_component_rich_style("live-table--header"))
        return bases

    def _style(self, name: str) -> Style:
        style = self._parsed.get(name)
        if style is None:
            style = self._parsed[name] = Style.parse(name) if name else Style()
        return style

    def _line(self, cells: Mapping[str, str], styles: Mapping[str, str], base: Style) -> Strip:
        segments = []
        for c in self._columns:
            width = self._widths[c.key]
            text = cells.get(c.key, "")
            if len(text) > width:
                text = text[:max(0, width - 1)] + "…"
            text = text.rjust(width) if c.right else text.ljust(width)
            name = styles.get(c.key, "")
            segments.append(Segment(f" {text} ", base + self._style(name) if name else base))
        return Strip(segments).simplify()

    def _row_strip(self, key: str, cursor: bool) -> Strip:
        base, cursor_style, _ = self._base_styles()
        if cursor:
            return self._line(self._cells[key], {}, cursor_style)
        hit = self._cache.get(key)
        version = self._version[key]
        if hit is not None and hit[0] == version and hit[1] == self._layout and hit[2] == base:
            return hit[3]
        strip = self._line(self._cells[key], self._styles[key], base)
        self._cache[key] = (version, self._layout, base, strip)
        return strip

    def render_line(self, y: int) -> Strip:
        width = self.size.width
        base, cursor_style, header_style = self._base_styles()
        if y == 0:
            header = {c.key: c.label for c in self._columns}
            strip = self._line(header, {}, header_style)
            fill = header_style
        else:
            i = int(self.scroll_y) + y - 1
            if i >= len(self._order):
                return Strip.blank(width, base)
            cursor = i == self.cursor_row
            strip = self._row_strip(self._order[i], cursor)
            fill = cursor_style if cursor else base
        fixed = self._fixed_width()
        x = int(self.scroll_x)
        if x and fixed < width:
            strip = Strip.join([strip.crop(0, fixed), strip.crop(fixed + x, fixed + x + width - fixed)])
        return strip.adjust_cell_length(width, fill)

    # -- input -----------------------------------------------------------------------------
    def action_cursor_up(self) -> None:
        self.move_cursor(row=self.cursor_row - 1)

    def action_cursor_down(self) -> None:
        self.move_cursor(row=self.cursor_row + 1)

    def action_page_up(self) -> None:
        self.move_cursor(row=self.cursor_row - max(1, self._body_height()))

    def action_page_down(self) -> None:
        self.move_cursor(row=self.cursor_row + max(1, self._body_height()))

    def action_first(self) -> None:
        self.move_cursor(row=0)

    def action_last(self) -> None:
        self.move_cursor(row=len(self._order) - 1)

    def action_scroll_left(self) -> None:
        self.scroll_to(x=max(0, self.scroll_x - 4), animate=False)

    def action_scroll_right(self) -> None:
        self.scroll_to(x=self.scroll_x + 4, animate=False)

    def action_select(self) -> None:
        key = self.cursor_key
        if key is not None:
            self.post_message(self.RowSelected(self, key))

    def on_click(self, event: events.Click) -> None:
        offset = event.get_content_offset(self)
        if offset is None:
            return
        x, y = offset
        if y == 0:
            column = self._column_at(x)
            if column is not None:
                self.post_message(self.HeaderSelected(self, column))
            return
        row = int(self.scroll_y) + y - 1
        if row >= len(self._order):
            return
        if row == self.cursor_row or event.chain >= 2:
            self.move_cursor(row=row)
            self.action_select()
        else:
            self.move_cursor(row=row)

    def _column_at(self, x: int) -> str | None:
        fixed = self._fixed_width()
        if x >= fixed:
            x += int(self.scroll_x)
        start = 0
        for c in self._columns:
            end = start + self._widths[c.key] + 2
            if start <= x < end:
                return c.key
            start = end
        return None
