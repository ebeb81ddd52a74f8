"""A bounded history of each container's metrics (what the detail view's charts draw). Pure, no Textual."""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from types import MappingProxyType


HISTORY_LEN = 120
"""Samples kept per metric and container (2 minutes at the default 1 s refresh)."""


METRICS = ("cpu", "mem", "pids", "io_read", "io_write", "net_rx", "net_tx")
"""History series: cpu (cores), mem (bytes), pids (tasks), io_* and net_* (bytes per second)."""


class History:
    """A bounded ring of samples per metric (:data:`METRICS`) for one container; O(1) per append."""

    def __init__(self, maxlen: int = HISTORY_LEN) -> None:
        self.series: dict[str, deque[float]] = {m: deque(maxlen=maxlen) for m in METRICS}

    def append(self, values: Mapping[str, float | None]) -> None:
        """One sample per metric; an unknown value (None) is stored as 0.0, keeping the series aligned."""
        for metric, ring in self.series.items():
            v = values.get(metric)
            ring.append(0.0 if v is None else float(v))

    def view(self) -> Mapping[str, tuple[float, ...]]:
        """An immutable copy: ``{metric: (oldest … newest)}``."""
        return MappingProxyType({m: tuple(r) for m, r in self.series.items()})
