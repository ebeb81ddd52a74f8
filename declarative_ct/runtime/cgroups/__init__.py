"""cgroup managers: one protocol, a v1 and a v2 driver, chosen from ``/proc/self/mountinfo``.

A manager creates the container's cgroup, places init in it before it runs any code, applies
resource limits (all or nothing: :meth:`Manager.set`), reads statistics, lists processes,
freezes/thaws and removes the cgroup; the v1 driver also applies the device allow-list.
"""

from __future__ import annotations

import os
import select
import threading

from . import fs
from .fs import ROOT_PARENT_PREFIX  # noqa: F401 - the runtime names per-root parents with it

V2_MOUNT_ENV = "DCT_CGROUP_V2_MOUNT"

FROZEN = "FROZEN"
FREEZING = "FREEZING"
THAWED = "THAWED"


class Manager:
    """What the runtime needs from a cgroup driver (runc's ``cgroups.Manager``, trimmed).

    The base class of :class:`~.v1.V1Manager` and :class:`~.v2.V2Manager`; every method is
    implemented by both (a plain base class, not ``typing.Protocol``: the CLI must start fast).
    """

    def enforces_devices(self) -> bool:
        """True when the driver applies the config's device rules (v1 ``devices`` controller)."""
        raise NotImplementedError

    def create(self) -> None:
        """Make the cgroup (every hierarchy); raises SystemError if it exists with processes."""
        raise NotImplementedError

    def add(self, pid: int) -> None:
        """Move ``pid`` into the cgroup (``cgroup.procs``); 0 is the calling process (the kernel's rule)."""
        raise NotImplementedError

    def paths(self) -> dict[str, str]:
        """``{controller: dir}`` on v1, ``{"": dir}`` on v2: libcontainer's ``cgroup_paths``."""
        raise NotImplementedError

    def exists(self) -> bool:
        """True while the cgroup directory exists."""
        raise NotImplementedError

    def get_all_pids(self) -> list[int]:
        """Host PIDs in the cgroup and its descendants; ``[]`` if it is gone."""
        raise NotImplementedError

    def freeze(self) -> None:
        """Freeze every task; raises SystemError if the freezer never settles (it thaws first)."""
        raise NotImplementedError

    def thaw(self) -> None:
        """Thaw every task."""
        raise NotImplementedError

    def freezer_state(self) -> str:
        """``FROZEN``, ``FREEZING`` or ``THAWED`` (THAWED if the cgroup is gone)."""
        raise NotImplementedError

    # (the file that reads 1 in a cgroup frozen by a write to itself, the file that thaws it, the value)
    _SELF_FREEZE: tuple[str, str, str]

    def _freezer_dir(self) -> str | None:
        """The directory of this cgroup's freezer; None without one."""
        raise NotImplementedError

    def thaw_descendants(self) -> None:
        """Thaw every cgroup below this one that was frozen on its own (a process inside moved into
        ``sub/`` and froze it): thawing this cgroup does not reach those, and their tasks act on no
        signal, SIGKILL included, until thawed (runc#2105). Missing files or cgroups are skipped.

        Raises:
            SystemError: the kernel refused a thaw of a cgroup that still exists.
        """
        top = self._freezer_dir()
        if top is not None:
            fs.thaw_self_frozen(top, *self._SELF_FREEZE)

    def can_freeze(self) -> bool:
        """True when this cgroup has a freezer (v1 ``freezer`` controller, v2 always)."""
        return True

    def kill_all(self, sig: int) -> None:
        """Send ``sig`` to every process of the cgroup, frozen meanwhile so none can fork away.

        A paused cgroup stays paused, except after SIGKILL, which frozen tasks only act on once
        thawed (runc's ``signalAllProcesses``); SIGKILL thaws frozen descendants too
        (:meth:`thaw_descendants`), else their tasks would never die.
        """
        import signal

        was = self.freezer_state() if self.can_freeze() and self.exists() else None
        if was == THAWED:
            self.freeze()
        try:
            for pid in self.get_all_pids():
                try:
                    os.kill(pid, sig)
                except ProcessLookupError:
                    pass
        finally:
            if was is not None and sig == signal.SIGKILL:
                self.thaw_descendants()
            if was is not None and (was == THAWED or sig == signal.SIGKILL):
                self.thaw()

    def destroy(self) -> None:
        """Remove the cgroup directories (the caller has killed every process)."""
        raise NotImplementedError

    # -- resources -----------------------------------------------------------------------
    def set(self, resources) -> fs.Transaction:
        """Apply every limit that ``resources`` (a ``configs.Resources``) sets, all or nothing.

        Each file is read back after its write; if a write is refused or reads back differently,
        the files already written get their previous content again (libcontainer ``Set``, plus
        the rollback runc lacks). Fields left None are not touched; devices are not re-applied.

        Returns the :class:`~.fs.Transaction` of the writes: a caller whose next step fails (saving
        state.json on a full disk) calls its ``rollback()`` so that the kernel keeps the old limits.

        Raises:
            ConfigInvalid: a value is invalid or its controller/file is not available here.
            ResourcesNotApplied: the kernel refused a value (a SystemError: ``cause``; previous values
                restored, or ``rollback_errors`` says which were not).
        """
        from ...errors import ResourcesNotApplied, SystemError

        resources.validate()
        self.check(resources)
        tx = fs.Transaction()
        try:
            try:
                self._apply(resources, tx)
            except OSError as err:  # a file that vanished or never was: same as a refused write
                raise SystemError(f"cgroup file {err.filename}: {err.strerror}") from err
        except SystemError as err:
            raise ResourcesNotApplied(err, tuple(tx.rollback())) from err
        except BaseException:  # interrupted (Ctrl-C…): never leave limits half-applied
            tx.rollback()
            raise
        return tx

    def check(self, resources) -> None:
        """Raise ConfigInvalid if a field of ``resources`` that is set needs a controller or file not here."""
        raise NotImplementedError

    def _apply(self, resources, tx) -> None:
        raise NotImplementedError

    @property
    def files(self):
        """The :class:`~.fs.FileCache` that :meth:`stats` reads through (fds kept open between calls)."""
        cache = self.__dict__.get("_files")
        if cache is None:
            from .fs import FileCache
            cache = self.__dict__["_files"] = FileCache()
        return cache

    def __getstate__(self) -> dict:
        # Pickled to the monitor with the init context: open files stay behind.
        return {k: v for k, v in self.__dict__.items() if k != "_files"}

    def close(self) -> None:
        """Close the files :meth:`stats` keeps open (they are closed at garbage collection too)."""
        cache = self.__dict__.pop("_files", None)
        if cache is not None:
            cache.close()

    def stats(self):
        """``runtime.stats.CgroupStats`` read from the cgroup files; absent controllers give None fields."""
        raise NotImplementedError

    def oom_kill_count(self) -> int | None:
        """Processes of the cgroup killed by the OOM killer so far (``oom_kill``); None if unknown."""
        raise NotImplementedError


def online_cpus(kind: str = "cpu") -> set[int]:
    """The online CPUs (``kind="cpu"``) or memory nodes (``"node"``) from /sys/devices/system; node 0 if unknown."""
    from ...configs import parse_cpu_list

    try:
        with open(f"/sys/devices/system/{kind}/online") as f:
            return parse_cpu_list(f.read().strip())
    except OSError:
        return {0}


def check_cpuset(resources, allowed_cpus: str | None, allowed_mems: str | None) -> None:
    """Raise ConfigInvalid if ``cpuset_cpus``/``cpuset_mems`` name CPUs or nodes outside the allowed lists."""
    from ...configs import format_cpu_list, parse_cpu_list
    from ...errors import ConfigInvalid

    for name, allowed, kind in (("cpuset_cpus", allowed_cpus, "cpu"), ("cpuset_mems", allowed_mems, "node")):
        value = getattr(resources, name)
        if value is None:
            continue
        wanted = parse_cpu_list(value)
        avail = parse_cpu_list(allowed) if allowed else online_cpus(kind)
        if not wanted:
            raise ConfigInvalid.at(f"resources.{name}", f"{value!r} is empty", value)
        if not wanted <= avail:
            raise ConfigInvalid.at(f"resources.{name}", f"{value!r} includes {format_cpu_list(wanted - avail)}, not "
                                   f"available here (available: {format_cpu_list(avail)})", value)


def _mountinfo() -> list[tuple[str, str, list[str]]]:
    """``(mountpoint, fstype, super_options)`` for each cgroup/cgroup2 mount, read again only when
    the mount table changed since the last read.

    The kernel flags an open ``/proc/self/mountinfo`` with POLLPRI after any mount or unmount
    (proc(5)), so one non-blocking poll replaces a parse of the table at every container
    create, check and load. A forked child opens its own.
    """
    global _mounts_seen
    with _mounts_lock:
        seen = _mounts_seen
        if seen is not None and seen[0] == os.getpid():
            poller = select.poll()
            poller.register(seen[1], select.POLLPRI)
            if not poller.poll(0):
                return seen[2]
            os.close(seen[1])
        fd = os.open("/proc/self/mountinfo", os.O_RDONLY | os.O_CLOEXEC)
        try:
            out = _parse_mountinfo(fd)
        except BaseException:
            os.close(fd)
            raise
        _mounts_seen = (os.getpid(), fd, out)
        return out


def _parse_mountinfo(fd: int) -> list[tuple[str, str, list[str]]]:
    out = []
    with open(os.dup(fd), closefd=True) as f:
        for line in f:
            pre, _, post = line.partition(" - ")
            post_fields = post.split()
            if post_fields and post_fields[0] in ("cgroup", "cgroup2"):
                out.append((pre.split()[4], post_fields[0], post_fields[2].split(",")))
    return out


_mounts_lock = threading.Lock()
_mounts_seen: tuple[int, int, list] | None = None  # (pid, fd of /proc/self/mountinfo, what it said)


def detect() -> tuple[str, dict[str, str]]:
    """``("v2", {"": mountpoint})`` when ``/sys/fs/cgroup`` is cgroup2, else ``("v1", {controller: mountpoint})``.

    ``$DCT_CGROUP_V2_MOUNT`` forces the v2 driver on that mount (tests use the hybrid host's
    ``/sys/fs/cgroup/unified``). v1 controllers are read from the mount options (``cpu``,
    ``memory``, ``name=systemd``…);
    a mount carrying several (``cpu,cpuacct``) appears once per controller.
    """
    forced = os.environ.get(V2_MOUNT_ENV)
    if forced:
        return "v2", {"": forced}
    mounts = _mountinfo()
    for point, fstype, _ in mounts:
        if fstype == "cgroup2" and point == "/sys/fs/cgroup":
            return "v2", {"": point}
    controllers: dict[str, str] = {}
    for point, fstype, opts in mounts:
        if fstype != "cgroup":
            continue
        for opt in opts:
            if opt in ("rw", "ro") or opt.startswith(("release_agent", "clone_children", "nsdelegate", "xattr")):
                continue
            controllers.setdefault(opt, point)
    if not controllers:
        for point, fstype, _ in mounts:
            if fstype == "cgroup2":
                return "v2", {"": point}
    return "v1", controllers


def new_manager(container_id: str, parent: str = "dct", device_rules: list | None = None,
                path: str = "") -> Manager:
    """The manager for ``<parent>/<container_id>`` (or ``path``) on each mount of :func:`detect`.

    An absolute ``path`` lies below each mount; a relative one below the calling process's own
    cgroup in that hierarchy (``/proc/self/cgroup``), as runc's fs drivers place a relative
    ``linux.cgroupsPath``.
    """
    _, mounts = detect()
    if path and not path.startswith("/"):
        own = own_cgroups()
        return manager_from_paths({k: os.path.join(v, own.get(k, "/").lstrip("/"), path) for k, v in mounts.items()},
                                  device_rules)
    rel = path.lstrip("/") if path else os.path.join(parent, container_id)
    return manager_from_paths({k: os.path.join(v, rel) for k, v in mounts.items()}, device_rules)


def hierarchies(paths: dict[str, str]) -> list[tuple[str, str]]:
    """A container's cgroup ``paths`` (``{controller: dir}``) as ``[(hierarchy name, dir)]``, one per
    mount: the name is the mount's directory (``memory``, ``cpu,cpuacct``, ``systemd``), ``""`` on v2.
    What a ``cgroup`` mount in the container shows (``rootfs.prepare_rootfs``)."""
    if set(paths) == {""}:
        return [("", paths[""])]
    mounts = detect()[1]
    out: dict[str, str] = {}
    for key, path in sorted(paths.items()):
        point = mounts.get(key)
        if point is not None:
            out.setdefault(os.path.basename(point), path)
    return sorted(out.items())


def own_cgroups() -> dict[str, str]:
    """The calling process's cgroup per controller from ``/proc/self/cgroup``: ``{"memory": "/a/b",
    "name=systemd": "/", "": "/"}`` (keyed as :func:`detect` keys mounts; v2 keyed ``""``)."""
    out: dict[str, str] = {}
    with open("/proc/self/cgroup") as f:
        for line in f:
            _, controllers, path = line.rstrip("\n").split(":", 2)
            for name in controllers.split(",") if controllers else [""]:
                out[name] = path
    return out


def manager_from_paths(paths: dict[str, str], device_rules: list | None = None) -> Manager:
    """Rebuild a manager from saved ``cgroup_paths`` (libcontainer's ``NewWithPaths``): ``{"": dir}`` is v2."""
    if set(paths) == {""}:
        from .v2 import V2Manager
        return V2Manager(paths[""])
    from .v1 import V1Manager
    return V1Manager(paths, device_rules or [])
