"""The runtime-spec hooks: run one hook point's commands with the container's state on stdin.

Where each point runs (runtime-spec ``config.md#posix-platform-hooks``; the callers):

- ``prestart`` (deprecated) and ``createRuntime``: by the runtime (:mod:`container`), in the
  runtime's namespaces, once init has made the container's namespaces and mounts, before
  ``pivot_root``; status ``creating``.
- ``createContainer``: by init (:mod:`init`), in the container's mount namespace, after the
  mounts and before ``pivot_root`` (so its path names a host file); status ``creating``.
- ``startContainer``: by init, inside the container (its root, user and capabilities) after the
  start released it, just before the program; status ``created``.
- ``poststart``: by the runtime after the program started, before ``start`` returns; ``running``.
- ``poststop``: by the runtime after ``delete`` removed the container; ``stopped``.

A hook that cannot run, exits non-zero or outlives its ``timeout`` (then killed with SIGKILL)
raises :class:`HookError`; the callers fail the operation, except for ``poststart`` and
``poststop``, where it is a warning (as runc 1.1 does for ``poststop``; the runtime-spec asks
the same of ``poststart``).

Runs in the container init too: stdlib only, no ``subprocess`` (``posix_spawn`` and a pidfd).
"""

from __future__ import annotations

import errno
import json
import os
import select
import signal
import time

_OUTPUT_LIMIT = 4096  # bytes of a failed hook's output kept for the error message


class HookError(Exception):
    """A hook failed; the message names the hook point, its index and path, and why."""


def run_hooks(name: str, hooks: list, state: dict) -> None:
    """Run the hooks of point ``name`` (``configs.Hook`` objects) one after the other.

    ``state`` is the runtime-spec state object (``ociVersion``, ``id``, ``status``, ``pid``,
    ``bundle``, ``annotations``), written as JSON to each hook's stdin.

    Raises:
        HookError: at the first hook that fails (the later ones do not run):
            ``createRuntime hook #0 (/usr/bin/x): exit status 3; output: …``.
    """
    if not hooks:
        return
    data = json.dumps(state, separators=(",", ":")).encode()
    for i, hook in enumerate(hooks):
        try:
            _run_one(hook, data)
        except HookError as err:
            raise HookError(f"{name} hook #{i} ({hook.path}): {err}") from None


def _run_one(hook, data: bytes) -> None:
    env = {}
    for item in hook.env:
        key, _, value = item.partition("=")
        env[key] = value
    stdin_r, stdin_w = os.pipe()
    out_r, out_w = os.pipe()
    try:
        try:
            # The pipes are close-on-exec: only the dup2'd copies reach the hook. Python ignores
            # SIGPIPE and SIGXFSZ; the hook gets the default dispositions and an empty mask.
            pid = os.posix_spawn(hook.path, list(hook.args) or [hook.path], env, file_actions=[
                (os.POSIX_SPAWN_DUP2, stdin_r, 0), (os.POSIX_SPAWN_DUP2, out_w, 1), (os.POSIX_SPAWN_DUP2, out_w, 2)],
                setsigdef=(signal.SIGPIPE, signal.SIGXFSZ), setsigmask=())
        except OSError as err:
            raise HookError(f"cannot run it: {err.strerror or err}") from None
    finally:
        os.close(stdin_r)
        os.close(out_w)
    try:
        output, status = _feed_and_wait(pid, stdin_w, out_r, data, hook.timeout)
    finally:
        os.close(out_r)
    text = output.decode(errors="replace").strip()
    shown = f"; output: {text}" if text else ""
    if status is None:
        raise HookError(f"ran past its timeout of {hook.timeout}s and was killed{shown}")
    if os.WIFSIGNALED(status):
        raise HookError(f"killed by signal {os.WTERMSIG(status)}{shown}")
    if os.WEXITSTATUS(status) != 0:
        raise HookError(f"exit status {os.WEXITSTATUS(status)}{shown}")


def _feed_and_wait(pid: int, stdin_w: int, out_r: int, data: bytes, timeout: int | None
                   ) -> tuple[bytes, int | None]:
    """Write ``data`` to the hook's stdin (then close it), collect its output, wait for its exit.

    Returns ``(output, wait status)``; the status is None when the timeout ran out (the hook was
    killed with SIGKILL and reaped). Closes ``stdin_w``.
    """
    pidfd = os.pidfd_open(pid)
    deadline = None if timeout is None else time.monotonic() + timeout
    output = bytearray()
    poller = select.poll()
    poller.register(pidfd, select.POLLIN)
    poller.register(out_r, select.POLLIN)
    os.set_blocking(stdin_w, False)
    poller.register(stdin_w, select.POLLOUT)
    open_fds = {stdin_w, out_r}
    try:
        while True:
            wait = None if deadline is None else max(0.0, deadline - time.monotonic()) * 1000
            events = dict(poller.poll(wait))
            if not events:  # the timeout: kill, reap, report
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                return bytes(output), None
            if stdin_w in open_fds and stdin_w in events:
                try:
                    data = data[os.write(stdin_w, data):] if data else data
                except BrokenPipeError:
                    data = b""  # the hook does not read its stdin: allowed
                except BlockingIOError:
                    pass
                if not data:
                    poller.unregister(stdin_w)
                    os.close(stdin_w)
                    open_fds.discard(stdin_w)
            if out_r in open_fds and out_r in events:
                chunk = os.read(out_r, 65536)
                if chunk:
                    output += chunk[:max(0, _OUTPUT_LIMIT - len(output))]
                else:
                    poller.unregister(out_r)
                    open_fds.discard(out_r)
            if pidfd in events:
                # Exited: whatever it wrote is in the pipe (a child of its may keep it open: not waited for).
                _, status = os.waitpid(pid, 0)
                if out_r in open_fds:
                    os.set_blocking(out_r, False)
                    try:
                        output += os.read(out_r, _OUTPUT_LIMIT)[:max(0, _OUTPUT_LIMIT - len(output))]
                    except BlockingIOError:
                        pass
                return bytes(output), status
    except BaseException:
        try:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        except OSError as err:
            if err.errno not in (errno.ESRCH, errno.ECHILD):
                raise
        raise
    finally:
        os.close(pidfd)
        if stdin_w in open_fds:
            os.close(stdin_w)
