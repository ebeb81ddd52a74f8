"""Stage 1 and init load no module from a path once they start (before any namespace is joined).

After ``setns`` into a container's mount namespace every path names the container's files: a
module imported then would be one the container planted. Here no container is needed: stage 1
and :func:`init.enter` run in a fork with a cgroup manager whose first call (made before any
namespace is joined) tries the imports a late import would do, a module on ``sys.path`` and a
submodule of an imported package, and reports back through the sync socket as stage 1's error.
"""

from __future__ import annotations

import json
import os
import socket
import sys

import pytest

from declarative_ct.configs import Config
from declarative_ct.runtime import Process, init, sync


class _Probe:
    """A cgroup manager whose add()/paths() try the planted imports and fail with what happened."""

    def _probe(self):
        seen = {"sys.path": list(sys.path)}
        for name in ("dct_planted_probe", "dct_planted_pkg.sub"):
            try:
                __import__(name)
                seen[name] = "imported"
            except ModuleNotFoundError:
                seen[name] = "not found"
        raise RuntimeError(json.dumps(seen))

    def add(self, pid):
        self._probe()

    def paths(self):
        self._probe()


@pytest.fixture
def planted(tmp_path, monkeypatch):
    """A module and a package with an unimported submodule on a directory of ``sys.path``."""
    (tmp_path / "dct_planted_probe.py").write_text("")
    (tmp_path / "dct_planted_pkg").mkdir()
    (tmp_path / "dct_planted_pkg" / "__init__.py").write_text("")
    (tmp_path / "dct_planted_pkg" / "sub.py").write_text("")
    monkeypatch.syspath_prepend(str(tmp_path))
    import dct_planted_pkg  # noqa: F401 - imported before the fork, as our own packages are

    yield
    for name in ("dct_planted_probe", "dct_planted_pkg", "dct_planted_pkg.sub"):
        sys.modules.pop(name, None)


@pytest.mark.parametrize("entry", ["stage1", "enter", "enter_exec"])
def test_no_module_is_loaded_from_a_path_in_stage1_or_init(planted, entry):
    parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    process = Process(["/bin/true"], init=entry == "enter")  # an exec (stage 1, the fork server's): paths(); init: add(0)
    ctx = init.InitContext(config=Config(rootfs="/"), process=process, sync=child, cgroup=_Probe(),
                           stdio=(0, 1, 2))
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child never returns
        try:
            parent.close()
            getattr(init, entry)(ctx)
        finally:
            os._exit(3)
    child.close()
    try:
        msg = sync.recv(parent)
    finally:
        parent.close()
        os.waitpid(pid, 0)
    assert msg.kind == sync.Kind.ERROR
    seen = json.loads(msg.message)
    assert seen == {"sys.path": [], "dct_planted_probe": "not found", "dct_planted_pkg.sub": "not found"}


def test_the_bootstrap_names_what_failed_before_it_has_a_context():
    """bootstrap.main's own error (no context yet) carries the exception's text, not its type alone."""
    import subprocess

    from declarative_ct.runtime import bootstrap

    parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    with parent, child:
        bad_payload = 999  # not open: reading it fails with EBADF
        subprocess.run([sys.executable, "-I", "-S", "-c", bootstrap.ENTRY, bootstrap._PACKAGE_PARENT,
                        str(bad_payload), str(child.fileno())], pass_fds=(child.fileno(),), check=False)
        msg = json.loads(parent.recv(65536))
    assert msg == {"type": "error", "message": "stage 1: OSError: [Errno 9] Bad file descriptor"}
