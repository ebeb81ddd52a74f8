"""The reconciler and the spec's ``logging:``: a change of rotation limits is a recreate shown in the
spec's terms; a container applied before the field existed is not recreated by an upgrade; apply hands
the limits to the runtime when it creates, and deletes a name's logs only when the container goes for good.

Pure: temporary directories and stand-ins for containers, no root, no kernel.
"""

from __future__ import annotations

import json
import os
from types import SimpleNamespace

import pytest

from declarative_ct.configs import Config
from declarative_ct.configs.logs import LogConfig
from declarative_ct.reconcile import steps
from declarative_ct.reconcile import last_applied
from declarative_ct.reconcile.convert import LABEL_SPEC, to_runtime
from declarative_ct.reconcile.kinds import ActionKind, Step
from declarative_ct.reconcile.plan import Action, Observed, make_plan
from declarative_ct.runtime import Status, logfiles
from declarative_ct.spec.load import load_mapping

SOURCE = "/specs/web.yaml"
MI = 1 << 20


def doc(**fields: object):
    return load_mapping({"name": "web", "process": {"args": ["/bin/true"]}, **fields}, SOURCE)


def observed(spec_doc, status: Status = Status.RUNNING, before_logging: bool = False) -> dict[str, Observed]:
    """What ``observe`` finds after apply made ``spec_doc``'s container: its config through state.json and
    the ``dct.spec`` label read back. ``before_logging``: as a version without the field recorded it."""
    config, _ = to_runtime(spec_doc.spec, SOURCE)
    if before_logging:
        normalized = spec_doc.spec.normalized()
        del normalized["logging"]
        config.labels = [x for x in config.labels if not x.startswith(LABEL_SPEC + "=")] + [
            last_applied.label(normalized)]
    saved = Config.from_dict(json.loads(json.dumps(config.to_dict())))
    return {"web": Observed("web", status, True, SOURCE, last_applied.read(saved), saved.cgroups.resources.limits())}


def actions(spec_doc, found: dict[str, Observed]) -> list[tuple[str, str, tuple[str, ...]]]:
    return [(a.kind, a.cause, a.steps) for a in make_plan([spec_doc], found, scope=[SOURCE]).actions]


# --- plan ----------------------------------------------------------------------------------------------------

RECREATE = ("stop", "destroy", "create", "start")


@pytest.mark.parametrize("before, after, cause", [
    ({}, {"max_size": "20Mi"}, "logging.max_size 10Mi → 20Mi"),
    ({"max_size": "20m"}, {}, "logging.max_size 20Mi → 10Mi"),
    ({}, {"max_files": 5}, "logging.max_files 3 → 5"),
    ({"max_size": 4096}, {"max_size": 6144, "max_files": 1}, "logging.max_files 3 → 1; logging.max_size 4Ki → 6Ki"),
    ({"max_size": 4097}, {}, "logging.max_size 4097 → 10Mi"),
])
def test_a_change_of_rotation_limits_recreates_and_shows_the_values(before: dict, after: dict, cause: str) -> None:
    assert actions(doc(logging=after), observed(doc(logging=before))) == [("recreate", cause, RECREATE)]
    assert actions(doc(logging=after), observed(doc(logging=after))) == []  # applied: nothing left to do


def test_logging_is_listed_with_the_other_fields_of_a_recreate() -> None:
    changed = doc(process={"args": ["/bin/false"]}, logging={"max_files": 2})
    assert actions(changed, observed(doc())) == [
        ("recreate", "process.args changed; logging.max_files 3 → 2", RECREATE)]
    stopped = doc(state="stopped", logging={"max_files": 2})  # a created container: no stop, no start
    assert actions(stopped, observed(doc(state="stopped"), Status.CREATED)) == [
        ("recreate", "logging.max_files 3 → 2", ("destroy", "create"))]


def test_the_same_limits_spelled_otherwise_plan_nothing() -> None:
    assert actions(doc(logging={"max_size": "10m", "max_files": 3}), observed(doc())) == []
    assert actions(doc(), observed(doc(logging={"max_size": 10485760}))) == []


def test_a_container_applied_before_the_field_existed_is_not_recreated() -> None:
    """No spurious drift on upgrade: a dct.spec label without ``logging`` reads as the default limits."""
    old = observed(doc(), before_logging=True)
    assert old["web"].applied["logging"] == LogConfig().to_dict()
    assert actions(doc(), old) == []
    assert actions(doc(logging={"max_size": "10Mi", "max_files": 3}), old) == []  # the defaults, written out
    assert actions(doc(logging={"max_size": "1Mi"}), old) == [("recreate", "logging.max_size 10Mi → 1Mi", RECREATE)]


def test_the_upgrade_does_not_hide_other_changes() -> None:
    old = observed(doc(), before_logging=True)
    assert actions(doc(hostname="other"), old) == [("recreate", "hostname changed", RECREATE)]


# --- apply: create hands the limits to the runtime --------------------------------------------------------------

class FakeContainer:
    """A runtime Container as far as apply's create step uses it: ``start``/``run`` record their arguments."""

    def __init__(self) -> None:
        self.calls: list[tuple] = []

    def start(self, process, monitor=False, log=None):  # noqa: ANN001, ANN201 - the runtime's signature
        self.calls.append(("start", process, monitor, log))

    def run(self, process, monitor=False, log=None):  # noqa: ANN001, ANN201
        self.calls.append(("run", process, monitor, log))


class FakeRuntime:
    def __init__(self, data_root: str) -> None:
        self.data_root = data_root
        self.made: dict[str, FakeContainer] = {}

    def cleanup(self, name: str) -> None:
        pass

    def create(self, name: str, config: Config) -> FakeContainer:
        self.made[name] = FakeContainer()
        return self.made[name]


@pytest.mark.parametrize("then_start, verb", [(True, "run"), (False, "start")])
def test_create_passes_the_specs_log_config(tmp_path, then_start: bool, verb: str) -> None:
    spec = doc(logging={"max_size": "1Mi", "max_files": 2}).spec.desired()
    runtime = FakeRuntime(str(tmp_path))
    action = Action("web", ActionKind.CREATE, "not created yet", (Step.CREATE, Step.START))
    made = steps._step_create(steps._StepCall(action, spec, runtime, None, to_runtime(spec, SOURCE),
                                                    then_start))
    [(called, process, monitor, log)] = made.calls
    assert (called, monitor, log) == (verb, True, LogConfig(MI, 2))
    assert process.args == ["/bin/true"]


# --- apply: a name's logs go only with the container ------------------------------------------------------------

class FakeStopped:
    """A stopped container: stop is a no-op, destroy records that it ran."""

    def __init__(self) -> None:
        self.destroyed = False
        self.config = Config(rootfs="/")  # a prune reads how to stop it from here

    def stop(self, *args, **kwargs) -> None:  # noqa: ANN002, ANN003
        pass

    def destroy(self) -> None:
        self.destroyed = True


@pytest.mark.parametrize("kind, kept", [(ActionKind.DESTROY, False), (ActionKind.PRUNE, False),
                                        (ActionKind.RECREATE, True), (ActionKind.LIFECYCLE, True)])
def test_destroy_removes_the_logs_only_for_good(tmp_path, kind: str, kept: bool) -> None:
    directory = logfiles.log_dir(str(tmp_path), "web")
    previous = logfiles.new_run(directory)
    with open(previous, "w") as f:
        f.write("2026-12-07T10:00:00.000000000Z stdout F the crash\n")
    logfiles.new_run(directory)
    other = logfiles.new_run(logfiles.log_dir(str(tmp_path), "db"))
    container = FakeStopped()
    spec = None if kind == ActionKind.PRUNE else doc().spec.desired()
    call = steps._StepCall(Action("web", kind, "x", (Step.DESTROY,)), spec, FakeRuntime(str(tmp_path)),
                              container, None, False)
    steps._step_destroy(call)
    assert container.destroyed
    assert os.path.exists(previous) == kept and os.path.isdir(directory) == kept
    assert os.path.exists(other)  # another name's logs are its own


def test_a_failed_destroy_keeps_the_logs(tmp_path) -> None:
    class Busy(FakeStopped):
        def destroy(self) -> None:
            raise OSError("busy")

    log = logfiles.new_run(logfiles.log_dir(str(tmp_path), "web"))
    call = steps._StepCall(Action("web", ActionKind.DESTROY, "state: absent", (Step.DESTROY,)), SimpleNamespace(
        stop_signal="SIGTERM", stop_timeout=1.0), FakeRuntime(str(tmp_path)), Busy(), None, False)
    with pytest.raises(OSError):
        steps._step_destroy(call)
    assert os.path.exists(log)
