"""Signal names as runc's ``kill`` takes them: kept here for the runtime's callers; the parser lives
in :mod:`..configs.signals`, below both the runtime and ``spec`` (which validates ``stop_signal``)."""

from __future__ import annotations

from ..configs.signals import parse_signal

__all__ = ["parse_signal"]
