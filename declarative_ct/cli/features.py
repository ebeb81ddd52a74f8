"""``dct features`` and ``dct --version``: what this runtime is and implements, as runc prints them."""

from __future__ import annotations

import argparse
import json
import os
import sys

from ..runtime import specconv


def version_text() -> str:
    """``dct -v``: runc's lines, ``dct version X``, ``commit: <git>``, ``spec: <runtime-spec version>``,
    then ``python:`` (runc says ``go:``) and ``libseccomp:`` when the library loads."""
    import platform

    from .. import __version__
    from ..configs import OCI_VERSION

    lines = [f"dct version {__version__}", f"commit: {_commit()}", f"spec: {OCI_VERSION}",
             f"python: {platform.python_version()}"]
    libseccomp = _libseccomp_version()
    if libseccomp:
        lines.append(f"libseccomp: {libseccomp}")
    return "\n".join(lines) + "\n"


def _commit() -> str:
    """The git commit of this checkout (``git describe``-like, ``-dirty`` when changed); ``unknown``
    for an installed copy or without git."""
    import subprocess

    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    if not os.path.exists(os.path.join(repo, ".git")):
        return "unknown"
    try:
        out = subprocess.run(["git", "-C", repo, "describe", "--always", "--dirty"], capture_output=True,
                             text=True, timeout=5, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    return out.stdout.strip() if out.returncode == 0 and out.stdout.strip() else "unknown"


def _libseccomp_version() -> str:
    """``major.minor.micro`` of the system's libseccomp (``seccomp_version()``); '' when it cannot load."""
    import ctypes

    try:
        lib = ctypes.CDLL("libseccomp.so.2")
        lib.seccomp_version.restype = ctypes.POINTER(ctypes.c_uint * 3)
        major, minor, micro = lib.seccomp_version().contents
    except (OSError, AttributeError, ValueError):
        return ""
    return f"{major}.{minor}.{micro}"


def features() -> dict:
    """runc's ``features`` JSON (runtime-spec ``features.md``): what this runtime implements.

    ``ociVersionMin``/``Max``: the config versions we read; ``mountOptions``: the options a mount
    may carry (flags and propagation; other words are filesystem data, passed as they are);
    ``linux.namespaces``/``capabilities``: the ones we create and set; cgroup v1 and v2 drivers,
    no systemd one; seccomp with the actions, operators and architectures we compile; no
    AppArmor or SELinux; ``hooks``: the six hook points. Derived from the tables the config is
    checked with, so it says what a config.json is accepted with.
    """
    from ..configs import CAPABILITIES, HOOK_NAMES, OCI_VERSION
    from ..configs import seccomp as seccomp_config
    from ..configs.mountflags import OPTION_FLAGS, PROPAGATION_FLAGS, RECURSIVE_ATTR_FLAGS

    options = sorted((set(OPTION_FLAGS) | set(PROPAGATION_FLAGS) | set(RECURSIVE_ATTR_FLAGS) | {"tmpcopyup"})
                     - specconv.UNSUPPORTED_MOUNT_OPTIONS)
    libseccomp = _libseccomp_version()
    out = {
        "ociVersionMin": "1.0.0",
        "ociVersionMax": OCI_VERSION,
        "hooks": list(HOOK_NAMES),
        "mountOptions": options,
        "linux": {
            "namespaces": sorted(specconv.NAMESPACE_MAP),
            "capabilities": sorted(CAPABILITIES, key=CAPABILITIES.__getitem__),
            "cgroup": {"v1": True, "v2": True, "systemd": False, "systemdUser": False},
            "seccomp": {"enabled": bool(libseccomp), "actions": sorted(seccomp_config.ACTIONS),
                        "operators": sorted(seccomp_config.OPERATORS),
                        "archs": sorted(seccomp_config.ARCHITECTURES)},
            "apparmor": {"enabled": False},
            "selinux": {"enabled": False},
        },
        "annotations": {"org.declarative-ct.version": _package_version()},
    }
    if libseccomp:
        out["annotations"]["io.github.seccomp.libseccomp.version"] = libseccomp
    return out


def _package_version() -> str:
    from .. import __version__

    return __version__


def cmd_features(args: argparse.Namespace) -> int:
    """``dct features``: :func:`features` as indented JSON (as ``runc features``)."""
    sys.stdout.write(json.dumps(features(), indent=4) + "\n")
    return 0
