"""``dct apply --wait``: the wait after the actions, as the terminal shows it (what is waited for,
each container as it settles, the ones not ready on stderr). The waiting itself is
:func:`declarative_ct.reconcile.wait.wait_applied`, shared with the Ansible modules.
"""

from __future__ import annotations

import sys
import time

PROG = "dct"


def wait_after_apply(runtime, docs, outcomes, probes, timeout: float, deadline: float) -> int:  # noqa: ANN001
    """Wait, until ``deadline`` (monotonic; ``timeout`` seconds after the apply began), for the
    containers whose action succeeded to be in their spec's state and, where they declare health,
    healthy (``probes``: the apply's ``WaitProbes``); print each as it settles. 0: all ready (or
    none to wait for); 1: some are not (named on stderr with their status and last probe output);
    130: Ctrl-C (the containers are left as they are)."""
    from ..reconcile.wait import wait_applied
    from ..units import format_duration

    def start(wanted: str) -> None:
        left = max(0.0, deadline - time.monotonic())
        print(f"waiting up to {format_duration(round(left, 1))} for {wanted}", flush=True)

    try:
        found = wait_applied(runtime, docs, outcomes, timeout, deadline, probes, on_start=start,
                             on_ready=lambda r: print(r, flush=True))
    except KeyboardInterrupt:
        print(f"{PROG} apply: interrupted: stopped waiting; the containers are left as they are", file=sys.stderr)
        return 130
    failing = [r for r in found if not r.ready]
    if failing:
        print(f"{PROG}: not ready: " + "; ".join(str(r) for r in failing), file=sys.stderr)
        return 1
    if found:
        print(f"ready: {', '.join(r.name for r in found)}")
    return 0
