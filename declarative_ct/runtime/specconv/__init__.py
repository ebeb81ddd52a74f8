"""OCI bundle ``config.json`` ↔ our ``Config``: runc's ``libcontainer/specconv``.

:func:`example_spec` is what ``dct spec`` writes (runc's ``specconv.Example``) and
:func:`load_bundle` turns a bundle's ``config.json`` into a :class:`Config` plus the init
:class:`Process` (runc's ``specconv.CreateLibcontainerConfig`` and ``newProcess``).

The conversion is strict on purpose: a field of the runtime-spec that we do not implement is an
error naming it, never silently dropped, because most of them (LSM labels, id mappings, seccomp
notifications…) are security or isolation promises the user would believe were kept. A property
the runtime-spec does not define (:data:`SPEC_FIELDS`) is ignored, as the spec requires of a
runtime, so that a config written for a newer spec or with a client's extras still runs. Stdlib only.

This module converts; :mod:`.fields` holds the runtime-spec's field tables and the strict JSON
readers, :mod:`.resources` the ``linux.resources`` conversion (also ``dct update -r``'s), and
:mod:`.example` the default spec (loaded on first use of :func:`example_spec`).
"""

from __future__ import annotations

import json
import os

from ...configs import HOST_ROOTFS, HOOK_NAMES, Config, Device, Hook, IDMap, Mount, Namespace, namespace_path_problem
from ...configs.mountflags import EXT_COPYUP, MS_BIND, OPTION_FLAGS, PROPAGATION_FLAGS, RECURSIVE_ATTR_FLAGS
from ...configs.seccomp import from_oci as seccomp_from_oci
from ...errors import ConfigInvalid, log_warning
from ..process import Process
from .fields import (ACCEPTED_ROOTFS_PROPAGATION, CAPABILITY_SETS, DEVICE_TYPES, EXTRA_RLIMITS, IGNORED_LINUX_KEYS,
                     IGNORED_PROCESS_KEYS, LINUX_KEYS, NAMESPACE_MAP, PROCESS_KEYS, SPEC_FIELDS, TOP_LEVEL_KEYS,
                     UNSUPPORTED_MOUNT_OPTIONS, UNSUPPORTED_PROCESS_KEYS, get_bool, get_obj, get_path_list, get_str,
                     get_str_list, get_uint, is_int, present, reject_unknown, resolve, warn_ignored)
from .oci_process import exec_process, init_process
from .resources import OCI_RESOURCE_NAMES, oci_names, resources_from_oci

__all__ = ["ACCEPTED_ROOTFS_PROPAGATION", "CAPABILITY_SETS", "DEVICE_TYPES", "EXTRA_RLIMITS", "IGNORED_LINUX_KEYS",
           "IGNORED_PROCESS_KEYS", "LINUX_KEYS", "NAMESPACE_MAP", "OCI_RESOURCE_NAMES", "PROCESS_KEYS", "SPEC_FIELDS",
           "TOP_LEVEL_KEYS", "UNSUPPORTED_MOUNT_OPTIONS", "UNSUPPORTED_PROCESS_KEYS", "example_spec", "exec_process",
           "load_bundle", "oci_names", "resources_from_oci"]


def __getattr__(name: str) -> object:
    """:func:`example_spec` from :mod:`.example`, loaded on first use (PEP 562): only ``dct spec`` needs it."""
    if name == "example_spec":
        from .example import example_spec

        return example_spec
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


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

    root = get_obj(spec, "root", "root")
    reject_unknown(root, ("path", "readonly"), "root.")
    root_path = root.get("path")
    if not isinstance(root_path, str) or not root_path:
        raise ConfigInvalid("root.path: must be a non-empty string")
    linux = get_obj(spec, "linux", "linux")

    cfg = Config(
        # "host" is our extension: the read-only host view (configs.HOST_ROOTFS).
        rootfs=HOST_ROOTFS if root_path == HOST_ROOTFS else resolve(bundle, root_path),
        readonlyfs=get_bool(root, "readonly", "root.readonly"),
        hostname=get_str(spec, "hostname", "hostname"),
        domainname=get_str(spec, "domainname", "domainname"),
        mounts=_mounts(spec.get("mounts"), bundle),
        labels=[f"bundle={bundle}"] + _annotations(spec.get("annotations")),
        version=version,
        hooks=_hooks(spec.get("hooks")),
    )
    process = init_process(spec.get("process"), cfg)
    _linux(linux, cfg)
    return cfg, process


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
    reject_unknown(raw, ("destination", "type", "source", "options", "uidMappings", "gidMappings"), f"{where}.")
    for key in ("uidMappings", "gidMappings"):
        if present(raw.get(key)):
            raise ConfigInvalid(f"{where}.{key}: idmapped mounts are not supported")
    dest = raw.get("destination")
    if not isinstance(dest, str) or not os.path.isabs(dest):
        raise ConfigInvalid(f"{where}.destination: {dest!r} must be an absolute path")
    if os.path.normpath(dest) == "/":
        raise ConfigInvalid(f"{where}.destination: cannot mount over the container's root (that is root.path)")
    fstype = get_str(raw, "type", f"{where}.type")
    source = get_str(raw, "source", f"{where}.source")

    flags, propagation, data = 0, [], []
    attr_set = attr_clr = extensions = 0
    for opt in get_str_list(raw, "options", f"{where}.options"):
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
        return Mount(resolve(bundle, source), dest, "bind", flags | MS_BIND, "", propagation, **extra)
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
    reject_unknown(linux, LINUX_KEYS, "linux.")
    warn_ignored(linux, IGNORED_LINUX_KEYS, "linux.")
    if present(linux.get("mountLabel")):
        raise ConfigInvalid("linux.mountLabel: not supported (this host has no SELinux; runc fails on it too)")
    cfg.devices = _devices(linux.get("devices"))
    cfg.namespaces = _namespaces(linux.get("namespaces"))
    cfg.uid_mappings = _id_mappings(linux.get("uidMappings"), "linux.uidMappings")
    cfg.gid_mappings = _id_mappings(linux.get("gidMappings"), "linux.gidMappings")
    cfg.validate_id_mappings(("linux.uidMappings", "linux.gidMappings"))
    # Absent lists mean none (as runc): the spec, not our defaults, is the source of truth.
    cfg.mask_paths = get_path_list(linux, "maskedPaths", "linux.maskedPaths")
    cfg.readonly_paths = get_path_list(linux, "readonlyPaths", "linux.readonlyPaths")
    sysctl = linux.get("sysctl") or {}
    if not isinstance(sysctl, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in sysctl.items()):
        raise ConfigInvalid("linux.sysctl: must be an object of string values")
    cfg.sysctl = dict(sysctl)
    resources_from_oci(get_obj(linux, "resources", "linux.resources"), into=cfg.cgroups.resources)
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
        reject_unknown(dev, ("path", "type", "major", "minor", "fileMode", "uid", "gid"), f"{where}.")
        path = dev.get("path")
        if not isinstance(path, str) or not os.path.isabs(path) or os.path.normpath(path) == "/":
            raise ConfigInvalid(f"{where}.path: {path!r} must be an absolute path below /")
        dev_type = dev.get("type")
        if dev_type not in DEVICE_TYPES:
            raise ConfigInvalid(f"{where}.type: {dev_type!r} must be c, b, u or p")
        numbers = {k: get_uint(dev, k, f"{where}.{k}", None) for k in ("major", "minor")}
        if dev_type != "p" and None in numbers.values():
            raise ConfigInvalid(f"{where}: major and minor are required for a {dev_type} device")
        mode = get_uint(dev, "fileMode", f"{where}.fileMode", 0o666)  # its file type bits are dropped, as runc
        out.append(Device(os.path.normpath(path), DEVICE_TYPES[dev_type], numbers["major"] or 0,
                          numbers["minor"] or 0, mode & 0o7777, get_uint(dev, "uid", f"{where}.uid"),
                          get_uint(dev, "gid", f"{where}.gid")))
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
            if present(hooks):
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
            reject_unknown(hook, ("path", "args", "env", "timeout"), f"{where}.")
            path = hook.get("path")
            if not isinstance(path, str) or not os.path.isabs(path):
                raise ConfigInvalid(f"{where}.path: {path!r} must be an absolute path")
            timeout = hook.get("timeout")
            if timeout is not None and (not is_int(timeout) or timeout <= 0):
                raise ConfigInvalid(f"{where}.timeout: {timeout!r} must be a positive number of seconds")
            env = get_str_list(hook, "env", f"{where}.env")
            for entry in env:
                if "=" not in entry or entry.startswith("="):
                    raise ConfigInvalid(f"{where}.env: {entry!r} is not of the form KEY=value")
            parsed.append(Hook(path, get_str_list(hook, "args", f"{where}.args"), env, timeout))
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
        reject_unknown(ns, ("type", "path"), f"{where}.")
        oci_type = ns.get("type")
        if oci_type == "time":
            raise ConfigInvalid(f"{where}.type: time namespaces are not supported")
        if oci_type not in NAMESPACE_MAP:
            raise ConfigInvalid(f"{where}.type: unknown namespace type {oci_type!r}")
        ns_type = NAMESPACE_MAP[oci_type]
        if any(n.type == ns_type for n in out):
            raise ConfigInvalid(f"{where}.type: {oci_type} listed twice")
        path = get_str(ns, "path", f"{where}.path")
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
        reject_unknown(m, ("containerID", "hostID", "size"), f"{where}[{i}].")
        out.append(IDMap(*(get_uint(m, key, f"{where}[{i}].{key}", None) for key in ("containerID", "hostID", "size"))))
        if None in (out[-1].container_id, out[-1].host_id, out[-1].size):
            raise ConfigInvalid(f"{where}[{i}]: containerID, hostID and size are required")
    return out


