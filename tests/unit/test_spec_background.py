"""Specs loaded in a forked child (``spec.background``): the same documents and errors as a load in
the caller, the same containers built from them, and no child left behind. Temporary files only."""

from __future__ import annotations

import os

import pytest

from declarative_ct.reconcile.apply import _waves
from declarative_ct.reconcile.convert import to_runtime
from declarative_ct.reconcile.plan import Action
from declarative_ct.spec import background
from declarative_ct.spec.load import SpecErrors, load_paths


def _specs(tmp_path) -> str:
    site = tmp_path / "site"
    site.mkdir()
    (tmp_path / "web.yaml").write_text(f"""\
name: web
process: {{args: [/bin/sh, -c, "sleep 1"], env: {{A: "1"}}, user: "1000"}}
mounts: [{{source: ./site, destination: /srv, readonly: true}}]
resources: {{memory: 64Mi, cpus: 0.5, pids: 32}}
network: {{mode: bridge, address: 10.88.0.5, ports: ["127.0.0.1:8080:80"],
          routes: [{{destination: 10.9.0.0/16, gateway: 10.88.0.1}}]}}
depends_on: [db]
labels: {{app: web}}
---
name: db
rootfs: {tmp_path}
process: {{args: [/bin/true]}}
namespaces: [mount, pid]
stop_signal: SIGINT
""")
    return str(tmp_path)


def _reaped(pid: int) -> bool:
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return True
    return False


def test_the_child_gives_what_a_load_here_gives(tmp_path):
    path = _specs(tmp_path)
    here = load_paths([path])
    loading = background.BackgroundLoad([path])
    pid = loading._pid
    docs, errors = loading.result()
    loading.close()
    assert errors == [] and _reaped(pid)
    assert [(d.source, d.line) for d in docs] == [(d.source, d.line) for d in here]
    for got, want in zip(docs, here):
        assert got.spec.normalized() == want.spec.normalized()
        assert got.spec.dependencies() == want.spec.dependencies()
        assert (got.spec.name, got.spec.stop_signal, got.spec.stop_timeout, got.spec.reload_on) == (
            want.spec.name, want.spec.stop_signal, want.spec.stop_timeout, want.spec.reload_on)
        assert to_runtime(got.spec, got.source) == to_runtime(want.spec, want.source)
    actions = [Action(d.spec.name, "create", "", ("create", "start")) for d in docs]
    assert [[a.container for a in wave] for wave in _waves(actions, {d.spec.name: d for d in docs})] == [
        ["db"], ["web"]]


def test_the_child_reports_every_error(tmp_path):
    (tmp_path / "a.yaml").write_text("name: a\nprocess: {args: [/bin/true]}\nrestart: sometimes\n")
    (tmp_path / "b.yaml").write_text("name: b\nprocess: {args: []}\nnope: 1\n")
    with pytest.raises(SpecErrors) as here:
        load_paths([str(tmp_path)])
    loading = background.BackgroundLoad([str(tmp_path)])
    pid = loading._pid
    docs, errors = loading.result()
    loading.close()
    assert docs is None and errors == [str(e) for e in here.value.errors] and len(errors) >= 3
    assert _reaped(pid)


def test_a_child_that_dies_is_replaced_by_a_load_here(tmp_path, monkeypatch):
    path = _specs(tmp_path)
    monkeypatch.setattr(background, "_child", lambda paths, fd: os._exit(1))
    loading = background.BackgroundLoad([path])
    pid = loading._pid
    docs, errors = loading.result()
    loading.close()
    assert errors == [] and [d.spec.name for d in docs] == ["web", "db"]
    assert _reaped(pid)


def test_close_before_the_result_reaps_the_child(tmp_path):
    loading = background.BackgroundLoad([_specs(tmp_path)])
    pid = loading._pid
    loading.close()
    loading.close()
    assert _reaped(pid)
