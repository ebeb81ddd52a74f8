"""``dct network``: the bridges declarative-ct made (ls), or delete one no container uses (rm)."""

from __future__ import annotations

import argparse
import json

from ..errors import ContainerError
from .common import print_table, runtime_for


def cmd_network(args: argparse.Namespace) -> int:
    """``dct network ls`` (NAME SUBNET GATEWAY CONTAINERS PRESENT, or JSON) / ``dct network rm NAME``."""
    from ..runtime import network

    root = runtime_for(args).root
    if args.action == "rm":
        if not args.name:
            raise ContainerError("network rm: give the bridge's name")
        network.remove_bridge(root, args.name)
        print(args.name)
        return 0
    rows = network.bridges(root)
    if args.format == "json":
        print(json.dumps(rows))
        return 0
    table = [("NAME", "SUBNET", "GATEWAY", "CONTAINERS", "PRESENT")]
    table += [(r["name"], r["subnet"], r["gateway"], str(r["leases"]), "yes" if r["present"] else "no") for r in rows]
    print_table(table)
    return 0
