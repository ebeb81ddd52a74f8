"""apply's probes beside the supervisor: ``dct apply`` (its ``depends_on`` waits and ``--wait``) and
the Ansible modules probe what they wait for only when no supervisor probes those containers; two
probers on one container overwrite each other's health record in turn (its streak flaps) and run
each exec probe twice.
"""

from __future__ import annotations

from ..reconcile.wait import WaitProbes, supervisor_probes
from ..runtime import Runtime


def wait_probes(runtime: Runtime, docs) -> WaitProbes:  # noqa: ANN001 - the apply's documents
    """The :class:`~declarative_ct.reconcile.wait.WaitProbes` for an apply of ``docs`` (``.source``)
    on ``runtime``'s root: when the root's supervisor (:func:`supervised`) runs and watches the
    files ``docs`` come from, they only read the health records it keeps, except for a dependency
    that nobody probes (no record, or a stale one) while apply holds the apply lock, which the
    supervisor's passes wait for; asked at the first probe wanted, so an apply that waits for no
    health never asks. The caller closes them."""
    return WaitProbes(runtime, probe=lambda: not supervised(runtime.root, docs))


def supervised(root: str, docs) -> bool:  # noqa: ANN001 - documents
    """Whether the supervisor of state root ``root`` (``dct watch``, the service: :mod:`.supervisor`,
    its lock held) probes the containers of ``docs``: it runs and watches their spec files."""
    from . import supervisor

    return supervisor_probes(supervisor.read(root), docs)
