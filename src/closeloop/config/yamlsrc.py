"""YAML loading that keeps the 1-based line and column of every key and value, and reports duplicate keys."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from closeloop.config.problems import Problems

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
    """Read and parse ``path``; syntax errors and duplicate keys become problems, never exceptions."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        problems.add(path, 1, 1, f"cannot read file: {exc.strerror or exc}")
        return None
    try:
        root = _compose(text)
    except MarkedYAMLError as exc:
        _syntax_problem(path, exc, problems)
        return None
    except YAMLError as exc:
        problems.add(path, 1, 1, f"YAML syntax error: {exc}")
        return None
    source = Source(path=path, data=None)
    if root is not None:
        source.values[()] = Mark.of(root)
        source.data = _build(root, (), source, problems)
    return source


def _compose(text: str) -> Node | None:
    """The node tree of ``text``, with positions.

    The round-trip parser keeps comments, and on some inputs (a plain scalar after a key that carries a comment)
    it stops on its own bookkeeping with NotImplementedError; the safe parser has no comments to trip on.
    """
    try:
        return YAML(typ="rt").compose(text)  # type: ignore[no-any-return]
    except NotImplementedError:
        return YAML(typ="safe", pure=True).compose(text)  # type: ignore[no-any-return]


def _syntax_problem(path: Path, exc: MarkedYAMLError, problems: Problems) -> None:
    mark = exc.problem_mark or exc.context_mark
    line, col = (mark.line + 1, mark.column + 1) if mark is not None else (1, 1)
    what = exc.problem or "invalid YAML"
    context = f" ({exc.context})" if exc.context else ""
    problems.add(path, line, col, f"YAML syntax error: {what}{context}")


def _build(node: Node, loc: Loc, source: Source, problems: Problems) -> Any:
    if isinstance(node, MappingNode):
        return _build_mapping(node, loc, source, problems)
    if isinstance(node, SequenceNode):
        items: list[Any] = []
        for index, item in enumerate(node.value):
            source.keys[(*loc, index)] = source.values[(*loc, index)] = Mark.of(item)
            items.append(_build(item, (*loc, index), source, problems))
        return items
    assert isinstance(node, ScalarNode)
    return scalar(node)


def _build_mapping(node: MappingNode, loc: Loc, source: Source, problems: Problems) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key_node, value_node in node.value:
        # Keys are names (fields, systems, native values such as stage ids): always their text as written.
        key = str(key_node.value) if isinstance(key_node, ScalarNode) else "<complex key>"
        if key in result:
            first = source.keys[(*loc, key)]
            problems.add(
                source.path,
                *_line_col(key_node),
                f"duplicate key {key!r} (first defined at line {first.line}); each key may appear once",
            )
            continue
        source.keys[(*loc, key)] = Mark.of(key_node)
        source.values[(*loc, key)] = Mark.of(value_node)
        result[key] = _build(value_node, (*loc, key), source, problems)
    return result


def _line_col(node: Node) -> tuple[int, int]:
    mark = Mark.of(node)
    return mark.line, mark.col


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
