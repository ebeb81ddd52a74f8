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
    """``dct logs``: the logs of a container **name** (its current run, or ``--previous``), stdout
    lines to stdout and stderr lines to stderr (as docker), ``-t`` with their times; ``-f`` follows
    them until the container stops, across rotations and into a new run (a restart).

    The logs are read from ``<data_root>/logs/<name>`` (:mod:`~declarative_ct.runtime.logfiles`):
    a name whose container was deleted or is being recreated can still be read.
    """
    from ..runtime import logfiles, logread

    rt = runtime_for(args)
    store.validate_id(args.id)
    directory = logfiles.log_dir(rt.data_root, args.id)
    runs = logfiles.runs(directory)
    unlogged = ContainerError(f"container {args.id} has no logs: its output went to the caller's stdio (only "
                              "containers made with create --monitor or run -d --monitor, or by apply/watch, have logs)")
    if not runs:
        if not rt.exists(args.id):
            raise ContainerNotExists(f"container {args.id!r} does not exist in {rt.root} and has no logs in {directory}")
        raise unlogged
    if not args.previous and _unlogged(rt, args.id):
        raise unlogged  # the name's logs are an earlier container's: not this one's output
    if args.previous and len(runs) < 2:
        raise ContainerError(f"container {args.id} has no previous run: only run {runs[-1]} is logged in {directory}")
    since = logread.parse_since(args.since) if args.since else None
    follow = args.follow and not args.previous  # a previous run has ended: nothing to wait for
    reader = logread.Reader(directory, runs[-2] if args.previous else runs[-1],
                            (args.stream,) if args.stream else logread.STREAMS, since, next_runs=follow)
    out = _LogWriter(args.timestamps)
    try:
        if follow:
            out.write(reader.start(args.tail))
            out.flush()
            for batch in logread.follow(reader, _stop_check(rt, args.id)):
                out.write(batch)
                out.flush()
        else:
            entries = reader.start(args.tail)
            if args.tail is None:
                out.write(reader.read())
            entries += reader.flush()
            out.write(entries[max(0, len(entries) - args.tail):] if args.tail is not None else entries)
        out.flush()
    finally:
        reader.close()
    return 0


def _unlogged(rt: Runtime, container_id: str) -> bool:
    """Whether a container of that id exists now and its output is not logged (made without the monitor)."""
    try:
        return rt.load(container_id).log_path is None
    except ContainerError:
        return False


class _LogWriter:
    """Writes entries to stdout/stderr by stream, flushing a stream before the other is written
    (their lines interleave on a terminal as they were logged)."""

    def __init__(self, timestamps: bool) -> None:
        self.timestamps = timestamps
        self.files = {"stdout": sys.stdout.buffer, "stderr": sys.stderr.buffer}
        self.last: str | None = None

    def write(self, entries) -> None:  # noqa: ANN001 - an iterable of logread.Entry
        for e in entries:
            if e.stream != self.last:
                if self.last is not None:
                    self.files[self.last].flush()
                self.last = e.stream
            f = self.files[e.stream]
            if self.timestamps:
                f.write(e.time.encode() + b" ")
            f.write(e.text + b"\n" if e.newline else e.text)

    def flush(self) -> None:
        for f in self.files.values():
            f.flush()


STOP_GRACE = 2.0
"""Seconds ``logs -f`` waits after the container stopped for its monitor's exit record (written once
the monitor has copied its last output), before it ends anyway (a monitor that was killed)."""


def _stop_check(rt: Runtime, container_id: str):  # noqa: ANN202 - () -> bool
    """``stopped()`` for :func:`~declarative_ct.runtime.logread.follow`: true when the container is
    gone, or stopped with its exit recorded by its monitor (or :data:`STOP_GRACE` s after it stopped)."""
    since: list[float] = []

    def stopped() -> bool:
        try:
            container = rt.load(container_id)
            if container.status() != Status.STOPPED:
                since.clear()
                return False
        except ContainerError:
            return True
        if container.exit_status() is not None:
            return True
        since[:] = since or [time.monotonic()]
        return time.monotonic() - since[0] > STOP_GRACE

    return stopped


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
