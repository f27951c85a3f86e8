"""Writing HubSpot: batch create/update/upsert/archive of 100 inputs, results mapped back by trace id."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from closeloop.http import HttpError
from closeloop.model import Association, VendorError, WriteOp, WriteRequest, WriteResult, WriteStatus, parse_utc

from .api import JSON, MAX_BATCH, HubSpotApi

# Per-record categories that may pass on a later attempt; everything else needs a changed record.
RETRYABLE_CATEGORIES = frozenset({"RATE_LIMITS", "INTERNAL_ERROR", "LOCKED", "TIMEOUT", "SERVICE_UNAVAILABLE"})
ACTIONS = {WriteOp.CREATE: "create", WriteOp.UPDATE: "update", WriteOp.UPSERT: "upsert", WriteOp.DELETE: "archive"}


def vendor_error(error: Mapping[str, Any], *, status: int | None = None) -> VendorError:
    """A HubSpot error (a batch ``errors[]`` entry or a whole-request body) as a VendorError."""
    details = [d for d in error.get("errors") or [] if isinstance(d, dict)]
    category = str(error.get("category") or "ERROR")
    code = str(details[0].get("code")) if details and details[0].get("code") else category
    fields = [str(d["in"]) for d in details if d.get("in")]
    fields += _fields_in_message(str(error.get("message", "")))
    retryable = category in RETRYABLE_CATEGORIES or (status is not None and (status == 429 or status >= 500))
    return VendorError(code, str(error.get("message") or category), retryable, tuple(dict.fromkeys(fields)))


def _fields_in_message(message: str) -> list[str]:
    # HubSpot puts invalid property details as a JSON list inside the message text.
    marker = message.find("[")
    if "Property values were not valid" not in message or marker < 0:
        return []
    try:
        details = json.loads(message[marker:])
    except json.JSONDecodeError:
        return []
    return [str(d["name"]) for d in details if isinstance(d, dict) and d.get("name")]


def _trace_ids(error: Mapping[str, Any]) -> list[str]:
    context = error.get("context") or {}
    return [str(t) for t in context.get("objectWriteTraceId") or []]


def chunks(requests: Sequence[tuple[int, WriteRequest]], key: str | None) -> list[list[tuple[int, WriteRequest]]]:
    """Batches of at most 100 in which no id/key value repeats (HubSpot refuses duplicate ids in one batch)."""
    batches: list[list[tuple[int, WriteRequest]]] = []
    open_batches: list[tuple[list[tuple[int, WriteRequest]], set[str]]] = []  # batches with room left
    for position, request in requests:
        value = _identity(request, key).lower()
        target = next((b for b in open_batches if not value or value not in b[1]), None)
        if target is None:
            target = ([], set())
            batches.append(target[0])
            open_batches.append(target)
        target[0].append((position, request))
        target[1].add(value)
        if len(target[0]) == MAX_BATCH:
            open_batches.remove(target)
    return batches


def _identity(request: WriteRequest, key: str | None) -> str:
    if request.op is WriteOp.UPSERT and key:
        return str(request.fields.get(key, ""))
    return request.native_id or ""


class Writer:
    """Batch writes of one object; one WriteResult per request, in request order."""

    def __init__(self, api: HubSpotApi, obj: str) -> None:
        self.api = api
        self.obj = obj

    async def write(self, batch: Sequence[WriteRequest]) -> list[WriteResult]:
        """Group by operation (and upsert key), send in batches of 100, answer in input order."""
        results: dict[int, WriteResult] = {}
        groups: dict[tuple[WriteOp, str | None], list[tuple[int, WriteRequest]]] = {}
        for position, request in enumerate(batch):
            groups.setdefault((request.op, request.upsert_key), []).append((position, request))
        for (op, key), members in groups.items():
            for chunk in chunks(members, key):
                results.update(await self._send(op, key, chunk))
        return [results[i] for i in range(len(batch))]

    async def _send(
        self, op: WriteOp, key: str | None, chunk: list[tuple[int, WriteRequest]]
    ) -> dict[int, WriteResult]:
        path = f"/crm/v3/objects/{self.obj}/batch/{ACTIONS[op]}"
        inputs = [_input(op, key, request, str(position)) for position, request in chunk]
        try:
            # A create is not idempotent; update, upsert and archive are safe to repeat.
            answer = await self.api.post(path, {"inputs": inputs}, idempotent=op is not WriteOp.CREATE)
        except HttpError as exc:
            if exc.status >= 500 or exc.status in (401, 403, 429):
                raise
            return await self._refused(op, key, chunk, exc)
        if op is WriteOp.DELETE:
            return {p: WriteResult(r.ref, WriteStatus.DELETED, native_id=r.native_id) for p, r in chunk}
        return _map_results(op, chunk, answer)

    async def _refused(
        self, op: WriteOp, key: str | None, chunk: list[tuple[int, WriteRequest]], exc: HttpError
    ) -> dict[int, WriteResult]:
        """A whole batch refused: HubSpot rejects some batches for one bad input, so halve those to find it."""
        try:
            body = json.loads(exc.body_text)
        except json.JSONDecodeError:
            body = None
        if not isinstance(body, dict):
            body = {"category": f"HTTP_{exc.status}", "message": exc.body_text or f"HTTP {exc.status}"}
        if len(chunk) > 1 and _fields_in_message(str(body.get("message", ""))):
            middle = len(chunk) // 2
            return {**await self._send(op, key, chunk[:middle]), **await self._send(op, key, chunk[middle:])}
        error = vendor_error(body, status=exc.status)
        return {position: WriteResult.failed(request.ref, error) for position, request in chunk}


def _input(op: WriteOp, key: str | None, request: WriteRequest, trace: str) -> JSON:
    properties = {name: _text(value) for name, value in request.fields.items()}
    if op is WriteOp.DELETE:
        return {"id": request.native_id}
    if op is WriteOp.CREATE:
        return {"properties": properties, "objectWriteTraceId": trace}
    if op is WriteOp.UPDATE:
        return {"id": request.native_id, "properties": properties, "objectWriteTraceId": trace}
    assert key is not None
    value = properties.pop(key)
    return {"id": value, "idProperty": key, "properties": properties, "objectWriteTraceId": trace}


def _text(value: Any) -> Any:
    # HubSpot takes every property value as a string; None clears a property.
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return value if isinstance(value, str) else str(value)


def _map_results(op: WriteOp, chunk: list[tuple[int, WriteRequest]], answer: JSON) -> dict[int, WriteResult]:
    """Results and errors come back in no particular order; ``objectWriteTraceId`` ties each to its input."""
    by_trace = {str(p): (p, r) for p, r in chunk}
    mapped: dict[int, WriteResult] = {}
    for item in answer.get("results", []):
        found = by_trace.get(str(item.get("objectWriteTraceId")))
        if found is None:
            continue
        position, request = found
        created = item.get("new", False) if op is WriteOp.UPSERT else op is WriteOp.CREATE
        stamp = item.get("updatedAt")
        mapped[position] = WriteResult(
            request.ref,
            WriteStatus.CREATED if created else WriteStatus.UPDATED,
            native_id=str(item["id"]),
            modified_at=parse_utc(stamp) if stamp else None,
        )
    for error in answer.get("errors", []):
        for trace in _trace_ids(error):
            if trace in by_trace and by_trace[trace][0] not in mapped:
                position, request = by_trace[trace]
                mapped[position] = WriteResult.failed(request.ref, vendor_error(error))
    for position, request in chunk:
        if position not in mapped:  # neither a result nor an error names it: the outcome is unknown
            unknown = VendorError("NO_RESULT", "HubSpot returned no result for this input", retryable=True)
            mapped[position] = WriteResult.failed(request.ref, unknown)
    return mapped


async def associate(api: HubSpotApi, obj: str, links: Sequence[Association]) -> list[WriteResult]:
    """Default (unlabelled) associations from ``obj`` records to their counterparts, in input order."""
    other = "contacts" if obj == "deals" else "deals"
    results: list[WriteResult] = []
    for start in range(0, len(links), MAX_BATCH):
        chunk = links[start : start + MAX_BATCH]
        inputs = [{"from": {"id": link.from_id}, "to": {"id": link.to_id}} for link in chunk]
        path = f"/crm/v4/associations/{obj}/{other}/batch/associate/default"
        answer = await api.post(path, {"inputs": inputs}, idempotent=True)
        made = {(str(r["from"]["id"]), str(r["to"]["id"])) for r in answer.get("results", [])}
        errors = [e for e in answer.get("errors", []) if isinstance(e, dict)]
        for link in chunk:
            ref = f"{link.from_id}->{link.to_id}"
            if (link.from_id, link.to_id) in made:
                results.append(WriteResult(ref, WriteStatus.UPDATED, native_id=link.from_id))
                continue
            error = next((e for e in errors if {link.from_id, link.to_id} & set(_ids(e))), errors[0] if errors else {})
            results.append(WriteResult.failed(ref, vendor_error(error or {"category": "NO_RESULT"})))
    return results


def _ids(error: Mapping[str, Any]) -> list[str]:
    context = error.get("context") or {}
    return [str(i) for i in context.get("ids") or []]
