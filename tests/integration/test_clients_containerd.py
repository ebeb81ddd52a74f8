"""containerd 1.6 (``ctr``) with runc and with dct as the shim's OCI runtime (``ctr run --runc-binary``).

One private containerd (config, root, state, socket under a temporary directory) is started for
the module and stopped at its end (tasks killed, daemon and shims killed and reaped, mounts and
cgroups checked). The image is the busybox rootfs imported into podman, saved as a docker-archive
and ``ctr image import``ed. As in ``test_clients_podman.py``, runc is the reference and a dct case
that fails today is ``xfail`` (not strict) naming what dct lacks.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
import uuid

import pytest

from clients import (IMAGE, WINSIZE, Containerd, Podman, build_rootfs_tar, cgroup_dirs_named, missing_tools,
                     runtimes)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]


@pytest.fixture(scope="module")
def containerd(tmp_path_factory: pytest.TempPathFactory) -> Containerd:
    """A private containerd with the busybox image imported; stopped and leak-checked at module end."""
    if os.geteuid() != 0:
        pytest.skip("containerd tests need root")
    missing = missing_tools("containerd", "ctr", "containerd-shim-runc-v2", "podman", "runc")
    if missing:
        pytest.skip(f"not installed: {missing} (./scripts/setup installs containerd and podman)")
    base = tmp_path_factory.mktemp("ctrd")
    archive = str(base / "busybox-image.tar")
    pm = Podman(str(base / "pm"))
    try:
        pm.import_image(build_rootfs_tar(str(base / "busybox.tar")))
        pm.save_image(archive)
    finally:
        problems = pm.teardown()
    assert not problems, problems
    # Not under pytest's 0700 temporary directory: a user-namespaced container's root (host uid
    # 100000, test_uidmap) must be able to reach the rootfs containerd mounts for it.
    top = tempfile.mkdtemp(prefix="dct-ctrd-", dir="/var/tmp")
    os.chmod(top, 0o711)
    daemon = Containerd(os.path.join(top, "c"))
    try:
        daemon.start()
        daemon.ctr("image", "import", archive, timeout=60).check()
        yield daemon
    finally:
        problems = daemon.stop()
        if not problems:
            shutil.rmtree(top, ignore_errors=True)
    assert not problems, "containerd run leaked:\n" + "\n".join(problems)


@pytest.fixture
def ids(containerd: Containerd) -> list[str]:
    """Container ids for this test (append to it); each task and container is removed at teardown."""
    made: list[str] = []
    yield made
    for cid in made:
        containerd.remove(cid)


def _id(ids: list[str], what: str) -> str:
    cid = f"dct-test-{what}-{uuid.uuid4().hex[:6]}"
    ids.append(cid)
    return cid


def _run_detached(containerd: Containerd, runtime: str, ids: list[str], *opts: str,
                  cmd: tuple[str, ...] = ("sleep", "300")) -> str:
    cid = _id(ids, "d")
    containerd.ctr("run", "-d", "--null-io", *containerd.runc_args(runtime), *opts, IMAGE, cid, *cmd).check()
    return cid


def _task_status(containerd: Containerd, cid: str) -> str:
    for line in containerd.ctr("task", "ls").check().out.splitlines()[1:]:
        fields = line.split()
        if fields and fields[0] == cid:
            return fields[-1]
    return ""


@runtimes()
def test_run_rm(containerd: Containerd, runtime: str, ids: list[str]) -> None:
    """``ctr run --rm``: output, exit code, and nothing left (no container, no task)."""
    cid = _id(ids, "rm")
    r = containerd.ctr("run", "--rm", *containerd.runc_args(runtime), IMAGE, cid, "sh", "-c", "echo out; exit 5")
    assert r.rc == 5, r
    assert r.out == "out\n"
    assert cid not in containerd.container_ids()


@runtimes()
def test_detach_task_ls_exec_kill_delete(containerd: Containerd, runtime: str, ids: list[str]) -> None:
    """``run -d``, ``task ls`` (RUNNING), ``task exec`` (output, exit code), ``task kill``, ``task delete``."""
    cid = _run_detached(containerd, runtime, ids)
    assert _task_status(containerd, cid) == "RUNNING"
    r = containerd.ctr("task", "exec", "--exec-id", "e1", cid, "sh", "-c", "cat /proc/1/cmdline; exit 4")
    assert r.rc == 4 and r.out == "sleep\0" "300\0", r
    containerd.ctr("task", "kill", "-s", "SIGKILL", cid).check()
    deadline = time.monotonic() + 10
    while _task_status(containerd, cid) != "STOPPED":
        assert time.monotonic() < deadline, f"task {cid} not STOPPED after kill: {_task_status(containerd, cid)}"
        time.sleep(0.1)
    containerd.ctr("task", "delete", cid).check()
    assert _task_status(containerd, cid) == ""


@runtimes()
def test_pause_resume(containerd: Containerd, runtime: str, ids: list[str]) -> None:
    """``task pause`` (PAUSED, the freezer frozen) and ``task resume`` (RUNNING, exec works)."""
    cid = _run_detached(containerd, runtime, ids)
    containerd.ctr("task", "pause", cid).check()
    assert _task_status(containerd, cid) == "PAUSED"
    containerd.ctr("task", "resume", cid).check()
    assert _task_status(containerd, cid) == "RUNNING"
    assert containerd.ctr("task", "exec", "--exec-id", "e2", cid, "true").rc == 0


@runtimes()
def test_tty(containerd: Containerd, runtime: str, ids: list[str]) -> None:
    """``ctr run -t`` under a pty: a terminal of the caller's size, the exit code; ``task exec -t`` too."""
    cid = _id(ids, "t")
    # ctr sizes the console only after the task has started: stty waits a moment for it.
    r = containerd.ctr_pty("run", "--rm", "-t", *containerd.runc_args(runtime), IMAGE, cid, "sh", "-c",
                           "test -t 0 && test -t 1 && echo TTY-OK; sleep 0.5; stty size; exit 3")
    assert r.rc == 3, r.out
    assert "TTY-OK" in r.out and f"{WINSIZE[0]} {WINSIZE[1]}" in r.out, r.out
    cid = _run_detached(containerd, runtime, ids)
    r = containerd.ctr_pty("task", "exec", "-t", "--exec-id", "t1", cid, "sh", input=b"echo $((6*7))z; exit 2\n")
    assert r.rc == 2, r.out
    assert "42z" in r.out


@runtimes()
def test_memory_limit(containerd: Containerd, runtime: str, ids: list[str]) -> None:
    """``--memory-limit``: in the task's memory cgroup (ctr's default cgroupsPath /<namespace>/<id>)."""
    cid = _run_detached(containerd, runtime, ids, "--memory-limit", str(48 << 20))
    paths = cgroup_dirs_named(f"memory/{containerd.namespace}/{cid}")
    assert paths, "no memory cgroup at /<namespace>/<id>"
    with open(os.path.join(paths[0], "memory.limit_in_bytes")) as f:
        assert f.read().strip() == str(48 << 20)


@runtimes()
def test_task_ps(containerd: Containerd, runtime: str, ids: list[str]) -> None:
    """``task ps``: the task's processes (host PIDs), init's among them."""
    cid = _run_detached(containerd, runtime, ids, cmd=("sh", "-c", "sleep 300 & wait"))
    r = containerd.ctr("task", "ps", cid).check()
    pids = [int(line.split()[0]) for line in r.out.splitlines()[1:] if line.split()]
    assert len(pids) == 2, r.out
    for pid in pids:
        with open(f"/proc/{pid}/comm") as f:
            assert f.read().strip() in ("sh", "sleep")


@runtimes()
def test_task_metrics(containerd: Containerd, runtime: str, ids: list[str]) -> None:
    """``task metrics``: the cgroup's statistics (memory usage, pids) of a running task."""
    cid = _run_detached(containerd, runtime, ids)
    r = containerd.ctr("task", "metrics", "--format", "json", cid).check()
    data = json.loads(r.out)
    assert data["pids"]["current"] >= 1, data.get("pids")
    assert data["memory"]["usage"]["usage"] > 0


@runtimes()
def test_uidmap(containerd: Containerd, runtime: str, ids: list[str]) -> None:
    """``ctr run --uidmap/--gidmap``: a user namespace; root inside is host id 100000, and the
    snapshot containerd remapped for it is writable by that root."""
    cid = _id(ids, "userns")
    r = containerd.ctr("run", "--rm", *containerd.runc_args(runtime), "--uidmap", "0:100000:65536",
                       "--gidmap", "0:100000:65536", IMAGE, cid, "sh", "-c",
                       "cat /proc/self/uid_map; touch /made && echo wrote; id -u")
    assert r.rc == 0, r
    assert r.out.split() == ["0", "100000", "65536", "wrote", "0"], r
