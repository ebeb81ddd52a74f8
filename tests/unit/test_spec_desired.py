"""The desired spec: one frozen type, the same whichever road the spec took (full load, cache)."""

import pytest

from declarative_ct.spec import cache
from declarative_ct.spec.desired import DesiredDocument, desired_documents
from declarative_ct.spec.load import load_paths

SPEC = """name: web
rootfs: host
process: {args: [/bin/true]}
network: {mode: host}
restart: on-failure:2
reload_on: [a.conf]
depends_on: [db]
---
name: db
rootfs: host
process: {args: [/bin/true]}
"""


def test_full_load_and_cache_give_the_same_desired_spec(tmp_path) -> None:
    (tmp_path / "s.yaml").write_text(SPEC)
    root = tmp_path / "root"
    root.mkdir()
    full = desired_documents(load_paths([str(tmp_path / "s.yaml")]))
    cache.load([str(tmp_path / "s.yaml")], str(root))  # writes the cache
    hit = cache.load([str(tmp_path / "s.yaml")], str(root))
    assert all(isinstance(d, DesiredDocument) for d in hit)
    assert [d.spec for d in desired_documents(hit)] == [d.spec for d in full]
    web = full[0].spec
    assert (web.name, web.state, web.restart, web.network_mode, web.stop_signal, web.stop_timeout) == (
        "web", "running", "on-failure:2", "host", "SIGTERM", 10.0)
    assert web.reload_on == [str(tmp_path / "a.conf")] and web.dependencies() == ["db"]
    assert web.desired() is web and web.full().name == "web"


def test_desired_spec_is_frozen(tmp_path) -> None:
    (tmp_path / "s.yaml").write_text(SPEC)
    [doc, _] = desired_documents(load_paths([str(tmp_path / "s.yaml")]))
    with pytest.raises(AttributeError):
        doc.spec.state = "absent"
    with pytest.raises(AttributeError):
        doc.source = "/elsewhere"
    doc.spec.reload_on.append("/x")  # a copy: the spec keeps its own
    doc.spec.normalized()["name"] = "other"
    assert doc.spec.reload_on == [str(tmp_path / "a.conf")] and doc.spec.normalized()["name"] == "web"
