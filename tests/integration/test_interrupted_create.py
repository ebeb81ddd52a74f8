"""A create killed (SIGKILL) half-way: listed as ``unknown``, and a create of the same id reclaims it.

The create is stopped at a point where its state directory holds exec.fifo and cgroup.json, its
cgroup holds init, and state.json is not written yet: init's set-up reads ``/etc/passwd`` (for
HOME), a fifo in this rootfs, and blocks there while the creating process waits for "ready".
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading

import pytest

from conftest import unique_id, wait_for
from dct_cli import DCT, REPO
from declarative_ct.configs import Config
from declarative_ct.errors import ContainerExists, CreateInterrupted
from declarative_ct.runtime import Process, cgroups, store

pytestmark = pytest.mark.integration

_CREATE = """
import sys
from declarative_ct.configs import Config
from declarative_ct.runtime import Process, Runtime
root, cid, rootfs = sys.argv[1:4]
Runtime(root).create(cid, Config(rootfs=rootfs, hostname="box")).start(Process(["/bin/true"], env=["PATH=/bin"]))
"""


@pytest.fixture
def interrupted(runtime, busybox_rootfs, tmp_path):
    """``(id, init pid)`` of a create killed while its init blocks in set-up."""
    rootfs = str(tmp_path / "rootfs")
    shutil.copytree(busybox_rootfs, rootfs, symlinks=True)
    passwd = os.path.join(rootfs, "etc", "passwd")
    os.unlink(passwd)
    os.mkfifo(passwd)
    cid = unique_id("cut")
    state_dir = os.path.join(runtime.root, cid)
    proc = subprocess.Popen([sys.executable, "-c", _CREATE, runtime.root, cid, rootfs], cwd=REPO)
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


def _zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True
