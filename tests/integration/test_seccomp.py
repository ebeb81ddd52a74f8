"""Seccomp in real containers: a profile's rules hold for init and exec, the default profile refuses
what docker's does, and a bad profile is refused at create with nothing left behind."""

from __future__ import annotations

import errno
import os
import re
import shutil
import subprocess

import pytest
import pyseccomp

from conftest import exec_in, unique_id
from declarative_ct.configs import DEFAULT_CAPABILITIES, Capabilities, Config
from declarative_ct.configs.seccomp import Seccomp, SeccompArg, SeccompSyscall
from declarative_ct.errors import ConfigInvalid
from declarative_ct.runtime import Process
from declarative_ct.runtime.seccomp_profile import default_profile

pytestmark = pytest.mark.integration

# A static program that makes one syscall by number and prints "<return value> <errno>".
_PROBE_C = r"""
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
int main(int argc, char **argv) {
    long a[6] = {0};
    for (int i = 2; i < argc && i < 8; i++) a[i - 2] = strtol(argv[i], NULL, 0);
    long r = syscall(strtol(argv[1], NULL, 0), a[0], a[1], a[2], a[3], a[4], a[5]);
    printf("%ld %d\n", r, r < 0 ? errno : 0);
    return 0;
}
"""


# The 32-bit ABI (int $0x80) from a static 64-bit program: "<socketcall> <direct socket>" for the
# family argv[1], each the raw return value (-errno); socketcall's arguments in low memory (-no-pie).
_PROBE32_C = r"""
#include <stdio.h>
#include <stdlib.h>
static unsigned int args[3];
static long sys32(long nr, long a, long b, long c) {
    long r;
    __asm__ volatile("int $0x80" : "=a"(r) : "a"(nr), "b"(a), "c"(b), "d"(c) : "memory");
    return r;
}
int main(int argc, char **argv) {
    args[0] = strtol(argv[1], NULL, 0); args[1] = 1; args[2] = 0;  /* family, SOCK_STREAM, 0 */
    long muxed = sys32(102, 1, (long)args, 0);                     /* socketcall(SYS_SOCKET, args) */
    long direct = sys32(359, args[0], 1, 0);                       /* socket(family, SOCK_STREAM, 0) */
    static unsigned int pair[2], pargs[4];
    pargs[0] = 1; pargs[1] = 1; pargs[2] = 0; pargs[3] = (unsigned int)(long)pair;
    long paired = sys32(102, 8, (long)pargs, 0);                   /* socketcall(SYS_SOCKETPAIR, AF_UNIX) */
    printf("%ld %ld %ld\n", muxed, direct, paired);
    return 0;
}
"""


@pytest.fixture(scope="module")
def probe_rootfs(busybox_rootfs, tmp_path_factory) -> str:
    """The busybox rootfs plus ``/probe`` (the program above, built with ``cc -static``) and
    ``/probe32`` (x86_64 only)."""
    if shutil.which("cc") is None:
        pytest.skip("no C compiler")
    root = str(tmp_path_factory.mktemp("probe") / "rootfs")
    shutil.copytree(busybox_rootfs, root, symlinks=True)
    src = os.path.join(os.path.dirname(root), "probe.c")
    with open(src, "w") as f:
        f.write(_PROBE_C)
    build = subprocess.run(["cc", "-static", "-O2", "-o", os.path.join(root, "probe"), src],
                           capture_output=True, text=True)
    if build.returncode != 0:
        pytest.skip(f"cannot build a static program: {build.stderr.strip()[:200]}")
    if os.uname().machine == "x86_64":
        with open(src, "w") as f:
            f.write(_PROBE32_C)
        subprocess.run(["cc", "-static", "-no-pie", "-O0", "-o", os.path.join(root, "probe32"), src], check=True)
    return root


def _fresh() -> str:
    """A path no test made yet (the busybox rootfs is shared by the session)."""
    return "/tmp/" + unique_id("d")


def _nr(name: str) -> str:
    return str(pyseccomp.resolve_syscall(pyseccomp.Arch.NATIVE, name))


def _probe(run_container, config, name: str, *args: int) -> tuple[int, int]:
    res = run_container(config, ["/probe", _nr(name), *map(str, args)], "probe")
    assert res.exit_code == 0, res.stderr
    ret, err = res.stdout.split()
    return int(ret), int(err)


def _errno_on(names, err=errno.ENOSPC, args=()) -> Seccomp:
    return Seccomp("SCMP_ACT_ALLOW", syscalls=[SeccompSyscall(list(names), "SCMP_ACT_ERRNO", err, list(args))])


# -- a profile's own rules ------------------------------------------------------------------------


def test_errno_rule_makes_mkdir_fail_with_that_errno(run_container, busybox_config):
    config = busybox_config(seccomp=_errno_on(["mkdir", "mkdirat"]))
    res = run_container(config, ["/bin/mkdir", _fresh()], "errno")
    assert res.exit_code != 0
    assert os.strerror(errno.ENOSPC) in res.stderr  # "No space left on device": the rule's errno
    # Everything else works: the same container's shell runs, writes and lists.
    ok = run_container(config, ["/bin/sh", "-c", f"echo hi > {_fresh()}.f && echo hi"], "errno-ok")
    assert (ok.exit_code, ok.stdout) == (0, "hi\n"), ok.stderr


def test_without_a_profile_mkdir_works(run_container, busybox_config):
    res = run_container(busybox_config(), ["/bin/mkdir", _fresh()], "nofilter")
    assert res.exit_code == 0, res.stderr


def test_argument_conditions_select_the_call(run_container, busybox_config):
    # Only a chmod to 0700 fails (chmod takes the mode second, fchmodat third).
    config = busybox_config(seccomp=Seccomp("SCMP_ACT_ALLOW", syscalls=[
        SeccompSyscall(["chmod"], "SCMP_ACT_ERRNO", errno.EROFS, [SeccompArg(1, 0o700, 0, "SCMP_CMP_EQ")]),
        SeccompSyscall(["fchmodat"], "SCMP_ACT_ERRNO", errno.EROFS, [SeccompArg(2, 0o700, 0, "SCMP_CMP_EQ")])]))
    path = _fresh()
    script = f"touch {path} && chmod 755 {path} && echo 755 ok && chmod 700 {path}"
    res = run_container(config, ["/bin/sh", "-c", script], "arg")
    assert res.stdout == "755 ok\n", res.stderr
    assert res.exit_code != 0 and os.strerror(errno.EROFS) in res.stderr


def test_masked_eq_on_flags(run_container, busybox_config):
    # open(2) refused when O_CREAT (0o100) is set in its flags, whatever else is set.
    masked = SeccompArg(1, os.O_CREAT, os.O_CREAT, "SCMP_CMP_MASKED_EQ")
    config = busybox_config(seccomp=_errno_on(["open", "openat"], errno.EACCES))
    config.seccomp.syscalls = [SeccompSyscall(["open"], "SCMP_ACT_ERRNO", errno.EACCES, [masked]),
                               SeccompSyscall(["openat"], "SCMP_ACT_ERRNO", errno.EACCES,
                                              [SeccompArg(2, os.O_CREAT, os.O_CREAT, "SCMP_CMP_MASKED_EQ")])]
    create = run_container(config, ["/bin/sh", "-c", f"echo x > {_fresh()}"], "masked-creat")
    assert create.exit_code != 0 and "Permission denied" in create.stderr
    read = run_container(config, ["/bin/cat", "/etc/passwd"], "masked-read")
    assert read.exit_code == 0, read.stderr


def test_kill_process_action(run_container, busybox_config):
    config = busybox_config(seccomp=Seccomp("SCMP_ACT_ALLOW", syscalls=[
        SeccompSyscall(["mkdir", "mkdirat"], "SCMP_ACT_KILL_PROCESS")]))
    res = run_container(config, ["/bin/mkdir", _fresh()], "kill")
    assert res.exit.get("signal") == "SIGSYS" or res.exit_code == 128 + 31, res.exit


def test_exec_gets_the_containers_filter(runtime, busybox_config):
    c = runtime.create(unique_id("exec"), busybox_config(seccomp=_errno_on(["mkdir", "mkdirat"])))
    c.start(Process(["/bin/sleep", "1000"]))
    c.exec()
    code, out = exec_in(c, ["/bin/sh", "-c", f"mkdir {_fresh()} 2>&1"])
    assert code != 0 and os.strerror(errno.ENOSPC) in out
    code, out = exec_in(c, ["/bin/touch", _fresh()])
    assert code == 0, out


def test_filter_is_loaded_without_no_new_privileges(run_container, busybox_config):
    # Loading then needs CAP_SYS_ADMIN: init must do it before it drops its capabilities.
    config = busybox_config(seccomp=_errno_on(["mkdir", "mkdirat"]), no_new_privileges=False)
    res = run_container(config, ["/bin/sh", "-c", "grep -E '^(Seccomp|NoNewPrivs):' /proc/self/status; mkdir " + _fresh()],
                        "nonnp")
    assert "NoNewPrivs:\t0" in res.stdout and "Seccomp:\t2" in res.stdout, res.stdout
    assert os.strerror(errno.ENOSPC) in res.stderr


def test_unknown_syscall_names_are_skipped(run_container, busybox_config):
    config = busybox_config(seccomp=_errno_on(["no_such_syscall", "mkdir", "mkdirat"]))
    res = run_container(config, ["/bin/mkdir", _fresh()], "unknown")
    assert os.strerror(errno.ENOSPC) in res.stderr


@pytest.mark.parametrize("blocked", [["faccessat", "faccessat2"], ["stat", "newfstatat", "statx"]])
def test_a_lookup_the_profile_blocks_names_the_profile(runtime, busybox_config, blocked):
    # Without no_new_privs the filter is loaded before init looks the program up: a profile that
    # refuses the lookup's calls fails create with that errno, not a misleading "permission denied"
    # or "not found".
    from declarative_ct.errors import ContainerError

    config = busybox_config(seccomp=_errno_on(blocked, errno.EPERM), no_new_privileges=False)
    c = runtime.create(unique_id("blocked"), config)
    with pytest.raises(ContainerError, match=re.escape("exec: /bin/true: operation not permitted "
                                                       "(blocked by the seccomp profile?)")):
        c.start(Process(["/bin/true"]))
    assert not os.path.exists(c.state_dir)


# -- the default profile ---------------------------------------------------------------------------


@pytest.fixture
def default_config(probe_rootfs):
    """``default_config(caps)``: the probe rootfs, the default profile resolved for ``caps``."""
    def make(caps=DEFAULT_CAPABILITIES):
        return Config(rootfs=probe_rootfs, hostname="box", seccomp=default_profile(list(caps)),
                      capabilities=Capabilities(*(list(caps),) * 3))
    return make


def test_default_profile_runs_ordinary_commands(run_container, default_config):
    res = run_container(default_config(), ["/bin/sh", "-c",
                                           "d=/tmp/$$$RANDOM; mkdir $d && echo ok > $d/f && cat $d/f && rm -r $d && ls / >/dev/null "
                                           "&& (sleep 0 &) && wait && grep Seccomp: /proc/self/status"], "ordinary")
    assert res.exit_code == 0, res.stderr
    assert res.stdout == "ok\nSeccomp:\t2\n"


@pytest.mark.parametrize("name, args", [("unshare", (0x20000,)),            # CLONE_NEWNS
                                        ("keyctl", (0, 0)),                  # KEYCTL_GET_KEYRING_ID
                                        ("add_key", (0, 0, 0, 0, 0)),
                                        ("mount", (0, 0, 0, 0, 0)),
                                        ("setns", (0, 0)),
                                        ("ptrace", (16, 1)),                 # PTRACE_ATTACH to pid 1
                                        ("personality", (0x0040000,)),       # ADDR_NO_RANDOMIZE
                                        ("clone", (0x20000000 | 17,)),       # CLONE_NEWPID|SIGCHLD
                                        ("socket", (40, 1, 0)),              # AF_VSOCK
                                        ("io_uring_setup", (1, 0)),          # its operations bypass seccomp
                                        # the kernel reads an int: the high half must not hide it
                                        ("socket", (0x100000028, 1, 0))])
def test_default_profile_refuses(run_container, default_config, name, args):
    ret, err = _probe(run_container, default_config(), name, *args)
    assert (ret, err) == (-1, errno.EPERM)


@pytest.mark.skipif(os.uname().machine != "x86_64", reason="the 32-bit x86 ABI")
def test_default_profile_refuses_socketcall_socket(run_container, default_config):
    """AF_VSOCK through the 32-bit ABI's socketcall(SYS_SOCKET): its arguments are in memory, out
    of the filter's reach, so that call is refused (ENOSYS) whatever the family; the direct 32-bit
    socket is checked as the native one, and socketcall's other calls still work."""
    res = run_container(default_config(), ["/probe32", "40"], "sockcall")
    assert res.exit_code == 0, res.stderr
    muxed, direct, paired = map(int, res.stdout.split())
    assert (muxed, direct) == (-errno.ENOSYS, -errno.EPERM), res.stdout  # AF_VSOCK
    assert paired == 0, res.stdout  # socketpair(AF_UNIX) through socketcall
    res = run_container(default_config(), ["/probe32", "2"], "sockcall")  # AF_INET
    muxed, direct, paired = map(int, res.stdout.split())
    assert muxed == -errno.ENOSYS and direct >= 0, res.stdout


def test_default_profile_answers_clone3_with_enosys(run_container, default_config):
    # ENOSYS, not EPERM: the C library falls back to clone, whose flags the filter can check.
    assert _probe(run_container, default_config(), "clone3", 0, 0) == (-1, errno.ENOSYS)


def test_busybox_unshare_is_refused_by_the_default_profile(run_container, default_config):
    res = run_container(default_config(), ["/bin/unshare", "-m", "/bin/true"], "bb-unshare")
    assert res.exit_code != 0 and "Operation not permitted" in res.stderr


def test_cap_sys_admin_unlocks_unshare(run_container, default_config):
    ret, err = _probe(run_container, default_config(DEFAULT_CAPABILITIES + ["CAP_SYS_ADMIN"]), "unshare", 0x20000)
    assert (ret, err) == (0, 0)


def test_exec_in_a_default_profile_container_is_filtered(runtime, default_config):
    c = runtime.create(unique_id("dexec"), default_config())
    c.start(Process(["/bin/sleep", "1000"]))
    c.exec()
    code, out = exec_in(c, ["/probe", _nr("unshare"), str(0x20000)])
    assert (code, out.split()) == (0, ["-1", str(errno.EPERM)])


def test_a_create_compiles_its_filter_once(runtime, default_config, monkeypatch):
    # check (a recreate's), create and start each need the program: the profile is dumped and
    # hashed for its cache key once, not per step.
    import hashlib

    from declarative_ct.runtime import seccomp

    keys = []

    class Counting:
        @staticmethod
        def sha256(data=b""):
            keys.append(len(data))
            return hashlib.sha256(data)

    monkeypatch.setattr(seccomp, "hashlib", Counting)
    config, cid = default_config(), unique_id("once")
    runtime.check(cid, config)
    c = runtime.create(cid, config)
    c.start(Process(["/bin/true"]))
    assert len(keys) == 1, keys
    assert os.path.getsize(os.path.join(c._dir, seccomp.BPF_FILE)) > 0


# -- bad profiles ---------------------------------------------------------------------------------


@pytest.mark.parametrize("profile, field", [
    (Seccomp("SCMP_ACT_FOO"), "seccomp.default_action"),
    (Seccomp("SCMP_ACT_ALLOW", architectures=["SCMP_ARCH_VAX"]), "seccomp.architectures[0]"),
    (Seccomp("SCMP_ACT_ALLOW", syscalls=[SeccompSyscall(["mkdir"], "SCMP_ACT_ERRNO", 1,
                                                        [SeccompArg(7, 0, 0, "SCMP_CMP_EQ")])]),
     "seccomp.syscalls[0].args[0].index"),
    (Seccomp("SCMP_ACT_ALLOW", syscalls=[SeccompSyscall(["mkdir"], "SCMP_ACT_ERRNO", 1,
                                                        [SeccompArg(0, 0, 0, "SCMP_CMP_ALMOST")])]),
     "seccomp.syscalls[0].args[0].op"),
])
def test_bad_profile_is_refused_at_create(runtime, busybox_config, state_root, profile, field):
    cid = unique_id("bad")
    with pytest.raises(ConfigInvalid, match="^" + re.escape(field) + ": "):
        runtime.create(cid, busybox_config(seccomp=profile))
    assert not os.path.exists(os.path.join(state_root, cid))


# -- OCI bundles ------------------------------------------------------------------------------------


def _bundle_run(run_container, tmp_path, busybox_rootfs, edit=None):
    import json

    from declarative_ct.runtime import specconv

    spec = specconv.example_spec()
    spec["root"]["path"] = busybox_rootfs
    spec["process"]["args"] = ["/bin/grep", "Seccomp:", "/proc/self/status"]
    if edit:
        edit(spec)
    (tmp_path / "config.json").write_text(json.dumps(spec))
    config, process = specconv.load_bundle(str(tmp_path))
    return run_container(config, process, "bundle")


def test_dct_spec_bundle_runs_with_the_default_profile(run_container, tmp_path, busybox_rootfs):
    res = _bundle_run(run_container, tmp_path, busybox_rootfs)
    assert (res.exit_code, res.stdout) == (0, "Seccomp:\t2\n"), res.stderr


def test_bundle_without_seccomp_runs_unfiltered(run_container, tmp_path, busybox_rootfs):
    res = _bundle_run(run_container, tmp_path, busybox_rootfs, lambda s: s["linux"].pop("seccomp"))
    assert (res.exit_code, res.stdout) == (0, "Seccomp:\t0\n"), res.stderr


def test_load_flags_are_passed_to_the_kernel(run_container, busybox_config):
    # The kernel refuses a bit it does not know (EINVAL): the container runs filtered only if the
    # flags went through as seccomp(2) bits. (Their effects - audit records, speculative store
    # bypass left alone - are not observable on this machine: no audit, an unmitigated CPU.)
    profile = _errno_on(["mkdir", "mkdirat"])
    profile.flags = ["SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW"]
    res = run_container(busybox_config(seccomp=profile), ["/bin/sh", "-c",
                        "grep '^Seccomp:' /proc/self/status; mkdir " + _fresh()], "flags")
    assert "Seccomp:\t2" in res.stdout and os.strerror(errno.ENOSPC) in res.stderr
