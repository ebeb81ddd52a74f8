"""The ``dct`` command run as a subprocess, for the CLI integration tests (``test_cli*.py``).

``Dct(root, unique_id)`` runs ``dct --root <root> ...``, remembers the ids it handed out, and
:func:`runner` (the body of each module's ``dct`` fixture) deletes them with
``dct delete --force`` at teardown, pass or fail.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

from declarative_ct.runtime import store

DCT = [sys.executable, "-m", "declarative_ct.cli.main"]
# Repository root, so that ``python -m declarative_ct...`` works whatever the subprocess's cwd.
REPO = str(Path(__file__).resolve().parents[1])
# A program that runs until SIGTERM, then exits 0 (a PID-namespace init ignores an untrapped TERM).
UNTIL_TERM = 'trap "exit 0" TERM; while :; do sleep 0.1; done'


class Dct:
    """Runs ``dct --root <state root> ...`` and remembers the ids to delete at teardown."""

    def __init__(self, root: str, unique_id: Callable[[str], str]) -> None:
        self.root = root
        self._unique_id = unique_id
        self.ids: list[str] = []

    def new_id(self, prefix: str = "cli") -> str:
        cid = self._unique_id(prefix)
        self.ids.append(cid)
        return cid

    def argv(self, *args: Any) -> list[str]:
        return [*DCT, "--root", self.root, *map(str, args)]

    @staticmethod
    def env() -> dict[str, str]:
        env = dict(os.environ)
        env["PYTHONPATH"] = REPO + os.pathsep + env.get("PYTHONPATH", "")
        return env

    def __call__(self, *args: Any, cwd: str | os.PathLike | None = None, input: str | None = None,
                 timeout: float = 30.0) -> subprocess.CompletedProcess:
        """Run ``dct --root <root> *args``; stdout and stderr are read once dct exits.

        They are temporary files, not pipes: as with runc, ``create`` and ``run -d`` hand our
        stdio to the container, whose init would hold a pipe open (and a reader waiting for its
        end) until the container exits. What the container writes later lands in the same files.
        """
        with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
            try:
                r = subprocess.run(self.argv(*args), stdout=out, stderr=err, cwd=cwd, env=self.env(),
                                   timeout=timeout, input=input.encode() if input is not None else None,
                                   stdin=None if input is not None else subprocess.DEVNULL)
            finally:
                out.seek(0)
                err.seek(0)
                stdout, stderr = out.read().decode(errors="replace"), err.read().decode(errors="replace")
        return subprocess.CompletedProcess(r.args, r.returncode, stdout, stderr)

    def ok(self, *args: Any, **kw: Any) -> subprocess.CompletedProcess:
        r = self(*args, **kw)
        assert r.returncode == 0, f"dct {' '.join(map(str, args))}: rc {r.returncode}\n{r.stdout}\n{r.stderr}"
        assert "Traceback" not in r.stderr, r.stderr
        return r

    def fails(self, *args: Any, needles: tuple[str, ...] = (), one_line: bool = False,
              **kw: Any) -> subprocess.CompletedProcess:
        """Assert exit 1, no traceback, stderr starting ``dct: `` with every needle in it.

        ``one_line``: also exactly one line on stderr and nothing on stdout (errors of bad input).
        """
        r = self(*args, **kw)
        assert r.returncode == 1, f"dct {' '.join(map(str, args))}: rc {r.returncode}\n{r.stdout}\n{r.stderr}"
        assert "Traceback" not in r.stderr, r.stderr
        assert r.stderr.startswith("dct: "), r.stderr
        if one_line:
            assert r.stderr.count("\n") == 1, r.stderr
            assert r.stdout == ""
        for needle in needles:
            assert needle in r.stderr, f"{needle!r} not in stderr: {r.stderr!r}"
        return r

    def state(self, cid: str) -> dict:
        return json.loads(self.ok("state", cid).stdout)

    def status(self, cid: str) -> str:
        return self.state(cid)["status"]

    def state_json(self, cid: str) -> dict:
        """``<root>/<id>/state.json`` as saved (libcontainer's keys)."""
        with open(os.path.join(self.root, cid, "state.json")) as f:
            return json.load(f)

    def exit_record(self, cid: str) -> dict | None:
        try:
            with open(os.path.join(self.root, cid, "exit.json")) as f:
                return json.load(f)
        except (OSError, ValueError):
            return None

    def entries(self) -> list[str]:
        """What is in the state root (nothing when it does not even exist)."""
        return store.container_entries(self.root)


def runner(cls: type[Dct], state_root: str, unique_id: Callable[[str], str]) -> Iterator[Dct]:
    """Yield ``cls(state_root, unique_id)``, then ``dct delete --force`` every id it handed out."""
    dct = cls(state_root, unique_id)
    yield dct
    problems = []
    for cid in dct.ids:
        r = dct("delete", "--force", cid)
        if r.returncode != 0:
            problems.append(f"dct delete --force {cid}: rc {r.returncode}: {r.stderr.strip()}")
    if problems:
        pytest.fail("teardown: " + "; ".join(problems), pytrace=False)
