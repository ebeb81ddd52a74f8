"""What to probe for a container: its :class:`~declarative_ct.health.check.HealthCheck` and, for an
exec probe, the process it runs (the spec's user, env and cwd, as ``dct exec`` into it would).

One place for both the supervisor's probes (:mod:`.probing`) and apply's (:mod:`.readiness`):
:func:`health_target` reads a spec's, :func:`applied_target` a container's that this apply does not declare (made by another
apply: its health record's ``probe``, else the ``health`` of the spec it was created from).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..errors import ContainerError
from ..health.check import HealthCheck
from . import last_applied

if TYPE_CHECKING:
    from ..health.prober import Target


def target(name: str, normalized: dict | None, check: HealthCheck | None) -> Target | None:
    """The probe target of container ``name`` by ``check`` (None: no target); an exec probe runs
    with the user, env and cwd of ``normalized`` (a normalized spec; unreadable or None: root, ``/``
    and the default PATH)."""
    if check is None:
        return None
    from ..health.prober import Target  # the prober's threads and probes: imported by an apply that probes

    process = None
    if check.kind == "exec" and normalized is not None:
        try:
            process = last_applied.process(normalized, args=list(check.command), init=False)
        except (KeyError, TypeError, ValueError, ContainerError):  # ConfigInvalid: refused by the spec model first
            process = None
    return Target(name, check, process)


def health_target(spec) -> Target | None:  # noqa: ANN001 - a ContainerSpec or DesiredSpec
    """The probe target of a spec that declares ``health`` (its normalized form), else None."""
    normalized = spec.normalized()
    return target(spec.name, normalized, HealthCheck.read(normalized.get("health")))


def applied_target(name: str, record: dict | None, applied: dict | None) -> Target | None:
    """The probe target of container ``name`` that no given spec declares: the check its health
    ``record`` was last probed by (``probe``), else the ``health`` of ``applied`` (the normalized
    spec it was created from, :func:`.last_applied.read`); None when neither has one."""
    check = HealthCheck.read((record or {}).get("probe")) or HealthCheck.read((applied or {}).get("health"))
    return target(name, applied, check)
