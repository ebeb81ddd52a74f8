"""A manager killed (SIGKILL) at any step of an apply: the next apply converges and nothing leaks."""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path

import pytest

from dct_cli import Dct, runner
from declarative_ct.reconcile.apply import FAULT_ENV

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
