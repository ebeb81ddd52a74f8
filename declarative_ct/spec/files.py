"""Which files a spec path means (stdlib only: the spec cache lists them without loading pydantic)."""

from __future__ import annotations

import os

SPEC_SUFFIXES = (".yaml", ".yml")
IGNORED_SUFFIXES = ("~", ".swp", ".bak")


def is_spec_file(name: str) -> bool:
    """Whether a directory entry named ``name`` is read as a spec file (``*.yaml``/``*.yml``, not
    a dotfile nor an editor's backup or swap file)."""
    return name.endswith(SPEC_SUFFIXES) and not name.startswith(".") and not name.endswith(IGNORED_SUFFIXES)


def spec_files(paths: list[str]) -> list[str] | None:
    """The absolute spec files of ``paths`` (a file as given; a directory's spec files in name order,
    non-recursive), each once; None when a path does not exist or cannot be listed."""
    out: list[str] = []
    for path in paths:
        full = os.path.abspath(path)
        try:
            names = [os.path.join(full, n) for n in sorted(os.listdir(full)) if is_spec_file(n)] \
                if os.path.isdir(full) else [full] if os.path.exists(full) else None
        except OSError:
            names = None
        if names is None:
            return None
        out.extend(n for n in names if n not in out)
    return out
