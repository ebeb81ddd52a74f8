"""The spec a container was last applied with: the ``dct.spec`` label, written and read here only.

``apply`` saves the normalized spec in the container's config (libcontainer ``labels``, in
state.json) as ``dct.spec=<json>`` (compact, sorted keys). Readers: the planner (field-level
diffs), apply (how to stop a pruned container, what to bring back when a recreate fails), ``dct
exec`` and the TUI's shell (the spec's user, env and cwd), the TUI's spec view and the Ansible
module. A missing or unreadable label reads as ``{}``: not made from a spec, nothing to compare.
A record written before a field existed reads with that field at the value that means what the
container was made with (:data:`ADDED_FIELDS`), so that an upgrade plans no recreate by itself.
Stdlib only (the runtime's ``Process`` is imported when one is built).
"""

from __future__ import annotations

import json

LABEL_SPEC = "dct.spec"


def _default_logging() -> dict:
    from ..configs.logs import DEFAULT_MAX_FILES, DEFAULT_MAX_SIZE

    return {"max_size": DEFAULT_MAX_SIZE, "max_files": DEFAULT_MAX_FILES}


ADDED_FIELDS = {"logging": _default_logging, "health": lambda: None}
"""Fields of the normalized spec newer than some records: the value a record without one reads with
(``logging``: the default rotation; a container made before the field existed is recreated only
when its spec asks for other limits; ``health``: no probe)."""


def label(normalized: dict[str, object]) -> str:
    """The ``key=value`` label that records ``normalized`` (a ``normalized()`` spec) on a config."""
    return f"{LABEL_SPEC}={json.dumps(normalized, sort_keys=True, separators=(',', ':'))}"


def decode(text: str | None) -> dict:
    """The normalized spec in a label's value (``dct.spec``'s text), with the :data:`ADDED_FIELDS`
    it lacks filled in and a ``depends_on`` list (recorded before conditions) as today's mapping;
    ``{}`` when it is missing, is not JSON or is not an object."""
    try:
        data = json.loads(text or "{}")
    except ValueError:
        return {}
    if not isinstance(data, dict):
        return {}
    if data:
        for name, value in ADDED_FIELDS.items():
            data.setdefault(name, value())
        if isinstance(data.get("depends_on"), list):  # recorded before conditions: each name was "started"
            data["depends_on"] = dict.fromkeys(sorted(data["depends_on"]), "started")
    return data


def read(config) -> dict:  # noqa: ANN001 - configs.Config
    """The normalized spec a container's ``Config`` was created from (:func:`decode` of its label)."""
    return decode(config.label(LABEL_SPEC))


def process(applied: dict, args: list[str] | None = None, init: bool = True):  # noqa: ANN201 - runtime Process
    """The ``Process`` of a normalized spec's ``process`` (args, env, cwd, user ``"uid:gid"``), with
    ``args`` instead of the spec's when given; env gets the default PATH unless the spec sets one.
    ``init=False``: a process for ``exec`` into the container.

    Raises:
        KeyError, TypeError, ValueError: ``applied`` has no well-formed ``process`` (not made from a spec).
    """
    from ..configs import DEFAULT_ENV
    from ..runtime.process import Process

    proc = applied["process"]
    env = [f"{k}={v}" for k, v in proc["env"].items()]
    if "PATH" not in proc["env"]:
        env = list(DEFAULT_ENV) + env
    uid, _, gid = proc["user"].partition(":")
    return Process(args=list(proc["args"] if args is None else args), env=env, cwd=proc["cwd"], uid=int(uid),
                   gid=int(gid or uid), init=init)


def exec_process(config, args: list[str] | None = None):  # noqa: ANN001, ANN201 - Config -> Process | None
    """For a container made by ``dct apply``: an ``exec`` process (``init=False``) with the user,
    env and cwd of the spec it was created from; None when it was not made from a spec."""
    try:
        return process(read(config), args=args, init=False)
    except (TypeError, KeyError, ValueError, AttributeError):
        return None
