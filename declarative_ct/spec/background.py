"""Loading specs in a child process while the caller gets on with its own start-up.

``dct apply`` spends ~110 ms importing PyYAML and pydantic and validating, and ~40 ms importing
the runtime and the reconciler. :class:`BackgroundLoad` forks (before the caller starts any
thread): the child loads and validates, the parent imports the rest meanwhile on another CPU.
The child sends back, as JSON, every document's ``model_dump`` and normalized form, or every
error; the parent works from those (:class:`~.desired.DesiredDocument`, what ``to_runtime`` and
the planner read) and never imports pydantic. A child that fails otherwise (killed, a bug) is
replaced by a load in the caller, which reports what it finds as usual. Stdlib only.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal


class BackgroundLoad:
    """``load_paths(paths)`` running in a forked child; :meth:`result` waits for it.

    Call :meth:`close` in any case (it reaps the child, killing it if the result was not read).
    """

    def __init__(self, paths: list[str]) -> None:
        self._paths = list(paths)
        read_end, write_end = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(read_end)
            _child(self._paths, write_end)
        os.close(write_end)
        self._pid, self._fd = pid, read_end

    def result(self) -> tuple[list | None, list[str]]:
        """``(documents, [])`` when every spec is valid, else ``(None, errors)`` with each error as
        ``file:line:col: field: message`` (``SpecErrors.errors``).

        Raises:
            ContainerError: what a load in this process raises when the child could not load (a
                spec error of another kind than the ones listed).
        """
        chunks = []
        while chunk := os.read(self._fd, 1 << 16):
            chunks.append(chunk)
        os.waitpid(self._pid, 0)  # it has answered: it is exiting
        self._pid = 0
        self.close()
        try:
            payload = json.loads(b"".join(chunks))
        except ValueError:
            payload = {}
        if "docs" in payload:
            from .desired import DesiredDocument  # imported after the fork: the child starts sooner

            return [DesiredDocument.from_entry(entry) for entry in payload["docs"]], []
        if "errors" in payload:
            return None, payload["errors"]
        from .load import SpecErrors, load_paths  # the child failed: load here, and report as usual

        try:
            return load_paths(self._paths), []
        except SpecErrors as err:
            return None, [str(e) for e in err.errors]

    def close(self) -> None:
        """Reap the child (SIGKILL first if it is still loading); idempotent."""
        if self._pid:
            with contextlib.suppress(ProcessLookupError):
                if os.waitpid(self._pid, os.WNOHANG)[0] == 0:
                    os.kill(self._pid, signal.SIGKILL)
                    os.waitpid(self._pid, 0)
            self._pid = 0
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


def _child(paths: list[str], fd: int) -> None:
    """Load, validate, write the JSON answer to ``fd`` and exit (never returns, never runs the
    parent's handlers or clean-up)."""
    status = 0
    try:
        from .load import SpecErrors, load_paths

        try:
            docs = load_paths(paths)
            payload = {"docs": [{"source": d.source, "line": d.line, "spec": d.spec.model_dump(mode="json"),
                                 "normalized": d.spec.normalized()} for d in docs]}
        except SpecErrors as err:
            payload = {"errors": [str(e) for e in err.errors]}
        view = memoryview(json.dumps(payload).encode())
        while view:
            view = view[os.write(fd, view):]
    except BaseException:  # noqa: BLE001 - the parent loads again and reports it
        status = 1
    finally:
        os._exit(status)
