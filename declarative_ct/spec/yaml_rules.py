"""YAML 1.2 core rules for plain scalars, and what YAML 1.1 tools would make of the same text.

A plain (unquoted) scalar is read as YAML 1.2's core schema reads it (``true``, ``null``, ``~``,
``12``, ``0x1f``, ``1.5``, ``.inf``; anything else is a string). A plain scalar that YAML 1.1
tools read differently (``on``, ``yes``, ``n``, ``010``, ``0o10``, ``1:30``, ``1_000``,
``0b101``, ``2001-12-14``…) is ambiguous: :func:`ambiguity` says why, with a hint to quote it.
Stdlib only: the node builder (:mod:`.yaml_nodes`) applies these rules.
"""

from __future__ import annotations

import math
import re

PLAIN_TAG = "tag:dct:plain"  # our resolver's tag for every plain scalar; read by core_value()
STR_TAG = "tag:yaml.org,2002:str"
SEQ_TAG = "tag:yaml.org,2002:seq"
MAP_TAG = "tag:yaml.org,2002:map"

_CORE_NULL = re.compile(r"^(?:~|null|Null|NULL|)$")
_CORE_BOOL = {"true": True, "True": True, "TRUE": True, "false": False, "False": False, "FALSE": False}
_CORE_INT = re.compile(r"^[-+]?[0-9]+$")
_CORE_OCT = re.compile(r"^0o[0-7]+$")
_CORE_HEX = re.compile(r"^0x[0-9a-fA-F]+$")
_CORE_FLOAT = re.compile(r"^[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?$")
_CORE_INF = re.compile(r"^[-+]?\.(?:inf|Inf|INF)$")
_CORE_NAN = re.compile(r"^\.(?:nan|NaN|NAN)$")

# YAML 1.1 as PyYAML (and most 1.1 tools) resolve it, plus the spec's y/n booleans.
_Y11_BOOL = {"yes": True, "no": False, "on": True, "off": False, "y": True, "n": False}
_Y11_INT = re.compile(r"""^(?:[-+]?0b[0-1_]+
    |[-+]?0[0-7_]+
    |[-+]?(?:0|[1-9][0-9_]*)
    |[-+]?0x[0-9a-fA-F_]+
    |[-+]?[1-9][0-9_]*(?::[0-5]?[0-9])+)$""", re.X)
_Y11_FLOAT = re.compile(r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+][0-9]+)?
    |\.[0-9][0-9_]*(?:[eE][-+][0-9]+)?
    |[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+\.[0-9_]*
    |[-+]?\.(?:inf|Inf|INF)
    |\.(?:nan|NaN|NAN))$""", re.X)
_Y11_TIMESTAMP = re.compile(r"""^(?:[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]
    |[0-9][0-9][0-9][0-9]-[0-9][0-9]?-[0-9][0-9]?
    (?:[Tt]|[ \t]+)[0-9][0-9]?:[0-9][0-9]:[0-9][0-9](?:\.[0-9]*)?
    (?:[ \t]*(?:Z|[-+][0-9][0-9]?(?::[0-9][0-9])?))?)$""", re.X)


def core_value(text: str) -> object:
    """A plain scalar as YAML 1.2's core schema reads it (None, bool, int, float or the text)."""
    if _CORE_NULL.match(text):
        return None
    if text in _CORE_BOOL:
        return _CORE_BOOL[text]
    if _CORE_INT.match(text):
        return int(text)
    if _CORE_OCT.match(text):
        return int(text[2:], 8)
    if _CORE_HEX.match(text):
        return int(text[2:], 16)
    if _CORE_FLOAT.match(text):
        return float(text)
    if _CORE_INF.match(text):
        return -math.inf if text.startswith("-") else math.inf
    if _CORE_NAN.match(text):
        return math.nan
    return text


def _sexagesimal(text: str) -> float:
    value = 0.0
    for part in text.split(":"):
        value = value * 60 + float(part)
    return value


def _yaml11(text: str) -> tuple[str, object]:
    """``(kind, value)`` of a plain scalar as YAML 1.1 reads it; kind: null/bool/int/float/timestamp/str."""
    if _CORE_NULL.match(text):
        return "null", None
    if text in _CORE_BOOL or text.lower() in _Y11_BOOL:
        return "bool", _CORE_BOOL.get(text, _Y11_BOOL.get(text.lower()))
    if _Y11_INT.match(text):
        body = text.replace("_", "")
        sign = -1 if body.startswith("-") else 1
        body = body.lstrip("+-")
        if body.startswith("0b"):
            return "int", sign * int(body[2:] or "0", 2)
        if body.startswith("0x"):
            return "int", sign * int(body[2:] or "0", 16)
        if ":" in body:
            return "int", sign * int(_sexagesimal(body))
        if body.startswith("0") and body != "0":
            return "int", sign * int(body, 8)
        return "int", sign * int(body or "0")
    if _Y11_FLOAT.match(text):
        body = text.replace("_", "").lower()
        if body.lstrip("+-") == ".inf":
            return "float", -math.inf if body.startswith("-") else math.inf
        if body == ".nan":
            return "float", math.nan
        if ":" in body:
            sign = -1 if body.startswith("-") else 1
            return "float", sign * _sexagesimal(body.lstrip("+-"))
        return "float", float(body)
    if _Y11_TIMESTAMP.match(text):
        return "timestamp", text
    return "str", text


def _kind(value: object) -> str:
    if value is None:
        return "null"
    return {bool: "bool", int: "int", float: "float", str: "str"}[type(value)]


def _same(a: tuple[str, object], b: tuple[str, object]) -> bool:
    if a[0] != b[0]:
        return False
    if isinstance(a[1], float) and isinstance(b[1], float) and math.isnan(a[1]) and math.isnan(b[1]):
        return True
    return a[1] == b[1]


def ambiguity(text: str) -> str | None:
    """The error for a plain scalar that YAML 1.1 and YAML 1.2 read differently, else None."""
    core = core_value(text)
    core_kind = _kind(core)
    kind, value = _yaml11(text)
    if _same((core_kind, core), (kind, value)) and text.lower() not in _Y11_BOOL:
        return None
    quote = f'quote it ("{text}")'
    if kind == "bool":
        return f"`{text}` is ambiguous in YAML (YAML 1.1 reads it as a boolean): {quote} or write true/false"
    if kind == "timestamp":
        return f"`{text}` is ambiguous in YAML (YAML 1.1 reads it as a date): {quote}"
    if kind in ("int", "float"):
        how = f"YAML 1.1 reads it as the number {show(value)}"
        if core_kind in ("int", "float"):
            how += f", YAML 1.2 as {show(core)}"
    else:
        how = f"YAML 1.2 reads it as the number {show(core)}, YAML 1.1 as a string"
    return f"`{text}` is ambiguous in YAML ({how}): {quote} or write the number in plain decimal"


def show(value: object) -> str:
    """A scalar value as YAML would write it (``null``, ``true``, ``3`` for 3.0)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def short_tag(tag: str) -> str:
    """``tag:yaml.org,2002:int`` → ``!!int``; other tags as they are."""
    return "!!" + tag.removeprefix("tag:yaml.org,2002:") if tag.startswith("tag:yaml.org,2002:") else tag
