"""OCI bundle ``config.json`` ↔ our ``Config``: runc's ``libcontainer/specconv``.

:func:`example_spec` is what ``dct spec`` writes (runc's ``specconv.Example``) and
:func:`load_bundle` turns a bundle's ``config.json`` into a :class:`Config` plus the init
:class:`Process` (runc's ``specconv.CreateLibcontainerConfig`` and ``newProcess``).

The conversion is strict on purpose: a field of the runtime-spec that we do not implement is an
error naming it, never silently dropped, because most of them (LSM labels, id mappings, seccomp
notifications…) are security or isolation promises the user would believe were kept. A property
the runtime-spec does not define (:data:`SPEC_FIELDS`) is ignored, as the spec requires of a
runtime, so that a config written for a newer spec or with a client's extras still runs. Stdlib only.
"""

from __future__ import annotations

import dataclasses
import json
import os
import resource

from ..configs import (CAPABILITIES, DEFAULT_ENV, DEFAULT_MASK_PATHS, DEFAULT_READONLY_PATHS, HOST_ROOTFS,
                       HOOK_NAMES, OCI_VERSION, Capabilities, Config, Device, DeviceRule, Hook, IDMap, Mount, Namespace,
                       Resources, Rlimit, ThrottleDevice, default_device_rules, namespace_path_problem)
from ..configs.mountflags import (EXT_COPYUP, MS_BIND, MS_RDONLY, OPTION_FLAGS, PROPAGATION_FLAGS,
                                  RECURSIVE_ATTR_FLAGS)
from ..configs.seccomp import from_oci as seccomp_from_oci
from ..errors import ConfigInvalid, log_warning
from .process import Process

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


def example_spec() -> dict[str, object]:
    """The default OCI ``config.json`` that ``dct spec`` writes (runc's ``specconv.Example``).

    Differences from runc: ``terminal`` is false (runc's is true: the default spec then needs a
    console socket or a foreground run on a terminal), the hostname is ``dct``,
    the cgroup namespace is always listed, and ``linux.seccomp`` holds the default profile (docker's
    semantics) resolved for the spec's capabilities. Returns a new dict on every call, so callers may edit it.
    """
    from .seccomp_profile import default_profile

    nse = ["nosuid", "noexec", "nodev"]
    caps = ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]
    return {
        "ociVersion": OCI_VERSION,
        "process": {
            "terminal": False,
            "user": {"uid": 0, "gid": 0},
            "args": ["sh"],
            "env": list(DEFAULT_ENV) + ["TERM=xterm"],
            "cwd": "/",
            "capabilities": {"bounding": list(caps), "effective": list(caps), "permitted": list(caps)},
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
            "noNewPrivileges": True,
        },
        "root": {"path": "rootfs", "readonly": True},
        "hostname": "dct",
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
             "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
            {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
             "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
            {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
             "options": nse + ["mode=1777", "size=65536k"]},
            {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": list(nse)},
            {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": nse + ["ro"]},
        ],
        "linux": {
            "resources": {"devices": [{"allow": False, "access": "rwm"}]},
            "namespaces": [{"type": t} for t in ("pid", "network", "ipc", "uts", "mount", "cgroup")],
            "maskedPaths": list(DEFAULT_MASK_PATHS),
            "readonlyPaths": list(DEFAULT_READONLY_PATHS),
            "seccomp": default_profile(caps).to_oci(),
        },
    }


def load_bundle(bundle: str) -> tuple[Config, Process]:
    """Read ``<bundle>/config.json`` and convert it to our ``Config`` and init ``Process``.

    Mirrors runc's ``specconv.CreateLibcontainerConfig`` (plus ``newProcess`` for the process).
    Relative ``root.path`` and bind-mount sources resolve against the bundle; the labels start with
    ``bundle=<abs bundle dir>`` followed by the annotations. The rootfs is not checked here
    (``Config.validate`` does that at create time).

    Raises:
        ConfigInvalid: ``"<bundle>/config.json: <field path>: <reason>"`` for a missing file, a
            JSON syntax error (with line and column), a malformed field, or a field this release
            does not support (seccomp notifications, user namespaces, hooks…).
    """
    bundle = os.path.abspath(bundle)
    path = os.path.join(bundle, "config.json")
    if not os.path.isdir(bundle):
        raise ConfigInvalid(f"bundle {bundle}: no such directory" if not os.path.exists(bundle)
                            else f"bundle {bundle}: not a directory")
    try:
        with open(path, encoding="utf-8") as f:
            spec = json.load(f)
    except FileNotFoundError:
        raise ConfigInvalid(f"{path}: no such file (run 'dct spec' in the bundle to write one)") from None
    except json.JSONDecodeError as err:
        raise ConfigInvalid(f"{path}: invalid JSON at line {err.lineno}, column {err.colno}: {err.msg}") from None
    except UnicodeDecodeError:
        raise ConfigInvalid(f"{path}: not UTF-8 text (is it a JSON file?)") from None
    except OSError as err:
        raise ConfigInvalid(f"{path}: cannot read: {err.strerror}") from None
    try:
        return _convert(spec, bundle)
    except ConfigInvalid as err:
        raise ConfigInvalid(f"{path}: {err}") from None


# -- conversion --------------------------------------------------------------------------------

def _convert(spec: object, bundle: str) -> tuple[Config, Process]:
    if not isinstance(spec, dict):
        raise ConfigInvalid("the top-level value must be a JSON object")
    # Every top-level field of the spec for Linux is read below; any other property is ignored.
    version = spec.get("ociVersion")
    if not isinstance(version, str) or not version.startswith("1."):
        raise ConfigInvalid(f"ociVersion: {version!r} is not a supported version (need 1.x)")

    root = _obj(spec, "root", "root")
    _reject_unknown(root, ("path", "readonly"), "root.")
    root_path = root.get("path")
    if not isinstance(root_path, str) or not root_path:
        raise ConfigInvalid("root.path: must be a non-empty string")
    linux = _obj(spec, "linux", "linux")

    cfg = Config(
        # "host" is our extension: the read-only host view (configs.HOST_ROOTFS).
        rootfs=HOST_ROOTFS if root_path == HOST_ROOTFS else _resolve(bundle, root_path),
        readonlyfs=_bool(root, "readonly", "root.readonly"),
        hostname=_str(spec, "hostname", "hostname"),
        domainname=_str(spec, "domainname", "domainname"),
        mounts=_mounts(spec.get("mounts"), bundle),
        labels=[f"bundle={bundle}"] + _annotations(spec.get("annotations")),
        version=version,
        hooks=_hooks(spec.get("hooks")),
    )
    process = _process(spec.get("process"), cfg)
    _linux(linux, cfg)
    return cfg, process


def _process(raw: object, cfg: Config) -> Process:
    if not isinstance(raw, dict):
        raise ConfigInvalid("process: must be an object (with at least args)")
    _reject_unknown(raw, PROCESS_KEYS, "process.")
    terminal = _bool(raw, "terminal", "process.terminal")
    console_size = _console_size(raw.get("consoleSize"))
    for key in UNSUPPORTED_PROCESS_KEYS:
        if _present(raw.get(key)):
            raise ConfigInvalid(f"process.{key}: not supported" + (
                " (this host has no AppArmor or SELinux; runc fails on it too)" if key != "commandLine" else ""))
    _warn_ignored(raw, IGNORED_PROCESS_KEYS, "process.")

    args = raw.get("args")
    if not isinstance(args, list) or not args or not all(isinstance(a, str) for a in args):
        raise ConfigInvalid("process.args: must be a non-empty list of strings")
    env = _str_list(raw, "env", "process.env")
    for entry in env:
        if "=" not in entry or entry.startswith("="):
            raise ConfigInvalid(f"process.env: {entry!r} is not of the form KEY=value")
    cwd = raw.get("cwd", "/")
    if not isinstance(cwd, str) or not os.path.isabs(cwd):
        raise ConfigInvalid(f"process.cwd: {cwd!r} must be an absolute path")

    user = _obj(raw, "user", "process.user")
    _reject_unknown(user, ("uid", "gid", "umask", "additionalGids", "username"), "process.user.")
    if _present(user.get("username")):
        raise ConfigInvalid("process.user.username: not supported (give uid and gid)")
    gids = user.get("additionalGids", [])
    if not isinstance(gids, list) or not all(_is_uint(g) for g in gids):
        raise ConfigInvalid("process.user.additionalGids: must be a list of non-negative integers")
    umask = user.get("umask")
    if umask is not None and not (_is_uint(umask) and umask <= 0o777):
        raise ConfigInvalid(f"process.user.umask: {umask!r} must be an integer in [0, 0o777]")

    oom = raw.get("oomScoreAdj")
    if oom is not None and not _is_int(oom):
        raise ConfigInvalid(f"process.oomScoreAdj: {oom!r} must be an integer")

    # The container config carries the defaults (runc copies these onto the init Process too).
    cfg.capabilities = _capabilities(raw.get("capabilities"))
    cfg.rlimits = _rlimits(raw.get("rlimits"))
    cfg.no_new_privileges = _bool(raw, "noNewPrivileges", "process.noNewPrivileges")
    cfg.oom_score_adj = oom
    return Process(
        args=list(args), env=env, cwd=os.path.normpath(cwd),
        uid=_uint(user, "uid", "process.user.uid"), gid=_uint(user, "gid", "process.user.gid"),
        additional_groups=list(gids), umask=umask,
        capabilities=_capabilities(raw.get("capabilities")),  # a separate copy, not shared with cfg
        no_new_privileges=cfg.no_new_privileges,
        rlimits=list(cfg.rlimits),
        terminal=terminal, console_size=console_size,
    )


def _console_size(raw: object) -> tuple[int, int] | None:
    """``process.consoleSize`` ``{height, width}`` as ``(rows, columns)``; None when absent or
    either is 0 (runc applies it only when both are set)."""
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise ConfigInvalid("process.consoleSize: must be an object with height and width")
    _reject_unknown(raw, ("height", "width"), "process.consoleSize.")
    size = []
    for key in ("height", "width"):
        value = raw.get(key, 0)
        if not _is_uint(value) or value > 0xFFFF:
            raise ConfigInvalid(f"process.consoleSize.{key}: {value!r} must be an integer from 0 to 65535")
        size.append(value)
    return (size[0], size[1]) if all(size) else None


def exec_process(raw: object) -> Process:
    """An OCI ``process`` object as the Process of ``runc exec --process FILE`` (runc's ``newProcess``).

    Parsed and checked as config.json's ``process`` (errors name ``process.<field>``), with runc's
    exec semantics: absent ``capabilities`` and ``rlimits`` mean the container's (None here), and
    ``noNewPrivileges`` is what the object says (false when absent). ``oomScoreAdj`` does not
    apply to an exec'd process and is ignored, as by runc.

    Raises:
        ConfigInvalid: naming the field (``process.args: …``).
    """
    process = _process(raw, Config(rootfs="/"))
    present = raw.get  # a dict: _process checked it
    return dataclasses.replace(process, init=False,
                               capabilities=process.capabilities if present("capabilities") is not None else None,
                               rlimits=process.rlimits if present("rlimits") is not None else None)


def _capabilities(raw: object) -> Capabilities:
    # Absent means no capabilities at all, as in runc: the spec is explicit.
    caps = Capabilities(Bounding=[], Effective=[], Permitted=[], Inheritable=[], Ambient=[])
    if raw is None:
        return caps
    if not isinstance(raw, dict):
        raise ConfigInvalid("process.capabilities: must be an object")
    _reject_unknown(raw, tuple(CAPABILITY_SETS), "process.capabilities.")
    for oci_name, attr in CAPABILITY_SETS.items():
        names = _str_list(raw, oci_name, f"process.capabilities.{oci_name}")
        unknown = [n for n in names if n not in CAPABILITIES]
        if unknown:
            raise ConfigInvalid(f"process.capabilities.{oci_name}: unknown capabilities {', '.join(unknown)}")
        setattr(caps, attr, names)
    return caps


def _rlimits(raw: object) -> list[Rlimit]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise ConfigInvalid("process.rlimits: must be a list")
    out, seen = [], set()
    for i, rl in enumerate(raw):
        where = f"process.rlimits[{i}]"
        if not isinstance(rl, dict):
            raise ConfigInvalid(f"{where}: must be an object")
        _reject_unknown(rl, ("type", "hard", "soft"), where + ".")
        name = rl.get("type")
        number = _rlimit_number(name)
        if number is None:
            raise ConfigInvalid(f"{where}.type: unknown rlimit {name!r}")
        if name in seen:
            raise ConfigInvalid(f"{where}.type: {name} listed twice")
        seen.add(name)
        hard, soft = _uint(rl, "hard", f"{where}.hard", None), _uint(rl, "soft", f"{where}.soft", None)
        if hard is None or soft is None:
            raise ConfigInvalid(f"{where}: hard and soft are required")
        if soft > hard:
            raise ConfigInvalid(f"{where}: soft limit {soft} is above the hard limit {hard}")
        out.append(Rlimit(number, hard, soft))
    return out


def _rlimit_number(name: object) -> int | None:
    if not isinstance(name, str) or not name.startswith("RLIMIT_"):
        return None
    number = getattr(resource, name, EXTRA_RLIMITS.get(name))
    return number if isinstance(number, int) else None


def _mounts(raw: object, bundle: str) -> list[Mount]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise ConfigInvalid("mounts: must be a list")
    return [_mount(m, bundle, f"mounts[{i}]") for i, m in enumerate(raw)]


def _mount(raw: object, bundle: str, where: str) -> Mount:
    """runc's ``createLibcontainerMount`` + ``parseMountOptions``."""
    if not isinstance(raw, dict):
        raise ConfigInvalid(f"{where}: must be an object")
    _reject_unknown(raw, ("destination", "type", "source", "options", "uidMappings", "gidMappings"), f"{where}.")
    for key in ("uidMappings", "gidMappings"):
        if _present(raw.get(key)):
            raise ConfigInvalid(f"{where}.{key}: idmapped mounts are not supported")
    dest = raw.get("destination")
    if not isinstance(dest, str) or not os.path.isabs(dest):
        raise ConfigInvalid(f"{where}.destination: {dest!r} must be an absolute path")
    if os.path.normpath(dest) == "/":
        raise ConfigInvalid(f"{where}.destination: cannot mount over the container's root (that is root.path)")
    fstype = _str(raw, "type", f"{where}.type")
    source = _str(raw, "source", f"{where}.source")

    flags, propagation, data = 0, [], []
    attr_set = attr_clr = extensions = 0
    for opt in _str_list(raw, "options", f"{where}.options"):
        if opt in OPTION_FLAGS:
            clear, bit = OPTION_FLAGS[opt]
            flags = flags & ~bit if clear else flags | bit
        elif opt in PROPAGATION_FLAGS:
            propagation.append(PROPAGATION_FLAGS[opt])
        elif opt in RECURSIVE_ATTR_FLAGS:
            # runc's recAttr: mount_setattr(AT_RECURSIVE) on the new mount and everything below it.
            to_set, to_clear = RECURSIVE_ATTR_FLAGS[opt]
            attr_set, attr_clr = (attr_set & ~to_clear) | to_set, (attr_clr & ~to_set) | to_clear
        elif opt == "tmpcopyup":
            extensions |= EXT_COPYUP
        elif opt in UNSUPPORTED_MOUNT_OPTIONS:
            raise ConfigInvalid(f"{where}.options: {opt!r} is not supported")
        else:
            data.append(opt)
    if extensions & EXT_COPYUP and fstype != "tmpfs":
        raise ConfigInvalid(f"{where}.options: tmpcopyup needs a mount of type tmpfs, not {fstype or 'bind'!r}")
    extra = {"rec_attr_set": attr_set, "rec_attr_clr": attr_clr, "extensions": extensions}

    if fstype == "bind" or flags & MS_BIND:
        # object fs type is meaningless for a bind mount; "bind" alone is non-recursive, "rbind" adds MS_REC.
        if not source:
            raise ConfigInvalid(f"{where}.source: a bind mount needs a source")
        if data:
            # The kernel ignores mount data on a bind mount: refuse rather than pretend.
            raise ConfigInvalid(f"{where}.options: {', '.join(data)} has no effect on a bind mount")
        return Mount(_resolve(bundle, source), dest, "bind", flags | MS_BIND, "", propagation, **extra)
    if not fstype:
        raise ConfigInvalid(f"{where}.type: required for a mount that is not a bind mount")
    if fstype in ("cgroup", "cgroup2") and data:
        # rootfs.py makes this mount from the container's own cgroups, not from these options.
        raise ConfigInvalid(f"{where}.options: {', '.join(data)} cannot be given to a {fstype} mount "
                            "(the container's own cgroups are mounted there)")
    # Unknown filesystem types go through as is: the kernel is the judge.
    return Mount(source or fstype, dest, fstype, flags, ",".join(data), propagation, **extra)


def _annotations(raw: object) -> list[str]:
    if raw is None:
        return []
    if not isinstance(raw, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in raw.items()):
        raise ConfigInvalid("annotations: must be an object of string values")
    for key in raw:
        if not key or key == "bundle" or "=" in key:
            raise ConfigInvalid(f"annotations: key {key!r} is reserved or malformed")
    return [f"{k}={v}" for k, v in raw.items()]


def _linux(linux: dict[str, object], cfg: Config) -> None:
    _reject_unknown(linux, LINUX_KEYS, "linux.")
    _warn_ignored(linux, IGNORED_LINUX_KEYS, "linux.")
    if _present(linux.get("mountLabel")):
        raise ConfigInvalid("linux.mountLabel: not supported (this host has no SELinux; runc fails on it too)")
    cfg.devices = _devices(linux.get("devices"))
    cfg.namespaces = _namespaces(linux.get("namespaces"))
    cfg.uid_mappings = _id_mappings(linux.get("uidMappings"), "linux.uidMappings")
    cfg.gid_mappings = _id_mappings(linux.get("gidMappings"), "linux.gidMappings")
    cfg.validate_id_mappings(("linux.uidMappings", "linux.gidMappings"))
    # Absent lists mean none (as runc): the spec, not our defaults, is the source of truth.
    cfg.mask_paths = _path_list(linux, "maskedPaths", "linux.maskedPaths")
    cfg.readonly_paths = _path_list(linux, "readonlyPaths", "linux.readonlyPaths")
    sysctl = linux.get("sysctl") or {}
    if not isinstance(sysctl, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in sysctl.items()):
        raise ConfigInvalid("linux.sysctl: must be an object of string values")
    cfg.sysctl = dict(sysctl)
    _resources(_obj(linux, "resources", "linux.resources"), cfg)
    cfg.cgroups.path = _cgroups_path(linux.get("cgroupsPath", ""))
    propagation = linux.get("rootfsPropagation", "")
    if propagation not in ACCEPTED_ROOTFS_PROPAGATION:
        raise ConfigInvalid(f"linux.rootfsPropagation: {propagation!r} is not supported "
                            f"(use one of {', '.join(p for p in ACCEPTED_ROOTFS_PROPAGATION if p)})")
    cfg.root_propagation = PROPAGATION_FLAGS.get(propagation, 0)
    # Absent: no filter at all, as runc (dct spec writes the default profile).
    if linux.get("seccomp") is not None:
        cfg.seccomp = seccomp_from_oci(linux["seccomp"], "linux.seccomp")


def _cgroups_path(raw: object) -> str:
    """``linux.cgroupsPath`` as runc's fs drivers take it: an absolute path lies below each
    hierarchy's mount, a relative one below the creating process's own cgroup (kept relative
    here: ``cgroups.new_manager`` resolves it). systemd's ``slice:prefix:name`` is refused.
    """
    if raw in ("", None):
        return ""
    if not isinstance(raw, str) or ":" in raw:
        raise ConfigInvalid(f"linux.cgroupsPath: {raw!r} is not supported: give a path such as /dct/<name> "
                            "or dct/<name> (systemd slice:prefix:name paths are not)")
    parts = [p for p in raw.split("/") if p]
    if not parts or any(p in (".", "..") for p in parts):
        raise ConfigInvalid(f"linux.cgroupsPath: {raw!r} must name a cgroup without '.' or '..'")
    return ("/" if raw.startswith("/") else "") + "/".join(parts)


def _devices(raw: object) -> list[Device]:
    """``linux.devices``: the nodes made in the container (runc's ``specconv.CreateDevices``).

    Making a node does not allow it: ``linux.resources.devices`` decides, as in runc.
    """
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise ConfigInvalid("linux.devices: must be a list")
    out: list[Device] = []
    for i, dev in enumerate(raw):
        where = f"linux.devices[{i}]"
        if not isinstance(dev, dict):
            raise ConfigInvalid(f"{where}: must be an object")
        _reject_unknown(dev, ("path", "type", "major", "minor", "fileMode", "uid", "gid"), f"{where}.")
        path = dev.get("path")
        if not isinstance(path, str) or not os.path.isabs(path) or os.path.normpath(path) == "/":
            raise ConfigInvalid(f"{where}.path: {path!r} must be an absolute path below /")
        dev_type = dev.get("type")
        if dev_type not in DEVICE_TYPES:
            raise ConfigInvalid(f"{where}.type: {dev_type!r} must be c, b, u or p")
        numbers = {k: _uint(dev, k, f"{where}.{k}", None) for k in ("major", "minor")}
        if dev_type != "p" and None in numbers.values():
            raise ConfigInvalid(f"{where}: major and minor are required for a {dev_type} device")
        mode = _uint(dev, "fileMode", f"{where}.fileMode", 0o666)  # its file type bits are dropped, as runc
        out.append(Device(os.path.normpath(path), DEVICE_TYPES[dev_type], numbers["major"] or 0,
                          numbers["minor"] or 0, mode & 0o7777, _uint(dev, "uid", f"{where}.uid"),
                          _uint(dev, "gid", f"{where}.gid")))
    return out


def _hooks(raw: object) -> dict[str, list[Hook]]:
    """The ``hooks`` object: ``{point: [Hook]}`` for the runtime-spec points; an unknown point is
    ignored with a warning (as runc ignores it)."""
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ConfigInvalid("hooks: must be an object")
    out: dict[str, list[Hook]] = {}
    for name, hooks in raw.items():
        if name not in HOOK_NAMES:
            if _present(hooks):
                log_warning("hooks.%s: not a runtime-spec hook point; ignored", name, logger=__name__)
            continue
        if hooks is None:
            continue
        if not isinstance(hooks, list):
            raise ConfigInvalid(f"hooks.{name}: must be a list")
        parsed = []
        for i, hook in enumerate(hooks):
            where = f"hooks.{name}[{i}]"
            if not isinstance(hook, dict):
                raise ConfigInvalid(f"{where}: must be an object")
            _reject_unknown(hook, ("path", "args", "env", "timeout"), f"{where}.")
            path = hook.get("path")
            if not isinstance(path, str) or not os.path.isabs(path):
                raise ConfigInvalid(f"{where}.path: {path!r} must be an absolute path")
            timeout = hook.get("timeout")
            if timeout is not None and (not _is_int(timeout) or timeout <= 0):
                raise ConfigInvalid(f"{where}.timeout: {timeout!r} must be a positive number of seconds")
            env = _str_list(hook, "env", f"{where}.env")
            for entry in env:
                if "=" not in entry or entry.startswith("="):
                    raise ConfigInvalid(f"{where}.env: {entry!r} is not of the form KEY=value")
            parsed.append(Hook(path, _str_list(hook, "args", f"{where}.args"), env, timeout))
        if parsed:
            out[name] = parsed
    return out


def _namespaces(raw: object) -> list[Namespace]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise ConfigInvalid("linux.namespaces: must be a list")
    out: list[Namespace] = []
    for i, ns in enumerate(raw):
        where = f"linux.namespaces[{i}]"
        if not isinstance(ns, dict):
            raise ConfigInvalid(f"{where}: must be an object")
        _reject_unknown(ns, ("type", "path"), f"{where}.")
        oci_type = ns.get("type")
        if oci_type == "time":
            raise ConfigInvalid(f"{where}.type: time namespaces are not supported")
        if oci_type not in NAMESPACE_MAP:
            raise ConfigInvalid(f"{where}.type: unknown namespace type {oci_type!r}")
        ns_type = NAMESPACE_MAP[oci_type]
        if any(n.type == ns_type for n in out):
            raise ConfigInvalid(f"{where}.type: {oci_type} listed twice")
        path = _str(ns, "path", f"{where}.path")
        if path and not os.path.isabs(path):
            raise ConfigInvalid(f"{where}.path: {path!r} must be an absolute path")
        problem = namespace_path_problem(ns_type, path) if path else None
        if problem:
            raise ConfigInvalid(f"{where}.path: {path} {problem}")
        out.append(Namespace(ns_type, path))
    return out


def _id_mappings(raw: object, where: str) -> list[IDMap]:
    """``[{containerID, hostID, size}]`` as IDMaps (ranges are checked by ``Config.validate``)."""
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise ConfigInvalid(f"{where}: must be a list")
    out = []
    for i, m in enumerate(raw):
        if not isinstance(m, dict):
            raise ConfigInvalid(f"{where}[{i}]: must be an object")
        _reject_unknown(m, ("containerID", "hostID", "size"), f"{where}[{i}].")
        out.append(IDMap(*(_uint(m, key, f"{where}[{i}].{key}", None) for key in ("containerID", "hostID", "size"))))
        if None in (out[-1].container_id, out[-1].host_id, out[-1].size):
            raise ConfigInvalid(f"{where}[{i}]: containerID, hostID and size are required")
    return out


# OCI linux.resources → libcontainer Resources fields (runc's specconv.CreateCgroupConfig).
_OCI_RESOURCES = {
    "memory": {"limit": "memory", "reservation": "memory_reservation", "swap": "memory_swap"},
    "cpu": {"shares": "cpu_shares", "quota": "cpu_quota", "period": "cpu_period", "cpus": "cpuset_cpus",
            "mems": "cpuset_mems"},
    "pids": {"limit": "pids_limit"},
    "blockIO": {"weight": "blkio_weight"},
}
_OCI_THROTTLES = {"throttleReadBpsDevice": "blkio_throttle_read_bps_device",
                  "throttleWriteBpsDevice": "blkio_throttle_write_bps_device",
                  "throttleReadIOPSDevice": "blkio_throttle_read_iops_device",
                  "throttleWriteIOPSDevice": "blkio_throttle_write_iops_device"}
OCI_RESOURCE_NAMES = {attr: f"{group}.{key}" for group, names in _OCI_RESOURCES.items() for key, attr in names.items()}
OCI_RESOURCE_NAMES.update({attr: f"blockIO.{key}" for key, attr in _OCI_THROTTLES.items()})
"""``Resources`` field → its name in an OCI ``linux.resources`` object (``memory_swap`` → ``memory.swap``)."""


def _resources(res: dict[str, object], cfg: Config) -> None:
    resources_from_oci(res, into=cfg.cgroups.resources)


def resources_from_oci(res: object, where: str = "linux.resources", into: Resources | None = None,
                       devices: bool = True, validate: bool = True) -> Resources:
    """An OCI ``linux.resources`` object (parsed JSON) as :class:`Resources` (runc's ``CreateCgroupConfig``).

    ``memory.{limit,reservation,swap}`` (bytes), ``cpu.{shares,quota,period,cpus,mems}``,
    ``pids.limit``, ``blockIO.{weight,throttle*Device}`` and ``devices``; the fields it does not
    hold are left as they are in ``into`` (None in a new :class:`Resources`). As runc 1.1 does,
    0 and an empty cpu list mean "not set"; a negative ``pids.limit`` means unlimited (-1). ``runc update -r``
    takes the same object (``dct update -r``: ``devices=False``, ``validate=False``, as the
    update is checked against the container's current limits).

    Args:
        where: the prefix of the field names in error messages (``linux.resources.memory.limit``).
        into: the Resources to fill (e.g. the config's); a new one when None.
        devices: False refuses a ``devices`` list (it cannot change after create).
        validate: run :meth:`Resources.validate` at the end (its field names get ``where``).

    Raises:
        ConfigInvalid: naming the field: a wrong type, an unknown non-empty field, a bad value.
    """
    if not isinstance(res, dict):
        raise ConfigInvalid(f"{where}: must be an object")
    resources = into if into is not None else Resources()
    known = (("devices",) if devices else ()) + tuple(_OCI_RESOURCES)
    for key, why in (("hugepageLimits", "no hugetlb controller in dct's cgroup drivers yet"),
                     ("network", "no net_cls/net_prio support in dct's cgroup drivers yet")):
        if _present(res.get(key)):  # runc 1.1 fails too where the controller is not mounted
            raise ConfigInvalid(f"{where}.{key}: not supported ({why})")
    known += ("hugepageLimits", "network")
    if not devices and _present(res.get("devices")):
        raise ConfigInvalid(f"{where}.devices: the device rules are fixed at create and cannot be updated")
    _reject_unknown(res, known, f"{where}.")
    for group, names in _OCI_RESOURCES.items():
        section = _obj(res, group, f"{where}.{group}")
        known = tuple(names) + (tuple(_OCI_THROTTLES) if group == "blockIO" else ())
        _reject_unknown(section, known, f"{where}.{group}.")
        for key, attr in names.items():
            value = section.get(key)
            field_name = f"{where}.{group}.{key}"
            if value is None:
                continue
            if attr.startswith("cpuset_"):
                if not isinstance(value, str):
                    raise ConfigInvalid(f"{field_name}: must be a string such as \"0-1\"")
                if not value:
                    continue  # runc: an empty list is "not set"
            elif not _is_int(value):
                raise ConfigInvalid(f"{field_name}: {value!r} must be an integer")
            elif attr == "pids_limit" and value < 0:
                value = -1  # unlimited
            elif value == 0:
                continue  # runc 1.1 treats 0 as "not set" (a pids limit of 0 too: never lift one by accident)
            setattr(resources, attr, value)
        if group == "blockIO":
            for key, attr in _OCI_THROTTLES.items():
                if section.get(key) is not None:
                    setattr(resources, attr, _throttles(section[key], f"{where}.blockIO.{key}"))
    if devices and "devices" in res:
        raw = res["devices"]
        if not isinstance(raw, list):
            raise ConfigInvalid(f"{where}.devices: must be a list")
        rules = [_device_rule(d, f"{where}.devices[{i}]") for i, d in enumerate(raw)]
        # runc's specconv appends AllowedDevices after the user's rules; ours minus its deny-all head.
        resources.devices = rules + default_device_rules()[1:]
    if validate:
        try:
            resources.validate()
        except ConfigInvalid as err:  # resources.memory_swap is <where>.memory.swap here
            raise err.renamed(oci_names(where)) from None
    return resources


def oci_names(where: str = "linux.resources"):  # noqa: ANN201 - Callable[[str], str]
    """A renamer (see :meth:`~declarative_ct.errors.ConfigInvalid.renamed`) naming each ``resources.<field>``
    of the runtime as the OCI key: ``resources.memory_swap`` → ``<where>.memory.swap``; other names kept."""
    def name(field: str) -> str:
        attr = field.removeprefix("resources.")
        return f"{where}.{OCI_RESOURCE_NAMES[attr]}" if attr != field and attr in OCI_RESOURCE_NAMES else field
    return name


def _throttles(raw: object, where: str) -> list[ThrottleDevice]:
    if not isinstance(raw, list):
        raise ConfigInvalid(f"{where}: must be a list of {{major, minor, rate}}")
    out = []
    for i, entry in enumerate(raw):
        if not isinstance(entry, dict):
            raise ConfigInvalid(f"{where}[{i}]: must be an object")
        _reject_unknown(entry, ("major", "minor", "rate"), f"{where}[{i}].")
        values = [_uint(entry, k, f"{where}[{i}].{k}", None) for k in ("major", "minor", "rate")]
        if None in values:
            raise ConfigInvalid(f"{where}[{i}]: major, minor and rate are required")
        out.append(ThrottleDevice(*values))
    return out


def _device_rule(raw: object, where: str) -> DeviceRule:
    if not isinstance(raw, dict):
        raise ConfigInvalid(f"{where}: must be an object")
    _reject_unknown(raw, ("allow", "type", "major", "minor", "access"), f"{where}.")
    allow = raw.get("allow")
    if not isinstance(allow, bool):
        raise ConfigInvalid(f"{where}.allow: required, true or false")
    dev_type = raw.get("type", "a")
    if dev_type not in ("a", "b", "c"):
        raise ConfigInvalid(f"{where}.type: {dev_type!r} must be a, b or c")
    access = raw.get("access", "rwm")
    if not isinstance(access, str) or not access or set(access) - set("rwm"):
        raise ConfigInvalid(f"{where}.access: {access!r} must be made of r, w and m")
    major, minor = raw.get("major", -1), raw.get("minor", -1)
    for name, value in (("major", major), ("minor", minor)):
        if not _is_int(value) or value < -1:
            raise ConfigInvalid(f"{where}.{name}: {value!r} must be a non-negative integer")
    return DeviceRule(dev_type, major, minor, access, allow)


# -- small field helpers -----------------------------------------------------------------------

def _present(value: object) -> bool:
    """True unless the value is absent or empty (an empty field asks for nothing)."""
    return value not in (None, "", [], {}, False)


def _reject_unknown(obj: dict[str, object], known: tuple[str, ...], prefix: str) -> None:
    """Refuse a non-empty field of ``obj`` (at ``prefix``) that is not in ``known`` (what we
    implement) but that the runtime-spec defines there (:data:`SPEC_FIELDS`): it might be a promise
    we cannot keep. Any other property is ignored, as the spec requires."""
    spec = SPEC_FIELDS.get(_generic(prefix))
    for key, value in obj.items():
        if key not in known and _present(value) and (spec is None or key in spec):
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


def _warn_ignored(obj: dict[str, object], keys: tuple[str, ...], prefix: str) -> None:
    # Fields runc 1.1 predates (runtime-spec 1.0.2) and so ignores: said, not refused.
    for key in keys:
        if _present(obj.get(key)):
            log_warning("%s%s: not supported; ignored (as runc 1.1 does)", prefix, key, logger=__name__)


def _resolve(bundle: str, path: str) -> str:
    return os.path.normpath(os.path.join(bundle, path))


def _obj(parent: dict[str, object], key: str, where: str) -> dict[str, object]:
    value = parent.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ConfigInvalid(f"{where}: must be an object")
    return value


def _str(parent: dict[str, object], key: str, where: str) -> str:
    value = parent.get(key, "")
    if not isinstance(value, str):
        raise ConfigInvalid(f"{where}: must be a string")
    return value


def _bool(parent: dict[str, object], key: str, where: str) -> bool:
    value = parent.get(key, False)
    if not isinstance(value, bool):
        raise ConfigInvalid(f"{where}: must be true or false")
    return value


def _str_list(parent: dict[str, object], key: str, where: str) -> list[str]:
    value = parent.get(key)
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigInvalid(f"{where}: must be a list of strings")
    return list(value)


def _path_list(parent: dict[str, object], key: str, where: str) -> list[str]:
    paths = _str_list(parent, key, where)
    for p in paths:
        if not os.path.isabs(p):
            raise ConfigInvalid(f"{where}: {p!r} must be an absolute path")
    return paths


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)  # JSON true is not a number


def _is_uint(value: object) -> bool:
    return _is_int(value) and value >= 0


def _uint(parent: dict[str, object], key: str, where: str, default: int | None = 0) -> object:
    value = parent.get(key, default)
    if value is not None and not _is_uint(value):
        raise ConfigInvalid(f"{where}: {value!r} must be a non-negative integer")
    return value
