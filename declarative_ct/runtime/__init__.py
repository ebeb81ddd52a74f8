"""The runtime core: libcontainer's container lifecycle in Python.

``Runtime(root).create(id, config)`` → :class:`Container` with ``start``/``run``/``exec``/
``signal``/``pause``/``resume``/``destroy``, status derived as runc derives it.

The public classes are imported on first use (PEP 562): the state root's monitor imports this
package for its own modules and forks every container's init, and a lean monitor (no
``container``, ``factory``, hashlib or shutil) makes each fork cheaper.
"""

from __future__ import annotations

import importlib

_EXPORTS = {"Container": ".container", "ExecProcess": ".container.exec", "Runtime": ".factory", "Process": ".process",
            "State": ".state", "Status": ".state"}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> object:
    try:
        module = _EXPORTS[name]
    except KeyError:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value
