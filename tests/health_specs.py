"""Spec documents with ``health:`` for the supervisor's integration tests, with or without the
spec model's ``health`` field.

The field comes with the spec's own change; until it is in, :func:`install` wraps the watch loop's
``load_paths`` so that each document named in :data:`HEALTH` reads with that ``health`` in its
normalized form (the shape ``health.check`` documents), which is all the reconciler and the
prober read. With the field in the model (:func:`model_has_health`), specs carry it in their
files and nothing is wrapped.
"""

from __future__ import annotations

import dataclasses
import json
import os

from declarative_ct.units import parse_duration

HEALTH_ENV = "DCT_TEST_HEALTH"  # a subprocess's HEALTH, as JSON


def model_has_health() -> bool:
    """Whether the spec model takes ``health:``."""
    from declarative_ct.spec.model import ContainerSpec

    return "health" in ContainerSpec.model_fields


def normalized(health: dict) -> dict:
    """The normalized form of a spec's ``health`` as written (durations as text, defaults filled in)."""
    out = {"exec": None, "http": None, "tcp": None, "interval": 30.0, "timeout": 30.0, "retries": 3,
           "start_period": 0.0, "on_unhealthy": "none"}
    for key, value in health.items():
        out[key] = parse_duration(value, f"health.{key}") if key in ("interval", "timeout", "start_period") else value
    if out["http"] is not None:
        out["http"] = {"path": "/", "expect_status": None, **out["http"]}
    return out


HEALTH: dict[str, dict] = {}
"""name → normalized health, for the documents the wrapped loader adds it to."""


class _WithHealth:
    """A ContainerSpec whose normalized form has ``health``."""

    def __init__(self, spec, health: dict) -> None:
        self._spec, self._health = spec, health

    def __getattr__(self, name: str):
        return getattr(self._spec, name)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _WithHealth) and (self._spec, self._health) == (other._spec, other._health)

    def normalized(self) -> dict:
        return {**self._spec.normalized(), "health": self._health}

    def desired(self):
        from declarative_ct.spec.desired import DesiredSpec

        return DesiredSpec.from_json(self._spec.model_dump(mode="json"), self.normalized())


def install(monkeypatch=None) -> None:
    """Wrap the watch loop's loader (with ``monkeypatch`` when given, else for the process's life)."""
    from declarative_ct.reconcile import watch

    if HEALTH_ENV in os.environ:
        HEALTH.update(json.loads(os.environ[HEALTH_ENV]))
    original = watch.load_paths

    def load_paths(paths):
        docs = original(paths)
        return [dataclasses.replace(d, spec=_WithHealth(d.spec, HEALTH[d.spec.name])) if d.spec.name in HEALTH else d
                for d in docs]

    if monkeypatch is not None:
        monkeypatch.setattr(watch, "load_paths", load_paths)
    else:
        watch.load_paths = load_paths


def spec_document(name: str, health: dict | None, **fields) -> dict:
    """The document to write for ``name``: with ``health`` in it when the model takes it, else
    without, and ``health`` noted in :data:`HEALTH` for the wrapped loader."""
    doc = {"name": name, **fields}
    if health is not None:
        if model_has_health():
            doc["health"] = health
        else:
            HEALTH[name] = normalized(health)
    return doc
