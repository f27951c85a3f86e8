"""The Account Engagement (Pardot) connector: prospects (role contact) on API v5, visitor activities as
touchpoints, and revenue written back to prospect custom fields."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from datetime import datetime

from closeloop.connector import ConnectorContext
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
)

from .api import API, MAX_LIMIT, PardotApi, pardot_limits
from .custom_fields import NewField, create_custom_fields
from .fields import CUSTOM_TYPES, STANDARD, WRITABLE
from .reads import ChangeReader, read_ids, read_where
from .settings import PardotSettings
from .touchpoints import read_touchpoints
from .writes import write_prospects

PROSPECTS = "prospects"
ALWAYS_READ = ("id", "updatedAt", "createdAt", "isDeleted", "email")
SEARCHABLE = ("email", "salesforceId")
"""Prospect fields v5 can filter a query by (besides id)."""


class UnsupportedObject(ValueError):
    """Account Engagement objects other than prospects are not synced by closeloop."""


class UnsupportedSearch(ValueError):
    """A search key v5 cannot filter prospects by."""


class PardotConnector:
    """One Account Engagement business unit."""

    def __init__(self, context: ConnectorContext) -> None:
        if not isinstance(context.settings, PardotSettings):
            raise TypeError("the Account Engagement connector needs PardotSettings")
        self.system = context.system
        self.settings = context.settings
        self.api = PardotApi(context, self.settings)
        self._schema: ObjectSchema | None = None
        self._schema_lock = asyncio.Lock()

    async def describe(self, obj: str) -> ObjectSchema:
        """The standard prospect fields (v5 has no describe call) and the custom fields the business unit has."""
        _check(obj)
        async with self._schema_lock:  # concurrent first reads share one custom-fields call
            if self._schema is None:
                fields = {name: _standard(name, kind) for name, kind in STANDARD.items()}
                params = {"fields": "id,name,fieldId,apiFieldId,type"}
                body = (await self.api.call("GET", f"{API}/custom-fields", params=params)).json()
                for custom in body.get("values") or []:
                    name = str(custom["apiFieldId"])
                    kind = CUSTOM_TYPES.get(str(custom.get("type")), FieldType.STRING)
                    fields[name] = FieldInfo(name, kind, label=str(custom.get("name") or name))
                self._schema = ObjectSchema(obj, fields)
        return self._schema

    async def create_fields(self, obj: str, fields: Sequence[NewField]) -> None:
        """Create closeloop's own prospect fields as custom fields; the next describe lists them."""
        _check(obj)
        await create_custom_fields(self.api, fields)
        self._schema = None

    async def _fields(self) -> list[str]:
        wanted = self.settings.prospect_fields or list((await self.describe(PROSPECTS)).fields)
        return list(dict.fromkeys([*ALWAYS_READ, *wanted]))

    async def read_changes(self, obj: str, since: Cursor | None) -> AsyncIterator[Page]:
        """Prospect changes strictly after ``since``, recycle-bin deletions included (see ``reads``)."""
        _check(obj)
        page_size = min(self.settings.page_size or MAX_LIMIT, MAX_LIMIT)
        async for page in ChangeReader(self.api, await self._fields(), page_size).read(since):
            yield page

    async def read(self, obj: str, ids: Sequence[str]) -> list[NativeRecord]:
        """Live prospects by id, through id-range queries."""
        _check(obj)
        return await read_ids(self.api, ids, await self._fields())

    async def search(self, obj: str, key: str, values: Sequence[str]) -> list[NativeRecord]:
        """Prospects whose ``key`` is one of ``values`` (emails compared in lower case); one query per value."""
        _check(obj)
        if key == "id":
            return await self.read(obj, values)
        if key not in SEARCHABLE:
            raise UnsupportedSearch(f"v5 cannot filter prospects by {key!r}; use one of {', '.join(SEARCHABLE)}")
        unique = [v.strip().lower() if key == "email" else v for v in values if v]
        return await read_where(self.api, key, unique, await self._fields())

    async def write(self, obj: str, batch: Sequence[WriteRequest]) -> list[WriteResult]:
        """Creates and upserts by email, updates by id, deletes to the recycle bin; results in input order."""
        _check(obj)
        return await write_prospects(self.api, batch)

    async def associations(self, obj: str, ids: Sequence[str]) -> list[Association]:
        """Prospects have no deal links closeloop reads (opportunities belong to the CRM connector)."""
        _check(obj)
        return []

    async def associate(self, obj: str, links: Sequence[Association]) -> list[WriteResult]:
        """Refused per link: v5 opportunities are read-only."""
        error = VendorError("unsupported", "Account Engagement opportunities are read-only in v5", retryable=False)
        return [WriteResult.failed(f"{link.from_id}->{link.to_id}", error) for link in links]

    async def touchpoints(self, obj: str, ids: Sequence[str], since: datetime | None) -> list[Touchpoint]:
        """Original source, page views, form fills and email clicks of these prospects."""
        _check(obj)
        return await read_touchpoints(self.api, ids, since, self.settings.activity_types)

    def limits(self, obj: str) -> Limits:
        """5 requests at once and the edition's daily calls."""
        return pardot_limits(self.settings)

    async def aclose(self) -> None:
        """Close the HTTP clients."""
        await self.api.aclose()


def create(context: ConnectorContext) -> PardotConnector:
    """The plugin's factory."""
    return PardotConnector(context)


def _check(obj: str) -> None:
    if obj != PROSPECTS:
        raise UnsupportedObject(f"Account Engagement object {obj!r} is not synced; closeloop syncs 'prospects'")


def _standard(name: str, kind: FieldType) -> FieldInfo:
    return FieldInfo(name, kind, read_only=name not in WRITABLE, label=name)
