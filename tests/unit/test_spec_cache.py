"""The spec cache: a hit skips the full load; any change to a file, the paths or a host path misses."""

from __future__ import annotations

import os

import pytest

from declarative_ct.spec import cache
from declarative_ct.spec import load as loading
from declarative_ct.spec.load import SpecErrors

SPEC = "name: web\nrootfs: {rootfs}\nprocess: {{args: [/bin/true]}}\nresources: {{memory: 64Mi}}\nrestart: always\n"


@pytest.fixture
def setup(tmp_path, monkeypatch):
    rootfs, root, specs = tmp_path / "rootfs", tmp_path / "root", tmp_path / "specs"
    for d in (rootfs, root, specs):
        d.mkdir()
    (specs / "web.yaml").write_text(SPEC.format(rootfs=rootfs))
    calls = []
    real = loading.load_paths
    monkeypatch.setattr(loading, "load_paths", lambda paths: calls.append(paths) or real(paths))
    return str(specs), str(root), rootfs, calls


def test_a_hit_gives_the_same_plan_inputs_without_loading(setup):
    specs, root, _, calls = setup
    first = cache.load([specs], root)
    second = cache.load([specs], root)
    assert len(calls) == 1  # the second came from the cache
    assert isinstance(second[0], cache.CachedDocument)
    assert second[0].spec.normalized() == first[0].spec.normalized()
    assert (second[0].spec.name, second[0].spec.restart, second[0].spec.state) == ("web", "always", "running")
    assert (second[0].source, second[0].line) == (first[0].source, first[0].line)
    assert second[0].spec.full() == first[0].spec


def test_a_changed_file_misses_and_its_errors_are_reported(setup):
    specs, root, rootfs, calls = setup
    cache.load([specs], root)
    path = os.path.join(specs, "web.yaml")
    with open(path, "w") as f:
        f.write(SPEC.format(rootfs=rootfs).replace("64Mi", "64Xi"))
    with pytest.raises(SpecErrors, match="resources.memory"):
        cache.load([specs], root)
    assert len(calls) == 2


def test_a_vanished_rootfs_or_other_paths_miss(setup):
    specs, root, rootfs, calls = setup
    cache.load([specs], root)
    cache.load([specs, specs], root)  # other paths: a miss
    assert len(calls) == 2
    rootfs.rmdir()
    with pytest.raises(SpecErrors, match="rootfs"):
        cache.load([specs, specs], root)
    assert len(calls) == 3


def test_no_root_no_cache(setup, tmp_path):
    specs, _, _, calls = setup
    cache.load([specs], str(tmp_path / "absent"))
    cache.load([specs], str(tmp_path / "absent"))
    assert len(calls) == 2 and not os.path.exists(tmp_path / "absent")
