"""``dct`` verbs of the desired-state side: validate, schema, plan, apply, status, watch.

Thin: they load specs (:mod:`declarative_ct.spec`) and call the reconciler; imported only for
these verbs, so pydantic and PyYAML stay out of the runc-like verbs' start-up.
"""

from __future__ import annotations
