"""Stage 1 in a fresh interpreter run from the sealed image (:mod:`.exeseal`).

Stage 1 forks init (``start(monitor=False)``) or the exec'd process (``exec``) inside the
container's PID namespace, where the container can see it until it execs the program. A fork
runs from its parent's executable, so a stage 1 forked from the caller (the host's interpreter)
would hand the container a process backed by a host file. :func:`exec_stage1`, in the child the
caller forked (still on the host side, in no namespace of the container), therefore re-executes
the sealed interpreter with ``-I -S`` and this module's :func:`main`, which imports only the
stdlib-only init modules, takes the :class:`~.init.InitContext` back and runs
:func:`~.init.stage1`. That costs a fresh interpreter and the init imports per stage 1 (~55 ms
here, bench/lifecycle.py ``stage1`` and ``exec``); a caller that already runs from a sealed image
forks stage 1 directly (the monitor; a CLI that re-executes itself from
:func:`.exeseal.sealed_executable` at start pays ~9 ms once instead).

The context crosses as a pickle in an anonymous memfd (argv would show it in
``/proc/<pid>/cmdline`` to the container); its fds keep their numbers across ``execve``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import pickle
import sys
from typing import Iterator

from . import exeseal, sync

# -I: no environment, user site or script directory; -S: no site (we put our package on the path).
ENTRY = "import sys; sys.path[:0] = [sys.argv[1]]; from declarative_ct.runtime.bootstrap import main; main()"
_PACKAGE_PARENT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
_running_sealed: bool | None = None  # per process (a fork keeps its parent's image)
_exe = -1  # the sealed image, made by prepared() in the caller: the forked child takes no lock


@contextlib.contextmanager
def prepared(ctx) -> Iterator[int]:
    """In the caller, around its ``fork`` of stage 1 (``ctx`` an ``init.InitContext``): make all
    that :func:`exec_stage1` needs, so that the child, which may be the fork of a multi-threaded
    process (the TUI, Ansible), takes no lock and allocates nothing before it execs.

    Yields the payload descriptor to pass to :func:`exec_stage1`: a close-on-exec memfd holding
    the pickled context, closed here on the way out; -1 when this process already runs from a
    sealed image (stage 1 then runs in the fork itself). The sealed image is made once per
    process.

    Raises:
        OSError: no sealed image or memfd can be made (see :func:`.exeseal.sealed_executable`).
    """
    global _running_sealed, _exe
    if _running_sealed is None:
        _running_sealed = exeseal.running_sealed()
    if _running_sealed:
        yield -1
        return
    _exe = exeseal.sealed_executable()
    payload = _payload(ctx)
    try:
        yield payload
    finally:
        os.close(payload)


def fork_stage1(ctx, parent_end) -> int:
    """Fork stage 1 for ``ctx`` (an ``init.InitContext``) from a sealed image (its fork is seen in
    the container): :func:`prepared` around the ``fork``; the child closes ``parent_end`` (the
    caller's end of the sync socket) and runs :func:`exec_stage1`. Returns the child's pid.

    Raises:
        OSError: no sealed image or memfd can be made, or no fork (nothing was started).
    """
    with prepared(ctx) as payload:
        pid = os.fork()
        if pid == 0:
            parent_end.close()
            exec_stage1(ctx, payload)
    return pid


def exec_stage1(ctx, payload: int) -> None:
    """In the child forked for stage 1 inside :func:`prepared` (``payload`` what it yielded):
    become stage 1 in the sealed image, or run it here when this process already runs from one.
    Only marks descriptors inheritable and execs. Never returns; errors go to the parent over
    ``ctx.sync`` as stage 1's own do."""
    from . import init

    try:
        if _running_sealed:
            init.stage1(ctx)
        if payload < 0 or _exe < 0:
            raise RuntimeError("stage 1 forked outside bootstrap.prepared(): no sealed image or payload")
        fds = {payload, ctx.sync.fileno(), *ctx.stdio, *ctx.process.extra_files}
        fds |= {ctx.fifo_fd} if ctx.fifo_fd >= 0 else set()
        for fd in fds:
            os.set_inheritable(fd, True)
        os.execve(_exe, [sys.executable, "-I", "-S", "-c", ENTRY, _PACKAGE_PARENT, str(payload),
                         str(ctx.sync.fileno())], os.environ)
    except BaseException as err:  # noqa: BLE001 - everything goes back to the parent
        init._fail(ctx, err)


def plain_context(ctx):
    """``ctx`` (an ``init.InitContext``) without its live objects (the sync socket, the process's
    stdio files), as it is pickled for a stage 1 in another process; its fds stay plain numbers."""
    return dataclasses.replace(ctx, sync=None, process=dataclasses.replace(ctx.process, stdin=None, stdout=None,
                                                                          stderr=None))


def _payload(ctx) -> int:
    """A close-on-exec memfd holding the pickled context, its fds as plain numbers (made in the
    caller: the child only marks it inheritable)."""
    return memfd_of("dct-stage1", pickle.dumps(plain_context(ctx), protocol=pickle.HIGHEST_PROTOCOL))


def memfd_of(name: str, data: bytes) -> int:
    """A close-on-exec memfd named ``name`` holding ``data``, at offset 0; the caller closes it. Raises OSError."""
    fd = os.memfd_create(name, os.MFD_CLOEXEC)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        os.lseek(fd, 0, os.SEEK_SET)
    except BaseException:
        os.close(fd)
        raise
    return fd


def main() -> None:
    """The entry of the sealed interpreter (``argv``: package parent, payload fd, sync fd).

    Imports all that stage 1 and init will run, takes the context back and runs
    :func:`~.init.stage1`, which loads no module from a path from then on
    (:func:`~.init.no_path_imports`). Never returns.
    """
    import socket

    payload, sync_fd = int(sys.argv[2]), int(sys.argv[3])
    try:
        from . import init

        chunks = []
        while chunk := os.read(payload, 1 << 16):
            chunks.append(chunk)
        os.close(payload)
        ctx = pickle.loads(b"".join(chunks))
    except BaseException as err:  # noqa: BLE001 - no context yet: report on the bare sync socket
        try:
            message = f"stage 1: {type(err).__name__}: {err}" if str(err) else f"stage 1: {type(err).__name__}"
            sync.send(socket.socket(fileno=sync_fd), sync.Kind.ERROR, message=message)
        finally:
            os._exit(1)
    init.stage1(dataclasses.replace(ctx, sync=socket.socket(fileno=sync_fd)))
