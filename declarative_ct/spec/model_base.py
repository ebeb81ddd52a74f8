"""What the spec's models share: the strict base, :class:`FieldError`, argv limits and durations.

:mod:`.model` (the container spec) and :mod:`.model_health` (its ``health:`` field) build on these;
``model`` re-exports them, so ``from .model import FieldError`` keeps working.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import BaseModel, BeforeValidator, ConfigDict, WithJsonSchema

from ..units import format_duration, parse_duration

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.+-]{0,62}$"
NAME_RULE = "must be 1 to 63 letters, digits or _ . + - (starting with a letter or digit)"
MAX_ARG_STRLEN = 131072  # bytes: the kernel's limit on one argument or environment string
MAX_ARGS = 1 << 20  # bytes of arguments: well within ARG_MAX, and within what the monitor's socket carries


class FieldError(ValueError):
    """A validator's error about a field below the model it validates: ``path`` (``("routes", 0,
    "interface")``) and ``message``. pydantic passes it to the loader as the ``value_error``'s
    ``ctx["error"]``; the loader reports it at that field when the document has it, else at the
    validated model with ``str()``: ``routes[0].interface: <message>``."""

    def __init__(self, path: tuple[str | int, ...], message: str) -> None:
        self.path = tuple(path)
        self.message = message
        super().__init__(f"{field_name(self.path)}: {message}")


def field_name(path: tuple[str | int, ...]) -> str:
    """``("routes", 0, "interface")`` → ``routes[0].interface``."""
    return "".join(f"[{p}]" if isinstance(p, int) else f".{p}" if i else p for i, p in enumerate(path))


def field_path(name: str) -> tuple[str | int, ...]:
    """``routes[0].interface`` → ``("routes", 0, "interface")`` (a runtime field name, e.g. a Problem's)."""
    return tuple(int(p) if p.isdigit() else p for p in re.findall(r"[A-Za-z_][A-Za-z0-9_]*|[0-9]+", name))


class Strict(BaseModel):
    """The base of every spec model: unknown keys are errors, no coercion between types, frozen."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


def check_argv(value: list[str]) -> list[str]:
    """``value`` (an argv, as ``execve`` takes it) unless an argument holds a NUL, is ``MAX_ARG_STRLEN``
    bytes or longer, or all take more than ``MAX_ARGS`` bytes.

    Raises:
        ValueError: saying which limit (the loader reports it at the list's field).
    """
    if any("\0" in arg for arg in value):
        raise ValueError("an argument holds a NUL character")
    if any(len(arg.encode()) >= MAX_ARG_STRLEN for arg in value):
        raise ValueError(f"an argument is {MAX_ARG_STRLEN} bytes or longer (the kernel's MAX_ARG_STRLEN)")
    if sum(len(arg.encode()) + 1 for arg in value) > MAX_ARGS:
        raise ValueError(f"the arguments take more than {MAX_ARGS >> 10} KiB (execve would refuse them)")
    return value


DURATION_TEXT = "seconds (a number), or a duration such as 2s, 500ms, 1m30s"


def _duration_between(low: float, high: float):  # noqa: ANN202 - a validator
    def read(value: object) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            from .messages import describe_value  # the loader's words for a value (an error path only)

            raise ValueError(f"expected a duration (2s, 500ms, 1m30s or seconds), got {describe_value(value)}")
        seconds = parse_duration(value, None)
        shown = value if isinstance(value, str) else format_duration(seconds)
        if seconds < low:
            raise ValueError(f"{shown} is too short (at least {format_duration(low)})")
        if seconds > high:
            raise ValueError(f"{shown} is too long (at most {format_duration(high)})")
        return seconds

    return read


def duration(low: float = 0.0, high: float = 3600.0) -> object:
    """The annotated type of a duration field from ``low`` to ``high`` seconds (both included).

    Written as a number of seconds (``2``, ``0.5``) or with units (``500ms``, ``2s``, ``1m30s``,
    ``1h``: :func:`declarative_ct.units.parse_duration`); read into float seconds. Its JSON Schema
    takes an integer, a number or a string (editors cannot check the range of a text).
    """
    span = f"{format_duration(low)} to {format_duration(high)}"
    return Annotated[float, BeforeValidator(_duration_between(low, high)), WithJsonSchema({
        "type": ["integer", "number", "string"], "description": f"{DURATION_TEXT}; {span}"})]


Duration = duration()
"""A duration from 0 to 1 hour (float seconds once read); :func:`duration` gives other ranges."""
