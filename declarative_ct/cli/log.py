"""runc's log for ``dct`` (``--log FILE``, ``--log-format``, ``--debug``): :func:`log` writes its lines."""

from __future__ import annotations

import argparse
import sys

_LOG = {"path": None, "format": "text", "debug": False}


def log(level: str, message: str) -> None:
    """Write one line of runc's log: to ``--log FILE`` when given (appended), else ``debug`` lines
    only, to stderr (errors go to stderr as ``dct: …`` anyway, see :func:`_dispatch`).

    ``--log-format json`` gives runc's (logrus's) shape, which containerd's shim reads back from
    ``<bundle>/log.json``: ``{"level":"error","msg":"…","time":"<RFC 3339, UTC>"}``; ``text`` gives
    ``time="…" level=error msg="…"``. ``debug`` lines are written only with ``--debug``. A log that
    cannot be written is skipped (the error still reaches stderr).
    """
    path = _LOG["path"]
    if (level == "debug" and not _LOG["debug"]) or (path is None and level != "debug"):
        return
    import time

    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    import json

    if _LOG["format"] == "json":
        line = json.dumps({"level": level, "msg": message, "time": now}, separators=(",", ":"))
    else:
        line = f"time={json.dumps(now)} level={level} msg={json.dumps(message)}"
    if path is None:
        sys.stderr.write(line + "\n")
        return
    import os

    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o644)
        try:
            os.write(fd, (line + "\n").encode())
        finally:
            os.close(fd)
    except OSError:
        pass


def _configure_log(known: argparse.Namespace) -> None:
    _LOG.update(path=known.log or None, format=known.log_format, debug=known.debug)
