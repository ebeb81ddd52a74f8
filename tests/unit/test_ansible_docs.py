"""The Ansible collection's documentation against its code, offline (``scripts/ansible-sanity`` runs ansible-test).

Pure: imports the modules through a symlinked ``ansible_collections`` tree, no target, no container.

- the generated spec options (fallback argument spec, documentation fragment) are in sync with
  ``ContainerSpec``, and the argument spec derived at run time equals the fallback;
- every module's DOCUMENTATION, EXAMPLES and RETURN are YAML whose descriptions are text, its
  documented options (fragments included) match its argument spec in name, type, elements,
  choices, required and default (what validate-modules checks), and the examples use only
  documented options.
"""

from __future__ import annotations

import ast
import importlib
import sys
from pathlib import Path

import pytest
import yaml

from ansible_collection import COLLECTION, link_tree

MODULES = ("container", "apply", "info")
PACKAGE = "ansible_collections.declarative_ct.dct.plugins"


@pytest.fixture(scope="module")
def collection(tmp_path_factory: pytest.TempPathFactory):
    """``ansible_collections.declarative_ct.dct`` importable for this module's tests."""
    base = str(link_tree(tmp_path_factory.mktemp("collections")))
    sys.path.insert(0, base)
    yield
    sys.path.remove(base)
    for name in [n for n in sys.modules if n == "ansible_collections" or n.startswith("ansible_collections.")]:
        del sys.modules[name]


def docs_of(path: Path) -> dict[str, object]:
    """DOCUMENTATION, EXAMPLES and RETURN of a module or fragment file, parsed (as ansible-doc reads them: literals)."""
    out = {}
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name) \
                and node.targets[0].id in ("DOCUMENTATION", "EXAMPLES", "RETURN"):
            out[node.targets[0].id] = yaml.safe_load(node.value.value)
    return out


def fragment(name: str) -> dict:
    return docs_of(COLLECTION / "plugins" / "doc_fragments" / f"{name}.py")["DOCUMENTATION"]


def documented_options(name: str) -> dict:
    doc = docs_of(COLLECTION / "plugins" / "modules" / f"{name}.py")["DOCUMENTATION"]
    options = {}
    for ref in doc.get("extends_documentation_fragment", []):
        options.update(fragment(ref.removeprefix("declarative_ct.dct."))["options"])
    options.update(doc.get("options") or {})
    return options


class _Captured(Exception):
    pass


def argument_spec(name: str, monkeypatch: pytest.MonkeyPatch) -> dict:
    """The argument spec the module gives AnsibleModule (its main() stops there)."""
    module = importlib.import_module(f"{PACKAGE}.modules.{name}")
    captured = {}

    def fake(**kwargs):
        captured.update(kwargs)
        raise _Captured

    monkeypatch.setattr(module, "AnsibleModule", fake)
    with pytest.raises(_Captured):
        module.main()
    assert captured["supports_check_mode"] is True
    return captured["argument_spec"]


def descriptions(tree: object, where: str = "") -> list[tuple[str, object]]:
    """Every (place, description item) in a docs tree."""
    out = []
    if isinstance(tree, dict):
        for key, value in tree.items():
            if key == "description":
                out += [(where, item) for item in (value if isinstance(value, list) else [value])]
            else:
                out += descriptions(value, f"{where}.{key}")
    elif isinstance(tree, list):
        for i, value in enumerate(tree):
            out += descriptions(value, f"{where}[{i}]")
    return out


def test_generated_spec_options_are_in_sync() -> None:
    sys.path.insert(0, str(COLLECTION / "tools"))
    try:
        gen = importlib.import_module("gen_spec_docs")
    finally:
        sys.path.remove(str(COLLECTION / "tools"))
    assert gen.main(["--check"]) == 0, "run ansible_module/tools/gen_spec_docs.py"


def test_runtime_spec_options_equal_the_generated_fallback(collection, monkeypatch: pytest.MonkeyPatch) -> None:
    dct = importlib.import_module(f"{PACKAGE}.module_utils.dct")
    fallback = importlib.import_module(f"{PACKAGE}.module_utils.spec_options").SPEC_OPTIONS
    assert dct.HAS_DCT
    assert dct.spec_options() == fallback
    monkeypatch.setattr(dct, "HAS_DCT", False)
    assert dct.spec_options() == fallback


@pytest.mark.parametrize("name", MODULES)
def test_docs_match_argument_spec(collection, monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    spec = argument_spec(name, monkeypatch)
    docs = documented_options(name)
    assert sorted(docs) == sorted(spec)
    for option, arg in spec.items():
        doc = docs[option]
        for key, default in (("type", "str"), ("elements", None), ("choices", None), ("required", False),
                             ("default", None)):
            assert doc.get(key, default) == arg.get(key, default), f"{name}: {option}.{key}"


@pytest.mark.parametrize("name", MODULES)
def test_docs_are_complete(collection, monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    parts = docs_of(COLLECTION / "plugins" / "modules" / f"{name}.py")
    assert set(parts) == {"DOCUMENTATION", "EXAMPLES", "RETURN"}
    doc = parts["DOCUMENTATION"]
    assert doc["module"] == name and doc["short_description"] and doc["description"]
    for part in ("DOCUMENTATION", "RETURN"):
        bad = [(where, item) for where, item in descriptions(parts[part]) if not isinstance(item, str) or not item]
        assert not bad, f"{name} {part}: descriptions that are not text (a ': ' unquoted?): {bad}"
    for ref in doc.get("extends_documentation_fragment", []):
        bad = [(where, item) for where, item in descriptions(fragment(ref.removeprefix("declarative_ct.dct.")))
               if not isinstance(item, str) or not item]
        assert not bad, f"{ref}: {bad}"
    spec = argument_spec(name, monkeypatch)
    tasks = parts["EXAMPLES"]
    assert tasks
    for task in tasks:
        for key, args in task.items():
            if key.startswith("declarative_ct.dct."):
                unknown = set(args or {}) - set(spec) if key == f"declarative_ct.dct.{name}" else set()
                assert not unknown, f"{name} EXAMPLES use undocumented options {unknown}"


def test_every_spec_field_is_documented_with_its_suboptions(collection) -> None:
    from declarative_ct.spec.model import ContainerSpec

    options = fragment("spec")["options"]
    schema = ContainerSpec.model_json_schema()
    assert set(options) == set(schema["properties"]) - {"state"}
    for name, model in (("process", "ProcessSpec"), ("resources", "ResourcesSpec"), ("mounts", "MountSpec"),
                        ("network", "NetworkSpec"), ("logging", "LoggingSpec")):
        assert set(options[name]["suboptions"]) == set(schema["$defs"][model]["properties"])


def test_top_level_defaults_are_the_spec_defaults(collection) -> None:
    """What ansible-doc shows as an option's default is the spec's (rootfs: host…), except the fields whose
    absence means "as the container was made" for state: absent."""
    from declarative_ct.spec.model import ContainerSpec

    schema_utils = importlib.import_module(f"{PACKAGE}.module_utils.schema")
    options = fragment("spec")["options"]
    assert options["rootfs"]["default"] == "host" and options["restart"]["default"] == "never"
    for name, field in ContainerSpec.model_fields.items():
        if name in schema_utils.EXCLUDED or name in schema_utils.UNSET_BY_DEFAULT:
            assert "default" not in options.get(name, {}), name
        elif isinstance(field.default, (str, int, float, bool)):
            assert options[name]["default"] == field.default, name


def test_return_samples_are_ascii() -> None:
    """ansible-doc prints samples as JSON, where a non-ASCII character shows as an escape (\\u2192)."""
    for name in MODULES:
        text = yaml.safe_dump(docs_of(COLLECTION / "plugins" / "modules" / f"{name}.py")["RETURN"])
        samples = []

        def walk(tree: object) -> None:
            if isinstance(tree, dict):
                for key, value in tree.items():
                    if key == "sample":
                        samples.append(value)
                    else:
                        walk(value)

        walk(yaml.safe_load(text))
        bad = [s for s in samples if not str(s).isascii()]
        assert not bad, f"{name}: {bad}"


def test_action_group_holds_every_module() -> None:
    """module_defaults: {group/declarative_ct.dct.all: {root: …}} reaches the three modules."""
    runtime = yaml.safe_load((COLLECTION / "meta" / "runtime.yml").read_text())
    assert sorted(runtime["action_groups"]["all"]) == sorted(MODULES)
    readme = (COLLECTION / "README.md").read_text()
    assert "group/declarative_ct.dct.all" in readme
    assert "](../" not in readme  # a relative link outside the collection breaks once it is installed
