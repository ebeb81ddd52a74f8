"""A manager killed (SIGKILL) at any step of an apply: the next apply converges and nothing leaks."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import pytest

from dct_cli import Dct, runner
from declarative_ct.reconcile.steps import FAULT_ENV

pytestmark = pytest.mark.integration
LOOP = "trap 'exit 0' TERM; while :; do sleep 0.1; done"


@pytest.fixture
def dct(state_root, unique_id):
    yield from runner(Dct, state_root, unique_id)


def _write(path: Path, rootfs: str, names: tuple[str, str], args_tag: str = "") -> None:
    a, b = names
    path.write_text(
        f"name: {a}\nrootfs: {rootfs}\nprocess: {{args: [/bin/sh, -c, \"{LOOP}{args_tag}\"]}}\nstop_timeout: 1\n"
        f"---\nname: {b}\nrootfs: {rootfs}\nprocess: {{args: [/bin/sh, -c, \"{LOOP}\"]}}\n"
        f"depends_on: [{a}]\nstop_timeout: 1\n")


def _killed_apply(dct: Dct, spec: Path, point: str) -> None:
    r = subprocess.run(dct.argv("apply", spec), env={**dct.env(), FAULT_ENV: point}, capture_output=True, text=True,
                       timeout=60, stdin=subprocess.DEVNULL)
    assert r.returncode == -signal.SIGKILL, f"not killed at {point}: rc {r.returncode}\n{r.stdout}\n{r.stderr}"


@pytest.mark.parametrize("point", ["before:create", "after:create", "before:start", "after:start"])
def test_killed_during_the_first_apply(dct, busybox_rootfs, tmp_path, point):
    names = (dct.new_id("fa"), dct.new_id("fb"))
    spec = tmp_path / "specs.yaml"
    _write(spec, busybox_rootfs, names)
    _killed_apply(dct, spec, point)
    dct.ok("apply", spec)
    assert dct("plan", spec).returncode == 0
    assert {dct.status(n) for n in names} == {"running"}


@pytest.mark.parametrize("point", ["after:stop", "before:destroy", "after:destroy", "after:create"])
def test_killed_during_a_recreate(dct, busybox_rootfs, tmp_path, point):
    names = (dct.new_id("ra"), dct.new_id("rb"))
    spec = tmp_path / "specs.yaml"
    _write(spec, busybox_rootfs, names)
    dct.ok("apply", spec)
    _write(spec, busybox_rootfs, names, args_tag=" # v2")
    _killed_apply(dct, spec, point)
    dct.ok("apply", spec)
    assert dct("plan", spec).returncode == 0
    assert {dct.status(n) for n in names} == {"running"}


def test_apply_goes_on_when_its_reader_leaves(dct, busybox_rootfs, tmp_path):
    """Regression: `dct apply … | head -1` stopped after the first outcome line (the BrokenPipeError
    of the printing worker ended the apply, so later dependency waves never ran)."""
    names = [dct.new_id(f"pipe{i}") for i in range(4)]
    spec = tmp_path / "chain.yaml"
    spec.write_text("---\n".join(
        f"name: {name}\nrootfs: {busybox_rootfs}\nprocess: {{args: [/bin/sh, -c, \"{LOOP}\"]}}\nstop_timeout: 1\n"
        + (f"depends_on: [{names[i - 1]}]\n" if i else "") for i, name in enumerate(names)))
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone before the first line
    try:
        subprocess.run(dct.argv("apply", spec), stdout=write_end, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
                       env={**dct.env(), "PYTHONUNBUFFERED": "1"}, timeout=60)
    finally:
        os.close(write_end)
    assert {dct.status(n) for n in names} == {"running"}
    assert dct("plan", spec).returncode == 0


def test_a_closed_stdout_is_no_traceback(dct, busybox_rootfs, tmp_path):
    """Regression: `dct validate … >&-` ended in AttributeError (sys.stdout is None) at the final flush."""
    spec = tmp_path / "one.yaml"
    _write(spec, busybox_rootfs, (dct.new_id("so"), dct.new_id("sp")))
    r = subprocess.run(["sh", "-c", 'exec "$@" >&-', "sh", *map(str, dct.argv("validate", spec))],
                       capture_output=True, text=True, env=dct.env(), timeout=60, stdin=subprocess.DEVNULL)
    assert "Traceback" not in r.stderr and r.returncode in (0, 1), r.stderr
