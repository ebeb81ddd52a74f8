"""Mounts in the container ``Config`` (libcontainer's ``configs/mount.go``): :class:`Mount` and
``runc spec``'s standard ones. The flag numbers are in :mod:`.mountflags`. Stdlib only."""

from __future__ import annotations

from dataclasses import dataclass, field

from .mountflags import MS_NODEV, MS_NOEXEC, MS_NOSUID, MS_RDONLY, MS_STRICTATIME


@dataclass
class Mount:
    """``configs.Mount``. ``device`` is the filesystem type (``bind`` for bind mounts); ``flags`` are MS_* bits.

    ``rec_attr_set``/``rec_attr_clr`` are ``MOUNT_ATTR_*`` bits applied with ``mount_setattr(AT_RECURSIVE)``
    to the mount and all below it (runc's ``RecAttr``: ``rro``, ``rnosuid``…); ``extensions`` holds
    ``EXT_COPYUP`` (``tmpcopyup``). A ``cgroup`` (or ``cgroup2``) mount gets the container's own cgroups.
    """

    source: str
    destination: str
    device: str = "bind"
    flags: int = 0
    data: str = ""
    propagation_flags: list[int] = field(default_factory=list)
    rec_attr_set: int = 0
    rec_attr_clr: int = 0
    extensions: int = 0


def default_mounts() -> list[Mount]:
    """The standard mounts of ``runc spec`` (/proc, /dev, /dev/pts, /dev/shm, /dev/mqueue, /sys read-only)."""
    nse = MS_NOSUID | MS_NOEXEC | MS_NODEV
    return [
        Mount("proc", "/proc", "proc", nse),
        Mount("tmpfs", "/dev", "tmpfs", MS_NOSUID | MS_STRICTATIME, "mode=755,size=65536k"),
        Mount("devpts", "/dev/pts", "devpts", MS_NOSUID | MS_NOEXEC, "newinstance,ptmxmode=0666,mode=0620,gid=5"),
        Mount("shm", "/dev/shm", "tmpfs", nse, "mode=1777,size=65536k"),
        Mount("mqueue", "/dev/mqueue", "mqueue", nse),
        Mount("sysfs", "/sys", "sysfs", nse | MS_RDONLY),
    ]
