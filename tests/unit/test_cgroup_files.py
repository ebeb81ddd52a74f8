"""cgroup drivers on a faithful temporary tree (file names and formats of the kernel's cgroupfs)."""

from __future__ import annotations

import os

import pytest

from declarative_ct.configs import default_device_rules
from declarative_ct.errors import SystemError
from declarative_ct.runtime import cgroups
from declarative_ct.runtime.cgroups.v1 import V1Manager
from declarative_ct.runtime.cgroups.v2 import V2Manager


def _write(path, name, value=""):
    os.makedirs(path, exist_ok=True)
    with open(os.path.join(path, name), "w") as f:
        f.write(value)


def _read(path, name):
    with open(os.path.join(path, name)) as f:
        return f.read()


def test_v2_create_enables_controllers_in_every_ancestor(tmp_path, monkeypatch):
    root = str(tmp_path / "cg")
    _write(root, "cgroup.controllers", "cpuset cpu io memory hugetlb pids rdma misc\n")
    _write(root, "cgroup.subtree_control")
    _write(os.path.join(root, "dct"), "cgroup.controllers")  # the kernel makes these files on mkdir
    _write(os.path.join(root, "dct"), "cgroup.subtree_control")
    writes: list[tuple[str, str]] = []
    real_write = cgroups.fs.write

    def recording_write(directory, name, value):
        writes.append((os.path.relpath(directory, root), f"{name}={value}"))
        if name == "cgroup.subtree_control":
            # emulate the kernel: the child now offers that controller
            child_ctrl = os.path.join(directory, "dct", "cgroup.controllers")
            if os.path.isdir(os.path.join(directory, "dct")):
                with open(child_ctrl, "a") as f:
                    f.write(value[1:] + " ")
        real_write(directory, name, value)

    monkeypatch.setattr(cgroups.fs, "write", recording_write)
    mgr = V2Manager(os.path.join(root, "dct", "c1"))
    mgr.create()
    assert os.path.isdir(os.path.join(root, "dct", "c1"))
    root_writes = [w for d, w in writes if d == "."]
    assert root_writes == ["cgroup.subtree_control=+cpuset", "cgroup.subtree_control=+cpu",
                           "cgroup.subtree_control=+io", "cgroup.subtree_control=+memory",
                           "cgroup.subtree_control=+pids"]
    assert [w for d, w in writes if d == "dct"][:1] == ["cgroup.subtree_control=+cpuset"]


def test_v2_freezer_state_from_cgroup_events(tmp_path):
    path = str(tmp_path / "dct" / "c1")
    _write(path, "cgroup.freeze", "0\n")
    _write(path, "cgroup.events", "populated 1\nfrozen 0\n")
    mgr = V2Manager(path)
    assert mgr.freezer_state() == cgroups.THAWED
    _write(path, "cgroup.freeze", "1\n")
    assert mgr.freezer_state() == cgroups.FREEZING
    _write(path, "cgroup.events", "populated 1\nfrozen 1\n")
    assert mgr.freezer_state() == cgroups.FROZEN
    assert V2Manager(str(tmp_path / "gone")).freezer_state() == cgroups.THAWED


def test_v1_devices_rules_are_written_deny_all_first(tmp_path, monkeypatch):
    written: list[tuple[str, str]] = []
    monkeypatch.setattr(cgroups.fs, "write_each", lambda d, n, values: written.extend((n, v) for v in values))
    dev = str(tmp_path / "devices" / "dct" / "c1")
    V1Manager({"devices": dev}, default_device_rules()).create()
    assert written[0] == ("devices.deny", "a")
    assert ("devices.allow", "c 1:3 rwm") in written  # /dev/null
    assert ("devices.allow", "c 136:* rwm") in written  # /dev/pts/*
    assert ("devices.allow", "b *:* m") in written
    assert not any(name == "devices.allow" and value.startswith("b ") and "r" in value.split()[-1]
                   for name, value in written)


def test_v1_cpuset_inherits_cpus_and_mems_from_the_parent(tmp_path):
    base = str(tmp_path / "cpuset")
    _write(base, "cpuset.cpus", "0-1\n")
    _write(base, "cpuset.mems", "0\n")
    for d in ("dct", "dct/c1"):
        _write(os.path.join(base, d), "cpuset.cpus", "")
        _write(os.path.join(base, d), "cpuset.mems", "")
    V1Manager({"cpuset": os.path.join(base, "dct", "c1")}).create()
    assert _read(os.path.join(base, "dct"), "cpuset.cpus") == "0-1"
    assert _read(os.path.join(base, "dct", "c1"), "cpuset.mems") == "0"


def test_v1_cpuset_a_parent_with_cpus_but_no_mems_yet_is_filled_too(tmp_path):
    """Regression: a concurrent create had written the new parent's cpus but not yet its mems; the
    walk stopped at that parent and copied its empty mems down (the join failed with ENOSPC)."""
    base = str(tmp_path / "cpuset")
    _write(base, "cpuset.cpus", "0-1\n")
    _write(base, "cpuset.mems", "0\n")
    _write(os.path.join(base, "dct"), "cpuset.cpus", "0-1")
    _write(os.path.join(base, "dct"), "cpuset.mems", "")
    _write(os.path.join(base, "dct", "c2"), "cpuset.cpus", "")
    _write(os.path.join(base, "dct", "c2"), "cpuset.mems", "")
    V1Manager({"cpuset": os.path.join(base, "dct", "c2")}).create()
    assert [_read(os.path.join(base, d), "cpuset.mems") for d in ("dct", "dct/c2")] == ["0", "0"]
    assert _read(os.path.join(base, "dct", "c2"), "cpuset.cpus") == "0-1"


def test_manager_from_saved_paths_picks_the_driver():
    assert isinstance(cgroups.manager_from_paths({"": "/sys/fs/cgroup/dct/x"}), V2Manager)
    assert isinstance(cgroups.manager_from_paths({"pids": "/sys/fs/cgroup/pids/dct/x"}), V1Manager)


def test_forced_v2_mount(monkeypatch):
    monkeypatch.setenv(cgroups.V2_MOUNT_ENV, "/somewhere")
    assert cgroups.detect() == ("v2", {"": "/somewhere"})


def test_write_each_writes_every_value_through_one_open_file(tmp_path):
    target = tmp_path / "devices.allow"
    target.write_text("")
    cgroups.fs.write_each(str(tmp_path), "devices.allow", ["c 1:3 rwm", "c 1:5 rwm"])
    assert target.read_text() == "c 1:3 rwmc 1:5 rwm"  # two write(2)s: a cgroup file takes one rule each
    with pytest.raises(SystemError, match=r"failed to write 'a' to .*devices.deny"):
        cgroups.fs.write_each(str(tmp_path), "devices.deny", ["a"])


def test_v2_thaw_descendants_writes_0_to_each_frozen_descendant_only(tmp_path):
    # The file logic only: a plain tree cannot show that the kernel then thaws (no v2 freezer here);
    # what this checks is which cgroup.freeze files get written, and that the container's own is left.
    top = str(tmp_path / "ct")
    for rel, value in (("", "1\n"), ("a", "1\n"), ("a/b", "0\n"), ("a/b/c", "1\n"), ("d", "0\n")):
        _write(os.path.join(top, rel), "cgroup.freeze", value)
    os.makedirs(os.path.join(top, "e"))  # a descendant without the file (being removed): skipped
    V2Manager(top).thaw_descendants()
    # (the files are written in place, as cgroupfs takes them: no truncation, hence the strip)
    assert {rel: _read(os.path.join(top, rel), "cgroup.freeze").strip() for rel in ("", "a", "a/b", "a/b/c", "d")} \
        == {"": "1", "a": "0", "a/b": "0", "a/b/c": "0", "d": "0"}


def test_v1_thaw_descendants_thaws_the_self_frozen_ones(tmp_path):
    top = str(tmp_path / "freezer" / "ct")
    for rel, self_freezing in (("", "1"), ("sub", "1"), ("sub/deeper", "0"), ("other", "0")):
        _write(os.path.join(top, rel), "freezer.self_freezing", self_freezing + "\n")
        _write(os.path.join(top, rel), "freezer.state", "FROZEN\n")
    V1Manager({"freezer": top}).thaw_descendants()
    assert {rel: _read(os.path.join(top, rel), "freezer.state").strip() for rel in ("", "sub", "sub/deeper", "other")} \
        == {"": "FROZEN", "sub": "THAWED", "sub/deeper": "FROZEN", "other": "FROZEN"}
    V1Manager({"memory": top}).thaw_descendants()  # no freezer: nothing to do
