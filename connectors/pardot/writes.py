"""Prospect writes: v5 has no batch endpoint for prospects, so each record is its own call (5 at once).

Creates and upserts go through ``do/upsertLatestByEmail``: a retried create would make a second prospect in a
business unit that allows duplicate emails, while a repeated upsert by email lands on the same one.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Sequence
from typing import Any

from closeloop.http import TransientError
from closeloop.model import VendorError, WriteOp, WriteRequest, WriteResult, WriteStatus

from .api import API, RATE_CODES, RETRY_CODES, PardotApi, PardotError

ANSWER_FIELDS = ["id", "updatedAt"]
NOT_SENT = frozenset({"id", "createdAt", "updatedAt", "isDeleted"})
"""Fields a read returns that a write never carries."""


async def write_prospects(api: PardotApi, batch: Sequence[WriteRequest]) -> list[WriteResult]:
    """Write each request (concurrently, under the limiter); results in input order.

    Every call is let finish before an error that stops the batch (a spent budget, refused credentials) is raised,
    so no write is left running unobserved.
    """
    outcomes = await asyncio.gather(*(write_one(api, request) for request in batch), return_exceptions=True)
    return [_result(outcome) for outcome in outcomes]


def _result(outcome: WriteResult | BaseException) -> WriteResult:
    if isinstance(outcome, BaseException):
        raise outcome
    return outcome


async def write_one(api: PardotApi, request: WriteRequest) -> WriteResult:
    """One create, upsert, update or delete; a refusal becomes a failed result with v5's code."""
    try:
        return await _send(api, request)
    except PardotError as exc:
        retryable = exc.code in RETRY_CODES | RATE_CODES
        error = VendorError(str(exc.code), exc.message, retryable, tuple(re.findall(r"'([A-Za-z_0-9]+)'", exc.message)))
        return WriteResult.failed(request.ref, error)
    except TransientError as exc:
        return WriteResult.failed(request.ref, VendorError("transient", str(exc), retryable=True))


async def _send(api: PardotApi, request: WriteRequest) -> WriteResult:
    body = {k: v for k, v in request.fields.items() if k not in NOT_SENT}
    if request.op is WriteOp.DELETE:
        return await _delete(api, request)
    if request.op is WriteOp.UPDATE:
        path = f"{API}/prospects/{request.native_id}"
        response = await api.call("PATCH", path, params={"fields": ",".join(ANSWER_FIELDS)}, body=body)
        return WriteResult(request.ref, WriteStatus.UPDATED, native_id=str(response.json()["id"]))
    key = request.upsert_key or "email"
    email = request.fields.get("email")
    if key != "email" or not email:
        message = "Account Engagement creates and upserts prospects by email only; give an email"
        return WriteResult.failed(request.ref, VendorError("unsupported", message, retryable=False))
    payload: dict[str, Any] = {
        "matchEmail": email,
        "prospect": body,
        "fields": ANSWER_FIELDS,
        "secondaryDeletedSearch": False,
    }
    response = await api.call("POST", f"{API}/prospects/do/upsertLatestByEmail", body=payload, idempotent=True)
    status = WriteStatus.CREATED if response.status_code == 201 else WriteStatus.UPDATED
    return WriteResult(request.ref, status, native_id=str(response.json()["id"]))


async def _delete(api: PardotApi, request: WriteRequest) -> WriteResult:
    try:
        await api.call("DELETE", f"{API}/prospects/{request.native_id}")
    except PardotError as exc:
        if exc.status != 404:  # already in the recycle bin, or gone: the delete has happened
            raise
    return WriteResult(request.ref, WriteStatus.DELETED, native_id=request.native_id)
