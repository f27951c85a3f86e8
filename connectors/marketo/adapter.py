"""The Marketo Engage connector: leads (role contact), revenue written back to lead custom fields."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime
from typing import Any

from closeloop.connector import ConnectorContext
from closeloop.model import (
    Association,
    Cursor,
    FieldInfo,
    FieldType,
    Limits,
    NativeRecord,
    ObjectSchema,
    OwnedField,
    Page,
    TouchPage,
    Touchpoint,
    VendorError,
    WriteRequest,
    WriteResult,
)

from . import touchpoints
from .api import MAX_BATCH, MarketoApi, marketo_limits
from .changes import ChangeReader, lead_record
from .fields import create_lead_fields
from .settings import MarketoSettings
from .touchpoints import read_touchpoints
from .writes import write_leads

LEADS = "leads"
FIELD_TYPES = {
    "email": FieldType.EMAIL,
    "phone": FieldType.PHONE,
    "integer": FieldType.NUMBER,
    "float": FieldType.NUMBER,
    "currency": FieldType.DECIMAL,
    "datetime": FieldType.DATETIME,
    "date": FieldType.DATE,
    "boolean": FieldType.BOOLEAN,
    "reference": FieldType.REFERENCE,
}


class UnsupportedObject(ValueError):
    """Marketo objects other than leads are not synced by closeloop."""


class MarketoConnector:
    """One Marketo instance."""

    def __init__(self, context: ConnectorContext) -> None:
        if not isinstance(context.settings, MarketoSettings):
            raise TypeError("the Marketo connector needs MarketoSettings")
        self.system = context.system
        self.settings = context.settings
        self.api = MarketoApi(context, self.settings)
        self._schema: ObjectSchema | None = None
        self._schema_lock = asyncio.Lock()

    async def describe(self, obj: str) -> ObjectSchema:
        """Lead fields from describe2: data type and whether the API may update them."""
        _check(obj)
        async with self._schema_lock:  # concurrent first reads share one describe call
            if self._schema is None:
                body = await self.api.get("/rest/v1/leads/describe2.json")
                described = (body.get("result") or [{}])[0].get("fields") or []
                fields = {f["name"]: _field_info(f) for f in described}
                self._schema = ObjectSchema(obj, fields)
        return self._schema

    async def create_fields(self, obj: str, fields: Sequence[OwnedField]) -> None:
        """Create closeloop's own lead fields; the next describe lists them."""
        _check(obj)
        await create_lead_fields(self.api, fields)
        self._schema = None

    async def _fields(self) -> list[str]:
        if self.settings.lead_fields:
            return list(dict.fromkeys(["id", "updatedAt", *self.settings.lead_fields]))
        return list((await self.describe(LEADS)).fields)

    async def read_changes(self, obj: str, since: Cursor | None) -> AsyncIterator[Page]:
        """Lead changes strictly after ``since``, deletions and merges included (see ``changes``)."""
        _check(obj)
        page_size = min(self.settings.page_size or MAX_BATCH, MAX_BATCH)
        reader = ChangeReader(self.api, await self._fields(), page_size)
        async for page in reader.read(since):
            yield page

    async def read(self, obj: str, ids: Sequence[str]) -> list[NativeRecord]:
        """Leads by id, 300 per call."""
        return await self.search(obj, "id", ids)

    async def search(self, obj: str, key: str, values: Sequence[str]) -> list[NativeRecord]:
        """Leads whose ``key`` equals one of ``values`` (Marketo matches emails case-insensitively)."""
        _check(obj)
        unique = list({v.lower() if key == "email" else v: v for v in values}.values())
        records: list[NativeRecord] = []
        async for leads in self.api.leads(key, unique, await self._fields()):
            records.extend(lead_record(lead) for lead in leads)
        return records

    async def write(self, obj: str, batch: Sequence[WriteRequest]) -> list[WriteResult]:
        """Upserts by their key, updates by id, creates, deletes: 300 per call, results in input order."""
        _check(obj)
        return await write_leads(self.api, batch)

    async def associations(self, obj: str, ids: Sequence[str]) -> list[Association]:
        """Leads have no deal links closeloop reads (revenue reaches Marketo through lead fields)."""
        _check(obj)
        return []

    async def associate(self, obj: str, links: Sequence[Association]) -> list[WriteResult]:
        """Refused per link: closeloop does not write Marketo opportunities."""
        error = VendorError(
            "unsupported", "Marketo leads take no deal links; revenue goes to lead fields", retryable=False
        )
        return [WriteResult.failed(f"{link.from_id}->{link.to_id}", error) for link in links]

    async def touchpoints(self, obj: str, ids: Sequence[str], since: datetime | None) -> list[Touchpoint]:
        """Original source, web visits, form fills (with UTM values) and program status changes."""
        _check(obj)
        return await read_touchpoints(self.api, ids, since or datetime(2000, 1, 1, tzinfo=UTC))

    def touch_changes(self, since: Cursor | None) -> AsyncIterator[TouchPage]:
        """Every lead's touch activities logged after ``since`` (program status changes leave the lead unchanged)."""
        return touchpoints.touch_changes(self.api, since)

    def limits(self, obj: str) -> Limits:
        """100 calls per 20 s, 10 at once, 50,000 a day, 300 records per call."""
        return marketo_limits(self.settings)

    async def aclose(self) -> None:
        """Close the HTTP clients."""
        await self.api.aclose()


def create(context: ConnectorContext) -> MarketoConnector:
    """The plugin's factory."""
    return MarketoConnector(context)


def _check(obj: str) -> None:
    if obj != LEADS:
        raise UnsupportedObject(f"Marketo object {obj!r} is not synced; closeloop syncs 'leads'")


def _field_info(field: dict[str, Any]) -> FieldInfo:
    name = str(field["name"])
    kind = FieldType.ID if name == "id" else FIELD_TYPES.get(str(field.get("dataType")), FieldType.STRING)
    return FieldInfo(
        name=name,
        type=kind,
        read_only=not field.get("updateable", True),
        label=str(field.get("displayName") or name),
    )
