"""``dct``'s dispatch (declarative_ct/cli/main.py): every verb has a handler in the module its
family lives in, and a verb loads that module only (CLI start-up is paid on every call)."""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys

import pytest

from declarative_ct.cli import main, parser

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.mark.parametrize("verb", sorted(parser.VERBS))
def test_every_verb_has_its_handler(verb):
    if verb in main.DESIRED_STATE_VERBS:
        module = importlib.import_module("declarative_ct.cli.desired")
    elif verb == "tui":
        module = importlib.import_module("tui.cli")
    else:
        module = importlib.import_module(f"declarative_ct.cli.{main.VERB_MODULES[verb]}")
    assert callable(getattr(module, "cmd_" + verb, None)), f"{module.__name__} has no cmd_{verb}"
    assert set(main.VERB_MODULES) <= set(parser.VERBS)


# What a read-only verb must not load: the other families' modules, and what only they need.
NOT_FOR_READS = ("declarative_ct.cli.create", "declarative_ct.cli.lifecycle", "declarative_ct.cli.exec_process",
                 "declarative_ct.cli.update", "declarative_ct.cli.foreground", "declarative_ct.cli.tty",
                 "declarative_ct.cli.desired", "declarative_ct.runtime.specconv", "declarative_ct.configs.signals",
                 "yaml", "pydantic", "textual")


@pytest.mark.parametrize("argv", [["list", "-q"], ["state", "nope"]])
def test_a_read_only_verb_loads_only_its_family(argv, tmp_path):
    code = ("import json, sys; from declarative_ct.cli import main\n"
            "try:\n"
            f"    main.main(['--root', {str(tmp_path)!r}, *{argv!r}])\n"
            "finally:\n"
            "    sys.stdout = sys.__stdout__; print(json.dumps(sorted(sys.modules)))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert r.returncode == 0, r.stderr
    loaded = set(json.loads(r.stdout.splitlines()[-1]))
    assert "declarative_ct.cli.observe" in loaded
    assert not loaded & set(NOT_FOR_READS), sorted(loaded & set(NOT_FOR_READS))
