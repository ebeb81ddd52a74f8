"""The default OCI ``config.json``: what ``dct spec`` writes (runc's ``specconv/example.go``)."""

from __future__ import annotations

from ...configs import DEFAULT_ENV, DEFAULT_MASK_PATHS, DEFAULT_READONLY_PATHS, OCI_VERSION


def example_spec() -> dict[str, object]:
    """The default OCI ``config.json`` that ``dct spec`` writes (runc's ``specconv.Example``).

    Differences from runc: ``terminal`` is false (runc's is true: the default spec then needs a
    console socket or a foreground run on a terminal), the hostname is ``dct``,
    the cgroup namespace is always listed, and ``linux.seccomp`` holds the default profile (docker's
    semantics) resolved for the spec's capabilities. Returns a new dict on every call, so callers may edit it.
    """
    from ..seccomp_profile import default_profile

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
