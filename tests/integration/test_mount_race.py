"""Mount targets raced with a symlink swap (CVE-2021-30465 class, issue 13).

Volumes laid out side by side as an orchestrator does (``V/v1 -> /vol``, ``V/v2 -> /vol/d``,
``V/v3 -> /v3``, with ``V/v2/v3`` a symlink to ``/``). An attacker container shares ``V/v1`` and
swaps a directory ``d`` with a symlink ``l -> V`` (``renameat2(RENAME_EXCHANGE)``) in a loop. A
runtime that resolves ``/vol/d`` to a string and lets ``mount(2)`` resolve it again mounts ``V/v2``
over the host's ``V`` in the victim's namespace; the next volume's source ``V/v3`` is then the
symlink to ``/``, and the victim sees the host root read-write at ``/v3``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time

import pytest

from conftest import unique_id, wait_for
from declarative_ct.configs import Config, Mount, default_mounts
from declarative_ct.configs.mountflags import MS_BIND, MS_REC, MS_RDONLY
from declarative_ct.errors import ContainerError
from declarative_ct.runtime import Process, linux, paths, safemount

pytestmark = pytest.mark.integration

MAX_ATTEMPTS = 200
MAX_SECONDS = 6.0

SWAP_C = r"""
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <sys/syscall.h>
#include <unistd.h>
#ifndef RENAME_EXCHANGE
#define RENAME_EXCHANGE (1 << 1)
#endif
int main(int argc, char **argv) {
    if (argc != 3) return 2;
    for (;;)
        syscall(SYS_renameat2, AT_FDCWD, argv[1], AT_FDCWD, argv[2], RENAME_EXCHANGE);
}
"""


def _build_swap(directory: str) -> str:
    """A static ``swap A B`` that exchanges two names forever (busybox has no renameat2)."""
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        pytest.skip("the swap race needs a C compiler (cc) to build its static renameat2 helper")
    src = os.path.join(directory, "swap.c")
    out = os.path.join(directory, "swap")
    with open(src, "w") as f:
        f.write(SWAP_C)
    res = subprocess.run([cc, "-static", "-O2", "-o", out, src], capture_output=True, text=True)
    if res.returncode != 0:
        pytest.skip(f"cannot build a static helper with {cc} (static libc missing?): {res.stderr.strip()}")
    return out


def _victim_rootfs(busybox_rootfs: str, root: str) -> str:
    """A rootfs of the victim's own: the fixed runtime may create directories in it."""
    os.makedirs(os.path.join(root, "bin"))
    busybox = os.path.join(root, "bin", "busybox")
    try:
        os.link(os.path.join(busybox_rootfs, "bin", "busybox"), busybox)
    except OSError:
        shutil.copy2(os.path.join(busybox_rootfs, "bin", "busybox"), busybox)
    os.symlink("busybox", os.path.join(root, "bin", "true"))
    for name in ("proc", "dev", "sys", "tmp", "etc"):
        os.mkdir(os.path.join(root, name))
    return root


def _bind(source: str, destination: str, flags: int = 0) -> Mount:
    return Mount(source, destination, "bind", MS_BIND | MS_REC | flags)


def _ident(path: str) -> tuple[int, int]:
    st = os.stat(path)
    return st.st_dev, st.st_ino


def _escapes(pid: int, vol: str, host_root: tuple[int, int]) -> list[str]:
    """What the victim (init ``pid``) sees that it must not: the host root anywhere, or a ``/v3``
    that is not ``V/v3`` (the source is only replaced when a mount landed outside the rootfs)."""
    found = []
    root = f"/proc/{pid}/root"
    for dest in ("/v3", "/vol", "/vol/d"):
        try:
            if _ident(root + dest) == host_root:
                found.append(f"{dest} is the host root")
        except OSError:
            continue
    if _ident(root + "/v3") != _ident(os.path.join(vol, "v3")):
        found.append(f"/v3 is not V/v3: {sorted(os.listdir(root + '/v3'))[:10]}")
    dev = f"{os.major(host_root[0])}:{os.minor(host_root[0])}"
    with open(f"/proc/{pid}/mountinfo") as f:
        for line in f:
            fields = line.split()
            if fields[2] == dev and fields[3] == "/":
                found.append(f"host root mounted: {line.strip()}")
    return found


def test_volume_mounts_survive_a_symlink_exchange_race(runtime, busybox_config, busybox_rootfs, tmp_path):
    vol = str(tmp_path / "V")
    for name in ("v1", "v2", "v3", "v1/d"):
        os.makedirs(os.path.join(vol, name))
    os.symlink("/", os.path.join(vol, "v2", "v3"))
    os.symlink(vol, os.path.join(vol, "v1", "l"))
    tools = str(tmp_path / "tools")
    os.mkdir(tools)
    swap = _build_swap(tools)

    attacker = runtime.create(unique_id("race-attacker"), busybox_config(
        mounts=default_mounts() + [_bind(vol + "/v1", "/vol"), _bind(tools, "/tmp", MS_RDONLY)]))
    attacker.start(Process(["/tmp/swap", "/vol/d", "/vol/l"]))
    attacker.exec()
    first = os.path.islink(os.path.join(vol, "v1", "d"))
    wait_for(lambda: os.path.islink(os.path.join(vol, "v1", "d")) != first, 5.0, 0.0,
             message="the attacker's swap loop to run")

    victim_config = Config(rootfs=_victim_rootfs(busybox_rootfs, str(tmp_path / "victim")), hostname="victim",
                           mounts=default_mounts() + [_bind(vol + "/v1", "/vol"), _bind(vol + "/v2", "/vol/d"),
                                                      _bind(vol + "/v3", "/v3")])
    host_root = _ident("/")
    deadline = time.monotonic() + MAX_SECONDS
    attempts = 0
    failed_creates = []
    while attempts < MAX_ATTEMPTS and time.monotonic() < deadline:
        attempts += 1
        victim = runtime.create(unique_id("race-victim"), victim_config)
        try:
            try:
                victim.start(Process(["/bin/true"]))
            except Exception as err:  # noqa: BLE001 - a refused create is a safe outcome; count it
                failed_creates.append(str(err))
                continue
            found = _escapes(victim.state().init_process_pid, vol, host_root)
            assert not found, f"escape at attempt {attempts}: {found}"
        finally:
            victim.destroy()
    assert attacker.status().value == "running", "the attacker stopped swapping"
    print(f"\n{attempts} creates raced, {len(failed_creates)} refused, no escape")
    # A create may lose the race and be refused (the destination changed during its mount), but
    # for that reason only; and enough must win it for the escape check above to have looked.
    assert all("mount /vol/d: the destination changed during the mount" in msg for msg in failed_creates), \
        sorted(set(failed_creates))[:5]
    assert attempts - len(failed_creates) >= 10, (attempts, failed_creates[:5])


def _in_private_mount_namespace(func) -> str:
    """Run ``func()`` in a forked child with a mount namespace of its own (its mounts die with it);
    returns what it returned, or ``error: <message>`` for an exception."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        os.close(r)
        try:
            linux.unshare(linux.CLONE_NEWNS)
            linux.mount(None, "/", None, linux.MS_SLAVE | linux.MS_REC)
            out = str(func())
        except BaseException as err:  # noqa: BLE001
            out = f"error: {err}"
        os.write(w, out.encode())
        os._exit(0)
    os.close(w)
    with os.fdopen(r, "rb") as f:
        out = f.read().decode()
    os.waitpid(pid, 0)
    return out


def test_a_mount_whose_target_moved_is_refused(tmp_path):
    """The check after the mount: the directory opened for /a is renamed away and /a is made
    anew before mount(2) runs; the mount lands on the old directory, which is no longer /a."""
    (tmp_path / "root" / "a").mkdir(parents=True)

    def race():
        root = paths.Root.at(str(tmp_path / "root"))
        target = root.open("/a")
        os.rename(tmp_path / "root" / "a", tmp_path / "root" / "moved")
        os.mkdir(tmp_path / "root" / "a")
        safemount.mount_onto(root, "/a", target, "tmpfs", "tmpfs", 0, "size=16k")
        return "mounted"

    assert _in_private_mount_namespace(race) == \
        "error: [Errno 18] mount /a: the destination changed during the mount (mounted at /moved, /a is now /a); refusing"


def test_a_mount_target_outside_the_root_is_refused(tmp_path):
    """The check after the mount also refuses a descriptor outside the root (a walker bug)."""
    (tmp_path / "root").mkdir()
    (tmp_path / "outside").mkdir()

    def escape():
        root = paths.Root.at(str(tmp_path / "root"))
        target = os.open(tmp_path / "outside", os.O_PATH)
        safemount.mount_onto(root, "/", target, "tmpfs", "tmpfs", 0, "size=16k")
        return "mounted"

    out = _in_private_mount_namespace(escape)
    assert out.startswith("error: [Errno 18] mount /: target escapes the rootfs"), out


def test_mount_errors_name_the_destination(runtime, busybox_config, tmp_path):
    cfg = busybox_config()
    (tmp_path / "gone").mkdir()
    cfg.mounts.append(_bind(str(tmp_path / "gone"), "/data"))
    c = runtime.create(unique_id("race-missing"), cfg)
    (tmp_path / "gone").rmdir()  # after the config's check, before init mounts it
    with pytest.raises(ContainerError, match=r"mount /data: No such file or directory \(.*/gone\)"):
        c.start(Process(["/bin/true"]))


def test_the_mount_id_fallback_reads_the_held_proc(tmp_path):
    """Without statx the mount id comes from ``fdinfo``, read through the ``/proc/<pid>`` held
    before pivot_root: the path ``/proc/self`` is then the container's (here: a tmpfs over /proc)."""
    (tmp_path / "d").mkdir()

    def probe():
        fd = os.open(tmp_path / "d", os.O_PATH)
        expected = linux.mount_id(fd)  # statx, and /proc is still the host's
        paths.proc_self()
        linux.mount("tmpfs", "/proc", "tmpfs", 0, "size=16k")
        linux._statx = None  # this child only
        return paths.mount_id(fd) == expected

    assert _in_private_mount_namespace(probe) == "True"


def test_a_bind_source_through_a_symlinked_parent_stays_in_the_rootfs(runtime, busybox_rootfs, tmp_path):
    """The container's rootfs holds ``sub/esc -> /etc`` (any process in it can write one); the
    config binds ``<host>/link/esc`` where the host's ``link`` points at ``<rootfs>/sub``. The
    source must resolve as the rootfs sees it (its own /etc), not the host's /etc."""
    rootfs_dir = _victim_rootfs(busybox_rootfs, str(tmp_path / "rootfs"))
    os.symlink("busybox", os.path.join(rootfs_dir, "bin", "sleep"))
    os.mkdir(os.path.join(rootfs_dir, "sub"))
    os.symlink("/etc", os.path.join(rootfs_dir, "sub", "esc"))
    os.symlink(os.path.join(rootfs_dir, "sub"), tmp_path / "link")
    cfg = Config(rootfs=rootfs_dir, hostname="confined",
                 mounts=default_mounts() + [_bind(str(tmp_path / "link" / "esc"), "/data", MS_RDONLY)])
    c = runtime.create(unique_id("bindsrc"), cfg)
    c.start(Process(["/bin/sleep", "60"]))
    seen = _ident(f"/proc/{c.state().init_process_pid}/root/data")
    assert seen != _ident("/etc"), "the host's /etc was bound into the container"
    assert seen == _ident(os.path.join(rootfs_dir, "etc"))
