"""Namespaces and user-namespace id maps in the container ``Config`` (libcontainer's
``configs/namespaces_linux.go``): the types, their /proc names, and the check of a namespace path. Stdlib only."""

from __future__ import annotations

import os
from dataclasses import dataclass

# Namespace types as libcontainer names them (configs/namespaces_linux.go), in its canonical order.
NAMESPACE_TYPES = ("NEWUSER", "NEWIPC", "NEWUTS", "NEWNET", "NEWPID", "NEWNS", "NEWCGROUP")
NAMESPACE_PROC_NAMES = {"NEWUSER": "user", "NEWIPC": "ipc", "NEWUTS": "uts", "NEWNET": "net",
                        "NEWPID": "pid", "NEWNS": "mnt", "NEWCGROUP": "cgroup"}
SUPPORTED_NAMESPACES = frozenset(NAMESPACE_TYPES)
MAX_ID_MAPS = 340  # the kernel's limit of lines in uid_map/gid_map (Linux 4.15+)
MAX_ID = 2**32 - 1
"""Ids are below this: it is ``(uid_t)-1``, which the set*id(2) calls read as "leave unchanged"."""
_CLONE_NEW = {"NEWNS": 0x00020000, "NEWCGROUP": 0x02000000, "NEWUTS": 0x04000000, "NEWIPC": 0x08000000,
              "NEWUSER": 0x10000000, "NEWPID": 0x20000000, "NEWNET": 0x40000000}
_NS_WORDS = {"NEWNS": "mount", "NEWCGROUP": "cgroup", "NEWUTS": "uts", "NEWIPC": "ipc", "NEWUSER": "user",
             "NEWPID": "pid", "NEWNET": "network"}  # the OCI names, for messages
_NS_GET_NSTYPE = 0xB703  # ioctl(2) on an nsfs file: its CLONE_NEW* type (Linux 4.11)


def namespace_path_problem(ns_type: str, path: str) -> str | None:
    """Why ``path`` cannot be joined as a namespace of ``ns_type`` (``NEWNET``…), or None when it
    is a namespace file of that type: it cannot be opened (the reason), is not a namespace file,
    or is one of another type (``ioctl(NS_GET_NSTYPE)``)."""
    import fcntl  # only configs that join a namespace by path pay for it

    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError as err:
        return f"cannot be opened: {err.strerror}"
    try:
        try:
            found = fcntl.ioctl(fd, _NS_GET_NSTYPE)
        except OSError:
            return "is not a namespace file (/proc/<pid>/ns/... or a bind mount of one)"
    finally:
        os.close(fd)
    if found != _CLONE_NEW[ns_type]:
        other = next((word for t, word in _NS_WORDS.items() if _CLONE_NEW[t] == found), hex(found))
        return f"is a {other} namespace, not a {_NS_WORDS[ns_type]} one"
    return None


@dataclass
class Namespace:
    """``configs.Namespace``: ``type`` is NEWPID/NEWNS/…; a non-empty ``path`` joins that namespace."""

    type: str
    path: str = ""


@dataclass
class IDMap:
    """``configs.IDMap``: ``size`` ids from ``container_id`` in the container's user namespace are
    ``host_id`` … on the host (one line of ``/proc/<pid>/uid_map``; OCI ``containerID``/``hostID``/``size``)."""

    container_id: int
    host_id: int
    size: int


# The IPC namespace's sysctls (runc's validator's list; plus every fs.mqueue.* key).
IPC_SYSCTLS = frozenset({"kernel.msgmax", "kernel.msgmnb", "kernel.msgmni", "kernel.sem", "kernel.shmall",
                         "kernel.shmmax", "kernel.shmmni", "kernel.shm_rmid_forced"})
