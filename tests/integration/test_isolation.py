"""What a process inside a container sees: namespaces, capabilities, masked paths, fds, users, env."""

from __future__ import annotations

import os
import re
import uuid

import pytest

from conftest import exec_in, unique_id
from declarative_ct.configs import (CAPABILITIES, DEFAULT_CAPABILITIES, DEFAULT_ENV, DEFAULT_MASK_PATHS, Capabilities,
                                    Mount)
from declarative_ct.configs.mountflags import MS_BIND, MS_NODEV, MS_NOSUID, MS_RDONLY, MS_REC
from declarative_ct.runtime import Process

pytestmark = pytest.mark.integration

DEFAULT_CAP_MASK = sum(1 << CAPABILITIES[name] for name in DEFAULT_CAPABILITIES)


def _status_fields(text: str) -> dict[str, str]:
    """``/proc/<pid>/status`` as a dict (``CapEff`` -> ``00000000a80425fb``)."""
    return {k.strip(): v.strip() for k, _, v in (line.partition(":") for line in text.splitlines()) if v}




def _running(runtime, config, prefix):
    c = runtime.create(unique_id(prefix), config)
    c.start(Process(["/bin/sleep", "1000"]))
    c.exec()
    return c


def _tmpfs(destination):
    return Mount("tmpfs", destination, "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777,size=1m")


# -- namespaces ----------------------------------------------------------------------------------


def test_hostname_is_the_configs(run_container, busybox_config):
    res = run_container(busybox_config(hostname="iso-host"), ["/bin/hostname"], "hostname")
    assert res.exit_code == 0, res.stderr
    assert res.stdout == "iso-host\n"


def test_program_is_pid_1(run_container, busybox_config):
    res = run_container(busybox_config(), ["/bin/sh", "-c", "echo $$"], "pid1")
    assert res.stdout == "1\n"


def test_proc_shows_only_the_containers_pids(run_container, busybox_config):
    res = run_container(busybox_config(), ["/bin/ls", "/proc"], "procls")
    assert res.exit_code == 0, res.stderr
    pids = {name for name in res.stdout.split() if name.isdigit()}
    assert pids == {"1"}  # ls is init: nothing else exists in its PID namespace


def test_ps_shows_only_the_container(run_container, busybox_config):
    res = run_container(busybox_config(), ["/bin/sh", "-c", "ps -o pid,comm"], "ps")
    assert res.exit_code == 0, res.stderr
    rows = [line.split() for line in res.stdout.splitlines()[1:]]
    pids = sorted(int(r[0]) for r in rows)
    assert pids[0] == 1 and len(pids) <= 2 and all(p < 10 for p in pids), res.stdout
    assert str(os.getpid()) not in res.stdout.split()


def test_mount_inside_is_not_visible_on_the_host(run_container, busybox_config, tmp_path):
    shared = tmp_path / "shared"
    (shared / "sub").mkdir(parents=True)
    tag = f"dct-probe-{uuid.uuid4().hex[:8]}"
    cfg = busybox_config()
    cfg.mounts.append(Mount(source=str(shared), destination="/shared", device="bind", flags=MS_BIND | MS_REC))
    caps = DEFAULT_CAPABILITIES + ["CAP_SYS_ADMIN"]
    cfg.capabilities = Capabilities(Bounding=list(caps), Effective=list(caps), Permitted=list(caps))
    script = (f"mount -t tmpfs {tag} /shared/sub && mkdir /dev/probe && mount -t tmpfs {tag} /dev/probe"
              f" && echo ok > /shared/sub/f"
              f" && grep -c {tag} /proc/self/mountinfo")
    res = run_container(cfg, ["/bin/sh", "-c", script], "mountns")
    assert res.exit_code == 0, res.stderr
    assert res.stdout.strip() == "2"  # the mounts did happen inside
    with open("/proc/self/mountinfo") as f:
        host = f.read()
    assert tag not in host
    assert os.listdir(shared / "sub") == []  # the host directory is not covered by the tmpfs


def test_net_namespace_has_only_lo_and_it_is_up(run_container, busybox_config):
    res = run_container(busybox_config(),
                        ["/bin/sh", "-c", "ls /sys/class/net; echo ---; cat /sys/class/net/lo/flags; echo ---; "
                                          "ip -o link show"], "net")
    assert res.exit_code == 0, res.stderr
    ifaces, flags, links = res.stdout.split("---\n")
    assert ifaces.split() == ["lo"]
    assert int(flags, 16) & 0x1, f"lo is down (flags {flags.strip()})"
    lines = links.strip().splitlines()
    assert len(lines) == 1 and re.match(r"1: lo: <[^>]*\bUP\b", lines[0]), links


# -- privileges ----------------------------------------------------------------------------------


def test_capabilities_and_no_new_privs(run_container, busybox_config):
    res = run_container(busybox_config(), ["/bin/cat", "/proc/self/status"], "caps")
    st = _status_fields(res.stdout)
    assert int(st["CapEff"], 16) == DEFAULT_CAP_MASK, (st["CapEff"], f"{DEFAULT_CAP_MASK:016x}")
    assert int(st["CapPrm"], 16) == DEFAULT_CAP_MASK
    assert int(st["CapBnd"], 16) == DEFAULT_CAP_MASK
    assert int(st["CapInh"], 16) == 0
    assert int(st["CapAmb"], 16) == 0
    assert st["NoNewPrivs"] == "1"


def test_exec_process_gets_the_same_capabilities(runtime, busybox_config):
    c = _running(runtime, busybox_config(), "execcaps")
    code, out = exec_in(c, ["/bin/cat", "/proc/self/status"])
    assert code == 0
    st = _status_fields(out)
    assert int(st["CapEff"], 16) == DEFAULT_CAP_MASK
    assert int(st["CapBnd"], 16) == DEFAULT_CAP_MASK
    assert st["NoNewPrivs"] == "1"


def test_signal_dispositions_are_reset(run_container, busybox_config, runtime):
    """No signal may stay ignored or blocked from the manager (Python ignores SIGPIPE and SIGXFSZ)."""
    res = run_container(busybox_config(), ["/bin/cat", "/proc/self/status"], "sigign")
    st = _status_fields(res.stdout)
    assert (st["SigIgn"], st["SigBlk"]) == ("0" * 16, "0" * 16), "init inherited ignored/blocked signals"
    c = _running(runtime, busybox_config(), "sigignexec")
    code, out = exec_in(c, ["/bin/cat", "/proc/self/status"])
    st = _status_fields(out)
    assert (st["SigIgn"], st["SigBlk"]) == ("0" * 16, "0" * 16), "exec'd process inherited ignored/blocked signals"


def test_user_and_groups_switch(run_container, busybox_config):
    proc = Process(["/bin/sh", "-c", "id -u; id -g; id -G; cat /proc/self/status"], uid=1000, gid=1000,
                   additional_groups=[10])
    res = run_container(busybox_config(), proc, "uid")
    assert res.exit_code == 0, res.stderr
    uid, gid, groups, status = res.stdout.split("\n", 3)
    assert (uid, gid) == ("1000", "1000")
    assert "10" in groups.split() and set(groups.split()) == {"1000", "10"}
    st = _status_fields(status)
    assert st["Uid"].split() == ["1000"] * 4
    assert st["Gid"].split() == ["1000"] * 4
    assert st["Groups"].split() == ["10"]
    assert int(st["CapEff"], 16) == 0
    assert int(st["CapPrm"], 16) == 0


def test_exec_as_user(runtime, busybox_config):
    c = _running(runtime, busybox_config(), "execuid")
    code, out = exec_in(c, ["/bin/sh", "-c", "id -u; id -g; id -G"], uid=1000, gid=1000, additional_groups=[10])
    assert code == 0
    assert out.split("\n")[:2] == ["1000", "1000"]
    assert set(out.split("\n")[2].split()) == {"1000", "10"}


# -- filesystem hardening ------------------------------------------------------------------------


_MASK_CHECK_PATHS = []
for _p in DEFAULT_MASK_PATHS:
    if os.path.exists(_p):
        _MASK_CHECK_PATHS.append(_p)
    else:
        _MASK_CHECK_PATHS.append(pytest.param(_p, marks=pytest.mark.skip(reason=f"{_p} does not exist on this host")))


@pytest.mark.parametrize("path", _MASK_CHECK_PATHS)
def test_masked_path_reads_empty(run_container, busybox_config, path):
    if os.path.isdir(path):
        script = f"test -d {path} && ls -A {path} | wc -l"
    else:
        script = f"test -e {path} && cat {path} | wc -c && stat -c %s {path}"
    res = run_container(busybox_config(), ["/bin/sh", "-c", script], "mask")
    assert res.exit_code == 0, res.stderr
    assert res.stdout.split() == (["0"] if os.path.isdir(path) else ["0", "0"]), res.stdout


def test_proc_sys_is_read_only(run_container, busybox_config):
    script = "echo hacked > /proc/sys/kernel/hostname; echo rc=$?; hostname"
    res = run_container(busybox_config(hostname="roproc"), ["/bin/sh", "-c", script], "procsys")
    lines = res.stdout.splitlines()
    assert lines[0] != "rc=0" and lines[1] == "roproc", res.stdout
    assert "Read-only file system" in res.stderr


@pytest.fixture
def manager_fd(tmp_path):
    """An inheritable, non-CLOEXEC fd 77 of the manager, open on a host file."""
    number = 77
    try:
        os.fstat(number)
        pytest.fail(f"fd {number} is already open in the test process; pick another")
    except OSError:
        pass
    path = tmp_path / "secret"
    path.write_text("host secret\n")
    fd = os.open(path, os.O_RDONLY)
    os.dup2(fd, number, inheritable=True)
    os.close(fd)
    assert os.get_inheritable(number)
    yield number
    os.close(number)


def test_manager_fds_do_not_leak_into_init(run_container, busybox_config, manager_fd):
    res = run_container(busybox_config(), ["/bin/ls", "/proc/self/fd"], "fdleak")
    assert res.exit_code == 0, res.stderr
    fds = set(res.stdout.split())
    assert str(manager_fd) not in fds
    assert {"0", "1", "2"} <= fds and len(fds - {"0", "1", "2"}) <= 1, fds  # + ls's own directory fd


def test_manager_fds_do_not_leak_into_exec(runtime, busybox_config, manager_fd):
    c = _running(runtime, busybox_config(), "fdleakexec")
    code, out = exec_in(c, ["/bin/ls", "/proc/self/fd"])
    assert code == 0
    fds = set(out.split())
    assert str(manager_fd) not in fds
    assert {"0", "1", "2"} <= fds and len(fds - {"0", "1", "2"}) <= 1, fds


def test_readonly_bind_mount_cannot_be_written(run_container, busybox_config, tmp_path):
    ro, rw = tmp_path / "ro", tmp_path / "rw"
    ro.mkdir()
    rw.mkdir()
    (ro / "data").write_text("hello\n")
    cfg = busybox_config()
    cfg.mounts.append(Mount(source=str(ro), destination="/ro", device="bind", flags=MS_BIND | MS_REC | MS_RDONLY))
    cfg.mounts.append(Mount(source=str(rw), destination="/rw", device="bind", flags=MS_BIND | MS_REC))
    script = "cat /ro/data; echo x > /rw/new || exit 10; echo x > /ro/new && exit 11; exit 0"
    res = run_container(cfg, ["/bin/sh", "-c", script], "robind")
    assert res.exit_code == 0, (res.exit_code, res.stderr)
    assert res.stdout == "hello\n"
    assert "Read-only file system" in res.stderr
    assert os.listdir(ro) == ["data"]
    assert (rw / "new").read_text() == "x\n"  # the control: a rw bind is writable


# -- process settings ------------------------------------------------------------------------------


def test_cwd_is_honoured_and_created(run_container, busybox_config):
    cfg = busybox_config()
    cfg.mounts.append(_tmpfs("/scratch"))
    res = run_container(cfg, Process(["/bin/pwd"], cwd="/scratch/a/b"), "cwdnew")
    assert res.exit_code == 0, res.stderr
    assert res.stdout == "/scratch/a/b\n"
    res = run_container(busybox_config(), Process(["/bin/pwd"], cwd="/etc"), "cwdetc")
    assert res.stdout == "/etc\n"


def test_exec_cwd(runtime, busybox_config):
    c = _running(runtime, busybox_config(), "execcwd")
    assert exec_in(c, ["/bin/pwd"], cwd="/etc") == (0, "/etc\n")


def test_env_is_passed_and_nothing_else(run_container, busybox_config):
    res = run_container(busybox_config(), Process(["/bin/env"], env=["FOO=bar", "EMPTY="]), "env")
    assert res.exit_code == 0, res.stderr
    assert sorted(res.stdout.splitlines()) == sorted(["FOO=bar", "EMPTY=", "HOME=/root", DEFAULT_ENV[0]])


def test_home_comes_from_etc_passwd(run_container, busybox_config):
    res = run_container(busybox_config(), Process(["/bin/sh", "-c", 'echo "$FOO|$HOME"'], env=["FOO=bar"],
                                                   uid=1000, gid=1000), "home")
    assert res.stdout == "bar|/home/user\n"
    res = run_container(busybox_config(), Process(["/bin/sh", "-c", 'echo "$HOME"'], env=["HOME=/custom"]), "home2")
    assert res.stdout == "/custom\n"


def test_default_env_when_none_given(run_container, busybox_config):
    res = run_container(busybox_config(), ["/bin/env"], "envdefault")
    assert sorted(res.stdout.splitlines()) == sorted([DEFAULT_ENV[0], "HOME=/root"])


def test_joining_another_containers_namespaces_by_path(runtime, busybox_config):
    """configs.Namespace with a path joins that namespace (setns) instead of creating one."""
    from declarative_ct.configs import Namespace

    first = _running(runtime, busybox_config(hostname="first"), "nsowner")
    pid = first.state().init_process_pid
    cfg = busybox_config(hostname="")
    cfg.namespaces = [Namespace("NEWNS"), Namespace("NEWPID"), Namespace("NEWIPC"), Namespace("NEWCGROUP"),
                      Namespace("NEWNET", f"/proc/{pid}/ns/net"), Namespace("NEWUTS", f"/proc/{pid}/ns/uts")]
    second = _running(runtime, cfg, "nsjoiner")
    code, out = exec_in(second, ["/bin/sh", "-c", "hostname; readlink /proc/self/ns/net; readlink /proc/self/ns/pid"])
    assert code == 0
    hostname, net, pid_ns = out.split()
    assert hostname == "first"
    assert net == os.readlink(f"/proc/{pid}/ns/net")
    assert pid_ns != os.readlink(f"/proc/{pid}/ns/pid")  # a new one: only net and uts were joined
    assert second.state().namespace_paths["NEWNET"].endswith("/ns/net")

