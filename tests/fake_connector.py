"""An in-memory connector for tests of the engine and the loop: an ordered change stream, upserts, per-record
rejections, restricted picklists, outages, touchpoints and counters. Kept with the tests: a connector author tests a
connector with the conformance kit (``closeloop.testing.conformance``) against its own sandbox instead."""

from __future__ import annotations

import inspect
import itertools
from collections import Counter
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from closeloop.connector import ConnectorPlugin, Registry, SystemSettings
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
    StageInfo,
    Touchpoint,
    VendorError,
    WriteOp,
    WriteRequest,
    WriteResult,
    WriteStatus,
    position_key,
)
from closeloop.testing.clock import FakeClock


def ticking_clock() -> FakeClock:
    """A clock that ticks one second every time it is read, so every write gets a later stamp."""
    return FakeClock(datetime(2026, 3, 1, 12, 0, tzinfo=UTC), tick=timedelta(seconds=1))


@dataclass
class Row:
    """One record of the fake vendor."""

    id: str
    fields: dict[str, Any]
    modified_at: datetime
    deleted: bool = False
    merged_into: str | None = None


@dataclass
class FakeVendor:
    """The data of one fake system, shared by the connector instances the engine creates."""

    name: str
    clock: FakeClock
    tables: dict[str, dict[str, Row]] = field(default_factory=dict)
    links: dict[str, set[str]] = field(default_factory=dict)
    reject_values: set[str] = field(default_factory=set)
    writes: Counter[str] = field(default_factory=Counter)
    calls: Counter[str] = field(default_factory=Counter)
    fail_after_apply: int = 0
    """Raise after applying this many more write batches (the ambiguous write)."""
    page_size: int = 3
    unique: dict[str, str] = field(default_factory=lambda: {"contacts": "email", "deals": "cl_id"})
    restricted: dict[str, dict[str, tuple[str, ...]]] = field(default_factory=dict)
    """object -> field -> allowed values: describe reports those fields as restricted picklists."""
    outage: bool = False
    """While set, every write call fails with a transient error before applying anything."""
    touches: list[Touchpoint] = field(default_factory=list)
    """Touchpoints the vendor reports, by native contact id."""
    created_fields: dict[str, dict[str, FieldInfo]] = field(default_factory=dict)
    """object -> fields created through ``create_fields`` (closeloop's own, by the setup step)."""
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def table(self, obj: str) -> dict[str, Row]:
        return self.tables.setdefault(obj, {})

    def put(self, obj: str, fields: dict[str, Any], row_id: str | None = None) -> Row:
        """Create or change a record the way a user in the vendor's UI would."""
        row_id = row_id or f"{self.name}-{next(self._ids)}"
        existing = self.table(obj).get(row_id)
        if existing is None:
            existing = self.table(obj)[row_id] = Row(row_id, {}, self.clock())
        existing.fields.update(fields)
        existing.modified_at = self.clock()
        return existing

    def live(self, obj: str) -> list[Row]:
        return [r for r in self.table(obj).values() if not r.deleted]

    def find(self, obj: str, field_name: str, value: Any) -> Row | None:
        wanted = str(value).lower()
        return next((r for r in self.live(obj) if str(r.fields.get(field_name, "")).lower() == wanted), None)


class FakeSettings(SystemSettings):
    """Settings of a fake system."""


FIELDS = {
    "contacts": {
        "email": FieldInfo("email", FieldType.EMAIL),
        "name": FieldInfo("name", FieldType.STRING),
        "title": FieldInfo("title", FieldType.STRING),
        "phone": FieldInfo("phone", FieldType.PHONE),
        "source": FieldInfo("source", FieldType.STRING),
        "stage": FieldInfo(
            "stage",
            FieldType.PICKLIST,
            picklist=("lead", "mql", "sql", "customer", "Lead", "MQL", "SQL", "Customer"),
        ),
        "utm_source": FieldInfo("utm_source", FieldType.STRING),
        "utm_medium": FieldInfo("utm_medium", FieldType.STRING),
        "utm_campaign": FieldInfo("utm_campaign", FieldType.STRING),
        "first_touch": FieldInfo("first_touch", FieldType.DATETIME),
        "created": FieldInfo("created", FieldType.DATETIME),
        "revenue": FieldInfo("revenue", FieldType.DECIMAL),
        "won_deals": FieldInfo("won_deals", FieldType.NUMBER),
    },
    "deals": {
        "title": FieldInfo("title", FieldType.STRING),
        "amount": FieldInfo("amount", FieldType.DECIMAL),
        "currency": FieldInfo("currency", FieldType.STRING),
        "closed": FieldInfo("closed", FieldType.DATE),
        "created": FieldInfo("created", FieldType.DATETIME),
        "stage": FieldInfo("stage", FieldType.PICKLIST),
        "cl_id": FieldInfo("cl_id", FieldType.STRING),
    },
}
WON = {"Open": False, "Won": True, "open": False, "closedwon": True}
STAGES = tuple(StageInfo(value, value, is_closed=won, is_won=won) for value, won in WON.items())


class FakeConnector:
    """The Connector protocol over a FakeVendor."""

    def __init__(self, vendor: FakeVendor, system: str) -> None:
        self.vendor, self.system = vendor, system

    async def describe(self, obj: str) -> ObjectSchema:
        self.vendor.calls["describe"] += 1
        fields = {**FIELDS[obj], **self.vendor.created_fields.get(obj, {})}
        for name, allowed in self.vendor.restricted.get(obj, {}).items():
            fields[name] = FieldInfo(name, fields[name].type, picklist=allowed, restricted=True)
        return ObjectSchema(obj, fields, STAGES if obj == "deals" else ())

    async def create_fields(self, obj: str, fields: Sequence[OwnedField]) -> None:
        self.vendor.calls["create_fields"] += 1
        for owned in fields:
            self.vendor.created_fields.setdefault(obj, {})[owned.name] = FieldInfo(owned.name, owned.type)

    async def read_changes(self, obj: str, since: Cursor | None) -> AsyncIterator[Page]:
        rows = sorted(self.vendor.table(obj).values(), key=lambda r: position_key(r.modified_at, r.id))
        if since is not None:
            rows = [r for r in rows if position_key(r.modified_at, r.id) > since.key]
        self.vendor.calls["read"] += 1
        if not rows:
            yield Page(())
            return
        for start in range(0, len(rows), self.vendor.page_size):
            if start:
                self.vendor.calls["read"] += 1
            chunk = rows[start : start + self.vendor.page_size]
            yield Page(
                tuple(NativeRecord(r.id, r.modified_at, dict(r.fields), r.deleted, r.merged_into) for r in chunk)
            )

    async def read(self, obj: str, ids: Sequence[str]) -> list[NativeRecord]:
        self.vendor.calls["read_by_id"] += 1
        rows = [self.vendor.table(obj)[i] for i in ids if i in self.vendor.table(obj)]
        return [NativeRecord(r.id, r.modified_at, dict(r.fields), r.deleted, r.merged_into) for r in rows]

    async def search(self, obj: str, key: str, values: Sequence[str]) -> list[NativeRecord]:
        found = [self.vendor.find(obj, key, v) for v in values]
        return [NativeRecord(r.id, r.modified_at, dict(r.fields)) for r in found if r]

    async def write(self, obj: str, batch: Sequence[WriteRequest]) -> list[WriteResult]:
        self.vendor.calls["write"] += 1
        if self.vendor.outage:
            raise ConnectionError(f"{self.vendor.name} is unavailable")
        results = [self._write_one(obj, request) for request in batch]
        if self.vendor.fail_after_apply:
            self.vendor.fail_after_apply -= 1
            if not self.vendor.fail_after_apply:
                raise ConnectionResetError("the answer was lost after the vendor applied the batch")
        return results

    def _write_one(self, obj: str, request: WriteRequest) -> WriteResult:
        bad = [k for k, v in request.fields.items() if isinstance(v, str) and v in self.vendor.reject_values]
        if bad:
            return WriteResult.failed(
                request.ref, VendorError("INVALID", f"{bad[0]} is not valid", retryable=False, fields=(bad[0],))
            )
        self.vendor.writes[f"{obj}:{request.op.value}"] += 1
        if request.op is WriteOp.DELETE:
            row = self.vendor.table(obj)[request.native_id or ""]
            row.deleted, row.modified_at = True, self.vendor.clock()
            return WriteResult(request.ref, WriteStatus.DELETED, row.id)
        existing = None
        if request.op is WriteOp.UPDATE:
            existing = self.vendor.table(obj).get(request.native_id or "")
        elif request.op is WriteOp.UPSERT and request.upsert_key:
            existing = self.vendor.find(obj, request.upsert_key, request.fields[request.upsert_key])
        row = self.vendor.put(obj, dict(request.fields), existing.id if existing else None)
        return WriteResult(request.ref, WriteStatus.UPDATED if existing else WriteStatus.CREATED, row.id)

    async def associations(self, obj: str, ids: Sequence[str]) -> list[Association]:
        return [Association(d, c) for d in ids for c in sorted(self.vendor.links.get(d, ()))]

    async def associate(self, obj: str, links: Sequence[Association]) -> list[WriteResult]:
        for link in links:
            self.vendor.links.setdefault(link.from_id, set()).add(link.to_id)
        self.vendor.writes["associate"] += len(links)
        return [WriteResult(f"{a.from_id}>{a.to_id}", WriteStatus.UPDATED, a.from_id) for a in links]

    async def touchpoints(self, obj: str, ids: Sequence[str], since: datetime | None) -> list[Touchpoint]:
        wanted = set(ids)
        return [t for t in self.vendor.touches if t.native_id in wanted and (since is None or t.occurred_at > since)]

    def limits(self, obj: str) -> Limits:
        return Limits(
            max_write_batch=2,
            max_read_batch=10,
            page_size=self.vendor.page_size,
            requests_per_window=1000,
            window_seconds=1,
            max_concurrency=2,
        )

    async def aclose(self) -> None:
        return None


def fake_registry(vendors: dict[str, FakeVendor]) -> Registry:
    """A registry whose 'fake' plugin serves the given vendors by system name."""
    plugin = ConnectorPlugin(
        name="fake",
        settings_model=FakeSettings,
        create=lambda ctx: FakeConnector(vendors[ctx.system], ctx.system),
        objects={"contacts": "contact", "deals": "deal"},
    )
    return Registry(plugins={"fake": plugin})


class Crash(BaseException):
    """A process dying at a step boundary: not an error the engine may handle."""


def crash_on_call(n: int, *, before: bool) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Wrap a function (sync or async): its n-th call raises Crash, before doing its work or after it."""
    calls = {"n": 0}

    def enter() -> None:
        calls["n"] += 1
        if calls["n"] == n and before:
            raise Crash

    def leave() -> None:
        if calls["n"] == n:
            raise Crash

    def wrap(real: Callable[..., Any]) -> Callable[..., Any]:
        if not inspect.iscoroutinefunction(real):

            def crashing_sync(*args: Any, **kwargs: Any) -> Any:
                enter()
                result = real(*args, **kwargs)
                leave()
                return result

            return crashing_sync

        async def crashing(*args: Any, **kwargs: Any) -> Any:
            enter()
            result = await real(*args, **kwargs)
            leave()
            return result

        return crashing

    return wrap
