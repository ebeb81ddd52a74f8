#!/usr/bin/env python3
"""Write the collection's spec options from declarative_ct's ``ContainerSpec``: run after the spec changes.

    .venv/bin/python ansible_module/tools/gen_spec_docs.py          # rewrite both files
    .venv/bin/python ansible_module/tools/gen_spec_docs.py --check  # exit 1 if they are out of date

Writes ``plugins/doc_fragments/spec.py`` (the ``declarative_ct.dct.spec`` documentation fragment:
every field of a spec document, with its suboptions, as options of the container module) and
``plugins/module_utils/spec_options.py`` (the argument spec the module falls back to when
declarative_ct is missing on the target, so that it can say so). Names, types, choices, required
fields and defaults come from the JSON Schema of ``ContainerSpec``; the prose comes from
:data:`DESCRIPTIONS` below, which must describe every field (the generator refuses otherwise).
Not part of the built collection (``build_ignore``).
"""

from __future__ import annotations

import argparse
import importlib.util

import os
import sys

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
COLLECTION = os.path.dirname(HERE)
FRAGMENT = os.path.join(COLLECTION, "plugins", "doc_fragments", "spec.py")
OPTIONS = os.path.join(COLLECTION, "plugins", "module_utils", "spec_options.py")

DESCRIPTIONS = {
    "name": "The container id (1 to 63 letters, digits, C(_ . + -)); unique in the state root.",
    "rootfs": ["The root filesystem: V(host) (a read-only view of the host's C(/usr), C(/bin), C(/lib*), a minimal "
               "C(/etc) and a private C(/tmp)) or an absolute directory on the target."],
    "process": "What runs in the container. Required unless O(state=absent).",
    "process.args": "The program and its arguments (argv).",
    "process.env": "Environment variables; values are strings (quote numbers). C(PATH) defaults to the usual one.",
    "process.cwd": "The working directory inside the container.",
    "process.user": "C(uid) or C(uid:gid) (numbers, quoted); C(1000) means C(1000:1000).",
    "hostname": "The hostname (needs the C(uts) namespace). Defaults to O(name).",
    "namespaces": ["The namespaces the container gets (order does not matter; C(mount) is required).",
                   "Defaults to C([pid, mount, uts, ipc, net])."],
    "mounts": "Bind mounts of host paths into the container.",
    "mounts.source": "An absolute path on the target (file or directory); it must exist.",
    "mounts.destination": "An absolute path inside the container (not C(/) nor C(/proc)).",
    "mounts.readonly": "Mount it read-only.",
    "resources": ["Limits; changing them updates the running container in place (same init process), and a limit "
                  "removed here is lifted.", "Sizes are bytes, C(64Mi), C(1Gi), C(64m), C(1g) or C(unlimited)."],
    "resources.memory": "Memory limit (size).",
    "resources.memory_reservation": "Memory soft limit (size).",
    "resources.memory_swap": "Memory plus swap limit (size), as runc counts it.",
    "resources.cpus": "CPUs as a number (C(0.5)): a quota of O(resources.cpus) times the period. Not with "
                      "O(resources.cpu_quota).",
    "resources.cpu_shares": "CPU shares (relative weight, 2 to 262144; 1024 is the default).",
    "resources.cpu_quota": "CPU time in microseconds per period (-1: no limit).",
    "resources.cpu_period": "The CFS period in microseconds (1000 to 1000000; default 100000).",
    "resources.cpuset_cpus": "CPUs the container may use, as a list such as C(0-1,3).",
    "resources.cpuset_mems": "Memory nodes the container may use, as a list such as C(0).",
    "resources.pids": "Maximum number of processes, or C(unlimited).",
    "resources.blkio_weight": "Block I/O weight (10 to 1000).",
    "network": "Networking of the container.",
    "network.mode": ["C(none) (its own network namespace with only C(lo) up), C(host) (the host's network), "
                     "C(bridge) (a veth pair on O(network.bridge)) or C(container:<name>) (the network namespace of "
                     "that container, which must exist and run).",
                     "The other suboptions are for C(bridge) only."],
    "network.bridge": "The bridge (made with the first address of O(network.subnet) if missing; up to 15 characters).",
    "network.subnet": ("The bridge's IPv4 subnet (CIDR); addresses are leased from it. Unset: the existing "
                       "bridge's, or 10.88.0.0/16 for a new one."),
    "network.address": "The container's static IPv4 address in the subnet; leased from the subnet when unset.",
    "network.gateway": "The default route's gateway; defaults to the bridge's address (the subnet's first host).",
    "network.mtu": "MTU of the container's interface (68 to 65535).",
    "network.mac": "MAC address of the container's interface.",
    "network.ipv6_address": "An IPv6 address of the container's interface (CIDR).",
    "network.ipv6_gateway": "The IPv6 default route's gateway.",
    "network.ports": ["Published ports in docker's form C([host_ip:][host_port:]container_port[/tcp|udp]), e.g. "
                      "C(127.0.0.1:8080:80/tcp) (DNAT rules in an nftables table of declarative-ct's own)."],
    "network.routes": "Extra routes inside the container.",
    "network.routes.destination": "The destination (CIDR; C(0.0.0.0/0) for a default route).",
    "network.routes.gateway": "The gateway.",
    "network.routes.source": "The preferred source address.",
    "network.routes.interface": "The interface inside the container.",
    "logging": ["The container's log: the output of each run, kept per container name (a restart or recreate "
                "keeps the previous run's; O(state=absent) deletes them), rotated by size.",
                "A change recreates the container (the monitor takes the limits when the container starts)."],
    "logging.max_size": ("The size a log file is rotated at: bytes, C(10Mi), C(1Gi), C(10m) (every suffix binary, "
                         "as for O(resources.memory)); at least C(4Ki). Defaults to C(10Mi)."),
    "logging.max_files": "Files kept per run, the current one included (1 to 100).",
    "restart": ["What to do when the program exits while the container should run: C(never), C(always), "
                "C(on-failure) or C(on-failure:N) (at most N restarts), with an exponential backoff."],
    "reload_signal": "The signal sent when a file of O(reload_on) changes.",
    "reload_on": "Absolute paths on the target whose change sends O(reload_signal) to the running container.",
    "depends_on": ["Containers this one starts after and stops before, when they are applied together "
                   "(M(declarative_ct.dct.apply)); for this module, recorded only (tasks run in playbook order).",
                   "A list of names (each must have started), or a mapping of name to condition: C(started) (it "
                   "runs), C(healthy) (its O(health) probe passes; it must declare one) or C(completed) (it exited "
                   "0, for one-shot jobs such as migrations; not with C(restart: always)), e.g. "
                   "C({db: healthy, migrate: completed})."],
    "labels": "Labels of the container (names starting with C(dct.) are reserved).",
    "health": ["A health check: exactly one probe (O(health.exec), O(health.http) or O(health.tcp)), run by the "
               "supervisor (C(dct watch)) every O(health.interval); the container is unhealthy after "
               "O(health.retries) failures in a row.",
               "A change needs no new container: the supervisor probes with the new check."],
    "health.exec": ["The program and its arguments, run inside the container as C(dct exec) runs it (the spec's "
                    "user, environment and working directory); exit status 0 passes.",
                    "A list, not a shell line: write C([sh, -c, \"...\"]) for a shell command."],
    "health.http": "An HTTP GET made from inside the container's network namespace (no published port needed).",
    "health.http.port": "The port on 127.0.0.1 inside the container (1 to 65535).",
    "health.http.path": "The request target: starts with C(/), printable ASCII without spaces (percent-encode "
                        "the rest).",
    "health.http.expect_status": "The status that passes, or a list of them (100 to 599); unset: any of 200 to 399.",
    "health.tcp": "A TCP connect made from inside the container's network namespace.",
    "health.tcp.port": "The port on 127.0.0.1 inside the container (1 to 65535).",
    "health.interval": "Time between probes (500ms to 1h): seconds, or C(2s), C(500ms), C(1m30s).",
    "health.timeout": "A probe that takes longer fails (100ms to 1h): seconds, or C(1s), C(500ms).",
    "health.retries": "Failures in a row that make the container unhealthy (1 to 100).",
    "health.start_period": ("Time after the container starts during which failures do not count (0 to 1h; "
                            "seconds, or C(30s), C(1m)); a success ends it early."),
    "health.on_unhealthy": ["What an unhealthy container triggers: C(none) (it is reported) or C(restart) (it is "
                            "restarted with the backoff of O(restart))."],
    "stop_signal": ["The signal that stops the program.",
                    "Defaults to C(SIGTERM); for O(state=absent) without it, the signal the container was made with."],
    "stop_timeout": ["Seconds from O(stop_signal) to SIGKILL when the container is stopped, recreated or removed.",
                     "Defaults to C(10); for O(state=absent) without it, the value the container was made with."],
    "seccomp": ["The syscall filter: V(default) (the semantics of docker's default profile, resolved for the "
                "container's capabilities), V(unconfined) (none), or the absolute path on the target of an OCI "
                "seccomp profile (JSON, the shape of C(linux.seccomp)).",
                "A change, also of the profile file's content, recreates the container."],
}


def _load(path: str, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


schema_utils = _load(os.path.join(COLLECTION, "plugins", "module_utils", "schema.py"), "dct_schema_utils")


def container_schema() -> dict:
    """The JSON Schema of one spec document, from the development tree's declarative_ct."""
    sys.path.insert(0, os.path.dirname(COLLECTION))
    from declarative_ct.spec.model import ContainerSpec

    return ContainerSpec.model_json_schema()


def _lines(text) -> list[str]:
    return list(text) if isinstance(text, list) else [text]


def doc_options(schema: dict, props: dict, required: list[str], prefix: str, missing: list[str]) -> dict:
    """DOCUMENTATION ``options`` (or ``suboptions``) for the properties of one object of the schema."""
    defs = schema.get("$defs", {})
    out = {}
    for name, prop in props.items():
        if not prefix and name in schema_utils.EXCLUDED:
            continue
        path = prefix + name
        if path not in DESCRIPTIONS:
            missing.append(path)
        doc = {"description": _lines(DESCRIPTIONS.get(path, f"(undocumented: add {path} to DESCRIPTIONS)"))}
        doc.update(schema_utils.ansible_type(prop, defs))
        if path == "name" or (prefix and name in required):
            doc["required"] = True
        resolved = schema_utils.resolve(prop, defs)
        if not prefix:  # the argument spec's default (options_from_schema), so that ansible-doc shows the truth
            top = schema_utils.options_from_schema({"properties": {name: prop}, "$defs": defs})[name]
            if "default" in top:
                doc["default"] = top["default"]
        elif resolved.get("default") not in (None, [], {}):
            doc["default"] = resolved["default"]
        target = resolved.get("items", resolved) if resolved.get("type") == "array" else resolved
        target = schema_utils.resolve(target, defs)
        if target.get("type") == "object" and "properties" in target:
            doc["suboptions"] = doc_options(schema, target["properties"], target.get("required", []), path + ".",
                                            missing)
        out[name] = doc
    return out


HEADER = '''# -*- coding: utf-8 -*-
# Copyright: declarative-ct developers
# Apache License 2.0 (see LICENSE of declarative-ct)
# GENERATED by tools/gen_spec_docs.py from declarative_ct's ContainerSpec: do not edit, run the tool.
'''


def fragment_text(schema: dict, missing: list[str]) -> str:
    options = doc_options(schema, schema["properties"], schema.get("required", []), "", missing)
    body = yaml.safe_dump({"options": options}, sort_keys=False, width=96, allow_unicode=True)
    return (HEADER + '"""Documentation fragment: the fields of a declarative-ct spec document as module options."""\n\n'
            "from __future__ import annotations\n\n\n"
            "class ModuleDocFragment:\n"
            "    # Every field of a spec document (dct schema), as options of declarative_ct.dct.container.\n"
            "    DOCUMENTATION = r'''\n" + body + "'''\n")


def options_text(schema: dict) -> str:
    options = schema_utils.options_from_schema(schema)
    return (HEADER + '"""The spec options\' argument spec, for when declarative_ct is missing on the target '
            '(the module then says so).\n\nWith declarative_ct installed the module derives it from the installed '
            'ContainerSpec instead\n(schema.options_from_schema), so fields added there are accepted at once.\n"""'
            "\n\nfrom __future__ import annotations\n\n"
            "SPEC_OPTIONS = {\n" + "".join(f"    {k!r}: {v!r},\n" for k, v in options.items()) + "}\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if a generated file is out of date")
    args = parser.parse_args(argv)
    schema = container_schema()
    missing: list[str] = []
    wanted = {FRAGMENT: fragment_text(schema, missing), OPTIONS: options_text(schema)}
    if missing:
        print("gen_spec_docs: no description for " + ", ".join(missing) + " (add them to DESCRIPTIONS in "
              + os.path.relpath(__file__) + ")", file=sys.stderr)
        return 1
    stale = []
    for path, text in wanted.items():
        try:
            with open(path, encoding="utf-8") as f:
                current = f.read()
        except FileNotFoundError:
            current = None
        if current != text:
            stale.append(path)
            if not args.check:
                with open(path, "w", encoding="utf-8") as f:
                    f.write(text)
    if stale and args.check:
        print("gen_spec_docs: out of date (run " + os.path.relpath(__file__) + "): "
              + ", ".join(os.path.relpath(p) for p in stale), file=sys.stderr)
        return 1
    for path in stale:
        print(f"wrote {os.path.relpath(path)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
