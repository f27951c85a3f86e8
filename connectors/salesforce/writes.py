"""sObject Collections: request bodies for up to 200 records and their per-record results."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any, TypeVar

from closeloop.model import JSONValue, VendorError, WriteOp, WriteRequest, WriteResult, WriteStatus, iso_utc

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
