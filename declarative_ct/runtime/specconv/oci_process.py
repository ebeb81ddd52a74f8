"""The OCI ``process`` object → :class:`~declarative_ct.runtime.process.Process` (runc's ``newProcess``):
args, env, user, capabilities, rlimits and console size, for a bundle's init and ``dct exec --process``."""

from __future__ import annotations

import dataclasses
import os
import resource

from ...configs import CAPABILITIES, Capabilities, Config, Rlimit
from ...errors import ConfigInvalid
from ..process import Process
from .fields import (CAPABILITY_SETS, EXTRA_RLIMITS, IGNORED_PROCESS_KEYS, PROCESS_KEYS, UNSUPPORTED_PROCESS_KEYS,
                     get_bool, get_obj, get_str_list, get_uint, is_int, is_uint, present, reject_unknown, warn_ignored)


def init_process(raw: object, cfg: Config) -> Process:
    """The OCI ``process`` object as the init :class:`Process` (runc's ``newProcess``); ``cfg`` gets its
    ``noNewPrivileges``, ``oomScoreAdj`` and capabilities. Raises ConfigInvalid naming the field."""
    if not isinstance(raw, dict):
        raise ConfigInvalid("process: must be an object (with at least args)")
    reject_unknown(raw, PROCESS_KEYS, "process.")
    terminal = get_bool(raw, "terminal", "process.terminal")
    console_size = _console_size(raw.get("consoleSize"))
    for key in UNSUPPORTED_PROCESS_KEYS:
        if present(raw.get(key)):
            raise ConfigInvalid(f"process.{key}: not supported" + (
                " (this host has no AppArmor or SELinux; runc fails on it too)" if key != "commandLine" else ""))
    warn_ignored(raw, IGNORED_PROCESS_KEYS, "process.")

    args = raw.get("args")
    if not isinstance(args, list) or not args or not all(isinstance(a, str) for a in args):
        raise ConfigInvalid("process.args: must be a non-empty list of strings")
    env = get_str_list(raw, "env", "process.env")
    for entry in env:
        if "=" not in entry or entry.startswith("="):
            raise ConfigInvalid(f"process.env: {entry!r} is not of the form KEY=value")
    cwd = raw.get("cwd", "/")
    if not isinstance(cwd, str) or not os.path.isabs(cwd):
        raise ConfigInvalid(f"process.cwd: {cwd!r} must be an absolute path")

    user = get_obj(raw, "user", "process.user")
    reject_unknown(user, ("uid", "gid", "umask", "additionalGids", "username"), "process.user.")
    if present(user.get("username")):
        raise ConfigInvalid("process.user.username: not supported (give uid and gid)")
    gids = user.get("additionalGids", [])
    if not isinstance(gids, list) or not all(is_uint(g) for g in gids):
        raise ConfigInvalid("process.user.additionalGids: must be a list of non-negative integers")
    umask = user.get("umask")
    if umask is not None and not (is_uint(umask) and umask <= 0o777):
        raise ConfigInvalid(f"process.user.umask: {umask!r} must be an integer in [0, 0o777]")

    oom = raw.get("oomScoreAdj")
    if oom is not None and not is_int(oom):
        raise ConfigInvalid(f"process.oomScoreAdj: {oom!r} must be an integer")

    # The container config carries the defaults (runc copies these onto the init Process too).
    cfg.capabilities = _capabilities(raw.get("capabilities"))
    cfg.rlimits = _rlimits(raw.get("rlimits"))
    cfg.no_new_privileges = get_bool(raw, "noNewPrivileges", "process.noNewPrivileges")
    cfg.oom_score_adj = oom
    return Process(
        args=list(args), env=env, cwd=os.path.normpath(cwd),
        uid=get_uint(user, "uid", "process.user.uid"), gid=get_uint(user, "gid", "process.user.gid"),
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
    reject_unknown(raw, ("height", "width"), "process.consoleSize.")
    size = []
    for key in ("height", "width"):
        value = raw.get(key, 0)
        if not is_uint(value) or value > 0xFFFF:
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
    process = init_process(raw, Config(rootfs="/"))
    given = raw.get  # a dict: init_process checked it
    return dataclasses.replace(process, init=False,
                               capabilities=process.capabilities if given("capabilities") is not None else None,
                               rlimits=process.rlimits if given("rlimits") is not None else None)


def _capabilities(raw: object) -> Capabilities:
    # Absent means no capabilities at all, as in runc: the spec is explicit.
    caps = Capabilities(Bounding=[], Effective=[], Permitted=[], Inheritable=[], Ambient=[])
    if raw is None:
        return caps
    if not isinstance(raw, dict):
        raise ConfigInvalid("process.capabilities: must be an object")
    reject_unknown(raw, tuple(CAPABILITY_SETS), "process.capabilities.")
    for oci_name, attr in CAPABILITY_SETS.items():
        names = get_str_list(raw, oci_name, f"process.capabilities.{oci_name}")
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
        reject_unknown(rl, ("type", "hard", "soft"), where + ".")
        name = rl.get("type")
        number = _rlimit_number(name)
        if number is None:
            raise ConfigInvalid(f"{where}.type: unknown rlimit {name!r}")
        if name in seen:
            raise ConfigInvalid(f"{where}.type: {name} listed twice")
        seen.add(name)
        hard, soft = get_uint(rl, "hard", f"{where}.hard", None), get_uint(rl, "soft", f"{where}.soft", None)
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
