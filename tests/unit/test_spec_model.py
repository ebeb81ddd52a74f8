"""Spec values the runtime would refuse at create are refused by the model already (validate, plan)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from declarative_ct.spec.model import ContainerSpec


@pytest.mark.parametrize("fields, message", [
    ({"resources": {"memory": 0}}, "memory: 0 must be positive"),
    ({"resources": {"memory": 4096}}, "below 1Mi"),
    ({"resources": {"memory": 10 ** 23}}, "too large"),
    ({"resources": {"pids": 10 ** 20}}, "pids: 100000000000000000000 is too large (at most 4194304)"),
    ({"process": {"args": ["/bin/true"], "user": "4294967296"}}, "ids must be below 4294967295"),
    ({"process": {"args": ["a\0b"]}}, "NUL"),
    ({"process": {"args": ["x"], "env": {"A": "x\0y"}}}, "NUL"),
    ({"mounts": [{"source": "/tmp", "destination": "/proc"}]}, "cannot be a mount destination"),
    ({"mounts": [{"source": "/tmp", "destination": "/"}]}, "cannot be a mount destination"),
])
def test_values_create_would_refuse(fields, message):
    with pytest.raises(ValidationError) as info:
        ContainerSpec.model_validate({"name": "x", "process": {"args": ["/bin/true"]}, **fields})
    assert message in str(info.value)


def test_arguments_execve_would_refuse():
    with pytest.raises(ValidationError, match="MAX_ARG_STRLEN"):
        ContainerSpec.model_validate({"name": "x", "process": {"args": ["/bin/echo", "a" * 131072]}})
    with pytest.raises(ValidationError, match="more than 1024 KiB"):
        ContainerSpec.model_validate({"name": "x", "process": {"args": ["/bin/echo"] + ["a" * 100000] * 11}})


def test_a_fifo_given_by_name_is_refused_not_read(tmp_path):
    """Regression: validate blocked forever opening a FIFO given as a spec path."""
    import os

    from declarative_ct.spec.load import SpecErrors, load_paths

    fifo = tmp_path / "p.yaml"
    os.mkfifo(fifo)
    with pytest.raises(SpecErrors, match="not a regular file"):
        load_paths([str(fifo)])


def test_an_environment_execve_would_refuse():
    with pytest.raises(ValidationError, match="MAX_ARG_STRLEN"):
        ContainerSpec.model_validate({"name": "x", "process": {"args": ["x"], "env": {"A": "a" * 131072}}})
