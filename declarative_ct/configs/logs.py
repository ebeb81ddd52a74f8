"""``LogConfig``: how the monitor keeps a container's output (conmon's ``--log-size-max``, docker's
``json-file`` ``max-size``/``max-file``).

Stdlib only. Where the files are and their format: :mod:`declarative_ct.runtime.logfiles`.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import ConfigInvalid

DEFAULT_MAX_SIZE = 10 * 1024 * 1024  # bytes per file (docker's json-file default when set: 10m)
DEFAULT_MAX_FILES = 3  # files per run: the current one and two rotated ones
MIN_MAX_SIZE = 4096  # bytes: below a page, rotation would outrun the copier's reads
MAX_MAX_SIZE = 1 << 62  # bytes: far beyond any disk, and within every integer the kernel and JSON take
MAX_MAX_FILES = 100


@dataclass(frozen=True)
class LogConfig:
    """Rotation of one container's log: each run of the container writes ``max_size`` bytes at
    most per file (a file is rotated before a line would take it past that, unless that line alone
    is longer) and keeps ``max_files`` files (the current one included); older ones are deleted.

    Fields:
        max_size: bytes per file, :data:`MIN_MAX_SIZE` … :data:`MAX_MAX_SIZE`.
        max_files: files kept per run, 1 … :data:`MAX_MAX_FILES` (1: the file is emptied, nothing kept).
    """

    max_size: int = DEFAULT_MAX_SIZE
    max_files: int = DEFAULT_MAX_FILES

    def validate(self) -> None:
        """Raises:
            ConfigInvalid: a field out of range (naming it: ``log.max_size`` / ``log.max_files``).
        """
        for name, value, low, high in (("max_size", self.max_size, MIN_MAX_SIZE, MAX_MAX_SIZE),
                                       ("max_files", self.max_files, 1, MAX_MAX_FILES)):
            if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
                raise ConfigInvalid(f"log.{name}: {value!r} must be an integer from {low} to {high}")

    def to_dict(self) -> dict:
        """``{"max_size": int, "max_files": int}`` (state.json, the monitor's request)."""
        return {"max_size": self.max_size, "max_files": self.max_files}

    @classmethod
    def from_dict(cls, data: dict) -> LogConfig:
        """The inverse of :meth:`to_dict`; missing keys take the defaults.

        Raises:
            ConfigInvalid: not a mapping, or a value out of range.
        """
        if not isinstance(data, dict):
            raise ConfigInvalid(f"log: {data!r} is not a mapping")
        config = cls(data.get("max_size", DEFAULT_MAX_SIZE), data.get("max_files", DEFAULT_MAX_FILES))
        config.validate()
        return config
