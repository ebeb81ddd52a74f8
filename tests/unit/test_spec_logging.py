"""The spec's ``logging:`` field (rotation of the container's log): values, errors with their position,
the schema, and what the reconciler reads of it (``DesiredSpec.log``, a ``configs.logs.LogConfig``).

Pure: temporary files only, no root, no containers.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
from pydantic import ValidationError

from declarative_ct.cli.desired import schema_text
from declarative_ct.configs.logs import (DEFAULT_MAX_FILES, DEFAULT_MAX_SIZE, MAX_MAX_FILES, MAX_MAX_SIZE, MIN_MAX_SIZE,
                                         LogConfig)
from declarative_ct.errors import ConfigInvalid
from declarative_ct.spec.load import SpecErrors, load_paths
from declarative_ct.spec.model import ContainerSpec

MI = 1 << 20


def spec(**fields: object) -> ContainerSpec:
    return ContainerSpec.model_validate({"name": "web", "process": {"args": ["/bin/true"]}, **fields})


def errors(tmp_path: Path, logging_yaml: str) -> list[str]:
    """The errors of a spec file whose last line is ``logging_yaml`` (line 3), as ``file:line:col: field: message``."""
    f = tmp_path / "web.yaml"
    f.write_text("name: web\nprocess: {args: [/bin/true]}\n" + textwrap.dedent(logging_yaml))
    with pytest.raises(SpecErrors) as info:
        load_paths([str(f)])
    return [str(e).removeprefix(f"{f}:") for e in info.value.errors]


# --- good values -------------------------------------------------------------------------------------------

def test_absent_means_the_runtime_defaults() -> None:
    s = spec()
    assert s.normalized()["logging"] == {"max_size": DEFAULT_MAX_SIZE, "max_files": DEFAULT_MAX_FILES}
    assert s.desired().log == LogConfig()
    assert spec(logging={}).normalized() == s.normalized()


@pytest.mark.parametrize("written, size", [
    ("10Mi", 10 * MI), ("10m", 10 * MI), ("10MiB", 10 * MI), ("10M", 10 * MI), ("10 Mi", 10 * MI),
    (10485760, 10 * MI), ("10485760", 10 * MI), ("1.5Mi", 3 * MI // 2), ("1g", 1 << 30), ("4Ki", 4096),
    (MIN_MAX_SIZE, MIN_MAX_SIZE), (MAX_MAX_SIZE, MAX_MAX_SIZE),
])
def test_sizes_are_read_as_memory_reads_them(written: object, size: int) -> None:
    """One size syntax in the whole spec: every suffix binary (``10m`` is ``10Mi``, as docker's ``-m 10m``)."""
    s = spec(logging={"max_size": written})
    assert s.normalized()["logging"] == {"max_size": size, "max_files": DEFAULT_MAX_FILES}
    assert s.desired().log == LogConfig(max_size=size)
    s.desired().log.validate()  # what the spec takes, the runtime takes


@pytest.mark.parametrize("files", [1, 3, MAX_MAX_FILES])
def test_max_files(files: int) -> None:
    s = spec(logging={"max_files": files})
    assert s.desired().log == LogConfig(DEFAULT_MAX_SIZE, files)


def test_the_same_limits_spelled_differently_normalize_equal() -> None:
    spellings = [{}, {"max_size": "10Mi"}, {"max_size": "10m", "max_files": 3}, {"max_size": 10485760},
                 {"max_size": "10240Ki", "max_files": DEFAULT_MAX_FILES}]
    assert len({json.dumps(spec(logging=s).normalized(), sort_keys=True) for s in spellings}) == 1


def test_a_file_loads_with_its_logging(tmp_path: Path) -> None:
    f = tmp_path / "web.yaml"
    f.write_text("name: web\nprocess: {args: [/bin/true]}\nlogging: {max_size: 20Mi, max_files: 5}\n")
    [doc] = load_paths([str(f)])
    assert doc.spec.desired().log == LogConfig(20 * MI, 5)


def test_the_spec_bounds_are_the_runtimes() -> None:
    """The bounds the spec checks are LogConfig's: one past them, LogConfig refuses too."""
    LogConfig(MIN_MAX_SIZE, 1).validate()
    LogConfig(MAX_MAX_SIZE, MAX_MAX_FILES).validate()
    for bad in (LogConfig(MIN_MAX_SIZE - 1), LogConfig(MAX_MAX_SIZE + 1), LogConfig(max_files=0),
                LogConfig(max_files=MAX_MAX_FILES + 1)):
        with pytest.raises(ConfigInvalid):
            bad.validate()
        with pytest.raises(ValidationError):
            spec(logging=bad.to_dict())


# --- every bad value, with its message and position -----------------------------------------------------------

@pytest.mark.parametrize("text, error", [
    ("logging: {max_size: unlimited}",
     "3:21: logging.max_size: must be a size: a log file is rotated at a limit (e.g. 10Mi)"),
    ("logging: {max_size: -1}", "3:21: logging.max_size: must be a size: a log file is rotated at a limit (e.g. 10Mi)"),
    ("logging: {max_size: max}",
     "3:21: logging.max_size: must be a size: a log file is rotated at a limit (e.g. 10Mi)"),
    ("logging: {max_size: -5}", "3:21: logging.max_size: -5 is below 4Ki (the least a file is rotated at)"),
    ("logging: {max_size: 0}", "3:21: logging.max_size: 0 is below 4Ki (the least a file is rotated at)"),
    ("logging: {max_size: 1Ki}", "3:21: logging.max_size: 1Ki is below 4Ki (the least a file is rotated at)"),
    ("logging: {max_size: 4095}", "3:21: logging.max_size: 4095 is below 4Ki (the least a file is rotated at)"),
    ("logging: {max_size: 8Ei}", "3:21: logging.max_size: '8Ei' is not a size (give bytes, 10Mi, 1Gi or 10m)"),
    ("logging: {max_size: 8192Pi}", "3:21: logging.max_size: 8192Pi is too large (at most 4096Pi)"),
    ("logging: {max_size: lots}", "3:21: logging.max_size: 'lots' is not a size (give bytes, 10Mi, 1Gi or 10m)"),
    ("logging: {max_size: 10.5}", "3:21: logging.max_size: expected a size (bytes, 10Mi, 1Gi or 10m), got the number 10.5"),
    ("logging: {max_size: 1.5}", "3:21: logging.max_size: expected a size (bytes, 10Mi, 1Gi or 10m), got the number 1.5"),
    ("logging: {max_size: true}", "3:21: logging.max_size: expected a size (bytes, 10Mi, 1Gi or 10m), got the boolean true"),
    ("logging: {max_size: ~}", "3:21: logging.max_size: expected a size (bytes, 10Mi, 1Gi or 10m), got nothing (null)"),
    ("logging: {max_size: [10Mi]}", "3:21: logging.max_size: expected a size (bytes, 10Mi, 1Gi or 10m), got a list"),
    ("logging: {max_size: 4095b}", "3:21: logging.max_size: 4095 is below 4Ki (the least a file is rotated at)"),
    ("logging: {max_files: 0}", "3:22: logging.max_files: must be greater than or equal to 1"),
    ("logging: {max_files: 101}", "3:22: logging.max_files: must be less than or equal to 100"),
    ("logging: {max_files: -1}", "3:22: logging.max_files: must be greater than or equal to 1"),
    ('logging: {max_files: "3"}', '3:22: logging.max_files: expected an integer, got the string "3"'),
    ("logging: {max_files: 2.5}", "3:22: logging.max_files: expected an integer, got the number 2.5"),
    ("logging: {max_files: true}", "3:22: logging.max_files: expected an integer, got the boolean true"),
    ("logging: {max_file: 3}", "3:11: logging.max_file: unknown field (did you mean `max_files`?)"),
    ("logging: {size: 10Mi}", "3:11: logging.size: unknown field (did you mean `max_size`?)"),
    ("logging: {driver: json-file}", "3:11: logging.driver: unknown field"),
    ("logging: 10Mi", '3:10: logging: expected a mapping (key: value), got the string "10Mi"'),
    ("logging: [max_size]", "3:10: logging: expected a mapping (key: value), got a list"),
    ("loging: {max_size: 10Mi}", "3:1: loging: unknown field (did you mean `logging`?)"),
])
def test_bad_values_name_their_field_and_position(tmp_path: Path, text: str, error: str) -> None:
    assert errors(tmp_path, text + "\n") == [error]


def test_every_error_of_the_field_at_once(tmp_path: Path) -> None:
    assert errors(tmp_path, """\
        logging:
          max_size: 1Ki
          max_files: 0
        """) == ["4:13: logging.max_size: 1Ki is below 4Ki (the least a file is rotated at)",
                 "5:14: logging.max_files: must be greater than or equal to 1"]


# --- the schema the project ships ---------------------------------------------------------------------------

def test_the_schema_has_logging_with_sizes_as_strings() -> None:
    schema = json.loads(schema_text())
    assert schema["properties"]["logging"]["$ref"] == "#/$defs/LoggingSpec"
    logging = schema["$defs"]["LoggingSpec"]
    assert logging["additionalProperties"] is False and logging["description"]
    assert set(logging["properties"]) == {"max_size", "max_files"}
    assert set(logging["properties"]["max_size"]["type"]) == {"integer", "string"}
    assert logging["properties"]["max_size"]["default"] == DEFAULT_MAX_SIZE
    assert (logging["properties"]["max_files"]["minimum"], logging["properties"]["max_files"]["maximum"],
            logging["properties"]["max_files"]["default"]) == (1, MAX_MAX_FILES, DEFAULT_MAX_FILES)
