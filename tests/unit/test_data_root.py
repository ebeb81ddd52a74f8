"""The data root beside a state root (runtime/factory.py): where it is, and that two state roots
never share one."""

from __future__ import annotations

import pytest

from declarative_ct.errors import SystemError
from declarative_ct.runtime import Runtime, factory


def test_the_default_root_has_var_lib_dct_and_others_a_directory_of_their_own(monkeypatch) -> None:
    monkeypatch.delenv(factory.DATA_ROOT_ENV, raising=False)
    assert Runtime("/run/dct").data_root == "/var/lib/dct"
    other = Runtime("/run/other").data_root
    assert other.startswith("/var/lib/dct/roots/dct-") and other != Runtime("/run/third").data_root


def test_a_data_root_serving_another_state_root_is_refused(tmp_path) -> None:
    data = str(tmp_path / "data")
    first = Runtime(str(tmp_path / "a"), data)
    first.data_dir("logs")
    assert open(f"{data}/{factory.DATA_ROOT_MARKER}").read() == first.root + "\n"
    first.data_dir("restarts")  # its own: fine, again and again
    with pytest.raises(SystemError, match=rf"keeps the data of state root {first.root}, not {tmp_path}/b"):
        Runtime(str(tmp_path / "b"), data).data_dir("logs")


def test_a_data_root_given_once_is_found_by_later_commands_without_it(tmp_path, monkeypatch) -> None:
    """The service runs ``dct --data-root D watch``; a later ``dct logs``/``status`` without the flag
    reads D from the state root's ``#data-root`` (not the root's default, where nothing is)."""
    monkeypatch.delenv(factory.DATA_ROOT_ENV, raising=False)
    root, data = tmp_path / "state", str(tmp_path / "data")
    root.mkdir()
    default = Runtime(str(root)).data_root
    Runtime(str(root), data).data_dir("logs")
    assert Runtime(str(root)).data_root == data != default
    monkeypatch.setenv(factory.DATA_ROOT_ENV, str(tmp_path / "other"))
    assert Runtime(str(root)).data_root == str(tmp_path / "other")  # the environment still decides first
