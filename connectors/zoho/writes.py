"""Zoho writes: requests grouped by endpoint in calls of 100, per-record ``data[]`` results mapped back in order."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from decimal import Decimal
from typing import Any

from closeloop.model import VendorError, WriteOp, WriteRequest, WriteResult, WriteStatus, parse_utc

WRITE_LIMIT = 100
"""Records per insert, update, upsert or delete call."""
RETRYABLE_CODES = frozenset({"RECORD_LOCKED", "INTERNAL_ERROR", "TOO_MANY_REQUESTS"})
"""Per-record codes that may pass on their own (a record under merge or approval is locked for a while)."""


def chunks(items: Sequence[Any], size: int = WRITE_LIMIT) -> Iterator[Sequence[Any]]:
    """``items`` in slices of at most ``size``."""
    for start in range(0, len(items), size):
        yield items[start : start + size]


def group_key(request: WriteRequest) -> tuple[WriteOp, str | None]:
    """Requests sharing an endpoint and (for upserts) a duplicate-check field go in one call."""
    return (request.op, request.upsert_key if request.op is WriteOp.UPSERT else None)


def jsonable(value: Any) -> Any:
    """Money and other Decimals as JSON numbers."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, Mapping):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    return value


OWNER_FIELDS = frozenset({"Owner"})
"""User lookups written as ``{"id": ...}``: closeloop's owner mapping hands over the bare user id."""


def record_body(request: WriteRequest) -> dict[str, Any]:
    """One ``data[]`` entry: the fields (a record owner as ``{"id": ...}``), plus the id for updates."""
    body = {
        name: {"id": value} if name in OWNER_FIELDS and isinstance(value, str) else jsonable(value)
        for name, value in request.fields.items()
    }
    if request.op is WriteOp.UPDATE and request.native_id:
        body["id"] = request.native_id
    return body


def vendor_error(entry: Mapping[str, Any]) -> VendorError:
    """A failed ``data[]`` entry with Zoho's own code, message and field."""
    details = entry.get("details") or {}
    field = details.get("api_name") if isinstance(details, Mapping) else None
    message = str(entry.get("message") or entry.get("code") or "rejected")
    if isinstance(details, Mapping) and details.get("expected_data_type"):
        message += f" (expected {details['expected_data_type']})"
    code = str(entry.get("code") or "UNKNOWN")
    return VendorError(code, message, retryable=code in RETRYABLE_CODES, fields=(str(field),) if field else ())


def write_result(request: WriteRequest, entry: Mapping[str, Any]) -> WriteResult:
    """The result of one request from its ``data[]`` entry."""
    if entry.get("status") != "success":
        return WriteResult.failed(request.ref, vendor_error(entry))
    details = entry.get("details") or {}
    modified = details.get("Modified_Time")
    if request.op is WriteOp.DELETE:
        status = WriteStatus.DELETED
    elif request.op is WriteOp.UPDATE or entry.get("action") == "update":
        status = WriteStatus.UPDATED
    else:
        status = WriteStatus.CREATED
    return WriteResult(
        ref=request.ref,
        status=status,
        native_id=str(details.get("id") or request.native_id or "") or None,
        modified_at=parse_utc(str(modified)) if modified else None,
    )


def whole_call_failure(requests: Sequence[WriteRequest], body: Mapping[str, Any]) -> list[WriteResult]:
    """Every request of a call Zoho refused as a whole (one error body, no ``data[]``)."""
    error = vendor_error(body)
    return [WriteResult.failed(r.ref, error) for r in requests]
