"""The spec's ``health:`` field (issue 16): its forms, its errors at their place in the file, the
normalized shape ``declarative_ct.health.check`` reads, the schema, and what the reconciler makes
of a change (nothing: the supervisor probes with the spec's probe of the moment).

Pure: temporary files only, no root, no containers.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from declarative_ct.cli.desired import schema_text
from declarative_ct.configs import Config
from declarative_ct.health.check import HealthCheck
from declarative_ct.reconcile import last_applied
from declarative_ct.reconcile.convert import LABEL_SPEC, MUTABLE_FIELDS, spec_hash, to_runtime
from declarative_ct.reconcile.plan import Observed, make_plan
from declarative_ct.runtime import Status
from declarative_ct.spec.load import SpecErrors, load_mapping, load_paths
from declarative_ct.spec.model import MAX_ARG_STRLEN, ContainerSpec

SOURCE = "/specs/web.yaml"
DEFAULTS = {"exec": None, "http": None, "tcp": None, "interval": 10.0, "timeout": 5.0, "retries": 3,
            "start_period": 0.0, "on_unhealthy": "none"}


def spec(**fields: object) -> ContainerSpec:
    return ContainerSpec.model_validate({"name": "web", "process": {"args": ["/bin/true"]}, **fields})


def normalized_health(health: object) -> dict | None:
    return spec(health=health).normalized()["health"]


def errors(tmp_path: Path, health_yaml: str) -> list[str]:
    """The errors of a spec file whose ``health:`` starts on line 3, as ``line:col: field: message``."""
    f = tmp_path / "web.yaml"
    f.write_text("name: web\nprocess: {args: [/bin/true]}\n" + textwrap.dedent(health_yaml))
    with pytest.raises(SpecErrors) as info:
        load_paths([str(f)])
    return [str(e).removeprefix(f"{f}:") for e in info.value.errors]


# --- good values --------------------------------------------------------------------------------------------

def test_no_health_is_none_everywhere() -> None:
    s = spec()
    assert s.health is None and s.normalized()["health"] is None and s.desired().health is None
    assert spec(health=None).normalized() == s.normalized()
    assert HealthCheck.from_normalized(s.desired().health) is None


@pytest.mark.parametrize("written, normalized", [
    ({"exec": ["test", "-f", "/tmp/ready"]}, {"exec": ["test", "-f", "/tmp/ready"]}),
    ({"http": {"port": 8080}}, {"http": {"port": 8080, "path": "/", "expect_status": None}}),
    ({"http": {"port": 80, "path": "/healthz?full=1", "expect_status": 204}},
     {"http": {"port": 80, "path": "/healthz?full=1", "expect_status": [204]}}),
    ({"http": {"port": 80, "expect_status": [301, 200, 204, 200]}},
     {"http": {"port": 80, "path": "/", "expect_status": [200, 204, 301]}}),
    ({"tcp": {"port": 5432}}, {"tcp": {"port": 5432}}),
    ({"exec": ["a"], "interval": "2s", "timeout": "500ms", "retries": 1, "start_period": "1m30s",
      "on_unhealthy": "restart"},
     {"exec": ["a"], "interval": 2.0, "timeout": 0.5, "retries": 1, "start_period": 90.0, "on_unhealthy": "restart"}),
    ({"exec": ["a"], "interval": 2, "timeout": 0.25, "start_period": 0}, {"exec": ["a"], "interval": 2.0,
                                                                          "timeout": 0.25, "start_period": 0.0}),
    ({"exec": ["a"], "interval": 0.5, "timeout": "1h", "start_period": "1h", "retries": 100},  # the bounds
     {"exec": ["a"], "interval": 0.5, "timeout": 3600.0, "start_period": 3600.0, "retries": 100}),
    ({"exec": ["a"], "interval": "1s", "timeout": "10s"}, {"exec": ["a"], "interval": 1.0, "timeout": 10.0}),
])
def test_the_normalized_shape_is_the_one_health_check_reads(written: dict, normalized: dict) -> None:
    """Every key present (unused probes None), durations in float seconds, statuses sorted; a timeout
    longer than the interval is allowed (compose allows it too)."""
    got = normalized_health(written)
    assert got == {**DEFAULTS, **normalized}
    assert all(type(got[k]) is float for k in ("interval", "timeout", "start_period"))
    assert json.loads(json.dumps(got)) == got  # JSON-ready: it goes into the dct.spec label and the cache


@pytest.mark.parametrize("health, kind, described", [
    # the example and the contract's module doc
    ({"exec": ["test", "-f", "/tmp/ready"], "interval": "2s", "timeout": "1s", "retries": 3, "start_period": "5s",
      "on_unhealthy": "restart"}, "exec", "exec test -f /tmp/ready"),
    ({"http": {"port": 8080, "path": "/healthz", "expect_status": [200]}}, "http", "http GET :8080/healthz → 200"),
    ({"http": {"port": 8080}}, "http", "http GET :8080/"),
    ({"tcp": {"port": 5432}}, "tcp", "tcp :5432"),
])
def test_round_trip_through_health_check(health: dict, kind: str, described: str) -> None:
    """What the spec normalizes, ``HealthCheck.from_normalized`` takes, whichever road the spec came by."""
    s = spec(health=health)
    check = HealthCheck.from_normalized(s.desired().health)
    assert (check.kind, check.describe()) == (kind, described)
    norm = s.normalized()["health"]
    assert (check.interval, check.timeout, check.retries, check.start_period, check.on_unhealthy) == (
        norm["interval"], norm["timeout"], norm["retries"], norm["start_period"], norm["on_unhealthy"])
    if kind == "exec":
        assert check.command == tuple(health["exec"])
        assert check.timing() == "every 2s, timeout 1s, 3 retries, start period 5s"
    else:
        assert check.port == health[kind]["port"]
    applied = json.loads(to_runtime(s.desired(), SOURCE)[0].label(LABEL_SPEC))  # the dct.spec label
    assert HealthCheck.from_normalized(applied["health"]) == check
    from_file = load_mapping({"name": "web", "process": {"args": ["/bin/true"]}, "health": health}, SOURCE)
    assert HealthCheck.from_normalized(from_file.spec.desired().health) == check


def test_the_desired_health_is_a_copy() -> None:
    desired = spec(health={"exec": ["a"]}).desired()
    desired.health["exec"].append("b")
    assert desired.health["exec"] == ["a"]


# --- errors at their place ----------------------------------------------------------------------------------

@pytest.mark.parametrize("health_yaml, expected", [
    ("health: {}\n", ["3:9: health: give exactly one probe: exec, http or tcp (none is given)"]),
    ("health: {interval: 2s}\n", ["3:9: health: give exactly one probe: exec, http or tcp (none is given)"]),
    ("health: {exec: [a], tcp: {port: 1}}\n",
     ["3:9: health: give exactly one probe: exec, http or tcp (not exec and tcp)"]),
    ("health:\n  http: {port: 1}\n  tcp: {port: 1}\n  exec: [a]\n",
     ["4:3: health: give exactly one probe: exec, http or tcp (not exec and http and tcp)"]),
    ("health: [a]\n", ["3:9: health: expected a mapping (key: value), got a list"]),
    ("health:\n  exec: []\n", ["4:9: health.exec: must not be empty"]),
    ("health:\n  exec: curl -f localhost\n",
     ['4:9: health.exec: expected a list (the program and its arguments), got the string "curl -f localhost": '
      'write [sh, -c, "curl -f localhost"] for a shell command']),
    ("health:\n  exec: [test, 1]\n", ["4:16: health.exec[1]: expected a string, got the number 1: "
                                      'quote it ("1") if it is meant as text']),
    ('health:\n  exec: ["a\\0b"]\n', ["4:9: health.exec: an argument holds a NUL character"]),
    ("health:\n  tcp: {port: \"5432\"}\n", ['4:15: health.tcp.port: expected an integer, got the string "5432"']),
    ("health:\n  tcp: {port: 0}\n", ["4:15: health.tcp.port: must be greater than or equal to 1"]),
    ("health:\n  tcp: {port: 65536}\n", ["4:15: health.tcp.port: must be less than or equal to 65535"]),
    ("health:\n  tcp: {port: 1.5}\n", ["4:15: health.tcp.port: expected an integer, got the number 1.5"]),
    ("health:\n  tcp: {}\n", ["4:8: health.tcp.port: required field is missing"]),
    ("health:\n  tcp: {port: 1, path: /}\n", ["4:18: health.tcp.path: unknown field"]),
    ("health:\n  http: {port: 80, path: healthz}\n",
     ["4:26: health.http.path: 'healthz' must start with / (a path such as /healthz)"]),
    ("health:\n  http: {port: 80, path: \"/a b\"}\n",
     ["4:26: health.http.path: '/a b' holds a space: percent-encode it (%20)"]),
    ("health:\n  http: {port: 80, path: \"/a\\tb\"}\n",
     ["4:26: health.http.path: '/a\\tb' holds U+0009: percent-encode it (%09)"]),
    ("health:\n  http: {port: 80, path: \"/\\x7f\"}\n",
     ["4:26: health.http.path: '/\\x7f' holds U+007F: percent-encode it (%7F)"]),
    ("health:\n  http: {port: 80, path: /é}\n",
     ["4:26: health.http.path: '/é' holds the non-ASCII 'é': percent-encode it (%C3%A9)"]),
    ("health:\n  http: {port: 80, path: \"/a\\u00a0\"}\n",
     ["4:26: health.http.path: '/a\\xa0' holds U+00A0: percent-encode it (%C2%A0)"]),
    ("health:\n  http: {port: 80, expect_status: 99}\n",
     ["4:35: health.http.expect_status: must be greater than or equal to 100"]),
    ("health:\n  http: {port: 80, expect_status: [200, 600]}\n",
     ["4:41: health.http.expect_status[1]: must be less than or equal to 599"]),
    ("health:\n  http: {port: 80, expect_status: [200, true]}\n",
     ["4:41: health.http.expect_status[1]: expected an integer, got the boolean true"]),
    ("health:\n  http: {port: 80, expect_status: []}\n",
     ["4:35: health.http.expect_status: must not be empty"]),
    ("health:\n  http: {port: 80, expect_status: \"200\"}\n",
     ['4:35: health.http.expect_status: expected a status code (e.g. 200) or a list of them, got the string "200"']),
    ("health:\n  exec: [a]\n  interval: 100ms\n", ["5:13: health.interval: 100ms is too short (at least 500ms)"]),
    ("health:\n  exec: [a]\n  interval: 0.4\n", ["5:13: health.interval: 400ms is too short (at least 500ms)"]),
    ("health:\n  exec: [a]\n  interval: 2h\n", ["5:13: health.interval: 2h is too long (at most 1h)"]),
    ("health:\n  exec: [a]\n  timeout: 50ms\n", ["5:12: health.timeout: 50ms is too short (at least 100ms)"]),
    ("health:\n  exec: [a]\n  start_period: 61m\n", ["5:17: health.start_period: 61m is too long (at most 1h)"]),
    ("health:\n  exec: [a]\n  interval: 2 s\n",
     ["5:13: health.interval: '2 s' is not a duration (2s, 500ms, 1m30s or seconds)"]),
    ("health:\n  exec: [a]\n  interval: 1d\n",
     ["5:13: health.interval: '1d' is not a duration (2s, 500ms, 1m30s or seconds)"]),
    ("health:\n  exec: [a]\n  timeout: -1\n",
     ["5:12: health.timeout: -1 is not a duration (2s, 500ms, 1m30s or seconds)"]),
    ("health:\n  exec: [a]\n  timeout: .inf\n",
     ["5:12: health.timeout: inf is not a duration (2s, 500ms, 1m30s or seconds)"]),
    ("health:\n  exec: [a]\n  timeout: true\n",
     ["5:12: health.timeout: expected a duration (2s, 500ms, 1m30s or seconds), got the boolean true"]),
    ("health:\n  exec: [a]\n  start_period: [1]\n",
     ["5:17: health.start_period: expected a duration (2s, 500ms, 1m30s or seconds), got a list"]),
    ("health:\n  exec: [a]\n  retries: 0\n", ["5:12: health.retries: must be greater than or equal to 1"]),
    ("health:\n  exec: [a]\n  retries: 101\n", ["5:12: health.retries: must be less than or equal to 100"]),
    ("health:\n  exec: [a]\n  retries: \"3\"\n", ['5:12: health.retries: expected an integer, got the string "3"']),
    ("health:\n  exec: [a]\n  on_unhealthy: kill\n",
     ["5:17: health.on_unhealthy: expected 'none' or 'restart', got the string \"kill\""]),
    ("health:\n  exec: [a]\n  on_unhealthy: stop\n",
     ["5:17: health.on_unhealthy: expected 'none' or 'restart', got the string \"stop\""]),
    ("health:\n  exec: [a]\n  intervall: 2s\n", ["5:3: health.intervall: unknown field (did you mean `interval`?)"]),
    ("healthcheck:\n  test: [a]\n", ["3:1: healthcheck: unknown field (did you mean `health`?)"]),
])
def test_each_bad_value_is_reported_at_its_place(tmp_path: Path, health_yaml: str, expected: list[str]) -> None:
    assert errors(tmp_path, health_yaml) == expected


def test_an_argument_too_long_for_execve(tmp_path: Path) -> None:
    assert errors(tmp_path, f"health:\n  exec: [a, {'x' * MAX_ARG_STRLEN}]\n") == [
        f"4:9: health.exec: an argument is {MAX_ARG_STRLEN} bytes or longer (the kernel's MAX_ARG_STRLEN)"]


def test_every_error_of_the_field_at_once(tmp_path: Path) -> None:
    assert errors(tmp_path, """\
        health:
          http: {port: 0, path: x}
          interval: 1ms
          retries: 0
        """) == ["4:16: health.http.port: must be greater than or equal to 1",
                 "4:25: health.http.path: 'x' must start with / (a path such as /healthz)",
                 "5:13: health.interval: 1ms is too short (at least 500ms)",
                 "6:12: health.retries: must be greater than or equal to 1"]


@pytest.mark.parametrize("health, expected", [
    ({}, "health: give exactly one probe: exec, http or tcp (none is given)"),
    ({"tcp": {"port": 0}}, "health.tcp.port: must be greater than or equal to 1"),
    ({"exec": ["a"], "interval": "1ms"}, "health.interval: 1ms is too short (at least 500ms)"),
    ({"http": {"port": 80, "expect_status": [200, 700]}},
     "health.http.expect_status[1]: must be less than or equal to 599"),
    ({"exec": "true"}, 'health.exec: expected a list (the program and its arguments), got the string "true": '
                       'write [sh, -c, "true"] for a shell command'),
])
def test_inline_options_name_the_field(health: dict, expected: str) -> None:
    """The Ansible module's road (``load_mapping``): the same words, the dotted field."""
    with pytest.raises(SpecErrors) as info:
        load_mapping({"name": "web", "process": {"args": ["/bin/true"]}, "health": health}, "ansible:web")
    assert [f"{e.field}: {e.message}" for e in info.value.errors] == [expected]


# --- the schema and the reconciler --------------------------------------------------------------------------

def test_the_schema_documents_health() -> None:
    schema = json.loads(schema_text())
    health = schema["$defs"]["HealthSpec"]
    assert health["additionalProperties"] is False
    assert set(health["properties"]) == {"exec", "http", "tcp", "interval", "timeout", "retries", "start_period",
                                         "on_unhealthy"}
    for name in ("interval", "timeout", "start_period"):  # the Duration type: a number or a text
        assert health["properties"][name]["type"] == ["integer", "number", "string"]
        assert "2s" in health["properties"][name]["description"]
    assert health["properties"]["on_unhealthy"]["enum"] == ["none", "restart"]
    assert schema["$defs"]["HttpProbeSpec"]["required"] == ["port"]
    status = schema["$defs"]["HttpProbeSpec"]["properties"]["expect_status"]["anyOf"][0]["anyOf"]
    assert [s["type"] for s in status] == ["integer", "array"]
    assert all(p.get("description") for p in [schema["properties"]["health"]]
               + [health["properties"][k] for k in ("exec", "interval", "timeout", "retries", "on_unhealthy")])


def test_health_is_mutable_and_outside_the_hash() -> None:
    assert "health" in MUTABLE_FIELDS
    assert spec_hash(spec(health={"exec": ["a"]}).normalized()) == spec_hash(spec().normalized())


def _observed(spec_doc, drop: tuple[str, ...] = ()) -> dict[str, Observed]:
    """What ``observe`` finds after apply made ``spec_doc``'s container (``drop``: fields a version without
    them did not record)."""
    config, _ = to_runtime(spec_doc.spec, SOURCE)
    normalized = {k: v for k, v in spec_doc.spec.normalized().items() if k not in drop}
    config.labels = [x for x in config.labels if not x.startswith(LABEL_SPEC + "=")] + [last_applied.label(normalized)]
    saved = Config.from_dict(json.loads(json.dumps(config.to_dict())))
    return {"web": Observed("web", Status.RUNNING, True, SOURCE, last_applied.read(saved),
                            saved.cgroups.resources.limits())}


def _doc(**fields: object):
    return load_mapping({"name": "web", "process": {"args": ["/bin/true"]}, **fields}, SOURCE)


@pytest.mark.parametrize("before, after", [
    (None, {"exec": ["a"]}),
    ({"exec": ["a"]}, None),
    ({"exec": ["a"]}, {"exec": ["b"], "interval": "2s"}),
    ({"exec": ["a"]}, {"http": {"port": 80}, "on_unhealthy": "restart"}),
    ({"tcp": {"port": 80}}, {"tcp": {"port": 81}, "retries": 5, "start_period": "10s"}),
])
def test_a_change_of_the_probe_plans_nothing(before: object, after: object) -> None:
    """``dct plan`` of a health-only change: no recreate, no action (the supervisor takes the new probe)."""
    assert make_plan([_doc(health=after)], _observed(_doc(health=before)), scope=[SOURCE]).actions == []


def test_a_container_made_before_health_is_not_recreated() -> None:
    """Its ``dct.spec`` label has no ``health`` (nor a ``depends_on`` mapping): it reads as no probe."""
    made = _observed(_doc(), drop=("health",))
    assert made["web"].applied["health"] is None
    assert make_plan([_doc()], made, scope=[SOURCE]).actions == []
    assert make_plan([_doc(health={"exec": ["a"]})], made, scope=[SOURCE]).actions == []
