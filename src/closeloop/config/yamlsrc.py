"""YAML loading that keeps the 1-based line and column of every key and value, and reports duplicate keys."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from ruamel.yaml.reader import ReaderError

from closeloop.config.problems import Problems
from closeloop.config.yamlguard import (
    MAX_ALIAS_NODES,
    MAX_DEPTH,
    Alias,
    GuardedComposer,
    Refused,
    read_yaml_text,
    too_deep,
    too_many_aliased,
)

Loc = tuple[str | int, ...]
"""Where a value sits in a document: keys and list indexes from the root."""

_TAG = "tag:yaml.org,2002:"


@dataclass(frozen=True, slots=True)
class Mark:
    """A 1-based line and column in a file."""

    line: int
    col: int

    @classmethod
    def of(cls, node: Node) -> Mark:
        """The start of a ruamel node."""
        return cls(node.start_mark.line + 1, node.start_mark.column + 1)


@dataclass
class Source:
    """A loaded YAML file: its data as plain Python values and the position of every key and value."""

    path: Path
    data: Any
    keys: dict[Loc, Mark] = field(default_factory=dict)
    values: dict[Loc, Mark] = field(default_factory=dict)

    def at(self, loc: Sequence[str | int]) -> Mark:
        """The position of the value at ``loc``, or of its deepest known ancestor."""
        here = tuple(loc)
        while here and here not in self.values:
            here = here[:-1]
        return self.values.get(here, Mark(1, 1))

    def key_at(self, loc: Sequence[str | int]) -> Mark:
        """The position of the key that names ``loc`` (list items: the item), else as ``at``."""
        here = tuple(loc)
        if here in self.keys:
            return self.keys[here]
        return self.at(here)

    def problem(self, problems: Problems, loc: Sequence[str | int], message: str, *, key: bool = False) -> None:
        """Record a problem at the value (or, with ``key``, the key) at ``loc``."""
        mark = self.key_at(loc) if key else self.at(loc)
        problems.add(self.path, mark.line, mark.col, message)


def load_source(path: Path, problems: Problems) -> Source | None:
    """Read and parse ``path``; syntax errors, duplicate keys and breaches of the limits become problems."""
    try:
        text = read_yaml_text(path)
        root = _compose(text)
        source = Source(path=path, data=None)
        if root is not None:
            source.values[()] = Mark.of(root)
            source.data = _Builder(source, problems).build(root, ())
    except OSError as exc:
        problems.add(path, 1, 1, f"cannot read file: {exc.strerror or exc}")
        return None
    except Refused as exc:
        problems.add(path, exc.line, exc.col, exc.message)
        return None
    except ReaderError as exc:
        problems.add(path, *_text_line_col(text, exc.position), _unprintable(exc))
        return None
    except MarkedYAMLError as exc:
        _syntax_problem(path, exc, problems)
        return None
    except YAMLError as exc:
        problems.add(path, 1, 1, f"YAML syntax error: {exc}")
        return None
    return source


def _compose(text: str) -> Node | None:
    """The node tree of ``text``, with positions and with aliases kept as ``Alias``.

    The round-trip parser keeps comments, and on some inputs (a plain scalar after a key that carries a comment)
    it stops on its own bookkeeping with NotImplementedError; the safe parser has no comments to trip on.
    """
    try:
        return _parser("rt").compose(text)  # type: ignore[no-any-return]
    except NotImplementedError:
        return _parser("safe").compose(text)  # type: ignore[no-any-return]


def _parser(typ: str) -> YAML:
    yaml = YAML(typ=typ, pure=True)
    yaml.Composer = GuardedComposer
    return yaml


def _syntax_problem(path: Path, exc: MarkedYAMLError, problems: Problems) -> None:
    mark = exc.problem_mark or exc.context_mark
    line, col = (mark.line + 1, mark.column + 1) if mark is not None else (1, 1)
    what = exc.problem or "invalid YAML"
    context = f" ({exc.context})" if exc.context else ""
    problems.add(path, line, col, f"YAML syntax error: {what}{context}")


def _text_line_col(text: str, position: int) -> tuple[int, int]:
    line_start = text.rfind("\n", 0, position) + 1
    return text.count("\n", 0, position) + 1, position - line_start + 1


def _unprintable(exc: ReaderError) -> str:
    character = exc.character if isinstance(exc.character, str) else chr(exc.character)
    return f"not YAML text: control character #x{ord(character):04x} is not allowed"


@dataclass
class _Builder:
    """Turns a node tree into plain values, recording positions; checks each alias for cycles and expansion."""

    source: Source
    problems: Problems
    path: list[int] = field(default_factory=list)
    """ids of the nodes being built, root first: an alias to one of them would never end."""
    aliased: int = 0
    """Values built so far through aliases."""
    inside_alias: int = 0

    def build(self, node: Node | Alias, loc: Loc) -> Any:
        """The plain value of ``node`` found at ``loc``."""
        if isinstance(node, Alias):
            return self.alias(node, loc)
        if self.inside_alias:
            self.aliased += 1
            if self.aliased > MAX_ALIAS_NODES:
                raise Refused(*_line_col(node), too_many_aliased())
        if len(self.path) >= MAX_DEPTH:
            raise Refused(*_line_col(node), too_deep())
        self.path.append(id(node))
        try:
            return self.build_inside(node, loc)
        finally:
            self.path.pop()

    def alias(self, alias: Alias, loc: Loc) -> Any:
        if id(alias.target) in self.path:
            mark = alias.start_mark
            self.problems.add(
                self.source.path,
                mark.line + 1,
                mark.column + 1,
                f"alias *{alias.name} refers to a value that contains it; a recursive alias never ends",
            )
            return None
        self.inside_alias += 1
        try:
            return self.build(alias.target, loc)
        except Refused as exc:
            # Where the alias is used says more than where its anchor is defined.
            mark = alias.start_mark
            raise Refused(mark.line + 1, mark.column + 1, exc.message) from None
        finally:
            self.inside_alias -= 1

    def build_inside(self, node: Node, loc: Loc) -> Any:
        if isinstance(node, MappingNode):
            return self.mapping(node, loc)
        if isinstance(node, SequenceNode):
            items: list[Any] = []
            for index, item in enumerate(node.value):
                self.source.keys[(*loc, index)] = self.source.values[(*loc, index)] = _mark(item)
                items.append(self.build(item, (*loc, index)))
            return items
        assert isinstance(node, ScalarNode)
        return scalar(node)

    def mapping(self, node: MappingNode, loc: Loc) -> dict[str, Any]:
        source, result = self.source, {}
        for key_node, value_node in node.value:
            # Keys are names (fields, systems, native values such as stage ids): always their text as written.
            named = key_node.target if isinstance(key_node, Alias) else key_node
            key = str(named.value) if isinstance(named, ScalarNode) else "<complex key>"
            if key in result:
                first = source.keys[(*loc, key)]
                self.problems.add(
                    source.path,
                    *_line_col(key_node),
                    f"duplicate key {key!r} (first defined at line {first.line}); each key may appear once",
                )
                continue
            source.keys[(*loc, key)] = _mark(key_node)
            source.values[(*loc, key)] = _mark(value_node)
            result[key] = self.build(value_node, (*loc, key))
        return result


def _mark(node: Node | Alias) -> Mark:
    """Where a value is written: for an alias, the alias itself."""
    return Mark(*_line_col(node))


def _line_col(node: Node | Alias) -> tuple[int, int]:
    return node.start_mark.line + 1, node.start_mark.column + 1


def scalar(node: ScalarNode) -> Any:
    """A plain Python value for a scalar: str, int, float, bool or None (timestamps stay text)."""
    text: str = node.value
    tag: str = node.tag if isinstance(node.tag, str) else str(node.tag)
    if node.style is not None or not tag.startswith(_TAG):
        return text
    kind = tag.removeprefix(_TAG)
    if kind == "null":
        return None
    if kind == "bool":
        return text.lower() == "true"
    if kind == "int":
        try:
            return int(text.replace("_", ""), 0)
        except ValueError:
            return text
    if kind == "float":
        try:
            return float(text.replace("_", ""))
        except ValueError:
            return text
    return text
