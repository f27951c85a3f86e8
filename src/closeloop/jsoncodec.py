"""JSON text as closeloop stores and compares it: compact, keys sorted, UTF-8 as is.

One encoding for every layer (the store's JSON columns, the engine's provenance, the loop's touch details), so the
same value always gives the same text; it sits beside :mod:`closeloop.model` so no layer reaches into another's
private module for it.
"""

from __future__ import annotations

from typing import Any

import orjson

from closeloop.model import JSONValue


def dump_json(value: JSONValue) -> str:
    """Encode a JSON value compactly and deterministically (keys sorted, UTF-8 as is)."""
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS).decode()


def load_json(text: str | None) -> Any:
    """Decode a JSON column (NULL reads as an empty object)."""
    return {} if text is None else orjson.loads(text)
