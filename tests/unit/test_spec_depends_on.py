"""``depends_on`` with conditions (issue 16): the list form (each name ``started``) beside the mapping
form ``{db: healthy, migrate: completed, cache: started}``; its normalized form (name → condition),
what the reconciler reads (``DesiredSpec.dependency_conditions``), its errors at their place, and the
checks across documents (unknown names, cycles, conditions that can never hold).

Pure: temporary files only, no root, no containers.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from declarative_ct.cli.desired import schema_text
from declarative_ct.configs import Config
from declarative_ct.reconcile import last_applied
from declarative_ct.reconcile.convert import spec_hash, to_runtime
from declarative_ct.reconcile.plan import Observed, make_plan
from declarative_ct.runtime import Status
from declarative_ct.spec.desired import DesiredDocument, DesiredSpec
from declarative_ct.spec.load import SpecErrors, load_mapping, load_paths
from declarative_ct.spec.model import ContainerSpec


def spec(**fields: object) -> ContainerSpec:
    return ContainerSpec.model_validate({"name": "web", "process": {"args": ["/bin/true"]}, **fields})


def write(path: Path, text: str) -> Path:
    path.write_text(textwrap.dedent(text))
    return path


def errors(*paths: Path) -> list[str]:
    with pytest.raises(SpecErrors) as info:
        load_paths([str(p) for p in paths])
    return [str(e) for e in info.value.errors]


# --- forms and what the reconciler reads ---------------------------------------------------------------------

@pytest.mark.parametrize("written, normalized", [
    ([], {}),
    (["db", "cache", "db"], {"cache": "started", "db": "started"}),
    ({"db": "healthy", "migrate": "completed", "cache": "started"},
     {"cache": "started", "db": "healthy", "migrate": "completed"}),
    ({}, {}),
])
def test_both_forms_normalize_to_the_mapping(written: object, normalized: dict) -> None:
    got = spec(depends_on=written).normalized()["depends_on"]
    assert got == normalized and list(got) == sorted(got)  # keys sorted: one canonical form


def test_the_list_form_means_started() -> None:
    as_list = spec(depends_on=["db", "cache"])
    as_mapping = spec(depends_on={"cache": "started", "db": "started"})
    assert as_list.normalized() == as_mapping.normalized() == spec(depends_on=["cache", "db", "db"]).normalized()
    assert spec().normalized() == spec(depends_on={}).normalized() == spec(depends_on=[]).normalized()


def test_desired_spec_reads_names_and_conditions() -> None:
    s = spec(depends_on={"migrate": "completed", "db": "healthy"}, network={"mode": "container:side"},
             namespaces=["pid", "mount", "net"])
    for desired in (s.desired(), DesiredSpec.from_json(json.loads(json.dumps(s.model_dump(mode="json"))),
                                                       json.loads(json.dumps(s.normalized())))):  # the cache's road
        assert desired.depends_on == ["migrate", "db"]  # as given
        assert desired.dependencies() == ["db", "migrate", "side"]
        assert desired.dependency_conditions() == {"db": "healthy", "migrate": "completed", "side": "started"}
        desired.dependency_conditions()["db"] = "started"  # a new dict each time
        assert desired.dependency_conditions()["db"] == "healthy"
    assert s.dependency_conditions() == s.desired().dependency_conditions()
    assert spec(depends_on=["db"]).desired().dependency_conditions() == {"db": "started"}
    assert spec().desired().dependency_conditions() == {}


def test_a_network_dependency_takes_the_condition_depends_on_gives_it() -> None:
    s = spec(depends_on={"side": "healthy"}, network={"mode": "container:side"})
    assert s.desired().dependency_conditions() == {"side": "healthy"}
    assert s.desired().dependencies() == ["side"]


def test_a_normalized_form_recorded_before_conditions_still_reads() -> None:
    """A spec cache entry or ``dct.spec`` label of an older version: ``depends_on`` a list, no ``health``."""
    s = spec(depends_on=["db"], network={"mode": "container:side"})
    old = {**s.normalized(), "depends_on": ["db"]}
    del old["health"]
    desired = DesiredSpec.from_json(s.model_dump(mode="json"), old)
    assert desired.dependency_conditions() == {"db": "started", "side": "started"}
    assert desired.dependencies() == ["db", "side"]
    assert desired.health is None


def test_conditions_are_mutable() -> None:
    """A change of conditions needs no new container (apply reads them when it starts one)."""
    assert spec_hash(spec(depends_on={"db": "healthy"}).normalized()) == spec_hash(spec().normalized())
    source = "/specs/web.yaml"
    before = load_mapping({"name": "web", "process": {"args": ["/bin/true"]}, "depends_on": ["db"]}, source)
    config, _ = to_runtime(before.spec, source)  # the container apply made, as observe reads it back
    saved = Config.from_dict(json.loads(json.dumps(config.to_dict())))
    made = {"web": Observed("web", Status.RUNNING, True, source, last_applied.read(saved),
                            saved.cgroups.resources.limits())}
    for depends_on in ({"db": "healthy"}, {"db": "completed", "cache": "started"}, ["db"], []):
        doc = load_mapping({"name": "web", "process": {"args": ["/bin/true"]}, "depends_on": depends_on}, source)
        assert make_plan([doc], made, scope=[source]).actions == [], depends_on


# --- errors in one document ---------------------------------------------------------------------------------

@pytest.mark.parametrize("depends_yaml, expected", [
    ("depends_on: db\n", ["3:13: depends_on: expected a list of names or a mapping of name: condition (started, "
                          'healthy or completed), got the string "db"']),
    ("depends_on: 3\n", ["3:13: depends_on: expected a list of names or a mapping of name: condition (started, "
                         "healthy or completed), got the number 3"]),
    ("depends_on: [db, 3]\n", ["3:18: depends_on[1]: expected a string (a container's name), got the number 3"]),
    ("depends_on: [db, {a: b}]\n", ["3:18: depends_on[1]: expected a string (a container's name), got a mapping"]),
    ("depends_on: [db, -x]\n", ["3:18: depends_on[1]: must be 1 to 63 letters, digits or _ . + - (starting with a "
                                "letter or digit)"]),
    ("depends_on: {db: health}\n",
     ["3:18: depends_on.db: expected 'started', 'healthy' or 'completed', got the string \"health\""]),
    ("depends_on:\n  db: service_healthy\n",
     ["4:7: depends_on.db: expected 'started', 'healthy' or 'completed', got the string \"service_healthy\""]),
    ("depends_on:\n  db:\n", ["4:6: depends_on.db: expected 'started', 'healthy' or 'completed', "
                              "got nothing (an empty value)"]),
    ("depends_on:\n  db: {condition: service_healthy}\n",
     ["4:7: depends_on.db: expected 'started', 'healthy' or 'completed', got a mapping"]),
    ("depends_on: {\"-x\": started}\n", ["3:14: depends_on.-x: must be 1 to 63 letters, digits or _ . + - "
                                         "(starting with a letter or digit)"]),
    ("depends_on: {web: started}\n", ["3:13: depends_on: a container cannot depend on itself"]),
    ("depends_on: [web]\n", ["3:13: depends_on: a container cannot depend on itself"]),
])
def test_each_bad_value_is_reported_at_its_place(tmp_path: Path, depends_yaml: str, expected: list[str]) -> None:
    f = write(tmp_path / "web.yaml", "name: web\nprocess: {args: [/bin/true]}\n" + depends_yaml)
    db = write(tmp_path / "db.yaml", "name: db\nprocess: {args: [/bin/true]}\nhealth: {exec: [a]}\n")
    assert [e.removeprefix(f"{f}:") for e in errors(f, db)] == expected


@pytest.mark.parametrize("depends_on, expected", [
    ({"db": "ready"}, "depends_on.db: expected 'started', 'healthy' or 'completed', got the string \"ready\""),
    (["db", 1], "depends_on[1]: expected a string (a container's name), got the number 1"),
    ("db", 'depends_on: expected a list of names or a mapping of name: condition (started, healthy or completed), '
           'got the string "db"'),
])
def test_inline_options_name_the_field(depends_on: object, expected: str) -> None:
    """The Ansible module's road: the same words, the dotted field (names are not checked: no other specs)."""
    with pytest.raises(SpecErrors) as info:
        load_mapping({"name": "web", "process": {"args": ["/bin/true"]}, "depends_on": depends_on}, "ansible:web")
    assert [f"{e.field}: {e.message}" for e in info.value.errors] == [expected]
    doc = load_mapping({"name": "web", "process": {"args": ["/bin/true"]}, "depends_on": {"ghost": "healthy"}}, "x")
    assert doc.spec.desired().dependency_conditions() == {"ghost": "healthy"}


# --- across documents ---------------------------------------------------------------------------------------

def test_conditions_that_can_never_hold_are_errors_at_the_condition(tmp_path: Path) -> None:
    f = write(tmp_path / "app.yaml", """\
        name: web
        process: {args: [a]}
        depends_on: {db: healthy, migrate: completed, cache: started, probed: healthy, job: completed}
        ---
        name: db
        process: {args: [a]}
        ---
        name: migrate
        process: {args: [a]}
        restart: always
        ---
        name: cache
        process: {args: [a]}
        restart: always
        ---
        name: probed
        process: {args: [a]}
        health: {tcp: {port: 5432}}
        ---
        name: job
        process: {args: [a]}
        restart: on-failure:3
        """)
    assert errors(f) == [
        f"{f}:3:18: depends_on.db: healthy needs `db` to declare health: (a probe), and its spec has none",
        f"{f}:3:36: depends_on.migrate: completed never holds for `migrate`: its restart: always starts it again "
        "whenever it exits"]


def test_the_list_form_asks_for_started_only(tmp_path: Path) -> None:
    f = write(tmp_path / "app.yaml", """\
        name: web
        process: {args: [a]}
        depends_on: [db, migrate]
        ---
        name: db
        process: {args: [a]}
        ---
        name: migrate
        process: {args: [a]}
        restart: always
        """)
    assert [d.spec.desired().dependency_conditions() for d in load_paths([str(f)])][0] == {
        "db": "started", "migrate": "started"}


def test_a_condition_on_a_network_dependency_is_checked_too(tmp_path: Path) -> None:
    f = write(tmp_path / "app.yaml", """\
        name: side
        process: {args: [a]}
        network: {mode: "container:web"}
        depends_on:
          web: healthy
        ---
        name: web
        process: {args: [a]}
        """)
    assert errors(f) == [f"{f}:5:8: depends_on.web: healthy needs `web` to declare health: (a probe), "
                         "and its spec has none"]


def test_completed_of_the_container_whose_network_it_joins_is_refused(tmp_path: Path) -> None:
    """``network: container:job`` needs job's init alive (its /proc/<pid>/ns/net) when app is
    created; ``completed`` waits for job to exit first: app could never be created."""
    f = write(tmp_path / "specs.yaml", """\
        name: job
        rootfs: host
        restart: never
        process: {args: [/bin/true]}
        ---
        name: app
        rootfs: host
        process: {args: [/bin/sleep, "100"]}
        network: {mode: "container:job"}
        depends_on: {job: completed}
        """)
    assert errors(f) == [f"{f}:10:19: depends_on.job: completed never holds for `job` before this container is "
                         "created: network.mode container:job joins `job`'s network namespace, which needs `job` "
                         "running"]


def test_other_conditions_on_the_joined_container_hold(tmp_path: Path) -> None:
    f = write(tmp_path / "specs.yaml", """\
        name: side
        process: {args: [a]}
        network: {mode: "container:web"}
        depends_on: {web: healthy, job: completed}
        ---
        name: web
        process: {args: [a]}
        health: {tcp: {port: 80}}
        ---
        name: job
        process: {args: [a]}
        """)
    side = load_paths([str(f)])[0]
    assert side.spec.desired().dependency_conditions() == {"job": "completed", "web": "healthy"}


@pytest.mark.parametrize("state, why", [
    ("stopped", "its state: stopped creates it without starting it"),
    ("paused", "its state: paused keeps it frozen (no probe runs, it never exits)"),
])
def test_healthy_or_completed_of_a_container_that_does_not_run_is_refused(tmp_path: Path, state: str,
                                                                          why: str) -> None:
    f = write(tmp_path / "app.yaml", f"""\
        name: web
        process: {{args: [a]}}
        depends_on: {{db: healthy, job: completed, cache: started}}
        ---
        name: db
        process: {{args: [a]}}
        health: {{exec: [a]}}
        state: {state}
        ---
        name: job
        process: {{args: [a]}}
        state: {state}
        ---
        name: cache
        process: {{args: [a]}}
        state: {state}
        """)
    assert errors(f) == [f"{f}:3:18: depends_on.db: healthy never holds for `db`: {why}",
                         f"{f}:3:32: depends_on.job: completed never holds for `job`: {why}"]


def test_a_stopped_dependency_without_a_probe_is_told_why_it_never_runs(tmp_path: Path) -> None:
    """Declaring a probe would not help a ``state: stopped`` container: that is the reason given."""
    f = write(tmp_path / "app.yaml", """\
        name: web
        process: {args: [a]}
        depends_on: {db: healthy}
        ---
        name: db
        process: {args: [a]}
        state: stopped
        """)
    assert errors(f) == [f"{f}:3:18: depends_on.db: healthy never holds for `db`: its state: stopped creates it "
                         "without starting it"]


def test_an_invalid_dependency_document_is_not_judged_by_its_conditions(tmp_path: Path) -> None:
    f = write(tmp_path / "app.yaml", """\
        name: web
        process: {args: [a]}
        depends_on: {db: healthy}
        ---
        name: db
        process: {args: 1}
        """)
    assert errors(f) == [f"{f}:6:17: process.args: expected a list, got the number 1"]


def test_unknown_names_in_the_mapping_form_are_reported_at_the_name(tmp_path: Path) -> None:
    f = write(tmp_path / "web.yaml", "name: web\nprocess: {args: [a]}\ndepends_on:\n  db: healthy\n  ghost: started\n")
    db = write(tmp_path / "db.yaml", "name: db\nprocess: {args: [a]}\nhealth: {exec: [a]}\n")
    assert errors(f, db) == [f"{f}:5:3: depends_on.ghost: unknown container `ghost` (no spec names it)"]
    with pytest.raises(SpecErrors) as info:
        load_paths([str(f), str(db)])
    assert info.value.errors[0].value == "ghost"  # what `dct watch` explains when a kept file is the cause


def test_cycles_through_the_mapping_form(tmp_path: Path) -> None:
    f = write(tmp_path / "app.yaml", """\
        name: a
        process: {args: [a]}
        health: {exec: [a]}
        depends_on: {b: started}
        ---
        name: b
        process: {args: [a]}
        health: {exec: [a]}
        depends_on: [c]
        ---
        name: c
        process: {args: [a]}
        depends_on:
          a: healthy
        """)
    assert errors(f) == [f"{f}:14:3: depends_on.a: dependency cycle: a → b → c → a"]


def test_a_valid_load_with_every_condition(tmp_path: Path) -> None:
    f = write(tmp_path / "app.yaml", """\
        name: web
        process: {args: [a]}
        depends_on: {db: healthy, migrate: completed, cache: started}
        ---
        name: db
        process: {args: [a]}
        health: {exec: [pg_isready], interval: 2s}
        restart: always
        ---
        name: migrate
        process: {args: [a]}
        ---
        name: cache
        process: {args: [a]}
        """)
    web = load_paths([str(f)])[0]
    assert web.spec.normalized()["depends_on"] == {"cache": "started", "db": "healthy", "migrate": "completed"}
    entry = {"source": web.source, "line": web.line, "spec": web.spec.model_dump(mode="json"),
             "normalized": web.spec.normalized()}
    cached = DesiredDocument.from_entry(json.loads(json.dumps(entry)))  # a background load's or the cache's road
    assert cached.spec.dependency_conditions() == web.spec.desired().dependency_conditions()
    assert cached.spec.depends_on == ["db", "migrate", "cache"]


def test_the_schema_takes_both_forms() -> None:
    prop = json.loads(schema_text())["properties"]["depends_on"]
    array, mapping = prop["anyOf"]
    assert array["type"] == "array" and array["items"]["pattern"]
    assert mapping["type"] == "object" and mapping["additionalProperties"]["enum"] == ["started", "healthy",
                                                                                       "completed"]
    assert "healthy" in prop["description"]
