"""A create killed (SIGKILL) half-way: listed as ``unknown``, and a create of the same id reclaims it.

The create is stopped at a point where its state directory holds exec.fifo and cgroup.json, its
cgroup holds init, and state.json is not written yet: init's set-up reads ``/etc/passwd`` (for
HOME), a fifo in this rootfs, and blocks there while the creating process waits for "ready".
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import threading

import pytest

from conftest import unique_id, wait_for
from dct_cli import DCT, REPO
from declarative_ct.configs import Config
from declarative_ct.errors import ContainerError, ContainerExists, CreateInterrupted
from declarative_ct.runtime import Process, Runtime, Status, cgroups, store

pytestmark = pytest.mark.integration

_CREATE = """
import sys
from declarative_ct.configs import Config
from declarative_ct.runtime import Process, Runtime
root, cid, rootfs, cgroups_path = sys.argv[1:5]
config = Config(rootfs=rootfs, hostname="box")
config.cgroups.path = cgroups_path
Runtime(root).create(cid, config).start(Process(["/bin/true"], env=["PATH=/bin"]))
"""


@pytest.fixture
def interrupted(runtime, busybox_rootfs, tmp_path):
    """``(id, init pid)`` of a create killed while its init blocks in set-up."""
    return _interrupt(runtime, busybox_rootfs, str(tmp_path))


def _interrupt(runtime, busybox_rootfs: str, base: str, cgroups_path: str = "") -> tuple[str, int]:
    rootfs = os.path.join(base, "rootfs")
    shutil.copytree(busybox_rootfs, rootfs, symlinks=True)
    passwd = os.path.join(rootfs, "etc", "passwd")
    os.unlink(passwd)
    os.mkfifo(passwd)
    cid = unique_id("cut")
    state_dir = os.path.join(runtime.root, cid)
    proc = subprocess.Popen([sys.executable, "-c", _CREATE, runtime.root, cid, rootfs, cgroups_path], cwd=REPO)
    try:
        paths = wait_for(lambda: _read(os.path.join(state_dir, store.CGROUP_FILE)), 20,
                         message="the create to record its cgroup")
        pids = wait_for(lambda: cgroups.manager_from_paths(paths).get_all_pids(), 10, message="init in the cgroup")
    finally:
        proc.kill()
        proc.wait()
    assert sorted(os.listdir(state_dir)) == sorted([".lock", store.CGROUP_FILE, store.EXEC_FIFO] +
                                                  [n for n in os.listdir(state_dir) if n.endswith(".log")])
    return cid, pids[0]


def _read(path: str):
    try:
        return store.read_json(path)
    except (OSError, ValueError):
        return None


def test_an_interrupted_create_is_listed_as_unknown(runtime, interrupted, tmp_path):
    cid, _ = interrupted
    _, corrupt = runtime.list_with_errors()
    assert isinstance(corrupt.get(cid), CreateInterrupted)
    out = subprocess.run([*DCT, "--root", runtime.root, "list", "--format", "json"], capture_output=True,
                         text=True, cwd=REPO)
    row = next(r for r in json.loads(out.stdout) if r["id"] == cid)
    assert row["status"] == "unknown"
    assert f"dct delete --force {cid}" in out.stderr


def test_create_of_the_same_id_reclaims_it(runtime, busybox_config, interrupted):
    cid, old_init = interrupted
    c = runtime.create(cid, busybox_config())
    assert not os.path.exists(f"/proc/{old_init}") or _zombie(old_init)
    c.start(Process(["/bin/true"]))
    c.exec()
    assert wait_for(c.exit_status, 10)["exit_code"] == 0


def test_a_create_in_progress_is_not_reclaimed(runtime, busybox_config, interrupted):
    cid, old_init = interrupted
    state_dir = os.path.join(runtime.root, cid)
    held, release = threading.Event(), threading.Event()

    def hold():
        with store.locked(state_dir):
            held.set()
            release.wait(10)

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        held.wait(5)
        with pytest.raises(ContainerExists):
            runtime.create(cid, busybox_config())
        assert cid not in runtime.list_with_errors()[1]  # in progress: not shown as unknown
    finally:
        release.set()
        holder.join()
    assert os.path.exists(f"/proc/{old_init}")


def test_a_cgroup_of_the_configs_choosing_is_not_reclaimed(runtime, busybox_config, busybox_rootfs, tmp_path,
                                                          register_state_root):
    """A's create (cgroupsPath P) was interrupted and its init died; B, in another state root, now
    runs in P too. A create of A must not kill B by reclaiming P: refused, naming delete --force."""
    shared = "/" + unique_id("shared")
    cid, old_init = _interrupt(runtime, busybox_rootfs, str(tmp_path), shared)
    mgr = cgroups.new_manager(cid, path=shared)
    other = Runtime(register_state_root(str(tmp_path / "other")))
    b = None
    try:
        mgr.kill_all(signal.SIGKILL)  # A's init dies (the OOM killer, an admin…); A's directory stays
        wait_for(lambda: not mgr.get_all_pids(), 10, message="A's init to go")
        cfg = busybox_config()
        cfg.cgroups.path = shared
        b = other.create(unique_id("b"), cfg)
        b.run(Process(["/bin/sleep", "1000"]))
        b_init = b.state().init_process_pid
        with pytest.raises(CreateInterrupted, match=rf"container {cid}: an interrupted create left .*, with the "
                                                    rf"cgroup {shared} its config chose: .* not reclaimed"):
            runtime.create(cid, busybox_config())
        assert b.status() == Status.RUNNING and b_init in mgr.get_all_pids()
        bundle = tmp_path / "bundle"  # the CLI says how to remove it
        bundle.mkdir()
        subprocess.run([*DCT, "spec", "-b", str(bundle)], check=True, cwd=REPO)
        spec = json.loads((bundle / "config.json").read_text())
        spec["root"]["path"], spec["process"]["terminal"] = busybox_rootfs, False
        (bundle / "config.json").write_text(json.dumps(spec))
        out = subprocess.run([*DCT, "--root", runtime.root, "create", "-b", str(bundle), cid], capture_output=True,
                             text=True, cwd=REPO)
        assert out.returncode == 1 and f"not reclaimed (dct delete --force {cid} removes it)" in out.stderr, out.stderr
        assert b.status() == Status.RUNNING and b_init in mgr.get_all_pids()
        assert os.path.exists(os.path.join(runtime.root, cid, store.CGROUP_FILE))  # nothing touched
    finally:
        if b is not None:
            with contextlib.suppress(ContainerError):  # (unfixed: the reclaim killed it)
                b.signal(signal.SIGKILL)
            wait_for(lambda: b.status() == Status.STOPPED, 10, message="B to stop")
            b.destroy()
        runtime.cleanup(cid, force=True)
        if mgr.exists():
            mgr.kill_all(signal.SIGKILL)
            mgr.destroy()


def _zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True
