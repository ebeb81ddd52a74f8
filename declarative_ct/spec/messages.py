"""Spec errors and their words: ``file:line:col: field: message``, pydantic's errors said our way.

:class:`SpecError` is one problem, :class:`SpecErrors` all of them (what :mod:`.load` raises);
:func:`translate` turns one pydantic error into our message, :func:`field_name` a location into
the dotted field (``process.args[0]``), :func:`join_alternatives` the alternatives of a union into
one message, :func:`suggest` a close field name for an unknown one.
"""

from __future__ import annotations

import dataclasses
import re
import typing
from dataclasses import dataclass

from pydantic import BaseModel

from ..errors import ContainerError
from .model import RESTART_PATTERN, ContainerSpec, FieldError
from .model_base import NAME_PATTERN, NAME_RULE
from .yaml_rules import show

Loc = tuple[object, ...]
"""A location in a document: mapping keys and list indices, outermost first (pydantic's ``loc``)."""

NO_FIELD = "-"


QUOTE_HINT = "quote it if it is meant as text"
"""The end of a message about a number where text is meant (:func:`.load.load_mapping`; ``SpecError.hint``)."""
HINT_QUOTE = "quote"


@dataclass(frozen=True)
class SpecError:
    """One problem: ``file:line:col: field: message``.

    ``file`` is the path as given (a directory's entries joined to it); ``line``/``col`` are
    1-based, and both 0 when the error concerns the path as a whole (missing, unreadable, no
    specs). ``field`` is dotted (``resources.memory``, ``process.args[0]``) or ``-``. ``value``:
    the value at fault when a front door may want it (an unknown container's name); ``hint``:
    :data:`HINT_QUOTE` when ``message`` ends with :data:`QUOTE_HINT`. Neither takes part in equality.
    """

    file: str
    line: int
    col: int
    field: str
    message: str
    value: object = dataclasses.field(default=None, compare=False)  # the value at fault, where a front door uses it
    hint: str = dataclasses.field(default="", compare=False)  # HINT_QUOTE: the message ends with QUOTE_HINT

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}: {self.field}: {self.message}"


class SpecErrors(ContainerError):
    """Raised by :func:`load_paths` with every :class:`SpecError` found (``.errors``); str: one per line."""

    def __init__(self, errors: list[SpecError]) -> None:
        self.errors = list(errors)
        super().__init__("\n".join(str(e) for e in self.errors))


def describe_value(value: object) -> str:
    """A Python value in words, for ``got …`` (``the number 3``, ``a list``)."""
    if isinstance(value, (list, tuple)):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return f"the boolean {'true' if value else 'false'}"
    if isinstance(value, (int, float)):
        return f"the number {show(value)}"
    return f'the string "{value}"'


def field_error(e: dict) -> FieldError | None:
    """The :class:`~.model.FieldError` a validator raised for pydantic error ``e``, else None."""
    error = (e.get("ctx") or {}).get("error") if e["type"] == "value_error" else None
    return error if isinstance(error, FieldError) else None


def field_name(loc: Loc) -> str:
    """``("process", "args", 0)`` → ``process.args[0]``; ``()`` → ``-``."""
    out = ""
    for part in loc:
        if isinstance(part, int) and not isinstance(part, bool):
            out += f"[{part}]"
        elif isinstance(part, str) and re.match(r"^[A-Za-z0-9_-]+$", part):
            out += f".{part}" if out else part
        else:
            out += f'["{part}"]' if isinstance(part, str) else f"[{show(part)}]"
    return out or NO_FIELD


EXPECTED = {
    "string_type": "a string", "int_type": "an integer", "float_type": "a number", "bool_type": "true or false",
    "list_type": "a list", "dict_type": "a mapping (key: value)", "model_type": "a mapping (key: value)",
    "int_from_float": "a whole number", "finite_number": "a finite number",
}
_PATTERNS = {
    NAME_PATTERN: NAME_RULE,
    RESTART_PATTERN: "must be never, always, on-failure or on-failure:N",
    r"^[0-9]+(:[0-9]+)?$": 'must be "uid" or "uid:gid" (numbers)',
}


_BOUNDS = {"greater_than": ("greater than", "gt"), "greater_than_equal": ("greater than or equal to", "ge"),
           "less_than": ("less than", "lt"), "less_than_equal": ("less than or equal to", "le")}


def _number(value: object) -> str:
    """A bound as pydantic shows it: ``0.0`` → ``0``."""
    return str(int(value)) if isinstance(value, float) and value.is_integer() else str(value)


def translate(e: dict) -> str:
    """pydantic's message for one error, in our words (without what was given: see :func:`got`)."""
    kind, ctx, msg = e["type"], e.get("ctx") or {}, e["msg"]
    if kind == "missing":
        return "required field is missing"
    if kind == "extra_forbidden":
        return "unknown field"
    if kind in EXPECTED:
        return "expected " + EXPECTED[kind]
    if kind == "literal_error":
        return f"expected {ctx.get('expected', '')}".rstrip()
    if kind == "string_pattern_mismatch":
        return _PATTERNS.get(ctx.get("pattern"), f"must match the pattern {ctx.get('pattern')}")
    if kind == "too_short" and ctx.get("min_length") == 1:
        return "must not be empty"
    if kind == "value_error":
        return str(ctx["error"]) if "error" in ctx else msg
    if kind in _BOUNDS:
        word, key = _BOUNDS[kind]
        return f"must be {word} {_number(ctx[key])}"
    if kind in ("string_too_long", "string_too_short") or (kind in ("too_long", "too_short")
                                                            and ctx.get("field_type") == "List"):
        most = "most" if kind.endswith("long") else "least"
        limit = ctx["max_length" if most == "most" else "min_length"]
        if kind.startswith("string"):
            return f"must have at {most} {limit} character{'' if limit == 1 else 's'}"
        return f"must have at {most} {limit} item{'' if limit == 1 else 's'} after validation, not {ctx['actual_length']}"
    return msg  # a kind our models do not produce: pydantic's words


def join_alternatives(messages: list[str]) -> str:
    """Alternatives of a union, ``expected an integer…`` + ``expected 'unlimited'…`` → one message."""
    if len(messages) == 1:
        return messages[0]
    got = ""
    parts = []
    for m in messages:
        head, sep, tail = m.partition(", got ")
        parts.append(head.removeprefix("expected "))
        got = got or (sep + tail)
    return "expected " + " or ".join(parts) + got


def join_hint(messages: list[str], hints: list[str]) -> str:
    """The hint of the alternative whose ``, got …`` tail :func:`join_alternatives` keeps."""
    if len(messages) == 1:
        return hints[0]
    return next((h for m, h in zip(messages, hints) if ", got " in m), "")


def suggest(loc: Loc) -> str:
    """``(did you mean `args`?)`` for an unknown field close to one of its model's fields."""
    model: object = ContainerSpec
    for part in loc[:-1]:
        model = _submodel(model, part)
        if model is None:
            return ""
    if not (isinstance(model, type) and issubclass(model, BaseModel)) or not isinstance(loc[-1], str):
        return ""
    import difflib  # only when there is an unknown field

    close = difflib.get_close_matches(loc[-1], list(model.model_fields), n=1)
    return f" (did you mean `{close[0]}`?)" if close else ""


def _submodel(model: object, part: object) -> object:
    """The model (or list of models) reached from ``model`` by one location part, else None."""
    if isinstance(model, type) and issubclass(model, BaseModel) and isinstance(part, str):
        field = model.model_fields.get(part)
        return _unwrap(field.annotation) if field else None
    if isinstance(model, tuple) and model[0] == "list" and isinstance(part, int):
        return model[1]
    return None


def _unwrap(annotation: object) -> object:
    """A BaseModel class, ``("list", model)``, or None, from a field's annotation."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if typing.get_origin(annotation) is list:
        inner = _unwrap(typing.get_args(annotation)[0])
        return ("list", inner) if inner else None
    for arg in typing.get_args(annotation):
        found = _unwrap(arg)
        if found:
            return found
    return None
