"""The history charts (tui/charts.py): the scale of the bars."""

from __future__ import annotations

import os

from rich.console import Console

from tui.charts import Bars


def test_sparkline_scale_is_from_zero_to_the_limit():
    def render(bars: Bars) -> list[str]:
        console = Console(width=10, record=True, file=open(os.devnull, "w"))
        console.print(bars)
        return console.export_text().splitlines()

    assert render(Bars([5.0] * 10, top=10.0, height=2)) == [" " * 10, "█" * 10]  # half the limit: half the height
    assert render(Bars([None] * 5 + [0.0] * 5, top=10.0, height=1)) == [" " * 5 + "▁" * 5]  # no data: blank
    flat = render(Bars([7.0] * 10, top=None, height=2))  # no limit: a flat line is not a full block
    assert flat[0] != "█" * 10
