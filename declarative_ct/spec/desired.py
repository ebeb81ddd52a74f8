"""The desired spec: what the reconciler reads of a container spec, however it was loaded.

A spec reaches ``plan``, ``apply`` and ``to_runtime`` by one of three roads: a full load in this
process (a pydantic ``ContainerSpec``), a load in a forked child (:mod:`.background`) or the
spec cache (:mod:`.cache`); the last two hand over JSON (the model's dump and its normalized
form). Each becomes one :class:`DesiredSpec` (``ContainerSpec.desired()``, or built from the
JSON), and the reconciler reads nothing else. Stdlib only: a cache hit never imports pydantic.
"""

from __future__ import annotations

import copy

from . import forms


class DesiredSpec:
    """One container's desired state, frozen (setting an attribute raises AttributeError).

    Scalars as the spec gives them (``name``, ``state``: running | paused | stopped | absent,
    ``restart``: the policy text, ``stop_signal``/``reload_signal``: signal names,
    ``stop_timeout``: seconds), ``network_mode`` (``none``, ``host``, ``bridge`` or
    ``container:<name>``), ``reload_on``/``depends_on`` (fresh lists, paths absolute; ``depends_on``
    the names only), ``log`` (the runtime's ``LogConfig`` of ``logging``: bytes per file, files per
    run), ``health`` (the normalized probe, or None); :meth:`dependency_conditions` what each
    dependency must reach first;
    :meth:`normalized` is the canonical form every comparison and the runtime conversion use;
    :meth:`dump` the model's JSON dump. Built by ``ContainerSpec.desired()`` or
    :meth:`from_json` (a background load's answer, a cache entry).
    """

    __slots__ = ("name", "state", "restart", "stop_signal", "stop_timeout", "reload_signal", "network_mode", "log",
                 "_reload_on", "_depends_on", "_dump", "_normalized")

    def __init__(self, dump: dict, normalized: dict) -> None:
        init = object.__setattr__
        for name in ("name", "state", "restart", "stop_signal", "stop_timeout", "reload_signal"):
            init(self, name, dump[name])
        init(self, "network_mode", normalized["network"]["mode"])
        init(self, "log", forms.log_config(normalized["logging"]))  # a LogConfig: frozen too
        init(self, "_reload_on", tuple(dump["reload_on"]))
        init(self, "_depends_on", tuple(dump["depends_on"]))
        init(self, "_dump", dump)
        init(self, "_normalized", normalized)

    @classmethod
    def from_json(cls, dump: dict, normalized: dict) -> DesiredSpec:
        """From a model's ``model_dump(mode="json")`` and its ``normalized()`` (both taken as they are:
        the caller hands them over). Raises KeyError when a field is missing (a foreign cache entry)."""
        return cls(dump, normalized)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"DesiredSpec is frozen: cannot set {name}")

    def __repr__(self) -> str:
        return f"DesiredSpec(name={self.name!r}, state={self.state!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, DesiredSpec) and self._normalized == other._normalized and self._dump == other._dump

    __hash__ = None  # equal specs compare equal; the dicts inside are not hashable

    @property
    def reload_on(self) -> list[str]:
        """The files whose change sends ``reload_signal`` (absolute paths, as given)."""
        return list(self._reload_on)

    @property
    def depends_on(self) -> list[str]:
        """The containers named in ``depends_on``, as given (list or mapping form: the names, in order)."""
        return list(self._depends_on)

    @property
    def health(self) -> dict | None:
        """The normalized ``health`` (a copy; the shape ``declarative_ct.health.check`` documents and
        ``HealthCheck.from_normalized`` reads), or None when the spec declares no probe."""
        return copy.deepcopy(self._normalized.get("health"))

    def desired(self) -> DesiredSpec:
        """Itself (``ContainerSpec.desired()`` builds one)."""
        return self

    def normalized(self) -> dict[str, object]:
        """The normalized spec, as ``ContainerSpec.normalized()`` gave it (a copy)."""
        return copy.deepcopy(self._normalized)

    def dump(self) -> dict[str, object]:
        """The model's ``model_dump(mode="json")`` (a copy)."""
        return copy.deepcopy(self._dump)

    def dependencies(self) -> list[str]:
        """As ``ContainerSpec.dependencies()``: ``depends_on`` and a ``container:<name>`` network, sorted."""
        return forms.dependencies(self._normalized)

    def dependency_conditions(self) -> dict[str, str]:
        """Every dependency (:meth:`dependencies`) → its condition: ``started`` (running), ``healthy``
        (its probe passes) or ``completed`` (exited 0); a ``container:<name>`` network dependency is
        ``started`` unless ``depends_on`` names it with another condition. Sorted by name; a new dict."""
        return forms.dependency_conditions(self._normalized)

    def full(self):  # noqa: ANN201 - ContainerSpec
        """The ContainerSpec itself (imports pydantic)."""
        from .model import ContainerSpec

        return ContainerSpec.model_validate(self._dump)


class DesiredDocument:
    """A spec document as the reconciler reads it: ``spec`` (a :class:`DesiredSpec`), ``source``
    (the file's absolute path) and ``line`` (1-based; 0 for inline options). Frozen."""

    __slots__ = ("spec", "source", "line")

    def __init__(self, spec: DesiredSpec, source: str, line: int = 0) -> None:
        object.__setattr__(self, "spec", spec)
        object.__setattr__(self, "source", source)
        object.__setattr__(self, "line", line)

    @classmethod
    def from_entry(cls, entry: dict) -> DesiredDocument:
        """From ``{"source", "line", "spec": <model dump>, "normalized"}`` (a cache entry, a
        background load's answer). Raises KeyError when a key is missing."""
        return cls(DesiredSpec.from_json(entry["spec"], entry["normalized"]), entry["source"], entry["line"])

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"DesiredDocument is frozen: cannot set {name}")

    def __repr__(self) -> str:
        return f"DesiredDocument({self.spec!r}, {self.source!r}, {self.line})"


def desired_documents(docs) -> list[DesiredDocument]:  # noqa: ANN001 - SpecDocument-likes
    """The documents as the reconciler reads them: each ``doc.spec`` (a ``ContainerSpec`` or a
    :class:`DesiredSpec`) as its :class:`DesiredSpec` (``spec.desired()``), with its source and line."""
    return [DesiredDocument(d.spec.desired(), d.source, getattr(d, "line", 0)) for d in docs]
