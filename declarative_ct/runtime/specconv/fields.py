"""What the runtime-spec defines, and reading its JSON strictly (runc's specconv tables).

The tables list each object's fields: the ones we implement, refuse (:data:`UNSUPPORTED_PROCESS_KEYS`)
or ignore with a warning, and every field the spec defines (:data:`SPEC_FIELDS`: one of those we do not
implement is refused by name, any other property ignored). The ``get_*`` readers return a field of a
parsed JSON object with its type checked, raising ConfigInvalid naming it (``where``). Stdlib only.
"""

from __future__ import annotations

import os

from ...configs.cgroup import is_int  # one definition; the other specconv modules import it from here
from ...errors import ConfigInvalid, log_warning

TOP_LEVEL_KEYS = ("ociVersion", "process", "root", "hostname", "domainname", "mounts", "annotations",
                  "linux", "hooks")

# OCI namespace type -> libcontainer's.
NAMESPACE_MAP = {"pid": "NEWPID", "network": "NEWNET", "mount": "NEWNS", "ipc": "NEWIPC",
                 "uts": "NEWUTS", "cgroup": "NEWCGROUP", "user": "NEWUSER"}

CAPABILITY_SETS = {"bounding": "Bounding", "effective": "Effective", "permitted": "Permitted",
                   "inheritable": "Inheritable", "ambient": "Ambient"}

# Process fields we cannot honour: refused when present and non-empty, never ignored. LSM labels
# are security promises; runc 1.1 fails on them too on a host without AppArmor/SELinux.
UNSUPPORTED_PROCESS_KEYS = ("apparmorProfile", "selinuxLabel", "commandLine")
# Fields newer than runtime-spec 1.0.2, which runc 1.1 does not know and so ignores: ignored
# here too, with a warning naming each (runc 1.1 says nothing).
IGNORED_PROCESS_KEYS = ("ioPriority", "scheduler", "execCPUAffinity")
IGNORED_LINUX_KEYS = ("memoryPolicy", "timeOffsets", "personality")  # (intelRdt: runc 1.1 fails without RDT)
PROCESS_KEYS = ("terminal", "consoleSize", "user", "args", "env", "cwd", "capabilities", "rlimits",
                "noNewPrivileges", "oomScoreAdj") + UNSUPPORTED_PROCESS_KEYS + IGNORED_PROCESS_KEYS

# Idmapped mounts: passed on as data the kernel would silently ignore them on a bind mount (runc
# 1.1 does), and they are an isolation promise, so refuse them.
UNSUPPORTED_MOUNT_OPTIONS = frozenset({"idmap", "ridmap"})

LINUX_KEYS = ("namespaces", "maskedPaths", "readonlyPaths", "sysctl", "resources", "cgroupsPath",
              "rootfsPropagation", "seccomp", "devices", "mountLabel", "uidMappings",
              "gidMappings") + IGNORED_LINUX_KEYS
# Applied to `/` after pivot_root (rootfs.py), as runc accepts them (unbindable: runc fails, EINVAL).
ACCEPTED_ROOTFS_PROPAGATION = ("", "slave", "rslave", "private", "rprivate", "shared", "rshared")

# OCI linux.devices[].type -> ours ("u", unbuffered, is a character device).
DEVICE_TYPES = {"c": "c", "u": "c", "b": "b", "p": "p"}

_THROTTLES = ("throttleReadBpsDevice", "throttleWriteBpsDevice", "throttleReadIOPSDevice", "throttleWriteIOPSDevice")
# Every field the runtime-spec (1.2) defines, by the object that holds it (list items as ``[]``).
# Of these, one we do not implement is refused by name; any other property is ignored (the spec:
# "runtimes MUST ignore unknown properties"). An object missing here keeps refusing every field
# it does not implement. Other platforms' top-level objects (solaris, windows, vm, zos) are ignored.
SPEC_FIELDS: dict[str, tuple[str, ...]] = {
    "root.": ("path", "readonly"),
    "process.": PROCESS_KEYS,
    "process.user.": ("uid", "gid", "umask", "additionalGids", "username"),
    "process.capabilities.": ("bounding", "effective", "permitted", "inheritable", "ambient"),
    "process.rlimits[].": ("type", "hard", "soft"),
    "mounts[].": ("destination", "type", "source", "options", "uidMappings", "gidMappings"),
    "linux.": ("namespaces", "uidMappings", "gidMappings", "timeOffsets", "devices", "netDevices", "cgroupsPath",
               "rootfsPropagation", "resources", "intelRdt", "personality", "memoryPolicy", "sysctl", "seccomp",
               "maskedPaths", "readonlyPaths", "mountLabel"),
    "linux.namespaces[].": ("type", "path"),
    "linux.resources.": ("devices", "memory", "cpu", "blockIO", "hugepageLimits", "network", "pids", "rdma",
                         "unified"),
    "linux.resources.devices[].": ("allow", "type", "major", "minor", "access"),
    "linux.resources.memory.": ("limit", "reservation", "swap", "kernel", "kernelTCP", "swappiness",
                                "disableOOMKiller", "useHierarchy", "checkBeforeUpdate"),
    "linux.resources.cpu.": ("shares", "quota", "burst", "period", "realtimeRuntime", "realtimePeriod", "cpus",
                             "mems", "idle"),
    "linux.resources.pids.": ("limit",),
    "linux.resources.blockIO.": ("weight", "leafWeight", "weightDevice") + _THROTTLES,
    **{f"linux.resources.blockIO.{name}[].": ("major", "minor", "rate") for name in _THROTTLES},
}

# Python's resource module lacks RLIMIT_LOCKS (Linux number 10).
EXTRA_RLIMITS = {"RLIMIT_LOCKS": 10}


def present(value: object) -> bool:
    """True unless the value is absent or empty (an empty field asks for nothing)."""
    return value not in (None, "", [], {}, False)


def reject_unknown(obj: dict[str, object], known: tuple[str, ...], prefix: str) -> None:
    """Refuse a non-empty field of ``obj`` (at ``prefix``) that is not in ``known`` (what we
    implement) but that the runtime-spec defines there (:data:`SPEC_FIELDS`): it might be a promise
    we cannot keep. Any other property is ignored, as the spec requires."""
    spec = SPEC_FIELDS.get(_generic(prefix))
    for key, value in obj.items():
        if key not in known and present(value) and (spec is None or key in spec):
            raise ConfigInvalid(f"{prefix}{key}: not supported")


def _generic(prefix: str) -> str:
    """``prefix`` with list indices blanked: ``mounts[3].`` → ``mounts[].`` (a :data:`SPEC_FIELDS` key)."""
    out, skipping = [], False
    for char in prefix:
        if char == "[":
            skipping = True
            out.append(char)
        elif char == "]":
            skipping = False
            out.append(char)
        elif not skipping:
            out.append(char)
    return "".join(out)


def warn_ignored(obj: dict[str, object], keys: tuple[str, ...], prefix: str) -> None:
    """Log a warning naming each of ``keys`` present in ``obj`` (at ``prefix``): fields runc 1.1
    predates (runtime-spec 1.0.2) and so ignores; said, not refused."""
    for key in keys:
        if present(obj.get(key)):
            log_warning("%s%s: not supported; ignored (as runc 1.1 does)", prefix, key, logger=__package__)


def resolve(bundle: str, path: str) -> str:
    """``path`` of config.json taken relative to the bundle directory (an absolute one as it is), normalized."""
    return os.path.normpath(os.path.join(bundle, path))


def get_obj(parent: dict[str, object], key: str, where: str) -> dict[str, object]:
    """``parent[key]`` as an object ({} when absent). Raises ConfigInvalid naming ``where`` otherwise."""
    value = parent.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ConfigInvalid(f"{where}: must be an object")
    return value


def get_str(parent: dict[str, object], key: str, where: str) -> str:
    """``parent[key]`` as a string ("" when absent). Raises ConfigInvalid naming ``where`` otherwise."""
    value = parent.get(key, "")
    if not isinstance(value, str):
        raise ConfigInvalid(f"{where}: must be a string")
    return value


def get_bool(parent: dict[str, object], key: str, where: str) -> bool:
    """``parent[key]`` as a JSON boolean (False when absent). Raises ConfigInvalid naming ``where`` otherwise."""
    value = parent.get(key, False)
    if not isinstance(value, bool):
        raise ConfigInvalid(f"{where}: must be true or false")
    return value


def get_str_list(parent: dict[str, object], key: str, where: str) -> list[str]:
    """``parent[key]`` as a list of strings ([] when absent). Raises ConfigInvalid naming ``where`` otherwise."""
    value = parent.get(key)
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigInvalid(f"{where}: must be a list of strings")
    return list(value)


def get_path_list(parent: dict[str, object], key: str, where: str) -> list[str]:
    """:func:`get_str_list` of absolute paths (``maskedPaths``…). Raises ConfigInvalid naming ``where``."""
    paths = get_str_list(parent, key, where)
    for p in paths:
        if not os.path.isabs(p):
            raise ConfigInvalid(f"{where}: {p!r} must be an absolute path")
    return paths



def is_uint(value: object) -> bool:
    """A JSON integer ≥ 0 (``true`` is not one)."""
    return is_int(value) and value >= 0


def get_uint(parent: dict[str, object], key: str, where: str, default: int | None = 0) -> object:
    """``parent[key]`` as a non-negative integer (``default`` when absent). Raises ConfigInvalid naming ``where``."""
    value = parent.get(key, default)
    if value is not None and not is_uint(value):
        raise ConfigInvalid(f"{where}: {value!r} must be a non-negative integer")
    return value
