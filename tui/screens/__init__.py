"""Screens of the TUI and what they share: the base screen (terminal-too-small message) and cell colours.

Colours are in the cell values (DataTable cells are not styled by CSS); every state is also a
word, so the table reads the same under ``NO_COLOR``.
"""

from __future__ import annotations

from textual.events import Resize
from textual.screen import Screen
from textual.widgets import Static

MIN_WIDTH, MIN_HEIGHT = 40, 10
"""Below this the screen shows a message instead of a broken layout."""

STATUS_STYLE = {"running": "green", "paused": "yellow", "pausing": "yellow", "created": "cyan",
                "stopped": "red", "absent": "dim", "unknown": "bold red"}
DRIFT_STYLE = {"in-sync": "green", "drifted": "yellow", "missing": "red", "unmanaged": "dim",
               "undeclared": "magenta", "exited": "red", "backoff": "yellow",
               "unknown": "bold red"}
LEVEL_STYLE = {"error": "red", "warning": "yellow", "info": ""}
HEALTH_STYLE = {"healthy": "green", "starting": "cyan", "unhealthy": "bold red"}
UNHEALTHY_ROW = "on #5f0000"
"""The background of an unhealthy container's row in the containers table."""


class DctScreen(Screen):
    """A screen that replaces its content by a message when the terminal is too small
    (subclasses' ``on_mount`` runs first, then this one: Textual calls the handlers of the whole MRO)."""

    def on_mount(self) -> None:
        self.mount(Static(f"terminal too small: {MIN_WIDTH}×{MIN_HEIGHT} at least", id="too-small"))
        self._too_small(self.app.size.width, self.app.size.height)

    def on_resize(self, event: Resize) -> None:
        self._too_small(event.size.width, event.size.height)

    def _too_small(self, width: int, height: int) -> None:
        self.set_class(width < MIN_WIDTH or height < MIN_HEIGHT, "too-small")
