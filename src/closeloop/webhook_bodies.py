"""Checking a webhook body before anything reads it: well-formed JSON or XML, nested no deeper than senders nest.

Senders post small notifications (a list of events, a SOAP envelope) a few levels deep; a body ten thousand levels
deep would exhaust the recursion of a parser, so its depth is measured first, without recursion.
"""

from __future__ import annotations

import json
import re
from typing import Any
from xml.parsers import expat

from closeloop.connector import BodyFormat

MAX_BODY_DEPTH = 32
"""The deepest nesting of arrays/objects (JSON) or elements (XML) accepted; real notifications nest under ten."""

_JSON_STRING = re.compile(r'"(?:[^"\\]|\\.)*+"', re.DOTALL)
_JSON_BRACKET = re.compile(r"[\[\]{}]")


class BadBody(ValueError):
    """A body that is not in its declared format or nests too deep; ``reason`` is short and safe to return."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def check_body(body: bytes, form: BodyFormat) -> None:
    """Raise ``BadBody`` unless ``body`` is well-formed ``form`` within ``MAX_BODY_DEPTH``."""
    if form == "json":
        parse_json(body)
    else:
        _check_xml(body)


def parse_json(body: bytes) -> Any:
    """The JSON value of ``body``, or ``BadBody`` when it is not UTF-8 JSON or nests too deep."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadBody(f"body is not UTF-8 (byte 0x{body[exc.start]:02x} at offset {exc.start})") from None
    depth = 0
    for bracket in _JSON_BRACKET.findall(_JSON_STRING.sub('""', text)):
        depth += 1 if bracket in "[{" else -1
        if depth > MAX_BODY_DEPTH:
            raise BadBody(f"body nests deeper than {MAX_BODY_DEPTH} levels")
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise BadBody(f"body is not JSON ({exc.msg} at offset {exc.pos})") from None


def _check_xml(body: bytes) -> None:
    """Well-formed XML without a DTD (entity expansion is how XML bodies blow up; SOAP forbids DTDs)."""
    parser = expat.ParserCreate()
    depth = 0

    def start(name: str, attributes: dict[str, str]) -> None:
        nonlocal depth
        depth += 1
        if depth > MAX_BODY_DEPTH:
            raise BadBody(f"body nests deeper than {MAX_BODY_DEPTH} levels")

    def end(name: str) -> None:
        nonlocal depth
        depth -= 1

    def doctype(*declaration: object) -> None:
        raise BadBody("body declares a DTD; SOAP messages have none")

    parser.StartElementHandler = start
    parser.EndElementHandler = end
    parser.StartDoctypeDeclHandler = doctype
    try:
        parser.Parse(body, True)  # noqa: FBT003 - expat's own signature: True marks the final chunk
    except expat.ExpatError as exc:
        raise BadBody(f"body is not XML ({expat.errors.messages[exc.code]} at line {exc.lineno})") from None
