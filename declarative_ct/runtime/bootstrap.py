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

import dataclasses
import os
import pickle
import sys

from . import exeseal

# -I: no environment, user site or script directory; -S: no site (we put our package on the path).
ENTRY = "import sys; sys.path[:0] = [sys.argv[1]]; from declarative_ct.runtime.bootstrap import main; main()"
_PACKAGE_PARENT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
_running_sealed: bool | None = None  # per process (a fork keeps its parent's image)
_exe = -1  # the sealed image, made by prepare() in the caller: the forked child takes no lock


def prepare() -> None:
    """In the caller, before it forks stage 1: make (once per process) what :func:`exec_stage1`
    needs, so that each fork inherits it rather than making its own.

    Raises:
        OSError: no sealed image can be made (see :func:`.exeseal.sealed_executable`).
    """
    global _running_sealed, _exe
    if _running_sealed is None:
        _running_sealed = exeseal.running_sealed()
    if not _running_sealed:
        _exe = exeseal.sealed_executable()


def exec_stage1(ctx) -> None:
    """In the child forked for stage 1 (``ctx`` an ``init.InitContext``; the caller ran
    :func:`prepare`): become stage 1 in the sealed image, or run it here when this process
    already runs from one. Never returns; errors go to the parent over ``ctx.sync`` as stage 1's
    own do."""
    from . import init

    try:
        if _running_sealed:
            init.stage1(ctx)
        # Not sealed_executable() here: a thread of the caller may have held its lock at the fork.
        exe = _exe if _exe >= 0 else exeseal.sealed_executable()
        fds = {ctx.sync.fileno(), *ctx.stdio} | ({ctx.fifo_fd} if ctx.fifo_fd >= 0 else set())
        for fd in fds:
            os.set_inheritable(fd, True)
        payload = _payload(ctx)
        os.execve(exe, [sys.executable, "-I", "-S", "-c", ENTRY, _PACKAGE_PARENT, str(payload),
                        str(ctx.sync.fileno())], os.environ)
    except BaseException as err:  # noqa: BLE001 - everything goes back to the parent
        init._fail(ctx, err)


def _payload(ctx) -> int:
    """A memfd (inherited across exec) holding the pickled context, its fds as plain numbers."""
    plain = dataclasses.replace(ctx, sync=None, process=dataclasses.replace(ctx.process, stdin=None, stdout=None,
                                                                           stderr=None))
    data = pickle.dumps(plain, protocol=pickle.HIGHEST_PROTOCOL)
    fd = os.memfd_create("dct-stage1", 0)
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]
    os.lseek(fd, 0, os.SEEK_SET)
    return fd


def main() -> None:
    """The entry of the sealed interpreter (``argv``: package parent, payload fd, sync fd).

    Imports all that stage 1 and init will run before any namespace is joined, then empties
    ``sys.path``: after ``setns`` to the container's mount namespace a path import would load
    the container's files. Never returns.
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
            socket.socket(fileno=sync_fd).send(f'{{"type": "error", "message": "stage 1: {type(err).__name__}"}}'
                                               .encode())
        finally:
            os._exit(1)
    ctx = dataclasses.replace(ctx, sync=socket.socket(fileno=sync_fd))
    sys.path[:] = []
    init.stage1(ctx)
