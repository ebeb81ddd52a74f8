"""Property tests of the plan (declarative_ct.reconcile.plan) over generated specs. Pure: no containers, no root.

A generated spec is "applied" the way ``apply`` leaves it: an :class:`Observed` that is ours, whose
``applied`` is the ``dct.spec`` label of the config :func:`convert.to_runtime` builds (after a
state.json round trip), whose ``resources`` are that config's libcontainer limits, and whose status
is what the desired state leaves: running → RUNNING, paused → PAUSED, stopped → CREATED (a stopped
spec is created, never started), absent → no container.

What the properties say:

- applied, then planned again → nothing to do;
- one field changed to a different valid value → one action of the right class: ``recreate`` naming
  exactly the changed fields of the immutable part, ``live`` writing exactly the changed limits,
  ``lifecycle`` (or ``destroy`` / ``create`` for absent) for ``state``; the fields the manager reads
  from the spec when it acts (restart, reload_*, stop_*, depends_on) need no action;
- any key or list item removed → noticed, unless what is left means the same (a limit at its default);
- the same spec spelled differently (sizes, namespace order, defaults written out or left out,
  ``cpus`` vs ``cpu_quota``, signal names) → nothing to do;
- a chain of edits, each plan executed on a model of the runtime (the steps' preconditions as
  ``Container`` checks them) → no step fails and the plan after each apply is empty.

"Means the same" is decided by :func:`meaning`, a reference written here from the spec format
(issue 5), independent of ``ContainerSpec.normalized()`` and ``plan._effective``.

The bugs these properties found are kept as regression examples at the end. A chain of edits ends
(:func:`known_bug`) at a container that a ``state: stopped`` left STOPPED when the edit changes its
limits (they wait for its next start: no action, by design) or starts it again (apply records that
stop in the reconciler's restart record, which the runtime model here does not keep).
"""

from __future__ import annotations

import copy
import json
import os
import re
import shutil
import string
import tempfile

import pytest
from hypothesis import HealthCheck, Phase, event, given, settings
from hypothesis import strategies as st

from declarative_ct.configs import Config, Resources, pair_memory_swap
from declarative_ct.configs.logs import DEFAULT_MAX_FILES, DEFAULT_MAX_SIZE, MAX_MAX_FILES, MIN_MAX_SIZE
from declarative_ct.errors import ConfigInvalid
from declarative_ct.reconcile.convert import LABEL_SPEC, MUTABLE_FIELDS, to_runtime
from declarative_ct.reconcile.plan import Action, Observed, Plan, make_plan
from declarative_ct.runtime import Status
from declarative_ct.runtime.cgroups import online_cpus
from declarative_ct.spec.load import SpecDocument
from declarative_ct.spec.model import DEFAULT_NAMESPACES, ContainerSpec
from declarative_ct.units import format_size, parse_size

# No explain phase: it traces every line (Python < 3.12) and makes a failing example take minutes.
PROPS = settings(max_examples=100, deadline=None, derandomize=True, database=None,
                 phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.target, Phase.shrink],
                 suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

# -- host paths, made once -------------------------------------------------------------------

_TMP = tempfile.mkdtemp(prefix="dct-plan-props-")
SOURCE = os.path.join(_TMP, "specs.yaml")
MOUNT_SOURCES = [os.path.join(_TMP, f"src{i}") for i in range(3)]
ROOTFS_DIRS = [os.path.join(_TMP, f"rootfs{i}") for i in range(2)]
RELOAD_FILES = [os.path.join(_TMP, f"conf{i}.ini") for i in range(3)]
for _d in MOUNT_SOURCES + ROOTFS_DIRS:
    os.makedirs(_d)
for _f in RELOAD_FILES:
    open(_f, "w").close()
open(SOURCE, "w").close()


@pytest.fixture(scope="module", autouse=True)
def _remove_tmp():
    yield
    shutil.rmtree(_TMP, ignore_errors=True)


ONLINE_CPUS = sorted(online_cpus("cpu"))
ONLINE_NODES = sorted(online_cpus("node"))
MIB = 1 << 20
OPTIONAL_NAMESPACES = ("pid", "uts", "ipc", "net", "cgroup")
STATES = ("running", "paused", "stopped", "absent")
STATUS_AFTER_APPLY = {"running": Status.RUNNING, "paused": Status.PAUSED, "stopped": Status.CREATED}
RESOURCE_KEYS = ("memory", "memory_reservation", "memory_swap", "cpus", "cpu_shares", "cpu_quota", "cpu_period",
                 "cpuset_cpus", "cpuset_mems", "pids", "blkio_weight")
SPEC_ONLY = ("restart", "reload_signal", "reload_on", "depends_on", "stop_signal", "stop_timeout", "health")
# health: the supervisor probes with the spec's probe of the moment (no new container)
HEALTHS = [None, {"exec": ["/bin/true"]}, {"tcp": {"port": 80}, "interval": "2s", "retries": 1},
           {"http": {"port": 8080, "path": "/h", "expect_status": [204, 200]}, "on_unhealthy": "restart"}]
UNLIMITED_SPELLINGS = ("unlimited", -1, "max")

# -- the reference: what a spec means -------------------------------------------------------


def _size(value) -> int | None:
    """Bytes of a size as written, None for no limit."""
    n = parse_size(value)
    return None if n == -1 else n


def _cpuset(value: str) -> frozenset[int]:
    out = set()
    for part in value.split(","):
        low, _, high = part.partition("-")
        out.update(range(int(low), int(high or low) + 1))
    return frozenset(out)


def resource_meaning(r: dict) -> dict:
    """The limits a resources mapping puts in force, by libcontainer field; "no limit"/defaults left out."""
    out = {}
    for name in ("memory", "memory_reservation", "memory_swap"):
        if r.get(name) is not None and _size(r[name]) is not None:
            out[name] = _size(r[name])
    period = r.get("cpu_period") or 100000
    if r.get("cpus") is not None:
        out["cpu_quota"] = round(r["cpus"] * period)
    elif r.get("cpu_quota") not in (None, -1):
        out["cpu_quota"] = r["cpu_quota"]
    if period != 100000:
        out["cpu_period"] = period
    if r.get("cpu_shares") not in (None, 1024):
        out["cpu_shares"] = r["cpu_shares"]
    for name, online in (("cpuset_cpus", ONLINE_CPUS), ("cpuset_mems", ONLINE_NODES)):
        if r.get(name) is not None and _cpuset(r[name]) != frozenset(online):
            out[name] = _cpuset(r[name])
    if r.get("pids") not in (None, -1, "unlimited"):
        out["pids_limit"] = r["pids"]
    if r.get("blkio_weight") not in (None, 100):
        out["blkio_weight"] = r["blkio_weight"]
    return out


def meaning(d: dict) -> dict:
    """What a spec dict asks for in the fields only a recreate can change, by dotted field (labels per key)."""
    proc = d["process"]
    uid, _, gid = proc.get("user", "0:0").partition(":")
    out = {
        "rootfs": d.get("rootfs", "host"),
        "process.args": list(proc["args"]),
        "process.env": dict(proc.get("env", {})),
        "process.cwd": proc.get("cwd", "/"),
        "process.user": (int(uid), int(gid or uid)),
        "hostname": d.get("hostname") or d["name"],
        "namespaces": frozenset(d.get("namespaces", DEFAULT_NAMESPACES)),
        "mounts": [(m["source"], m["destination"], m.get("readonly", False)) for m in d.get("mounts", [])],
        "network.mode": d.get("network", {}).get("mode", "none"),
        "seccomp": d.get("seccomp", "default"),
        "logging.max_size": _size(d.get("logging", {}).get("max_size", DEFAULT_MAX_SIZE)),
        "logging.max_files": d.get("logging", {}).get("max_files", DEFAULT_MAX_FILES),
    }
    for key, value in d.get("labels", {}).items():
        out[f"labels.{key}"] = value
    return out


def immutable_changes(old: dict, new: dict) -> set[str]:
    a, b = meaning(old), meaning(new)
    return {k for k in a.keys() | b.keys() if a.get(k) != b.get(k)}


def resource_changes(old: dict, new: dict) -> set[str]:
    a, b = resource_meaning(old.get("resources", {})), resource_meaning(new.get("resources", {}))
    return {k for k in a.keys() | b.keys() if a.get(k) != b.get(k)}


_LIFECYCLE = {
    (Status.CREATED, "running"): ("start",), (Status.CREATED, "paused"): ("start", "pause"),
    (Status.RUNNING, "paused"): ("pause",), (Status.RUNNING, "stopped"): ("stop",),
    (Status.PAUSED, "running"): ("resume",), (Status.PAUSED, "stopped"): ("stop",),
}
_STARTUP = {"running": ("create", "start"), "paused": ("create", "start", "pause"), "stopped": ("create",)}


def _teardown(status: Status) -> tuple[str, ...]:
    return ("stop", "destroy") if status in (Status.RUNNING, Status.PAUSED) else ("destroy",)


def expected_action(status: Status | None, old: dict | None, new: dict) -> tuple[str, tuple[str, ...], set[str]] | None:
    """``(kind, steps, fields)`` the plan must hold for a container in ``status`` made from ``old``, now ``new``.

    ``fields``: the dotted immutable fields a recreate names, or the libcontainer fields a live
    update (or a lifecycle action's set) writes. None: nothing to do.
    """
    state = new.get("state", "running")
    if state == "absent":
        return None if status is None else ("destroy", _teardown(status), set())
    if status is None:
        return "create", _STARTUP[state], set()
    changed = immutable_changes(old, new)
    if changed:
        return "recreate", _teardown(status) + _STARTUP[state], changed
    if status == Status.STOPPED and state in ("running", "paused"):  # issue 5: a state change is a lifecycle action
        return "lifecycle", ("destroy",) + _STARTUP[state], set()
    live = resource_changes(old, new)
    lifecycle = _LIFECYCLE.get((status, state), ())
    if lifecycle:
        return "lifecycle", (("set",) if live else ()) + lifecycle, live
    if live:
        return "live", ("set",), live
    return None


# -- "as apply leaves it", and a model of executing a plan -----------------------------------


def spec_of(d: dict) -> ContainerSpec:
    return ContainerSpec.model_validate(d)


def doc_of(d: dict) -> SpecDocument:
    return SpecDocument(spec_of(d), SOURCE, 1)


def created(d: dict, status: Status) -> Observed:
    """The container ``apply`` makes for ``d`` (its saved config read back), in ``status``."""
    spec = spec_of(d)
    config, _ = to_runtime(spec, SOURCE)
    config.validate()
    saved = Config.from_dict(json.loads(json.dumps(config.to_dict())))  # state.json
    applied = json.loads(saved.label(LABEL_SPEC))
    assert applied == spec.normalized()
    return Observed(spec.name, status, True, SOURCE, applied, saved.cgroups.resources.limits())


def applied_state(d: dict) -> dict[str, Observed]:
    """Observed state right after applying ``d`` from nothing."""
    state = d.get("state", "running")
    return {} if state == "absent" else {d["name"]: created(d, STATUS_AFTER_APPLY[state])}


def is_valid(d: dict) -> bool:
    """The model accepts ``d`` and its runtime config validates (else apply would refuse it)."""
    try:
        config, _ = to_runtime(spec_of(d), SOURCE)
        config.validate()
    except (ValueError, ConfigInvalid):
        return False
    return True


class StepFailed(AssertionError):
    pass


def execute(plan, dicts: dict[str, dict], observed: dict[str, Observed]) -> dict[str, Observed]:
    """The observed state after ``apply`` ran ``plan``; each step's precondition checked as the runtime does."""
    out = {k: copy.copy(v) for k, v in observed.items()}
    for action in plan.actions:
        name = action.container
        obs = out.get(name)
        for step in action.steps:
            if step != "create" and obs is None:
                raise StepFailed(f"{action}: {step} on a container that does not exist")
            if step == "stop":
                obs.status = Status.STOPPED
            elif step == "destroy":
                del out[name]
                obs = None
            elif step == "create":
                if obs is not None:
                    raise StepFailed(f"{action}: create while {name} exists (ContainerExists)")
                obs = out[name] = created(dicts[name], Status.CREATED)
            elif step in ("start", "pause", "resume"):
                before, after = {"start": (Status.CREATED, Status.RUNNING), "pause": (Status.RUNNING, Status.PAUSED),
                                 "resume": (Status.PAUSED, Status.RUNNING)}[step]
                if obs.status != before:
                    raise StepFailed(f"{action}: {step} on a {obs.status.value} container")
                obs.status = after
            elif step == "set":
                if obs.status == Status.STOPPED:  # Container.set raises ContainerNotRunning
                    raise StepFailed(f"{action}: set on a stopped container (ContainerNotRunning)")
                current = Resources(**obs.resources)
                try:
                    merged = current.merged(pair_memory_swap(Resources(**action.resources), current))
                    merged.validate()
                except ConfigInvalid as err:
                    raise StepFailed(f"{action}: set refused: {err}") from None
                obs.resources = merged.limits()
            else:
                raise StepFailed(f"{action}: unknown step {step!r}")
    return out


def plan_for(d: dict, observed: dict[str, Observed]):
    plan = make_plan([doc_of(d)], observed, scope=[SOURCE])
    json.dumps(plan.to_dict())  # --json never fails
    [str(a) for a in plan.actions]
    assert not plan.errors
    return plan


SHOWN_FIELDS = {"logging.max_size": format_size, "logging.max_files": str}  # a recreate's cause gives their values


def cause_fields(action: Action) -> dict[str, tuple[str, str] | None]:
    """The fields a recreate's cause names (``a, b changed; logging.max_size 10Mi → 20Mi``), each with
    the ``(old, new)`` it shows, None for those named without values."""
    out: dict[str, tuple[str, str] | None] = {}
    for part in action.cause.split("; "):
        if part.endswith(" changed"):
            out.update(dict.fromkeys(part[:-len(" changed")].split(", ")))
        else:
            name, old, arrow, new = part.split(" ")
            assert arrow == "→" and name in SHOWN_FIELDS, action.cause
            out[name] = (old, new)
    return out


def check_plan(plan, status: Status | None, old: dict | None, new: dict, what: str = "") -> None:
    """``plan`` is exactly the one action :func:`expected_action` names (or empty)."""
    want = expected_action(status, old, new)
    got = [(a.kind, a.steps) for a in plan.actions]
    context = f"{what}\nold={old}\nnew={new}\nplan={[str(a) for a in plan.actions]}"
    if want is None:
        assert got == [], f"expected an empty plan; {context}"
        return
    kind, steps, fields = want
    assert got == [(kind, steps)], f"expected {kind} {steps}; {context}"
    action = plan.actions[0]
    if kind == "recreate":
        named = cause_fields(action)
        assert set(named) == fields, context
        for name, show in SHOWN_FIELDS.items():  # the values as the spec writes them
            assert named.get(name) in (None, (show(meaning(old)[name]), show(meaning(new)[name]))) and (
                (named.get(name) is None) == (name not in fields)), context
    elif kind in ("live", "lifecycle"):
        assert set(action.resources) == fields, context


def transition(status: Status | None, old: dict | None, observed: dict, new: dict, what: str = "") -> dict:
    """Plan ``new`` against ``observed``, check it, execute it, check that the next plan is empty."""
    plan = plan_for(new, observed)
    check_plan(plan, status, old, new, what)
    after = execute(plan, {new["name"]: new}, observed)
    again = plan_for(new, after)
    assert again.actions == [], \
        f"not converged after {[str(a) for a in plan.actions]}: {[str(a) for a in again.actions]}"
    return after


def known_bug(status: Status | None, old: dict | None, new: dict) -> str | None:
    """The transitions the runtime model does not follow (see the module docstring)."""
    if status != Status.STOPPED or old is None or immutable_changes(old, new):
        return None
    state = new.get("state", "running")
    if state == "stopped" and resource_changes(old, new):
        return "limits of a STOPPED container wait for its next start (by design: no action)"
    if state in ("running", "paused"):
        return "state: stopped → running/paused left to the restart policy"
    return None


# -- strategies ------------------------------------------------------------------------------

names = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_.+-]{0,15}", fullmatch=True)
texts = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",), exclude_characters="\x00"), max_size=8)
env_keys = st.text(string.ascii_letters + string.digits + "_", min_size=1, max_size=8)
paths = st.one_of(st.sampled_from(["/", "/tmp", "/srv", "/data", "/var/lib/app"]),
                  st.from_regex(r"/[a-z0-9_]{1,6}(/[a-z0-9_]{1,6}){0,2}", fullmatch=True))
ids = st.one_of(st.sampled_from([0, 1, 1000, 65534]), st.integers(0, 2**31 - 1))
users = st.tuples(ids, ids).map(lambda ug: f"{ug[0]}:{ug[1]}")
hostnames = st.text(string.ascii_lowercase + string.digits + "-.", min_size=1, max_size=64)
label_keys = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_.\-/]{0,10}", fullmatch=True).filter(
    lambda k: not k.startswith("dct."))
SIGNALS = ["SIGHUP", "HUP", "SIGUSR1", "SIGUSR2", "SIGTERM", "SIGINT", "SIGQUIT", 1, 10, 15]
RESTARTS = ["never", "always", "on-failure", "on-failure:1", "on-failure:3", "on-failure:10"]
signals, restarts = st.sampled_from(SIGNALS), st.sampled_from(RESTARTS)
destinations = paths.filter(lambda p: p not in ("/", "/proc"))  # the root and /proc are the container's own
mounts = st.fixed_dictionaries({"source": st.sampled_from(MOUNT_SOURCES), "destination": destinations},
                               optional={"readonly": st.booleans()})


def size_spellings(nbytes: int) -> st.SearchStrategy:
    """Spellings of ``nbytes`` (a whole number of MiB): bytes, Mi, m, MiB, M, k, Ki, and Gi/g when whole."""
    mib = nbytes // MIB
    options = [nbytes, str(nbytes), f"{mib}Mi", f"{mib}m", f"{mib}MiB", f"{mib}M", f"{mib * 1024}k", f"{mib * 1024}Ki",
               f"{mib} Mi"]
    if mib % 1024 == 0:
        options += [f"{mib // 1024}Gi", f"{mib // 1024}g", f"{mib // 1024}G"]
    return st.sampled_from(options)


def sizes(low_mib: int = 1, high_mib: int = 8192) -> st.SearchStrategy:
    return st.integers(low_mib, high_mib).flatmap(lambda m: size_spellings(m * MIB))


unlimited = st.sampled_from(UNLIMITED_SPELLINGS)
cpus_values = st.sampled_from([0.25, 0.5, 0.75, 1, 1.0, 1.5, 2, 4])
cpu_quotas = st.one_of(st.just(-1), st.integers(1000, 2_000_000))
cpu_periods = st.one_of(st.sampled_from([50000, 100000, 200000]), st.integers(10000, 1_000_000))
cpu_shares = st.one_of(st.just(1024), st.integers(2, 262144))
pids = st.one_of(st.integers(1, 4194304), st.sampled_from(["unlimited", -1]))
blkio = st.one_of(st.just(100), st.integers(10, 1000))
log_sizes = st.one_of(sizes(1, 1024), st.integers(MIN_MAX_SIZE, 1 << 30),
                      st.integers(4, 1 << 20).map(lambda k: f"{k}Ki"))
log_files = st.integers(1, MAX_MAX_FILES)


def _canonical_sets(items: list[int]) -> list[str]:
    """Every non-empty subset of ``items`` written ``a,b`` (the form the plan's reset value uses)."""
    out = []
    for mask in range(1, 1 << len(items)):
        out.append(",".join(str(i) for n, i in enumerate(items) if mask >> n & 1))
    return out


CPUSETS = _canonical_sets(ONLINE_CPUS[:4])
MEMSETS = _canonical_sets(ONLINE_NODES[:3])


@st.composite
def resources(draw) -> dict:
    r: dict = {}
    if draw(st.booleans()):
        r["memory"] = draw(st.one_of(sizes(), unlimited))
    mem = _size(r["memory"]) if "memory" in r else None
    if mem is not None and draw(st.booleans()):
        r["memory_swap"] = draw(st.one_of(sizes(mem // MIB, 4 * mem // MIB), unlimited))
    if draw(st.booleans()):
        r["memory_reservation"] = draw(st.one_of(sizes(), unlimited))
    cpu = draw(st.sampled_from(["none", "cpus", "cpu_quota"]))
    if cpu == "cpus":
        r["cpus"] = draw(cpus_values)
    elif cpu == "cpu_quota":
        r["cpu_quota"] = draw(cpu_quotas)
    for name, values in (("cpu_period", cpu_periods), ("cpu_shares", cpu_shares), ("pids", pids),
                         ("blkio_weight", blkio), ("cpuset_cpus", st.sampled_from(CPUSETS)),
                         ("cpuset_mems", st.sampled_from(MEMSETS))):
        if draw(st.booleans()):
            r[name] = draw(values)
    return r


@st.composite
def spec_dicts(draw, states=st.sampled_from(["running", "running", "paused", "stopped", "absent"])) -> dict:
    """A valid spec as a user writes it: optional keys left out at random."""
    name = draw(names)
    process: dict = {"args": draw(st.lists(texts, min_size=1, max_size=4))}
    if draw(st.booleans()):
        process["env"] = draw(st.dictionaries(env_keys, texts, max_size=4))
    if draw(st.booleans()):
        process["cwd"] = draw(paths)
    if draw(st.booleans()):
        process["user"] = draw(users)
    d: dict = {"name": name, "process": process}
    if draw(st.booleans()):
        d["rootfs"] = draw(st.sampled_from(["host"] + ROOTFS_DIRS))
    if draw(st.booleans()):
        extra = draw(st.sets(st.sampled_from(OPTIONAL_NAMESPACES)))
        d["namespaces"] = draw(st.permutations(sorted(extra | {"mount"})))
    if "uts" in d.get("namespaces", DEFAULT_NAMESPACES) and draw(st.booleans()):
        d["hostname"] = draw(st.one_of(hostnames, st.just(name)))
    if draw(st.booleans()):
        d["mounts"] = draw(st.lists(mounts, max_size=3))
    if draw(st.booleans()):
        d["resources"] = draw(resources())
    if draw(st.booleans()):
        d["network"] = {"mode": draw(st.sampled_from(["none", "host"]))}
    if draw(st.booleans()):
        d["labels"] = draw(st.dictionaries(label_keys, texts, max_size=4))
    if draw(st.booleans()):
        d["logging"] = draw(st.fixed_dictionaries({}, optional={"max_size": log_sizes, "max_files": log_files}))
    if draw(st.booleans()):
        d["state"] = draw(states)
    optional = {"restart": restarts, "reload_signal": signals, "stop_signal": signals,
                "reload_on": st.lists(st.sampled_from(RELOAD_FILES), max_size=3),
                "stop_timeout": st.one_of(st.integers(0, 60), st.floats(0, 60, allow_nan=False)),
                "depends_on": st.just([]), "seccomp": st.sampled_from(["default", "unconfined"]),
                "health": st.sampled_from(HEALTHS)}
    for key, values in optional.items():
        if draw(st.booleans()):
            d[key] = draw(values)
    assert is_valid(d), d
    return d


# -- single-field mutations: every one gives a spec that means something else ----------------

def _different(values: st.SearchStrategy, current) -> st.SearchStrategy:
    """A value of ``values`` other than ``current``: one equal to it is changed (no filtering, no rejection)."""
    def other(v):
        if v != current:
            return v
        if isinstance(v, str):
            return v[:-1] + ("y" if v.endswith("x") else "x") if len(v) >= 64 else v + "x"
        return v + 1

    return values.map(other)


def _other_of(options: list, current) -> st.SearchStrategy:
    return st.sampled_from([o for o in options if o != current])


def _new_key(key: str, taken: dict) -> str:
    while key in taken:
        key += "x"
    return key


def _mutate_resource(draw, d: dict, key: str) -> dict | None:
    r = d.get("resources", {})
    new = dict(r)
    mem = _size(r["memory"]) if r.get("memory") is not None else None
    swap = _size(r["memory_swap"]) if r.get("memory_swap") is not None else None
    before = resource_meaning(r)
    if key == "memory":
        high = swap // MIB if swap is not None else 8192
        options = [sizes(1, high)] + ([unlimited] if swap is None and mem is not None else [])
        new[key] = draw(st.one_of(*options))
    elif key == "memory_swap":
        if mem is None:
            return None  # no swap limit without a memory limit; unlimited swap is the default
        options = [sizes(mem // MIB, 4 * mem // MIB)] + ([unlimited] if swap is not None else [])
        new[key] = draw(st.one_of(*options))
    elif key == "memory_reservation":
        cur = _size(r[key]) if r.get(key) is not None else None
        new[key] = draw(st.one_of(sizes(), unlimited) if cur is not None else sizes())
    elif key in ("cpus", "cpu_quota"):
        if ("cpu_quota" if key == "cpus" else "cpus") in r:
            return None  # exclusive
        values = cpus_values if key == "cpus" else st.integers(1000, 2_000_000)
        lift = [st.just(-1)] if key == "cpu_quota" and r.get(key) not in (None, -1) else []
        new[key] = draw(st.one_of(_different(values, r.get(key)), *lift))
    elif key in ("cpu_shares", "blkio_weight", "cpu_period", "pids"):
        default, values = {"cpu_shares": (1024, st.integers(2, 262144)), "blkio_weight": (100, st.integers(10, 1000)),
                           "cpu_period": (100000, st.integers(10000, 1_000_000)),
                           "pids": ("unlimited", st.integers(1, 4194304))}[key]
        cur = r.get(key)
        lift = [st.just(default)] if cur not in (None, default, -1) else []
        new[key] = draw(st.one_of(_different(_different(values, default), cur), *lift))
    elif key in ("cpuset_cpus", "cpuset_mems"):
        choices = CPUSETS if key == "cpuset_cpus" else MEMSETS
        online = ",".join(map(str, ONLINE_CPUS if key == "cpuset_cpus" else ONLINE_NODES))
        current = r.get(key) or online
        others = [c for c in choices if c != current]
        if not others:
            return None  # a single CPU / memory node: every cpuset means "all of them"
        new[key] = draw(st.sampled_from(others))
    if resource_meaning(new) == before:
        event(f"mutation of resources.{key}: drew an equivalent value")
        return None
    return {**d, "resources": new}


def mutate(draw, d: dict, field: str) -> dict | None:
    """``d`` with ``field`` changed to a different valid value; None when there is none."""
    d = copy.deepcopy(d)
    proc = d["process"]
    if field == "rootfs":
        d["rootfs"] = draw(_other_of(["host"] + ROOTFS_DIRS, d.get("rootfs", "host")))
    elif field == "process.args":
        how = draw(st.sampled_from(["append", "replace"] + (["remove"] if len(proc["args"]) > 1 else [])))
        i = draw(st.integers(0, len(proc["args"]) - 1))
        if how == "append":
            proc["args"].append(draw(texts))
        elif how == "replace":
            proc["args"][i] = draw(_different(texts, proc["args"][i]))
        else:
            del proc["args"][i]
    elif field == "process.env":
        env = proc.setdefault("env", {})
        if env and draw(st.booleans()):
            key = draw(st.sampled_from(sorted(env)))
            env[key] = draw(_different(texts, env[key]))
        else:
            env[_new_key(draw(env_keys), env)] = draw(texts)
    elif field == "process.cwd":
        proc["cwd"] = draw(_different(paths, proc.get("cwd", "/")))
    elif field == "process.user":
        old = meaning(d)["process.user"]
        uid, gid = draw(st.tuples(ids, ids))
        proc["user"] = f"{uid}:{gid}" if (uid, gid) != old else f"{uid}:{gid + 1}"
    elif field == "hostname":
        if "uts" not in d.get("namespaces", DEFAULT_NAMESPACES):
            return None
        d["hostname"] = draw(_different(hostnames, d.get("hostname") or d["name"]))
    elif field == "namespaces":
        ns = list(d.get("namespaces", DEFAULT_NAMESPACES))
        which = draw(st.sampled_from([n for n in OPTIONAL_NAMESPACES if not (n == "uts" and d.get("hostname"))]))
        d["namespaces"] = [n for n in ns if n != which] if which in ns else ns + [which]
    elif field == "mounts":
        ms = d.setdefault("mounts", [])
        how = draw(st.sampled_from(["add"] + (["destination", "readonly", "source"] if ms else [])))
        if how == "add":
            ms.insert(draw(st.integers(0, len(ms))), draw(mounts))
        else:
            m = ms[draw(st.integers(0, len(ms) - 1))]
            if how == "destination":
                m["destination"] = draw(_different(destinations, m["destination"]))
            elif how == "readonly":
                m["readonly"] = not m.get("readonly", False)
            else:
                m["source"] = draw(_other_of(MOUNT_SOURCES, m["source"]))
    elif field == "network.mode":
        d["network"] = {"mode": "host" if d.get("network", {}).get("mode", "none") == "none" else "none"}
    elif field == "labels":
        labels = d.setdefault("labels", {})
        if labels and draw(st.booleans()):
            key = draw(st.sampled_from(sorted(labels)))
            labels[key] = draw(_different(texts, labels[key]))
        else:
            labels[_new_key(draw(label_keys), labels)] = draw(texts)
    elif field.startswith("resources."):
        return _mutate_resource(draw, d, field.split(".", 1)[1])
    elif field == "seccomp":
        d["seccomp"] = "unconfined" if d.get("seccomp", "default") == "default" else "default"
    elif field == "logging.max_size":
        current = meaning(d)[field]
        d.setdefault("logging", {})["max_size"] = draw(log_sizes.filter(lambda v: _size(v) != current))
    elif field == "logging.max_files":
        current = meaning(d)[field]
        d.setdefault("logging", {})["max_files"] = draw(log_files.filter(lambda v: v != current))
    elif field == "state":
        d["state"] = draw(_other_of(list(STATES), d.get("state", "running")))
    elif field == "restart":
        d["restart"] = draw(_other_of(RESTARTS, d.get("restart", "never")))
    elif field in ("reload_signal", "stop_signal"):
        old = spec_of(d).model_dump()[field]
        d[field] = draw(_other_of([s for s in SIGNALS if spec_of({**d, field: s}).model_dump()[field] != old], None))
    elif field == "reload_on":
        subsets = [[f for n, f in enumerate(RELOAD_FILES) if mask >> n & 1] for mask in range(1 << len(RELOAD_FILES))]
        d["reload_on"] = draw(_other_of(subsets, sorted(set(d.get("reload_on", [])))))
    elif field == "depends_on":
        d["depends_on"] = [draw(_different(names, d["name"]))]
    elif field == "stop_timeout":
        d["stop_timeout"] = draw(_different(st.integers(0, 60), d.get("stop_timeout", 10)))
    elif field == "health":
        d["health"] = draw(_other_of(HEALTHS, d.get("health")))
    else:
        raise AssertionError(field)
    return d if is_valid(d) else None


IMMUTABLE_FIELDS = ("rootfs", "process.args", "process.env", "process.cwd", "process.user", "hostname", "namespaces",
                    "mounts", "network.mode", "labels", "seccomp", "logging.max_size", "logging.max_files")
FIELDS = IMMUTABLE_FIELDS + tuple(f"resources.{k}" for k in RESOURCE_KEYS) + ("state",) + SPEC_ONLY


def test_the_mutated_fields_cover_the_spec():
    """Every field of ContainerSpec (but name) is mutated; the classes follow convert.MUTABLE_FIELDS."""
    top = {f.split(".")[0] for f in FIELDS}
    assert top | {"name"} == set(ContainerSpec.model_fields)
    assert {f.split(".")[0] for f in IMMUTABLE_FIELDS}.isdisjoint(MUTABLE_FIELDS)
    assert set(SPEC_ONLY) | {"resources", "state"} == MUTABLE_FIELDS
    assert {k.split(".")[-1] for k in FIELDS if k.startswith("resources.")} == set(
        ContainerSpec.model_fields["resources"].annotation.model_fields)


# -- removals --------------------------------------------------------------------------------

def removals(d: dict) -> list[tuple[str, dict]]:
    """Every single key or list item that can go (``(what, new dict)``), the spec staying valid."""
    out = []

    def without(what: str, edit) -> None:
        new = copy.deepcopy(d)
        edit(new)
        if is_valid(new):
            out.append((what, new))

    for key in d:
        if key not in ("name", "process"):
            without(key, lambda n, k=key: n.pop(k))
    for key in d["process"]:
        if key != "args":
            without(f"process.{key}", lambda n, k=key: n["process"].pop(k))
    for i in range(len(d["process"]["args"])):
        without(f"process.args[{i}]", lambda n, i=i: n["process"]["args"].pop(i))
    for key in d["process"].get("env", {}):
        without(f"process.env.{key}", lambda n, k=key: n["process"]["env"].pop(k))
    for i in range(len(d.get("mounts", []))):
        without(f"mounts[{i}]", lambda n, i=i: n["mounts"].pop(i))
    for i, m in enumerate(d.get("mounts", [])):
        if "readonly" in m:
            without(f"mounts[{i}].readonly", lambda n, i=i: n["mounts"][i].pop("readonly"))
    for key in d.get("labels", {}):
        without(f"labels.{key}", lambda n, k=key: n["labels"].pop(k))
    for ns in d.get("namespaces", []):
        without(f"namespaces[{ns}]", lambda n, ns=ns: n["namespaces"].remove(ns))
    for key in d.get("resources", {}):
        without(f"resources.{key}", lambda n, k=key: n["resources"].pop(k))
    for key in d.get("logging", {}):
        without(f"logging.{key}", lambda n, k=key: n["logging"].pop(k))
    for i in range(len(d.get("reload_on", []))):
        without(f"reload_on[{i}]", lambda n, i=i: n["reload_on"].pop(i))
    if "network" in d:
        without("network.mode", lambda n: n["network"].pop("mode"))
    return out


# -- equivalent spellings --------------------------------------------------------------------

@st.composite
def respelled(draw, d: dict) -> dict:
    """``d`` written another way that means the same: sizes, order, defaults written out or left out."""
    d = copy.deepcopy(d)
    proc = d["process"]
    coin = lambda: draw(st.booleans())  # noqa: E731
    defaults = {"rootfs": "host", "network": {"mode": "none"}, "labels": {}, "mounts": [], "state": "running",
                "restart": "never", "reload_signal": "SIGHUP", "stop_signal": "SIGTERM", "stop_timeout": 10,
                "depends_on": [], "reload_on": [], "resources": {}, "namespaces": list(DEFAULT_NAMESPACES),
                "seccomp": "default", "logging": {}}
    for key, value in defaults.items():
        if key not in d and coin():
            d[key] = copy.deepcopy(value)
        elif d.get(key) == value and coin():
            del d[key]
    for key, value in {"env": {}, "cwd": "/", "user": "0:0"}.items():
        if key not in proc and coin():
            proc[key] = value
        elif proc.get(key) == value and coin():
            del proc[key]
    if "uts" in d.get("namespaces", DEFAULT_NAMESPACES):
        if not d.get("hostname") and coin():
            d["hostname"] = draw(st.sampled_from([d["name"], ""]))
        elif d.get("hostname") == d["name"] and coin():
            del d["hostname"]
    if "namespaces" in d:
        d["namespaces"] = draw(st.permutations(d["namespaces"]))
    for key in ("env",):
        if key in proc:
            proc[key] = dict(reversed(list(proc[key].items())))
    if "labels" in d:
        d["labels"] = dict(reversed(list(d["labels"].items())))
    for m in d.get("mounts", []):
        if "readonly" not in m and coin():
            m["readonly"] = False
        elif m.get("readonly") is False and coin():
            del m["readonly"]
    for key in ("reload_signal", "stop_signal"):
        if key in d:
            name = spec_of(d).model_dump()[key]
            d[key] = draw(st.sampled_from([name, name.removeprefix("SIG")]))
    if "reload_on" in d:
        d["reload_on"] = draw(st.permutations(d["reload_on"] + d["reload_on"][:1]))
    if "stop_timeout" in d and float(d["stop_timeout"]).is_integer() and coin():
        d["stop_timeout"] = float(d["stop_timeout"]) if isinstance(d["stop_timeout"], int) else int(d["stop_timeout"])
    logging = d.get("logging")
    if logging is not None:
        if "max_size" in logging:
            n = _size(logging["max_size"])
            logging["max_size"] = draw(size_spellings(n) if n % MIB == 0 else st.sampled_from([n, str(n)]))
        for key, default in (("max_size", draw(size_spellings(DEFAULT_MAX_SIZE))), ("max_files", DEFAULT_MAX_FILES)):
            if key not in logging and coin():
                logging[key] = default
    r = d.get("resources")
    if r is not None:
        for key in ("memory", "memory_reservation", "memory_swap"):
            if key in r:
                n = _size(r[key])
                r[key] = draw(unlimited if n is None else size_spellings(n))
            elif coin():
                r[key] = draw(unlimited)
        period = r.get("cpu_period") or 100000
        if "cpus" in r and float(r["cpus"] * period).is_integer() and coin():
            r["cpu_quota"] = int(r.pop("cpus") * period)  # cpus × period
        elif "cpus" in r and float(r["cpus"]).is_integer():
            r["cpus"] = draw(st.sampled_from([int(r["cpus"]), float(r["cpus"])]))
        elif "cpus" not in r and "cpu_quota" not in r and coin():
            r["cpu_quota"] = -1
        for key, default in (("cpu_shares", 1024), ("cpu_period", 100000), ("blkio_weight", 100),
                             ("pids", draw(st.sampled_from(["unlimited", -1])))):
            if key not in r and coin():
                r[key] = default
        if "pids" in r and r["pids"] in ("unlimited", -1):
            r["pids"] = draw(st.sampled_from(["unlimited", -1]))
        for key, online in (("cpuset_cpus", ONLINE_CPUS), ("cpuset_mems", ONLINE_NODES)):
            if key not in r and coin():
                r[key] = ",".join(map(str, online))  # every CPU/node: what no cpuset means
    assert is_valid(d), d
    return d


# -- the properties --------------------------------------------------------------------------

@PROPS
@given(spec_dicts())
def test_applied_then_planned_is_empty(d):
    """As apply leaves it, nothing to do; from nothing, one create (none for absent) that converges."""
    observed = applied_state(d)
    assert plan_for(d, observed).actions == []
    # and from nothing, the plan creates it (or does nothing for absent) and converges
    transition(None, None, {}, d, "from nothing")


@PROPS
@given(spec_dicts(), st.data())
def test_one_field_changed_is_one_action_of_its_class(d, data):
    """Each field in turn changed alone: the action and its class, cause and resources; applied, it converges."""
    observed = applied_state(d)
    status = observed[d["name"]].status if observed else None
    checked = 0
    for field in FIELDS:
        new = mutate(data.draw, d, field)
        if new is None:
            continue
        transition(status, d, observed, new, f"mutated {field}")
        want = expected_action(status, d, new)
        if status is not None and field in IMMUTABLE_FIELDS:
            assert want[0] == "recreate" and any(f == field or f.startswith(field + ".") for f in want[2])
        elif status is not None and field.startswith("resources."):
            assert want[0] == "live"
        elif field == "state":
            assert want is not None and want[0] in ("lifecycle", "destroy", "create")
        elif field in SPEC_ONLY or status is None:
            assert want is None  # read from the spec when used: nothing to do to the container
        checked += 1
    assert checked >= len(IMMUTABLE_FIELDS) - 1


@PROPS
@given(spec_dicts(states=st.sampled_from(["running", "paused", "stopped"])))
def test_a_removed_key_or_item_is_noticed(d):
    """Every key and list item removed in turn: noticed unless the rest means the same; applied, it converges."""
    observed = applied_state(d)
    status = observed[d["name"]].status
    for what, new in removals(d):
        plan = plan_for(new, observed)
        transition(status, d, observed, new, f"removed {what}")
        if immutable_changes(d, new) or resource_changes(d, new) or meaning(new) != meaning(d):
            assert plan.actions, f"removing {what} went unnoticed"
        if what.startswith(("process.env.", "labels.", "process.args[")) or re.fullmatch(r"mounts\[\d+\]", what):
            assert plan.actions and plan.actions[0].kind == "recreate", what
        if what.startswith("resources.") and resource_changes(d, new):
            assert plan.actions and plan.actions[0].kind in ("live", "lifecycle"), what


@PROPS
@given(spec_dicts(), st.data())
def test_the_same_spec_spelled_differently_plans_nothing(d, data):
    """Sizes respelled, namespaces reordered, defaults written out or left out, cpus as cpu_quota…: no action."""
    new = data.draw(respelled(d))
    assert not immutable_changes(d, new) and not resource_changes(d, new)
    assert plan_for(new, applied_state(d)).actions == [], f"{d}\n→ {new}"


@PROPS
@given(spec_dicts(), st.lists(st.one_of(st.just("state"), st.sampled_from(FIELDS)), min_size=1, max_size=6), st.data())
def test_apply_converges_over_a_chain_of_edits(d, fields, data):
    """Each edit planned against what the previous applies left (incl. STOPPED after a stop), executed, re-planned."""
    observed = transition(None, None, {}, d, "from nothing")
    old = d
    for field in fields:
        new = mutate(data.draw, old, field)
        if new is None:
            continue
        obs = observed.get(d["name"])
        status = obs.status if obs else None
        made_from = old if obs is not None else None
        if known_bug(status, made_from, new):
            event(known_bug(status, made_from, new))
            return
        observed = transition(status, made_from, observed, new, f"edit {field}")
        old = new  # what the container now answers to: created from it, or brought to it live / by lifecycle


# -- regressions: bugs these properties found ----------------------------------------------

BASE = {"name": "web", "process": {"args": ["/bin/sh", "-c", "sleep 1000"]}}

@pytest.mark.parametrize("old, new", [("1000:1000", "1000"), ("0:0", "0"), (None, "0")])
def test_user_spellings_plan_nothing(old, new):
    """Regression: "1000" and "1000:1000" planned a recreate."""
    before = copy.deepcopy(BASE)
    if old is not None:
        before["process"]["user"] = old
    after = copy.deepcopy(BASE)
    after["process"]["user"] = new
    assert meaning(before) == meaning(after)
    assert [str(a) for a in plan_for(after, applied_state(before)).actions] == []


def test_cpuset_spellings_plan_nothing():
    """Regression: "0-1" and "0,1" planned a live update."""
    before = {**BASE, "resources": {"cpuset_cpus": "0-1"}}
    after = {**BASE, "resources": {"cpuset_cpus": "0,1"}}
    assert [str(a) for a in plan_for(after, applied_state(before)).actions] == []


def test_resources_of_a_stopped_container_wait_for_its_start():
    """Regression: a live set was planned on a STOPPED container; set() refuses those, so apply never converged."""
    running = {**BASE, "resources": {"memory": "64Mi"}}
    stopped = {**running, "state": "stopped"}
    observed = transition(None, None, {}, running)
    observed = transition(Status.RUNNING, running, observed, stopped)  # stop → STOPPED
    assert observed["web"].status == Status.STOPPED
    bigger = {**stopped, "resources": {"memory": "128Mi"}}
    plan = plan_for(bigger, observed)
    assert plan.actions == []  # the new limits come with the next start (a new container)
    execute(plan, {"web": bigger}, observed)


@pytest.mark.parametrize("state", ["running", "paused"])
def test_stopped_then_running_is_started_whatever_the_policy(state):
    """Regression: a container apply stopped (state: stopped) was taken for an exit under restart: never."""
    stopped = {**BASE, "state": "stopped"}
    observed = transition(None, None, {}, BASE)
    observed = transition(Status.RUNNING, BASE, observed, stopped)  # stop → STOPPED
    web = observed["web"]  # what apply records when it stops a container on purpose
    web.created = web.created or "2026-01-01T00:00:00Z"
    web.restart = {"stopped_run": web.created}
    again = {**BASE, "state": state}
    plan = plan_for(again, observed)
    # got: no action; a note 'web: exited (exit code unknown), not restarted (restart: never)'
    assert [a.kind for a in plan.actions] == ["lifecycle"], plan.notes


def test_a_plan_matches_the_one_shown_only_with_the_same_state_and_actions():
    """``apply --plan`` and the TUI's apply run a plan only if, made again now, it is the one shown."""
    act = Action("web", "live", "resources.memory", ("set",), {"memory": 1 << 26})
    plan = Plan(actions=[act], fingerprint="f1")
    shown = plan.to_dict()
    assert plan.matches(shown["fingerprint"], shown["actions"])
    assert plan.matches("f1", tuple(shown["actions"]))  # the TUI keeps them as a tuple
    assert not plan.matches("f2", shown["actions"])  # the containers moved
    assert not plan.matches("f1", [])  # the specs moved: other actions
    assert not plan.matches("f1", [dict(shown["actions"][0], cause="other")])
    assert not plan.matches("f1", None)  # a saved plan without actions
    assert Plan(fingerprint="f1").matches("f1", [])
