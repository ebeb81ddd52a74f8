"""``dct spec``: a default OCI bundle config (runc's, or its rootless shape)."""

from __future__ import annotations

import argparse
import json
import os

from ..errors import ContainerError
from ..runtime import specconv


def cmd_spec(args: argparse.Namespace) -> int:
    """``dct spec``: write ``specconv.example_spec()`` as ``<bundle>/config.json`` (refuses to overwrite);
    ``--rootless``: runc's rootless shape of it (:func:`rootless_spec`)."""
    path = os.path.join(args.bundle, "config.json")
    if os.path.exists(path):
        raise ContainerError(f"{path} exists: remove it first")
    spec = specconv.example_spec()
    if args.rootless:
        rootless_spec(spec)
    try:
        with open(path, "w") as f:
            json.dump(spec, f, indent="\t")
            f.write("\n")
    except OSError as err:
        raise ContainerError(f"cannot write {path}: {err.strerror}") from None
    return 0


def rootless_spec(spec: dict) -> None:
    """Change ``spec`` (an :func:`specconv.example_spec`) in place into runc's ``spec --rootless`` shape:
    a user namespace mapping container root to the caller's uid and gid (one id each), no network or
    cgroup namespace, no ``linux.resources``, ``/sys`` bound from the host (a user namespace may not
    mount sysfs without its own network namespace) and ``/dev/pts`` without ``gid=5``.

    dct writes it for runc's callers; it runs containers as root only (create refuses otherwise).
    """
    linux = spec["linux"]
    linux["namespaces"] = [ns for ns in linux["namespaces"] if ns["type"] not in ("network", "cgroup")]
    linux["namespaces"].append({"type": "user"})
    linux["uidMappings"] = [{"containerID": 0, "hostID": os.geteuid(), "size": 1}]
    linux["gidMappings"] = [{"containerID": 0, "hostID": os.getegid(), "size": 1}]
    linux.pop("resources", None)
    mounts = []
    for mount in spec["mounts"]:
        if mount["destination"] == "/sys":
            mount = {"destination": "/sys", "type": "none", "source": "/sys",
                     "options": ["rbind", "nosuid", "noexec", "nodev", "ro"]}
        elif mount["destination"] == "/dev/pts":
            mount = dict(mount, options=[o for o in mount["options"] if not o.startswith("gid=")])
        elif mount["type"] == "cgroup":
            continue
        mounts.append(mount)
    spec["mounts"] = mounts
