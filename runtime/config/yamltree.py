"""YAML to plain data, remembering where every value came from.

PyYAML's composer gives nodes with line marks; this module turns them into dicts, lists
and scalars (SafeLoader semantics), expanding `${VAR}` in string values on the way, and
records the line of each key and value by its path (`("doors", 0, "lock")`), so that
later validation problems can point at a line.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from runtime.config.env import ExpansionError, expand

Loc = tuple[str | int, ...]

_STR = "tag:yaml.org,2002:str"
_NULL = "tag:yaml.org,2002:null"
_MAP = "tag:yaml.org,2002:map"
_SEQ = "tag:yaml.org,2002:seq"
_MERGE = "tag:yaml.org,2002:merge"
# Aliases make a small file able to describe a huge tree ("billion laughs"); no real
# config comes near this many values.
MAX_VALUES = 100_000


class TooLarge(Exception):
    pass


@dataclass
class Located:
    """A problem found while reading the tree, before any validation."""

    loc: Loc
    line: int
    message: str


@dataclass
class Tree:
    data: Any = None
    key_lines: dict[Loc, int] = field(default_factory=dict)
    value_lines: dict[Loc, int] = field(default_factory=dict)
    problems: list[Located] = field(default_factory=list)
    # Values that could not be read (an unset variable, a bad tag): they are already
    # reported, so problems that validation then finds there are mere follow-ups.
    unusable: set[Loc] = field(default_factory=set)

    def line_for(self, loc: Loc) -> int:
        """Line of the key (or list item) at `loc`, or of its nearest existing parent
        when `loc` names something absent, such as a missing key."""
        for n in range(len(loc), -1, -1):
            prefix = loc[:n]
            if prefix in self.key_lines:
                return self.key_lines[prefix]
            if prefix in self.value_lines:
                return self.value_lines[prefix]
        return 1

    def is_followup(self, loc: Loc) -> bool:
        return any(loc[: len(u)] == u for u in self.unusable)


def line_of(node: Node) -> int:
    return node.start_mark.line + 1


def build(root: Node, environ: Mapping[str, str]) -> Tree:
    """Plain data from a composed YAML document, with line numbers and problems."""
    builder = _Builder(environ)
    builder.check_duplicates(root)
    try:
        builder.tree.data = builder.value(root, ())
    except TooLarge:
        builder.tree.problems.append(
            Located((), 1, f"the document expands to more than {MAX_VALUES} values (aliases?)")
        )
    return builder.tree


class _Builder:
    def __init__(self, environ: Mapping[str, str]) -> None:
        self.environ = environ
        self.tree = Tree()
        self.constructor = yaml.constructor.SafeConstructor()
        self.resolver = yaml.resolver.Resolver()
        self.active: set[int] = set()
        self.count = 0

    def problem(self, loc: Loc, node: Node, message: str) -> None:
        self.tree.problems.append(Located(loc, line_of(node), message))

    def check_duplicates(self, node: Node, loc: Loc = (), seen: set[int] | None = None) -> None:
        # Before any merge key is flattened: a key overriding a merged one is no duplicate.
        seen = set() if seen is None else seen
        if id(node) in seen:
            return
        seen.add(id(node))
        if isinstance(node, SequenceNode):
            for i, item in enumerate(node.value):
                self.check_duplicates(item, (*loc, i), seen)
        elif isinstance(node, MappingNode):
            first: dict[tuple[str, str], int] = {}
            for key, value in node.value:
                if not isinstance(key, ScalarNode) or key.tag == _MERGE:
                    self.check_duplicates(value, loc, seen)
                    continue
                ident = (key.tag, key.value)
                if ident in first:
                    self.tree.problems.append(
                        Located(
                            (*loc, key.value),
                            line_of(key),
                            f"duplicate key {key.value!r} (first at line {first[ident]})",
                        )
                    )
                else:
                    first[ident] = line_of(key)
                self.check_duplicates(value, (*loc, key.value), seen)

    def value(self, node: Node, loc: Loc) -> Any:
        self.count += 1
        if self.count > MAX_VALUES:
            raise TooLarge
        self.tree.value_lines.setdefault(loc, line_of(node))
        if isinstance(node, ScalarNode):
            return self.scalar(node, loc)
        if id(node) in self.active:
            self.problem(loc, node, "an alias refers to itself (recursive structure)")
            return None
        self.active.add(id(node))
        try:
            if isinstance(node, SequenceNode):
                if node.tag != _SEQ:
                    self.problem(loc, node, f"unsupported tag {_short(node.tag)!r}")
                return [self.value(item, (*loc, i)) for i, item in enumerate(node.value)]
            assert isinstance(node, MappingNode)
            return self.mapping(node, loc)
        finally:
            self.active.discard(id(node))

    def mapping(self, node: MappingNode, loc: Loc) -> dict[Any, Any]:
        if node.tag != _MAP:
            self.problem(loc, node, f"unsupported tag {_short(node.tag)!r}")
        try:
            self.constructor.flatten_mapping(node)
        except yaml.constructor.ConstructorError as e:
            mark = e.problem_mark or node.start_mark
            self.tree.problems.append(Located(loc, mark.line + 1, f"bad merge (<<): {e.problem}"))
            node.value = [(k, v) for k, v in node.value if k.tag != _MERGE]
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, ScalarNode):
                self.problem(loc, key_node, "a key must be a plain name, not a list or mapping")
                continue
            key = self.construct(key_node, key_node.tag, key_node.value, loc)
            try:
                hash(key)
            except TypeError:
                self.problem(loc, key_node, f"unusable key {key_node.value!r}")
                continue
            child: Loc = (*loc, key)
            self.tree.key_lines.setdefault(child, line_of(key_node))
            out[key] = self.value(value_node, child)
        return out

    def scalar(self, node: ScalarNode, loc: Loc) -> Any:
        text, tag = node.value, node.tag
        if tag == _STR and "$" in text:
            # What the environment gives is text: a key id, app id or token made only of
            # digits (`kid: ${KID}` = 12345678) stays the string it is. Typed fields take
            # their text as pydantic does (`port: ${PORT:-9600}` validates as 9600); only
            # an empty expansion means "not set" (null), as the YAML itself would say.
            implicit = node.style is None and tag == self._implicit_tag(text)
            try:
                text = expand(text, self.environ)
            except ExpansionError as e:
                self.problem(loc, node, str(e))
                self.tree.unusable.add(loc)
                return node.value
            if implicit and self._implicit_tag(text) == _NULL:
                tag = _NULL
        return self.construct(node, tag, text, loc)

    def _implicit_tag(self, text: str) -> str:
        return self.resolver.resolve(ScalarNode, text, (True, False))

    def construct(self, node: ScalarNode, tag: str, text: str, loc: Loc) -> Any:
        rebuilt = ScalarNode(tag, text, node.start_mark, node.end_mark, node.style)
        try:
            return self.constructor.construct_object(rebuilt, deep=True)
        except yaml.constructor.ConstructorError as e:
            self.problem(loc, node, f"cannot read value {text!r}: {e.problem}")
            self.tree.unusable.add(loc)
        except Exception as e:
            # PyYAML's constructors fail in assorted ways on explicitly tagged or
            # impossible values (`!!timestamp x`, the date 2024-13-45).
            self.problem(loc, node, f"cannot read value {text!r} as {_short(tag)}: {e}")
            self.tree.unusable.add(loc)
        return text


def _short(tag: str) -> str:
    return tag.replace("tag:yaml.org,2002:", "!!")
