"""The monitor's request (runtime/monitor_request.py): JSON data, never a pickle."""

from __future__ import annotations

import dataclasses
import json
import pickle
import resource
import socket

import pytest

from declarative_ct.configs import Capabilities, Config, Hook, IDMap, Namespace, Rlimit
from declarative_ct.errors import ConfigInvalid
from declarative_ct.runtime import cgroups, init, monitor_request, monitord
from declarative_ct.runtime.process import Process

_PATHS = {"memory": "/sys/fs/cgroup/memory/dct/req", "pids": "/sys/fs/cgroup/pids/dct/req"}


@pytest.fixture
def ctx():
    config = Config(rootfs="/var/lib/box", hostname="box",
                    namespaces=[Namespace("NEWNS"), Namespace("NEWPID"), Namespace("NEWNET", "/proc/1/ns/net"),
                                Namespace("NEWUSER")],
                    uid_mappings=[IDMap(0, 100000, 65536)], gid_mappings=[IDMap(0, 100000, 65536)],
                    rlimits=[Rlimit(resource.RLIMIT_NOFILE, 1024, 512)],
                    hooks={"prestart": [Hook(path="/bin/true", args=["true"], env=["A=1"], timeout=5)]})
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    process = Process(["/bin/sh", "-c", "echo hi"], env=["PATH=/bin", "TERM=xterm"], cwd="/tmp", uid=1000, gid=1000,
                      additional_groups=[10, 20], capabilities=Capabilities(Bounding=["CAP_KILL"], Effective=[],
                                                                            Permitted=["CAP_KILL"]),
                      no_new_privileges=False, rlimits=[Rlimit(resource.RLIMIT_NPROC, 64, 32)], umask=0o027,
                      stdin=3, stdout=4, terminal=True, console_size=(24, 80), console_socket=b)
    yield init.InitContext(config=config, process=process, sync=a, cgroup=cgroups.manager_from_paths(_PATHS),
                           stdio=(7, 8, 9), rootfs="/var/lib/box", fifo_fd=12,
                           join=[("NEWNET", "/proc/1/ns/net")], unshare=0x10000000 | 0x20000000,
                           seccomp=bytes(range(256)) * 3, seccomp_flags=1,
                           cgroup_mounts=[("memory", _PATHS["memory"])],
                           hook_state={"ociVersion": "1.0.2", "id": "req", "bundle": "/b", "annotations": {"k": "v"}})
    a.close()
    b.close()


INHERIT = {"rlimits": {resource.RLIMIT_NOFILE: (1024, 4096), resource.RLIMIT_CORE: (0, resource.RLIM_INFINITY)},
           "umask": 0o022, "oom_score_adj": "0"}


LOG = {"path": "/var/lib/dct/logs/req/3.log", "max_size": 1 << 20, "max_files": 2, "streams": ["stdout", "stderr"]}


def test_a_request_round_trips_as_json(ctx):
    payload = monitor_request.encode("/run/dct/req", ctx, INHERIT)
    json.loads(payload)  # plain JSON: nothing in it is code to run
    state_dir, got, inherit, log = monitor_request.decode(payload)
    assert state_dir == "/run/dct/req" and log is None
    assert inherit == INHERIT
    assert got.config == ctx.config
    # The caller's live objects stay with the caller: stdio and the sync socket come as fds by position.
    assert got.process == dataclasses.replace(ctx.process, stdin=None, stdout=None, console_socket=None)
    assert (got.stdio, got.fifo_fd, got.sync) == ((0, 1, 2), 4, None)
    assert type(got.cgroup) is type(ctx.cgroup) and got.cgroup.paths() == _PATHS  # rebuilt from its paths
    for name in ("rootfs", "join", "unshare", "seccomp", "seccomp_flags", "cgroup_mounts", "hook_state"):
        assert getattr(got, name) == getattr(ctx, name), name


def test_the_log_part_round_trips(ctx):
    """The log file, its rotation and which streams are piped (their read ends follow the init's fds)."""
    _, _, _, log = monitor_request.decode(monitor_request.encode("/run/dct/req", ctx, INHERIT, LOG))
    assert log == LOG


def _mutated(ctx, change) -> bytes:
    request = json.loads(monitor_request.encode("/run/dct/req", ctx, INHERIT, LOG))
    change(request)
    return json.dumps(request).encode()


@pytest.mark.parametrize(("change", "error", "match"), [
    (lambda r: r.pop("init"), ValueError, "not an object with an init"),
    (lambda r: r.update(state_dir="req"), ValueError, "state_dir"),
    (lambda r: r["init"].pop("join"), ValueError, "fields"),
    (lambda r: r["init"].update(ctx=1), ValueError, "fields"),
    (lambda r: r["init"].update(join=[["NEWTIME", "/x"]]), ValueError, "join"),
    (lambda r: r["init"].update(join=[["NEWNET"]]), ValueError, "join"),
    (lambda r: r["init"].update(unshare=-1), ValueError, "unshare"),
    (lambda r: r["init"].update(unshare="0"), ValueError, "unshare"),
    (lambda r: r["init"].update(cgroup_paths={"memory": "relative"}), ValueError, "cgroup_paths"),
    (lambda r: r["init"].update(cgroup_paths={}), ValueError, "cgroup_paths"),
    (lambda r: r["init"].update(seccomp="zz"), ValueError, "seccomp"),
    (lambda r: r["init"].update(hook_state=[]), ValueError, "hook_state"),
    (lambda r: r["init"]["process"].update(init=False), ValueError, "process"),
    (lambda r: r["init"]["process"].update(extra_files=[5]), ValueError, "process"),
    (lambda r: r["init"]["process"].update(stdin=0), ConfigInvalid, "unknown fields stdin"),
    (lambda r: r["init"]["process"].update(uid=-1), ConfigInvalid, "process.uid"),
    (lambda r: r["init"]["process"].pop("args"), ConfigInvalid, "malformed process"),
    (lambda r: r["init"]["config"].update(mounts=[{"nowhere": 1}]), ConfigInvalid, "malformed saved config"),
    (lambda r: r["inherit"].update(rlimits=[[7, "x"]]), ValueError, "inherit.rlimits"),
    (lambda r: r["inherit"].update(umask="022"), ValueError, "inherit: malformed"),
    (lambda r: r.update(log=[]), ValueError, "request.log: malformed"),
    (lambda r: r["log"].pop("streams"), ValueError, "request.log: malformed"),
    (lambda r: r["log"].update(path="logs/3.log"), ValueError, "request.log.path"),
    (lambda r: r["log"].update(path="/etc/shadow"), ValueError, "request.log.path"),
    (lambda r: r["log"].update(streams=["stdout", "stdout"]), ValueError, "request.log.streams"),
    (lambda r: r["log"].update(streams=["stdin"]), ValueError, "request.log.streams"),
    (lambda r: r["log"].update(streams=[]), ValueError, "request.log.streams"),
    (lambda r: r["log"].update(max_size=10), ConfigInvalid, "log.max_size"),
    (lambda r: r["log"].update(max_files=0), ConfigInvalid, "log.max_files"),
])
def test_a_malformed_request_is_refused_naming_what(ctx, change, error, match):
    with pytest.raises(error, match=match):
        monitor_request.decode(_mutated(ctx, change))


def test_a_pickle_is_not_a_request():
    with pytest.raises(ValueError):
        monitor_request.decode(pickle.dumps({"state_dir": "/run/dct/req", "ctx": None, "inherit": {}}))
