"""``linux.seccomp`` → a classic BPF program, compiled on the host side with libseccomp.

runc builds the filter with libseccomp in the container's init; we compile it here, before anything
forks (:func:`compile_filter`: libseccomp's ``seccomp_export_bpf``), and init installs the raw program
with one ``seccomp(2)`` call (``linux.seccomp_set_mode_filter``), so the init stays stdlib-only and
every exec of a container loads the bytes its create compiled (``seccomp.bpf`` in the state dir).

The binding is ``pyseccomp`` (PyPI): ctypes over the system's ``libseccomp.so.2`` with the API of
libseccomp's own Python module. Debian's ``python3-seccomp`` is that official module, but compiled
for Debian's python3 and installed outside any venv: a pip install cannot bring it, and it ties the
project to one CPython ABI. Both drive the same C library; we use a small part of it (init, arch_add,
rule_add, export_bpf) and resolve names and flags ourselves.

Semantics follow runc's ``libcontainer/seccomp``: a syscall name unknown on this architecture is
skipped; a rule whose action is the default action is dropped (libseccomp refuses it); conditions
on distinct arguments are ANDed in one rule, several on the same argument become one rule each
(any matches); ERRNO and TRACE default to EPERM.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import hashlib
import json
import os

from ..configs.seccomp import FLAGS, OPERATORS, Seccomp
from ..errors import ConfigInvalid
from . import linux, store

CACHE_DIR = "#seccomp"
"""Compiled programs in a state root, by profile digest (``#``: the manager's, never a container's id)."""

BPF_FILE = "seccomp.bpf"
"""The compiled filter of a container, beside its state.json: what its init and every exec load."""

# SECCOMP_RET_* (<linux/seccomp.h>): the action in the high 16 bits, data (errno, trace message) low.
_RET = {"SCMP_ACT_KILL": 0x00000000, "SCMP_ACT_KILL_THREAD": 0x00000000, "SCMP_ACT_KILL_PROCESS": 0x80000000,
        "SCMP_ACT_TRAP": 0x00030000, "SCMP_ACT_ERRNO": 0x00050000, "SCMP_ACT_TRACE": 0x7FF00000,
        "SCMP_ACT_LOG": 0x7FFC0000, "SCMP_ACT_ALLOW": 0x7FFF0000}
_SCMP_CMP = {name: number for number, name in enumerate(OPERATORS, start=1)}  # enum scmp_compare order
_NR_SCMP_ERROR = -1  # seccomp_syscall_resolve_name: no such syscall here

_FORMAT = 1  # part of the cache key: bump when the compiled form changes
_compiled: dict[str, bytes] = {}  # profile digest -> program (apply of many containers compiles once)


def action_value(action: str, errno_ret: int | None) -> int:
    """The ``SECCOMP_RET_*`` value of an OCI action; ERRNO and TRACE carry ``errno_ret`` (EPERM when None)."""
    value = _RET[action]
    if action in ("SCMP_ACT_ERRNO", "SCMP_ACT_TRACE"):
        value |= errno.EPERM if errno_ret is None else errno_ret
    return value


def load_flags(seccomp: Seccomp) -> int:
    """The ``seccomp(2)`` flag bits of ``seccomp.flags``."""
    bits = 0
    for name in seccomp.flags:
        bits |= FLAGS[name]
    return bits


def compile_filter(seccomp: Seccomp, where: str = "seccomp", cache_dir: str | None = None) -> bytes:
    """The BPF program (``struct sock_filter`` array) for ``seccomp``, checked against this kernel.

    Compiled once per process for equal profiles, and once per ``cache_dir`` when given (the
    state root's ``#seccomp``: loading libseccomp and compiling the default profile costs ~40 ms, a
    cached program is one read). The program is kept in the object's :meth:`Seccomp.memo`, so
    that a create's check, create and start compile it once (the key is a JSON dump and sha256
    of the whole profile, ~0.7 ms for the default one). ``where`` prefixes field names in errors.

    Raises:
        ConfigInvalid: naming the field: an action or flag this kernel lacks, a rule libseccomp
            refuses (two rules for one syscall that conflict…), or an architecture it does not know.
    """
    memo = seccomp.memo()
    program = memo.get("program")
    if program is not None:
        return program
    # Plain dataclasses of JSON types: the C encoder walks them much faster than asdict.
    text = json.dumps([_FORMAT, os.uname().machine, seccomp], default=vars, sort_keys=True)
    key = hashlib.sha256(text.encode()).hexdigest()
    program = _compiled.get(key)
    if program is not None:
        memo["program"] = program
        return program
    seccomp.validate(where)
    _check_kernel(seccomp, where)
    cached = os.path.join(cache_dir, key + ".bpf") if cache_dir else None
    program = _read_cached(cached) if cached else None
    if program is None:
        program = _compile(seccomp, where)
        if cached:
            with contextlib.suppress(OSError):  # a cache: a full disk costs a compile next time, no more
                os.makedirs(cache_dir, mode=0o700, exist_ok=True)
                store.write_atomic(cached, program + hashlib.sha256(program).digest())
    _compiled[key] = memo["program"] = program
    return program


def _read_cached(path: str) -> bytes | None:
    """The program in a cache file (the program, then its sha256), or None when the file is
    missing, cut short or damaged: a bad program would fail every create with EINVAL at load."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError:
        return None
    program, digest = data[:-32], data[-32:]
    if not program or len(program) % 8 or hashlib.sha256(program).digest() != digest:
        return None
    return program


def _check_kernel(seccomp: Seccomp, where: str) -> None:
    for i, name in enumerate(seccomp.flags):
        if not _flag_available(FLAGS[name]):
            raise ConfigInvalid(f"{where}.flags[{i}]: {name} is not supported by this kernel")
    used = [(f"{where}.default_action", seccomp.default_action)]
    used += [(f"{where}.syscalls[{i}].action", call.action) for i, call in enumerate(seccomp.syscalls)]
    for field, action in used:
        if not _action_available(_RET[action]):
            raise ConfigInvalid(f"{field}: {action} is not supported by this kernel")


@functools.cache
def _flag_available(flag: int) -> bool:
    return linux.seccomp_flag_available(flag)


@functools.cache
def _action_available(action: int) -> bool:
    return linux.seccomp_action_available(action)


def _compile(seccomp: Seccomp, where: str) -> bytes:
    import pyseccomp as scmp  # the host side only: never imported by the container init

    default = action_value(seccomp.default_action, seccomp.default_errno_ret)
    filt = scmp.SyscallFilter(default)
    # no_new_privs is init's business (process.noNewPrivileges); the exported program does not carry it.
    filt.set_attr(scmp.Attr.CTL_NNP, 0)
    for i, arch in enumerate(seccomp.architectures):
        number = getattr(scmp.Arch, arch.removeprefix("SCMP_ARCH_"), None)
        if number is None:
            raise ConfigInvalid(f"{where}.architectures[{i}]: {arch} is not known to this libseccomp")
        try:
            filt.add_arch(number)
        except OSError as err:
            if err.errno != errno.EEXIST:  # the native one is there from the start
                raise ConfigInvalid(f"{where}.architectures[{i}]: libseccomp refused {arch}: "
                                    f"{os.strerror(err.errno)}") from None
    for i, call in enumerate(seccomp.syscalls):
        action = action_value(call.action, call.errno_ret)
        if action == default:
            continue  # libseccomp refuses a rule that changes nothing; runc skips it too
        by_index: dict[int, int] = {}
        for arg in call.args:
            by_index[arg.index] = by_index.get(arg.index, 0) + 1
        conditions = [scmp.Arg(a.index, _SCMP_CMP[a.op], a.value, a.value_two) for a in call.args]
        # One rule ANDs distinct arguments; conditions on one argument twice become a rule each (OR).
        groups = [conditions] if all(n == 1 for n in by_index.values()) else [[c] for c in conditions]
        for name in call.names:
            number = scmp.resolve_syscall(scmp.Arch.NATIVE, name)
            if number == _NR_SCMP_ERROR:
                continue  # unknown on this architecture (or to this libseccomp): skipped, as runc does
            for group in groups:
                try:
                    filt.add_rule(action, number, *group)
                except OSError as err:
                    raise ConfigInvalid(f"{where}.syscalls[{i}]: libseccomp refused the rule for {name}: "
                                        f"{os.strerror(err.errno)}") from None
    fd = os.memfd_create("seccomp-bpf", os.MFD_CLOEXEC)
    try:
        with os.fdopen(os.dup(fd), "rb", buffering=0) as out:
            filt.export_bpf(out)
        return os.pread(fd, os.fstat(fd).st_size, 0)
    finally:
        os.close(fd)


def save(state_dir: str, program: bytes) -> None:
    """Write the compiled ``program`` beside the container's state.json (what exec loads)."""
    store.write_atomic(os.path.join(state_dir, BPF_FILE), program)


def saved(state_dir: str, seccomp: Seccomp) -> bytes:
    """The program the container's create compiled (:func:`save`); compiled anew when it is missing."""
    try:
        with open(os.path.join(state_dir, BPF_FILE), "rb") as f:
            return f.read()
    except FileNotFoundError:
        return compile_filter(seccomp)
