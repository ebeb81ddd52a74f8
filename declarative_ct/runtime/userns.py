"""User namespaces: the parent's side (runc's ``nsexec`` stage 0 on ``SYNC_USERMAP_PLS``).

Stage 1 unshares ``CLONE_NEWUSER`` and asks for its maps; only a process holding
``CAP_SETUID``/``CAP_SETGID`` over the parent user namespace may write a map with more than its own
id, so the parent (the caller, or the root's monitor) writes them. Stdlib only.
"""

from __future__ import annotations

import errno
import os

from ..configs import Config, IDMap


def map_lines(maps: list[IDMap]) -> bytes:
    """``maps`` as ``/proc/<pid>/uid_map`` takes them: ``"<container id> <host id> <size>\\n"`` each."""
    return "".join(f"{m.container_id} {m.host_id} {m.size}\n" for m in maps).encode()


def write_id_maps(pid: int, config: Config) -> None:
    """Write ``config.uid_mappings`` and ``gid_mappings`` for the process ``pid`` (which has just
    unshared its user namespace), each in one ``write`` as the kernel requires.

    ``setgroups`` is left as it is ("allow"): a privileged writer needs no "deny", and the
    container's root may then set its groups, as under runc.

    Raises:
        OSError: the kernel refused a map (the message names the file and the lines; EPERM: a
            host id the caller may not map, EINVAL: overlapping or malformed ranges).
    """
    for name, maps in (("uid_map", config.uid_mappings), ("gid_map", config.gid_mappings)):
        data = map_lines(maps)
        try:
            fd = os.open(f"/proc/{pid}/{name}", os.O_WRONLY | os.O_CLOEXEC)
            try:
                if os.write(fd, data) != len(data):
                    raise OSError(errno.EIO, "short write")
            finally:
                os.close(fd)
        except OSError as err:
            lines = data.decode().strip().replace("\n", "; ")
            raise OSError(err.errno, f"user namespace: writing {name} ({lines}): {err.strerror or err}") from None


def host_id(maps: list[IDMap], container_id: int) -> int | None:
    """The host id that ``container_id`` maps to through ``maps`` (libcontainer's ``HostUID``), or None."""
    for m in maps:
        if m.container_id <= container_id < m.container_id + m.size:
            return m.host_id + container_id - m.container_id
    return None
