"""The drift classifier of the reconciler (``dct status`` and the TUI show its words)."""

from __future__ import annotations

import pytest

from declarative_ct.reconcile.drift import classify_drift

WALL = 1_700_000_000.0


@pytest.mark.parametrize("args, drift", [
    (("running", None, False, False, False, None), "missing"),
    (("absent", None, False, False, False, None), "in-sync"),
    (("running", "running", False, False, False, None), "unmanaged"),
    ((None, "running", True, False, True, None), "undeclared"),
    ((None, "running", True, False, False, None), "-"),
    (("running", "running", True, True, False, None), "drifted"),
    (("running", "stopped", True, False, False, None), "exited"),
    (("running", "stopped", True, False, False, WALL + 5), "backoff"),
    (("stopped", "stopped", True, False, False, None), "in-sync"),
    (("running", "running", True, False, False, None), "in-sync"),
])
def test_drift_classification_matches_dct_status(args, drift):
    assert classify_drift(*args) == drift
