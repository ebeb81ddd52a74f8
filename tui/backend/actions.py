"""The real backend's actions (worker threads): pause, resume, signal, destroy, a shell."""

from __future__ import annotations

import os
from collections.abc import Sequence

from . import SHELL


class Actions:
    """:meth:`~tui.backend.Backend.pause`, :meth:`~tui.backend.Backend.resume`,
    :meth:`~tui.backend.Backend.signal`, :meth:`~tui.backend.Backend.destroy` and
    :meth:`~tui.backend.Backend.shell` of :class:`~tui.backend.real.RealBackend` (uses its ``runtime``,
    ``root``); each loads a container of its own."""

    def _load(self, container_id: str):
        return self.runtime.load(container_id)

    def pause(self, container_id: str) -> None:
        """``Container.pause()`` (freezes every process)."""
        self._load(container_id).pause()

    def resume(self, container_id: str) -> None:
        """``Container.resume()``."""
        self._load(container_id).resume()

    def signal(self, container_id: str, sig: int, pid: int | None = None, create_time: float | None = None) -> None:
        """``sig`` to init (``Container.signal``) or to process ``pid`` of the container.

        A process is signalled only if it is still in the container's cgroup and has the same
        start time as when it was shown (never a reused PID).

        Raises:
            ContainerError: the process left the container or is gone.
        """
        from declarative_ct.errors import ContainerError

        c = self._load(container_id)
        if pid is None:
            c.signal(sig)
            return
        import psutil

        if pid not in c.processes():
            raise ContainerError(f"process {pid} is no longer in container {container_id}")
        try:
            p = psutil.Process(pid)
            if create_time is not None and abs(p.create_time() - create_time) > 0.01:
                raise ContainerError(f"process {pid} is gone (its PID now belongs to another process)")
            p.send_signal(sig)
        except psutil.NoSuchProcess:
            raise ContainerError(f"process {pid} is gone") from None

    def destroy(self, container_id: str, timeout: float = 10.0) -> None:
        """Kill every process (SIGKILL), wait for the container to stop, then ``destroy()`` it,
        as ``dct delete --force`` does; the reconciler's restart record goes too, and the logs
        of a container that ``dct apply`` did not make (its name's logs stay for apply's).

        Raises:
            ContainerError: it did not stop within ``timeout`` seconds.
        """
        from declarative_ct.reconcile import restart
        from declarative_ct.reconcile.convert import made_by_apply
        from declarative_ct.runtime import logfiles

        container = self._load(container_id)
        # up to 1 s more for the monitor to record the exit first
        container.destroy(force=True, timeout=timeout, exit_wait=1.0)
        restart.remove_record(self.runtime, container_id)
        if not made_by_apply(container.config):
            logfiles.remove(self.runtime.data_root, container_id)

    def shell(self, container_id: str, argv: Sequence[str] = SHELL) -> int:
        """An exec'd ``argv`` with a terminal (``Process(terminal=True)``), as the container's
        own user, environment and cwd (its bundle's or spec's process; root and the default
        environment for one made through the library), proxied to our terminal."""
        import socket

        from declarative_ct.cli import tty
        from declarative_ct.runtime import Process

        container = self._load(container_id)
        base = _default_process(container)
        env = [e for e in base.env if not e.startswith("TERM=")] + [f"TERM={os.environ.get('TERM', 'xterm')}"]
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
        try:
            process = Process(list(argv), env=env, cwd=base.cwd, uid=base.uid, gid=base.gid,
                              additional_groups=list(base.additional_groups), init=False, terminal=True,
                              console_socket=theirs)
            handle = container.start(process)
        except BaseException:
            ours.close()
            raise
        finally:
            theirs.close()
        done = handle.pidfd()
        try:
            return tty.attach(ours, done, handle.wait)
        finally:
            os.close(done)


def _default_process(container):
    """The process a shell takes its user, env and cwd from: the bundle's (``dct create``), the
    spec's (``dct apply``), else root with the default environment (runc exec's defaults)."""
    from declarative_ct.configs import DEFAULT_ENV
    from declarative_ct.reconcile import last_applied
    from declarative_ct.runtime import Process, specconv

    bundle = container.config.label("bundle")
    if bundle:
        return specconv.load_bundle(bundle)[1]
    return last_applied.exec_process(container.config, args=["sh"]) or Process(args=["sh"], env=list(DEFAULT_ENV),
                                                                               init=False)
