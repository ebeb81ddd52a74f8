"""Config fields real clients send (issue 14, item 5): devices, the cgroup mount, mount options,
rootfs propagation, a relative cgroupsPath, a read-only /dev, a joined mount namespace.

Real containers on the busybox rootfs; each behaviour checked against what runc 1.1.5 does here.
"""

from __future__ import annotations

import dataclasses
import errno
import os
import shutil
import signal
import subprocess

import pytest

from conftest import unique_id, wait_for
from declarative_ct.configs import Capabilities, Device, DeviceRule, Mount, Namespace, default_device_rules, default_mounts
from declarative_ct.configs.mountflags import (EXT_COPYUP, MOUNT_ATTR_RDONLY, MS_BIND, MS_NODEV, MS_NOEXEC, MS_NOSUID,
                                               MS_RDONLY, MS_REC, MS_RELATIME, MS_SHARED)
from declarative_ct.errors import ContainerError
from declarative_ct.runtime import Process, cgroups

pytestmark = pytest.mark.integration

V1 = cgroups.detect()[0] == "v1"
needs_v1 = pytest.mark.skipif(not V1, reason="the device cgroup and the cgroup mount layout checked here are v1's")


def _on(rootfs: str, busybox_config, **fields):
    return dataclasses.replace(busybox_config(**fields), rootfs=rootfs)


def _ok(finished) -> str:
    assert finished.exit_code == 0, (finished.stdout, finished.stderr)
    return finished.stdout


# -- linux.devices -------------------------------------------------------------------------

@needs_v1
def test_device_node_with_its_rule_is_usable_and_one_without_is_refused(busybox_config, run_container):
    """runc: the node is made either way; only the device cgroup's rule lets it be opened."""
    rules = default_device_rules() + [DeviceRule("c", 1, 7, "rwm", True)]  # /dev/full's numbers, allowed
    cfg = busybox_config(devices=[Device("/dev/myfull", "c", 1, 7, 0o640, 12, 34),
                                  Device("/dev/sub/mem", "c", 1, 1),  # /dev/mem: no rule
                                  Device("/dev/fifo", "p")])
    cfg.cgroups.resources.devices = rules
    out = _ok(run_container(cfg, ["sh", "-c", "stat -c '%F %t:%T %a %u:%g' /dev/myfull /dev/sub/mem /dev/fifo; "
                                               "head -c 4 /dev/myfull | wc -c; "
                                               "head -c 1 /dev/sub/mem && echo READ-MEM || echo mem-refused"]))
    lines = out.split("\n")
    assert lines[0] == "character special file 1:7 640 12:34"
    assert lines[1] == "character special file 1:1 666 0:0"
    assert lines[2] == "fifo 0:0 666 0:0"
    assert lines[3].strip() == "4"
    assert "mem-refused" in out and "READ-MEM" not in out


def test_device_path_through_a_symlink_stays_in_the_rootfs(busybox_rootfs, busybox_config, run_container, tmp_path):
    """ATTACK: the rootfs's /dev/evil -> /../../../../<host dir>: the node must land inside the rootfs."""
    rootfs = str(tmp_path / "rootfs")
    shutil.copytree(busybox_rootfs, rootfs, symlinks=True)
    host_dir = tmp_path / "host-target"
    host_dir.mkdir()
    # /dev is a tmpfs in the container: make the symlink live there by a /dev that is the rootfs's own.
    mounts = [m for m in default_mounts() if m.destination not in ("/dev", "/dev/pts", "/dev/shm", "/dev/mqueue")]
    os.symlink("/../../../../../.." + str(host_dir), os.path.join(rootfs, "dev", "evil"))
    cfg = _on(rootfs, busybox_config, mounts=mounts, mask_paths=[],
              devices=[Device("/dev/evil/node", "p")])
    out = _ok(run_container(cfg, ["sh", "-c", f"ls {host_dir}"]))
    assert "node" in out  # made at the symlink's target as the container resolves it: inside its root
    assert os.listdir(host_dir) == []
    assert os.path.exists(os.path.join(rootfs, str(host_dir).lstrip("/"), "node"))


def test_existing_name_is_left_alone_not_followed(busybox_rootfs, busybox_config, run_container, tmp_path):
    """ATTACK: a device path that is a symlink to a host file: nothing is made or chowned there (runc: EEXIST)."""
    rootfs = str(tmp_path / "rootfs")
    shutil.copytree(busybox_rootfs, rootfs, symlinks=True)
    victim = tmp_path / "victim"
    victim.write_text("x")
    os.chmod(victim, 0o600)
    mounts = [m for m in default_mounts() if m.destination not in ("/dev", "/dev/pts", "/dev/shm", "/dev/mqueue")]
    os.symlink(str(victim), os.path.join(rootfs, "dev", "link"))
    cfg = _on(rootfs, busybox_config, mounts=mounts, mask_paths=[],
              devices=[Device("/dev/link", "c", 1, 3, 0o666, 1000, 1000)])
    _ok(run_container(cfg, ["true"]))
    st = os.stat(victim)
    assert (st.st_uid, st.st_gid, st.st_mode & 0o777) == (0, 0, 0o600)


# -- the cgroup mount ------------------------------------------------------------------------

@needs_v1
def test_cgroup_mount_shows_the_containers_own_cgroups_read_only(busybox_config, run_container):
    cgroup_mount = Mount("cgroup", "/sys/fs/cgroup", "cgroup", MS_NOSUID | MS_NOEXEC | MS_NODEV | MS_RELATIME | MS_RDONLY)
    cfg = busybox_config(mounts=default_mounts() + [cgroup_mount])
    cfg.cgroups.resources.pids_limit = 77
    out = _ok(run_container(cfg, ["sh", "-c", "ls /sys/fs/cgroup; cat /sys/fs/cgroup/pids/pids.max; "
                                               "echo 5 > /sys/fs/cgroup/pids/pids.max && echo WROTE || echo ro; "
                                               "grep ' /sys/fs/cgroup' /proc/self/mountinfo"]))
    names = {os.path.basename(p) for p in set(cgroups.detect()[1].values())}
    listed, rest = out.split("77\n", 1)
    assert set(listed.split()) == names
    assert "ro\n" in rest and "WROTE" not in rest
    for line in rest.splitlines()[1:]:
        point, opts = line.split()[4], line.split()[5]
        if point != "/sys/fs/cgroup":
            assert opts.startswith("ro,"), line


# -- mount options -------------------------------------------------------------------------

def test_tmpcopyup_keeps_the_content(busybox_rootfs, busybox_config, run_container, tmp_path):
    rootfs = str(tmp_path / "rootfs")
    shutil.copytree(busybox_rootfs, rootfs, symlinks=True)
    data = os.path.join(rootfs, "data")
    os.makedirs(os.path.join(data, "sub"))
    with open(os.path.join(data, "sub", "f"), "w") as f:
        f.write("hello\n")
    os.symlink("sub/f", os.path.join(data, "link"))
    os.chmod(data, 0o751)
    os.chown(os.path.join(data, "sub", "f"), 1000, 1000)
    cfg = _on(rootfs, busybox_config, mounts=default_mounts() + [
        Mount("tmpfs", "/data", "tmpfs", MS_NOSUID, "", extensions=EXT_COPYUP)])
    out = _ok(run_container(cfg, ["sh", "-c", "cat /data/link; stat -c '%a' /data; stat -c '%u' /data/sub/f; "
                                               "echo new > /data/n; grep ' /data ' /proc/self/mountinfo"]))
    assert out.startswith("hello\n751\n1000\n")
    assert " tmpfs " in out
    assert not os.path.exists(os.path.join(data, "n"))  # written to the tmpfs, not the rootfs


def test_rro_makes_every_submount_read_only(busybox_config, run_container, tmp_path):
    """``ro`` on an rbind leaves submounts writable; ``rro`` (mount_setattr AT_RECURSIVE) does not."""
    src = tmp_path / "vol"
    (src / "inner").mkdir(parents=True)
    subprocess.run(["mount", "-t", "tmpfs", "tmpfs", str(src / "inner")], check=True)
    try:
        cfg = busybox_config(mounts=default_mounts() + [
            Mount(str(src), "/plain", "bind", MS_BIND | MS_REC | MS_RDONLY),
            Mount(str(src), "/rec", "bind", MS_BIND | MS_REC, rec_attr_set=MOUNT_ATTR_RDONLY)])
        out = _ok(run_container(cfg, ["sh", "-c", "touch /plain/inner/a && echo plain-rw; touch /plain/b || true; "
                                                   "touch /rec/inner/c || echo rec-inner-ro; touch /rec/d || echo rec-ro"]))
        assert "plain-rw" in out  # what rro exists for
        assert "rec-inner-ro" in out and "rec-ro" in out
    finally:
        subprocess.run(["umount", "-l", str(src / "inner")], check=False)


def test_rootfs_propagation_shared_and_mount_propagation(busybox_config, run_container):
    cfg = busybox_config(root_propagation=MS_SHARED | MS_REC, mounts=default_mounts() + [
        Mount("tmpfs", "/a", "tmpfs", 0, "", [MS_SHARED])])
    out = _ok(run_container(cfg, ["sh", "-c", "cat /proc/self/mountinfo"]))
    fields = {line.split()[4]: line.split()[6] for line in out.splitlines()}
    assert fields["/"].startswith("shared:") and fields["/a"].startswith("shared:"), out


def test_read_only_dev_has_its_nodes(busybox_config, run_container):
    mounts = default_mounts()
    dev = next(m for m in mounts if m.destination == "/dev")
    dev.flags |= MS_RDONLY
    cfg = busybox_config(mounts=mounts)
    out = _ok(run_container(cfg, ["sh", "-c", "echo x > /dev/null && echo null-ok; touch /dev/new || echo dev-ro; "
                                               "ls /dev/pts/ptmx /dev/shm >/dev/null && echo sub-ok"]))
    assert out.split() == ["null-ok", "dev-ro", "sub-ok"]


# -- cgroupsPath, /proc, namespaces ---------------------------------------------------------

@needs_v1
def test_relative_cgroups_path_lands_below_our_own_cgroup(busybox_config, runtime):
    """runc's fs driver: a relative path is below the creating process's cgroup, per hierarchy."""
    name = unique_id("rel")
    cfg = busybox_config()
    cfg.cgroups.path = f"dct-test/{name}"
    own, mounts = cgroups.own_cgroups(), cgroups.detect()[1]
    c = runtime.create(name, cfg)
    try:
        c.start(Process(["sleep", "5"]))
        expect = os.path.join(mounts["memory"], own["memory"].lstrip("/"), "dct-test", name)
        assert c.state().cgroup_paths["memory"] == expect
        with open(os.path.join(expect, "cgroup.procs")) as f:
            assert str(c.state().init_process_pid) in f.read().split()
        c.signal(signal.SIGKILL)
        wait_for(lambda: str(c.status()) == "stopped")
        c.destroy()
    finally:
        for ctrl, point in mounts.items():
            try:
                os.rmdir(os.path.join(point, own.get(ctrl, "/").lstrip("/"), "dct-test"))
            except OSError as err:
                assert err.errno in (errno.ENOENT, errno.EBUSY, errno.ENOTEMPTY)


def _without_proc():
    return [m for m in default_mounts() if m.destination != "/proc"]


def test_no_proc_mount_runs_and_applies_sysctls(busybox_config, runtime):
    """runc 1.1.5 fails here ("open /proc/self/fd"); init uses a procfs of the container's own instead."""
    cfg = busybox_config(mounts=_without_proc(), mask_paths=[], readonly_paths=[],
                         sysctl={"net.ipv4.ip_forward": "1"})
    c = runtime.create(unique_id("noproc"), cfg)
    try:
        c.start(Process(["sh", "-c", "ls -A /proc | wc -l; exec sleep 5"]), monitor=False, detach=True)
        c.exec()  # the create/start split still works: the fifo is reopened through that procfs
        pid = c.state().init_process_pid
        forward = subprocess.run(["nsenter", f"--net=/proc/{pid}/ns/net", "cat", "/proc/sys/net/ipv4/ip_forward"],
                                 capture_output=True, text=True, timeout=10)
        assert forward.stdout.strip() == "1", forward.stderr
        assert os.listdir(f"/proc/{pid}/root/proc") == []  # nothing mounted there
    finally:
        c.signal(signal.SIGKILL)
        wait_for(lambda: str(c.status()) == "stopped")
        c.destroy()


def test_no_proc_mount_leaves_no_host_procfs_to_an_exec_before_start(busybox_config, runtime, tmp_path):
    """ATTACK: a created container without /proc; a process exec'd into it mounts a procfs and walks
    init's fds (/proc/1/fd/N/<this test's pid>/root/...) for a marker on the host. Init holds only
    the container's own procfs."""
    marker = tmp_path / f"host-marker-{os.getpid()}"
    marker.write_text("host")
    caps = ["CAP_SYS_ADMIN", "CAP_SYS_PTRACE", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH"]
    cfg = busybox_config(mounts=_without_proc(), mask_paths=[], readonly_paths=[])
    c = runtime.create(unique_id("noproc-atk"), cfg)
    try:
        c.start(Process(["sleep", "5"]), monitor=False, detach=True)  # created: init waits on the fifo
        out_r, out_w = os.pipe()
        probe = (f"mkdir -p /tmp/p && mount -t proc proc /tmp/p && ls /tmp/p/1/fd | wc -l; "
                 f"for fd in /tmp/p/1/fd/*; do ls -d $fd/{os.getpid()}/root{marker} 2>/dev/null && echo REACHED-HOST; "
                 f"done; echo done")
        handle = c.start(Process(["sh", "-c", probe], init=False, stdout=out_w, stderr=out_w,
                                 capabilities=Capabilities(Bounding=caps, Effective=caps, Permitted=caps)))
        os.close(out_w)
        assert handle.wait() == 0
        with os.fdopen(out_r) as f:
            out = f.read()
        assert "REACHED-HOST" not in out
        assert out.split()[0] != "0" and out.split()[-1] == "done", out  # the walk did see init's fds
    finally:
        c.signal(signal.SIGKILL)
        wait_for(lambda: str(c.status()) == "stopped")
        c.destroy()


def test_joining_a_mount_namespace_by_path(busybox_config, run_container):
    """runc allows it: the rootfs is set up inside the joined namespace."""
    holder = subprocess.Popen(["unshare", "--mount", "--propagation", "private", "sleep", "30"])
    try:
        ns = f"/proc/{holder.pid}/ns/mnt"
        for _ in range(100):
            if os.readlink(ns) != os.readlink("/proc/self/ns/mnt"):
                break
            __import__("time").sleep(0.02)
        cfg = busybox_config(namespaces=[Namespace("NEWNS", ns), Namespace("NEWPID"), Namespace("NEWUTS"),
                                         Namespace("NEWIPC"), Namespace("NEWNET")])
        out = _ok(run_container(cfg, ["sh", "-c", "readlink /proc/self/ns/mnt; ls /bin/busybox"]))
        assert out.split()[0] == os.readlink(ns)
        assert "/bin/busybox" in out
    finally:
        holder.kill()
        holder.wait()


def test_device_error_names_the_path(busybox_config, runtime):
    cfg = busybox_config(devices=[Device("/etc/passwd/x", "p")])
    c = runtime.create(unique_id("deverr"), cfg)
    with pytest.raises(ContainerError, match="device /etc/passwd/x"):
        c.start(Process(["true"]))


def test_missing_cwd_is_made_before_the_rootfs_turns_read_only(busybox_config, run_container):
    """runc 1.1.5 makes a missing process.cwd even with root.readonly (the `dct spec` default)."""
    cfg = busybox_config(readonlyfs=True)
    out = _ok(run_container(cfg, Process(["sh", "-c", "pwd; touch /x 2>/dev/null || echo ro"], cwd="/made/here")))
    assert out.split() == ["/made/here", "ro"]
