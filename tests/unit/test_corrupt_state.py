"""A container whose state.json cannot be read stays visible: runtime list, observe/plan, TUI, Ansible facts.

No container runs here: a state directory holding a truncated (or ill-shaped) state.json is all
these readers see of one (the integration test in ``test_trial_faults.py`` does it to a running one).
"""

from __future__ import annotations

import errno
import importlib
import os
import sys

import pytest

from ansible_collection import link_tree
from declarative_ct.errors import StateCorrupt, SystemError
from declarative_ct.reconcile.plan import make_plan, observe
from declarative_ct.runtime import Runtime, Status, store


@pytest.fixture(params=['{"id":"x","init_process_pid":12', '[1, 2]', '{"id": "x"}'],
                ids=["truncated", "not-an-object", "missing-keys"])
def root(tmp_path, request) -> str:
    root = str(tmp_path / "root")
    os.makedirs(os.path.join(root, "broken"))
    with open(os.path.join(root, "broken", "state.json"), "w") as f:
        f.write(request.param)
    os.makedirs(os.path.join(root, "half"))  # a create in progress: no state.json yet, not a container
    return root


def test_runtime_lists_it_as_corrupt(root):
    rt = Runtime(root)
    with pytest.raises(StateCorrupt, match="broken.*state.json is corrupt"):
        rt.load("broken")
    containers, corrupt = rt.list_with_errors()
    assert containers == [] and list(corrupt) == ["broken"] and rt.list() == []


def test_observe_and_plan_report_it_instead_of_creating_it(root, tmp_path):
    from declarative_ct.spec.load import load_paths

    observed = observe(Runtime(root))
    assert set(observed) == {"broken"}
    obs = observed["broken"]
    assert obs.status == Status.UNKNOWN and obs.container is None and "state.json" in obs.error
    spec = tmp_path / "spec.yaml"
    spec.write_text("name: broken\nrootfs: host\nprocess: {args: [/bin/true]}\n")
    plan = make_plan(load_paths([str(spec)]), observed)
    assert plan.actions == [] and len(plan.errors) == 1
    assert plan.errors[0].startswith("broken: ") and "dct delete --force broken" in plan.errors[0]
    plan = make_plan([], observed, prune=True, scope=[str(tmp_path)])  # not declared: a note, never pruned
    assert plan.actions == [] and plan.errors == [] and plan.notes[0].startswith("broken: ")


def test_the_tui_backend_shows_it(root, tmp_path):
    from tui.backend.real import RealBackend

    spec = tmp_path / "spec.yaml"
    spec.write_text("name: broken\nrootfs: host\nprocess: {args: [/bin/true]}\n")
    backend = RealBackend(root, [str(spec)])
    assert [(r.id, r.status) for r in backend.sample()] == [("broken", "unknown")]
    entry = backend.desired().entries["broken"]
    assert entry.drift == "unknown" and "state.json" in entry.cause
    assert RealBackend(root).desired().entries["broken"].drift == "unknown"


def test_ansible_facts_say_unknown(root, tmp_path):
    base = str(link_tree(tmp_path / "collections"))
    sys.path.insert(0, base)
    try:
        dct = importlib.import_module("ansible_collections.declarative_ct.dct.plugins.module_utils.dct")
        facts = dct.facts(Runtime(root), "broken")
    finally:
        sys.path.remove(base)
        for name in [n for n in sys.modules if n == "ansible_collections" or n.startswith("ansible_collections.")]:
            del sys.modules[name]
    assert facts["exists"] is True and facts["status"] == "unknown" and "state.json" in facts["error"]


@pytest.mark.parametrize("code", [errno.EACCES, errno.EMFILE, errno.EIO])
def test_a_state_json_that_cannot_be_read_is_not_called_corrupt(tmp_path, monkeypatch, code):
    # Readable-but-broken is corrupt (delete --force advice); an I/O failure says nothing about the
    # file and must not be offered for deletion: it goes up as SystemError, from list too.
    root = str(tmp_path / "root")
    os.makedirs(os.path.join(root, "c"))
    with open(os.path.join(root, "c", "state.json"), "w") as f:
        f.write("{}")

    def fails(path):
        raise OSError(code, os.strerror(code), path)

    monkeypatch.setattr(store, "read_json", fails)
    rt = Runtime(root)
    with pytest.raises(SystemError, match=f"cannot read .*state.json: {os.strerror(code)}") as info:
        rt.load("c")
    assert not isinstance(info.value, StateCorrupt)
    with pytest.raises(SystemError) as info:
        rt.list_with_errors()
    assert not isinstance(info.value, StateCorrupt)


def test_a_state_json_unreadable_to_the_caller_is_a_system_error(tmp_path):
    # The real kernel's EACCES: a caller without the permission (nobody, in a fork) reads it.
    root = str(tmp_path / "root")
    os.makedirs(os.path.join(root, "c"))
    os.chmod(tmp_path, 0o755)
    os.chmod(root, 0o755)
    with open(os.path.join(root, "c", "state.json"), "w") as f:
        f.write('{"id": "c"}')
    os.chmod(os.path.join(root, "c", "state.json"), 0o600)
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(r)
            os.setresgid(65534, 65534, 65534)
            os.setresuid(65534, 65534, 65534)
            try:
                Runtime(root).load("c")
                verdict = "loaded"
            except StateCorrupt:
                verdict = "corrupt"
            except SystemError as err:
                verdict = f"system error: {err}"
            os.write(w, verdict.encode())
        finally:
            os._exit(0)
    os.close(w)
    with os.fdopen(r) as f:
        verdict = f.read()
    os.waitpid(pid, 0)
    assert verdict.startswith("system error: ") and "Permission denied" in verdict, verdict
