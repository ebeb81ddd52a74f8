"""Seccomp profiles without a container: validation, the compiled program's verdicts, the default profile.

The compiled BPF is run in a small classic-BPF interpreter over ``struct seccomp_data``, so every
comparison operator is checked against the program libseccomp produced, not against our model of it.
"""

from __future__ import annotations

import errno
import json
import os
import struct

import pyseccomp
import pytest

from declarative_ct.configs import DEFAULT_CAPABILITIES, Config
from declarative_ct.configs.seccomp import Seccomp, SeccompArg, SeccompSyscall, from_oci, load_profile
from declarative_ct.errors import ConfigInvalid
from declarative_ct.runtime import seccomp
from declarative_ct.runtime.seccomp_profile import default_profile

AUDIT_ARCH_X86_64, AUDIT_ARCH_I386 = 0xC000003E, 0x40000003
ALLOW, KILL_PROCESS = 0x7FFF0000, 0x80000000


def ERRNO(n: int) -> int:  # noqa: N802 - the kernel's name
    return 0x00050000 | n


def run_bpf(program: bytes, nr: int, args=(0,) * 6, arch: int = AUDIT_ARCH_X86_64) -> int:
    """The verdict of a classic BPF seccomp ``program`` for one syscall (loads, ALU and, jumps, ret)."""
    args = [a & (2**64 - 1) for a in args] + [0] * (6 - len(args))
    data = struct.pack("<iIQ6Q", nr, arch, 0, *args)
    insns = [struct.unpack("<HBBI", program[i:i + 8]) for i in range(0, len(program), 8)]
    acc = x = 0
    pc = 0
    while True:
        code, jt, jf, k = insns[pc]
        cls = code & 0x07
        if cls == 0x00:  # BPF_LD | BPF_W | BPF_ABS
            assert code == 0x20, hex(code)
            acc = struct.unpack_from("<I", data, k)[0]
        elif cls == 0x01:  # BPF_LDX
            x = k if code == 0x01 else x
        elif cls == 0x04:  # BPF_ALU
            op, src = code & 0xF0, (x if code & 0x08 else k)
            acc = {0x50: acc & src, 0x40: acc | src, 0x00: acc + src, 0x10: acc - src}[op] & 0xFFFFFFFF
        elif cls == 0x05:  # BPF_JMP
            op = code & 0xF0
            if op == 0x00:
                pc += k
            else:
                src = x if code & 0x08 else k
                taken = {0x10: acc == src, 0x20: acc > src, 0x30: acc >= src, 0x40: bool(acc & src)}[op]
                pc += jt if taken else jf
        elif cls == 0x06:  # BPF_RET
            return k if code == 0x06 else acc
        else:
            raise AssertionError(f"unexpected BPF instruction {code:#x}")
        pc += 1


def nr(name: str) -> int:
    return pyseccomp.resolve_syscall(pyseccomp.Arch.X86_64, name)


pytestmark = pytest.mark.skipif(os.uname().machine != "x86_64", reason="syscall numbers and arch values are x86_64's")


# -- the comparison operators, as libseccomp compiles them ---------------------------------------------

@pytest.mark.parametrize("op, value, value_two, matching, other", [
    ("SCMP_CMP_EQ", 5, 0, [5], [4, 6, 5 + (1 << 32)]),
    ("SCMP_CMP_NE", 5, 0, [4, 6, 1 << 40], [5]),
    ("SCMP_CMP_LT", 5, 0, [0, 4], [5, 6, 1 << 40]),
    ("SCMP_CMP_LE", 5, 0, [0, 5], [6, 1 << 40]),
    ("SCMP_CMP_GT", 5, 0, [6, 1 << 40], [0, 5]),
    ("SCMP_CMP_GE", 5, 0, [5, 1 << 40], [0, 4]),
    ("SCMP_CMP_MASKED_EQ", 0o300, 0o100, [0o100, 0o107, 0o1100], [0, 0o200, 0o300]),
])
def test_comparison_operators(op, value, value_two, matching, other):
    program = seccomp.compile_filter(Seccomp("SCMP_ACT_ALLOW", syscalls=[
        SeccompSyscall(["mkdir"], "SCMP_ACT_ERRNO", errno.ENOSPC, [SeccompArg(1, value, value_two, op)])]))
    for arg in matching:
        assert run_bpf(program, nr("mkdir"), (0, arg)) == ERRNO(errno.ENOSPC), (op, arg)
    for arg in other:
        assert run_bpf(program, nr("mkdir"), (0, arg)) == ALLOW, (op, arg)
    assert run_bpf(program, nr("rmdir"), (0, matching[0])) == ALLOW


def test_distinct_arguments_are_anded_same_argument_ored():
    both = seccomp.compile_filter(Seccomp("SCMP_ACT_ALLOW", syscalls=[SeccompSyscall(
        ["kill"], "SCMP_ACT_ERRNO", 1, [SeccompArg(0, 1, 0, "SCMP_CMP_EQ"), SeccompArg(1, 9, 0, "SCMP_CMP_EQ")])]))
    assert run_bpf(both, nr("kill"), (1, 9)) == ERRNO(1)
    assert run_bpf(both, nr("kill"), (1, 15)) == ALLOW
    assert run_bpf(both, nr("kill"), (2, 9)) == ALLOW
    either = seccomp.compile_filter(Seccomp("SCMP_ACT_ALLOW", syscalls=[SeccompSyscall(
        ["kill"], "SCMP_ACT_ERRNO", 1, [SeccompArg(1, 9, 0, "SCMP_CMP_EQ"), SeccompArg(1, 19, 0, "SCMP_CMP_EQ")])]))
    assert run_bpf(either, nr("kill"), (1, 9)) == ERRNO(1)
    assert run_bpf(either, nr("kill"), (1, 19)) == ERRNO(1)
    assert run_bpf(either, nr("kill"), (1, 15)) == ALLOW


@pytest.mark.parametrize("action, errno_ret, verdict", [
    ("SCMP_ACT_ERRNO", None, ERRNO(errno.EPERM)),
    ("SCMP_ACT_ERRNO", 0, ERRNO(0)),
    ("SCMP_ACT_TRACE", 7, 0x7FF00007),
    ("SCMP_ACT_KILL", None, 0),
    ("SCMP_ACT_KILL_THREAD", None, 0),
    ("SCMP_ACT_KILL_PROCESS", None, KILL_PROCESS),
    ("SCMP_ACT_TRAP", None, 0x00030000),
    ("SCMP_ACT_LOG", None, 0x7FFC0000),
])
def test_actions(action, errno_ret, verdict):
    program = seccomp.compile_filter(Seccomp("SCMP_ACT_ALLOW", syscalls=[
        SeccompSyscall(["getpid"], action, errno_ret)]))
    assert run_bpf(program, nr("getpid")) == verdict
    assert run_bpf(program, nr("getppid")) == ALLOW


def test_unknown_syscall_names_are_skipped():
    program = seccomp.compile_filter(Seccomp("SCMP_ACT_ALLOW", syscalls=[
        SeccompSyscall(["no_such_syscall", "getpid"], "SCMP_ACT_ERRNO", 1)]))
    assert run_bpf(program, nr("getpid")) == ERRNO(1)


def test_a_rule_with_the_default_action_is_dropped():
    program = seccomp.compile_filter(Seccomp("SCMP_ACT_ERRNO", syscalls=[
        SeccompSyscall(["getpid"], "SCMP_ACT_ERRNO"), SeccompSyscall(["getppid"], "SCMP_ACT_ALLOW")]))
    assert run_bpf(program, nr("getpid")) == ERRNO(errno.EPERM)
    assert run_bpf(program, nr("getppid")) == ALLOW


def test_architectures_other_abis():
    profile = Seccomp("SCMP_ACT_ERRNO", syscalls=[SeccompSyscall(["getpid"], "SCMP_ACT_ALLOW")])
    native_only = seccomp.compile_filter(profile)
    i386_getpid = pyseccomp.resolve_syscall(pyseccomp.Arch.X86, "getpid")
    assert run_bpf(native_only, i386_getpid, arch=AUDIT_ARCH_I386) != ALLOW  # another ABI: the bad-arch action
    profile.architectures = ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"]
    both = seccomp.compile_filter(profile)
    assert run_bpf(both, i386_getpid, arch=AUDIT_ARCH_I386) == ALLOW
    assert run_bpf(both, nr("getpid")) == ALLOW


def test_disk_cache(tmp_path):
    profile = Seccomp("SCMP_ACT_ALLOW", syscalls=[SeccompSyscall(["sync"], "SCMP_ACT_ERRNO", 3)])
    program = seccomp.compile_filter(profile, cache_dir=str(tmp_path))
    files = os.listdir(tmp_path)
    assert len(files) == 1 and (tmp_path / files[0]).read_bytes() == program
    seccomp._compiled.clear()  # a new process: the cache file is read, not recompiled
    (tmp_path / files[0]).write_bytes(program[:-8] + struct.pack("<HBBI", 6, 0, 0, ALLOW))
    assert seccomp.compile_filter(profile, cache_dir=str(tmp_path)).endswith(struct.pack("<HBBI", 6, 0, 0, ALLOW))
    seccomp._compiled.clear()


def test_load_flags():
    profile = Seccomp("SCMP_ACT_ALLOW", flags=["SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW"])
    assert seccomp.load_flags(profile) == 2 | 4
    seccomp.compile_filter(profile)  # the kernel here has both


# -- validation -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("profile, message", [
    (Seccomp("SCMP_ACT_NOPE"), 'seccomp.default_action: unknown action "SCMP_ACT_NOPE"'),
    (Seccomp("SCMP_ACT_ALLOW", default_errno_ret=1), "seccomp.default_errno_ret: only SCMP_ACT_ERRNO"),
    (Seccomp("SCMP_ACT_ERRNO", default_errno_ret=-1), "seccomp.default_errno_ret: -1 must be an integer"),
    (Seccomp("SCMP_ACT_ALLOW", architectures=["x86_64"]), 'seccomp.architectures[0]: unknown architecture "x86_64"'),
    (Seccomp("SCMP_ACT_ALLOW", flags=["SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"]),
     "seccomp.flags[0]: SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV applies to SCMP_ACT_NOTIFY"),
    (Seccomp("SCMP_ACT_ALLOW", syscalls=[SeccompSyscall([], "SCMP_ACT_ERRNO")]), "seccomp.syscalls[0].names"),
    (Seccomp("SCMP_ACT_ALLOW", syscalls=[SeccompSyscall(["mk dir"], "SCMP_ACT_ERRNO")]),
     "seccomp.syscalls[0].names[0]"),
    (Seccomp("SCMP_ACT_ALLOW", syscalls=[SeccompSyscall(["a"], "SCMP_ACT_ERRNO", args=[
        SeccompArg(0, 1, 0, "SCMP_CMP_EQ")] * 7)]), "seccomp.syscalls[0].args: 7 conditions"),
    (Seccomp("SCMP_ACT_ALLOW", syscalls=[SeccompSyscall(["a"], "SCMP_ACT_ERRNO", args=[
        SeccompArg(0, 1, 1 << 64, "SCMP_CMP_MASKED_EQ")])]), "seccomp.syscalls[0].args[0].value_two"),
    (Seccomp("SCMP_ACT_ALLOW", syscalls=[SeccompSyscall(["a"], "SCMP_ACT_TRACE", 70000)]),
     "seccomp.syscalls[0].errno_ret: 70000 must be an integer in [0, 65535]"),
])
def test_validation_names_the_field(profile, message):
    with pytest.raises(ConfigInvalid) as err:
        Config(rootfs="/", seccomp=profile).validate()
    assert str(err.value).startswith(message), str(err.value)


def test_oci_round_trip_and_state_round_trip():
    profile = default_profile(DEFAULT_CAPABILITIES)
    assert from_oci(json.loads(json.dumps(profile.to_oci()))) == profile
    config = Config(rootfs="/", seccomp=profile)
    assert Config.from_dict(json.loads(json.dumps(config.to_dict()))) == config
    assert Config.from_dict(Config(rootfs="/").to_dict()).seccomp is None


def test_oci_single_name_form():
    profile = from_oci({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"name": "mkdir", "action": "SCMP_ACT_LOG"}]})
    assert profile.syscalls[0].names == ["mkdir"]


def test_profile_file_errors(tmp_path):
    path = tmp_path / "p.json"
    path.write_text('{"defaultAction": "SCMP_ACT_ALLOW",\n "syscalls": [1]}')
    with pytest.raises(ConfigInvalid, match=rf"^{path}: syscalls\[0\]: must be an object"):
        load_profile(str(path))
    path.write_text('{"defaultAction": ')
    with pytest.raises(ConfigInvalid, match="invalid JSON at line 1"):
        load_profile(str(path))
    with pytest.raises(ConfigInvalid, match="cannot read"):
        load_profile(str(tmp_path / "missing.json"))


# -- the default profile ---------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def default_program():
    return seccomp.compile_filter(default_profile(DEFAULT_CAPABILITIES, "x86_64"))


@pytest.mark.parametrize("name", ["read", "write", "openat", "execve", "mkdir", "capset", "setresuid", "prctl",
                                  "close_range", "rt_sigaction", "futex", "arch_prctl", "wait4", "socketpair"])
def test_default_allows_ordinary_calls(default_program, name):
    assert run_bpf(default_program, nr(name)) == ALLOW


@pytest.mark.parametrize("name", ["unshare", "setns", "mount", "umount2", "keyctl", "add_key", "request_key",
                                  "kexec_load", "init_module", "bpf", "perf_event_open", "reboot",
                                  "swapon", "open_by_handle_at", "userfaultfd", "clock_settime",
                                  "pivot_root", "acct", "syslog", "vhangup"])
def test_default_refuses_with_eperm(default_program, name):
    assert run_bpf(default_program, nr(name)) == ERRNO(errno.EPERM)


def test_default_clone_without_namespace_flags_only(default_program):
    assert run_bpf(default_program, nr("clone"), (0x01200011,)) == ALLOW  # fork()'s flags
    assert run_bpf(default_program, nr("clone"), (0x20000000 | 17,)) == ERRNO(errno.EPERM)  # CLONE_NEWPID
    assert run_bpf(default_program, nr("clone3")) == ERRNO(errno.ENOSYS)


def test_default_personality_and_socket(default_program):
    assert run_bpf(default_program, nr("personality"), (0xFFFFFFFF,)) == ALLOW
    assert run_bpf(default_program, nr("personality"), (0x0040000,)) == ERRNO(errno.EPERM)
    assert run_bpf(default_program, nr("socket"), (2, 1, 0)) == ALLOW
    assert run_bpf(default_program, nr("socket"), (40, 1, 0)) == ERRNO(errno.EPERM)


@pytest.mark.parametrize("cap, names", [
    ("CAP_SYS_ADMIN", ["unshare", "setns", "mount", "clone3"]),
    ("CAP_SYS_PTRACE", ["ptrace", "kcmp", "process_vm_readv"]),
    ("CAP_SYS_TIME", ["clock_settime", "settimeofday"]),
    ("CAP_SYS_CHROOT", ["chroot"]),
    ("CAP_SYS_MODULE", ["init_module"]),
])
def test_capabilities_unlock_their_calls(cap, names):
    without = seccomp.compile_filter(default_profile([], "x86_64"))
    program = seccomp.compile_filter(default_profile([cap], "x86_64"))
    for name in names:
        assert run_bpf(program, nr(name)) == ALLOW, name
        if name not in ("ptrace", "process_vm_readv"):  # all may since 4.8 (before, tracing skipped the filter)
            assert run_bpf(without, nr(name)) != ALLOW, name
    assert run_bpf(program, nr("keyctl")) == ERRNO(errno.EPERM)  # no capability unlocks the keyring


def test_default_profile_covers_the_32_bit_abis():
    assert default_profile([], "x86_64").architectures == ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"]
    s390 = default_profile([], "s390x")
    clone = next(c for c in s390.syscalls if c.names == ["clone"])
    assert clone.args[0].index == 1  # s390 passes the clone flags second


def test_kernel_probes():
    from declarative_ct.runtime import linux

    assert linux.seccomp_flag_available(2) and linux.seccomp_flag_available(4)  # LOG, SPEC_ALLOW
    assert not linux.seccomp_flag_available(1 << 20)  # no such flag
    assert linux.seccomp_action_available(ALLOW) and linux.seccomp_action_available(KILL_PROCESS)
    assert not linux.seccomp_action_available(0x7FFE0000)  # between LOG and ALLOW: not an action


def test_a_flag_the_kernel_lacks_is_named(monkeypatch):
    monkeypatch.setattr(seccomp, "_flag_available", lambda flag: flag != 4)
    with pytest.raises(ConfigInvalid, match=r"^seccomp\.flags\[1\]: SECCOMP_FILTER_FLAG_SPEC_ALLOW is not supported"):
        seccomp.compile_filter(Seccomp("SCMP_ACT_LOG", flags=["SECCOMP_FILTER_FLAG_LOG",
                                                               "SECCOMP_FILTER_FLAG_SPEC_ALLOW"]))
