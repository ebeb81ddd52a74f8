"""The monitor's request (:mod:`.monitord`): an ``init.InitContext`` as JSON data, never a pickle.

A pickle would let whoever reaches the monitor's socket run code in it; the peer's uid is checked
(root or ours), and the request is data all the same, checked field by field (:func:`decode`),
with a malformed one answered by an error. Stdlib only at import (the monitor is lean): the
config, process and cgroup modules are loaded by :func:`decode`, in the monitor, before its fork.
"""

from __future__ import annotations

import json
import os

_INIT_FIELDS = ("config", "process", "cgroup_paths", "rootfs", "join", "unshare", "seccomp", "seccomp_flags",
                "cgroup_mounts", "hook_state")
_NAMESPACE_TYPES = ("NEWNS", "NEWUTS", "NEWIPC", "NEWNET", "NEWPID", "NEWCGROUP", "NEWUSER")


def encode(state_dir: str, ctx, inherit: dict, log: dict | None = None) -> bytes:
    """The request for the init of ``ctx`` (an ``init.InitContext``) as JSON bytes.

    Only data crosses: the config (``Config.to_dict``), the process without its live objects
    (``Process.to_dict``), the cgroup as its paths (the monitor rebuilds the manager), the
    compiled seccomp filter in hex, and ``inherit`` (``monitord._caller_context``). The fds (stdio,
    sync socket, exec fifo) go beside it as SCM_RIGHTS, in that order, followed by the read ends
    of the output pipes when ``log`` is given: ``{"path": the run's log file, "max_size": int,
    "max_files": int, "streams": ["stdout", "stderr"] (those piped, in the order of their fds)}``
    (``configs.logs.LogConfig`` and :mod:`.logcopy`).
    """
    # The config as its dataclasses, encoded in this one pass (default=vars): Config.to_dict's JSON, a third the cost.
    init = {"config": ctx.config, "process": ctx.process.to_dict(), "cgroup_paths": ctx.cgroup.paths(),
            "rootfs": ctx.rootfs, "join": [list(join) for join in ctx.join], "unshare": ctx.unshare,
            "seccomp": ctx.seccomp.hex(), "seccomp_flags": ctx.seccomp_flags,
            "cgroup_mounts": [list(m) for m in ctx.cgroup_mounts], "hook_state": ctx.hook_state}
    limits = [[res, soft, hard] for res, (soft, hard) in inherit.get("rlimits", {}).items()]
    return json.dumps({"state_dir": state_dir, "init": init, "inherit": {**inherit, "rlimits": limits},
                       "log": log}, separators=(",", ":"), default=vars).encode()


def decode(payload: bytes) -> tuple[str, object, dict, dict | None]:
    """``(state_dir, ctx, inherit, log)`` from a request made by :func:`encode`; ``ctx`` is an
    ``init.InitContext`` with a rebuilt cgroup manager, no sync socket and fds by position (stdio
    0-2, fifo 4: the child puts the received ones in); ``log`` as given to :func:`encode` (checked:
    an absolute ``….log`` path, a valid ``LogConfig``, distinct stream names) or None.

    Raises:
        ValueError: not JSON, or a field missing or of the wrong type (named).
        ConfigInvalid: a malformed config or process, or log rotation values (naming the field).
    """
    from ..configs import Config
    from . import cgroups, init
    from .process import Process

    request = json.loads(payload)
    if not isinstance(request, dict) or not isinstance(request.get("init"), dict):
        raise ValueError("request: not an object with an init")
    state_dir, fields, inherit = request.get("state_dir"), request["init"], request.get("inherit", {})
    if not isinstance(state_dir, str) or not os.path.isabs(state_dir):
        raise ValueError(f"request.state_dir: {state_dir!r} is not an absolute path")
    if set(fields) != set(_INIT_FIELDS):
        raise ValueError(f"request.init: fields {sorted(fields)}, wanted {sorted(_INIT_FIELDS)}")

    def check(ok: bool, name: str) -> None:
        if not ok:
            raise ValueError(f"request.init.{name}: malformed ({fields[name]!r:.80})")

    def pairs(name: str) -> list[tuple[str, str]]:
        value = fields[name]
        check(isinstance(value, list) and all(isinstance(p, list) and len(p) == 2 and all(isinstance(x, str) for x in p)
                                              for p in value), name)
        return [(a, b) for a, b in value]

    paths = fields["cgroup_paths"]
    check(isinstance(paths, dict) and bool(paths) and all(isinstance(k, str) and isinstance(v, str) and
                                                          os.path.isabs(v) for k, v in paths.items()), "cgroup_paths")
    join = pairs("join")
    check(all(ns_type in _NAMESPACE_TYPES for ns_type, _ in join), "join")
    for name in ("unshare", "seccomp_flags"):
        check(type(fields[name]) is int and fields[name] >= 0, name)
    check(isinstance(fields["rootfs"], str) and os.path.isabs(fields["rootfs"]), "rootfs")
    check(isinstance(fields["seccomp"], str), "seccomp")
    try:
        seccomp = bytes.fromhex(fields["seccomp"])
    except ValueError:
        raise ValueError("request.init.seccomp: not a hex string") from None
    check(fields["hook_state"] is None or isinstance(fields["hook_state"], dict), "hook_state")
    config = Config.from_dict(fields["config"])
    process = Process.from_dict(fields["process"])
    check(process.init and not process.extra_files, "process")  # the monitor forks inits, with a fixed set of fds
    ctx = init.InitContext(config=config, process=process, sync=None, stdio=(0, 1, 2), fifo_fd=4,
                           cgroup=cgroups.manager_from_paths(paths, config.cgroups.resources.devices),
                           rootfs=fields["rootfs"], join=join, unshare=fields["unshare"],
                           seccomp=seccomp, seccomp_flags=fields["seccomp_flags"],
                           cgroup_mounts=pairs("cgroup_mounts"), hook_state=fields["hook_state"])
    if (not isinstance(inherit, dict) or not isinstance(inherit.get("rlimits", []), list) or
            type(inherit.get("umask", 0)) is not int or not isinstance(inherit.get("oom_score_adj", ""), str)):
        raise ValueError("request.inherit: malformed")
    try:
        rlimits = {int(res): (int(soft), int(hard)) for res, soft, hard in inherit.get("rlimits", [])}
    except (TypeError, ValueError):
        raise ValueError("request.inherit.rlimits: malformed") from None
    return state_dir, ctx, {**inherit, "rlimits": rlimits}, _log(request.get("log"))


def _log(log: object) -> dict | None:
    if log is None:
        return None
    from ..configs.logs import LogConfig

    if not isinstance(log, dict) or set(log) != {"path", "max_size", "max_files", "streams"}:
        raise ValueError(f"request.log: malformed ({log!r:.80})")
    path, streams = log["path"], log["streams"]
    if not isinstance(path, str) or not os.path.isabs(path) or not path.endswith(".log") or "\0" in path:
        raise ValueError(f"request.log.path: {path!r:.80} is not an absolute path to a .log file")
    if (not isinstance(streams, list) or not streams or len(set(streams)) != len(streams) or
            not all(s in ("stdout", "stderr") for s in streams)):
        raise ValueError(f"request.log.streams: {streams!r:.80} is not a list of stdout/stderr")
    LogConfig.from_dict({"max_size": log["max_size"], "max_files": log["max_files"]})
    return log
