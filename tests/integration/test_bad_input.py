"""Bad input is refused with the right error type, and a refused container leaves nothing behind."""

from __future__ import annotations

import os
import signal

import pytest

from conftest import cgroup_dirs, live_descendants, unique_id, wait_for
from declarative_ct.configs import Config, Mount, Namespace
from declarative_ct.errors import ConfigInvalid, ContainerError, ContainerExists, ContainerNotExists, InvalidID
from declarative_ct.runtime import Process, Status, store
from declarative_ct.configs.signals import parse_signal




@pytest.fixture
def nothing_left(runtime):
    """``nothing_left(id)`` asserts no state dir, no cgroup dir and no new process remain for ``id``."""
    before = live_descendants()

    def check(container_id: str) -> None:
        assert not os.path.exists(os.path.join(runtime.root, container_id)), "state dir left"
        assert cgroup_dirs(container_id) == [], "cgroup dirs left"
        wait_for(lambda: live_descendants() <= before, message="processes started by the failed create to exit")

    return check


# -- ids ------------------------------------------------------------------------------------------

BAD_IDS = ["../x", "a/b", "", ".", "..", "a b", "x\n", "/abs"]


@pytest.mark.integration
@pytest.mark.parametrize("cid", BAD_IDS)
def test_invalid_id_is_refused(runtime, busybox_config, tmp_path, cid):
    with pytest.raises(InvalidID):
        runtime.create(cid, busybox_config())
    assert not os.path.exists(runtime.root) or store.container_entries(runtime.root) == []
    assert not os.path.exists(tmp_path / "x")


@pytest.mark.parametrize("cid", ["../victim", "..", "a/../../victim"])
def test_invalid_id_refused_by_load_exists_and_cleanup(tmp_path, cid):
    from declarative_ct.runtime import Runtime

    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "keep").write_text("x")
    rt = Runtime(str(tmp_path / "state"))
    for call in (rt.load, rt.exists, rt.cleanup):
        with pytest.raises(InvalidID):
            call(cid)
    assert (victim / "keep").exists()


@pytest.mark.integration
def test_existing_id_is_refused(runtime, busybox_config, run_container):
    cid = unique_id("dup")
    first = runtime.create(cid, busybox_config())
    with pytest.raises(ContainerExists):
        runtime.create(cid, busybox_config())
    # The refused create did not disturb the first one: it still starts and runs.
    first.start(Process(["/bin/sh", "-c", "exit 5"]))
    first.exec()
    assert wait_for(first.exit_status)["exit_code"] == 5
    with pytest.raises(ContainerExists):
        runtime.create(cid, busybox_config())


@pytest.mark.integration
def test_load_of_unknown_id(runtime):
    with pytest.raises(ContainerNotExists):
        runtime.load(unique_id("ghost"))


# -- config errors at create ------------------------------------------------------------------------


@pytest.mark.integration
def test_missing_rootfs(runtime, tmp_path, nothing_left):
    cid = unique_id("norootfs")
    with pytest.raises(ConfigInvalid, match="rootfs"):
        runtime.create(cid, Config(rootfs=str(tmp_path / "does-not-exist")))
    nothing_left(cid)


@pytest.mark.integration
def test_relative_rootfs(runtime, busybox_rootfs, nothing_left):
    cid = unique_id("relrootfs")
    rel = os.path.relpath(busybox_rootfs)
    assert not os.path.isabs(rel)
    with pytest.raises(ConfigInvalid, match="absolute"):
        runtime.create(cid, Config(rootfs=rel))
    nothing_left(cid)


@pytest.mark.integration
def test_symlinked_rootfs(runtime, busybox_rootfs, tmp_path, nothing_left):
    cid = unique_id("linkrootfs")
    link = tmp_path / "rootfs-link"
    link.symlink_to(busybox_rootfs)
    with pytest.raises(ConfigInvalid, match="symlink"):
        runtime.create(cid, Config(rootfs=str(link)))
    nothing_left(cid)


@pytest.mark.integration
def test_rootfs_that_is_a_file(runtime, tmp_path, nothing_left):
    cid = unique_id("filerootfs")
    f = tmp_path / "file"
    f.write_text("")
    with pytest.raises(ConfigInvalid):
        runtime.create(cid, Config(rootfs=str(f)))
    nothing_left(cid)


@pytest.mark.integration
@pytest.mark.parametrize("change", ["bind-source", "relative-destination", "hostname-without-uts", "user-ns",
                                    "unknown-capability"])
def test_invalid_config_fields(runtime, busybox_config, tmp_path, nothing_left, change):
    cid = unique_id("badcfg")
    cfg = busybox_config()
    if change == "bind-source":
        cfg.mounts.append(Mount(str(tmp_path / "missing"), "/m", "bind"))
    elif change == "relative-destination":
        cfg.mounts.append(Mount("tmpfs", "rel", "tmpfs"))
    elif change == "hostname-without-uts":
        cfg.namespaces = [n for n in cfg.namespaces if n.type != "NEWUTS"]
    elif change == "user-ns":
        cfg.namespaces.append(Namespace("NEWUSER"))
    else:
        cfg.capabilities.Bounding.append("CAP_NOT_A_THING")
    with pytest.raises(ConfigInvalid):
        runtime.create(cid, cfg)
    nothing_left(cid)


# -- errors inside the new container, at start() -------------------------------------------------------


@pytest.mark.integration
@pytest.mark.parametrize("program", ["/bin/no-such-program", "no-such-program", "/etc/passwd"])
def test_missing_program_is_a_start_error(runtime, busybox_config, nothing_left, program):
    cid = unique_id("noprog")
    c = runtime.create(cid, busybox_config())
    with pytest.raises(ContainerError) as info:
        c.start(Process([program, "arg"]))
    assert program in str(info.value)
    assert c.status() is Status.STOPPED
    nothing_left(cid)
    # The id is free again.
    runtime.create(cid, busybox_config()).destroy()


@pytest.mark.integration
def test_cwd_that_is_a_file(runtime, busybox_config, nothing_left):
    cid = unique_id("cwdfile")
    c = runtime.create(cid, busybox_config())
    with pytest.raises(ContainerError, match="/etc/passwd"):
        c.start(Process(["/bin/true"], cwd="/etc/passwd"))
    nothing_left(cid)


@pytest.mark.integration
def test_failing_mount_is_a_start_error(runtime, busybox_config, nothing_left):
    cid = unique_id("badmount")
    cfg = busybox_config()
    cfg.mounts.append(Mount("none", "/weird", "no-such-filesystem-type"))
    c = runtime.create(cid, cfg)
    with pytest.raises(ContainerError, match="/weird"):
        c.start(Process(["/bin/true"]))
    nothing_left(cid)


@pytest.mark.integration
def test_exec_of_missing_program_leaves_the_container_alone(runtime, busybox_config):
    c = runtime.create(unique_id("execmissing"), busybox_config())
    c.start(Process(["/bin/sleep", "1000"]))
    c.exec()
    before = c.processes()
    with pytest.raises(ContainerError, match="no-such-program"):
        c.start(Process(["/bin/no-such-program"], init=False))
    assert c.status() is Status.RUNNING
    wait_for(lambda: c.processes() == before, message="the failed exec to leave the cgroup")


def test_process_without_args_is_refused():
    with pytest.raises(ConfigInvalid):
        Process([])


# -- signals ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["SIGFOO", "FOO", "", "0", "65", "-1", "9x", "SIG", "term ", 0, 65])
def test_unknown_signal_is_config_invalid(name):
    with pytest.raises(ConfigInvalid):
        parse_signal(name)


@pytest.mark.parametrize("name, number", [("TERM", signal.SIGTERM), ("sigterm", signal.SIGTERM),
                                          ("SIGKILL", signal.SIGKILL), ("kill", signal.SIGKILL), ("15", 15),
                                          (9, 9), ("HUP", signal.SIGHUP), ("64", 64)])
def test_known_signals(name, number):
    assert parse_signal(name) == number
