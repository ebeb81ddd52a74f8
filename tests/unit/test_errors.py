"""Structured errors (declarative_ct.errors) and the front doors that render their fields.

The expected texts at the former rewrite sites are what those sites printed before errors carried
fields (captured from the code that rewrote messages with regexes and ``str.replace``).
"""

from __future__ import annotations

import errno
import os
import pickle

import pytest

from declarative_ct import errors
from declarative_ct.configs import Config, Resources
from declarative_ct.errors import (CgroupWriteError, ConfigInvalid, CreateInterrupted, InitFailed, Problem,
                                   ResourcesNotApplied, StateCorrupt)
from declarative_ct.runtime.cgroups import fs
from declarative_ct.spec.load import HINT_QUOTE, SpecError, SpecErrors, load_mapping, load_paths
from declarative_ct.spec.model import FieldError, field_name, field_path

MI = 1 << 20
BASE = {"name": "a", "rootfs": "host", "process": {"args": ["sh"]}}


# -- the types ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("problem, text", [
    (Problem(None, "something is wrong"), "something is wrong"),
    (Problem("resources.memory", "is too large", 5), "resources.memory: is too large"),
    (Problem("defaultAction", "required", file="/p.json"), "/p.json: defaultAction: required"),
    (Problem("x", "bad", file="f.yaml", line=3, column=7), "f.yaml:3:7: x: bad"),
    (Problem("", "must be an object", file="/p.json"), "/p.json: must be an object"),
    (Problem("a", "give {0} too", refs=("b",)), "a: give b too"),
])
def test_problem_str(problem, text):
    assert str(problem) == text


def test_problem_renamed_renames_field_and_refs_not_the_message():
    p = Problem("resources.memory", "resources.memory is above; give {0} too", 5, refs=("resources.memory_swap",))
    names = {"resources.memory": "--memory", "resources.memory_swap": "--memory-swap"}
    assert p.render(names) == "--memory: resources.memory is above; give --memory-swap too"
    assert str(p.renamed(names)) == "--memory: resources.memory is above; give --memory-swap too"
    assert p.renamed(names).value == 5
    assert p.detail(names) == "resources.memory is above; give --memory-swap too"
    assert p.renamed(lambda f: f.upper()).field == "RESOURCES.MEMORY"
    assert p.renamed({}).field == "resources.memory"  # a mapping may leave names out


def test_problem_equality_and_pickle():
    p = Problem("f", "m", [1], "file", 1, 2, ("r",))
    assert p == Problem("f", "m", [1], "file", 1, 2, ("r",))
    assert p != Problem("f", "m2", [1], "file", 1, 2, ("r",))
    assert pickle.loads(pickle.dumps(p)) == p
    assert "Problem('f', 'm'" in repr(p)


def test_config_invalid_plain_message_is_unchanged():
    err = ConfigInvalid("rootfs: '/x' does not exist")
    assert str(err) == "rootfs: '/x' does not exist"
    assert err.problems == (Problem(None, "rootfs: '/x' does not exist"),)
    assert err.field is None


def test_config_invalid_fields():
    err = ConfigInvalid.at("resources.pids_limit", "5000000 is too large", 5000000)
    assert str(err) == "resources.pids_limit: 5000000 is too large"
    assert err.field == "resources.pids_limit" and err.problems[0].value == 5000000
    two = ConfigInvalid(Problem("a", "x"), "plain")
    assert str(two) == "a: x\nplain"


def test_config_invalid_renamed_and_located_keep_the_class():
    class Sub(ConfigInvalid):
        pass

    err = Sub(Problem("resources.memory", "m"), Problem(None, "n"))
    renamed = err.renamed({"resources.memory": "--memory"})
    assert type(renamed) is Sub and str(renamed) == "--memory: m\nn"
    located = err.located("--resources -")
    assert type(located) is Sub and str(located) == "--resources -: resources.memory: m\n--resources -: n"
    assert str(ConfigInvalid(Problem("x", "m", file="a")).located("b")) == "a: x: m"  # a file given stays


def test_cgroup_write_error():
    err = CgroupWriteError("/sys/fs/cgroup/pids/dct/c/pids.max", "10", errno.EINVAL)
    assert isinstance(err, errors.SystemError)
    assert str(err) == "failed to write '10' to /sys/fs/cgroup/pids/dct/c/pids.max: Invalid argument"
    assert (err.path, err.value, err.errno, err.strerror) == (err.path, "10", errno.EINVAL, "Invalid argument")
    hint = CgroupWriteError(err.path, "1", errno.EBUSY, "resources.memory", "is below use; raise {0}",
                            refs=("resources.memory_swap",))
    assert str(hint) == "resources.memory: is below use; raise resources.memory_swap"
    names = {"resources.memory": "--memory", "resources.memory_swap": "--memory-swap"}
    assert str(hint.renamed(names)) == "--memory: is below use; raise --memory-swap"
    assert hint.renamed(names).errno == errno.EBUSY


def test_fs_write_raises_cgroup_write_error_with_the_errno(tmp_path):
    os.mkdir(tmp_path / "memory.max")  # writing a directory: EISDIR from the real kernel
    with pytest.raises(CgroupWriteError) as info:
        fs.write(str(tmp_path), "memory.max", "64")
    assert info.value.errno == errno.EISDIR
    assert info.value.path == str(tmp_path / "memory.max") and info.value.value == "64"
    assert str(info.value) == f"failed to write '64' to {tmp_path}/memory.max: Is a directory"
    assert isinstance(info.value.__cause__, OSError)


def test_resources_not_applied():
    cause = CgroupWriteError("/c/pids.max", "10", errno.EINVAL)
    assert str(ResourcesNotApplied(cause)) == "failed to write '10' to /c/pids.max: Invalid argument " \
                                             "(previous values restored)"
    assert str(ResourcesNotApplied(cause, ("a", "b"))) == ("failed to write '10' to /c/pids.max: Invalid argument; "
                                                          "restoring the previous values failed too: a; b")
    hinted = ResourcesNotApplied(CgroupWriteError("/c/m", "1", errno.EBUSY, "resources.memory", "too low"))
    assert str(hinted.renamed({"resources.memory": "--memory"})) == "--memory: too low (previous values restored)"
    plain = ResourcesNotApplied(errors.SystemError("/c/x: wrote '1' but it reads '2'"))
    assert str(plain.renamed({"resources.memory": "--memory"})) == "/c/x: wrote '1' but it reads '2' " \
                                                                    "(previous values restored)"


def test_init_failed():
    err = InitFailed("pivot_root", errno.EINVAL, "pivot_root /rootfs: Invalid argument")
    assert isinstance(err, errors.SystemError)
    assert str(err) == "pivot_root: pivot_root /rootfs: Invalid argument"
    assert (err.stage, err.errno) == ("pivot_root", errno.EINVAL)
    assert str(InitFailed("", 0, "exec failed")) == "exec failed"


def test_state_corrupt_id_and_reason():
    err = StateCorrupt(id="web", reason="/run/dct/web/state.json is corrupt: not JSON")
    assert str(err) == "container web: /run/dct/web/state.json is corrupt: not JSON"
    assert (err.id, err.reason) == ("web", "/run/dct/web/state.json is corrupt: not JSON")
    assert str(StateCorrupt("free text")) == "free text" and StateCorrupt("free text").reason is None
    assert isinstance(CreateInterrupted(id="x", reason="r"), StateCorrupt)


@pytest.mark.parametrize("err", [
    ConfigInvalid.at("resources.memory", "m", 5, refs=("resources.memory_swap",)),
    ConfigInvalid("plain"),
    CgroupWriteError("/c/f", "1", errno.EINVAL, "resources.memory", "r"),
    ResourcesNotApplied(CgroupWriteError("/c/f", "1", errno.EINVAL), ("x",)),
    InitFailed("mounts", errno.ENOENT, "mount /proc: No such file"),
    StateCorrupt(id="a", reason="r"),
    CreateInterrupted(id="a", reason="r"),
    StateCorrupt("plain"),
    errors.InvalidStateTransition("running", "created", "why"),
    errors.ContainerNotExists("x"),
])
def test_errors_survive_pickle(err):
    back = pickle.loads(pickle.dumps(err))
    assert type(back) is type(err) and str(back) == str(err)
    for attr in ("problems", "path", "errno", "field", "reason", "stage", "id", "rollback_errors"):
        if hasattr(err, attr):
            assert getattr(back, attr) == getattr(err, attr), attr


def test_errors_module_stays_stdlib_only():
    import subprocess
    import sys

    code = "import sys, declarative_ct.errors; print(sorted(m for m in sys.modules if m.startswith(('typing', " \
           "'collections.abc', 'dataclasses', 'enum', 'pydantic'))))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


# -- the former rewrite sites: fields rendered by the front door, texts as before ---------------------

@pytest.mark.parametrize("res, where, text", [
    ({"memory": {"limit": 64 * MI, "swap": 32 * MI}}, "linux.resources",
     "linux.resources.memory.swap: 32Mi is below memory 64Mi (memory_swap counts memory + swap; use -1 for "
     "unlimited swap)"),
    ({"pids": {"limit": 10 ** 9}}, "/b/config.json: linux.resources",
     "/b/config.json: linux.resources.pids.limit: 1000000000 is too large (at most 4194304)"),
    ({"cpu": {"shares": 1}}, "linux.resources", "linux.resources.cpu.shares: 1 must be an integer in [2, 262144]"),
    ({"memory": {"limit": 5}}, "linux.resources",
     "linux.resources.memory.limit: 5 bytes is below 1Mi: the container could not even start (a unit missing? 64Mi)"),
])
def test_oci_resources_errors_name_the_oci_key(res, where, text):
    from declarative_ct.runtime import specconv

    with pytest.raises(ConfigInvalid) as info:
        specconv.resources_from_oci(res, where=where)
    assert str(info.value) == text


def test_oci_names_renamer():
    from declarative_ct.runtime.specconv import oci_names

    name = oci_names("X: linux.resources")
    assert name("resources.memory_swap") == "X: linux.resources.memory.swap"
    assert name("resources.pids_limit") == "X: linux.resources.pids.limit"
    assert name("resources.no_such") == "resources.no_such"
    assert name("memory_swap") == "memory_swap"  # only the runtime's resources.<field> names


def test_update_flag_names_reach_fields_named_inside_the_message():
    from declarative_ct.configs import pair_memory_swap

    with pytest.raises(ConfigInvalid) as info:
        pair_memory_swap(Resources(memory_swap=128 * MI), Resources())
    assert str(info.value) == ("resources.memory_swap: the container has no memory limit; give resources.memory "
                               "too (memory + swap needs both)")
    flags = {"resources.memory": "--memory", "resources.memory_swap": "--memory-swap"}
    assert str(info.value.renamed(flags)) == ("--memory-swap: the container has no memory limit; give --memory "
                                              "too (memory + swap needs both)")
    with pytest.raises(ConfigInvalid) as info:
        pair_memory_swap(Resources(memory=256 * MI), Resources(memory=64 * MI, memory_swap=128 * MI))
    assert str(info.value.renamed(flags)) == ("--memory: 256Mi is above the container's memory + swap limit 128Mi; "
                                              "give --memory-swap too (-1 for unlimited swap)")


def test_network_problems_carry_the_runtime_field():
    from declarative_ct.configs import Network

    config = Config(rootfs="host", networks=[Network(mac_address="01:00:00:00:00:01")])
    with pytest.raises(ConfigInvalid) as info:
        config.validate_network_only()
    assert info.value.field == "networks[0].mac_address"
    assert info.value.problems[0].message == "'01:00:00:00:00:01' is not a unicast MAC (aa:bb:cc:dd:ee:ff)"


def _mapping_error(**fields):
    with pytest.raises(SpecErrors) as info:
        load_mapping(dict(BASE, **fields), "src")
    return info.value


@pytest.mark.parametrize("fields, text", [
    ({"resources": {"pids": 5000000}}, "src:0:0: resources.pids: 5000000 is too large (at most 4194304)"),
    ({"resources": {"memory": "64Mi", "memory_swap": "32Mi"}},
     "src:0:0: resources.memory_swap: 32Mi is below memory 64Mi (memory_swap counts memory + swap; use -1 for "
     "unlimited swap)"),
    ({"resources": {"memory": "12q"}},
     "src:0:0: resources.memory: '12q' is not a size (give bytes, 64Mi, 1Gi, 64m or \"unlimited\")"),
    ({"resources": {"cpus": 0.001}},
     "src:0:0: resources.cpus: 0.001 of a 100000 µs period is below the kernel's minimum quota of 1000 µs"),
    ({"network": {"mode": "bridge", "mac": "01:00:00:00:00:01"}},
     "src:0:0: network.mac: '01:00:00:00:00:01' is not a unicast MAC (aa:bb:cc:dd:ee:ff)"),
    ({"network": {"mode": "none", "mtu": 1500}}, "src:0:0: network.mtu: only for mode bridge (mode is none)"),
    # load_mapping places a validator's field one level down only (as before): routes[0] stays at network
    ({"network": {"mode": "bridge", "routes": [{"destination": "10.0.0.0/8", "interface": "a b"}]}},
     "src:0:0: network: routes[0].interface: 'a b' is not an interface of the container"),
    ({"network": {"mode": "bridge", "ports": ["80:80", "80:80"]}},
     "src:0:0: network: ports[1]: host port 80/tcp is published twice"),
])
def test_spec_mapping_messages(fields, text):
    assert str(_mapping_error(**fields)) == text


def test_spec_file_places_nested_validator_fields(tmp_path):
    path = tmp_path / "a.yaml"
    path.write_text("name: a\nrootfs: host\nprocess:\n  args: [sh]\nnetwork:\n  mode: bridge\n  routes:\n"
                    "  - destination: 10.0.0.0/8\n    interface: a b\n")
    with pytest.raises(SpecErrors) as info:
        load_paths([str(path)])
    assert str(info.value) == f"{path}:9:16: network.routes[0].interface: 'a b' is not an interface of the container"


def test_field_error_paths():
    assert field_name(("routes", 0, "interface")) == "routes[0].interface"
    assert field_path("networks[0].mac_address") == ("networks", 0, "mac_address")
    err = FieldError(("routes", 0, "gateway"), "'zz' is not an IP address")
    assert isinstance(err, ValueError) and str(err) == "routes[0].gateway: 'zz' is not an IP address"


def test_spec_error_quote_hint_is_structured():
    err = _mapping_error(hostname=5)
    (e,) = err.errors
    assert e.message == "expected a string, got the number 5: quote it if it is meant as text"
    assert e.hint == HINT_QUOTE
    assert _mapping_error(process={"args": []}).errors[0].hint == ""


def test_unknown_container_error_carries_the_name_and_watch_explains_it(tmp_path):
    from declarative_ct.reconcile.watch import _Watcher as Watcher

    path = tmp_path / "a.yaml"
    path.write_text("name: a\nrootfs: host\nprocess:\n  args: [sh]\ndepends_on: [db]\n")
    with pytest.raises(SpecErrors) as info:
        load_paths([str(path)])
    (e,) = info.value.errors
    assert (e.field, e.value) == ("depends_on[0]", "db")
    assert e.message == "unknown container `db` (no spec names it)"
    explained = Watcher._explain(e, {"db": "/specs/db.yaml"})
    assert explained.message == ("`db` is declared by /specs/db.yaml, which is invalid or being written: this "
                                 "file keeps its last valid version meanwhile")
    assert Watcher._explain(e, {}) is e
    assert Watcher._explain(SpecError("f", 1, 1, "depends_on[0]", "other", None), {"db": "x"}).message == "other"


@pytest.mark.parametrize("profile, text", [
    ([], "{path}: must be an object"),
    ({"syscalls": []}, "{path}: defaultAction: required"),
    ({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ERRNO", "args": [5]}]},
     "{path}: syscalls[0].args[0]: must be an object"),
    ({"defaultAction": "SCMP_ACT_ALLOW", "flags": ["NOPE"]},
     "{path}: flags[0]: unknown flag \"NOPE\" (known: SECCOMP_FILTER_FLAG_TSYNC, SECCOMP_FILTER_FLAG_LOG, "
     "SECCOMP_FILTER_FLAG_SPEC_ALLOW)"),
])
def test_seccomp_profile_errors_name_the_file_then_the_field(tmp_path, profile, text):
    import json

    from declarative_ct.configs.seccomp import read_profile

    path = tmp_path / "p.json"
    path.write_text(json.dumps(profile))
    with pytest.raises(ConfigInvalid) as info:
        read_profile(str(path))
    assert str(info.value) == text.format(path=path)


def test_pydantic_messages_rendered_from_kind_and_context_read_as_before():
    """The loader words pydantic's errors from their type and ctx; before, it rewrote pydantic's text
    ("Input should be" → "must be", "List should"/"String should" → "must"): the oracle here."""
    from pydantic import BaseModel, Field, ValidationError

    from declarative_ct.spec.load import _message

    class M(BaseModel):
        a: int = Field(3, ge=2, le=5)
        b: int = Field(1, gt=0, lt=10)
        f: float = Field(1.0, gt=0)
        s: str = Field("ab", min_length=2, max_length=3)
        one: str = Field("ab", max_length=1)
        items: list[int] = Field(default_factory=lambda: [1], min_length=1, max_length=2)
        pair: list[int] = Field(default_factory=lambda: [1, 2], min_length=2)

    def before(msg: str) -> str:
        return msg.replace("Input should be", "must be").replace("List should", "must").replace("String should", "must")

    seen = set()
    for data in ({"a": 1}, {"a": 9}, {"b": 0}, {"b": 10}, {"f": 0.0}, {"s": "a"}, {"s": "abcd"}, {"one": "ab"},
                 {"items": [1, 2, 3]}, {"pair": [1]}):
        with pytest.raises(ValidationError) as info:
            M(**data)
        for e in info.value.errors(include_url=False):
            assert _message(e) == before(e["msg"]), e
            seen.add(e["type"])
    assert seen == {"greater_than_equal", "less_than_equal", "greater_than", "less_than", "string_too_short",
                    "string_too_long", "too_long", "too_short"}
