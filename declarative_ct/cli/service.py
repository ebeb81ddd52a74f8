"""``dct service install|uninstall|status``: thin, over :mod:`declarative_ct.service.unit`."""

from __future__ import annotations

import argparse
import json
import sys

PROG = "dct"


def cmd_service(args: argparse.Namespace) -> int:
    """``dct service install [--specs DIR] [--unit-dir DIR] [--now]`` | ``uninstall [--unit-dir DIR]``
    | ``status [--unit-dir DIR] [--json]``.

    install: write the unit (``ExecStart=`` runs this ``dct`` with ``--root``/``--data-root`` as
    given, over ``--specs``), make the spec directory, and with systemd as init ``daemon-reload``
    and ``enable [--now]``; without systemd, say so and print the foreground command. uninstall:
    stop and disable the service (the containers keep running), remove the unit. status: the
    unit and the state root's supervisor (works without systemd). Exit 1 on a systemctl failure;
    ``status`` exits 0 whether or not anything runs (its output says).
    """
    from ..service import unit

    if args.action == "install":
        unit.install(args.specs, args.root, args.data_root, args.unit_dir, now=args.now)
        return 0
    if args.action == "uninstall":
        unit.uninstall(args.unit_dir)
        return 0
    state = unit.status(args.root, args.unit_dir)  # no --root: the installed unit's
    if args.json:
        print(json.dumps(state.to_dict(), indent=2))
    else:
        sys.stdout.write("\n".join(state.lines()) + "\n")
    return 0
