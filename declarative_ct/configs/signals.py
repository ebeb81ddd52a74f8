"""Signal names as runc's ``kill`` takes them: a number, or a name with or without ``SIG``, any case.

In ``configs`` (stdlib only) because both the runtime (``kill``) and ``spec`` (``stop_signal``) parse them.
"""

from __future__ import annotations

import signal

from ..errors import ConfigInvalid


def parse_signal(value: str | int) -> int:
    """Return the signal number for ``"TERM"``, ``"sigterm"``, ``"15"`` or ``15``.

    Raises:
        ConfigInvalid: for an unknown name or a number outside 1..64.
    """
    if isinstance(value, int) or str(value).isdigit():
        num = int(value)
        if 1 <= num <= signal.SIGRTMAX:
            return num
        raise ConfigInvalid(f"invalid signal number {value}")
    name = str(value).upper()
    if not name.startswith("SIG"):
        name = "SIG" + name
    try:
        return int(signal.Signals[name])
    except KeyError:
        raise ConfigInvalid(f"unknown signal {value!r}") from None
