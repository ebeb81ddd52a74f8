"""``dct update``: runc's update, resource limits changed live (flags or an OCI ``linux.resources`` file)."""

from __future__ import annotations

import argparse
import json
import sys

from ..errors import ConfigInvalid
from ..errors import SystemError as ContainerSystemError
from ..runtime import specconv
from .common import runtime_for


# dct update's flags, by Resources field (argparse dest == field): how the value is read.
_UPDATE_FLAGS = {"memory": "size", "memory_reservation": "size", "memory_swap": "size", "cpu_shares": "int",
                 "cpu_quota": "limit", "cpu_period": "int", "cpuset_cpus": "list", "cpuset_mems": "list",
                 "pids_limit": "limit", "blkio_weight": "int"}


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _update_value(name: str, text: str) -> object:
    """The value of ``--<name> text`` in Resources' units; ConfigInvalid naming the flag."""
    from ..units import parse_size

    kind = _UPDATE_FLAGS[name]
    if kind != "list" and text.strip().startswith("-") and text.strip() != "-1":
        raise ConfigInvalid(f"{_flag(name)}: {text!r} is negative (-1 means unlimited where a limit can be lifted)")
    if kind == "size":
        try:
            return parse_size(text, _flag(name))
        except ValueError as err:
            raise ConfigInvalid(str(err)) from None
    if kind == "list":
        return text
    if kind == "limit" and text.strip().lower() in ("unlimited", "max"):
        return -1
    try:
        return int(text)
    except ValueError:
        hint = " or -1 for unlimited" if kind == "limit" else ""
        raise ConfigInvalid(f"{_flag(name)}: {text!r} is not an integer{hint}") from None


def _read_resources_file(path: str) -> object:
    """The JSON of ``-r FILE`` (``-`` is stdin); ConfigInvalid naming the file."""
    where = f"--resources {path}"
    try:
        if path == "-":
            text = sys.stdin.read()
        else:
            with open(path, encoding="utf-8") as f:
                text = f.read()
    except OSError as err:
        raise ConfigInvalid(f"{where}: cannot read: {err.strerror}") from None
    except UnicodeDecodeError:
        raise ConfigInvalid(f"{where}: not UTF-8 text (is it a JSON file?)") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise ConfigInvalid(f"{where}: invalid JSON at line {err.lineno}, column {err.colno}: {err.msg}") from None


def cmd_update(args: argparse.Namespace) -> int:
    """``dct update``: runc's update, the given limits applied live through ``Container.set``.

    Either flags (``--memory 64m`` …) or ``-r FILE`` (an OCI ``linux.resources`` object, ``-``
    for stdin), not both. Only the limits given change; every value is checked before any
    cgroup file is written, and a kernel refusal restores what was written. Errors name the
    flag (or the ``linux.resources`` key) and change nothing.
    """
    from ..configs import Config, Resources

    given = {name: getattr(args, name) for name in _UPDATE_FLAGS if getattr(args, name) is not None}
    if not given and args.resources is None:
        from .parser import verb_parser
        verb_parser("update").error("give the limits to change (e.g. --memory 64m) or -r FILE")
    if given and args.resources is not None:
        raise ConfigInvalid(f"update: give either -r/--resources or flags ({', '.join(map(_flag, given))}), "
                            "not both")
    if args.resources is not None:
        names = {f"resources.{k}": f"--resources {args.resources}: linux.resources.{v}"
                 for k, v in specconv.OCI_RESOURCE_NAMES.items()}
        raw = _read_resources_file(args.resources)
        try:
            update = specconv.resources_from_oci(raw, devices=False, validate=False)
        except ConfigInvalid as err:
            raise err.located(f"--resources {args.resources}") from None
        if not update.limits():
            raise ConfigInvalid(f"--resources {args.resources}: sets no limit (e.g. {{\"memory\": {{\"limit\": "
                                "67108864}})")
    else:
        names = {f"resources.{k}": _flag(k) for k in _UPDATE_FLAGS}
        update = Resources(**{name: _update_value(name, text) for name, text in given.items()})
    container = runtime_for(args).load(args.id)
    try:
        change = Config(rootfs=container.config.rootfs)
        change.cgroups.resources = update
        container.set(change)
    except (ConfigInvalid, ContainerSystemError) as err:  # name fields as the user typed them (flag, OCI key)
        if hasattr(err, "renamed"):
            raise err.renamed(names) from None
        raise
    return 0
