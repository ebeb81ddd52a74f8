"""``dct`` verbs of the desired-state side: validate, schema, plan, apply, status, watch.

Thin: they load specs (:mod:`declarative_ct.spec`) and call the reconciler; imported only for
these verbs, so pydantic and PyYAML stay out of the runc-like verbs' start-up.
"""

from __future__ import annotations

import argparse
import json
import sys

SCHEMA_URL = "https://json-schema.org/draft/2020-12/schema"


def schema_text() -> str:
    """The JSON Schema of one spec document (what ``dct schema`` prints and ``specs/schema.json`` holds)."""
    from ..spec.model import ContainerSpec

    schema = ContainerSpec.model_json_schema()
    schema["$schema"] = SCHEMA_URL
    schema["title"] = "declarative-ct container spec"
    schema["description"] = ("One YAML document describes one container (a file may hold several, separated by "
                             "---). Relative host paths resolve against the file's directory. Checked by "
                             "`dct validate`.")
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"


def cmd_validate(args: argparse.Namespace) -> int:
    """``dct validate PATH…``: load every spec; print a summary (exit 0) or every error on stderr (exit 1)."""
    from ..spec.load import SpecErrors, load_paths

    try:
        docs = load_paths(args.paths)
    except SpecErrors as err:
        for error in err.errors:
            print(error, file=sys.stderr)
        return 1
    containers, files = len(docs), len({doc.source for doc in docs})
    print(f"{containers} container{'s' if containers != 1 else ''} in {files} file{'s' if files != 1 else ''}: valid")
    return 0


def cmd_schema(args: argparse.Namespace) -> int:
    """``dct schema``: print the JSON Schema of a spec document."""
    sys.stdout.write(schema_text())
    return 0
