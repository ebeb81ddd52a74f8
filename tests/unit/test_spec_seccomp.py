"""The ``seccomp:`` field of a spec: keywords, profile files (resolved, checked, hashed) and the plan.

Pure: temporary files only, no root, no containers.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from declarative_ct.configs import Config
from declarative_ct.errors import ConfigInvalid
from declarative_ct.reconcile.convert import LABEL_SPEC, to_runtime
from declarative_ct.reconcile.plan import Observed, make_plan
from declarative_ct.runtime import Status
from declarative_ct.spec.load import SpecErrors, load_mapping, load_paths

PROFILE = {"defaultAction": "SCMP_ACT_ALLOW",
           "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 28}]}


def spec_file(tmp_path: Path, seccomp: str | None) -> Path:
    path = tmp_path / "app.yaml"
    line = f"seccomp: {seccomp}\n" if seccomp is not None else ""
    path.write_text(textwrap.dedent(f"""\
        name: app
        process: {{args: [/bin/true]}}
        {line}"""))
    return path


def load_one(path: Path):
    [doc] = load_paths([str(path)])
    return doc


def test_default_is_the_default_profile_for_the_containers_capabilities(tmp_path):
    doc = load_one(spec_file(tmp_path, None))
    assert doc.spec.seccomp == "default" and doc.spec.normalized()["seccomp"] == "default"
    config, _ = to_runtime(doc.spec, doc.source)
    assert config.seccomp.default_action == "SCMP_ACT_ERRNO" and config.seccomp.default_errno_ret == 1
    assert not any("unshare" in call.names for call in config.seccomp.syscalls if call.action == "SCMP_ACT_ALLOW")
    assert any("chroot" in call.names for call in config.seccomp.syscalls)  # CAP_SYS_CHROOT is a default cap


def test_unconfined_has_no_filter(tmp_path):
    doc = load_one(spec_file(tmp_path, "unconfined"))
    config, _ = to_runtime(doc.spec, doc.source)
    assert config.seccomp is None


def test_a_relative_profile_resolves_against_the_file(tmp_path):
    (tmp_path / "profiles").mkdir()
    (tmp_path / "profiles" / "p.json").write_text(json.dumps(PROFILE))
    doc = load_one(spec_file(tmp_path, "profiles/p.json"))
    assert doc.spec.seccomp == str(tmp_path / "profiles" / "p.json")
    config, _ = to_runtime(doc.spec, doc.source)
    assert config.seccomp.syscalls[0].errno_ret == 28
    saved = Config.from_dict(json.loads(json.dumps(config.to_dict())))  # state.json keeps it
    assert saved.seccomp == config.seccomp


@pytest.mark.parametrize("content, message", [
    (None, "does not exist"),
    ('{"defaultAction": "SCMP_ACT_FOO"}', 'defaultAction: unknown action "SCMP_ACT_FOO"'),
    ('{"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_PDP11"]}', "architectures[0]"),
    ('{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["a"], "action": "SCMP_ACT_ERRNO", '
     '"args": [{"index": 0, "value": 1}]}]}', "syscalls[0].args[0].op: required"),
    ('{"defaultAction": ', "invalid JSON"),
])
def test_bad_profile_files_are_load_errors_at_the_field(tmp_path, content, message):
    if content is not None:
        (tmp_path / "p.json").write_text(content)
    path = spec_file(tmp_path, "p.json")
    with pytest.raises(SpecErrors) as err:
        load_paths([str(path)])
    [error] = [str(e) for e in err.value.errors]
    assert error.startswith(f"{path}:3:10: seccomp: ") and message in error, error


def test_ansible_mapping_needs_an_absolute_profile(tmp_path):
    with pytest.raises(SpecErrors, match="seccomp: must be \"default\", \"unconfined\" or an absolute path"):
        load_mapping({"name": "a", "process": {"args": ["/bin/true"]}, "seccomp": "p.json"}, "ansible:a")
    (tmp_path / "p.json").write_text('{"defaultAction": "SCMP_ACT_KILLL"}')
    with pytest.raises(SpecErrors, match='seccomp: .*unknown action "SCMP_ACT_KILLL"'):
        load_mapping({"name": "a", "process": {"args": ["/bin/true"]}, "seccomp": str(tmp_path / "p.json")},
                     "ansible:a")


def _applied(doc) -> dict[str, Observed]:
    config, _ = to_runtime(doc.spec, doc.source)
    return {"app": Observed("app", Status.RUNNING, True, doc.source, json.loads(config.label(LABEL_SPEC)),
                            config.cgroups.resources.limits())}


def _plan(doc, observed):
    return [str(a) for a in make_plan([doc], observed, scope=[doc.source]).actions]


@pytest.mark.parametrize("before, after", [(None, "unconfined"), ("unconfined", "default"), ("default", "p.json")])
def test_a_change_is_a_recreate(tmp_path, before, after):
    (tmp_path / "p.json").write_text(json.dumps(PROFILE))
    observed = _applied(load_one(spec_file(tmp_path, before)))
    assert _plan(load_one(spec_file(tmp_path, before)), observed) == []
    assert _plan(load_one(spec_file(tmp_path, after)), observed) == ["app: recreate (seccomp changed)"]


def test_an_edited_profile_file_is_a_recreate(tmp_path):
    (tmp_path / "p.json").write_text(json.dumps(PROFILE))
    path = spec_file(tmp_path, "p.json")
    observed = _applied(load_one(path))
    assert _plan(load_one(path), observed) == []
    (tmp_path / "p.json").write_text(json.dumps({**PROFILE, "defaultAction": "SCMP_ACT_LOG"}))
    assert _plan(load_one(path), observed) == ["app: recreate (seccomp.sha256 changed)"]


def test_a_profile_changed_after_the_plan_is_refused(tmp_path):
    (tmp_path / "p.json").write_text(json.dumps(PROFILE))
    doc = load_one(spec_file(tmp_path, "p.json"))
    normalized = doc.spec.normalized()
    (tmp_path / "p.json").write_text(json.dumps({**PROFILE, "defaultAction": "SCMP_ACT_LOG"}))

    class Frozen:
        def normalized(self):
            return normalized

    with pytest.raises(ConfigInvalid, match="changed while it was read"):
        to_runtime(Frozen(), doc.source)


def test_the_profile_is_read_once_and_its_digest_is_of_the_parsed_bytes(tmp_path, monkeypatch):
    import builtins
    import hashlib

    profile = tmp_path / "p.json"
    profile.write_text(json.dumps(PROFILE))
    reads = []
    real_open = builtins.open

    def counting_open(file, *args, **kwargs):
        if str(file) == str(profile):
            reads.append(file)
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", counting_open)
    doc = load_one(spec_file(tmp_path, "p.json"))  # the loader's check
    normalized = doc.spec.normalized()
    config, _ = to_runtime(doc.spec, doc.source)
    config.validate()
    assert len(reads) == 1, reads  # load, normalized() and the conversion share one read
    assert normalized["seccomp"]["sha256"] == hashlib.sha256(profile.read_bytes()).hexdigest()
    from declarative_ct.configs.seccomp import read_profile

    assert read_profile(str(profile)) == (config.seccomp, normalized["seccomp"]["sha256"])

    profile.write_text(json.dumps({**PROFILE, "defaultAction": "SCMP_ACT_LOG"}))  # a new identity: read anew
    edited, digest = read_profile(str(profile))
    assert edited.default_action == "SCMP_ACT_LOG" and len(reads) == 2
    assert digest == hashlib.sha256(profile.read_bytes()).hexdigest()


def test_validation_runs_once_per_unchanged_object(monkeypatch):
    from declarative_ct.configs import seccomp as model

    checked = []
    real = model._check_action
    monkeypatch.setattr(model, "_check_action", lambda action, where: (checked.append(where), real(action, where)))
    profile = model.from_oci(PROFILE)
    Config(rootfs="/", seccomp=profile).validate()
    profile.validate()
    assert checked == ["linux.seccomp.defaultAction", "linux.seccomp.syscalls[0].action"]
    profile.default_action = "SCMP_ACT_NOPE"  # an assigned field is checked again
    with pytest.raises(ConfigInvalid, match="seccomp.default_action: unknown action"):
        Config(rootfs="/", seccomp=profile).validate()
