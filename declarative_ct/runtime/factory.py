"""``Runtime``: libcontainer's factory (``Create``/``Load``) over a state root."""

from __future__ import annotations

import hashlib
import os

from ..configs import Cgroup, Config
from ..errors import (ContainerExists, ContainerNotExists, CreateInterrupted, InvalidID, StateCorrupt,
                      SystemError)
from . import cgroups, store
from .container import Container, teardown
from .state import State

DEFAULT_ROOT = "/run/dct"
DEFAULT_DATA_ROOT = "/var/lib/dct"
DATA_ROOT_ENV = "DCT_DATA_ROOT"
DATA_ROOT_MARKER = "state-root"  # in a data root: the state root it serves
DATA_ROOT_RECORD = "#data-root"  # in a state root: the data root given for it (when not its default)
DATA_ROOTS_DIR = "roots"  # <DEFAULT_DATA_ROOT>/roots/<cgroup parent>: the data of roots other than the default


def default_root() -> str:
    """``$DCT_ROOT`` or ``/run/dct`` (runc's ``--root`` default is ``/run/runc``)."""
    return os.environ.get("DCT_ROOT") or DEFAULT_ROOT


def default_data_root(root: str) -> str:
    """Where the persistent data of state root ``root`` (absolute) lives: ``$DCT_DATA_ROOT`` when set,
    else the one recorded in ``<root>/#data-root`` (written when data is first kept under a data root
    given by ``--data-root``/``$DCT_DATA_ROOT``), else ``/var/lib/dct`` for the default root
    ``/run/dct``, else ``/var/lib/dct/roots/dct-<8 hex of the root>`` (the root's cgroup parent
    name), so two roots never share a container name's data.

    The state root is runtime state (tmpfs, gone at a reboot, as runc's); the data root keeps what
    must outlive it: the containers' logs and the reconciler's restart records (podman's ``--root``
    beside its ``--runroot``).
    """
    if os.environ.get(DATA_ROOT_ENV):
        return os.path.abspath(os.environ[DATA_ROOT_ENV])
    try:  # given once (the service's --data-root): later commands without it find the same
        with open(os.path.join(root, DATA_ROOT_RECORD)) as f:
            recorded = f.read().strip()
        if os.path.isabs(recorded):
            return recorded
    except OSError:
        pass
    return _derived_data_root(root)


def _derived_data_root(root: str) -> str:
    """The data root a state root gets when none is given or recorded (see :func:`default_data_root`)."""
    if root == DEFAULT_ROOT:
        return DEFAULT_DATA_ROOT
    return os.path.join(DEFAULT_DATA_ROOT, DATA_ROOTS_DIR, _root_parent(root))


def data_dir(data_root: str, root: str, *parts: str) -> str:
    """:meth:`Runtime.data_dir` of state root ``root`` whose data root is ``data_root`` (also for a
    :class:`Container`, which knows both).

    Raises:
        OSError: the directories cannot be made.
        SystemError: ``data_root`` already serves another state root (its ``state-root`` file).
    """
    marker = os.path.join(data_root, DATA_ROOT_MARKER)
    try:
        with open(marker) as f:
            served = f.read().strip()
    except FileNotFoundError:  # new, or an earlier writer died between the mkdir and the marker
        os.makedirs(data_root, mode=0o700, exist_ok=True)
        store.write_atomic(marker, (root + "\n").encode(), 0o600)
        served = root
    if served != root:  # two roots' containers of one name would share (and delete) each other's data
        raise SystemError(f"data root {data_root} keeps the data of state root {served}, not {root}: give each "
                          f"state root its own --data-root (or $DCT_DATA_ROOT)")
    _record_data_root(root, data_root)
    path = os.path.join(data_root, *parts)
    os.makedirs(path, mode=0o700, exist_ok=True)
    return path


def derived_data_roots(under: str) -> list[str]:
    """The data roots under ``/var/lib/dct/roots`` that serve a state root at or below the directory
    ``under`` (by their ``state-root`` file): what to remove with a tree of throwaway roots (tests,
    benchmarks). [] when there are none."""
    under = os.path.abspath(under)
    parent = os.path.join(DEFAULT_DATA_ROOT, DATA_ROOTS_DIR)
    found = []
    for name in os.listdir(parent) if os.path.isdir(parent) else ():
        try:
            with open(os.path.join(parent, name, DATA_ROOT_MARKER)) as f:
                served = f.read().strip()
        except OSError:
            continue
        if served == under or served.startswith(under + os.sep):
            found.append(os.path.join(parent, name))
    return found


def _record_data_root(root: str, data_root: str) -> None:
    """Note in the state root a data root that commands could not derive from the root alone."""
    record = os.path.join(root, DATA_ROOT_RECORD)
    try:
        with open(record) as f:
            if f.read().strip() == data_root:
                return
    except FileNotFoundError:
        if data_root == _derived_data_root(root):
            return
    except OSError:
        pass
    if os.path.isdir(root):
        store.write_atomic(record, (data_root + "\n").encode(), 0o600)


def _root_parent(root: str) -> str:
    return cgroups.ROOT_PARENT_PREFIX + hashlib.sha256(root.encode()).hexdigest()[:8]


def _shown_cgroup(recorded: object) -> str:
    """A cgroup.json's paths for a message: relative to their mounts (``/shared``), each once."""
    if not isinstance(recorded, dict):
        return repr(recorded)
    try:
        mounts = cgroups.detect()[1]
    except OSError:
        mounts = {}
    rel = {"/" + os.path.relpath(v, mounts[k]) if k in mounts and isinstance(v, str) else str(v)
           for k, v in recorded.items()}
    return ", ".join(sorted(rel))


class Runtime:
    """Containers under one state root (``<root>/<id>/state.json``).

    Args:
        root: the state directory; made absolute; ``/`` is refused as runc does.
        data_root: where data that outlives the state root goes (logs, restart records); None:
            :func:`default_data_root` of ``root``. Made absolute; created only when written.
    """

    def __init__(self, root: str | None = None, data_root: str | None = None) -> None:
        self.root = os.path.abspath(root or default_root())
        if self.root == "/":
            raise SystemError("refusing '/' as the state root")
        self.data_root = os.path.abspath(data_root) if data_root else default_data_root(self.root)
        if self.data_root == "/":
            raise SystemError("refusing '/' as the data root")
        if os.path.exists(self.root) and not os.path.isdir(self.root):
            raise SystemError(f"state root {self.root} exists and is not a directory")

    def data_dir(self, *parts: str) -> str:
        """``<data_root>/<parts…>``, made (mode 0700) if missing; the data root records which state
        root it serves in its ``state-root`` file when first made (what ``roots/dct-<hash>`` is).

        Raises:
            OSError: the directories cannot be made.
            SystemError: the data root serves another state root.
        """
        return data_dir(self.data_root, self.root, *parts)

    @property
    def cgroup_parent(self) -> str:
        """Where this root's containers get their cgroups (``<mount>/<parent>/<id>``) when their config
        keeps the default parent: ``dct`` for :data:`DEFAULT_ROOT`, ``dct-<8 hex of the root>`` for any
        other, so that the same id in two roots never shares a cgroup (a create of one refused, or
        the destroy of one killing the other)."""
        if self.root == DEFAULT_ROOT:
            return Cgroup.parent
        return _root_parent(self.root)

    def _placed(self, config: Config) -> Config:
        """``config``, changed in place, with this root's cgroup parent when it asks for the default
        one (no ``path``); a config already placed is left as it is."""
        if not config.cgroups.path and config.cgroups.parent == Cgroup.parent:
            config.cgroups.parent = self.cgroup_parent
        return config

    def create(self, container_id: str, config: Config) -> Container:
        """libcontainer ``Create``: validate the id and config and make ``<root>/<id>`` (mode 0711).

        Nothing runs yet: call :meth:`Container.start` or :meth:`Container.run`.

        A directory that an interrupted create left (no state.json, its lock free: see
        :meth:`list_with_errors`) is reclaimed first: its processes killed, its cgroup and
        directory removed, but only when the cgroup it recorded is this root's own placement for
        this id (:meth:`_own_cgroup`), which nothing else uses. One whose create is still in
        progress (lock held) is not.

        Raises:
            InvalidID, ContainerExists; CreateInterrupted when the interrupted create recorded a
            cgroup of its config's choosing (``cgroupsPath``, a parent): another container may run
            in it, so only an explicit ``delete --force`` removes it; ConfigInvalid, also for a
            seccomp profile the kernel or libseccomp refuses (the filter is compiled here).
        """
        store.validate_id(container_id)
        config.validate()
        self._compile_seccomp(config)
        config = self._placed(config)
        os.makedirs(self.root, mode=0o700, exist_ok=True)
        path = os.path.join(self.root, container_id)
        try:
            os.mkdir(path, 0o711)
        except FileExistsError:
            if not self._reclaim_interrupted(container_id, path):
                raise ContainerExists(f"container {container_id!r} already exists in {self.root}") from None
            try:
                os.mkdir(path, 0o711)
            except FileExistsError:  # another create took the id meanwhile
                raise ContainerExists(f"container {container_id!r} already exists in {self.root}") from None
        return Container(self.root, container_id, config, data_root=self.data_root)

    def _reclaim_interrupted(self, container_id: str, state_dir: str) -> bool:
        """Remove what an interrupted create left in ``state_dir`` (see :meth:`create`); False, and
        nothing touched, when it is not that (state.json saved, a create holds the lock, or none
        ever started there). Raises CreateInterrupted, nothing touched, when its recorded cgroup
        is not :meth:`_own_cgroup`."""
        with store.try_locked(state_dir) as held:
            if not held or os.path.exists(os.path.join(state_dir, store.STATE_FILE)):
                return False
            try:
                recorded = store.read_json(os.path.join(state_dir, store.CGROUP_FILE))
            except (OSError, ValueError):
                recorded = None  # no cgroup recorded as made: none is touched
            cg = None
            if recorded is not None:
                if not self._own_cgroup(container_id, recorded):
                    raise CreateInterrupted(
                        id=container_id, reason=f"an interrupted create left {state_dir}, with the cgroup "
                        f"{_shown_cgroup(recorded)} its config chose: another container may run in it, so it is not reclaimed")
                cg = cgroups.manager_from_paths(recorded)
            teardown(cg, state_dir)
        return True

    def _own_cgroup(self, container_id: str, recorded: object) -> bool:
        """True when ``recorded`` (a cgroup.json) names only the cgroup this root derives for
        ``container_id`` with the default parent (:attr:`cgroup_parent`): unique to this root and
        id, so no other container's processes are in it. A ``cgroupsPath`` or a custom parent (which
        two roots may share), or a cgroup mount's root, is not."""
        if not isinstance(recorded, dict) or not recorded:
            return False
        try:
            own = cgroups.new_manager(container_id, self.cgroup_parent).paths()
        except (OSError, ValueError):
            return False
        return all(isinstance(v, str) and own.get(k) == v for k, v in recorded.items())

    @staticmethod
    def _interrupted(state_dir: str) -> bool:
        """True when ``state_dir`` is what a create killed before state.json left: no state.json,
        a start began (lock file) and no create holds the lock now."""
        with store.try_locked(state_dir) as held:
            return held and not os.path.exists(os.path.join(state_dir, store.STATE_FILE))

    def check(self, container_id: str, config: Config) -> None:
        """What :meth:`create` and ``start`` would refuse about ``config``, checked without touching anything.

        The id, :meth:`Config.validate`, the cgroup driver's check of the resources (controllers
        and files available, cpusets within the allowed CPUs) and the network's (address free
        and inside the bridge's subnet, ports not published, no overlapping route). A recreate runs it before it stops
        the old container.

        Raises:
            InvalidID, ConfigInvalid.
        """
        store.validate_id(container_id)
        config.validate()
        self._compile_seccomp(config)
        config = self._placed(config)
        cgroups.new_manager(container_id, config.cgroups.parent, config.cgroups.resources.devices,
                            config.cgroups.path).check(config.cgroups.resources)
        if config.networks:
            from . import network

            network.check(self.root, container_id, config)

    def _compile_seccomp(self, config: Config) -> None:
        """Compile the config's filter now (start reuses it): what the kernel or libseccomp refuses
        is a create error, before anything exists."""
        if config.seccomp is not None:
            from . import seccomp

            seccomp.compile_filter(config.seccomp, cache_dir=os.path.join(self.root, seccomp.CACHE_DIR))

    def load(self, container_id: str) -> Container:
        """libcontainer ``Load``: read ``state.json``.

        Raises:
            InvalidID; ContainerNotExists when there is no state.json (see :meth:`cleanup`);
            StateCorrupt when what it holds cannot be read back (truncated, not JSON, not text, wrong
            shape, a directory); SystemError when the file cannot be read at all (EACCES, EMFILE,
            EIO…): the state may be fine, so it is not called corrupt (nor offered for delete --force).
        """
        store.validate_id(container_id)
        path = os.path.join(self.root, container_id, store.STATE_FILE)
        try:
            raw = store.read_json(path)
            state = State.from_dict(raw)
            config = Config.from_dict(state.config)
        except (FileNotFoundError, NotADirectoryError):
            raise ContainerNotExists(f"container {container_id!r} does not exist in {self.root}") from None
        except (ValueError, TypeError, KeyError, AttributeError, IsADirectoryError) as err:
            why = err.strerror if isinstance(err, OSError) else str(err) or type(err).__name__
            raise StateCorrupt(id=container_id, reason=f"{path} is corrupt: {why}") from err
        except OSError as err:
            raise SystemError(f"container {container_id}: cannot read {path}: {err.strerror}") from err
        return Container(self.root, container_id, config, state, data_root=self.data_root)

    def list(self) -> list[Container]:
        """Every container with a readable state.json, sorted by id (half-created directories are
        skipped; for those whose state.json is corrupt see :meth:`list_with_errors`)."""
        return self.list_with_errors()[0]

    def list_with_errors(self) -> tuple[list[Container], dict[str, StateCorrupt]]:
        """``(containers, corrupt)``: :meth:`list`, and by id the :class:`StateCorrupt` of each container
        whose state.json exists but cannot be read, or :class:`CreateInterrupted` for one whose create
        was killed before saving it (their processes may run: they must not go unseen)."""
        out: list[Container] = []
        corrupt: dict[str, StateCorrupt] = {}
        for name in store.container_entries(self.root):
            try:
                out.append(self.load(name))
            except StateCorrupt as err:
                corrupt[name] = err
            except ContainerNotExists:  # no state.json: a create in progress, or one killed half-way
                if self._interrupted(os.path.join(self.root, name)):
                    corrupt[name] = CreateInterrupted(id=name, reason="its create was interrupted before "
                                                      "state.json was saved (status unknown)")
            except InvalidID:  # not a container's directory
                continue  # (an unreadable state.json, SystemError, goes up: it must not go unseen either)
        return out, corrupt

    def exists(self, container_id: str) -> bool:
        """True when ``<root>/<id>`` exists (even without state.json)."""
        store.validate_id(container_id)
        return os.path.isdir(os.path.join(self.root, container_id))

    def cleanup(self, container_id: str, parent: str | None = None, force: bool = False) -> bool:
        """Remove what an aborted create left (no state.json): its processes, cgroup and directory.

        Only a cgroup this container recorded as made (``cgroup.json``) is touched: one that
        belongs to another container with the same id or cgroupsPath (another state root) never
        is. It waits for the container's lock, so a create in progress finishes first; if that
        create saved a state.json meanwhile, nothing is removed and False is returned (load and
        delete it instead). ``force`` removes it all the same (a corrupt state.json), falling back
        to the cgroup path derived from the id when cgroup.json is unreadable too.
        """
        store.validate_id(container_id)
        state_dir = os.path.join(self.root, container_id)
        if not os.path.isdir(state_dir):
            return True  # nothing of ours is left
        try:
            with store.locked(state_dir):
                if os.path.exists(os.path.join(state_dir, store.STATE_FILE)) and not force:
                    return False
                try:
                    paths = store.read_json(os.path.join(state_dir, store.CGROUP_FILE))
                    cg = cgroups.manager_from_paths(paths)
                except (OSError, ValueError):
                    cg = cgroups.new_manager(container_id, parent or self.cgroup_parent) if force else None
                teardown(cg, state_dir)
        except ContainerNotExists:
            pass  # it went while we waited for the lock
        return True
