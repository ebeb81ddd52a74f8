"""Loading spec files: YAML documents → validated :class:`ContainerSpec` objects, or every error at once.

:func:`load_paths` reads files and directories, parses each YAML document into nodes (PyYAML's
composer, so every value keeps its line and column: :mod:`.yaml_nodes`), builds the Python values
itself with YAML 1.2 core scalars (:mod:`.yaml_rules`), validates them with the pydantic models
(their errors in our words: :mod:`.messages`) and checks what spans documents (unique names,
``depends_on``, paths on the host: :mod:`.checks`). Nothing is returned unless everything is
valid: otherwise :class:`SpecErrors` carries one :class:`SpecError` per problem, each as
``file:line:col: field: message``.

YAML strictness: a plain (unquoted) scalar is read as YAML 1.2's core schema reads it (``true``,
``null``, ``~``, ``12``, ``0x1f``, ``1.5``, ``.inf``; anything else is a string), and a plain
scalar that YAML 1.1 tools read differently (``on``, ``yes``, ``n``, ``010``, ``0o10``, ``1:30``,
``1_000``, ``0b101``, ``2001-12-14``…) is an error wherever it appears, with a hint to quote it.
Quoted and block scalars are always strings; ``!!str`` is the only tag accepted. Anchors and
aliases work (an error inside an aliased value is reported where the anchor is); merge keys
(``<<``) are refused.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import yaml
from pydantic import ValidationError
from yaml.nodes import Node, ScalarNode

from . import checks
from .checks import host_path_errors, resolve_paths
from .files import is_spec_file
from .messages import (EXPECTED, HINT_QUOTE, NO_FIELD, QUOTE_HINT, Loc, SpecError, SpecErrors, describe_value,
                       field_error, field_name, join_alternatives, join_hint, suggest)
from .messages import translate as _message
from .model import ContainerSpec
from .yaml_nodes import Builder, Doc, YamlLoader, describe_node, got, line_col, pos

__all__ = ["HINT_QUOTE", "MAX_EXPANDED_SIZE", "MAX_FILE_SIZE", "NO_FIELD", "QUOTE_HINT", "SpecDocument", "SpecError",
           "SpecErrors", "is_spec_file", "load_mapping", "load_paths"]

MAX_FILE_SIZE = 16 << 20  # bytes: a spec file is a few KiB; refuse what would only exhaust memory
MAX_EXPANDED_SIZE = 16 << 20  # bytes of scalars in one document once its aliases are followed


@dataclass(frozen=True)
class SpecDocument:
    """One valid container spec and where it came from.

    ``spec`` has its host paths (``rootfs`` unless ``"host"``, ``mounts[].source``, ``reload_on``)
    made absolute against the directory of ``source``; ``source`` is the file's absolute path and
    ``line`` the 1-based line where the document's content starts.
    """

    spec: ContainerSpec
    source: str
    line: int


def load_paths(paths: list[str]) -> list[SpecDocument]:
    """Load, validate and cross-check every container spec under ``paths``.

    Each path is a spec file (any name) or a directory, whose spec files (:func:`is_spec_file`,
    non-recursive) are read in name order. A file holds one or more YAML documents (``---``);
    empty documents are skipped; each other document is one container. A file reached twice
    (given twice, or given and inside a given directory) is read once.

    Returns:
        The specs in file order, then document order.

    Raises:
        SpecErrors: with every error found in every file (syntax, YAML ambiguities, duplicate
            keys, schema violations, unknown fields, duplicate names, unknown or cyclic
            ``depends_on``, a missing rootfs directory or mount source, an unreadable or missing
            path, a path holding no container specs). Nothing is returned partially.
    """
    loader = _Loader()
    if not paths:
        loader.error(NO_FIELD, 0, 0, NO_FIELD, "no spec paths given")
    for path in paths:
        loader.load_path(path)
    loader.check_across()
    if loader.errors:
        raise SpecErrors(loader.sorted_errors())
    return [SpecDocument(resolve_paths(doc.spec, doc.base), doc.source, doc.root.start_mark.line + 1)
            for doc in loader.docs if doc.spec is not None]


def load_mapping(data: object, source: str) -> SpecDocument:
    """Validate one container spec given as Python data (JSON types), as :func:`load_paths` validates a document.

    For front doors that take a spec without a file (the Ansible module's options). There is no
    file to resolve relative paths against, so the host paths (``rootfs`` unless ``"host"``,
    ``mounts[].source``, ``reload_on``) must be absolute, and the rootfs directory and mount
    sources must exist. ``depends_on`` names are not checked against other specs (there are none).

    Args:
        data: the document's content (a mapping of the spec's fields).
        source: what ``SpecDocument.source`` (and so the container's ``dct.source`` label) says,
            e.g. ``ansible:web``; also the ``file`` of each error.

    Returns:
        A :class:`SpecDocument` with ``line`` 0.

    Raises:
        SpecErrors: every problem at once, each with ``line``/``col`` 0 and ``field`` dotted as in
            files (``resources.memory``, ``process.args[0]``, ``mounts[1].source``).
    """
    errors: list[SpecError] = []
    if not isinstance(data, dict):
        raise SpecErrors([SpecError(source, 0, 0, NO_FIELD,
                                    f"a container spec must be a mapping (key: value), not {describe_value(data)}")])
    spec = None
    try:
        spec = ContainerSpec.model_validate(data)
    except ValidationError as err:
        found: list[tuple[str, list[str], list[str]]] = []  # field, its messages, each one's hint
        for e in err.errors(include_url=False):
            loc, message = tuple(e["loc"]), _message(e)
            below = field_error(e)  # a validator's error about one of its fields: "depends_on", "cpus"…
            # (one level only here, as the mapping's field names are placed: routes[0].gateway stays at network)
            if below is not None and len(below.path) == 1 and _walk(data, loc + below.path)[1] == len(loc) + 1:
                loc, message = loc + below.path, below.message
            value, used = _walk(data, loc)
            field = field_name(loc if e["type"] == "missing" else loc[:used])
            hint = ""
            if e["type"] == "extra_forbidden":
                message += suggest(loc)
            elif e["type"] in EXPECTED or e["type"] == "literal_error":
                message += f", got {describe_value(value)}"
                if e["type"] == "string_type" and isinstance(value, (int, float)):
                    message += ": " + QUOTE_HINT
                    hint = HINT_QUOTE
            if found and found[-1][0] == field and used < len(loc):  # another alternative of a union
                found[-1][1].append(message)
                found[-1][2].append(hint)
            else:
                found.append((field, [message], [hint]))
        errors += [SpecError(source, 0, 0, field, join_alternatives(messages), hint=join_hint(messages, hints))
                   for field, messages, hints in found]
    if isinstance(data, dict):
        errors += host_path_errors(data, source)
    if errors:
        raise SpecErrors(errors)
    return SpecDocument(resolve_paths(spec, "/"), source, 0)  # absolute already: normalized only


def _walk(data: object, loc: Loc) -> tuple[object, int]:
    """The value ``loc`` reaches in ``data`` (as deep as it goes) and how many parts were followed."""
    for used, part in enumerate(loc):
        if isinstance(data, dict) and isinstance(part, str) and part in data:
            data = data[part]
        elif isinstance(data, list) and isinstance(part, int) and 0 <= part < len(data):
            data = data[part]
        else:
            return data, used
    return data, len(loc)


class _Loader:
    """Accumulates documents and errors over every path given to :func:`load_paths`."""

    def __init__(self) -> None:
        self.errors: list[tuple[int, SpecError]] = []
        self.docs: list[Doc] = []
        self.seen: set[str] = set()
        self.order = 0  # of the file being read (path-level errors take their own), for sorting errors

    def error(self, file: str, line: int, col: int, field: str, message: str, order: int | None = None,
              value: object = None) -> None:
        if order is None and line == 0:  # about a path as a whole: after what was read before it
            self.order += 1
        self.errors.append((self.order if order is None else order,
                            SpecError(file, line, col, field, message, value)))

    def sorted_errors(self) -> list[SpecError]:
        """Errors by file order, then position; duplicates (an aliased node reached twice) once."""
        out: list[SpecError] = []
        for _, err in sorted(self.errors, key=lambda item: (item[0], item[1].line, item[1].col)):
            if err not in out:
                out.append(err)
        return out

    def load_path(self, path: str) -> None:
        """Read one given path (file or directory); a path yielding no document is an error."""
        before_docs, before_errors = len(self.docs), len(self.errors)
        if os.path.isdir(path):
            try:
                names = sorted(os.listdir(path))
            except OSError as err:
                self.error(path, 0, 0, NO_FIELD, f"cannot read: {err.strerror or err}")
                return
            names = [name for name in names if is_spec_file(name)]
            if not names:
                self.error(path, 0, 0, NO_FIELD, f"no container specs found in {path} (no *.yaml or *.yml files)")
                return
            read = [self.load_file(os.path.join(path, name), in_directory=True) for name in names]
        elif os.path.exists(path):
            read = [self.load_file(path, in_directory=False)]
        else:
            self.error(path, 0, 0, NO_FIELD, "no such file or directory")
            return
        if any(read) and len(self.docs) == before_docs and len(self.errors) == before_errors:
            what = "its files hold" if os.path.isdir(path) else "it holds"
            self.error(path, 0, 0, NO_FIELD, f"no container specs found in {path} ({what} no YAML documents)")

    def load_file(self, file: str, in_directory: bool) -> bool:
        """Parse one file into documents, recording every error; False if it was read already."""
        real = os.path.realpath(file)
        if real in self.seen:
            return False
        self.seen.add(real)
        self.order += 1
        if not os.path.isfile(file):  # a FIFO or device given by name would block or never end
            kind = "a directory" if os.path.isdir(file) else "not a regular file"
            if not os.path.exists(file):
                kind = "a dangling symbolic link"
            self.error(file, 0, 0, NO_FIELD, f"cannot read: {kind}")
            return True
        if os.path.getsize(file) > MAX_FILE_SIZE:
            self.error(file, 0, 0, NO_FIELD, f"cannot read: larger than {MAX_FILE_SIZE >> 20} MiB")
            return True
        try:
            with open(file, "rb") as f:
                raw = f.read()
        except OSError as err:
            self.error(file, 0, 0, NO_FIELD, f"cannot read: {err.strerror or err}")
            return True
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError as err:
            line = raw.count(b"\n", 0, err.start) + 1
            col = len(raw[raw.rfind(b"\n", 0, err.start) + 1:err.start].decode("utf-8", "replace")) + 1
            self.error(file, line, col, NO_FIELD, f"cannot read: not UTF-8 text (byte 0x{raw[err.start]:02x})")
            return True
        source = os.path.abspath(file)
        base = os.path.dirname(source)
        stream = yaml.compose_all(text, Loader=YamlLoader)
        while True:
            try:
                root = next(stream)
            except StopIteration:
                break
            except yaml.MarkedYAMLError as err:
                self.yaml_error(file, err)
                break
            except yaml.reader.ReaderError as err:
                match = yaml.reader.Reader.NON_PRINTABLE.search(text)
                line, col = line_col(text, match.start()) if match else (0, 0)
                char = f"U+{ord(match.group()):04X}" if match else "a character"
                self.error(file, line, col, NO_FIELD, f"YAML syntax: {char} is not allowed in YAML ({err.reason})")
                break
            except RecursionError:
                self.error(file, 0, 0, NO_FIELD, "YAML syntax: nested too deeply")
                break
            self.load_document(Doc(file, source, base, self.order, root, Builder(self, file)))
        return True

    def yaml_error(self, file: str, err: yaml.MarkedYAMLError) -> None:
        mark = err.problem_mark or err.context_mark
        message = err.problem or err.context or "invalid YAML"
        if err.context and err.problem:
            where = f" (at line {err.context_mark.line + 1})" if err.context_mark else ""
            message = f"{err.problem}, {err.context}{where}"
        line, col = (mark.line + 1, mark.column + 1) if mark else (0, 0)
        self.error(file, line, col, NO_FIELD, f"YAML syntax: {message}")

    def load_document(self, doc: Doc) -> None:
        """Build the values of one document and validate them (empty documents are skipped)."""
        try:
            doc.data = doc.builder.value(doc.root, ())
        except RecursionError:
            self.error(doc.file, *pos(doc.root), NO_FIELD, "nested too deeply")
            return
        if doc.data is None and isinstance(doc.root, ScalarNode):
            return  # an empty document (or a lone null)
        self.docs.append(doc)
        expanded = doc.builder.expanded_size(doc.root)
        if expanded > MAX_EXPANDED_SIZE:  # a small file can repeat one big value by alias a million times
            self.error(doc.file, *pos(doc.root), NO_FIELD, f"the document expands to {expanded >> 20} MiB through "
                       f"its aliases (at most {MAX_EXPANDED_SIZE >> 20} MiB)")
            return
        if not isinstance(doc.data, dict):
            self.error(doc.file, *pos(doc.root), NO_FIELD,
                       f"a container spec must be a mapping (key: value), not {describe_node(doc.root, doc.data)}")
            return
        try:
            doc.spec = ContainerSpec.model_validate(doc.data)
        except ValidationError as err:
            self.validation_errors(doc, err)

    def validation_errors(self, doc: Doc, err: ValidationError) -> None:
        """Turn pydantic's errors into positioned SpecErrors (the alternatives of a union merged into one)."""
        found: dict[tuple[int, str], tuple[Node, list[str]]] = {}
        for e in err.errors(include_url=False):
            loc = tuple(e["loc"])
            message = _message(e)
            below = field_error(e)  # a validator's error about one of its fields: "depends_on", "routes[0].gateway"…
            if below is not None and doc.builder.locate(doc.root, loc + below.path)[2] == len(loc) + len(below.path):
                loc, message = loc + below.path, below.message
            node, key_node, used = doc.builder.locate(doc.root, loc)
            field = field_name(loc if e["type"] == "missing" else loc[:used])
            if key_node is not None and (e["type"] == "extra_forbidden" or loc[used:used + 1] == ("[key]",)):
                node = key_node
            if e["type"] == "extra_forbidden":
                message += suggest(loc)
            if id(node) in doc.builder.bad:
                continue  # already reported: an ambiguous scalar, a duplicate key, a tag…
            message += got(e, node, doc.builder)
            key = (id(node), field)
            if key in found and used < len(loc):  # another alternative of a union (loc ends in its tag)
                found[key][1].append(message)
            else:
                found[key] = (node, [message])
        for (_, field), (node, messages) in found.items():
            self.error(doc.file, *pos(node), field, join_alternatives(messages), doc.order)

    def check_across(self) -> None:
        """Errors between documents and with the host (:func:`.checks.check_across`)."""
        checks.check_across(self)
