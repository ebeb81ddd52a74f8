"""Faults found by a reliability trial (issue 13): each test failed before its fix.

A full disk (a real small tmpfs as the state root, so ENOSPC comes from the kernel), a frozen
descendant freezer cgroup, a truncated ``state.json``, a torn journal line, and a program the
container's user cannot execute.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Callable

import pytest

from conftest import cleanup_state_root
from dct_cli import Dct, runner
from declarative_ct.configs import Config
from declarative_ct.runtime import cgroups

pytestmark = pytest.mark.integration
LOOP = "trap 'exit 0' TERM; while :; do sleep 0.1; done"
MI = 1 << 20


def _v1() -> bool:
    return cgroups.detect()[0] == "v1"


needs_v1 = pytest.mark.skipif(not _v1(), reason="reads cgroup v1 files (this host's hierarchy)")


# -- a small tmpfs as the state root ----------------------------------------------------------
@pytest.fixture
def tmpfs_root(state_root: str) -> str:
    """``state_root`` as a 4 MiB tmpfs; at teardown its containers are removed, then it is unmounted."""
    os.makedirs(state_root)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m,mode=0711", "tmpfs", state_root], check=True)
    try:
        yield state_root
    finally:
        _unfill(state_root)
        problems = cleanup_state_root(state_root)
        time.sleep(0.3)  # the root's monitor lingers 0.2 s after its last container
        if subprocess.run(["umount", state_root]).returncode != 0:
            subprocess.run(["umount", "-l", state_root], check=True)
        assert not problems, problems


FILLER = "#filler"  # a manager-prefixed name: no container entry


def _fill(root: str) -> None:
    """Fill the tmpfs ``root`` until the kernel says ENOSPC."""
    with open(os.path.join(root, FILLER), "wb") as f:
        try:
            while True:
                f.write(b"\0" * 65536)
                f.flush()
        except OSError as err:
            assert err.errno == 28, err
    # The buffered tail that did not fit is dropped with the file object above: check it is full.
    with pytest.raises(OSError) as full:
        with open(os.path.join(root, "#probe"), "wb") as f:
            f.write(b"x")
    assert full.value.errno == 28
    os.unlink(os.path.join(root, "#probe")) if os.path.exists(os.path.join(root, "#probe")) else None


def _unfill(root: str) -> None:
    if os.path.exists(os.path.join(root, FILLER)):
        os.unlink(os.path.join(root, FILLER))


@pytest.fixture
def dct(tmpfs_root: str, unique_id) -> Dct:
    yield from runner(Dct, tmpfs_root, unique_id)


def _memory_limit(dct: Dct, cid: str) -> int:
    with open(os.path.join(dct.state_json(cid)["cgroup_paths"]["memory"], "memory.limit_in_bytes")) as f:
        return int(f.read())


@needs_v1
def test_update_on_a_full_disk_rolls_the_cgroup_back(dct: Dct, busybox_rootfs: str, tmp_path: Path) -> None:
    cid = dct.new_id("full")
    spec = tmp_path / "spec.yaml"
    spec.write_text(f"name: {cid}\nrootfs: {busybox_rootfs}\nprocess: {{args: [/bin/sh, -c, \"{LOOP}\"]}}\n"
                    "resources: {memory: 64Mi, pids: 20}\nstop_timeout: 1\n")
    dct.ok("apply", spec)
    assert _memory_limit(dct, cid) == 64 * MI
    _fill(dct.root)
    r = dct.fails("update", cid, "--memory", "96m", "--pids-limit", "30")
    assert "No space left on device" in r.stderr and "state.json" in r.stderr, r.stderr
    # The kernel and state.json agree: the old limits, in both.
    assert _memory_limit(dct, cid) == 64 * MI
    with open(os.path.join(dct.state_json(cid)["cgroup_paths"]["pids"], "pids.max")) as f:
        assert f.read().strip() == "20"
    saved = dct.state_json(cid)["config"]["cgroups"]["resources"]
    assert (saved["memory"], saved["pids_limit"]) == (64 * MI, 20)
    assert dct("plan", spec).returncode == 0
    _unfill(dct.root)
    dct.ok("update", cid, "--memory", "96m")  # and with room again, it works
    assert _memory_limit(dct, cid) == 96 * MI == dct.state_json(cid)["config"]["cgroups"]["resources"]["memory"]


def test_create_on_a_full_disk_names_the_file(dct: Dct, busybox_rootfs: str, tmp_path: Path) -> None:
    from declarative_ct.runtime import specconv

    bundle = tmp_path / "bundle"
    bundle.mkdir()
    config = specconv.example_spec()
    config["root"]["path"] = busybox_rootfs
    config["process"]["args"] = ["sh", "-c", LOOP]
    config["process"]["terminal"] = False
    (bundle / "config.json").write_text(json.dumps(config))
    os.makedirs(dct.root, exist_ok=True)
    _fill(dct.root)
    cid = dct.new_id("fullc")
    r = dct.fails("create", "--bundle", bundle, cid)
    assert "No space left on device" in r.stderr, r.stderr
    assert f"{dct.root}/{cid}/" in r.stderr, f"the file being written is not named: {r.stderr!r}"
    assert dct.entries() == []  # a failed create leaves nothing behind


# -- a frozen descendant freezer cgroup -------------------------------------------------------
@pytest.fixture
def cli(state_root: str, unique_id) -> Dct:
    """The CLI on an ordinary state root."""
    yield from runner(Dct, state_root, unique_id)


@pytest.fixture
def frozen_child(cli: Dct, busybox_rootfs: str, tmp_path: Path, wait_for):
    """A running container with one of its processes moved into ``<freezer cgroup>/sub``, FROZEN there.

    Yields ``(id, pid of the frozen process, sub's directory)``; thaws ``sub`` at teardown, so that a
    failing test still cleans up.
    """
    from declarative_ct.runtime import specconv

    bundle = tmp_path / "bundle"
    bundle.mkdir()
    config = specconv.example_spec()
    config["root"]["path"] = busybox_rootfs
    config["process"]["args"] = ["sh", "-c", f"sleep 1000 & {LOOP}"]
    config["process"]["terminal"] = False
    (bundle / "config.json").write_text(json.dumps(config))
    cid = cli.new_id("frz")
    cli.ok("run", "-d", "--bundle", bundle, cid)
    init_pid = cli.state(cid)["pid"]

    def sleeper() -> int | None:
        for pid in json.loads(cli.ok("ps", "--format", "json", cid).stdout):
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if f.read().startswith(b"sleep\0") and pid != init_pid:
                    return pid
        return None

    pid = wait_for(sleeper, message="the container's sleep")
    sub = os.path.join(cli.state_json(cid)["cgroup_paths"]["freezer"], "sub")
    os.mkdir(sub)
    try:
        with open(os.path.join(sub, "cgroup.procs"), "w") as f:
            f.write(str(pid))
        with open(os.path.join(sub, "freezer.state"), "w") as f:
            f.write("FROZEN")
        wait_for(lambda: open(os.path.join(sub, "freezer.state")).read().strip() == "FROZEN",
                 message="sub to be FROZEN")
        assert cli.status(cid) == "running"  # the container itself is not paused
        yield cid, pid, sub
    finally:
        if os.path.isdir(sub):
            with open(os.path.join(sub, "freezer.state"), "w") as f:
                f.write("THAWED")


def _gone(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except FileNotFoundError:
        return True


@needs_v1
def test_kill_all_kills_a_process_in_a_frozen_descendant(cli: Dct, frozen_child, wait_for) -> None:
    cid, pid, _ = frozen_child
    cli.ok("kill", "--all", cid, "KILL")
    wait_for(lambda: _gone(pid), timeout=3, message=f"pid {pid} in the frozen sub-cgroup to die")
    wait_for(lambda: cli.status(cid) == "stopped", timeout=3)
    cli.ok("delete", cid)


@needs_v1
def test_delete_force_removes_a_container_with_a_frozen_descendant(cli: Dct, frozen_child, cgroup_dirs) -> None:
    cid, pid, sub = frozen_child
    began = time.monotonic()
    cli.ok("delete", "--force", cid, timeout=8)
    assert time.monotonic() - began < 3
    assert _gone(pid) and not os.path.exists(sub) and cgroup_dirs(cid) == [] and cli.entries() == []


# -- a truncated state.json ----------------------------------------------------------------------
def _truncate_state(cli: Dct, cid: str) -> None:
    path = os.path.join(cli.root, cid, "state.json")
    with open(path, "rb") as f:
        data = f.read()
    with open(path, "wb") as f:
        f.write(data[:len(data) // 2])


def test_a_truncated_state_json_shows_in_list_plan_and_is_deleted_by_force(
        cli: Dct, busybox_rootfs: str, tmp_path: Path, cgroup_dirs, wait_for) -> None:
    cid = cli.new_id("trunc")
    spec = tmp_path / "spec.yaml"
    spec.write_text(f"name: {cid}\nrootfs: {busybox_rootfs}\nprocess: {{args: [/bin/sh, -c, \"{LOOP}\"]}}\n"
                    "stop_timeout: 1\n")
    cli.ok("apply", spec)
    pid = cli.state(cid)["pid"]
    _truncate_state(cli, cid)

    # list: the container is there, status unknown, and the error names it
    r = cli.ok("list")
    row = next((line.split() for line in r.stdout.splitlines()[1:] if line.split()[0] == cid), None)
    assert row is not None and row[2] == "unknown", r.stdout
    assert cid in r.stderr and "state.json" in r.stderr, r.stderr
    rows = json.loads(cli.ok("list", "--format", "json").stdout)
    entry = next(e for e in rows if e["id"] == cid)
    assert entry["status"] == "unknown" and "state.json" in entry["error"]
    assert cid in cli.ok("list", "-q").stdout.split()

    # plan: a problem for that name, not a create; apply neither creates nor touches it
    r = cli("plan", spec)
    assert r.returncode == 1 and "create" not in r.stdout, r.stdout + r.stderr
    assert f"{cid}:" in r.stderr and "state.json" in r.stderr and "Traceback" not in r.stderr, r.stderr
    r = cli("apply", spec)
    assert r.returncode == 1 and "already exists" not in r.stdout + r.stderr and "Traceback" not in r.stderr, \
        r.stdout + r.stderr
    assert not _gone(pid)
    r = cli("status", spec)
    assert r.returncode == 0 and "Traceback" not in r.stderr and "unknown" in r.stdout, r.stdout + r.stderr

    # the verbs on that id say what removes it
    for verb in (("delete",), ("state",), ("kill",)):
        r = cli(*verb, cid)
        assert r.returncode == 1 and f"dct delete --force {cid} removes it" in r.stderr, r.stderr

    # delete --force still cleans it up: processes, cgroups, state directory
    cli.ok("delete", "--force", cid)
    wait_for(lambda: _gone(pid), timeout=3)
    assert cgroup_dirs(cid) == [] and cli.entries() == []
    assert cli.ok("list", "--format", "json").stdout.strip() == "null"


# -- the program is looked up with the container's credentials ----------------------------------
@pytest.fixture
def rootfs_with_secret(busybox_rootfs: str, tmp_path: Path) -> str:
    """A copy of the busybox rootfs with ``/bin/secret`` (a script printing its uid), root's, mode 0700."""
    import shutil

    root = str(tmp_path / "rootfs")
    shutil.copytree(busybox_rootfs, root, symlinks=True)
    secret = os.path.join(root, "bin", "secret")
    with open(secret, "w") as f:
        f.write("#!/bin/sh\nid -u\n")
    os.chown(secret, 0, 0)
    os.chmod(secret, 0o700)
    return root


# runc's default set: no CAP_DAC_OVERRIDE, which would let uid 1000 execute a root-only file
FEW_CAPS = ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]


@pytest.mark.parametrize("how", ["start", "run"])
def test_a_program_the_user_cannot_execute_fails_create(runtime, rootfs_with_secret, unique_id,
                                                       cgroup_dirs, how) -> None:
    from declarative_ct.configs import Capabilities
    from declarative_ct.errors import ContainerError
    from declarative_ct.runtime import Process

    caps = Capabilities(Bounding=FEW_CAPS, Effective=FEW_CAPS, Permitted=FEW_CAPS)
    c = runtime.create(unique_id("noexec"), Config(rootfs=rootfs_with_secret, hostname="box"))
    with pytest.raises(ContainerError, match=r"(?i)/bin/secret.*permission denied|permission denied.*/bin/secret"):
        getattr(c, how)(Process(["/bin/secret"], uid=1000, gid=1000, capabilities=caps))
    assert not os.path.exists(c.state_dir) and cgroup_dirs(c.id) == []


def test_a_program_the_user_can_execute_still_runs_as_that_user(run_container,
                                                                rootfs_with_secret) -> None:
    from declarative_ct.configs import Capabilities
    from declarative_ct.runtime import Process

    caps = Capabilities(Bounding=FEW_CAPS, Effective=FEW_CAPS, Permitted=FEW_CAPS)
    done = run_container(Config(rootfs=rootfs_with_secret, hostname="box"),
                         Process(["id", "-u"], uid=1000, gid=1000, capabilities=caps))
    assert (done.exit_code, done.stdout.strip()) == (0, "1000")
    root = run_container(Config(rootfs=rootfs_with_secret, hostname="box"), Process(["/bin/secret"]))
    assert (root.exit_code, root.stdout.strip()) == (0, "0")  # root may run it
