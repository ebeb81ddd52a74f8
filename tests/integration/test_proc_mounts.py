"""proc and sysfs must stay where the masked and readonly paths look for them (CVE-2023-28642 class).

The attack: the rootfs has ``/proc -> /vol/s/../../y`` and ``/z/y/self -> /y/self``; a volume
bind-mounted at ``/vol`` holds ``s -> /z/w/v``. When proc is mounted, ``/vol/s`` is still the
rootfs's own directory and ``/proc`` leads to ``/y``; once the volume is mounted it leads to
``/z/y``. The masked and readonly paths, looked up after the mounts by ``/proc/…``, find nothing
there and would be skipped: the container would get an unmasked, writable procfs at ``/y`` and
could write the host's sysctls (``kernel.core_pattern``: code execution on the host).
"""

from __future__ import annotations

import errno
import os
import shutil

import pytest

from conftest import unique_id, wait_for
from declarative_ct.configs import Config, Mount
from declarative_ct.configs.mountflags import MS_BIND, MS_REC
from declarative_ct.errors import ContainerError
from declarative_ct.runtime import Process

pytestmark = pytest.mark.integration

SYSCTL = "/proc/sys/kernel/core_uses_pid"
# Flip the sysctl through the procfs at /y, then show what the masks left of it.
_FLIP = ("v=$(cat /y/sys/kernel/core_uses_pid); echo $((1-v)) > /y/sys/kernel/core_uses_pid; "
         "echo wrote $((1-v)); wc -c < /y/timer_list")


def _read_sysctl() -> str:
    with open(SYSCTL) as f:
        return f.read()


def _symlinked_proc_rootfs(base: str, busybox_rootfs: str) -> tuple[str, str]:
    """``(rootfs, volume)`` laid out as the attack above."""
    rootfs = os.path.join(base, "rootfs")
    shutil.copytree(busybox_rootfs, rootfs, symlinks=True)
    os.rmdir(os.path.join(rootfs, "proc"))
    for d in ("y", "vol/s", "z/w/v", "z/y"):
        os.makedirs(os.path.join(rootfs, d))
    os.symlink("/y/self", os.path.join(rootfs, "z/y/self"))  # /proc/self/fd/N (the exec fifo) still works
    os.symlink("/vol/s/../../y", os.path.join(rootfs, "proc"))
    volume = os.path.join(base, "vol")
    os.makedirs(volume)
    os.symlink("/z/w/v", os.path.join(volume, "s"))
    return rootfs, volume


def test_proc_through_a_symlink_is_refused_and_the_host_sysctl_is_untouched(runtime, busybox_rootfs, tmp_path):
    rootfs, volume = _symlinked_proc_rootfs(str(tmp_path), busybox_rootfs)
    cfg = Config(rootfs=rootfs, hostname="box")
    cfg.mounts.append(Mount(volume, "/vol", "bind", MS_BIND | MS_REC))
    before = _read_sysctl()
    refused = None
    try:
        c = runtime.create(unique_id("procsym"), cfg)
        try:
            c.start(Process(["/bin/sh", "-c", _FLIP]))
            c.exec()  # (unfixed: the container runs and writes the sysctl)
            wait_for(c.exit_status, 10, message="the container to exit")
        except ContainerError as err:
            refused = str(err)
    finally:
        after = _read_sysctl()
        if after != before:
            with open(SYSCTL, "w") as f:
                f.write(before)
    assert after == before, "the container wrote the host's kernel.core_uses_pid"
    assert refused is not None and "mount /proc: proc must be mounted on an ordinary directory" in refused
    assert not os.path.exists(c.state_dir)  # a failed create leaves nothing behind


def test_sysfs_through_a_symlink_is_refused(runtime, busybox_config, tmp_path):
    cfg = busybox_config()
    for m in cfg.mounts:
        if m.device == "sysfs":
            m.destination = "/tmp/" + unique_id("syslink") + "/sys"
    os.makedirs(str(tmp_path / "real"))
    # /tmp/<x> is a symlink into the rootfs made by an earlier mount of the same config.
    cfg.mounts.insert(0, Mount(str(tmp_path), os.path.dirname(cfg.mounts[-1].destination), "bind", MS_BIND))
    os.symlink("real", str(tmp_path / "sys"))
    c = runtime.create(unique_id("syssym"), cfg)
    with pytest.raises(ContainerError, match=r"mount /tmp/.*/sys: sysfs must be mounted on an ordinary directory"):
        c.start(Process(["/bin/true"]))


def test_a_later_mount_over_proc_is_refused(runtime, busybox_config, tmp_path):
    """A later mount over /proc would hide the procfs the masks are meant for: only proc goes there."""
    cfg = busybox_config()
    cfg.mounts.append(Mount(str(tmp_path), "/proc", "bind", MS_BIND))
    c = runtime.create(unique_id("procover"), cfg)
    with pytest.raises(ContainerError, match=r"mount /proc: \S+ cannot be mounted on /proc: it is not of type proc"):
        c.start(Process(["/bin/true"]))
    assert not os.path.exists(c.state_dir)


def _volume_over_proc(base: str, busybox_rootfs: str, link: str, files: dict[str, str]) -> tuple[str, str]:
    """``(rootfs, volume)``: the image has ``/vol -> link``; the volume holds the symlinks ``files``
    (name -> target), as an earlier run could have left them."""
    rootfs = os.path.join(base, "rootfs")
    shutil.copytree(busybox_rootfs, rootfs, symlinks=True)
    shutil.rmtree(os.path.join(rootfs, "vol"), ignore_errors=True)  # other tests' mounts may have made one
    os.symlink(link, os.path.join(rootfs, "vol"))
    volume = os.path.join(base, "vol")
    for name, target in files.items():
        os.makedirs(os.path.dirname(os.path.join(volume, name)), exist_ok=True)
        os.symlink(target, os.path.join(volume, name))
    return rootfs, volume


@pytest.mark.parametrize("attack", ["sysctl", "oom_score_adj"])
def test_a_volume_redirected_into_proc_is_refused(runtime, busybox_rootfs, tmp_path, attack):
    """The image's ``/vol`` points into procfs (``/proc/sys/net``, ``/proc/self``); the volume
    mounted there holds a symlink where init writes ``net.ipv4.ip_forward`` (``oom_score_adj``),
    aimed at the host-wide ``kernel.core_uses_pid``. runc refuses such a mount; so do we."""
    if attack == "sysctl":
        rootfs, volume = _volume_over_proc(str(tmp_path), busybox_rootfs, "/proc/sys/net",
                                           {"ipv4/ip_forward": SYSCTL})
        cfg = Config(rootfs=rootfs, hostname="box", sysctl={"net.ipv4.ip_forward": "1"})
        resolved = "/proc/sys/net"
    else:
        rootfs, volume = _volume_over_proc(str(tmp_path), busybox_rootfs, "/proc/self", {"oom_score_adj": SYSCTL})
        cfg = Config(rootfs=rootfs, hostname="box", oom_score_adj=7)
        resolved = "/proc/1"
    cfg.mounts.append(Mount(volume, "/vol", "bind", MS_BIND | MS_REC))
    before = _read_sysctl()
    refused = None
    try:
        with open(SYSCTL, "w") as f:
            f.write("0")  # the attack writes 1 (or 7): any change shows
        c = runtime.create(unique_id("volproc"), cfg)
        try:
            c.start(Process(["/bin/true"]))
            c.exec()
            wait_for(c.exit_status, 10, message="the container to exit")
        except ContainerError as err:
            refused = str(err)
        after = _read_sysctl()
    finally:
        with open(SYSCTL, "w") as f:
            f.write(before)
    assert after == "0\n", "the container wrote the host's kernel.core_uses_pid"
    assert refused is not None and f"mount /vol (resolved to {resolved}): cannot be mounted inside /proc" in refused
    assert not os.path.exists(c.state_dir)


def test_a_volume_over_the_container_root_is_refused(runtime, busybox_rootfs, tmp_path):
    rootfs, volume = _volume_over_proc(str(tmp_path), busybox_rootfs, "/proc/..", {})
    os.makedirs(volume)
    cfg = Config(rootfs=rootfs, hostname="box")
    cfg.mounts.append(Mount(volume, "/vol", "bind", MS_BIND | MS_REC))
    c = runtime.create(unique_id("volroot"), cfg)
    with pytest.raises(ContainerError, match=r"mount /vol \(resolved to /\): cannot be mounted over the container's root"):
        c.start(Process(["/bin/true"]))
    assert not os.path.exists(c.state_dir)


def test_the_lxcfs_files_may_be_covered(run_container, busybox_config, tmp_path):
    """As runc: a file such as /proc/uptime (lxcfs emulates it) may be bind-mounted over."""
    (tmp_path / "uptime").write_text("42.00 84.00\n")
    cfg = busybox_config()
    cfg.mounts.append(Mount(str(tmp_path / "uptime"), "/proc/uptime", "bind", MS_BIND))
    res = run_container(cfg, ["/bin/cat", "/proc/uptime"], "lxcfs")
    assert res.stdout == "42.00 84.00\n", res.stderr


def test_a_bind_source_planted_as_a_symlink_into_proc_is_refused(runtime, busybox_config, tmp_path):
    """Regression (runc shares it): a volume the container writes holds ``x -> core_pattern``; a
    second mount of the config binds ``<volume>/x`` onto /proc/cpuinfo (lxcfs-style), which put
    the host's core_pattern in the container, writable. A source that reaches procfs or sysfs only
    through a symlink is refused."""
    volume = tmp_path / "vol"
    volume.mkdir()
    (volume / "x").symlink_to("/proc/sys/kernel/core_pattern")
    cfg = busybox_config()
    cfg.mounts.append(Mount(str(volume), "/vol", "bind", MS_BIND | MS_REC))
    cfg.mounts.append(Mount(str(volume / "x"), "/proc/cpuinfo", "bind", MS_BIND))
    with pytest.raises(ContainerError, match="bind source .*/vol/x: reaches /proc/sys/kernel/core_pattern on "
                                             "/proc or /sys through a symlink; refusing"):
        runtime.create(unique_id("plant"), cfg).start(Process(["/bin/true"]))


def test_a_plain_proc_source_may_still_be_bound(run_container, busybox_config):
    cfg = busybox_config()
    cfg.mounts.append(Mount("/proc/uptime", "/proc/uptime", "bind", MS_BIND))
    res = run_container(cfg, ["/bin/cat", "/proc/uptime"], "plainproc")
    assert res.exit_code == 0 and res.stdout.strip(), res.stderr


@pytest.mark.parametrize("use_openat2", [True, False])
def test_init_writes_proc_files_through_no_symlink(tmp_path, monkeypatch, use_openat2):
    """The second layer: init's sysctl and oom_score_adj writes refuse a symlink on the way and a
    file that is not on procfs (a mount covering it), whatever the mounts let through."""
    from declarative_ct.runtime import init, paths

    monkeypatch.setattr(paths, "use_openat2", use_openat2)
    (tmp_path / "sys" / "net").mkdir(parents=True)
    os.symlink(SYSCTL, tmp_path / "sys" / "net" / "ip_forward")
    (tmp_path / "plain").write_text("0\n")
    os.symlink("/proc", tmp_path / "proc")
    before = _read_sysctl()
    top = os.open(tmp_path, os.O_PATH)
    try:
        with open("/proc/self/oom_score_adj") as f:
            own = f.read().strip()
        me = os.open("/proc/self", os.O_PATH)
        try:
            init.write_proc_file(me, "oom_score_adj", own, "oom")  # the real thing still works
        finally:
            os.close(me)
        for path, err in (("sys/net/ip_forward", errno.ELOOP), ("proc/sys/kernel/core_uses_pid", errno.ELOOP),
                          ("plain", errno.EXDEV)):
            with pytest.raises(OSError, match=r"^\[Errno \d+\] sysctl x: ") as info:
                init.write_proc_file(top, path, "1" if before.strip() == "0" else "0", "sysctl x")
            assert info.value.errno == err, path
    finally:
        os.close(top)
        paths.release()
        after = _read_sysctl()
        if after != before:
            with open(SYSCTL, "w") as f:
                f.write(before)
    assert after == before
    assert (tmp_path / "plain").read_text() == "0\n"


@pytest.mark.parametrize("field", ["mask_paths", "readonly_paths"])
def test_a_path_with_a_trailing_slash_on_a_file_is_an_error(runtime, busybox_config, field):
    """``/proc/keys/`` names no directory (ENOTDIR): refused naming it, not skipped as missing
    (which left /proc/keys unmasked). Only ENOENT means absent, as in runc."""
    cfg = busybox_config()
    getattr(cfg, field).append("/proc/keys/")
    c = runtime.create(unique_id("slash"), cfg)
    what = "masked" if field == "mask_paths" else "readonly"
    with pytest.raises(ContainerError, match=rf"{what} path /proc/keys/: Not a directory"):
        c.start(Process(["/bin/true"]))
    assert not os.path.exists(c.state_dir)


def test_default_masks_still_apply(run_container, busybox_config):
    res = run_container(busybox_config(), ["/bin/sh", "-c", "wc -c < /proc/timer_list; echo 1 > /proc/sys/kernel/"
                                                             "core_uses_pid || echo refused"], "masks")
    assert res.stdout.split() == ["0", "refused"], res.stderr


@pytest.mark.parametrize("use_openat2", [True, False])
def test_open_no_symlinks_refuses_any_link_on_the_way(tmp_path, monkeypatch, use_openat2):
    """Both walkers (openat2's RESOLVE_NO_SYMLINKS and the O_NOFOLLOW walk) agree."""
    from declarative_ct.runtime import paths

    monkeypatch.setattr(paths, "use_openat2", use_openat2)
    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / "real").mkdir()
    os.symlink("real", tmp_path / "l")
    os.symlink("/a", tmp_path / "a2")
    root = os.open(tmp_path, os.O_PATH)
    try:
        for path, expect in (("/a/b", "a/b"), ("/a/../real", "real"), ("/../../a", "a")):
            fd = paths.open_no_symlinks(root, path)
            assert paths.where(fd) == str(tmp_path / expect)
            os.close(fd)
        for path, err in (("/l", errno.ELOOP), ("/a2/b", errno.ELOOP), ("/nope", errno.ENOENT)):
            with pytest.raises(OSError) as info:
                paths.open_no_symlinks(root, path)
            assert info.value.errno == err
    finally:
        os.close(root)


@pytest.mark.parametrize("key,value,shared,path", [
    ("kernel.msgmax", "8193", "NEWIPC", "/proc/sys/kernel/msgmax"),
    ("fs.mqueue.msg_max", "11", "NEWIPC", "/proc/sys/fs/mqueue/msg_max"),
    ("kernel.domainname", "attacker", "NEWUTS", "/proc/sys/kernel/domainname"),
])
def test_a_sysctl_of_a_namespace_shared_with_the_host_is_refused(runtime, busybox_config, key, value, shared,
                                                                   path):
    """Regression (the IPC and UTS sysctls were checked by prefix only): with the container in the
    host's IPC or UTS namespace, the config alone wrote the host's value. runc refuses it."""
    with open(path) as f:
        before = f.read()
    config = busybox_config(sysctl={key: value}, hostname="")
    config.namespaces = [ns for ns in config.namespaces if ns.type != shared]
    try:
        with pytest.raises(ContainerError, match=f"sysctl: {key} needs a new"):
            runtime.create(unique_id("sysctl"), config).start(Process(["/bin/true"]))
    finally:
        with open(path) as f:
            after = f.read()
        if after != before:
            with open(path, "w") as f:
                f.write(before)
    assert after == before, f"the container changed the host's {key}"


def test_kernel_hostname_as_a_sysctl_is_refused(busybox_config):
    with pytest.raises(ContainerError, match="kernel.hostname is not allowed: set hostname instead"):
        busybox_config(sysctl={"kernel.hostname": "x"}).validate()


def test_an_ipc_sysctl_is_set_in_the_containers_own_namespace(run_container, busybox_config):
    with open("/proc/sys/kernel/msgmax") as f:
        before = f.read()
    res = run_container(busybox_config(sysctl={"kernel.msgmax": "8200"}), ["/bin/cat", "/proc/sys/kernel/msgmax"],
                        "ipcsysctl")
    assert res.stdout == "8200\n"
    with open("/proc/sys/kernel/msgmax") as f:
        assert f.read() == before
