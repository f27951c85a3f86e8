"""The HubSpot connector: contacts and deals of one portal through the CRM v3 and v4 APIs."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Sequence
from datetime import datetime, timedelta
from typing import Any

from closeloop.connector import ConnectorContext, FieldTimes
from closeloop.http import HttpError
from closeloop.model import (
    ActivityPage,
    Association,
    Cursor,
    Limits,
    NativeRecord,
    ObjectSchema,
    OwnedField,
    Owner,
    Page,
    Touchpoint,
    WriteRequest,
    WriteResult,
    now_utc,
)

from . import activities, forms, owners, reads, schema, writes
from .api import MAX_BATCH, HubSpotApi
from .settings import HubSpotSettings

log = logging.getLogger(__name__)

OBJECTS = ("contacts", "deals")
COUNTERPART = {"deals": "contacts", "contacts": "deals"}
# Unique properties a batch read can look records up by (consistent at once, unlike the search index).
LOOKUP_KEYS = {"contacts": ("email", "closeloop_id"), "deals": ("closeloop_id",)}
# Pages of contacts whose touch properties are kept for touchpoints() (the engine asks right after each page).
TOUCH_CACHE_PAGES = 5


class HubSpotConnector:
    """Contacts and deals of one HubSpot portal."""

    def __init__(self, context: ConnectorContext) -> None:
        if not isinstance(context.settings, HubSpotSettings):
            raise TypeError("the HubSpot connector needs HubSpotSettings")
        self.system = context.system
        self.settings = context.settings
        self.api = HubSpotApi(context, self.settings)
        self._schemas: dict[str, ObjectSchema] = {}
        self._sweeps = reads.ArchiveSchedule(
            timedelta(seconds=self.settings.archived_check_seconds), context.clock or now_utc
        )
        self._touches = schema.TouchCache(TOUCH_CACHE_PAGES * self._page_size())

    def _object(self, obj: str) -> str:
        if obj not in OBJECTS:
            raise ValueError(f"HubSpot connector handles {', '.join(OBJECTS)}, not {obj!r}")
        return obj

    async def describe(self, obj: str) -> ObjectSchema:
        """Properties (type, read-only, options) and, for deals, pipeline stages; cached per connector."""
        obj = self._object(obj)
        if obj not in self._schemas:
            self._schemas[obj] = await schema.describe(self.api, obj)
        return self._schemas[obj]

    async def create_fields(self, obj: str, fields: Sequence[OwnedField]) -> None:
        """Create closeloop's own properties on ``obj``; the next describe lists them."""
        await schema.create_properties(self.api, self._object(obj), fields)
        self._schemas.pop(obj, None)

    async def _properties(self, obj: str) -> list[str]:
        configured = (self.settings.properties or {}).get(obj)
        if configured:
            return list(configured)
        return list((await self.describe(obj)).fields)

    def _page_size(self) -> int:
        return self.api.limits.page_size

    async def read_changes(self, obj: str, since: Cursor | None) -> AsyncIterator[Page]:
        """Pages after ``since`` in (modified_at, id) order, with archived records and merges when a sweep is due.

        The archived list is read at most every ``archived_check_seconds``; a sweep also hands out deletions
        older than ``since`` that earlier streams skipped (see :class:`reads.ArchiveSchedule`). Contacts carry
        their touch properties, kept for :meth:`touchpoints`.
        """
        obj = self._object(obj)
        properties = await self._properties(obj)
        if obj == "contacts":
            properties = list(dict.fromkeys([*properties, *schema.TOUCH_PROPERTIES]))
            self._touches.clear()
        sweep = self._sweeps.due(obj, since)
        reader = reads.ChangeReader(self.api, obj, properties, self._page_size())
        async for page in reader.pages(since, sweep):
            if obj == "contacts":
                self._touches.remember(page.records)
            yield page
        if sweep is not None:
            self._sweeps.finished(obj, sweep)

    def activity_streams(self) -> tuple[str, ...]:
        """Calls, emails, meetings and tasks, each read as its own stream (the SLA's follow-ups)."""
        return activities.ENGAGEMENTS

    async def activity_changes(self, stream: str, since: Cursor | None) -> AsyncIterator[ActivityPage]:
        """Engagements of one type changed after ``since``, as sales activities of their contacts."""
        sweep = self._sweeps.due(stream, since)
        reader = reads.ChangeReader(self.api, stream, activities.PROPERTIES[stream], self._page_size())
        async for page in reader.pages(since, sweep):
            contacts = await activities.contacts_of(self.api, stream, [r.id for r in page.records if not r.deleted])
            found = [a for r in page.records for a in activities.to_activities(stream, r, contacts.get(r.id, ()))]
            yield ActivityPage(tuple(found), page.records[-1].position)
        if sweep is not None:
            self._sweeps.finished(stream, sweep)

    async def read(self, obj: str, ids: Sequence[str]) -> list[NativeRecord]:
        """Live records by id, 100 per batch read."""
        obj = self._object(obj)
        return await reads.read_by_ids(self.api, obj, ids, await self._properties(obj))

    async def field_times(self, obj: str, ids: Sequence[str], fields: Sequence[str]) -> FieldTimes:
        """When each of ``fields`` last changed, from the property histories (50 records per batch read)."""
        return await reads.field_times(self.api, self._object(obj), ids, fields)

    async def search(self, obj: str, key: str, values: Sequence[str]) -> list[NativeRecord]:
        """Records whose ``key`` is one of ``values``; unique keys by batch read, others by search (IN)."""
        obj = self._object(obj)
        properties = await self._properties(obj)
        if key == "hs_object_id":
            return await reads.read_by_ids(self.api, obj, values, properties)
        if key in LOOKUP_KEYS[obj]:
            found = await reads.read_by_ids(self.api, obj, values, properties, id_property=key)
            return list({r.id: r for r in found}.values())
        return await reads.search_in(self.api, obj, key, values, properties, self._page_size())

    async def write(self, obj: str, batch: Sequence[WriteRequest]) -> list[WriteResult]:
        """Batch create/update/upsert/archive; one result per request, in request order."""
        return await writes.Writer(self.api, self._object(obj)).write(batch)

    async def associations(self, obj: str, ids: Sequence[str]) -> list[Association]:
        """Deal -> contact (or contact -> deal) links, by v4 batch read."""
        obj = self._object(obj)
        other = COUNTERPART[obj]
        found: list[Association] = []
        pending = [{"id": i} for i in dict.fromkeys(ids)]
        while pending:
            chunk, pending = pending[:MAX_BATCH], pending[MAX_BATCH:]
            answer = await self.api.post(
                f"/crm/v4/associations/{obj}/{other}/batch/read", {"inputs": chunk}, idempotent=True
            )
            for result in answer.get("results", []):
                from_id = str(result["from"]["id"])
                found.extend(Association(from_id, str(to["toObjectId"])) for to in result.get("to", []))
                after = result.get("paging", {}).get("next", {}).get("after")
                if after:  # one record with many links pages on its own
                    pending.append({"id": from_id, "after": after})
        return found

    async def associate(self, obj: str, links: Sequence[Association]) -> list[WriteResult]:
        """Default associations from ``obj`` records to their counterparts (v4 batch associate)."""
        return await writes.associate(self.api, self._object(obj), links)

    async def touchpoints(self, obj: str, ids: Sequence[str], since: datetime | None) -> list[Touchpoint]:
        """Original source, latest source and form submissions of contacts; deals have none.

        Contacts of the last pages of the change stream are answered from what it read; others by batch read. The
        submissions of the contacts that submitted a form take one v1 batch read per 100 of them.
        """
        if self._object(obj) != "contacts":
            return []
        known, missing = self._touches.split(ids)
        if missing:
            records = await reads.read_by_ids(self.api, obj, missing, schema.TOUCH_PROPERTIES)
            known.update((r.id, dict(r.fields)) for r in records)
        submitted = await self._submissions([i for i, props in known.items() if forms.submitted(props)])
        found: list[Touchpoint] = []
        for contact_id in dict.fromkeys(i for i in ids if i in known):
            mine = None if submitted is None else submitted.get(contact_id, [])
            found += schema.contact_touchpoints(contact_id, known[contact_id], since, mine)
        return found

    async def _submissions(self, ids: Sequence[str]) -> dict[str, list[dict[str, Any]]] | None:
        """The contacts' form submissions; None when the portal refuses the read (a token without the scope)."""
        if not ids:
            return {}
        try:
            return await forms.read_submissions(self.api, ids)
        except HttpError as exc:
            if exc.status not in (403, 404):
                raise
            log.warning("HubSpot form submissions not readable (HTTP %s): form fills without their pages", exc.status)
            return None

    async def owners(self) -> list[Owner]:
        """The portal's owners with their emails (active ones and archived ones, flagged)."""
        return await owners.read_owners(self.api)

    def limits(self, obj: str) -> Limits:
        """HubSpot's limits, with search's own bucket."""
        return self.api.limits

    async def aclose(self) -> None:
        """Close the HTTP clients."""
        await self.api.aclose()


def create(context: ConnectorContext) -> HubSpotConnector:
    """The plugin's factory."""
    return HubSpotConnector(context)
