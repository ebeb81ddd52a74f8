"""``dct service install|uninstall|status``: the systemd unit that runs ``dct watch`` as a service.

The unit shipped as package data (``declarative_ct/service/dct.service``) is the template:
:func:`render` fills in its ``ExecStart=`` (the real path of the ``dct`` executable, the state and
data roots, the spec directory). Where systemd is PID 1 (``/run/systemd/system`` exists, as
``sd_booted(3)`` checks), install and uninstall also run ``systemctl``; elsewhere they only write
or remove the file and say how to run the supervisor in the foreground instead. ``status`` works
with or without systemd: the unit (installed, enabled, active) and the state root's supervisor
(:mod:`.supervisor`).

No Textual, no Ansible: the stdlib and the runtime's root defaults.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources

from ..errors import ContainerError
from ..jsonfile import write_atomic
from . import supervisor as supervising

UNIT_NAME = "dct.service"
DEFAULT_UNIT_DIR = "/etc/systemd/system"
DEFAULT_SPECS = "/etc/dct/specs"
SYSTEMD_RUN_DIR = "/run/systemd/system"  # present iff systemd is the running init (sd_booted)
WANTED_BY = "multi-user.target"

Runner = Callable[[list[str]], "subprocess.CompletedProcess[str]"]


def template() -> str:
    """The shipped unit's text (package data)."""
    return resources.files(__package__).joinpath(UNIT_NAME).read_text(encoding="utf-8")


def systemd_running() -> bool:
    """Whether systemd is the running init (``/run/systemd/system`` is a directory)."""
    return os.path.isdir(SYSTEMD_RUN_DIR)


def dct_command() -> list[str]:
    """How to run this ``dct``: the ``dct`` script beside this interpreter (a venv's ``bin/``),
    else the one on ``$PATH``, else this interpreter with ``-m declarative_ct.cli.main``. Absolute
    paths: a unit's ``ExecStart=`` needs them."""
    beside = os.path.join(os.path.dirname(os.path.abspath(sys.executable)), "dct")
    if os.access(beside, os.X_OK):
        return [beside]
    found = shutil.which("dct")
    if found:
        return [os.path.abspath(found)]
    return [os.path.abspath(sys.executable), "-m", "declarative_ct.cli.main"]


def watch_command(specs: str, root: str | None = None, data_root: str | None = None,
                  dct: list[str] | None = None) -> list[str]:
    """The argv of the supervisor: ``dct [--root R] [--data-root D] watch SPECS`` (absolute paths;
    ``root``/``data_root`` None: the defaults, not written)."""
    argv = list(dct or dct_command())
    if root:
        argv += ["--root", os.path.abspath(root)]
    if data_root:
        argv += ["--data-root", os.path.abspath(data_root)]
    return argv + ["watch", os.path.abspath(specs)]


_PLAIN = re.compile(r"[A-Za-z0-9_@+=:,./%$-]+\Z")  # after % and $ are doubled


def quote(arg: str) -> str:
    """One argument as a unit's command line reads it back (systemd.service "Command lines"):
    ``%`` doubled (specifiers), ``$`` doubled (variables), double quotes with backslash escapes
    around anything not plain."""
    text = arg.replace("%", "%%").replace("$", "$$")
    if _PLAIN.match(text):
        return text
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def split_command(line: str) -> list[str]:
    """The argv of a unit's command line as systemd splits it (the inverse of :func:`quote` for
    what it writes): words, "double" and 'single' quoted words with backslash escapes, ``%%``
    and ``$$`` undoubled; systemd's ``-``/``@``/``+``/``!``/``:`` prefixes before the first word's
    absolute path are dropped.

    Raises:
        ValueError: an unterminated quote.
    """
    words: list[str] = []
    i, n = 0, len(line)
    while i < n:
        if line[i].isspace():
            i += 1
            continue
        word, quoted = [], False
        while i < n and not line[i].isspace():
            c = line[i]
            if c in "\"'":
                quoted = True
                end = i + 1
                while end < n and line[end] != c:
                    end += 2 if line[end] == "\\" else 1
                if end >= n:
                    raise ValueError(f"unterminated quote in {line!r}")
                word.append(re.sub(r"\\(.)", r"\1", line[i + 1:end]))
                i = end + 1
            elif c == "\\" and i + 1 < n:
                word.append(line[i + 1])
                i += 2
            else:
                word.append(c)
                i += 1
        text = "".join(word).replace("%%", "%").replace("$$", "$")
        if text or quoted:
            words.append(text)
    if words:
        words[0] = re.sub(r"^[-@+!:]+(?=/)", "", words[0])  # systemd's prefixes before the executable's path
    return words


def parse(text: str) -> dict[str, dict[str, list[str]]]:
    """A unit file as ``{section: {key: [values in order]}}`` (a key may repeat, ``Key=`` empties
    its list as systemd does); comments and blank lines skipped, backslash continuations joined.

    Raises:
        ValueError: a line outside a section or without ``=``, naming its number.
    """
    sections: dict[str, dict[str, list[str]]] = {}
    current: dict[str, list[str]] | None = None
    pending = ""
    for number, raw in enumerate(text.splitlines(), 1):
        line = pending + raw.strip()
        pending = ""
        if not line or line[0] in "#;":
            continue
        if line.endswith("\\"):
            pending = line[:-1] + " "
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], {})
            continue
        key, eq, value = line.partition("=")
        if current is None or not eq:
            raise ValueError(f"line {number}: {raw.strip()!r} is not 'Key=value' inside a [Section]")
        values = current.setdefault(key.strip(), [])
        if value.strip():
            values.append(value.strip())
        else:
            values.clear()
    return sections


def render(specs: str = DEFAULT_SPECS, root: str | None = None, data_root: str | None = None,
           dct: list[str] | None = None) -> str:
    """The shipped unit with ``ExecStart=`` running :func:`watch_command` (same arguments)."""
    argv = watch_command(specs, root, data_root, dct)
    line = "ExecStart=" + " ".join(quote(a) for a in argv)
    text, count = re.subn(r"(?m)^ExecStart=.*$", lambda _m: line, template())
    if count != 1:
        raise ContainerError(f"the shipped {UNIT_NAME} has {count} ExecStart= lines, not 1")
    return text


def _run(argv: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, check=False)


def _systemctl(run: Runner, *args: str) -> subprocess.CompletedProcess[str]:
    """``systemctl ARGS`` through ``run``; raises ContainerError with its output when it fails."""
    systemctl = shutil.which("systemctl")
    if systemctl is None:
        raise ContainerError("systemd is running but systemctl is not on $PATH")
    done = run([systemctl, *args])
    if done.returncode != 0:
        raise ContainerError(f"systemctl {' '.join(args)}: {(done.stderr or done.stdout).strip() or 'failed'}")
    return done


def install(specs: str = DEFAULT_SPECS, root: str | None = None, data_root: str | None = None,
            unit_dir: str = DEFAULT_UNIT_DIR, now: bool = False, out: Callable[[str], None] = print,
            run: Runner = _run) -> str:
    """Write the unit and set it up; the unit's path.

    Makes ``specs`` (mode 0755) and ``unit_dir`` if missing, writes ``<unit_dir>/dct.service``
    (mode 0644, atomically: :func:`render`), then with systemd running: ``systemctl
    daemon-reload`` and ``systemctl enable [--now] dct.service``. Without systemd it says so
    through ``out`` and prints the foreground command. ``run``: how commands are run (tests).

    Raises:
        ContainerError: systemctl failed (its message), the template is broken, ``specs`` is not a
            directory, or ``now`` was asked without systemd (nothing could be started).
        OSError: a directory or the unit cannot be written.
    """
    specs = os.path.abspath(specs)
    if os.path.exists(specs) and not os.path.isdir(specs):
        raise ContainerError(f"--specs {specs}: not a directory (the service watches a directory of spec files)")
    os.makedirs(specs, mode=0o755, exist_ok=True)
    os.makedirs(unit_dir, mode=0o755, exist_ok=True)
    path = os.path.join(os.path.abspath(unit_dir), UNIT_NAME)
    write_atomic(path, render(specs, root, data_root).encode(), 0o644)
    out(f"wrote {path} (dct watch {specs})")
    command = " ".join(quote(a) for a in watch_command(specs, root, data_root))
    if not systemd_running():
        out(f"systemd is not running here ({SYSTEMD_RUN_DIR} is missing): the unit is not enabled; run the "
            f"supervisor in the foreground instead (it behaves the same):\n    {command}")
        if now:  # a script asking for a running service must not take this for one
            raise ContainerError(f"--now: nothing was started (no systemd); start the command above yourself")
        return path
    _systemctl(run, "daemon-reload")
    _systemctl(run, "enable", *(["--now"] if now else []), UNIT_NAME)
    out(f"enabled {UNIT_NAME}" + (" and started it" if now else f" (start it now: systemctl start {UNIT_NAME})"))
    return path


def uninstall(unit_dir: str = DEFAULT_UNIT_DIR, out: Callable[[str], None] = print, run: Runner = _run) -> bool:
    """Stop and disable the service (systemd running), remove the unit; False if it was not installed.

    The containers keep running (``KillMode=process``); the spec directory and the data root stay.

    Raises:
        ContainerError: systemctl failed. OSError: the unit cannot be removed.
    """
    path = os.path.join(os.path.abspath(unit_dir), UNIT_NAME)
    wants = os.path.join(os.path.abspath(unit_dir), WANTED_BY + ".wants", UNIT_NAME)
    if not os.path.lexists(path):
        out(f"{path}: not installed")
        return False
    if systemd_running():
        _systemctl(run, "disable", "--now", UNIT_NAME)
        out(f"stopped and disabled {UNIT_NAME} (the containers keep running)")
    elif os.path.islink(wants):
        os.unlink(wants)  # systemctl enable's link, made while systemd ran (or by hand)
    os.unlink(path)
    out(f"removed {path}")
    if systemd_running():
        _systemctl(run, "daemon-reload")
    return True


@dataclass
class ServiceStatus:
    """What ``dct service status`` shows.

    ``unit_path``; ``installed``: the unit file exists; ``exec_start``: its command (argv) or
    None; ``systemd``: systemd is the running init; ``enabled``/``active``: systemctl's
    ``is-enabled``/``is-active`` words with systemd, else ``enabled`` from the ``.wants`` link
    (``enabled``/``disabled``) and ``active`` None; ``supervisor``: the state root's record
    (:class:`.supervisor.SupervisorInfo`) or None when none ever ran there.
    """

    unit_path: str
    installed: bool
    exec_start: list[str] | None
    systemd: bool
    enabled: str | None
    active: str | None
    root: str
    supervisor: supervising.SupervisorInfo | None

    def to_dict(self) -> dict:
        """The JSON object (``supervisor`` as its dict, or null)."""
        return {"unit": {"path": self.unit_path, "installed": self.installed, "exec_start": self.exec_start,
                         "enabled": self.enabled, "active": self.active},
                "systemd": self.systemd, "root": self.root,
                "supervisor": self.supervisor.to_dict() if self.supervisor is not None else None}

    def lines(self) -> list[str]:
        """The human form, one fact per line."""
        unit = (f"unit:       {self.unit_path}: " + ("installed" if self.installed else "not installed")
                + (f", {self.enabled}" if self.enabled else "") + (f", {self.active}" if self.active else ""))
        out = [unit]
        if self.exec_start:
            out.append("runs:       " + " ".join(quote(a) for a in self.exec_start))
        if not self.systemd:
            out.append(f"systemd:    not running here ({SYSTEMD_RUN_DIR} is missing)")
        s = self.supervisor
        if s is None:
            out.append(f"supervisor: none has run on {self.root}")
            return out
        state = "running" if s.running else "not running"
        out.append(f"supervisor: {state} on {self.root}" + (f", pid {s.pid}" if s.pid else ""))
        out.append("specs:      " + (" ".join(s.paths) or "-"))
        out.append("started:    " + (s.started or "-"))
        out.append("last pass:  " + (s.last_pass or "-") + (f" ({s.passes} passes; {s.containers} container{'s' if s.containers != 1 else ''} declared)"
                                                           if s.passes else ""))
        if not s.running:
            out.append("stopped:    " + (s.stopped or "without a clean stop (killed or crashed)"))
        return out


def status(root: str | None, unit_dir: str = DEFAULT_UNIT_DIR, run: Runner = _run) -> ServiceStatus:
    """The unit's and the state root's supervisor's status (see :class:`ServiceStatus`); never
    raises for an unreadable unit or record (their fields are None). ``root`` None: the
    installed unit's ``--root``, else the default root."""
    path = os.path.join(os.path.abspath(unit_dir), UNIT_NAME)
    installed = os.path.isfile(path)
    exec_start = None
    if installed:
        try:
            with open(path, encoding="utf-8") as f:
                lines = parse(f.read()).get("Service", {}).get("ExecStart", [])
            exec_start = split_command(lines[-1]) if lines else None
        except (OSError, ValueError):
            exec_start = None
    systemd = systemd_running()
    enabled = active = None
    if systemd and shutil.which("systemctl"):
        enabled = (run([shutil.which("systemctl"), "is-enabled", UNIT_NAME]).stdout or "").strip() or None
        active = (run([shutil.which("systemctl"), "is-active", UNIT_NAME]).stdout or "").strip() or None
    elif installed:
        wants = os.path.join(os.path.abspath(unit_dir), WANTED_BY + ".wants", UNIT_NAME)
        enabled = "enabled" if os.path.lexists(wants) else "disabled"
    if root is None:
        from ..runtime.factory import default_root

        given = exec_start or []
        root = next((given[i + 1] for i in range(len(given) - 1) if given[i] == "--root"), None) or default_root()
    root = os.path.abspath(root)
    return ServiceStatus(path, installed, exec_start, systemd, enabled, active, root, supervising.read(root))
