"""The event timeline: :class:`Event` (a status change seen, a journal line, an action), the bounded
:class:`EventLog`, the journal's lines as events, one line of text per event. Pure, no Textual."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass


EVENTS_LEN = 2000
"""Events kept by an :class:`EventLog`."""


@dataclass(frozen=True)
class Event:
    """One line of the event timeline: ``time`` epoch seconds, ``container`` ('' = global),
    ``source`` (``status``: a transition seen; ``journal``: the reconciler's journal; ``action``:
    something done from the TUI; ``apply``: a plan applied from the TUI), ``level`` info/warning/error."""

    time: float
    container: str
    source: str
    text: str
    level: str = "info"


def journal_event(entry: Mapping, default_time: float) -> Event:
    """An :class:`Event` from one ``#journal.jsonl`` object (``time``, ``container``, ``class``,
    ``cause``, ``steps``, ``result``, ``error``)."""
    from declarative_ct.units import parse_time

    t = parse_time(entry.get("time")) or default_time
    result = str(entry.get("result", ""))
    text = f"{entry.get('class', '?')} ({entry.get('cause', '')}): {result}"
    if entry.get("error"):
        text += f": {entry['error']}"
    level = "error" if result == "failed" else "warning" if result == "skipped" else "info"
    return Event(t, str(entry.get("container", "")), "journal", text, level)


class EventLog:
    """The event timeline, bounded (:data:`EVENTS_LEN`); newest last. Owned by the UI thread."""

    def __init__(self, maxlen: int = EVENTS_LEN) -> None:
        self._events: deque[Event] = deque(maxlen=maxlen)

    def extend(self, events: Iterable[Event]) -> None:
        self._events.extend(events)

    def add(self, event: Event) -> None:
        self._events.append(event)

    def __len__(self) -> int:
        return len(self._events)

    def for_container(self, container_id: str | None = None) -> list[Event]:
        """Every event, or those of one container (global ones, such as an apply's summary, excluded)."""
        if container_id is None:
            return list(self._events)
        return [e for e in self._events if e.container == container_id]


def fmt_event(e: Event, with_container: bool = True) -> str:
    """``HH:MM:SS name  [source] text`` in local time."""
    import time as _time

    stamp = _time.strftime("%H:%M:%S", _time.localtime(e.time))
    who = f"{e.container:<16} " if with_container else ""
    return f"{stamp} {who}[{e.source}] {e.text}"
