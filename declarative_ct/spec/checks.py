"""What one document cannot tell alone: checks across documents and against the host.

Across the documents of one load (:func:`check_across`): unique names, ``depends_on`` and
``network.mode: container:<name>`` naming a spec, conditions that can hold (``healthy`` of a spec
with a probe, ``completed`` of one that is not restarted always nor joined for its network, neither
of a spec whose ``state`` is ``stopped`` or ``paused``), no dependency cycle, no two bridge specs
claiming one address or host port. Against the host: the rootfs directory, mount sources and
seccomp profile file exist (:func:`check_host_paths` for files, relative to the file's
directory; :func:`host_path_errors` for inline specs, absolute). :func:`resolve_paths` makes a
valid spec's host paths absolute. ``loader``: what collects the errors (``docs``, ``error(…)``).
"""

from __future__ import annotations

import os
import re

from yaml.nodes import Node

from ..errors import ConfigInvalid
from .forms import joined_container
from .messages import SpecError, field_name
from .model import NAME_PATTERN, SECCOMP_KEYWORDS, ContainerSpec
from .yaml_nodes import Doc, pos


def check_across(loader) -> None:  # noqa: ANN001 - load._Loader
    """Errors between documents and with the host: duplicate names, depends_on, host paths."""
    by_name: dict[str, list[tuple[Doc, Node]]] = {}
    for doc in loader.docs:
        if not isinstance(doc.data, dict):
            continue
        name = doc.data.get("name")
        if isinstance(name, str):
            node, _, _ = doc.builder.locate(doc.root, ("name",))
            by_name.setdefault(name, []).append((doc, node))
        check_host_paths(loader, doc)
    for name, places in by_name.items():
        if len(places) > 1:
            for doc, node in places:
                others = ", ".join(f"{d.file}:{n.start_mark.line + 1}:{n.start_mark.column + 1}"
                                   for d, n in places if n is not node)
                loader.error(doc.file, *pos(node), "name", f"duplicate name `{name}` (also at {others})", doc.order)
    edges: dict[str, list[tuple[str, Node, str]]] = {}
    for name, places in by_name.items():
        edges[name] = []
        for doc, _ in places:  # every document of a duplicated name is checked too
            network = doc.data.get("network")
            mode = network.get("mode") if isinstance(network, dict) else None
            joined = joined_container({"mode": mode}) if isinstance(mode, str) else None
            for dep, loc, condition in _depends_on(doc.data.get("depends_on")):
                if dep == name:
                    continue
                node, key_node, _ = doc.builder.locate(doc.root, loc)
                if isinstance(loc[-1], str):  # the mapping form: the name is the key
                    node = key_node
                if dep not in by_name:
                    loader.error(doc.file, *pos(node), field_name(loc),
                               f"unknown container `{dep}` (no spec names it)", doc.order, value=dep)
                    continue
                if doc is places[0][0]:  # the cycle check follows one document per name
                    edges[name].append((dep, node, field_name(loc)))
                problem = condition_problem(dep, condition, by_name[dep][0][0], joins=dep == joined)
                if problem:
                    value_node, _, _ = doc.builder.locate(doc.root, loc)
                    loader.error(doc.file, *pos(value_node), field_name(loc), problem, doc.order)
            if joined is not None and joined != name:
                node, _, _ = doc.builder.locate(doc.root, ("network", "mode"))
                if joined not in by_name:
                    loader.error(doc.file, *pos(node), "network.mode",
                               f"unknown container `{joined}` (no spec names it)", doc.order, value=joined)
                elif doc is places[0][0]:
                    edges[name].append((joined, node, "network.mode"))
    check_cycles(loader, by_name, edges)
    check_network_clashes(loader)


def _depends_on(deps: object) -> list[tuple[str, tuple, str | None]]:
    """``(name, location, condition)`` of each valid name in a document's ``depends_on`` as written:
    ``("db", ("depends_on", 0), None)`` in the list form, ``("db", ("depends_on", "db"), "healthy")``
    in the mapping form (a condition that is not a string: None). Bad names are the model's to report."""
    if isinstance(deps, list):
        items = [(dep, ("depends_on", i), None) for i, dep in enumerate(deps)]
    elif isinstance(deps, dict):
        items = [(dep, ("depends_on", dep), cond if isinstance(cond, str) else None) for dep, cond in deps.items()]
    else:
        return []
    return [item for item in items if isinstance(item[0], str) and re.match(NAME_PATTERN, item[0])]


def condition_problem(dep: str, condition: str | None, target: Doc, joins: bool = False) -> str | None:
    """Why ``depends_on: {dep: condition}`` can never hold, given the document that declares ``dep``
    (``target``) and whether the dependent joins ``dep``'s network (``joins``: its ``network.mode``
    is ``container:<dep>``): ``healthy`` or ``completed`` of a container whose ``state`` is
    ``stopped`` (created, never started) or ``paused`` (frozen: no probe runs, it never exits);
    ``healthy`` without a ``health:`` probe there; ``completed`` of a ``restart: always`` container
    (started again each time it exits); ``completed`` of the container whose network the dependent
    joins (the dependent is created in that container's network namespace, which needs its init
    alive). None when it can (or when ``dep``'s own document is invalid)."""
    spec = getattr(target, "spec", None)
    if spec is None or condition not in ("healthy", "completed"):
        return None
    if spec.state == "stopped":
        return f"{condition} never holds for `{dep}`: its state: stopped creates it without starting it"
    if spec.state == "paused":
        return f"{condition} never holds for `{dep}`: its state: paused keeps it frozen (no probe runs, it never exits)"
    if condition == "healthy" and spec.health is None:
        return f"healthy needs `{dep}` to declare health: (a probe), and its spec has none"
    if condition == "completed" and spec.restart == "always":
        return f"completed never holds for `{dep}`: its restart: always starts it again whenever it exits"
    if condition == "completed" and joins:
        return (f"completed never holds for `{dep}` before this container is created: network.mode "
                f"container:{dep} joins `{dep}`'s network namespace, which needs `{dep}` running")
    return None


def check_network_clashes(loader) -> None:  # noqa: ANN001
    """Two specs with the same static address on a bridge, or publishing the same host port:
    both are named, as apply would fail the second only after making the first."""
    claims: dict[tuple, list[tuple[Doc, tuple, str]]] = {}
    for doc in loader.docs:
        spec = getattr(doc, "spec", None)
        if spec is None or spec.network.mode != "bridge" or spec.state == "absent":
            continue
        if spec.network.address:
            ip = spec.network.address.split("/")[0]
            claims.setdefault(("address", spec.network.bridge, ip), []).append(
                (doc, ("network", "address"), f"address {ip} on bridge {spec.network.bridge}"))
        for i, port in enumerate(spec.network.to_ports()):
            claims.setdefault(("port", port.protocol, port.host_port), []).append(
                (doc, ("network", "ports", i), f"host port {port.host_port}/{port.protocol}"))
    for places in claims.values():
        if len({d.spec.name for d, _, _ in places}) < 2:
            continue
        for doc, loc, what in places:
            others = ", ".join(f"`{d.spec.name}`" for d, _, _ in places if d.spec.name != doc.spec.name)
            node, _, _ = doc.builder.locate(doc.root, loc)
            loader.error(doc.file, *pos(node), field_name(loc), f"{what} is also claimed by {others}", doc.order)


def check_cycles(loader, by_name: dict[str, list[tuple[Doc, Node]]],
                 edges: dict[str, list[tuple[str, Node, str]]]) -> None:
    """One error per dependency edge that closes a cycle (iterative depth-first search)."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    for start in edges:
        if start in state:
            continue
        state[start] = 1
        path, stack = [start], [(start, iter(edges[start]))]
        while stack:
            name, it = stack[-1]
            for dep, node, field in it:
                if dep not in state:
                    state[dep] = 1
                    path.append(dep)
                    stack.append((dep, iter(edges[dep])))
                    break
                if state[dep] == 1:
                    cycle = " → ".join(path[path.index(dep):] + [dep])
                    doc = by_name[name][0][0]
                    loader.error(doc.file, *pos(node), field, f"dependency cycle: {cycle}", doc.order)
            else:
                state[name] = 2
                path.pop()
                stack.pop()


def check_host_paths(loader, doc: Doc) -> None:  # noqa: ANN001
    """The rootfs directory and mount sources must exist (relative to the file's directory)."""
    data = doc.data
    assert isinstance(data, dict)
    rootfs = data.get("rootfs")
    if isinstance(rootfs, str) and rootfs != "host":
        node, _, _ = doc.builder.locate(doc.root, ("rootfs",))
        full = absolute(doc.base, rootfs)
        if not rootfs:
            problem = 'must be "host" or a directory'
        elif not os.path.exists(full):
            problem = f"directory does not exist: {full}"
        elif not os.path.isdir(full):
            problem = f"not a directory: {full}"
        elif os.path.islink(full):  # the runtime refuses it (Config.validate): say so before anything is done
            problem = f"{full} is a symlink; give the real directory ({os.path.realpath(full)})"
        else:
            problem = None
        if problem and id(node) not in doc.builder.bad:
            loader.error(doc.file, *pos(node), "rootfs", problem, doc.order)
    mounts = data.get("mounts")
    for i, mount in enumerate(mounts if isinstance(mounts, list) else []):
        source = mount.get("source") if isinstance(mount, dict) else None
        if not isinstance(source, str):
            continue
        node, _, _ = doc.builder.locate(doc.root, ("mounts", i, "source"))
        full = absolute(doc.base, source)
        problem = "must not be empty" if not source else None if os.path.exists(full) else f"does not exist: {full}"
        if problem and id(node) not in doc.builder.bad:
            loader.error(doc.file, *pos(node), f"mounts[{i}].source", problem, doc.order)
    profile = data.get("seccomp")
    if isinstance(profile, str) and profile and profile not in SECCOMP_KEYWORDS:
        node, _, _ = doc.builder.locate(doc.root, ("seccomp",))
        problem = seccomp_problem(absolute(doc.base, profile))
        if problem and id(node) not in doc.builder.bad:
            loader.error(doc.file, *pos(node), "seccomp", problem, doc.order)


def host_path_errors(data: dict, source: str) -> list[SpecError]:
    """Absolute and existing: the rootfs directory and mount sources; absolute: reload_on (may not exist yet)."""
    out = []
    relative = "must be an absolute path on the host (there is no spec file to resolve it against)"
    rootfs = data.get("rootfs")
    if isinstance(rootfs, str) and rootfs != "host":
        if not rootfs:
            out.append(SpecError(source, 0, 0, "rootfs", 'must be "host" or a directory'))
        elif not os.path.isabs(rootfs):
            out.append(SpecError(source, 0, 0, "rootfs", relative))
        elif not os.path.isdir(rootfs):
            what = "not a directory" if os.path.exists(rootfs) else "directory does not exist"
            out.append(SpecError(source, 0, 0, "rootfs", f"{what}: {rootfs}"))
    mounts = data.get("mounts")
    for i, mount in enumerate(mounts if isinstance(mounts, list) else []):
        path = mount.get("source") if isinstance(mount, dict) else None
        if isinstance(path, str):
            if not path:
                out.append(SpecError(source, 0, 0, f"mounts[{i}].source", "must not be empty"))
            elif not os.path.isabs(path):
                out.append(SpecError(source, 0, 0, f"mounts[{i}].source", relative))
            elif not os.path.exists(path):
                out.append(SpecError(source, 0, 0, f"mounts[{i}].source", f"does not exist: {path}"))
    reload_on = data.get("reload_on")
    for i, path in enumerate(reload_on if isinstance(reload_on, list) else []):
        if isinstance(path, str) and not os.path.isabs(path):
            out.append(SpecError(source, 0, 0, f"reload_on[{i}]", relative))
    profile = data.get("seccomp")
    if isinstance(profile, str) and profile and profile not in SECCOMP_KEYWORDS:
        problem = (f'must be "default", "unconfined" or an absolute path to a profile file on the host '
                   f'(there is no spec file to resolve "{profile}" against)'
                   if not os.path.isabs(profile) else seccomp_problem(profile))
        if problem:
            out.append(SpecError(source, 0, 0, "seccomp", problem))
    return out


def seccomp_problem(path: str) -> str | None:
    """Why the seccomp profile at ``path`` cannot be used (missing, not JSON, a bad field), or None."""
    from ..configs.seccomp import read_profile

    if not os.path.isfile(path):
        return (f"not default, unconfined or an existing profile file: {path} does not exist"
                if not os.path.exists(path) else f"not a file: {path}")
    try:
        read_profile(path)  # remembered: normalized() and the conversion do not read it again
    except ConfigInvalid as err:
        return str(err)
    return None


def absolute(base: str, path: str) -> str:
    """``path`` made absolute against the directory ``base`` (normalized)."""
    return os.path.normpath(os.path.join(base, path))


def resolve_paths(spec: ContainerSpec, base: str) -> ContainerSpec:
    """``spec`` with rootfs (unless ``host``), mount sources and reload_on made absolute against ``base``."""
    update: dict[str, object] = {
        "mounts": [m.model_copy(update={"source": absolute(base, m.source)}) for m in spec.mounts],
        "reload_on": [absolute(base, p) for p in spec.reload_on],
    }
    if spec.rootfs != "host":
        update["rootfs"] = absolute(base, spec.rootfs)
    if spec.seccomp not in SECCOMP_KEYWORDS:
        update["seccomp"] = absolute(base, spec.seccomp)
    return spec.model_copy(update=update)
