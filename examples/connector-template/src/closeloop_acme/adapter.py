"""The Acme connector: a change stream paged by a ``next`` token, upserts by email, search, describe.

Everything HTTP (rate budget, retries, response classes, redaction) is closeloop's ``http`` layer; the connector
declares Acme's facts: its limits, how it pages, how its records and errors look.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from datetime import datetime
from functools import partial
from typing import Any

from closeloop.connector import ConnectorContext
from closeloop.http import BearerAuth, build_http
from closeloop.http.paging import TokenPaginator, paginate
from closeloop.model import (
    Association,
    Cursor,
    FieldInfo,
    FieldType,
    Limits,
    NativeRecord,
    ObjectSchema,
    Page,
    Touchpoint,
    VendorError,
    WriteRequest,
    WriteResult,
    WriteStatus,
    parse_utc,
)

from .settings import AcmeSettings

LIMITS = Limits(
    max_write_batch=100, max_read_batch=100, page_size=100, requests_per_window=10, window_seconds=1.0,
    max_concurrency=4,
)  # fmt: skip
TYPES = {"string": FieldType.STRING, "email": FieldType.EMAIL}


def to_record(item: dict[str, Any]) -> NativeRecord:
    """An Acme person as a native record."""
    return NativeRecord(str(item["id"]), parse_utc(item["updated_at"]), item, deleted=bool(item.get("deleted")))


class AcmeConnector:
    """One Acme account."""

    def __init__(self, context: ConnectorContext) -> None:
        settings = context.settings
        assert isinstance(settings, AcmeSettings)  # the plugin's settings_model built it
        self.system = context.system
        self.settings = settings
        auth = BearerAuth(settings.api_key)
        base_url = settings.base_url or "https://api.acme.example"
        self.http = build_http(context, base_url=base_url, auth=auth, limits=LIMITS)

    async def _get(self, path: str, params: dict[str, Any]) -> Any:
        return (await self.http.request("GET", path, params=params)).json()

    def read_changes(self, obj: str, since: Cursor | None) -> AsyncIterator[Page]:
        """Pages after ``since`` in (updated_at, id) order; Acme's ``next`` token names the following page."""
        return self._changes(obj, since)

    async def _changes(self, obj: str, since: Cursor | None) -> AsyncIterator[Page]:
        params: dict[str, Any] = {"limit": self.settings.page_size or LIMITS.page_size}
        if since is not None:
            params["after"] = f"{since.modified_at.isoformat()}|{since.id}"  # to the microsecond, as Acme keeps it
        pages = TokenPaginator(params, ("next",), "after")
        async for body in paginate(partial(self._get, f"/v1/{obj}/changes"), pages):
            records = tuple(map(to_record, body["results"]))
            if records:
                yield Page(records)

    async def read(self, obj: str, ids: Sequence[str]) -> list[NativeRecord]:
        """The live records with these ids."""
        found: list[NativeRecord] = []
        for start in range(0, len(ids), LIMITS.max_read_batch):
            body = await self._get(f"/v1/{obj}", {"ids": ",".join(ids[start : start + LIMITS.max_read_batch])})
            found.extend(map(to_record, body["results"]))
        return found

    async def search(self, obj: str, key: str, values: Sequence[str]) -> list[NativeRecord]:
        """Records whose ``key`` equals a value (Acme compares case-insensitively)."""
        body = {"field": key, "values": list(values)}
        answer = (await self.http.request("POST", f"/v1/{obj}/search", json=body, idempotent=True)).json()
        return [to_record(item) for item in answer["results"]]

    async def write(self, obj: str, batch: Sequence[WriteRequest]) -> list[WriteResult]:
        """Upserts by email, one result per request in order; a refused record keeps Acme's reason."""
        body = {"records": [dict(r.fields) for r in batch]}
        answer = (await self.http.request("POST", f"/v1/{obj}/upsert", json=body, idempotent=True)).json()
        return [_result(request, item) for request, item in zip(batch, answer["results"], strict=True)]

    async def describe(self, obj: str) -> ObjectSchema:
        """The object's fields from Acme's schema endpoint."""
        body = await self._get(f"/v1/schema/{obj}", {})
        fields = {f["name"]: FieldInfo(f["name"], TYPES.get(f["type"], FieldType.STRING)) for f in body["fields"]}
        return ObjectSchema(obj, fields)

    async def associations(self, obj: str, ids: Sequence[str]) -> list[Association]:
        """Acme has no deals."""
        return []

    async def associate(self, obj: str, links: Sequence[Association]) -> list[WriteResult]:
        """Acme has no deals to link."""
        raise ValueError("Acme has no deals")

    async def touchpoints(self, obj: str, ids: Sequence[str], since: datetime | None) -> list[Touchpoint]:
        """Acme keeps no marketing touches."""
        return []

    def limits(self, obj: str) -> Limits:
        """Acme's published limits."""
        return LIMITS

    async def aclose(self) -> None:
        """Close the HTTP client."""
        await self.http.aclose()


def _result(request: WriteRequest, item: dict[str, Any]) -> WriteResult:
    error = item.get("error")
    if error:
        refusal = VendorError(error["code"], error["message"], retryable=False, fields=(error["field"],))
        return WriteResult.failed(request.ref, refusal)
    status = WriteStatus.CREATED if item["created"] else WriteStatus.UPDATED
    return WriteResult(request.ref, status, native_id=str(item["id"]))
