"""runtime-spec hooks on real containers: each point runs where the spec puts it, with the state on stdin.

Each hook is a busybox shell script that appends ``<point> <status> <pid> <mnt ns> <root inode>``
and the state JSON it read to a marker file. runc 1.1.5 was checked for the same points (it runs
poststart at the end of create, a known deviation we do not copy).
"""

from __future__ import annotations

import json
import os
import shutil

import pytest

from conftest import unique_id, wait_for
from declarative_ct.configs import Hook
from declarative_ct.errors import ContainerError
from declarative_ct.runtime import Process

pytestmark = pytest.mark.integration

BUSYBOX = "/bin/busybox"


@pytest.fixture
def rootfs(busybox_rootfs, tmp_path) -> str:
    path = str(tmp_path / "rootfs")
    shutil.copytree(busybox_rootfs, path, symlinks=True)
    os.makedirs(os.path.join(path, "marks"))
    return path


def _script(path: str, marks: str, point: str, extra: str = "") -> str:
    """A hook script at ``path`` logging its state to ``marks/<point>`` (a host path unless run in the container)."""
    with open(path, "w") as f:
        f.write(f"#!{BUSYBOX} sh\n"
                f"state=$({BUSYBOX} cat)\n"
                f"echo \"$state\" > {marks}/{point}.json\n"
                f"{BUSYBOX} readlink /proc/self/ns/mnt > {marks}/{point}.ns\n"
                f"echo \"$HOOK_ENV\" > {marks}/{point}.env\n"
                f"{extra}\n")
    os.chmod(path, 0o755)
    return path


def _hooks(tmp_path, rootfs: str) -> dict[str, list[Hook]]:
    marks = str(tmp_path / "marks")
    os.makedirs(marks, exist_ok=True)
    out = {}
    for point in ("prestart", "createRuntime", "createContainer", "poststart", "poststop"):
        out[point] = [Hook(_script(str(tmp_path / f"{point}.sh"), marks, point), [f"{point}.sh"], ["HOOK_ENV=yes"])]
    # startContainer runs inside the container: a script of the rootfs, writing into it.
    inner = "/marks"
    with open(os.path.join(rootfs, "bin", "start-hook"), "w") as f:
        f.write(f"#!/bin/sh\nstate=$(cat)\necho \"$state\" > {inner}/startContainer.json\n"
                f"readlink /proc/self/ns/mnt > {inner}/startContainer.ns\n")
    os.chmod(os.path.join(rootfs, "bin", "start-hook"), 0o755)
    out["startContainer"] = [Hook("/bin/start-hook")]
    return out


def _read(path: str) -> str:
    with open(path) as f:
        return f.read().strip()


def test_every_hook_point_gets_its_state(busybox_config, runtime, rootfs, tmp_path):
    import dataclasses

    cfg = dataclasses.replace(busybox_config(labels=["bundle=/b", "k=v"]), rootfs=rootfs)
    cfg.hooks = _hooks(tmp_path, rootfs)
    # The program records the time order: it must come after startContainer and before poststart.
    cid = unique_id("hooks")
    c = runtime.create(cid, cfg)
    marks = str(tmp_path / "marks")
    c.start(Process(["sh", "-c", "ls /marks > /marks/program; sleep 0.3"]))
    host_ns = os.readlink("/proc/self/ns/mnt")
    init_pid = c.state().init_process_pid
    for point in ("prestart", "createRuntime"):
        state = json.loads(_read(f"{marks}/{point}.json"))
        assert state == {"ociVersion": cfg.version, "id": cid, "status": "creating", "pid": init_pid,
                         "bundle": "/b", "annotations": {"k": "v"}}
        assert _read(f"{marks}/{point}.ns") == host_ns  # the runtime's namespace
        assert _read(f"{marks}/{point}.env") == "yes"  # its env, nothing else
    cc = json.loads(_read(f"{marks}/createContainer.json"))
    assert (cc["status"], cc["pid"]) == ("creating", 1)  # as the container's PID namespace sees init
    container_ns = os.readlink(f"/proc/{init_pid}/ns/mnt")
    assert _read(f"{marks}/createContainer.ns") == container_ns != host_ns
    assert not os.path.exists(f"{marks}/poststart.json")  # not before start (runc 1.1 runs it here)
    assert not os.path.exists(os.path.join(rootfs, "marks", "startContainer.json"))
    c.exec()
    assert json.loads(_read(f"{marks}/poststart.json"))["status"] == "running"
    wait_for(c.exit_status, 10)
    sc = json.loads(_read(os.path.join(rootfs, "marks", "startContainer.json")))
    assert (sc["status"], sc["pid"], sc["id"]) == ("created", 1, cid)
    assert _read(os.path.join(rootfs, "marks", "startContainer.ns")) == container_ns
    assert "startContainer.json" in _read(os.path.join(rootfs, "marks", "program"))
    assert not os.path.exists(f"{marks}/poststop.json")
    c.destroy()
    ps = json.loads(_read(f"{marks}/poststop.json"))
    assert ps["status"] == "stopped" and "pid" not in ps


@pytest.mark.parametrize("point", ["prestart", "createRuntime", "createContainer"])
def test_failing_create_hook_fails_the_create_and_leaves_nothing(busybox_config, runtime, tmp_path, point,
                                                                 cgroup_dirs):
    script = tmp_path / "fail.sh"
    script.write_text(f"#!{BUSYBOX} sh\necho broken-hook-output\nexit 3\n")
    script.chmod(0o755)
    cfg = busybox_config()
    cfg.hooks = {point: [Hook(str(script))]}
    cid = unique_id("hookfail")
    c = runtime.create(cid, cfg)
    with pytest.raises(ContainerError, match=rf"{point} hook #0 .*exit status 3.*broken-hook-output"):
        c.start(Process(["true"]))
    assert not os.path.exists(c.state_dir)
    assert cgroup_dirs(cid, runtime.cgroup_parent) == []


def test_hook_past_its_timeout_is_killed_and_fails_the_create(busybox_config, runtime, tmp_path):
    pidfile = tmp_path / "pid"
    script = tmp_path / "slow.sh"
    script.write_text(f"#!{BUSYBOX} sh\necho $$ > {pidfile}\nexec {BUSYBOX} sleep 30\n")
    script.chmod(0o755)
    cfg = busybox_config()
    cfg.hooks = {"createRuntime": [Hook(str(script), timeout=1)]}
    c = runtime.create(unique_id("hooktime"), cfg)
    with pytest.raises(ContainerError, match=r"createRuntime hook #0 .*timeout of 1s"):
        c.start(Process(["true"]))
    pid = int(pidfile.read_text())
    assert not os.path.exists(f"/proc/{pid}")  # killed and reaped


def test_missing_hook_program_fails_naming_it(busybox_config, runtime):
    cfg = busybox_config()
    cfg.hooks = {"prestart": [Hook("/nonexistent/hook")]}
    c = runtime.create(unique_id("hookmiss"), cfg)
    with pytest.raises(ContainerError, match="prestart hook #0 \\(/nonexistent/hook\\): cannot run it"):
        c.start(Process(["true"]))


def test_failing_poststart_and_poststop_only_warn(busybox_config, runtime, tmp_path, caplog):
    script = tmp_path / "fail.sh"
    script.write_text(f"#!{BUSYBOX} sh\nexit 4\n")
    script.chmod(0o755)
    cfg = busybox_config()
    cfg.hooks = {"poststart": [Hook(str(script))], "poststop": [Hook(str(script))]}
    c = runtime.create(unique_id("hookwarn"), cfg)
    c.run(Process(["true"]))
    wait_for(c.exit_status, 10)
    c.destroy()
    assert "poststart hook #0" in caplog.text and "poststop hook #0" in caplog.text
    assert not os.path.exists(c.state_dir)


def test_failing_start_container_hook_keeps_the_program_from_running(busybox_config, runtime, rootfs):
    import dataclasses

    cfg = dataclasses.replace(busybox_config(), rootfs=rootfs)
    cfg.hooks = {"startContainer": [Hook("/bin/sh", ["sh", "-c", "exit 5"])]}
    c = runtime.create(unique_id("hookstart"), cfg)
    c.start(Process(["sh", "-c", "touch /marks/ran"]))
    c.exec()
    record = wait_for(c.exit_status, 10)
    assert record["exit_code"] != 0
    assert not os.path.exists(os.path.join(rootfs, "marks", "ran"))
