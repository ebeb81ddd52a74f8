"""Signal names as runc's ``kill`` takes them: a re-export of :func:`..configs.signals.parse_signal`,
which lives below both the runtime and ``spec`` (``stop_signal``); kept for existing importers."""

from __future__ import annotations

from ..configs.signals import parse_signal

__all__ = ["parse_signal"]
