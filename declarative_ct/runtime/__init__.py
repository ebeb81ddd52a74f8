"""The runtime core: libcontainer's container lifecycle in Python.

``Runtime(root).create(id, config)`` → :class:`Container` with ``start``/``run``/``exec``/
``signal``/``pause``/``resume``/``destroy``, status derived as runc derives it.
"""

from .container import Container, ExecProcess
from .factory import Runtime
from .process import Process
from .state import State, Status

__all__ = ["Container", "ExecProcess", "Process", "Runtime", "State", "Status"]
