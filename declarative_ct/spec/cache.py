"""Validated specs kept in the state root, so that ``plan``/``status`` on unchanged files skip YAML and pydantic.

Loading and validating costs ~150 ms of imports (pydantic, its models, PyYAML) before any work;
a steady-state ``dct plan`` has to be cheaper than that. The cache (``<root>/#spec-cache.json``)
holds, for the last set of paths loaded, every document's ``model_dump`` and normalized form,
keyed by the paths, each file's identity and times (inode, size, mtime, ctime) and those of the
spec code itself. A hit still checks that the host paths the specs name exist (rootfs, mount
sources) and that every seccomp profile file has the identity it had when its digest was taken
(the normalized spec holds the profile's sha256: an edited profile is a recreate); anything
else (a miss, a changed file, a vanished path) falls back to the full load, which reports every
error as usual and refreshes the cache. Stdlib only.
"""

from __future__ import annotations

import os

from .. import jsonfile
from .desired import DesiredDocument
from .files import spec_files

CACHE_FILE = "#spec-cache.json"
_CODE = [os.path.join(os.path.dirname(os.path.abspath(__file__)), name)
         for name in ("model.py", "model_base.py", "model_health.py", "forms.py", "load.py", "files.py", "cache.py",
                      "desired.py", "yaml_rules.py", "yaml_nodes.py", "messages.py", "checks.py")]


CachedDocument = DesiredDocument
"""A document read back from the cache (a :class:`~.desired.DesiredDocument`)."""


def _identity(path: str) -> list[int]:
    st = os.stat(path)
    return [st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns]


def _key(paths: list[str], files: list[str]) -> dict | None:
    try:
        return {"paths": [os.path.abspath(p) for p in paths], "files": [[f, *_identity(f)] for f in files],
                "code": [_identity(f) for f in _CODE]}
    except OSError:
        return None


def _profile_identity(spec: dict) -> list[int] | None:
    """The identity of the spec's seccomp profile file; None when it names a keyword (or is gone).
    A loaded spec's profile path is absolute; ``default`` and ``unconfined`` are not paths."""
    profile = spec.get("seccomp")
    if not isinstance(profile, str) or not os.path.isabs(profile):
        return None
    try:
        return _identity(profile)
    except OSError:
        return None


def _host_paths_exist(entries: list[dict]) -> bool:
    for entry in entries:
        spec = entry["spec"]
        if spec["rootfs"] != "host" and not os.path.isdir(spec["rootfs"]):
            return False
        if not all(os.path.exists(m["source"]) for m in spec["mounts"]):
            return False
        if isinstance(entry["normalized"]["seccomp"], dict):  # a profile file, by its digest
            if entry.get("profile") is None or _profile_identity(spec) != entry["profile"]:
                return False  # edited, replaced or removed since (or its identity was never known)
    return True


def load(paths: list[str], root: str) -> list:
    """The spec documents of ``paths``, from the cache in ``root`` when nothing changed, else loaded.

    Returns :class:`~.desired.DesiredDocument` objects on a hit, ``SpecDocument`` objects
    otherwise (both have ``.spec``, ``.source``, ``.line``; ``spec.desired()`` is what the
    reconciler reads). The cache is written only into an existing root.

    Raises:
        SpecErrors: from the full load (every error of every file).
    """
    files = spec_files(paths)
    key = _key(paths, files) if files is not None else None
    path = os.path.join(root, CACHE_FILE)
    if key is not None:
        try:
            cached = jsonfile.read_json(path)
            if cached.get("key") == key and _host_paths_exist(cached["docs"]):
                return [DesiredDocument.from_entry(entry) for entry in cached["docs"]]
        except (OSError, ValueError, KeyError, TypeError):
            pass
    from .load import load_paths

    docs = load_paths(paths)
    if key is not None and os.path.isdir(root):
        entries = []
        for d in docs:
            dump = d.spec.model_dump(mode="json")
            # The profile's identity before normalized() digests it: a write in between makes the
            # next lookup miss, never keeps a digest of older bytes.
            profile = _profile_identity(dump)
            entries.append({"source": d.source, "line": d.line, "spec": dump, "profile": profile,
                            "normalized": d.spec.normalized()})
        try:
            jsonfile.write_json_atomic(path, {"key": key, "docs": entries})
        except OSError:
            pass  # a read-only root: no cache, no harm
    return docs
