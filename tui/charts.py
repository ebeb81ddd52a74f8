"""The container screen's history charts: :class:`BarChart` (a widget) drawing :class:`Bars` (a Rich
renderable) on a fixed scale from 0 to a given top (a limit), where Textual's ``Sparkline``
stretches the lowest to the highest value over the whole height (a flat line then fills it)."""

from __future__ import annotations

import math
from collections.abc import Sequence

from rich.color import Color as RichColor
from rich.color import blend_rgb
from rich.console import Console, ConsoleOptions, RenderResult
from rich.segment import Segment
from rich.style import Style
from textual.widget import Widget


def nice_ceiling(value: float) -> float:
    """A round top for a scale holding ``value`` with a quarter of headroom: the least of
    1, 2, 2.5, 5 × 10^k at or above ``1.25 * value`` (so a flat series sits at 40-80 % of the
    height, never at the top); 1.0 for a value of 0 or less."""
    if not value > 0 or not math.isfinite(value):
        return 1.0
    target = value * 1.25
    power = 10.0 ** math.floor(math.log10(target))
    for m in (1.0, 2.0, 2.5, 5.0, 10.0):
        if m * power >= target * (1 - 1e-9):
            return m * power
    return 10.0 * power  # pragma: no cover


class Bars:
    """A Rich renderable: ``data`` as vertical bars (``▁``…``█``, 8 levels a line) on a scale from 0
    to ``top`` (None: :func:`nice_ceiling` of the highest value), ``height`` lines tall, as wide as
    given. A column shows the highest value of the samples it stands for; a known value shows at
    least ``▁``; None (no sample) is blank. Colours go from ``low`` to ``high`` with the value."""

    BLOCKS = "▁▂▃▄▅▆▇█"

    def __init__(self, data: Sequence[float | None], top: float | None = None, height: int = 1,
                 low: RichColor | None = None, high: RichColor | None = None) -> None:
        self.data, self.height = list(data), max(1, height)
        known = [v for v in self.data if v is not None]
        self.top = top if top is not None and top > 0 else nice_ceiling(max(known, default=0.0))
        self.low, self.high = low, high

    def _columns(self, width: int) -> list[float | None]:
        n = len(self.data)
        if n == 0:
            return [None] * width
        out: list[float | None] = []
        for col in range(width):
            start = col * n // width
            part = [v for v in self.data[start:max(start + 1, (col + 1) * n // width)] if v is not None]
            out.append(max(part) if part else None)
        return out

    def _style(self, ratio: float) -> Style | None:
        if self.low is None or self.high is None:
            return None
        low, high = self.low.get_truecolor(), self.high.get_truecolor()
        return Style(color=RichColor.from_triplet(blend_rgb(low, high, ratio)))

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        width = options.max_width
        levels = 8 * self.height
        cells: list[tuple[int, Style | None]] = []
        for value in self._columns(width):
            if value is None:
                cells.append((0, None))
                continue
            ratio = min(1.0, max(0.0, value / self.top))
            cells.append((max(1, round(ratio * levels)), self._style(ratio)))
        for line in reversed(range(self.height)):
            for filled, style in cells:
                part = min(8, max(0, filled - 8 * line))
                yield Segment(self.BLOCKS[part - 1] if part else " ", style if part else None)
            yield Segment.line()


class BarChart(Widget):
    """A history chart (:class:`Bars`) on a fixed scale: :meth:`show` sets its data and the top of
    its scale (the metric's limit; None: a round value above the highest)."""

    COMPONENT_CLASSES = {"bar-chart--low", "bar-chart--high"}
    DEFAULT_CSS = """
    BarChart {
        height: 1;
        & > .bar-chart--low { color: $primary 30%; }
        & > .bar-chart--high { color: $primary; }
    }
    """

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self._data: list[float | None] = []
        self._top: float | None = None

    @property
    def data(self) -> list[float | None]:
        return self._data

    @property
    def top(self) -> float | None:
        return self._top

    def show(self, data: Sequence[float | None], top: float | None) -> None:
        """New data and scale; drawn again only when they changed."""
        data = list(data)
        if data != self._data or top != self._top:
            self._data, self._top = data, top
            self.refresh()

    def render(self) -> Bars:
        _, base = self.background_colors
        low = base + self.get_component_styles("bar-chart--low").color
        high = base + self.get_component_styles("bar-chart--high").color
        return Bars(self._data, self._top, self.size.height, low.rich_color, high.rich_color)
