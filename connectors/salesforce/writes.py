"""sObject Collections: request bodies for up to 200 records and their per-record results."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, date, datetime
from decimal import Decimal
from email.utils import format_datetime
from typing import Any, TypeVar

from closeloop.model import (
    MODIFIED_SINCE_READ,
    JSONValue,
    VendorError,
    WriteOp,
    WriteRequest,
    WriteResult,
    WriteStatus,
    iso_utc,
)

COLLECTION_MAX = 200
# Per-record codes that may pass on a later attempt; everything else is the record's own fault.
RETRYABLE_CODES = frozenset(
    {"UNABLE_TO_LOCK_ROW", "REQUEST_RUNNING_TOO_LONG", "SERVER_UNAVAILABLE", "ALL_OR_NONE_OPERATION_ROLLED_BACK"}
)
T = TypeVar("T")


def chunks(items: Sequence[T], size: int = COLLECTION_MAX) -> Iterator[Sequence[T]]:
    """``items`` in slices of at most ``size``."""
    for start in range(0, len(items), size):
        yield items[start : start + size]


def jsonable(value: JSONValue) -> JSONValue:
    """A native value as Salesforce's JSON takes it (Decimal as a number, datetimes in UTC)."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, datetime):
        return iso_utc(value)
    if isinstance(value, date):
        return value.isoformat()
    return value


def record_body(obj: str, request: WriteRequest) -> dict[str, Any]:
    """One collection record: ``attributes.type``, the fields, and ``Id`` for an update."""
    body: dict[str, Any] = {"attributes": {"type": obj}}
    body.update({name: jsonable(value) for name, value in request.fields.items()})
    if request.op is WriteOp.UPDATE:
        body["Id"] = request.native_id
    return body


def vendor_error(entry: Mapping[str, Any]) -> VendorError:
    """A collection error ``{statusCode, message, fields}`` (or an sObject error ``{errorCode, ...}``)."""
    code = str(entry.get("statusCode") or entry.get("errorCode") or "UNKNOWN_EXCEPTION")
    return VendorError(
        code=code,
        message=str(entry.get("message") or code),
        retryable=code in RETRYABLE_CODES,
        fields=tuple(str(f) for f in entry.get("fields") or ()),
    )


def write_result(request: WriteRequest, entry: Mapping[str, Any]) -> WriteResult:
    """One collection result for ``request``."""
    if not entry.get("success"):
        errors = entry.get("errors") or [{"statusCode": "UNKNOWN_EXCEPTION", "message": "no result"}]
        return WriteResult.failed(request.ref, vendor_error(errors[0]))
    if request.op is WriteOp.DELETE:
        status = WriteStatus.DELETED
    elif request.op is WriteOp.CREATE or (request.op is WriteOp.UPSERT and entry.get("created")):
        status = WriteStatus.CREATED
    else:
        status = WriteStatus.UPDATED
    return WriteResult(ref=request.ref, status=status, native_id=entry.get("id") or request.native_id)


def whole_call_failure(body_text: str) -> VendorError:
    """The error of a refused collection call (e.g. a key that is not an external id), for every record."""
    try:
        payload = json.loads(body_text)
    except json.JSONDecodeError:
        return VendorError("HTTP_ERROR", body_text[:500] or "refused", retryable=False)
    if isinstance(payload, list) and payload and isinstance(payload[0], Mapping):
        return vendor_error(payload[0])
    return VendorError("HTTP_ERROR", body_text[:500], retryable=False)


COMPOSITE_MAX = 25
"""Subrequests per Composite call; the call counts as one API request however many it carries."""


def http_date(moment: datetime) -> str:
    """``If-Unmodified-Since``'s format (RFC 9110 IMF-fixdate, whole seconds, GMT)."""
    return format_datetime(moment.astimezone(UTC).replace(microsecond=0), usegmt=True)


def conditional_update(api_path: str, obj: str, index: int, request: WriteRequest) -> dict[str, Any]:
    """One Composite subrequest: PATCH the record only if it is unchanged since closeloop read it.

    ``If-Unmodified-Since`` is compared with the record's LastModifiedDate, to the second: an edit in the same
    second as the version closeloop read cannot be told apart (Salesforce keeps whole seconds).
    """
    assert request.unmodified_since is not None
    assert request.native_id is not None
    return {
        "method": "PATCH",
        "url": f"{api_path}/sobjects/{obj}/{request.native_id}",
        "referenceId": f"r{index}",
        "httpHeaders": {"If-Unmodified-Since": http_date(request.unmodified_since)},
        "body": {name: jsonable(value) for name, value in request.fields.items()},
    }


def conditional_result(request: WriteRequest, entry: Mapping[str, Any]) -> WriteResult:
    """One Composite subrequest result: 204 updated, 412 changed since the read, else the error body's reason."""
    status = int(entry.get("httpStatusCode") or 500)
    if 200 <= status < 300:
        return WriteResult(ref=request.ref, status=WriteStatus.UPDATED, native_id=request.native_id)
    if status == 412:
        since = iso_utc(request.unmodified_since) if request.unmodified_since else "the read"
        error = VendorError(MODIFIED_SINCE_READ, f"the record changed in Salesforce after {since}", retryable=True)
        return WriteResult.failed(request.ref, error)
    body = entry.get("body")
    first = body[0] if isinstance(body, list) and body and isinstance(body[0], Mapping) else {}
    error = vendor_error(first or {"errorCode": f"HTTP_{status}", "message": f"subrequest answered {status}"})
    return WriteResult.failed(request.ref, error)
