"""Seccomp profiles without a container: validation, the compiled program's verdicts, the default profile.

Every verdict is the kernel's: a forked child loads the compiled program with ``seccomp(2)``
(``linux.seccomp_set_mode_filter``, after PR_SET_NO_NEW_PRIVS) and makes the syscall through
``libc.syscall``; it reports the return value and errno through a pipe, or dies of the filter's
signal. So every comparison operator is checked against the program libseccomp produced, run by
the kernel that will run it in a container. Calls run for real when a filter lets them through:
their arguments are chosen so that they fail harmlessly (NULL pointers, bad fds, invalid flags).
"""

from __future__ import annotations

import ctypes
import errno
import json
import mmap
import hashlib
import os
import signal
import struct

import pyseccomp
import pytest

from declarative_ct.configs import DEFAULT_CAPABILITIES, Config
from declarative_ct.configs.seccomp import Seccomp, SeccompArg, SeccompSyscall, from_oci, read_profile
from declarative_ct.errors import ConfigInvalid
from declarative_ct.runtime import linux, seccomp
from declarative_ct.runtime.seccomp_profile import default_profile

ALLOW, KILL_PROCESS = 0x7FFF0000, 0x80000000
TRAPPED = 77  # the child's exit status when its SIGSYS handler ran (SCMP_ACT_TRAP)

_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long

# What the child needs after its filter is loaded, allowed in profiles whose default refuses.
REPORTING = SeccompSyscall(["write", "exit_group", "exit", "brk", "mmap", "munmap", "rt_sigprocmask",
                            "rt_sigreturn"], "SCMP_ACT_ALLOW")


def nr(name: str) -> int:
    return pyseccomp.resolve_syscall(pyseccomp.Arch.NATIVE, name)


_I386_SOCKET = 359  # libseccomp resolves the 32-bit "socket" to its socketcall pseudo-number


def _i386_syscall(name: str, args=()) -> int:
    """Syscall ``name`` through the 32-bit ABI (``int $0x80``) with up to three 32-bit ``args``:
    machine code in an executable page. Returns eax (``-errno`` on failure)."""
    a = [*args, 0, 0, 0][:3]
    code = (b"\x53"  # push rbx (callee-saved)
            + b"\xb8" + struct.pack("<I", _I386_SOCKET if name == "socket" else
                                     pyseccomp.resolve_syscall(pyseccomp.Arch.X86, name))  # mov eax, nr
            + b"\xbb" + struct.pack("<I", a[0] & 0xFFFFFFFF)  # mov ebx, a0
            + b"\xb9" + struct.pack("<I", a[1] & 0xFFFFFFFF)  # mov ecx, a1
            + b"\xba" + struct.pack("<I", a[2] & 0xFFFFFFFF)  # mov edx, a2
            + b"\xcd\x80\x5b\xc3")  # int 0x80; pop rbx; ret
    page = mmap.mmap(-1, mmap.PAGESIZE, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
    page.write(code)
    func = ctypes.CFUNCTYPE(ctypes.c_int)(ctypes.addressof(ctypes.c_char.from_buffer(page)))
    return func()


def verdict(program: bytes | None, name: str, args=(), flags: int = 0, i386: bool = False) -> tuple:
    """What the kernel does with syscall ``name`` (``args``) in a process under ``program`` (None:
    no filter): ``("ret", value)``, ``("errno", n)``, ``("signal", signo)`` when it was killed, or
    ``("trapped",)`` when SIGSYS was delivered to its handler."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        status = 1
        try:
            os.close(read_end)
            os.setsid()  # no controlling terminal: a call let through cannot touch pytest's
            linux.prctl(linux.PR_SET_DUMPABLE, 0)  # a SIGSYS death leaves no core
            signal.signal(signal.SIGSYS, lambda *_: os._exit(TRAPPED))
            number = nr(name)
            argv = [ctypes.c_long(a) for a in args]
            result = (ctypes.c_long * 2)()
            linux.prctl(linux.PR_SET_NO_NEW_PRIVS, 1)
            if program is not None:
                linux.seccomp_set_mode_filter(program, flags)
            if i386:
                ret = _i386_syscall(name, args)
                result[0], result[1] = (-1, -ret) if -4096 < ret < 0 else (ret, 0)
            else:
                ret = _libc.syscall(number, *argv)
                result[0], result[1] = ret, ctypes.get_errno() if ret == -1 else 0
            _libc.write(write_end, result, ctypes.sizeof(result))
            status = 0
        finally:
            os._exit(status)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        data = pipe.read()
    _, status = os.waitpid(pid, 0)
    if os.WIFSIGNALED(status):
        return ("signal", os.WTERMSIG(status))
    code = os.WEXITSTATUS(status)
    if code == TRAPPED:
        return ("trapped",)
    assert code == 0 and len(data) == 16, f"the child failed (status {code})"
    ret, err = struct.unpack("<qq", data)
    return ("errno", err) if ret == -1 else ("ret", ret)


def refused(n: int = errno.EPERM) -> tuple:
    return ("errno", n)


pytestmark = pytest.mark.skipif(os.uname().machine != "x86_64", reason="machine code and ABIs are x86_64's")


# -- the comparison operators, as libseccomp compiles them and the kernel runs them ---------------------
# getppid ignores its arguments, but the filter sees them: it runs with any values.

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
        SeccompSyscall(["getppid"], "SCMP_ACT_ERRNO", errno.ENOSPC, [SeccompArg(1, value, value_two, op)])]))
    me = ("ret", os.getpid())
    for arg in matching:
        assert verdict(program, "getppid", (0, arg)) == refused(errno.ENOSPC), (op, arg)
    for arg in other:
        assert verdict(program, "getppid", (0, arg)) == me, (op, arg)
    assert verdict(program, "getpid", (0, matching[0]))[0] == "ret"


def test_distinct_arguments_are_anded_same_argument_ored():
    me = ("ret", os.getpid())
    both = seccomp.compile_filter(Seccomp("SCMP_ACT_ALLOW", syscalls=[SeccompSyscall(
        ["getppid"], "SCMP_ACT_ERRNO", 1, [SeccompArg(0, 1, 0, "SCMP_CMP_EQ"), SeccompArg(1, 9, 0, "SCMP_CMP_EQ")])]))
    assert verdict(both, "getppid", (1, 9)) == refused(1)
    assert verdict(both, "getppid", (1, 15)) == me
    assert verdict(both, "getppid", (2, 9)) == me
    either = seccomp.compile_filter(Seccomp("SCMP_ACT_ALLOW", syscalls=[SeccompSyscall(
        ["getppid"], "SCMP_ACT_ERRNO", 1, [SeccompArg(1, 9, 0, "SCMP_CMP_EQ"), SeccompArg(1, 19, 0, "SCMP_CMP_EQ")])]))
    assert verdict(either, "getppid", (1, 9)) == refused(1)
    assert verdict(either, "getppid", (1, 19)) == refused(1)
    assert verdict(either, "getppid", (1, 15)) == me


@pytest.mark.parametrize("action, errno_ret, outcome", [
    ("SCMP_ACT_ERRNO", None, refused(errno.EPERM)),
    ("SCMP_ACT_ERRNO", 0, ("ret", 0)),  # errno 0: the call "succeeds" with 0, unexecuted
    ("SCMP_ACT_TRACE", 7, refused(errno.ENOSYS)),  # no tracer: ENOSYS (the 7 is for a tracer only)
    ("SCMP_ACT_KILL", None, ("signal", signal.SIGSYS)),
    ("SCMP_ACT_KILL_THREAD", None, ("signal", signal.SIGSYS)),  # the only thread: the process dies
    ("SCMP_ACT_KILL_PROCESS", None, ("signal", signal.SIGSYS)),
    ("SCMP_ACT_TRAP", None, ("trapped",)),
    ("SCMP_ACT_LOG", None, ("ret", os.getpid())),  # allowed, and logged
])
def test_actions(action, errno_ret, outcome):
    program = seccomp.compile_filter(Seccomp("SCMP_ACT_ALLOW", syscalls=[
        SeccompSyscall(["getppid"], action, errno_ret)]))
    assert verdict(program, "getppid") == outcome
    assert verdict(program, "getpid")[0] == "ret"


def test_unknown_syscall_names_are_skipped():
    program = seccomp.compile_filter(Seccomp("SCMP_ACT_ALLOW", syscalls=[
        SeccompSyscall(["no_such_syscall", "getppid"], "SCMP_ACT_ERRNO", 1)]))
    assert verdict(program, "getppid") == refused(1)


def test_a_rule_with_the_default_action_is_dropped():
    program = seccomp.compile_filter(Seccomp("SCMP_ACT_ERRNO", syscalls=[
        SeccompSyscall(["getpid"], "SCMP_ACT_ERRNO"), SeccompSyscall(["getppid"], "SCMP_ACT_ALLOW"), REPORTING]))
    assert verdict(program, "getpid") == refused(errno.EPERM)
    assert verdict(program, "getppid") == ("ret", os.getpid())


def test_architectures_other_abis():
    # The 32-bit ABI through int $0x80 (this kernel has IA32 emulation; x32 it has not, so x32 is
    # not exercised). A syscall through an ABI the filter does not list gets the bad-arch action.
    if verdict(None, "getpid", i386=True)[0] != "ret":
        pytest.skip("this kernel cannot run the 32-bit x86 ABI")
    profile = Seccomp("SCMP_ACT_ERRNO", syscalls=[SeccompSyscall(["getpid"], "SCMP_ACT_ALLOW"), REPORTING])
    native_only = seccomp.compile_filter(profile)
    assert verdict(native_only, "getpid", i386=True) == ("signal", signal.SIGSYS)
    assert verdict(native_only, "getpid")[0] == "ret"
    profile.architectures = ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"]
    both = seccomp.compile_filter(profile)
    assert verdict(both, "getpid", i386=True)[0] == "ret"
    assert verdict(both, "getpid")[0] == "ret"


def test_disk_cache(tmp_path):
    def profile():  # a new object each time: a program is kept per object too
        return Seccomp("SCMP_ACT_ALLOW", syscalls=[SeccompSyscall(["sync"], "SCMP_ACT_ERRNO", 3)])

    program = seccomp.compile_filter(profile(), cache_dir=str(tmp_path))
    files = os.listdir(tmp_path)
    cache = tmp_path / files[0]
    assert len(files) == 1 and cache.read_bytes() == program + hashlib.sha256(program).digest()
    seccomp._compiled.clear()  # a new process: the cache file is read, not recompiled
    other = program[:-8] + struct.pack("<HBBI", 6, 0, 0, ALLOW)
    cache.write_bytes(other + hashlib.sha256(other).digest())
    assert seccomp.compile_filter(profile(), cache_dir=str(tmp_path)) == other
    # Regression: a file cut short (or damaged) was loaded as it was, and every create failed with EINVAL.
    for damaged in (cache.read_bytes()[:16], b"", other + bytes(32)):
        seccomp._compiled.clear()
        cache.write_bytes(damaged)
        assert seccomp.compile_filter(profile(), cache_dir=str(tmp_path)) == program
    seccomp._compiled.clear()


def test_a_program_is_kept_until_a_field_is_assigned():
    profile = Seccomp("SCMP_ACT_ALLOW", syscalls=[SeccompSyscall(["getppid"], "SCMP_ACT_ERRNO", 3)])
    program = seccomp.compile_filter(profile)
    assert seccomp.compile_filter(profile) is program
    profile.syscalls = [SeccompSyscall(["getppid"], "SCMP_ACT_ERRNO", 4)]
    assert verdict(seccomp.compile_filter(profile), "getppid") == refused(4)


def test_load_flags():
    profile = Seccomp("SCMP_ACT_ALLOW", flags=["SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW"],
                      syscalls=[SeccompSyscall(["getppid"], "SCMP_ACT_ERRNO", 5)])
    assert seccomp.load_flags(profile) == 2 | 4
    program = seccomp.compile_filter(profile)  # the kernel here has both
    assert verdict(program, "getppid", flags=seccomp.load_flags(profile)) == refused(5)


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
        read_profile(str(path))
    path.write_text('{"defaultAction": ')
    with pytest.raises(ConfigInvalid, match="invalid JSON at line 1"):
        read_profile(str(path))
    with pytest.raises(ConfigInvalid, match="cannot read"):
        read_profile(str(tmp_path / "missing.json"))




# -- the default profile ---------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def default_program():
    return seccomp.compile_filter(default_profile(DEFAULT_CAPABILITIES, "x86_64"))


BAD = 0xFFFFFFFF  # an invalid flag word, fd or id: a call let through fails harmlessly


@pytest.mark.parametrize("name, args", [
    ("read", (BAD, 0, 0)), ("write", (BAD, 0, 0)), ("openat", (BAD, 0, 0)), ("execve", (0, 0, 0)),
    ("mkdir", (0, 0)), ("capset", (0, 0)), ("setresuid", (BAD, BAD, BAD)), ("prctl", (BAD,)),
    ("close_range", (BAD, 0, 0)), ("rt_sigaction", (BAD, 0, 0, 8)), ("futex", (0, BAD)), ("arch_prctl", (BAD, 0)),
    ("wait4", (BAD, 0, 0, 0)), ("socketpair", (BAD, 0, 0, 0))])
def test_default_allows_ordinary_calls(default_program, name, args):
    assert verdict(default_program, name, args) == verdict(None, name, args)  # the kernel's own answer


# Each with arguments that make it fail even if it were let through (NULL pointers, bad fds, flags).
@pytest.mark.parametrize("name, args", [
    ("unshare", (0,)), ("setns", (BAD, 0)), ("mount", (0, 0, 0, 0, 0)), ("umount2", (0, 0)), ("keyctl", (BAD,)),
    ("add_key", (0, 0, 0, 0, 0)), ("request_key", (0, 0, 0, 0)), ("kexec_load", (0, 0, 0, BAD)),
    ("init_module", (0, 0, 0)), ("bpf", (BAD, 0, 0)), ("perf_event_open", (0, 0, 0, 0, 0)), ("reboot", (0, 0, 0, 0)),
    ("swapon", (0, 0)), ("open_by_handle_at", (BAD, 0, 0)), ("userfaultfd", (BAD,)), ("clock_settime", (BAD, 0)),
    ("pivot_root", (0, 0)), ("acct", (1,)), ("syslog", (BAD, 0, 0)), ("vhangup", ()),
    ("io_uring_setup", (1, 0)), ("io_uring_enter", (BAD, 0, 0, 0, 0, 0)), ("io_uring_register", (BAD, 0, 0, 0))])
def test_default_refuses_with_eperm(default_program, name, args):
    assert verdict(default_program, name, args) == refused(errno.EPERM)


def test_default_clone_without_namespace_flags_only(default_program):
    # CLONE_THREAD without CLONE_SIGHAND: a clone let through fails (EINVAL), no process is made.
    thread = 0x00010000
    assert verdict(default_program, "clone", (thread, 0)) == refused(errno.EINVAL)  # the kernel's no
    assert verdict(default_program, "clone", (0x20000000 | thread,)) == refused(errno.EPERM)  # CLONE_NEWPID
    assert verdict(default_program, "clone3", (0, 0)) == refused(errno.ENOSYS)


def test_default_personality_and_socket(default_program):
    assert verdict(default_program, "personality", (0xFFFFFFFF,))[0] == "ret"  # a query
    assert verdict(default_program, "personality", (0x0040000,)) == refused(errno.EPERM)
    assert verdict(default_program, "socket", (BAD, 1, 0)) == refused(errno.EAFNOSUPPORT)  # the kernel's no
    assert verdict(default_program, "socket", (40, 1, 0)) == refused(errno.EPERM)  # AF_VSOCK: the filter's


def test_default_refuses_socketcall_socket(default_program):
    """The 32-bit ABI's socketcall(SYS_SOCKET, args): its arguments are in memory, where the filter
    cannot see AF_VSOCK. Refused (ENOSYS) whatever they are; its other calls, and the direct
    32-bit socket, are filtered as on the native ABI. (NULL args: a call let through faults.)"""
    if verdict(None, "getpid", i386=True)[0] != "ret":
        pytest.skip("this kernel cannot run the 32-bit x86 ABI")
    assert verdict(None, "socketcall", (1, 0), i386=True) == refused(errno.EFAULT)  # the kernel's no
    assert verdict(default_program, "socketcall", (1, 0), i386=True) == refused(errno.ENOSYS)
    for call in (2, 3, 8, 9):  # bind, connect, socketpair, send
        assert verdict(default_program, "socketcall", (call, 0), i386=True) == refused(errno.EFAULT), call
    assert verdict(default_program, "socket", (40, 1, 0), i386=True) == refused(errno.EPERM)
    assert verdict(default_program, "socket", (BAD, 1, 0), i386=True) == refused(errno.EAFNOSUPPORT)


@pytest.mark.parametrize("cap, calls", [
    ("CAP_SYS_ADMIN", [("unshare", (0,)), ("setns", (BAD, 0)), ("mount", (0, 0, 0, 0, 0)), ("clone3", (0, 0))]),
    ("CAP_SYS_PTRACE", [("ptrace", (BAD, 0)), ("kcmp", (0, 0, BAD, 0, 0)), ("process_vm_readv", (0, 0, 0, 0, 0, 0))]),
    ("CAP_SYS_TIME", [("clock_settime", (BAD, 0)), ("settimeofday", (0, 0))]),
    ("CAP_SYS_CHROOT", [("chroot", (0,))]),
    ("CAP_SYS_MODULE", [("init_module", (0, 0, 0))]),
])
def test_capabilities_unlock_their_calls(cap, calls):
    without = seccomp.compile_filter(default_profile([], "x86_64"))
    program = seccomp.compile_filter(default_profile([cap], "x86_64"))
    for name, args in calls:
        kernel = verdict(None, name, args)
        assert verdict(program, name, args) == kernel, name
        if name not in ("ptrace", "process_vm_readv"):  # all may since 4.8 (before, tracing skipped the filter)
            assert verdict(without, name, args) != kernel, name
    assert verdict(program, "keyctl", (BAD,)) == refused(errno.EPERM)  # no capability unlocks the keyring


def test_default_profile_covers_the_32_bit_abis():
    assert default_profile([], "x86_64").architectures == ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"]
    s390 = default_profile([], "s390x")
    clone = next(c for c in s390.syscalls if c.names == ["clone"])
    assert clone.args[0].index == 1  # s390 passes the clone flags second
    if verdict(None, "getpid", i386=True)[0] != "ret":
        pytest.skip("this kernel cannot run the 32-bit x86 ABI")
    program = seccomp.compile_filter(default_profile(DEFAULT_CAPABILITIES, "x86_64"))
    assert verdict(program, "getpid", i386=True)[0] == "ret"  # the 32-bit ABI is filtered, not killed


def test_kernel_probes():
    assert linux.seccomp_flag_available(2) and linux.seccomp_flag_available(4)  # LOG, SPEC_ALLOW
    assert not linux.seccomp_flag_available(1 << 20)  # no such flag
    assert linux.seccomp_action_available(ALLOW) and linux.seccomp_action_available(KILL_PROCESS)
    assert not linux.seccomp_action_available(0x7FFE0000)  # between LOG and ALLOW: not an action


def test_a_flag_the_kernel_lacks_is_named(monkeypatch):
    monkeypatch.setattr(seccomp, "_flag_available", lambda flag: flag != 4)
    with pytest.raises(ConfigInvalid, match=r"^seccomp\.flags\[1\]: SECCOMP_FILTER_FLAG_SPEC_ALLOW is not supported"):
        seccomp.compile_filter(Seccomp("SCMP_ACT_LOG", flags=["SECCOMP_FILTER_FLAG_LOG",
                                                               "SECCOMP_FILTER_FLAG_SPEC_ALLOW"]))
