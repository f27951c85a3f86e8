"""Lead writes: POST /rest/v1/leads.json per action and lookup field, 300 records per call, per-record results.

Marketo answers a batch with one ``result`` entry per input, in order: ``created``/``updated`` with the lead id,
or ``skipped`` with ``reasons[{code, message}]`` — those become failed results with Marketo's own code.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from closeloop.model import VendorError, WriteOp, WriteRequest, WriteResult, WriteStatus

from .api import MAX_BATCH, RATE_CODES, TRANSIENT_CODES, MarketoApi, MarketoError

RETRYABLE_REASONS = RATE_CODES | TRANSIENT_CODES | {"1029"}
"""Per-record reasons that may pass (1029: too many jobs in the queue)."""
STATUSES = {"created": WriteStatus.CREATED, "updated": WriteStatus.UPDATED, "deleted": WriteStatus.DELETED}
GroupKey = tuple[str, str]


def group_of(request: WriteRequest) -> GroupKey:
    """(action, lookup field) of a request; DELETE goes to its own endpoint."""
    if request.op is WriteOp.UPSERT:
        return "createOrUpdate", str(request.upsert_key)
    if request.op is WriteOp.UPDATE:
        return "updateOnly", "id"
    if request.op is WriteOp.DELETE:
        return "delete", "id"
    return "createOnly", "email"


def record_of(request: WriteRequest) -> dict[str, Any]:
    """The input record: fields, plus the lead id for updates and deletes."""
    record = {k: v for k, v in request.fields.items() if k not in ("id", "updatedAt", "createdAt")}
    if request.op in (WriteOp.UPDATE, WriteOp.DELETE):
        record["id"] = int(str(request.native_id))
    return {"id": record["id"]} if request.op is WriteOp.DELETE else record


async def write_leads(api: MarketoApi, batch: Sequence[WriteRequest]) -> list[WriteResult]:
    """Write a batch grouped by action and lookup field; results come back in input order."""
    results: list[WriteResult | None] = [None] * len(batch)
    groups: dict[GroupKey, list[int]] = {}
    for position, request in enumerate(batch):
        groups.setdefault(group_of(request), []).append(position)
    for (action, lookup), positions in groups.items():
        for start in range(0, len(positions), MAX_BATCH):
            chunk = positions[start : start + MAX_BATCH]
            requests = [batch[p] for p in chunk]
            for p, result in zip(chunk, await _send(api, action, lookup, requests), strict=True):
                results[p] = result
    return [r for r in results if r is not None]


async def _send(api: MarketoApi, action: str, lookup: str, requests: list[WriteRequest]) -> list[WriteResult]:
    records = [record_of(r) for r in requests]
    try:
        if action == "delete":
            body = await api.post("/rest/v1/leads/delete.json", {"input": records}, idempotent=True)
        else:
            payload = {"action": action, "lookupField": lookup, "input": records}
            # Sync by a lookup key or by id gives the same outcome when repeated: safe to retry.
            body = await api.post("/rest/v1/leads.json", payload, idempotent=True)
    except MarketoError as exc:  # the whole call was refused for good: every record carries the reason
        error = VendorError(exc.code, exc.message, exc.code in RETRYABLE_REASONS, _fields_named(exc.message))
        return [WriteResult.failed(r.ref, error) for r in requests]
    answers = list(body.get("result") or [])
    if len(answers) != len(requests):
        error = VendorError("result-mismatch", f"{len(answers)} results for {len(requests)} records", retryable=True)
        return [WriteResult.failed(r.ref, error) for r in requests]
    return [_result(r, a) for r, a in zip(requests, answers, strict=True)]


def _result(request: WriteRequest, answer: dict[str, Any]) -> WriteResult:
    status = STATUSES.get(str(answer.get("status")))
    if status is not None:
        lead_id = answer.get("id", request.native_id)
        return WriteResult(request.ref, status, native_id=None if lead_id is None else str(lead_id))
    reasons = answer.get("reasons") or [answer.get("reason") or {}]
    code, message = str(reasons[0].get("code", "skipped")), str(reasons[0].get("message", "record skipped"))
    return WriteResult.failed(
        request.ref, VendorError(code, message, code in RETRYABLE_REASONS, _fields_named(message))
    )


def _fields_named(message: str) -> tuple[str, ...]:
    """Field names Marketo quotes in a reason, e.g. "Field 'foo' not found"."""
    return tuple(re.findall(r"[Ff]ield '([^']+)'", message))
