"""The parent↔init sync messages (runtime/sync.py): the wire format, descriptors, bad packets."""

from __future__ import annotations

import json
import os
import socket

import pytest

from declarative_ct.runtime import sync
from declarative_ct.runtime.sync import Kind, Message


@pytest.fixture
def pair():
    parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    with parent, child:
        yield parent, child


@pytest.mark.parametrize(("kind", "fields", "wire"), [
    (Kind.USERMAP, {}, {"type": "usermap"}),
    (Kind.USERMAP_DONE, {}, {"type": "usermap-done"}),
    (Kind.PID, {"pid": 4242}, {"type": "pid", "pid": 4242}),
    (Kind.HOOKS, {}, {"type": "hooks"}),
    (Kind.HOOKS_DONE, {}, {"type": "hooks-done"}),
    (Kind.READY, {}, {"type": "ready"}),
    (Kind.RUN, {}, {"type": "run"}),
    (Kind.ERROR, {"message": "mount /proc: permission denied"},
     {"type": "error", "message": "mount /proc: permission denied"}),
])
def test_each_kind_round_trips_in_the_documented_wire_format(pair, kind, fields, wire):
    parent, child = pair
    sync.send(child, kind, **fields)
    raw = parent.recv(65536)
    assert json.loads(raw) == wire  # the format stage 1, init and bootstrap.main all speak
    assert Message.decode(raw) == Message(kind, **fields)
    sync.send(child, kind, **fields)
    assert sync.recv(parent) == Message(kind, **fields)


def test_a_console_message_brings_its_descriptor_close_on_exec(pair):
    parent, child = pair
    r, w = os.pipe()
    try:
        sync.send(child, Kind.CONSOLE, fd=w)
        msg = sync.recv(parent)
    finally:
        os.close(w)
    try:
        assert msg.kind == Kind.CONSOLE and msg.fd >= 0 and msg.fd != w
        assert not os.get_inheritable(msg.fd)
        os.write(msg.fd, b"x")  # the same pipe, passed over SCM_RIGHTS
        assert os.read(r, 1) == b"x"
    finally:
        os.close(msg.fd)
        os.close(r)


def test_a_closed_peer_is_none_and_received_is_false(pair):
    parent, child = pair
    child.shutdown(socket.SHUT_WR)
    assert sync.recv(parent) is None
    assert sync.received(parent, Kind.RUN) is False


def test_received_is_true_only_for_the_kind_asked(pair):
    parent, child = pair
    sync.send(parent, Kind.RUN)
    assert sync.received(child, Kind.RUN)
    sync.send(parent, Kind.ERROR, message="gave up")
    assert not sync.received(child, Kind.HOOKS_DONE)


@pytest.mark.parametrize("raw", [b"not json", b"[1]", b'{"type": "shutdown"}', b'{"type": ["pid"]}', b'{"pid": 3}',
                                 b'{"type": "pid", "pid": "3"}', b'{"type": "error", "message": 7}'])
def test_a_malformed_message_is_a_value_error_and_its_descriptor_is_closed(pair, raw):
    parent, child = pair
    r, w = os.pipe()
    try:
        socket.send_fds(child, [raw], [w])
        opened = set(os.listdir("/proc/self/fd"))
        with pytest.raises(ValueError):
            sync.recv(parent)
        assert set(os.listdir("/proc/self/fd")) == opened  # the received copy was closed again
    finally:
        os.close(r)
        os.close(w)


def test_describe_says_an_errors_message_or_the_unwanted_kind():
    assert Message(Kind.ERROR, message="exec /bin/nope: no such file").describe() == "exec /bin/nope: no such file"
    assert Message(Kind.READY).describe() == "unexpected sync message 'ready'"


def test_an_error_carries_its_errno_and_stage_and_becomes_init_failed():
    import errno as errno_mod

    from declarative_ct.errors import ContainerError, InitFailed
    from declarative_ct.runtime.container.parent import failure as _failure

    raw = Message(Kind.ERROR, message="mount /proc: Permission denied", errno=errno_mod.EACCES,
                  stage="rootfs").encode()
    assert json.loads(raw) == {"type": "error", "message": "mount /proc: Permission denied", "errno": 13,
                               "stage": "rootfs"}
    err = _failure(Message.decode(raw), "container init")
    assert isinstance(err, InitFailed) and isinstance(err, ContainerError)
    assert (err.stage, err.errno, err.message) == ("rootfs", errno_mod.EACCES, "mount /proc: Permission denied")
    assert str(err) == "container init failed: mount /proc: Permission denied"  # the text callers saw before
    assert json.loads(Message(Kind.ERROR, message="x").encode()) == {"type": "error", "message": "x"}
