# -*- coding: utf-8 -*-
# Copyright: declarative-ct developers
# Apache License 2.0 (see LICENSE of declarative-ct)
"""Ansible options from the JSON Schema of a declarative-ct spec document (``ContainerSpec``).

Stdlib only: the modules use it on the target with the installed declarative_ct's schema, and
``tools/gen_spec_docs.py`` with the development tree's, to write the fallback argument spec
(``spec_options.py``) and the documentation fragment (``doc_fragments/spec.py``).
"""

from __future__ import annotations

# Spec fields that are not module options: the module's own ``state`` replaces the spec's.
EXCLUDED = ("state",)
# Fields whose default the module must not fill in: left out, O(state=absent) stops the container with
# the values it was made with.
UNSET_BY_DEFAULT = ("stop_signal", "stop_timeout")

_SCALARS = {"string": "str", "integer": "int", "number": "float", "boolean": "bool"}


def resolve(prop, defs):
    """``prop`` without its ``$ref`` and without a ``null`` alternative (an optional field)."""
    if "$ref" in prop:
        return defs[prop["$ref"].rsplit("/", 1)[-1]]
    alternatives = [p for p in prop.get("anyOf", []) if p.get("type") != "null"]
    if len(alternatives) == 1:
        merged = dict(prop)
        merged.pop("anyOf")
        merged.update(alternatives[0])
        return resolve(merged, defs)
    return prop


def ansible_type(prop, defs):
    """``{"type": ..., "elements": ..., "choices": ...}`` for one property of the schema.

    Objects are ``dict``, arrays ``list`` (``elements`` from their items), JSON scalars the Ansible
    scalars, enums add ``choices``; a value of several types (a size: bytes or ``64Mi``) is ``raw``.
    """
    prop = resolve(prop, defs)
    kind = prop.get("type")
    if kind == "object":
        return {"type": "dict"}
    if kind == "array":
        items = ansible_type(prop.get("items", {}), defs)
        out = {"type": "list", "elements": items["type"]}
        if "choices" in items:
            out["choices"] = items["choices"]
        return out
    if isinstance(kind, str) and kind in _SCALARS:
        out = {"type": _SCALARS[kind]}
        if "enum" in prop:
            out["choices"] = list(prop["enum"])
        return out
    return {"type": "raw"}


def options_from_schema(schema):
    """The argument spec of the spec's top-level fields (without :data:`EXCLUDED`).

    Only ``name`` is required (``state: absent`` needs nothing else). A field whose schema default
    is a scalar (``rootfs: host``, ``restart: never``…) has it as its default (what ansible-doc
    shows), except :data:`UNSET_BY_DEFAULT`; the others have none, so that what a task leaves out
    stays "unset" (the spec's default) and ``ContainerSpec`` validates the inside of every mapping
    and list. Unset and the default compare equal in the plan either way.
    """
    defs = schema.get("$defs", {})
    out = {}
    for name, prop in schema["properties"].items():
        if name in EXCLUDED:
            continue
        option = ansible_type(prop, defs)
        if name == "name":
            option["required"] = True
        default = resolve(prop, defs).get("default")
        if isinstance(default, (str, int, float, bool)) and name not in UNSET_BY_DEFAULT:
            option["default"] = default
        out[name] = option
    return out
