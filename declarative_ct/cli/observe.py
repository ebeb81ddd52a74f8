"""The ``dct`` verbs that only read a container: state, list, ps, logs, events."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

from ..errors import ContainerError, ContainerNotExists
from ..runtime import Container, Runtime, Status, store
from .common import print_table, runtime_for


def _state_json(container: Container, owner: str = "") -> dict:
    """runc's ``containerState``: ociVersion, id, pid (0 when stopped), status, bundle, rootfs, created…"""
    oci = container.oci_state()
    st = container.state()
    out = {"ociVersion": oci["ociVersion"], "id": container.id, "pid": oci.get("pid", 0),
           "status": oci["status"], "bundle": oci["bundle"], "rootfs": container.config.rootfs,
           "created": st.created}
    if "annotations" in oci:
        out["annotations"] = oci["annotations"]
    out["owner"] = owner
    return out


def _corrupt_row(cid: str, err: Exception, owner: str = "") -> dict:
    """:func:`_state_json`'s shape for a container whose state.json cannot be read back: status
    ``unknown``, the fields it would take from the state empty, and the reason in ``error``."""
    return {"ociVersion": "", "id": cid, "pid": 0, "status": str(Status.UNKNOWN), "bundle": "", "rootfs": "",
            "created": "", "owner": owner, "error": str(err)}


def cmd_state(args: argparse.Namespace) -> int:
    """``dct state``: runc's state JSON, indented, no trailing newline."""
    sys.stdout.write(json.dumps(_state_json(runtime_for(args).load(args.id)), indent=2))
    return 0


def _owner(container: Container) -> str:
    return _owner_of(container.state_dir)


def _owner_of(state_dir: str) -> str:
    import pwd
    try:
        return pwd.getpwuid(os.stat(state_dir).st_uid).pw_name
    except (KeyError, OSError):
        return ""


def cmd_list(args: argparse.Namespace) -> int:
    """``dct list``: runc's table (ID PID STATUS BUNDLE CREATED OWNER), or a JSON array (``null`` when empty).

    A container whose state.json cannot be read is listed too, with status ``unknown`` (and, in
    JSON, its ``error``), and an error line naming it goes to stderr: its processes may be running.
    """
    rt = runtime_for(args)
    containers, corrupt = rt.list_with_errors()
    for cid, err in corrupt.items():
        print(f"dct: {err} (dct delete --force {cid} removes it)", file=sys.stderr)
    if args.quiet:
        for cid in sorted([c.id for c in containers] + list(corrupt)):
            print(cid)
        return 0
    rows = [_state_json(c, _owner(c)) for c in containers]
    rows += [_corrupt_row(cid, err, _owner_of(os.path.join(rt.root, cid))) for cid, err in corrupt.items()]
    rows.sort(key=lambda r: r["id"])
    if args.format == "json":
        print(json.dumps(rows or None))
        return 0
    table = [("ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER")]
    table += [(r["id"], str(r["pid"]), r["status"], r["bundle"], r["created"], r["owner"]) for r in rows]
    print_table(table)
    return 0


def cmd_ps(args: argparse.Namespace) -> int:
    """``dct ps``: the cgroup's host PIDs as JSON, or the host's ``ps`` rows for them."""
    pids = runtime_for(args).load(args.id).processes()
    if args.format == "json":
        print(json.dumps(pids))
        return 0
    import subprocess

    # As runc: run the host's ps and keep the header and the rows whose PID is in the cgroup.
    out = subprocess.run(["ps", *(args.ps_args or ["-ef"])], capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise ContainerError(f"ps {' '.join(args.ps_args or ['-ef'])} failed: {out.stderr.strip()}")
    lines = out.stdout.splitlines()
    header = lines[0].split()
    if "PID" not in header:
        raise ContainerError("ps output has no PID column")
    col = header.index("PID")
    print(lines[0])
    wanted = set(pids)
    for line in lines[1:]:
        fields = line.split()
        if len(fields) > col and fields[col].isdigit() and int(fields[col]) in wanted:
            print(line)
    return 0


def cmd_logs(args: argparse.Namespace) -> int:
    """``dct logs``: a detached container's stdout.log to stdout and stderr.log to stderr; -f follows."""
    rt = runtime_for(args)
    store.validate_id(args.id)
    if not rt.exists(args.id):
        raise ContainerNotExists(f"container {args.id!r} does not exist in {rt.root}")
    state_dir = os.path.join(rt.root, args.id)
    streams = []
    for name, out in ((store.STDOUT_LOG, sys.stdout.buffer), (store.STDERR_LOG, sys.stderr.buffer)):
        try:
            streams.append((open(os.path.join(state_dir, name), "rb"), out))
        except FileNotFoundError:
            continue
    if not streams:
        raise ContainerError(f"container {args.id} has no log files: its output went to the caller's stdio "
                             "(only containers made with create --monitor or run -d --monitor have them)")
    while True:
        stopped = not args.follow or _stopped(rt, args.id)  # read once more after it stopped
        for f, out in streams:
            data = f.read()
            if data:
                out.write(data)
                out.flush()
        if stopped:
            return 0
        time.sleep(0.2)


def _stopped(rt: Runtime, container_id: str) -> bool:
    try:
        return rt.load(container_id).status() == Status.STOPPED
    except ContainerError:
        return True


def cmd_events(args: argparse.Namespace) -> int:
    """``dct events``: runc's JSON lines, ``{"type":"stats","id","data"}`` every --interval and ``oom`` at once.

    With ``--stats`` one stats line and exit. Otherwise it ends (exit 0) when the container
    stops; a stopped container is refused at the start, as by runc.
    """
    from ..runtime import events

    interval = events.parse_duration(args.interval, "--interval")
    container = runtime_for(args).load(args.id)
    stream = [events.stats_event(container)] if args.stats else events.events(container, interval)
    for event in stream:
        sys.stdout.write(json.dumps(event, separators=(",", ":")) + "\n")
        sys.stdout.flush()
    return 0
