"""YAML documents as nodes, and Python values built from them with each node's line and column.

PyYAML's composer gives the nodes (libyaml's parser when present); our resolver tags every plain
scalar :data:`~.yaml_rules.PLAIN_TAG`, so that :class:`Builder` reads it by the YAML 1.2 core
rules (:mod:`.yaml_rules`) and reports ambiguous ones, tags, merge keys, non-text and duplicate
keys where they are. The builder remembers each node's value: :meth:`Builder.locate` follows
pydantic's error locations back to nodes (an error inside an aliased value is reported where
the anchor is).
"""

from __future__ import annotations

from dataclasses import dataclass

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from .messages import EXPECTED, Loc, field_name
from .model import ContainerSpec
from .yaml_rules import MAP_TAG, PLAIN_TAG, SEQ_TAG, STR_TAG, ambiguity, core_value, short_tag


class _Resolve:
    """Resolver mix-in: plain scalars get :data:`PLAIN_TAG` (we read them), everything else the
    default tags; explicit tags stay as written."""

    def resolve(self, kind, value, implicit):  # noqa: ANN001 - PyYAML's signature
        if kind is ScalarNode and implicit[0]:
            return PLAIN_TAG
        return yaml.resolver.BaseResolver.resolve(self, kind, value, implicit)


if getattr(yaml, "__with_libyaml__", False):
    from yaml.cyaml import CParser

    class YamlLoader(CParser, _Resolve, yaml.resolver.BaseResolver):
        def __init__(self, stream: str) -> None:
            CParser.__init__(self, stream)
            yaml.resolver.BaseResolver.__init__(self)
else:  # pragma: no cover - PyYAML without libyaml
    from yaml.composer import Composer
    from yaml.parser import Parser
    from yaml.reader import Reader
    from yaml.scanner import Scanner

    class YamlLoader(Reader, Scanner, Parser, Composer, _Resolve, yaml.resolver.BaseResolver):  # type: ignore[no-redef]
        def __init__(self, stream: str) -> None:
            Reader.__init__(self, stream)
            Scanner.__init__(self)
            Parser.__init__(self)
            Composer.__init__(self)
            yaml.resolver.BaseResolver.__init__(self)


def line_col(text: str, index: int) -> tuple[int, int]:
    """1-based line and column of character ``index`` of ``text``."""
    line = text.count("\n", 0, index) + 1
    return line, index - (text.rfind("\n", 0, index) + 1) + 1


@dataclass
class Doc:
    """One non-empty document being loaded (:mod:`.load`), with its builder; ``data``: its values,
    ``spec``: the validated model (None until valid)."""

    file: str  # as displayed in errors
    source: str  # absolute path
    base: str  # directory that relative paths resolve against
    order: int  # file order, for sorting errors
    root: Node
    builder: Builder
    data: object = None
    spec: ContainerSpec | None = None


class Builder:
    """Python values from one document's nodes (YAML 1.2 core scalars); remembers each node's
    value, so that :meth:`locate` can follow pydantic's error locations back to nodes."""

    def __init__(self, loader, file: str) -> None:  # noqa: ANN001 - load._Loader (its error())
        self.loader = loader
        self.file = file
        self.values: dict[int, object] = {}
        self.active: set[int] = set()
        self.bad: set[int] = set()  # nodes already reported (their errors from validation are dropped)

    def error(self, node: Node, loc: Loc, message: str) -> None:
        self.bad.add(id(node))
        self.loader.error(self.file, *pos(node), field_name(loc), message)

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
                self.check_tag(node, loc, SEQ_TAG)
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
            self.error(node, loc, f"the tag {short_tag(node.tag)} is not supported (write the value without it)")

    def scalar(self, node: ScalarNode, loc: Loc) -> object:
        if node.tag == PLAIN_TAG:
            problem = ambiguity(node.value)
            if problem:
                self.error(node, loc, problem)
                return node.value
            return core_value(node.value)
        if node.tag != STR_TAG:
            self.error(node, loc, f"the tag {short_tag(node.tag)} is not supported (quote the value or write it "
                                  "without a tag)")
        return node.value

    def mapping(self, node: MappingNode, loc: Loc) -> dict[object, object]:
        self.check_tag(node, loc, MAP_TAG)
        out: dict[object, object] = {}
        first: dict[str, Node] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, ScalarNode):
                self.error(key_node, loc, "a key must be a plain value, not a list or mapping")
                continue
            if key_node.tag == PLAIN_TAG and key_node.value == "<<":
                self.error(key_node, loc, "merge keys (<<) are not supported: write the keys out")
                continue
            key = self.value(key_node, loc + (key_node.value,))
            if id(key_node) in self.bad:
                continue  # reported (an ambiguous scalar, a tag)
            if not isinstance(key, str):  # every mapping of a spec has text keys (fields, variables, labels)
                hint = f': quote it ("{key_node.value}")' if key is not None else ""
                self.error(key_node, loc + (key_node.value,),
                           f"a key must be a string, got {describe_node(key_node, key)}{hint}")
                continue
            if key in first:
                line, col = pos(first[key])
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


def pos(node: Node) -> tuple[int, int]:
    """1-based ``(line, column)`` where ``node`` starts."""
    return node.start_mark.line + 1, node.start_mark.column + 1


def got(e: dict, node: Node, builder: Builder) -> str:
    """What was given, for type errors; for a plain non-string scalar where a string is meant, a hint to quote."""
    if not (e["type"] in EXPECTED or e["type"] == "literal_error"):
        return ""
    value = builder.values.get(id(node))
    got = f", got {describe_node(node, value)}"
    if e["type"] == "string_type" and isinstance(node, ScalarNode) and node.tag == PLAIN_TAG and value is not None:
        got += f': quote it ("{node.value}") if it is meant as text'
    return got


def describe_node(node: Node, value: object) -> str:
    """What a node holds in words, as written (``the number 010``, ``nothing (an empty value)``)."""
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
