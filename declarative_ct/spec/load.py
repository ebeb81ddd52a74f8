"""Loading spec files: YAML documents → validated :class:`ContainerSpec` objects, or every error at once.

:func:`load_paths` reads files and directories, parses each YAML document into nodes (PyYAML's
composer, so every value keeps its line and column), builds the Python values itself with YAML
1.2 core scalars, validates them with the pydantic models and checks what spans documents
(unique names, ``depends_on``, paths on the host). Nothing is returned unless everything is
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

import math
import os
import re
import typing
import dataclasses
from dataclasses import dataclass

import yaml
from pydantic import BaseModel, ValidationError
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from ..errors import ConfigInvalid, ContainerError
from .files import is_spec_file
from .model import NAME_PATTERN, RESTART_PATTERN, SECCOMP_KEYWORDS, ContainerSpec, FieldError

MAX_FILE_SIZE = 16 << 20  # bytes: a spec file is a few KiB; refuse what would only exhaust memory
MAX_EXPANDED_SIZE = 16 << 20  # bytes of scalars in one document once its aliases are followed


NO_FIELD = "-"


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


QUOTE_HINT = "quote it if it is meant as text"
"""The end of a message about a number where text is meant (:func:`load_mapping`; ``SpecError.hint``)."""
HINT_QUOTE = "quote"


@dataclass(frozen=True)
class SpecError:
    """One problem: ``file:line:col: field: message``.

    ``file`` is the path as given (a directory's entries joined to it); ``line``/``col`` are
    1-based, and both 0 when the error concerns the path as a whole (missing, unreadable, no
    specs). ``field`` is dotted (``resources.memory``, ``process.args[0]``) or ``-``. ``value``:
    the value at fault when a front door may want it (an unknown container's name); ``hint``:
    :data:`HINT_QUOTE` when ``message`` ends with :data:`QUOTE_HINT`. Neither takes part in equality.
    """

    file: str
    line: int
    col: int
    field: str
    message: str
    value: object = dataclasses.field(default=None, compare=False)  # the value at fault, where a front door uses it
    hint: str = dataclasses.field(default="", compare=False)  # HINT_QUOTE: the message ends with QUOTE_HINT

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}: {self.field}: {self.message}"


class SpecErrors(ContainerError):
    """Raised by :func:`load_paths` with every :class:`SpecError` found (``.errors``); str: one per line."""

    def __init__(self, errors: list[SpecError]) -> None:
        self.errors = list(errors)
        super().__init__("\n".join(str(e) for e in self.errors))


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
    return [SpecDocument(_resolve_paths(doc.spec, doc.base), doc.source, doc.root.start_mark.line + 1)
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
                                    f"a container spec must be a mapping (key: value), not {_describe_value(data)}")])
    spec = None
    try:
        spec = ContainerSpec.model_validate(data)
    except ValidationError as err:
        found: list[tuple[str, list[str], list[str]]] = []  # field, its messages, each one's hint
        for e in err.errors(include_url=False):
            loc, message = tuple(e["loc"]), _message(e)
            below = _field_error(e)  # a validator's error about one of its fields: "depends_on", "cpus"…
            # (one level only here, as the mapping's field names are placed: routes[0].gateway stays at network)
            if below is not None and len(below.path) == 1 and _walk(data, loc + below.path)[1] == len(loc) + 1:
                loc, message = loc + below.path, below.message
            value, used = _walk(data, loc)
            field = _field(loc if e["type"] == "missing" else loc[:used])
            hint = ""
            if e["type"] == "extra_forbidden":
                message += _suggest(loc)
            elif e["type"] in _EXPECTED or e["type"] == "literal_error":
                message += f", got {_describe_value(value)}"
                if e["type"] == "string_type" and isinstance(value, (int, float)):
                    message += ": " + QUOTE_HINT
                    hint = HINT_QUOTE
            if found and found[-1][0] == field and used < len(loc):  # another alternative of a union
                found[-1][1].append(message)
                found[-1][2].append(hint)
            else:
                found.append((field, [message], [hint]))
        errors += [SpecError(source, 0, 0, field, _join(messages), hint=_join_hint(messages, hints))
                   for field, messages, hints in found]
    if isinstance(data, dict):
        errors += _host_path_errors(data, source)
    if errors:
        raise SpecErrors(errors)
    return SpecDocument(_resolve_paths(spec, "/"), source, 0)  # absolute already: normalized only


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


def _describe_value(value: object) -> str:
    if isinstance(value, (list, tuple)):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return f"the boolean {'true' if value else 'false'}"
    if isinstance(value, (int, float)):
        return f"the number {_show(value)}"
    return f'the string "{value}"'


def _host_path_errors(data: dict, source: str) -> list[SpecError]:
    """Absolute and existing: the rootfs directory and mount sources; absolute: reload_on (may not exist yet)."""
    out = []
    relative = "must be an absolute path on the host (there is no spec file to resolve it against)"
    rootfs = data.get("rootfs")
    if isinstance(rootfs, str) and rootfs != "host":
        if not rootfs:
            out.append(SpecError(source, 0, 0, "rootfs", 'must be "host" or a directory'))
        elif not os.path.isabs(rootfs):
            out.append(SpecError(source, 0, 0, "rootfs", relative))
        elif not os.path.isdir(rootfs):
            what = "not a directory" if os.path.exists(rootfs) else "directory does not exist"
            out.append(SpecError(source, 0, 0, "rootfs", f"{what}: {rootfs}"))
    mounts = data.get("mounts")
    for i, mount in enumerate(mounts if isinstance(mounts, list) else []):
        path = mount.get("source") if isinstance(mount, dict) else None
        if isinstance(path, str):
            if not path:
                out.append(SpecError(source, 0, 0, f"mounts[{i}].source", "must not be empty"))
            elif not os.path.isabs(path):
                out.append(SpecError(source, 0, 0, f"mounts[{i}].source", relative))
            elif not os.path.exists(path):
                out.append(SpecError(source, 0, 0, f"mounts[{i}].source", f"does not exist: {path}"))
    reload_on = data.get("reload_on")
    for i, path in enumerate(reload_on if isinstance(reload_on, list) else []):
        if isinstance(path, str) and not os.path.isabs(path):
            out.append(SpecError(source, 0, 0, f"reload_on[{i}]", relative))
    profile = data.get("seccomp")
    if isinstance(profile, str) and profile and profile not in SECCOMP_KEYWORDS:
        problem = (f'must be "default", "unconfined" or an absolute path to a profile file on the host '
                   f'(there is no spec file to resolve "{profile}" against)'
                   if not os.path.isabs(profile) else _seccomp_problem(profile))
        if problem:
            out.append(SpecError(source, 0, 0, "seccomp", problem))
    return out


def _seccomp_problem(path: str) -> str | None:
    """Why the seccomp profile at ``path`` cannot be used (missing, not JSON, a bad field), or None."""
    from ..configs.seccomp import read_profile

    if not os.path.isfile(path):
        return (f"not default, unconfined or an existing profile file: {path} does not exist"
                if not os.path.exists(path) else f"not a file: {path}")
    try:
        read_profile(path)  # remembered: normalized() and the conversion do not read it again
    except ConfigInvalid as err:
        return str(err)
    return None


# --- scalars: YAML 1.2 core, and what YAML 1.1 would make of them -------------------------------------

_PLAIN_TAG = "tag:dct:plain"  # our resolver's tag for every plain scalar; read by _core()
_STR_TAG = "tag:yaml.org,2002:str"
_SEQ_TAG = "tag:yaml.org,2002:seq"
_MAP_TAG = "tag:yaml.org,2002:map"

_CORE_NULL = re.compile(r"^(?:~|null|Null|NULL|)$")
_CORE_BOOL = {"true": True, "True": True, "TRUE": True, "false": False, "False": False, "FALSE": False}
_CORE_INT = re.compile(r"^[-+]?[0-9]+$")
_CORE_OCT = re.compile(r"^0o[0-7]+$")
_CORE_HEX = re.compile(r"^0x[0-9a-fA-F]+$")
_CORE_FLOAT = re.compile(r"^[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?$")
_CORE_INF = re.compile(r"^[-+]?\.(?:inf|Inf|INF)$")
_CORE_NAN = re.compile(r"^\.(?:nan|NaN|NAN)$")

# YAML 1.1 as PyYAML (and most 1.1 tools) resolve it, plus the spec's y/n booleans.
_Y11_BOOL = {"yes": True, "no": False, "on": True, "off": False, "y": True, "n": False}
_Y11_INT = re.compile(r"""^(?:[-+]?0b[0-1_]+
    |[-+]?0[0-7_]+
    |[-+]?(?:0|[1-9][0-9_]*)
    |[-+]?0x[0-9a-fA-F_]+
    |[-+]?[1-9][0-9_]*(?::[0-5]?[0-9])+)$""", re.X)
_Y11_FLOAT = re.compile(r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+][0-9]+)?
    |\.[0-9][0-9_]*(?:[eE][-+][0-9]+)?
    |[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+\.[0-9_]*
    |[-+]?\.(?:inf|Inf|INF)
    |\.(?:nan|NaN|NAN))$""", re.X)
_Y11_TIMESTAMP = re.compile(r"""^(?:[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]
    |[0-9][0-9][0-9][0-9]-[0-9][0-9]?-[0-9][0-9]?
    (?:[Tt]|[ \t]+)[0-9][0-9]?:[0-9][0-9]:[0-9][0-9](?:\.[0-9]*)?
    (?:[ \t]*(?:Z|[-+][0-9][0-9]?(?::[0-9][0-9])?))?)$""", re.X)


def _core(text: str) -> object:
    """A plain scalar as YAML 1.2's core schema reads it."""
    if _CORE_NULL.match(text):
        return None
    if text in _CORE_BOOL:
        return _CORE_BOOL[text]
    if _CORE_INT.match(text):
        return int(text)
    if _CORE_OCT.match(text):
        return int(text[2:], 8)
    if _CORE_HEX.match(text):
        return int(text[2:], 16)
    if _CORE_FLOAT.match(text):
        return float(text)
    if _CORE_INF.match(text):
        return -math.inf if text.startswith("-") else math.inf
    if _CORE_NAN.match(text):
        return math.nan
    return text


def _sexagesimal(text: str) -> float:
    value = 0.0
    for part in text.split(":"):
        value = value * 60 + float(part)
    return value


def _yaml11(text: str) -> tuple[str, object]:
    """``(kind, value)`` of a plain scalar as YAML 1.1 reads it; kind: null/bool/int/float/timestamp/str."""
    if _CORE_NULL.match(text):
        return "null", None
    if text in _CORE_BOOL or text.lower() in _Y11_BOOL:
        return "bool", _CORE_BOOL.get(text, _Y11_BOOL.get(text.lower()))
    if _Y11_INT.match(text):
        body = text.replace("_", "")
        sign = -1 if body.startswith("-") else 1
        body = body.lstrip("+-")
        if body.startswith("0b"):
            return "int", sign * int(body[2:] or "0", 2)
        if body.startswith("0x"):
            return "int", sign * int(body[2:] or "0", 16)
        if ":" in body:
            return "int", sign * int(_sexagesimal(body))
        if body.startswith("0") and body != "0":
            return "int", sign * int(body, 8)
        return "int", sign * int(body or "0")
    if _Y11_FLOAT.match(text):
        body = text.replace("_", "").lower()
        if body.lstrip("+-") == ".inf":
            return "float", -math.inf if body.startswith("-") else math.inf
        if body == ".nan":
            return "float", math.nan
        if ":" in body:
            sign = -1 if body.startswith("-") else 1
            return "float", sign * _sexagesimal(body.lstrip("+-"))
        return "float", float(body)
    if _Y11_TIMESTAMP.match(text):
        return "timestamp", text
    return "str", text


def _kind(value: object) -> str:
    if value is None:
        return "null"
    return {bool: "bool", int: "int", float: "float", str: "str"}[type(value)]


def _same(a: tuple[str, object], b: tuple[str, object]) -> bool:
    if a[0] != b[0]:
        return False
    if isinstance(a[1], float) and isinstance(b[1], float) and math.isnan(a[1]) and math.isnan(b[1]):
        return True
    return a[1] == b[1]


def _ambiguity(text: str) -> str | None:
    """The error for a plain scalar that YAML 1.1 and YAML 1.2 read differently, else None."""
    core = _core(text)
    core_kind = _kind(core)
    kind, value = _yaml11(text)
    if _same((core_kind, core), (kind, value)) and text.lower() not in _Y11_BOOL:
        return None
    quote = f'quote it ("{text}")'
    if kind == "bool":
        return f"`{text}` is ambiguous in YAML (YAML 1.1 reads it as a boolean): {quote} or write true/false"
    if kind == "timestamp":
        return f"`{text}` is ambiguous in YAML (YAML 1.1 reads it as a date): {quote}"
    if kind in ("int", "float"):
        how = f"YAML 1.1 reads it as the number {_show(value)}"
        if core_kind in ("int", "float"):
            how += f", YAML 1.2 as {_show(core)}"
    else:
        how = f"YAML 1.2 reads it as the number {_show(core)}, YAML 1.1 as a string"
    return f"`{text}` is ambiguous in YAML ({how}): {quote} or write the number in plain decimal"


def _show(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


# --- YAML parsing ----------------------------------------------------------------------------------------

class _Resolve:
    """Resolver mix-in: plain scalars get :data:`_PLAIN_TAG` (we read them), everything else the
    default tags; explicit tags stay as written."""

    def resolve(self, kind, value, implicit):  # noqa: ANN001 - PyYAML's signature
        if kind is ScalarNode and implicit[0]:
            return _PLAIN_TAG
        return yaml.resolver.BaseResolver.resolve(self, kind, value, implicit)


if getattr(yaml, "__with_libyaml__", False):
    from yaml.cyaml import CParser

    class _YamlLoader(CParser, _Resolve, yaml.resolver.BaseResolver):
        def __init__(self, stream: str) -> None:
            CParser.__init__(self, stream)
            yaml.resolver.BaseResolver.__init__(self)
else:  # pragma: no cover - PyYAML without libyaml
    from yaml.composer import Composer
    from yaml.parser import Parser
    from yaml.reader import Reader
    from yaml.scanner import Scanner

    class _YamlLoader(Reader, Scanner, Parser, Composer, _Resolve, yaml.resolver.BaseResolver):  # type: ignore[no-redef]
        def __init__(self, stream: str) -> None:
            Reader.__init__(self, stream)
            Scanner.__init__(self)
            Parser.__init__(self)
            Composer.__init__(self)
            yaml.resolver.BaseResolver.__init__(self)


def _short_tag(tag: str) -> str:
    return "!!" + tag.removeprefix("tag:yaml.org,2002:") if tag.startswith("tag:yaml.org,2002:") else tag


def _line_col(text: str, index: int) -> tuple[int, int]:
    """1-based line and column of character ``index`` of ``text``."""
    line = text.count("\n", 0, index) + 1
    return line, index - (text.rfind("\n", 0, index) + 1) + 1


# --- loading ---------------------------------------------------------------------------------------------

Loc = tuple[object, ...]


@dataclass
class _Doc:
    """One non-empty document being loaded."""

    file: str  # as displayed in errors
    source: str  # absolute path
    base: str  # directory that relative paths resolve against
    order: int  # file order, for sorting errors
    root: Node
    builder: "_Builder"
    data: object = None
    spec: ContainerSpec | None = None


class _Loader:
    """Accumulates documents and errors over every path given to :func:`load_paths`."""

    def __init__(self) -> None:
        self.errors: list[tuple[int, SpecError]] = []
        self.docs: list[_Doc] = []
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
        stream = yaml.compose_all(text, Loader=_YamlLoader)
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
                line, col = _line_col(text, match.start()) if match else (0, 0)
                char = f"U+{ord(match.group()):04X}" if match else "a character"
                self.error(file, line, col, NO_FIELD, f"YAML syntax: {char} is not allowed in YAML ({err.reason})")
                break
            except RecursionError:
                self.error(file, 0, 0, NO_FIELD, "YAML syntax: nested too deeply")
                break
            self.load_document(_Doc(file, source, base, self.order, root, _Builder(self, file)))
        return True

    def yaml_error(self, file: str, err: yaml.MarkedYAMLError) -> None:
        mark = err.problem_mark or err.context_mark
        message = err.problem or err.context or "invalid YAML"
        if err.context and err.problem:
            where = f" (at line {err.context_mark.line + 1})" if err.context_mark else ""
            message = f"{err.problem}, {err.context}{where}"
        line, col = (mark.line + 1, mark.column + 1) if mark else (0, 0)
        self.error(file, line, col, NO_FIELD, f"YAML syntax: {message}")

    def load_document(self, doc: _Doc) -> None:
        """Build the values of one document and validate them (empty documents are skipped)."""
        try:
            doc.data = doc.builder.value(doc.root, ())
        except RecursionError:
            self.error(doc.file, *_pos(doc.root), NO_FIELD, "nested too deeply")
            return
        if doc.data is None and isinstance(doc.root, ScalarNode):
            return  # an empty document (or a lone null)
        self.docs.append(doc)
        expanded = doc.builder.expanded_size(doc.root)
        if expanded > MAX_EXPANDED_SIZE:  # a small file can repeat one big value by alias a million times
            self.error(doc.file, *_pos(doc.root), NO_FIELD, f"the document expands to {expanded >> 20} MiB through "
                       f"its aliases (at most {MAX_EXPANDED_SIZE >> 20} MiB)")
            return
        if not isinstance(doc.data, dict):
            self.error(doc.file, *_pos(doc.root), NO_FIELD,
                       f"a container spec must be a mapping (key: value), not {_describe(doc.root, doc.data)}")
            return
        try:
            doc.spec = ContainerSpec.model_validate(doc.data)
        except ValidationError as err:
            self.validation_errors(doc, err)

    def validation_errors(self, doc: _Doc, err: ValidationError) -> None:
        """Turn pydantic's errors into positioned SpecErrors (the alternatives of a union merged into one)."""
        found: dict[tuple[int, str], tuple[Node, list[str]]] = {}
        for e in err.errors(include_url=False):
            loc = tuple(e["loc"])
            message = _message(e)
            below = _field_error(e)  # a validator's error about one of its fields: "depends_on", "routes[0].gateway"…
            if below is not None and doc.builder.locate(doc.root, loc + below.path)[2] == len(loc) + len(below.path):
                loc, message = loc + below.path, below.message
            node, key_node, used = doc.builder.locate(doc.root, loc)
            field = _field(loc if e["type"] == "missing" else loc[:used])
            if key_node is not None and (e["type"] == "extra_forbidden" or loc[used:used + 1] == ("[key]",)):
                node = key_node
            if e["type"] == "extra_forbidden":
                message += _suggest(loc)
            if id(node) in doc.builder.bad:
                continue  # already reported: an ambiguous scalar, a duplicate key, a tag…
            message += _got(e, node, doc.builder)
            key = (id(node), field)
            if key in found and used < len(loc):  # another alternative of a union (loc ends in its tag)
                found[key][1].append(message)
            else:
                found[key] = (node, [message])
        for (_, field), (node, messages) in found.items():
            self.error(doc.file, *_pos(node), field, _join(messages), doc.order)

    def check_across(self) -> None:
        """Errors between documents and with the host: duplicate names, depends_on, host paths."""
        by_name: dict[str, list[tuple[_Doc, Node]]] = {}
        for doc in self.docs:
            if not isinstance(doc.data, dict):
                continue
            name = doc.data.get("name")
            if isinstance(name, str):
                node, _, _ = doc.builder.locate(doc.root, ("name",))
                by_name.setdefault(name, []).append((doc, node))
            self.check_host_paths(doc)
        for name, places in by_name.items():
            if len(places) > 1:
                for doc, node in places:
                    others = ", ".join(f"{d.file}:{n.start_mark.line + 1}:{n.start_mark.column + 1}"
                                       for d, n in places if n is not node)
                    self.error(doc.file, *_pos(node), "name", f"duplicate name `{name}` (also at {others})", doc.order)
        edges: dict[str, list[tuple[str, Node, str]]] = {}
        for name, places in by_name.items():
            edges[name] = []
            for doc, _ in places:  # every document of a duplicated name is checked too
                deps = doc.data.get("depends_on")
                for i, dep in enumerate(deps if isinstance(deps, list) else []):
                    if not isinstance(dep, str) or dep == name:
                        continue
                    node, _, _ = doc.builder.locate(doc.root, ("depends_on", i))
                    if dep not in by_name:
                        self.error(doc.file, *_pos(node), f"depends_on[{i}]",
                                   f"unknown container `{dep}` (no spec names it)", doc.order, value=dep)
                    elif doc is places[0][0]:  # the cycle check follows one document per name
                        edges[name].append((dep, node, f"depends_on[{i}]"))
                network = doc.data.get("network")
                mode = network.get("mode") if isinstance(network, dict) else None
                if isinstance(mode, str) and mode.startswith("container:") and mode != f"container:{name}":
                    node, _, _ = doc.builder.locate(doc.root, ("network", "mode"))
                    joined = mode.removeprefix("container:")
                    if joined not in by_name:
                        self.error(doc.file, *_pos(node), "network.mode",
                                   f"unknown container `{joined}` (no spec names it)", doc.order, value=joined)
                    elif doc is places[0][0]:
                        edges[name].append((joined, node, "network.mode"))
        self.check_cycles(by_name, edges)
        self.check_network_clashes()

    def check_network_clashes(self) -> None:
        """Two specs with the same static address on a bridge, or publishing the same host port:
        both are named, as apply would fail the second only after making the first."""
        claims: dict[tuple, list[tuple[_Doc, tuple, str]]] = {}
        for doc in self.docs:
            spec = getattr(doc, "spec", None)
            if spec is None or spec.network.mode != "bridge" or spec.state == "absent":
                continue
            if spec.network.address:
                ip = spec.network.address.split("/")[0]
                claims.setdefault(("address", spec.network.bridge, ip), []).append(
                    (doc, ("network", "address"), f"address {ip} on bridge {spec.network.bridge}"))
            for i, port in enumerate(spec.network.to_ports()):
                claims.setdefault(("port", port.protocol, port.host_port), []).append(
                    (doc, ("network", "ports", i), f"host port {port.host_port}/{port.protocol}"))
        for places in claims.values():
            if len({d.spec.name for d, _, _ in places}) < 2:
                continue
            for doc, loc, what in places:
                others = ", ".join(f"`{d.spec.name}`" for d, _, _ in places if d.spec.name != doc.spec.name)
                node, _, _ = doc.builder.locate(doc.root, loc)
                self.error(doc.file, *_pos(node), _field(loc), f"{what} is also claimed by {others}", doc.order)

    def check_cycles(self, by_name: dict[str, list[tuple[_Doc, Node]]],
                     edges: dict[str, list[tuple[str, Node, str]]]) -> None:
        """One error per dependency edge that closes a cycle (iterative depth-first search)."""
        state: dict[str, int] = {}  # 1: on the current path, 2: done
        for start in edges:
            if start in state:
                continue
            state[start] = 1
            path, stack = [start], [(start, iter(edges[start]))]
            while stack:
                name, it = stack[-1]
                for dep, node, field in it:
                    if dep not in state:
                        state[dep] = 1
                        path.append(dep)
                        stack.append((dep, iter(edges[dep])))
                        break
                    if state[dep] == 1:
                        cycle = " → ".join(path[path.index(dep):] + [dep])
                        doc = by_name[name][0][0]
                        self.error(doc.file, *_pos(node), field, f"dependency cycle: {cycle}", doc.order)
                else:
                    state[name] = 2
                    path.pop()
                    stack.pop()

    def check_host_paths(self, doc: _Doc) -> None:
        """The rootfs directory and mount sources must exist (relative to the file's directory)."""
        data = doc.data
        assert isinstance(data, dict)
        rootfs = data.get("rootfs")
        if isinstance(rootfs, str) and rootfs != "host":
            node, _, _ = doc.builder.locate(doc.root, ("rootfs",))
            full = _absolute(doc.base, rootfs)
            if not rootfs:
                problem = 'must be "host" or a directory'
            elif not os.path.exists(full):
                problem = f"directory does not exist: {full}"
            elif not os.path.isdir(full):
                problem = f"not a directory: {full}"
            elif os.path.islink(full):  # the runtime refuses it (Config.validate): say so before anything is done
                problem = f"{full} is a symlink; give the real directory ({os.path.realpath(full)})"
            else:
                problem = None
            if problem and id(node) not in doc.builder.bad:
                self.error(doc.file, *_pos(node), "rootfs", problem, doc.order)
        mounts = data.get("mounts")
        for i, mount in enumerate(mounts if isinstance(mounts, list) else []):
            source = mount.get("source") if isinstance(mount, dict) else None
            if not isinstance(source, str):
                continue
            node, _, _ = doc.builder.locate(doc.root, ("mounts", i, "source"))
            full = _absolute(doc.base, source)
            problem = "must not be empty" if not source else None if os.path.exists(full) else f"does not exist: {full}"
            if problem and id(node) not in doc.builder.bad:
                self.error(doc.file, *_pos(node), f"mounts[{i}].source", problem, doc.order)
        profile = data.get("seccomp")
        if isinstance(profile, str) and profile and profile not in SECCOMP_KEYWORDS:
            node, _, _ = doc.builder.locate(doc.root, ("seccomp",))
            problem = _seccomp_problem(_absolute(doc.base, profile))
            if problem and id(node) not in doc.builder.bad:
                self.error(doc.file, *_pos(node), "seccomp", problem, doc.order)


class _Builder:
    """Python values from one document's nodes (YAML 1.2 core scalars); remembers each node's
    value, so that :meth:`locate` can follow pydantic's error locations back to nodes."""

    def __init__(self, loader: _Loader, file: str) -> None:
        self.loader = loader
        self.file = file
        self.values: dict[int, object] = {}
        self.active: set[int] = set()
        self.bad: set[int] = set()  # nodes already reported (their errors from validation are dropped)

    def error(self, node: Node, loc: Loc, message: str) -> None:
        self.bad.add(id(node))
        self.loader.error(self.file, *_pos(node), _field(loc), message)

    def value(self, node: Node, loc: Loc) -> object:
        """The Python value of ``node`` (``loc``: its path, for error messages)."""
        if id(node) in self.values:
            return self.values[id(node)]
        if id(node) in self.active:
            self.error(node, loc, "an alias refers to a value that contains it")
            return None
        self.active.add(id(node))
        try:
            if isinstance(node, ScalarNode):
                value = self.scalar(node, loc)
            elif isinstance(node, SequenceNode):
                self.check_tag(node, loc, _SEQ_TAG)
                value = [self.value(item, loc + (i,)) for i, item in enumerate(node.value)]
            else:
                value = self.mapping(node, loc)
        finally:
            self.active.discard(id(node))
        self.values[id(node)] = value
        return value

    def expanded_size(self, node: Node) -> int:
        """Bytes of scalar text under ``node`` with every alias followed (what serializing it would
        write), computed once per node."""
        sizes: dict[int, int] = {}

        def size(n: Node) -> int:
            if id(n) not in sizes:
                sizes[id(n)] = 0  # a cycle (reported by value()) counts once
                if isinstance(n, ScalarNode):
                    sizes[id(n)] = len(n.value) + 1
                elif isinstance(n, SequenceNode):
                    sizes[id(n)] = 1 + sum(size(item) for item in n.value)
                else:
                    sizes[id(n)] = 1 + sum(size(k) + size(v) for k, v in n.value)
            return sizes[id(n)]

        return size(node)

    def check_tag(self, node: Node, loc: Loc, expected: str) -> None:
        if node.tag != expected:
            self.error(node, loc, f"the tag {_short_tag(node.tag)} is not supported (write the value without it)")

    def scalar(self, node: ScalarNode, loc: Loc) -> object:
        if node.tag == _PLAIN_TAG:
            problem = _ambiguity(node.value)
            if problem:
                self.error(node, loc, problem)
                return node.value
            return _core(node.value)
        if node.tag != _STR_TAG:
            self.error(node, loc, f"the tag {_short_tag(node.tag)} is not supported (quote the value or write it "
                                  "without a tag)")
        return node.value

    def mapping(self, node: MappingNode, loc: Loc) -> dict[object, object]:
        self.check_tag(node, loc, _MAP_TAG)
        out: dict[object, object] = {}
        first: dict[str, Node] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, ScalarNode):
                self.error(key_node, loc, "a key must be a plain value, not a list or mapping")
                continue
            if key_node.tag == _PLAIN_TAG and key_node.value == "<<":
                self.error(key_node, loc, "merge keys (<<) are not supported: write the keys out")
                continue
            key = self.value(key_node, loc + (key_node.value,))
            if id(key_node) in self.bad:
                continue  # reported (an ambiguous scalar, a tag)
            if not isinstance(key, str):  # every mapping of a spec has text keys (fields, variables, labels)
                hint = f': quote it ("{key_node.value}")' if key is not None else ""
                self.error(key_node, loc + (key_node.value,),
                           f"a key must be a string, got {_describe(key_node, key)}{hint}")
                continue
            if key in first:
                line, col = _pos(first[key])
                self.error(key_node, loc + (key,), f"duplicate key `{key}` (first at line {line}:{col})")
                continue
            first[key] = key_node
            out[key] = self.value(value_node, loc + (key,))
        return out

    def locate(self, root: Node, loc: Loc) -> tuple[Node, Node | None, int]:
        """``(node, key node, parts used)``: the node that ``loc`` reaches (as deep as it goes), the
        key node of its last mapping step, and how many parts of ``loc`` were followed."""
        node, key_node = root, None
        for used, part in enumerate(loc):
            if isinstance(node, MappingNode):
                for k, v in node.value:
                    if isinstance(k, ScalarNode) and id(k) in self.values and self.values[id(k)] == part \
                            and type(self.values[id(k)]) is type(part):
                        node, key_node = v, k
                        break
                else:
                    return node, key_node, used
            elif isinstance(node, SequenceNode) and isinstance(part, int) and 0 <= part < len(node.value):
                node, key_node = node.value[part], None
            else:
                return node, key_node, used
        return node, key_node, len(loc)


def _pos(node: Node) -> tuple[int, int]:
    return node.start_mark.line + 1, node.start_mark.column + 1


def _field_error(e: dict) -> FieldError | None:
    """The :class:`~.model.FieldError` a validator raised for pydantic error ``e``, else None."""
    error = (e.get("ctx") or {}).get("error") if e["type"] == "value_error" else None
    return error if isinstance(error, FieldError) else None


def _field(loc: Loc) -> str:
    """``("process", "args", 0)`` → ``process.args[0]``; ``()`` → ``-``."""
    out = ""
    for part in loc:
        if isinstance(part, int) and not isinstance(part, bool):
            out += f"[{part}]"
        elif isinstance(part, str) and re.match(r"^[A-Za-z0-9_-]+$", part):
            out += f".{part}" if out else part
        else:
            out += f'["{part}"]' if isinstance(part, str) else f"[{_show(part)}]"
    return out or NO_FIELD


_EXPECTED = {
    "string_type": "a string", "int_type": "an integer", "float_type": "a number", "bool_type": "true or false",
    "list_type": "a list", "dict_type": "a mapping (key: value)", "model_type": "a mapping (key: value)",
    "int_from_float": "a whole number", "finite_number": "a finite number",
}
_PATTERNS = {
    NAME_PATTERN: "must be 1 to 63 letters, digits or _ . + - (starting with a letter or digit)",
    RESTART_PATTERN: "must be never, always, on-failure or on-failure:N",
    r"^[0-9]+(:[0-9]+)?$": 'must be "uid" or "uid:gid" (numbers)',
}


_BOUNDS = {"greater_than": ("greater than", "gt"), "greater_than_equal": ("greater than or equal to", "ge"),
           "less_than": ("less than", "lt"), "less_than_equal": ("less than or equal to", "le")}


def _number(value: object) -> str:
    """A bound as pydantic shows it: ``0.0`` → ``0``."""
    return str(int(value)) if isinstance(value, float) and value.is_integer() else str(value)


def _message(e: dict) -> str:
    """pydantic's message for one error, in our words (without what was given: see :func:`_got`)."""
    kind, ctx, msg = e["type"], e.get("ctx") or {}, e["msg"]
    if kind == "missing":
        return "required field is missing"
    if kind == "extra_forbidden":
        return "unknown field"
    if kind in _EXPECTED:
        return "expected " + _EXPECTED[kind]
    if kind == "literal_error":
        return f"expected {ctx.get('expected', '')}".rstrip()
    if kind == "string_pattern_mismatch":
        return _PATTERNS.get(ctx.get("pattern"), f"must match the pattern {ctx.get('pattern')}")
    if kind == "too_short" and ctx.get("min_length") == 1:
        return "must not be empty"
    if kind == "value_error":
        return str(ctx["error"]) if "error" in ctx else msg
    if kind in _BOUNDS:
        word, key = _BOUNDS[kind]
        return f"must be {word} {_number(ctx[key])}"
    if kind in ("string_too_long", "string_too_short") or (kind in ("too_long", "too_short")
                                                            and ctx.get("field_type") == "List"):
        most = "most" if kind.endswith("long") else "least"
        limit = ctx["max_length" if most == "most" else "min_length"]
        if kind.startswith("string"):
            return f"must have at {most} {limit} character{'' if limit == 1 else 's'}"
        return f"must have at {most} {limit} item{'' if limit == 1 else 's'} after validation, not {ctx['actual_length']}"
    return msg  # a kind our models do not produce: pydantic's words


def _got(e: dict, node: Node, builder: _Builder) -> str:
    """What was given, for type errors; for a plain non-string scalar where a string is meant, a hint to quote."""
    if not (e["type"] in _EXPECTED or e["type"] == "literal_error"):
        return ""
    value = builder.values.get(id(node))
    got = f", got {_describe(node, value)}"
    if e["type"] == "string_type" and isinstance(node, ScalarNode) and node.tag == _PLAIN_TAG and value is not None:
        got += f': quote it ("{node.value}") if it is meant as text'
    return got


def _describe(node: Node, value: object) -> str:
    if isinstance(node, SequenceNode):
        return "a list"
    if isinstance(node, MappingNode):
        return "a mapping"
    if value is None:
        return f"null ({node.value})" if isinstance(node, ScalarNode) and node.value else "nothing (an empty value)"
    if isinstance(value, bool):
        return f"the boolean {node.value}"
    if isinstance(value, (int, float)):
        return f"the number {node.value}"
    return f'the string "{value}"'


def _join(messages: list[str]) -> str:
    """Alternatives of a union, ``expected an integer…`` + ``expected 'unlimited'…`` → one message."""
    if len(messages) == 1:
        return messages[0]
    got = ""
    parts = []
    for m in messages:
        head, sep, tail = m.partition(", got ")
        parts.append(head.removeprefix("expected "))
        got = got or (sep + tail)
    return "expected " + " or ".join(parts) + got


def _join_hint(messages: list[str], hints: list[str]) -> str:
    """The hint of the alternative whose ``, got …`` tail :func:`_join` keeps."""
    if len(messages) == 1:
        return hints[0]
    return next((h for m, h in zip(messages, hints) if ", got " in m), "")


def _suggest(loc: Loc) -> str:
    """``(did you mean `args`?)`` for an unknown field close to one of its model's fields."""
    model: object = ContainerSpec
    for part in loc[:-1]:
        model = _submodel(model, part)
        if model is None:
            return ""
    if not (isinstance(model, type) and issubclass(model, BaseModel)) or not isinstance(loc[-1], str):
        return ""
    import difflib  # only when there is an unknown field

    close = difflib.get_close_matches(loc[-1], list(model.model_fields), n=1)
    return f" (did you mean `{close[0]}`?)" if close else ""


def _submodel(model: object, part: object) -> object:
    """The model (or list of models) reached from ``model`` by one location part, else None."""
    if isinstance(model, type) and issubclass(model, BaseModel) and isinstance(part, str):
        field = model.model_fields.get(part)
        return _unwrap(field.annotation) if field else None
    if isinstance(model, tuple) and model[0] == "list" and isinstance(part, int):
        return model[1]
    return None


def _unwrap(annotation: object) -> object:
    """A BaseModel class, ``("list", model)``, or None, from a field's annotation."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if typing.get_origin(annotation) is list:
        inner = _unwrap(typing.get_args(annotation)[0])
        return ("list", inner) if inner else None
    for arg in typing.get_args(annotation):
        found = _unwrap(arg)
        if found:
            return found
    return None


def _absolute(base: str, path: str) -> str:
    return os.path.normpath(os.path.join(base, path))


def _resolve_paths(spec: ContainerSpec, base: str) -> ContainerSpec:
    """``spec`` with rootfs (unless ``host``), mount sources and reload_on made absolute against ``base``."""
    update: dict[str, object] = {
        "mounts": [m.model_copy(update={"source": _absolute(base, m.source)}) for m in spec.mounts],
        "reload_on": [_absolute(base, p) for p in spec.reload_on],
    }
    if spec.rootfs != "host":
        update["rootfs"] = _absolute(base, spec.rootfs)
    if spec.seccomp not in SECCOMP_KEYWORDS:
        update["seccomp"] = _absolute(base, spec.seccomp)
    return spec.model_copy(update=update)
