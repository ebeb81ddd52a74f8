"""rootfs helpers that need no root: the confined walker (both kinds), and the order of pivot_root's steps."""

from __future__ import annotations

import errno
import os

import pytest

from declarative_ct.configs.mountflags import MS_PRIVATE, MS_REC, MS_SLAVE
from declarative_ct.runtime import finalize, paths, safemount


@pytest.fixture(params=["openat2", "nofollow-walk"])
def walker(request, monkeypatch):
    """Run a test with each walker: openat2(RESOLVE_IN_ROOT), and the O_NOFOLLOW walk forced."""
    if request.param == "nofollow-walk":
        def no_openat2(*args, **kwargs):
            raise OSError(errno.ENOSYS, "openat2 forced off")

        monkeypatch.setattr(paths.linux, "openat2", no_openat2)
    monkeypatch.setattr(paths, "use_openat2", True)
    return request.param


def _open(root, path, create=None):
    """(dev, ino) of what ``paths.open_in_root`` opens, and the fd closed."""
    rfd = os.open(root, os.O_PATH | os.O_DIRECTORY)
    try:
        fd = paths.open_in_root(rfd, path, create)
    finally:
        os.close(rfd)
    try:
        st = os.fstat(fd)
        return st.st_dev, st.st_ino
    finally:
        os.close(fd)


def _ident(path):
    st = os.stat(path)
    return st.st_dev, st.st_ino


def test_walk_keeps_symlinks_inside_the_root(tmp_path, walker):
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    (root / "etc" / "passwd").write_text("inside")
    os.symlink("/etc", root / "abs")          # absolute: resolved against the root
    os.symlink("../../../..", root / "up")    # climbing: stops at the root
    os.symlink("/", root / "slash")
    assert _open(root, "/abs/passwd") == _ident(root / "etc" / "passwd")
    assert _open(root, "/up/etc") == _ident(root / "etc")
    assert _open(root, "/../../etc") == _ident(root / "etc")
    assert _open(root, "slash") == _ident(root)
    assert _open(root, "/") == _ident(root)
    with pytest.raises(FileNotFoundError):
        _open(root, "/up/tmp")  # the host's /tmp exists; the root's does not


def test_walk_refuses_symlink_loops(tmp_path, walker):
    root = tmp_path / "root"
    root.mkdir()
    os.symlink("loop", root / "loop")
    with pytest.raises(OSError) as err:
        _open(root, "/loop/x")
    assert err.value.errno == errno.ELOOP


def test_magic_links_are_not_jumped_through(tmp_path, walker):
    # /proc/self/fd/N is a magic link: the kernel would jump straight to N's file, wherever it is.
    outside = tmp_path / "outside"
    outside.mkdir()
    fd = os.open(outside, os.O_PATH)
    try:
        if walker == "openat2":
            with pytest.raises(OSError) as err:
                _open("/", f"/proc/self/fd/{fd}")
            assert err.value.errno == errno.ELOOP  # RESOLVE_NO_MAGICLINKS
        else:
            # The O_NOFOLLOW walk reads the link as text and resolves that inside the root.
            assert _open("/", f"/proc/self/fd/{fd}") == _ident(outside)
            root = tmp_path / "root"
            root.mkdir()
            os.symlink(f"/proc/self/fd/{fd}", root / "magic")
            with pytest.raises(FileNotFoundError):
                _open(root, "/magic")  # the root has no /proc: nothing to reach
    finally:
        os.close(fd)


def test_walk_creates_missing_components_inside_the_root(tmp_path, walker):
    root = tmp_path / "root"
    root.mkdir()
    outside = tmp_path / "outside"
    outside.mkdir()
    # A dangling symlink to a host path: what is created lands under the root, not on the host.
    os.symlink(str(outside / "made"), root / "dangling")
    ident = _open(root, "/dangling/a/b", paths.DIR)
    assert not (outside / "made").exists()
    made = root / str(outside).lstrip("/") / "made" / "a" / "b"
    assert made.is_dir() and ident == _ident(made)
    # A file for a file bind source; its parents as directories.
    ident = _open(root, "/etc/hosts", paths.FILE)
    assert (root / "etc" / "hosts").is_file() and ident == _ident(root / "etc" / "hosts")
    assert os.stat(root / "etc").st_mode & 0o777 == 0o755
    # An existing path is opened as it is, whatever ``create`` asks for.
    assert _open(root, "/etc", paths.FILE) == _ident(root / "etc")


def test_walk_stops_at_a_file_in_the_middle(tmp_path, walker):
    root = tmp_path / "root"
    root.mkdir()
    (root / "f").write_text("")
    with pytest.raises(NotADirectoryError):
        _open(root, "/f/x", paths.DIR)


def test_openat2_missing_switches_to_the_nofollow_walk(tmp_path, monkeypatch):
    calls = []

    def enosys(*args, **kwargs):
        calls.append(args)
        raise OSError(errno.ENOSYS, "no openat2")

    monkeypatch.setattr(paths.linux, "openat2", enosys)
    monkeypatch.setattr(paths, "use_openat2", True)
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    os.symlink("/etc", root / "abs")
    assert _open(root, "/abs") == _ident(root / "etc")
    assert _open(root, "/abs") == _ident(root / "etc")
    assert len(calls) == 1 and paths.use_openat2 is False  # asked once, then remembered


def test_root_contains_and_inner_name_kernel_paths_inside_it(tmp_path):
    (tmp_path / "r").mkdir()
    root = paths.Root.at(str(tmp_path / "r"))
    try:
        assert root.contains(root.real + "/a") and not root.contains(root.real + "x")
        assert root.inner(root.real + "/a/b") == "/a/b"
    finally:
        root.close()


def test_pivot_root_applies_root_propagation_last(monkeypatch, tmp_path):
    calls = []
    monkeypatch.setattr(finalize.linux, "pivot_root", lambda new, old: calls.append(("pivot_root", new)))
    monkeypatch.setattr(finalize.linux, "mount",
                        lambda src, dst, fs, flags, data=None: calls.append(("mount", dst, flags)))
    monkeypatch.setattr(finalize.linux, "umount2", lambda dst, flags=0: calls.append(("umount2", dst)))
    monkeypatch.setattr(finalize.os, "chdir", lambda path: calls.append(("chdir", path)))
    finalize.pivot_root(str(tmp_path), MS_PRIVATE | MS_REC)
    assert calls == [("chdir", str(tmp_path)), ("pivot_root", "."), ("mount", ".", MS_SLAVE | MS_REC),
                     ("umount2", "."), ("chdir", "/"), ("mount", "/", MS_PRIVATE | MS_REC)]
    calls.clear()
    finalize.pivot_root(str(tmp_path))
    assert ("mount", "/", MS_PRIVATE | MS_REC) not in calls


def _fd_ident(fd):
    try:
        st = os.fstat(fd)
        return st.st_dev, st.st_ino
    finally:
        os.close(fd)


def test_a_bind_source_is_confined_from_where_it_enters_the_rootfs(tmp_path, walker):
    """The container wrote ``sub/esc -> /etc`` in its rootfs; a bind source that reaches ``sub``
    by the rootfs's path or through a host symlink must give the rootfs's /etc, never the host's."""
    rootfs = tmp_path / "rootfs"
    (rootfs / "sub").mkdir(parents=True)
    (rootfs / "etc").mkdir()
    os.symlink("/etc", rootfs / "sub" / "esc")
    os.symlink(rootfs / "sub", tmp_path / "hostlink")          # a symlinked parent on the host
    os.symlink(tmp_path / "hostlink", tmp_path / "hostlink2")  # two hops
    (tmp_path / "plain").mkdir()
    os.symlink(tmp_path / "plain", tmp_path / "plainlink")
    root = paths.Root.at(str(rootfs))
    try:
        for source in (rootfs / "sub" / "esc", tmp_path / "hostlink" / "esc", tmp_path / "hostlink2" / "esc",
                       tmp_path / "hostlink" / ".." / "sub" / "esc"):  # no climbing out once inside
            assert _fd_ident(rootfs_open(root, str(source))) == _ident(rootfs / "etc"), source
        # Outside the rootfs it is the host's path, host symlinks and all.
        assert _fd_ident(rootfs_open(root, str(tmp_path / "plainlink"))) == _ident(tmp_path / "plain")
        assert _fd_ident(rootfs_open(root, "/etc")) == _ident("/etc")
        with pytest.raises(FileNotFoundError):
            rootfs_open(root, str(tmp_path / "hostlink" / "missing"))
    finally:
        root.close()


def rootfs_open(root, source):
    return safemount.open_source(root, source)
