"""User namespaces (issue 14): ``linux.uidMappings``/``gidMappings`` and ``user`` in
``linux.namespaces``, the maps written by the parent.

Real containers on a copy of the busybox rootfs owned by the mapped root (host uid 100000), as
podman prepares one for ``--uidmap``. The ATTACK tests check what a user namespace is for: root in
the container is not root on the host, whatever capabilities it holds inside.
"""

from __future__ import annotations

import dataclasses
import json
import os
import select
import shutil
import tempfile
import signal
import time
from pathlib import Path

import pytest

from conftest import unique_id, wait_for
from dct_cli import Dct, runner
from declarative_ct.configs import CAPABILITIES, Capabilities, IDMap, Mount, Namespace, default_mounts
from declarative_ct.configs.mountflags import MS_BIND, MS_REC
from declarative_ct.errors import ConfigInvalid, ContainerError
from declarative_ct.runtime import Process

pytestmark = pytest.mark.integration

BASE, SIZE = 100000, 65536  # the container's ids 0… are the host's 100000…


@pytest.fixture(scope="module")
def mapped_rootfs(busybox_rootfs) -> str:
    """The busybox rootfs, owned by the container's root as the host sees it (BASE), in a directory
    that host id can search (pytest's own temporary directory is root's alone, 0700)."""
    top = tempfile.mkdtemp(prefix="dct-userns-", dir="/var/tmp")
    os.chmod(top, 0o711)
    root = os.path.join(top, "rootfs")
    shutil.copytree(busybox_rootfs, root, symlinks=True)
    for dirpath, dirnames, filenames in os.walk(root):
        for name in [dirpath, *(os.path.join(dirpath, n) for n in dirnames + filenames)]:
            st = os.lstat(name)
            os.lchown(name, BASE + st.st_uid, BASE + st.st_gid)
    yield root
    shutil.rmtree(top)


def _mapped(busybox_config, rootfs: str, **fields):
    cfg = busybox_config(**fields)
    cfg.rootfs = rootfs
    cfg.namespaces = [*cfg.namespaces, Namespace("NEWUSER")]
    cfg.uid_mappings = [IDMap(0, BASE, SIZE)]
    cfg.gid_mappings = [IDMap(0, BASE, SIZE)]
    return cfg


def _run(runtime, cfg, argv: list[str], monitor: bool, **process_fields) -> tuple[int, str]:
    """Create, start and run ``argv`` as init; its exit code (from the host's view) and output."""
    c = runtime.create(unique_id("userns"), cfg)
    out_r, out_w = os.pipe()
    try:
        c.run(Process(argv, stdout=out_w, stderr=out_w, **process_fields), monitor=monitor)
    finally:
        os.close(out_w)
    chunks = []
    with os.fdopen(out_r, "rb") as f:
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and select.select([f], [], [], 1)[0]:
            chunk = os.read(f.fileno(), 65536)
            if not chunk:
                break
            chunks.append(chunk)
    wait_for(lambda: str(c.status()) == "stopped", 10, message=f"{c.id} to stop")
    record = c.exit_status() if monitor else None
    return (record["exit_code"] if record else 0), b"".join(chunks).decode(errors="replace")


@pytest.mark.parametrize("monitor", [True, False], ids=["monitor", "stage1"])
def test_root_in_the_container_is_the_mapped_host_id(busybox_config, mapped_rootfs, runtime, monitor):
    cfg = _mapped(busybox_config, mapped_rootfs)
    code, out = _run(runtime, cfg, ["sh", "-c", "id -u; id -g; cat /proc/self/uid_map /proc/self/gid_map; "
                                                "ls -n /bin/busybox; echo x > /dev/null && echo null-ok; "
                                                "mount | grep -c ' on /proc type proc'; hostname; "
                                                "touch /tmp/mine && ls -n /tmp/mine"], monitor)
    assert code == 0, out
    lines = out.splitlines()
    assert lines[:4] == ["0", "0", f"         0     {BASE}      {SIZE}", f"         0     {BASE}      {SIZE}"], out
    assert " 0 " in lines[4] and lines[5] == "null-ok" and lines[6] == "1" and lines[7] == "box", out
    assert lines[8].split()[2:4] == ["0", "0"], out
    st = os.stat(os.path.join(mapped_rootfs, "tmp", "mine"))
    assert (st.st_uid, st.st_gid) == (BASE, BASE)  # what the container's root made is the host's 100000


def test_exec_joins_the_user_namespace_as_the_process_user(busybox_config, mapped_rootfs, runtime):
    cfg = _mapped(busybox_config, mapped_rootfs)
    c = runtime.create(unique_id("userns-exec"), cfg)
    c.run(Process(["sleep", "30"]))
    try:
        pid = c.state().init_process_pid
        assert os.readlink(f"/proc/{pid}/ns/user") != os.readlink("/proc/self/ns/user")
        assert "NEWUSER" in c.state().namespace_paths
        out_r, out_w = os.pipe()
        handle = c.start(Process(["sh", "-c", "id -u; cat /proc/self/uid_map; readlink /proc/self/ns/user"],
                                 init=False, uid=1000, gid=1000, stdout=out_w, stderr=out_w))
        os.close(out_w)
        assert handle.wait() == 0
        with os.fdopen(out_r) as f:
            lines = f.read().splitlines()
        assert lines[0] == "1000" and lines[1].split() == ["0", str(BASE), str(SIZE)]
        assert lines[2] == os.readlink(f"/proc/{pid}/ns/user")
        with open(f"/proc/{pid}/status") as f:  # init's ids as the host sees them
            uids = next(line for line in f if line.startswith("Uid:")).split()[1:]
        assert uids == [str(BASE)] * 4
    finally:
        c.signal(signal.SIGKILL)
        wait_for(lambda: str(c.status()) == "stopped")
        c.destroy()


def test_attack_root_with_every_capability_cannot_write_the_hosts_files(busybox_config, mapped_rootfs, runtime,
                                                                         run_container):
    """ATTACK: every capability inside, a host directory of root's files bound read-write: the
    container's root can neither write them, nor chown them, nor make a device node, nor write a
    host-wide sysctl. The same container without the user namespace can (the control)."""
    shared = Path(tempfile.mkdtemp(dir=os.path.dirname(mapped_rootfs)))  # a directory host 100000 can reach
    os.chmod(shared, 0o755)
    victim = shared / "victim"
    victim.write_text("host\n")
    os.chmod(victim, 0o644)
    mounts = [*default_mounts(), Mount(str(shared), "/shared", "bind", MS_BIND | MS_REC)]
    caps = Capabilities(*([*CAPABILITIES] for _ in range(3)))
    attack = ("echo pwned > /shared/victim && echo WROTE; chown 0:0 /shared/victim && echo CHOWNED; "
              "mknod /tmp/mem c 1 1 && head -c 1 /tmp/mem >/dev/null && echo READ-MEM; "
              "echo '|/tmp/x' > /proc/sys/kernel/core_pattern && echo SYSCTL; echo end")
    cfg = _mapped(busybox_config, mapped_rootfs, mounts=mounts, capabilities=caps, readonly_paths=[],
                  mask_paths=[], seccomp=None)
    code, out = _run(runtime, cfg, ["sh", "-c", attack], monitor=True)
    assert out.splitlines()[-1] == "end", out
    for word in ("WROTE", "CHOWNED", "READ-MEM", "SYSCTL"):
        assert word not in out, out
    assert victim.read_text() == "host\n" and os.stat(victim).st_uid == 0
    # The control: the same write as the host's root succeeds, so the refusal above is the namespace's.
    plain = dataclasses.replace(busybox_config(mounts=mounts), rootfs=mapped_rootfs)
    control = run_container(plain, ["sh", "-c", "echo pwned > /shared/victim && echo WROTE"])
    assert "WROTE" in control.stdout
    assert victim.read_text() == "pwned\n"


def test_a_kernel_refused_map_fails_the_create_and_leaves_nothing(busybox_config, mapped_rootfs, runtime):
    """Host ids past the kernel's range (2^32 - 1 is never mappable): the create fails naming the
    map, and no container, cgroup or process is left."""
    cfg = _mapped(busybox_config, mapped_rootfs)
    cfg.uid_mappings = [IDMap(0, 4294967294, 2)]  # host id 4294967295 (-1) cannot be mapped
    name = unique_id("userns-bad")
    c = runtime.create(name, cfg)
    with pytest.raises(ContainerError, match="uid_map"):
        c.run(Process(["true"]))
    assert not os.path.exists(c.state_dir)


def test_a_rootfs_the_mapped_root_cannot_reach_is_named(busybox_config, busybox_rootfs, runtime):
    """pytest's temporary directories are 0700 root's: the container's root (host 100000) cannot pass."""
    cfg = _mapped(busybox_config, busybox_rootfs)
    c = runtime.create(unique_id("userns-reach"), cfg)
    with pytest.raises(ContainerError, match=rf"the container's root \(host uid {BASE}, a user namespace\) "
                                             r"cannot search (/\S*)") as info:
        c.run(Process(["true"]))
    blocked = str(info.value).rsplit("cannot search ", 1)[1]
    assert busybox_rootfs.startswith(blocked) and not os.stat(blocked).st_mode & 0o001
    assert not os.path.exists(c.state_dir)


def test_mappings_without_a_user_namespace_are_refused(busybox_config, mapped_rootfs, runtime):
    cfg = busybox_config()
    cfg.uid_mappings = [IDMap(0, BASE, SIZE)]
    with pytest.raises(ConfigInvalid, match="uid_mappings: given without a user namespace"):
        runtime.create(unique_id("userns-nons"), cfg)


@pytest.fixture
def dct(state_root: str):
    yield from runner(Dct, state_root, unique_id)


def test_dct_run_of_a_bundle_with_a_user_namespace(dct, mapped_rootfs, tmp_path):
    """The CLI on an OCI bundle, as podman and containerd hand one over (a terminal-less run)."""
    dct.ok("spec", "--bundle", tmp_path)
    spec = json.loads((tmp_path / "config.json").read_text())
    spec["root"] = {"path": mapped_rootfs}
    spec["process"]["args"] = ["sh", "-c", "cat /proc/self/uid_map; ls -l /dev/null"]
    spec["linux"]["namespaces"].append({"type": "user"})
    spec["linux"]["uidMappings"] = spec["linux"]["gidMappings"] = [{"containerID": 0, "hostID": BASE, "size": SIZE}]
    (tmp_path / "config.json").write_text(json.dumps(spec))
    lines = dct.ok("run", "--bundle", tmp_path, dct.new_id("userns-cli")).stdout.splitlines()
    assert lines[0].split() == ["0", str(BASE), str(SIZE)]
    assert lines[1].startswith("crw-rw-rw-")


@pytest.mark.parametrize("monitor", [True, False], ids=["monitor", "stage1"])
def test_no_proc_mount_in_a_user_namespace(busybox_config, mapped_rootfs, runtime, monitor):
    """The procfs init uses without a /proc mount is made before pivot_root: in a user namespace the
    kernel makes one only while a whole procfs is visible (it failed with EPERM after pivot_root)."""
    mounts = [m for m in default_mounts() if m.destination != "/proc"]
    cfg = _mapped(busybox_config, mapped_rootfs, mounts=mounts, mask_paths=[], readonly_paths=[],
                  sysctl={"kernel.shmmax": "12345678"})
    code, out = _run(runtime, cfg, ["sh", "-c", "ls -A /proc | wc -l; id -u"], monitor)
    assert code == 0 and out.split() == ["0", "0"], out


def test_host_network_binds_the_hosts_sys_read_only_all_the_way_down(busybox_config, mapped_rootfs, runtime):
    """No network namespace of its own: sysfs cannot be mounted, so the host's /sys is bound. In a
    user namespace its submounts are locked and the bind must be recursive (EINVAL otherwise; runc
    1.1.5 fails here with EPERM): every one of them must then be read-only too."""
    cfg = _mapped(busybox_config, mapped_rootfs)
    cfg.namespaces = [ns for ns in cfg.namespaces if ns.type != "NEWNET"]
    code, out = _run(runtime, cfg, ["sh", "-c", "ls /sys/kernel >/dev/null && echo listed; "
                                                "grep -c ' /sys' /proc/self/mounts; "
                                                "grep ' /sys' /proc/self/mounts | grep -vc ' ro,'; "
                                                "mkdir /sys/fs/cgroup/memory/x 2>/dev/null && echo MADE"], True)
    lines = out.split()
    assert lines[0] == "listed" and int(lines[1]) > 1, out
    assert lines[2] == "0" and "MADE" not in out, out  # no read-write mount anywhere under /sys
