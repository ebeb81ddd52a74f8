"""Loading spec files (declarative_ct.spec.load) and the `dct validate` / `dct schema` verbs.

Pure: temporary files only, no root, no containers.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from declarative_ct.cli.desired import schema_text
from declarative_ct.spec.load import SpecDocument, SpecError, SpecErrors, is_spec_file, load_paths
from declarative_ct.spec.model import ContainerSpec

REPO = Path(__file__).resolve().parents[2]

MINIMAL = "name: {name}\nprocess: {{args: [/bin/true]}}\n"


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


def load(*paths: Path | str) -> list[SpecDocument]:
    return load_paths([str(p) for p in paths])


def errors(*paths: Path | str) -> list[str]:
    """Every error of a load that must fail, as `file:line:col: field: message` lines."""
    with pytest.raises(SpecErrors) as info:
        load(*paths)
    assert str(info.value) == "\n".join(str(e) for e in info.value.errors)
    return [str(e) for e in info.value.errors]


def one_error(path: Path) -> str:
    found = errors(path)
    assert len(found) == 1, found
    return found[0]


# --- what loads --------------------------------------------------------------------------------------------

def test_multi_document_file(tmp_path: Path) -> None:
    f = write(tmp_path / "app.yaml", """\
        # the web server
        name: web
        process: {args: [/bin/sh, -c, "echo on"]}
        ---
        ---
        # an empty document above, a comment-only one below
        ---
        name: db
        process:
          args: [/bin/db]
          env: {MODE: "on", NUM: "5"}
        depends_on: [web]
        """)
    docs = load(f)
    assert [d.spec.name for d in docs] == ["web", "db"]
    assert [d.line for d in docs] == [2, 8]
    assert all(d.source == str(f) for d in docs)
    assert docs[1].spec.process.env == {"MODE": "on", "NUM": "5"}
    assert docs[1].spec.depends_on == {"web": "started"}
    assert docs[1].spec.desired().depends_on == ["web"]


def test_directory_reads_spec_files_sorted_and_ignores_the_rest(tmp_path: Path) -> None:
    d = tmp_path / "specs"
    write(d / "b.yml", MINIMAL.format(name="b"))
    write(d / "a.yaml", MINIMAL.format(name="a"))
    for ignored in (".hidden.yaml", "c.yaml~", "c.yaml.bak", "c.yaml.swp", "notes.txt", "c.json"):
        write(d / ignored, "this: [is not: valid")
    write(d / "sub" / "deeper.yaml", MINIMAL.format(name="deeper"))  # not recursive
    docs = load(d)
    assert [doc.spec.name for doc in docs] == ["a", "b"]
    assert [os.path.basename(doc.source) for doc in docs] == ["a.yaml", "b.yml"]


def test_is_spec_file() -> None:
    assert is_spec_file("web.yaml") and is_spec_file("web.yml")
    for name in (".web.yaml", "web.yaml~", "web.yaml.bak", ".web.yaml.swp", "web.json", "web.yaml.swp"):
        assert not is_spec_file(name), name


def test_a_file_given_twice_is_read_once(tmp_path: Path) -> None:
    f = write(tmp_path / "d" / "a.yaml", MINIMAL.format(name="a"))
    assert [d.spec.name for d in load(f, tmp_path / "d", f)] == ["a"]


def test_relative_paths_resolve_against_the_file(tmp_path: Path) -> None:
    (tmp_path / "conf" / "rootfs").mkdir(parents=True)
    (tmp_path / "conf" / "site").mkdir()
    (tmp_path / "data").mkdir()
    f = write(tmp_path / "conf" / "web.yaml", f"""\
        name: web
        rootfs: ./rootfs
        process: {{args: [/bin/httpd]}}
        mounts:
          - {{source: site, destination: /srv}}
          - {{source: ../data/, destination: /data}}
          - {{source: {tmp_path}/conf/./site, destination: /abs}}
        reload_on: [site/../site/config.ini, /etc/hosts]
        """)
    spec = load(f)[0].spec
    assert spec.rootfs == str(tmp_path / "conf" / "rootfs")
    assert [m.source for m in spec.mounts] == [str(tmp_path / "conf" / "site"), str(tmp_path / "data"),
                                               str(tmp_path / "conf" / "site")]
    assert spec.reload_on == [str(tmp_path / "conf" / "site" / "config.ini"), "/etc/hosts"]
    assert isinstance(spec, ContainerSpec)


def test_rootfs_host_is_kept_and_the_cwd_does_not_matter(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(tmp_path / "web.yaml", MINIMAL.format(name="web"))
    monkeypatch.chdir(tmp_path)
    doc = load("web.yaml")[0]
    assert doc.spec.rootfs == "host"
    assert doc.source == str(tmp_path / "web.yaml")


def test_yaml_12_scalars(tmp_path: Path) -> None:
    f = write(tmp_path / "web.yaml", """\
        name: web
        process: {args: [x, "on", 'yes', !!str no, "010", "1:30"]}
        mounts: [{source: /, destination: /host, readonly: true}]
        resources: {cpus: 1, cpu_shares: 0x400, pids: ~, memory: 64Mi, blkio_weight: +500}
        stop_timeout: 2.5
        hostname:
        """)
    spec = load(f)[0].spec
    assert spec.process.args == ["x", "on", "yes", "no", "010", "1:30"]
    assert spec.mounts[0].readonly is True
    assert (spec.resources.cpus, spec.resources.cpu_shares, spec.resources.pids) == (1.0, 1024, None)
    assert spec.resources.memory == 64 << 20 and spec.resources.blkio_weight == 500
    assert spec.stop_timeout == 2.5 and spec.hostname is None
    g = write(tmp_path / "cwd.yaml", "name: web\nprocess:\n  args: [a]\n  cwd:\n")
    assert one_error(g) == f"{g}:4:7: process.cwd: expected a string, got nothing (an empty value)"


def test_anchors_and_aliases(tmp_path: Path) -> None:
    f = write(tmp_path / "web.yaml", """\
        name: web
        process: {args: &args [/bin/sh, -c, "exec $0 $@"], env: &env {LANG: C.UTF-8, TZ: UTC}}
        labels: *env
        reload_on: *args
        """)
    spec = load(f)[0].spec
    assert spec.process.env == spec.labels == {"LANG": "C.UTF-8", "TZ": "UTC"}
    assert spec.reload_on == ["/bin/sh", str(tmp_path / "-c"), str(tmp_path / "exec $0 $@")]
    other = write(tmp_path / "other.yaml", "name: db\nprocess: {args: [a], env: *env}\n")  # anchors: one document
    assert one_error(other).startswith(f"{other}:2:27: -: YAML syntax: found undefined alias")


# --- errors, each with its position and field -------------------------------------------------------------

def test_error_format() -> None:
    err = SpecError("a.yaml", 3, 7, "resources.memory", "bad")
    assert str(err) == "a.yaml:3:7: resources.memory: bad"
    assert str(SpecErrors([err, SpecError("b.yaml", 0, 0, "-", "worse")])) == \
        "a.yaml:3:7: resources.memory: bad\nb.yaml:0:0: -: worse"


def test_yaml_syntax_error(tmp_path: Path) -> None:
    f = write(tmp_path / "bad.yaml", """\
        name: web
        process:
          args: [/bin/sh
        hostname: x
        """)
    assert re.fullmatch(rf"{f}:4:9: -: YAML syntax: .+", one_error(f))


def test_syntax_error_in_a_later_document_keeps_the_earlier_ones_checked(tmp_path: Path) -> None:
    f = write(tmp_path / "two.yaml", """\
        name: a
        process: {args: [x]}
        bogus: 1
        ---
        name: b
          process: x
        """)
    found = errors(f)
    assert found[0] == f"{f}:3:1: bogus: unknown field"
    assert found[1].startswith(f"{f}:6:10: -: YAML syntax: mapping values are not allowed")
    assert len(found) == 2


def test_keys_must_be_strings(tmp_path: Path) -> None:
    f = write(tmp_path / "web.yaml", """\
        name: web
        process: {args: [a]}
        ~: 1
        true: x
        ? [a]
        : b
        """)
    assert errors(f) == [
        f'{f}:3:1: ["~"]: a key must be a string, got null (~)',
        f'{f}:4:1: true: a key must be a string, got the boolean true: quote it ("true")',
        f"{f}:5:3: -: a key must be a plain value, not a list or mapping",
    ]


def test_duplicate_key(tmp_path: Path) -> None:
    f = write(tmp_path / "web.yaml", """\
        name: web
        process:
          args: [a]
          cwd: /tmp
          args: [b]
        """)
    assert one_error(f) == f"{f}:5:3: process.args: duplicate key `args` (first at line 3:3)"


@pytest.mark.parametrize("body, what", [("- name: web\n", "a list"), ("just text\n", 'the string "just text"'),
                                        ("42\n", "the number 42")])
def test_document_not_a_mapping(tmp_path: Path, body: str, what: str) -> None:
    f = write(tmp_path / "web.yaml", "---\n" + body)
    assert one_error(f) == f"{f}:2:1: -: a container spec must be a mapping (key: value), not {what}"


def test_unknown_fields_with_suggestions(tmp_path: Path) -> None:
    f = write(tmp_path / "web.yaml", """\
        name: web
        process:
          args: [a]
          environment: {A: b}
        hostnme: web
        resources: {memroy: 1g}
        mounts: [{source: /, destination: /x, ro: true}]
        zzz: 1
        """)
    assert errors(f) == [
        f"{f}:4:3: process.environment: unknown field",
        f"{f}:5:1: hostnme: unknown field (did you mean `hostname`?)",
        f"{f}:6:13: resources.memroy: unknown field (did you mean `memory`?)",
        f"{f}:7:39: mounts[0].ro: unknown field",
        f"{f}:8:1: zzz: unknown field",
    ]


def test_type_errors_and_the_hint_to_quote(tmp_path: Path) -> None:
    f = write(tmp_path / "web.yaml", """\
        name: 8080
        process:
          args: [/bin/sh, 1.5, true]
          env: {PORT: 8080, NONE: ~}
        labels: {version: 1.0, 1: one}
        state: up
        resources: {pids: lots, cpu_shares: "512"}
        network: host
        """)
    assert errors(f) == [
        f'{f}:1:7: name: expected a string, got the number 8080: quote it ("8080") if it is meant as text',
        f'{f}:3:19: process.args[1]: expected a string, got the number 1.5: quote it ("1.5") if it is meant as text',
        f'{f}:3:24: process.args[2]: expected a string, got the boolean true: quote it ("true") if it is meant as text',
        f'{f}:4:15: process.env.PORT: expected a string, got the number 8080: quote it ("8080") if it is meant as text',
        f"{f}:4:27: process.env.NONE: expected a string, got null (~)",
        f'{f}:5:19: labels.version: expected a string, got the number 1.0: quote it ("1.0") if it is meant as text',
        f'{f}:5:24: labels.1: a key must be a string, got the number 1: quote it ("1")',
        f"{f}:6:8: state: expected 'running', 'paused', 'stopped' or 'absent', got the string \"up\"",
        f"{f}:7:19: resources.pids: expected an integer or 'unlimited', got the string \"lots\"",
        f'{f}:7:37: resources.cpu_shares: expected an integer, got the string "512"',
        f"{f}:8:10: network: expected a mapping (key: value), got the string \"host\"",
    ]


def test_missing_fields_and_value_errors(tmp_path: Path) -> None:
    f = write(tmp_path / "web.yaml", """\
        process:
          cwd: tmp
          user: root
        mounts:
          - {source: /}
        namespaces: [pid, uts]
        resources: {memory: lots, cpus: 0}
        restart: sometimes
        reload_signal: SIGNOPE
        """)
    assert errors(f) == [
        f"{f}:1:1: name: required field is missing",
        f"{f}:2:3: process.args: required field is missing",
        f"{f}:2:8: process.cwd: 'tmp' must be an absolute path inside the container",
        f'{f}:3:9: process.user: must be "uid" or "uid:gid" (numbers)',
        f"{f}:5:5: mounts[0].destination: required field is missing",
        f"{f}:6:13: namespaces: must include mount (every container gets its own mount namespace)",
        f"{f}:7:21: resources.memory: 'lots' is not a size (give bytes, 64Mi, 1Gi, 64m or \"unlimited\")",
        f"{f}:7:33: resources.cpus: must be greater than 0",
        f"{f}:8:10: restart: must be never, always, on-failure or on-failure:N",
        f"{f}:9:16: reload_signal: 'SIGNOPE' is not a signal (e.g. SIGHUP, SIGUSR1)",
    ]


def test_model_validator_errors_point_at_their_field(tmp_path: Path) -> None:
    f = write(tmp_path / "web.yaml", """\
        name: web
        process: {args: [a]}
        depends_on: [web]
        """)
    assert one_error(f) == f"{f}:3:13: depends_on: a container cannot depend on itself"
    g = write(tmp_path / "cpu.yaml", "name: cpu\nprocess: {args: [a]}\nresources:\n  cpus: 1\n  cpu_quota: 5000\n")
    assert one_error(g) == f"{g}:4:3: resources: give either cpus or cpu_quota, not both"


def test_infinite_numbers_are_refused(tmp_path: Path) -> None:
    f = write(tmp_path / "web.yaml", "name: web\nprocess: {args: [a]}\nresources: {cpus: .inf}\nstop_timeout: .nan\n")
    assert errors(f) == [
        f"{f}:3:19: resources.cpus: expected a finite number, got the number .inf",
        f"{f}:4:15: stop_timeout: expected a finite number, got the number .nan",
    ]


@pytest.mark.parametrize("text, how, fix", [
    ("on", "YAML 1.1 reads it as a boolean", "write true/false"),
    ("yes", "YAML 1.1 reads it as a boolean", "write true/false"),
    ("No", "YAML 1.1 reads it as a boolean", "write true/false"),
    ("y", "YAML 1.1 reads it as a boolean", "write true/false"),
    ("OFF", "YAML 1.1 reads it as a boolean", "write true/false"),
    ("0o10", "YAML 1.2 reads it as the number 8, YAML 1.1 as a string", "write the number in plain decimal"),
    ("010", "YAML 1.1 reads it as the number 8, YAML 1.2 as 10", "write the number in plain decimal"),
    ("1:30", "YAML 1.1 reads it as the number 90", "write the number in plain decimal"),
    ("1_000", "YAML 1.1 reads it as the number 1000", "write the number in plain decimal"),
    ("0b101", "YAML 1.1 reads it as the number 5", "write the number in plain decimal"),
])
def test_ambiguous_scalars_are_refused_with_a_hint(tmp_path: Path, text: str, how: str, fix: str) -> None:
    f = write(tmp_path / "web.yaml", f"name: web\nprocess:\n  args: [/bin/echo, {text}]\n")
    assert one_error(f) == \
        f'{f}:3:21: process.args[1]: `{text}` is ambiguous in YAML ({how}): quote it ("{text}") or {fix}'
    write(f, f'name: web\nprocess:\n  args: [/bin/echo, "{text}"]\n')
    assert load(f)[0].spec.process.args == ["/bin/echo", text]


def test_ambiguous_scalars_anywhere(tmp_path: Path) -> None:
    f = write(tmp_path / "web.yaml", """\
        name: web
        process: {args: [a]}
        mounts: [{source: /, destination: /x, readonly: yes}]
        resources: {pids: 0100}
        labels: {on: x, built: 2001-12-14}
        """)
    assert errors(f) == [
        f"{f}:3:49: mounts[0].readonly: `yes` is ambiguous in YAML (YAML 1.1 reads it as a boolean): "
        'quote it ("yes") or write true/false',
        f"{f}:4:19: resources.pids: `0100` is ambiguous in YAML (YAML 1.1 reads it as the number 64, YAML 1.2 as "
        '100): quote it ("0100") or write the number in plain decimal',
        f"{f}:5:10: labels.on: `on` is ambiguous in YAML (YAML 1.1 reads it as a boolean): "
        'quote it ("on") or write true/false',
        f"{f}:5:24: labels.built: `2001-12-14` is ambiguous in YAML (YAML 1.1 reads it as a date): "
        'quote it ("2001-12-14")',
    ]


def test_tags_and_merge_keys_are_refused(tmp_path: Path) -> None:
    f = write(tmp_path / "web.yaml", """\
        base: &base {name: web}
        <<: *base
        process: {args: [!!binary aGk=]}
        """)
    assert errors(f) == [
        f"{f}:1:1: name: required field is missing",
        f"{f}:1:1: base: unknown field",
        f"{f}:2:1: -: merge keys (<<) are not supported: write the keys out",
        f"{f}:3:18: process.args[0]: the tag !!binary is not supported (quote the value or write it without a tag)",
    ]


def test_recursive_alias(tmp_path: Path) -> None:
    f = write(tmp_path / "web.yaml", "name: web\nprocess: &p {args: [a], env: *p}\n")
    assert errors(f)[0] == f"{f}:2:10: process.env: an alias refers to a value that contains it"


def test_a_symlinked_rootfs_is_refused_as_the_runtime_would(tmp_path: Path) -> None:
    """Regression: validate accepted it, and apply then failed in the runtime (after the checks)."""
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real")
    f = write(tmp_path / "web.yaml", "name: web\nrootfs: ./link\nprocess: {args: [a]}\n")
    assert errors(f) == [f"{f}:2:9: rootfs: {tmp_path}/link is a symlink; give the real directory ({tmp_path}/real)"]


def test_missing_rootfs_and_mount_source(tmp_path: Path) -> None:
    write(tmp_path / "afile", "")
    f = write(tmp_path / "web.yaml", """\
        name: web
        rootfs: ./nope
        process: {args: [a]}
        mounts:
          - {source: ./afile, destination: /f}
          - {source: missing/dir, destination: /d}
        ---
        name: db
        rootfs: afile
        process: {args: [a]}
        """)
    assert errors(f) == [
        f"{f}:2:9: rootfs: directory does not exist: {tmp_path}/nope",
        f"{f}:6:14: mounts[1].source: does not exist: {tmp_path}/missing/dir",
        f"{f}:9:9: rootfs: not a directory: {tmp_path}/afile",
    ]


def test_every_error_of_every_file_at_once(tmp_path: Path) -> None:
    a = write(tmp_path / "d" / "a.yaml", "name: a\nprocess: {args: [x]}\nstate: on\n")
    write(tmp_path / "d" / "b.yaml", MINIMAL.format(name="b"))
    c = write(tmp_path / "d" / "c.yaml", "name: c\nprocess: {args: []}\nextra: 1\n")
    found = errors(tmp_path / "d")
    assert found == [
        f'{a}:3:8: state: `on` is ambiguous in YAML (YAML 1.1 reads it as a boolean): quote it ("on") or write '
        "true/false",
        f"{c}:2:17: process.args: must not be empty",
        f"{c}:3:1: extra: unknown field",
    ]


def test_duplicate_names_across_files_report_both_places(tmp_path: Path) -> None:
    a = write(tmp_path / "a.yaml", MINIMAL.format(name="web"))
    b = write(tmp_path / "b.yaml", "# again\n" + MINIMAL.format(name="web"))
    assert errors(a, b) == [
        f"{a}:1:7: name: duplicate name `web` (also at {b}:2:7)",
        f"{b}:2:7: name: duplicate name `web` (also at {a}:1:7)",
    ]


def test_unknown_dependency(tmp_path: Path) -> None:
    f = write(tmp_path / "web.yaml", "name: web\nprocess: {args: [a]}\ndepends_on: [db, cache]\n")
    write(tmp_path / "db.yaml", MINIMAL.format(name="db"))
    assert errors(f, tmp_path / "db.yaml") == [f"{f}:3:18: depends_on[1]: unknown container `cache` (no spec names it)"]
    assert [d.spec.name for d in load(tmp_path / "db.yaml")] == ["db"]


def test_dependency_cycle(tmp_path: Path) -> None:
    f = write(tmp_path / "ring.yaml", """\
        name: a
        process: {args: [x]}
        depends_on: [b]
        ---
        name: b
        process: {args: [x]}
        depends_on: [c]
        ---
        name: c
        process: {args: [x]}
        depends_on: [d, a]
        ---
        name: d
        process: {args: [x]}
        """)
    assert one_error(f) == f"{f}:11:17: depends_on[1]: dependency cycle: a → b → c → a"


def test_an_empty_directory_and_files_without_documents(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    write(tmp_path / "ignored" / ".x.yaml", MINIMAL.format(name="x"))
    write(tmp_path / "blank" / "a.yaml", "# nothing here\n---\n")
    empty = write(tmp_path / "empty.yaml", "")
    assert errors(tmp_path / "empty", tmp_path / "ignored", tmp_path / "blank", empty) == [
        f"{tmp_path}/empty:0:0: -: no container specs found in {tmp_path}/empty (no *.yaml or *.yml files)",
        f"{tmp_path}/ignored:0:0: -: no container specs found in {tmp_path}/ignored (no *.yaml or *.yml files)",
        f"{tmp_path}/blank:0:0: -: no container specs found in {tmp_path}/blank (its files hold no YAML documents)",
        f"{empty}:0:0: -: no container specs found in {empty} (it holds no YAML documents)",
    ]


def test_an_empty_file_beside_others_is_fine(tmp_path: Path) -> None:
    write(tmp_path / "a.yaml", MINIMAL.format(name="a"))
    write(tmp_path / "b.yaml", "")
    assert [d.spec.name for d in load(tmp_path)] == ["a"]


def test_missing_path_and_no_paths(tmp_path: Path) -> None:
    assert errors(tmp_path / "nope.yaml") == [f"{tmp_path}/nope.yaml:0:0: -: no such file or directory"]
    with pytest.raises(SpecErrors, match="no spec paths given"):
        load_paths([])


def test_unreadable_files(tmp_path: Path) -> None:
    (tmp_path / "d" / "x.yaml").mkdir(parents=True)
    (tmp_path / "d" / "y.yaml").write_bytes(b"name: web\nprocess: {args: [caf\xe9]}\n")
    write(tmp_path / "d" / "z.yaml", MINIMAL.format(name="z"))
    assert errors(tmp_path / "d") == [
        f"{tmp_path}/d/x.yaml:0:0: -: cannot read: a directory",
        f"{tmp_path}/d/y.yaml:2:21: -: cannot read: not UTF-8 text (byte 0xe9)",
    ]


def test_control_characters(tmp_path: Path) -> None:
    f = write(tmp_path / "web.yaml", "name: web\nprocess: {args: [a\x07]}\n")
    assert one_error(f).startswith(f"{f}:2:19: -: YAML syntax: U+0007 is not allowed in YAML")


def test_nothing_is_returned_partially(tmp_path: Path) -> None:
    write(tmp_path / "a.yaml", MINIMAL.format(name="a"))
    write(tmp_path / "b.yaml", "name: b\n")
    with pytest.raises(SpecErrors) as info:
        load(tmp_path)
    assert [str(e) for e in info.value.errors] == [f"{tmp_path}/b.yaml:1:1: process: required field is missing"]


# --- the schema -------------------------------------------------------------------------------------------

def test_committed_schema_is_current() -> None:
    """specs/schema.json must be regenerated (`dct schema > specs/schema.json`) when the models change."""
    assert (REPO / "specs" / "schema.json").read_text() == schema_text()


def test_schema_accepts_sizes_as_strings() -> None:
    schema = json.loads(schema_text())
    assert schema["$schema"].startswith("https://json-schema.org/")
    assert schema["title"] and schema["description"]
    memory = schema["$defs"]["ResourcesSpec"]["properties"]["memory"]
    assert "anyOf" not in memory and memory["type"] == ["integer", "string", "null"]
    assert schema["additionalProperties"] is False


# --- the CLI ----------------------------------------------------------------------------------------------

def dct(*args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    return subprocess.run([sys.executable, "-m", "declarative_ct.cli.main", *args], capture_output=True, text=True,
                          env=env, timeout=60)


def test_cli_validate(tmp_path: Path) -> None:
    write(tmp_path / "good" / "a.yaml", MINIMAL.format(name="a") + "---\n" + MINIMAL.format(name="b"))
    write(tmp_path / "good" / "c.yml", MINIMAL.format(name="c"))
    ok = dct("validate", str(tmp_path / "good"))
    assert (ok.returncode, ok.stdout, ok.stderr) == (0, "3 containers in 2 files: valid\n", "")
    one = dct("validate", str(tmp_path / "good" / "c.yml"))
    assert (one.returncode, one.stdout) == (0, "1 container in 1 file: valid\n")

    bad = write(tmp_path / "bad.yaml", "name: web\nprocess: {args: [a], user: root}\nfoo: on\n")
    out = dct("validate", str(tmp_path / "good"), str(bad), str(tmp_path / "missing"))
    assert out.returncode == 1 and out.stdout == ""
    assert out.stderr.splitlines() == [
        f'{bad}:2:28: process.user: must be "uid" or "uid:gid" (numbers)',
        f"{bad}:3:1: foo: unknown field",
        f'{bad}:3:6: foo: `on` is ambiguous in YAML (YAML 1.1 reads it as a boolean): quote it ("on") or write '
        "true/false",
        f"{tmp_path}/missing:0:0: -: no such file or directory",
    ]
    assert "Traceback" not in out.stderr


def test_cli_validate_usage_and_unreadable(tmp_path: Path) -> None:
    usage = dct("validate")
    assert usage.returncode == 1 and "Traceback" not in usage.stderr
    (tmp_path / "x.yaml").write_bytes(b"\xff\xfe")
    out = dct("validate", str(tmp_path))
    assert out.returncode == 1 and "Traceback" not in out.stderr
    assert re.fullmatch(r".+/x\.yaml:\d+:\d+: -: cannot read: not UTF-8 text .*\n", out.stderr)


def test_cli_schema() -> None:
    out = dct("schema")
    assert out.returncode == 0 and out.stdout == schema_text()
    assert json.loads(out.stdout)["properties"]["name"]["pattern"]


def test_network_errors_point_at_their_field(tmp_path: Path) -> None:
    f = write(tmp_path / "web.yaml", """\
        name: web
        process: {args: [a]}
        network:
          mode: bridge
          subnet: 10.88.0.0/16
          address: 10.1.2.3
        """)
    assert one_error(f) == f"{f}:6:12: network.address: 10.1.2.3 is not a host address of the subnet 10.88.0.0/16"
    g = write(tmp_path / "side.yaml", "name: side\nprocess: {args: [a]}\nnetwork: {mode: 'container:ghost'}\n")
    assert one_error(g) == f"{g}:3:17: network.mode: unknown container `ghost` (no spec names it)"
    h = write(tmp_path / "loop" / "a.yaml", "name: a\nprocess: {args: [a]}\nnetwork: {mode: 'container:b'}\n"
                                             "---\nname: b\nprocess: {args: [a]}\ndepends_on: [a]\n")
    assert any("dependency cycle" in e for e in errors(h))


def test_a_document_inflated_through_aliases_is_refused(tmp_path: Path) -> None:
    """A 1 MiB string repeated by alias 40 times: a 1 MiB file that would serialize to 41 MiB."""
    big = "x" * (1 << 20)
    f = tmp_path / "lol.yaml"
    f.write_text(f"name: lol\nprocess: {{args: [a]}}\nlabels: {{a: &s {big}, "
                 + ", ".join(f"k{i}: *s" for i in range(40)) + "}\n")
    assert one_error(f) == f"{f}:1:1: -: the document expands to 41 MiB through its aliases (at most 16 MiB)"
    # Aliases within the bound are fine.
    g = write(tmp_path / "ok.yaml", "name: ok\nprocess: {args: [/bin/true]}\nlabels: {x: &v yes-no, z: *v}\n")
    assert load(g)[0].spec.labels == {"x": "yes-no", "z": "yes-no"}


def test_network_clashes_between_specs_are_named_at_both(tmp_path: Path) -> None:
    a = write(tmp_path / "d" / "a.yaml", "name: a\nprocess: {args: [x]}\nnetwork:\n  mode: bridge\n"
                                          "  address: 10.88.0.7\n  ports: ['9000:80']\n")
    b = write(tmp_path / "d" / "b.yaml", "name: b\nprocess: {args: [x]}\nnetwork:\n  mode: bridge\n"
                                          "  address: 10.88.0.7/16\n  ports: ['127.0.0.1:9000:81/tcp']\n")
    assert errors(tmp_path / "d") == [
        f"{a}:5:12: network.address: address 10.88.0.7 on bridge dct0 is also claimed by `b`",
        f"{a}:6:11: network.ports[0]: host port 9000/tcp is also claimed by `b`",
        f"{b}:5:12: network.address: address 10.88.0.7 on bridge dct0 is also claimed by `a`",
        f"{b}:6:11: network.ports[0]: host port 9000/tcp is also claimed by `a`"]
    c = write(tmp_path / "r.yaml", "name: r\nprocess: {args: [x]}\nnetwork:\n  mode: bridge\n  routes:\n"
                                    "    - {destination: 10.1.0.0/16, gateway: nope}\n")
    assert one_error(c) == f"{c}:6:43: network.routes[0].gateway: 'nope' is not an IP address"
