"""libcontainer's ``configs.Seccomp``: a syscall filter as the runtime-spec's ``linux.seccomp`` gives it.

Actions, architectures, flags and comparison operators keep their OCI names (``SCMP_ACT_ERRNO``,
``SCMP_ARCH_X86_64``, ``SECCOMP_FILTER_FLAG_LOG``, ``SCMP_CMP_MASKED_EQ``). :func:`from_oci` reads an
OCI ``linux.seccomp`` object (or a seccomp profile file of the same shape) and checks it, naming the
field of a bad value (``linux.seccomp.syscalls[3].action: unknown action "SCMP_ACT_FOO"``).
Stdlib only: the container init imports the configs package (it never compiles a filter itself,
``runtime.seccomp`` does that on the host side).
"""

from __future__ import annotations

import os
import weakref
from dataclasses import dataclass, field

from ..errors import ConfigInvalid

ACTIONS = ("SCMP_ACT_KILL", "SCMP_ACT_KILL_PROCESS", "SCMP_ACT_KILL_THREAD", "SCMP_ACT_TRAP", "SCMP_ACT_ERRNO",
           "SCMP_ACT_TRACE", "SCMP_ACT_ALLOW", "SCMP_ACT_LOG")
"""The actions we implement (``SCMP_ACT_NOTIFY`` needs a listener process, which we do not have)."""

ARCHITECTURES = ("SCMP_ARCH_X86", "SCMP_ARCH_X86_64", "SCMP_ARCH_X32", "SCMP_ARCH_ARM", "SCMP_ARCH_AARCH64",
                 "SCMP_ARCH_MIPS", "SCMP_ARCH_MIPS64", "SCMP_ARCH_MIPS64N32", "SCMP_ARCH_MIPSEL",
                 "SCMP_ARCH_MIPSEL64", "SCMP_ARCH_MIPSEL64N32", "SCMP_ARCH_PPC", "SCMP_ARCH_PPC64",
                 "SCMP_ARCH_PPC64LE", "SCMP_ARCH_S390", "SCMP_ARCH_S390X", "SCMP_ARCH_PARISC",
                 "SCMP_ARCH_PARISC64", "SCMP_ARCH_RISCV64")
"""The runtime-spec's architecture names that libseccomp 2.5 knows."""

FLAGS = {"SECCOMP_FILTER_FLAG_TSYNC": 1, "SECCOMP_FILTER_FLAG_LOG": 2, "SECCOMP_FILTER_FLAG_SPEC_ALLOW": 4}
"""``seccomp(2)`` load flags we pass on, with their bits (``<linux/seccomp.h>``)."""

OPERATORS = ("SCMP_CMP_NE", "SCMP_CMP_LT", "SCMP_CMP_LE", "SCMP_CMP_EQ", "SCMP_CMP_GE", "SCMP_CMP_GT",
             "SCMP_CMP_MASKED_EQ")

MAX_ERRNO = 4095  # the kernel clamps a larger SECCOMP_RET_ERRNO value to this
_MAX_TRACE_DATA = 0xFFFF  # SECCOMP_RET_DATA: the message a tracer gets with PTRACE_EVENT_SECCOMP
_MAX_U64 = (1 << 64) - 1
_MAX_ARGS = 6  # a syscall has at most six arguments


@dataclass
class SeccompArg:
    """``configs.Arg``: compare syscall argument ``index`` (0-5) with ``value`` by ``op``.

    ``SCMP_CMP_MASKED_EQ`` tests ``(arg & value) == value_two``; the other operators ignore ``value_two``.
    """

    index: int
    value: int
    value_two: int = 0
    op: str = "SCMP_CMP_EQ"


@dataclass
class SeccompSyscall:
    """``configs.Syscall`` for several names: ``action`` when every one of ``args`` matches.

    ``errno_ret`` is the errno of ``SCMP_ACT_ERRNO`` (EPERM when None) or the message of
    ``SCMP_ACT_TRACE``. Two args on the same index match when either does (runc's rule, as
    libseccomp cannot test one argument twice in a rule).
    """

    names: list[str]
    action: str
    errno_ret: int | None = None
    args: list[SeccompArg] = field(default_factory=list)


@dataclass
class Seccomp:
    """``configs.Seccomp`` (OCI ``linux.seccomp``): ``default_action`` for every syscall no rule matches.

    ``architectures`` are added to the native one (a syscall made through another ABI is killed);
    ``flags`` are ``seccomp(2)`` load flags (:data:`FLAGS`). Syscall names the architecture does not
    know are skipped when the filter is compiled, as runc does.
    """

    default_action: str
    default_errno_ret: int | None = None
    architectures: list[str] = field(default_factory=list)
    flags: list[str] = field(default_factory=list)
    syscalls: list[SeccompSyscall] = field(default_factory=list)

    def __setattr__(self, name: str, value: object) -> None:
        object.__setattr__(self, name, value)
        _memos.pop(id(self), None)  # a field assigned: checked and compiled anew

    def memo(self) -> dict:
        """What is derived from this object and costs to redo (``validate`` passed, the compiled
        program): kept while it is the same object and no field of it is assigned. Content changed
        in place (a rule appended to ``syscalls``) is not noticed: assign the field, or build anew."""
        key = id(self)
        entry = _memos.get(key)
        if entry is None or entry[0]() is not self:
            entry = (weakref.ref(self, lambda ref: _memos.pop(key) if _memos.get(key, (None,))[0] is ref else None),
                     {})
            _memos[key] = entry
        return entry[1]

    @classmethod
    def from_dict(cls, raw: dict) -> "Seccomp":
        """Rebuild what ``Config.to_dict`` saved. Raises TypeError/KeyError on a malformed object."""
        raw = dict(raw)
        raw["syscalls"] = [SeccompSyscall(**{**s, "args": [SeccompArg(**a) for a in s.get("args", [])]})
                           for s in raw.get("syscalls", [])]
        return cls(**raw)

    def to_oci(self) -> dict[str, object]:
        """The OCI ``linux.seccomp`` object (camelCase keys; empty fields left out)."""
        out: dict[str, object] = {"defaultAction": self.default_action}
        if self.default_errno_ret is not None:
            out["defaultErrnoRet"] = self.default_errno_ret
        if self.architectures:
            out["architectures"] = list(self.architectures)
        if self.flags:
            out["flags"] = list(self.flags)
        calls = []
        for call in self.syscalls:
            entry: dict[str, object] = {"names": list(call.names), "action": call.action}
            if call.errno_ret is not None:
                entry["errnoRet"] = call.errno_ret
            if call.args:
                entry["args"] = [{"index": a.index, "value": a.value, "valueTwo": a.value_two, "op": a.op}
                                 for a in call.args]
            calls.append(entry)
        out["syscalls"] = calls
        return out

    def validate(self, where: str = "seccomp", oci: bool = False) -> None:
        """Check every value, as runc's specconv and libseccomp would.

        ``where`` prefixes the field names in errors; ``oci`` names them as the runtime-spec does
        (``defaultErrnoRet``, ``syscalls[2].args[0].valueTwo``) rather than as libcontainer. A pass
        is remembered (:meth:`memo`): the same unchanged object is not checked twice.

        Raises:
            ConfigInvalid: naming the field (unknown action, architecture, flag or operator; an errno
                out of range or given with an action that takes none; an argument index above 5…).
        """
        memo = self.memo()
        if memo.get("valid"):  # checked already (from_oci, then Config.validate, then compile)
            return

        def name(snake: str, camel: str) -> str:
            return camel if oci else snake

        _check_action(self.default_action, f"{_dot(where)}{name('default_action', 'defaultAction')}")
        _check_errno(self.default_action, self.default_errno_ret,
                     f"{_dot(where)}{name('default_errno_ret', 'defaultErrnoRet')}")
        for i, arch in enumerate(self.architectures):
            if arch not in ARCHITECTURES:
                raise ConfigInvalid(f"{_dot(where)}architectures[{i}]: unknown architecture {_show(arch)} "
                                    f"(known: {', '.join(ARCHITECTURES)})")
        for i, flag in enumerate(self.flags):
            if flag == "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV":
                raise ConfigInvalid(f"{_dot(where)}flags[{i}]: {flag} applies to SCMP_ACT_NOTIFY, "
                                    "which is not supported")
            if flag not in FLAGS:
                raise ConfigInvalid(f"{_dot(where)}flags[{i}]: unknown flag {_show(flag)} (known: {', '.join(FLAGS)})")
        for i, call in enumerate(self.syscalls):
            at = f"{_dot(where)}syscalls[{i}]"
            if not isinstance(call.names, list) or not call.names:
                raise ConfigInvalid(f"{at}.names: must be a non-empty list of syscall names")
            for j, syscall in enumerate(call.names):
                if not isinstance(syscall, str) or not syscall or not syscall.replace("_", "").isalnum():
                    raise ConfigInvalid(f"{at}.names[{j}]: {_show(syscall)} is not a syscall name")
            _check_action(call.action, f"{at}.action")
            _check_errno(call.action, call.errno_ret, f"{at}.{name('errno_ret', 'errnoRet')}")
            if len(call.args) > _MAX_ARGS:
                raise ConfigInvalid(f"{at}.args: {len(call.args)} conditions; a syscall has {_MAX_ARGS} arguments")
            for k, arg in enumerate(call.args):
                _check_arg(arg, f"{at}.args[{k}]", name("value_two", "valueTwo"))
        memo["valid"] = True


_memos: dict[int, tuple[weakref.ref, dict]] = {}  # id(Seccomp) -> (its weak reference, Seccomp.memo())


def _check_action(action: object, where: str) -> None:
    if action == "SCMP_ACT_NOTIFY":
        raise ConfigInvalid(f"{where}: SCMP_ACT_NOTIFY is not supported (it needs a listener: listenerPath)")
    if action not in ACTIONS:
        raise ConfigInvalid(f"{where}: unknown action {_show(action)} (known: {', '.join(ACTIONS)})")


def _check_errno(action: str, value: object, where: str) -> None:
    if value is None:
        return
    if action not in ("SCMP_ACT_ERRNO", "SCMP_ACT_TRACE"):
        raise ConfigInvalid(f"{where}: only SCMP_ACT_ERRNO and SCMP_ACT_TRACE take a return value, not {action}")
    high = MAX_ERRNO if action == "SCMP_ACT_ERRNO" else _MAX_TRACE_DATA
    if not _is_int(value) or not 0 <= value <= high:
        raise ConfigInvalid(f"{where}: {value!r} must be an integer in [0, {high}]")


def _check_arg(arg: SeccompArg, where: str, value_two: str) -> None:
    if not _is_int(arg.index) or not 0 <= arg.index < _MAX_ARGS:
        raise ConfigInvalid(f"{where}.index: {arg.index!r} must be an integer in [0, {_MAX_ARGS - 1}]")
    for key, value in (("value", arg.value), (value_two, arg.value_two)):
        if not _is_int(value) or not 0 <= value <= _MAX_U64:
            raise ConfigInvalid(f"{where}.{key}: {value!r} must be an unsigned 64-bit integer")
    if arg.op not in OPERATORS:
        raise ConfigInvalid(f"{where}.op: unknown operator {_show(arg.op)} (known: {', '.join(OPERATORS)})")


def from_oci(raw: object, where: str = "linux.seccomp") -> Seccomp:
    """An OCI ``linux.seccomp`` object (parsed JSON; a seccomp profile file has the same shape) as a
    checked :class:`Seccomp`. ``syscalls[].name`` (one name, an older form) is taken as ``names``.

    Raises:
        ConfigInvalid: ``<where>.<field>: <reason>``: a wrong type, an unknown or unsupported field
            (``listenerPath``), or a bad value (see :meth:`Seccomp.validate`).
    """
    if not isinstance(raw, dict):
        raise ConfigInvalid.at(where, "must be an object")  # where "": a profile file, the object itself
    _only(raw, ("defaultAction", "defaultErrnoRet", "architectures", "flags", "syscalls"), where,
          spec=("listenerPath", "listenerMetadata"))
    if "defaultAction" not in raw:
        raise ConfigInvalid(f"{_dot(where)}defaultAction: required")
    calls_raw = raw.get("syscalls") or []
    if not isinstance(calls_raw, list):
        raise ConfigInvalid(f"{_dot(where)}syscalls: must be a list")
    calls = []
    for i, call in enumerate(calls_raw):
        at = f"{_dot(where)}syscalls[{i}]"
        if not isinstance(call, dict):
            raise ConfigInvalid(f"{at}: must be an object")
        _only(call, ("names", "name", "action", "errnoRet", "args", "comment"), at)
        names = call.get("names")
        if names is None and isinstance(call.get("name"), str):
            names = [call["name"]]
        if not isinstance(names, list):
            raise ConfigInvalid(f"{at}.names: must be a non-empty list of syscall names")
        if "action" not in call:
            raise ConfigInvalid(f"{at}.action: required")
        args_raw = call.get("args") or []
        if not isinstance(args_raw, list):
            raise ConfigInvalid(f"{at}.args: must be a list")
        args = []
        for k, arg in enumerate(args_raw):
            if not isinstance(arg, dict):
                raise ConfigInvalid(f"{at}.args[{k}]: must be an object")
            _only(arg, ("index", "value", "valueTwo", "op"), f"{at}.args[{k}]")
            for key in ("index", "op"):
                if key not in arg:
                    raise ConfigInvalid(f"{at}.args[{k}].{key}: required")
            args.append(SeccompArg(arg["index"], arg.get("value", 0), arg.get("valueTwo", 0), arg["op"]))
        calls.append(SeccompSyscall(list(names), call["action"], call.get("errnoRet"), args))
    for key in ("architectures", "flags"):
        value = raw.get(key) or []
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ConfigInvalid(f"{_dot(where)}{key}: must be a list of strings")
    seccomp = Seccomp(raw["defaultAction"], raw.get("defaultErrnoRet"), list(raw.get("architectures") or []),
                      list(raw.get("flags") or []), calls)
    seccomp.validate(where, oci=True)
    return seccomp


def _dot(where: str) -> str:
    """``where`` as the head of a field name: ``linux.seccomp.`` (``""`` for a profile file's own fields)."""
    return f"{where}." if where else ""


def _only(obj: dict, known: tuple[str, ...], where: str, spec: tuple[str, ...] = ()) -> None:
    """Refuse a non-empty field the runtime-spec defines at ``where`` (``spec``) that we do not
    implement (``known``); any other property is ignored, as the runtime-spec requires."""
    for key, value in obj.items():
        if key in known or value in (None, "", [], {}) or key not in spec:
            continue
        if key in ("listenerPath", "listenerMetadata"):
            raise ConfigInvalid(f"{_dot(where)}{key}: not supported (SCMP_ACT_NOTIFY needs a listener we do not run)")
        raise ConfigInvalid(f"{_dot(where)}{key}: not supported")


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _show(value: object) -> str:
    return f'"{value}"' if isinstance(value, str) else repr(value)


def read_profile(path: str) -> tuple[Seccomp, str]:
    """A seccomp profile file (JSON, the shape of OCI ``linux.seccomp``) as a checked :class:`Seccomp`
    and the sha256 (hex) of the very bytes it was parsed from.

    The file is read once per identity (inode, size, mtime): while it stays the same, later calls
    (the loader's check, the normalized spec's digest, the conversion) return the same pair without
    reading it, and the Seccomp is shared: do not change it.

    Raises:
        ConfigInvalid: ``<path>: <field>: <reason>``, or why the file cannot be read or parsed.
    """
    import hashlib
    import json

    try:
        st = os.stat(path)
        seen = _profiles.get(path)
        if seen is not None and seen[0] == (st.st_ino, st.st_size, st.st_mtime_ns):
            return seen[1]
        with open(path, "rb") as f:
            st = os.fstat(f.fileno())  # the identity of what is read: a later write changes it
            data = f.read()
    except OSError as err:
        raise ConfigInvalid(f"{path}: cannot read: {err.strerror}") from None
    try:
        raw = json.loads(data.decode("utf-8"))
    except UnicodeDecodeError:
        raise ConfigInvalid(f"{path}: not UTF-8 text (is it a JSON seccomp profile?)") from None
    except json.JSONDecodeError as err:
        raise ConfigInvalid(f"{path}: invalid JSON at line {err.lineno}, column {err.colno}: {err.msg}") from None
    try:
        seccomp = from_oci(raw, "")
    except ConfigInvalid as err:
        raise err.located(path) from None
    result = seccomp, hashlib.sha256(data).hexdigest()
    _profiles[path] = ((st.st_ino, st.st_size, st.st_mtime_ns), result)
    return result


_profiles: dict[str, tuple[tuple[int, int, int], tuple[Seccomp, str]]] = {}  # path -> (identity, read_profile)
