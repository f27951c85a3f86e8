"""Limits on what a YAML file may cost to read: its size, its bytes, its nesting and how far aliases expand.

Configuration comes from people and from mounted volumes; a hostile or broken file must end as a problem at a
file:line:col, never as minutes of CPU, gigabytes of memory or an internal RecursionError.
"""

from __future__ import annotations

import codecs
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ruamel.yaml.composer import Composer
from ruamel.yaml.error import StreamMark
from ruamel.yaml.events import AliasEvent
from ruamel.yaml.nodes import Node

MAX_FILE_BYTES = 256 * 1024
"""The largest configuration or mapping file read. The shipped ones are under 3 KiB, a mapping of 500 fields about
30 KiB; the pure-Python parser reads about 100 KiB per CPU second, so the worst file costs about three seconds."""
MAX_DEPTH = 64
"""The deepest nesting of mappings and lists (aliases included). Real files nest fewer than ten levels."""
MAX_ALIAS_NODES = 10_000
"""How many values may be reached through aliases in one file: ample for sharing settings, while a
"billion laughs" file (aliases of aliases, each level multiplying the last) stops here instead of exhausting memory."""


class Refused(Exception):
    """A file the loader will not parse, with where and why (1-based line and column)."""

    def __init__(self, line: int, col: int, message: str) -> None:
        super().__init__(message)
        self.line = line
        self.col = col
        self.message = message


@dataclass(frozen=True, slots=True)
class Alias:
    """A use of an anchor (``*name``): the anchored node and where the alias itself is written."""

    name: str
    target: Node
    start_mark: StreamMark


def read_yaml_text(path: Path) -> str:
    """The text of ``path``; ``Refused`` when it is too large, binary or not UTF-8 (OSError when unreadable)."""
    with path.open("rb") as file:
        data = file.read(MAX_FILE_BYTES + 1)
    if len(data) > MAX_FILE_BYTES:
        raise Refused(1, 1, f"file is larger than {MAX_FILE_BYTES // 1024} KiB, the limit for configuration files")
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        # Editors on Windows save UTF-16 when asked for "Unicode"; its NUL bytes would read as a binary file.
        raise Refused(1, 1, "not UTF-8 text (UTF-16, by its byte-order mark); save the file as UTF-8")
    nul = data.find(b"\0")
    if nul >= 0:
        raise Refused(*_line_col(data, nul), f"binary file, not YAML text (NUL byte at offset {nul})")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        bad = data[exc.start]
        raise Refused(*_line_col(data, exc.start), f"not UTF-8 text (byte 0x{bad:02x} at offset {exc.start})") from None


def _line_col(data: bytes, offset: int) -> tuple[int, int]:
    """1-based line and column (in bytes) of ``offset``."""
    line_start = data.rfind(b"\n", 0, offset) + 1
    return data.count(b"\n", 0, offset) + 1, offset - line_start + 1


class GuardedComposer(Composer):
    """ruamel's composer with a nesting cap, keeping each alias as an ``Alias`` so that its use can be checked."""

    def __init__(self, loader: Any = None) -> None:
        super().__init__(loader)
        # Redefining an anchor is valid YAML; ruamel would warn on stderr (and tests turn warnings into errors).
        self.warn_double_anchors = False
        self.nesting = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        """The next node; an alias becomes an ``Alias``, nesting past ``MAX_DEPTH`` is refused."""
        event = self.parser.peek_event()
        if isinstance(event, AliasEvent):
            return Alias(str(event.anchor), super().compose_node(parent, index), event.start_mark)
        self.nesting += 1
        try:
            if self.nesting > MAX_DEPTH:
                mark = event.start_mark
                raise Refused(mark.line + 1, mark.column + 1, too_deep())
            return super().compose_node(parent, index)
        finally:
            self.nesting -= 1


def too_deep() -> str:
    """The message for nesting past ``MAX_DEPTH``."""
    return f"nested more than {MAX_DEPTH} levels deep (mappings and lists, aliases included)"


def too_many_aliased() -> str:
    """The message for aliases that expand past ``MAX_ALIAS_NODES``."""
    return (
        f"aliases expand to more than {MAX_ALIAS_NODES:,} values (an alias of aliases multiplies them); "
        "write the values out or share less"
    )
