"""rootfs helpers that need no root: secure_join, and the order of pivot_root's steps."""

from __future__ import annotations

import os

from declarative_ct.configs.mountflags import MS_PRIVATE, MS_REC, MS_SLAVE
from declarative_ct.runtime import rootfs


def test_secure_join_keeps_symlinks_inside_the_root(tmp_path):
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    os.symlink("/etc", root / "abs")          # absolute: resolved against the root
    os.symlink("../../../..", root / "up")    # climbing: stops at the root
    assert rootfs.secure_join(str(root), "/abs/passwd") == str(root / "etc" / "passwd")
    assert rootfs.secure_join(str(root), "/up/etc") == str(root / "etc")
    assert rootfs.secure_join(str(root), "/../../x") == str(root / "x")


def test_pivot_root_applies_root_propagation_last(monkeypatch, tmp_path):
    calls = []
    monkeypatch.setattr(rootfs.linux, "pivot_root", lambda new, old: calls.append(("pivot_root", new)))
    monkeypatch.setattr(rootfs.linux, "mount",
                        lambda src, dst, fs, flags, data=None: calls.append(("mount", dst, flags)))
    monkeypatch.setattr(rootfs.linux, "umount2", lambda dst, flags=0: calls.append(("umount2", dst)))
    monkeypatch.setattr(rootfs.os, "chdir", lambda path: calls.append(("chdir", path)))
    rootfs.pivot_root(str(tmp_path), MS_PRIVATE | MS_REC)
    assert calls == [("chdir", str(tmp_path)), ("pivot_root", "."), ("mount", ".", MS_SLAVE | MS_REC),
                     ("umount2", "."), ("chdir", "/"), ("mount", "/", MS_PRIVATE | MS_REC)]
    calls.clear()
    rootfs.pivot_root(str(tmp_path))
    assert ("mount", "/", MS_PRIVATE | MS_REC) not in calls
