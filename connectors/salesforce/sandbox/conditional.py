"""Conditional request headers on sObject Rows (``If-Unmodified-Since``), as Salesforce applies them.

Salesforce compares ``If-Unmodified-Since`` with the record's LastModifiedDate, which it keeps in whole seconds;
a PATCH whose record changed after the given time answers 412 and changes nothing, an unparseable header 400.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

from .org import SfError

HEADER = "If-Unmodified-Since"


class PreconditionFailed(Exception):
    """The record changed after the time the request names (412), or the header is not a date (400)."""

    def __init__(self, status: int, error: SfError) -> None:
        super().__init__(error.message)
        self.status = status
        self.error = error


def header(headers: Mapping[str, str]) -> str | None:
    """The request's ``If-Unmodified-Since``, whatever its case."""
    for name, value in headers.items():
        if name.lower() == HEADER.lower():
            return value
    return None


def check(value: str | None, fields: Mapping[str, Any]) -> None:
    """Raise PreconditionFailed unless the record is unmodified since ``value`` (no header: no condition)."""
    if value is None:
        return
    try:
        since = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        raise PreconditionFailed(400, SfError("INVALID_HEADER_TYPE", f"{HEADER}: not an HTTP date: {value}")) from None
    if since.tzinfo is None:
        since = since.replace(tzinfo=UTC)
    modified = fields.get("LastModifiedDate")
    if not isinstance(modified, datetime):
        return
    if int(modified.timestamp()) > int(since.timestamp()):
        raise PreconditionFailed(412, SfError("PRECONDITION_FAILED", f"The record was modified after {value}", ()))
