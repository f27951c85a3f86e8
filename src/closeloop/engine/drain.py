"""Drain the outbox: owed writes go out in the vendor's largest batches, concurrently up to its limit.

Results are handled per record: a success updates the link and its snapshot (the echo guard), a retryable error
holds the item back with exponential backoff, a permanent one quarantines the record with the vendor's
message. One bad record never holds up its batch.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from closeloop.config.models import Entity, EntityMapping
from closeloop.engine.context import CycleContext
from closeloop.engine.golden import GoldenState
from closeloop.engine.loaded import EMPTY
from closeloop.engine.mapper import to_native_fields
from closeloop.engine.normalize import Canonical
from closeloop.engine.owed import OwedWrite, owed_writes
from closeloop.engine.owners import ensure_owners, unknown_emails
from closeloop.engine.recheck import moved_since_read, updated_ids
from closeloop.engine.working import Working
from closeloop.http.errors import AuthError, BudgetExhausted, Unreachable
from closeloop.model import MODIFIED_SINCE_READ, FieldType, Limits, VendorError, WriteOp, WriteRequest, WriteResult
from closeloop.store.rows import OutboxEntry

log = logging.getLogger(__name__)

MAX_WINDOW = 5_000
"""The most due writes prepared at a time (each holds its golden record, links and request): two rounds of full
batches at the vendor's concurrency, up to this (25 collections of 200, twice, would make 10,000), and both
systems drain side by side, which made the drain the peak of a large sync's memory."""

BACKOFF_BASE = timedelta(seconds=30)
BACKOFF_MAX = timedelta(hours=1)


@dataclass
class Pending:
    """A write about to be sent, with the outbox items it settles."""

    request: WriteRequest
    write: OwedWrite
    golden_id: str
    outbox_ids: list[int]
    attempts: int
    refused: bool = False
    """Some owed values were refused before sending: they are not written, the record stays quarantined."""
    sent: Mapping[str, Canonical] = field(default_factory=dict)
    """The canonical values the request carries (read-only targets and refused values left out)."""


async def drain(ctx: CycleContext, mapping: EntityMapping, system: str) -> None:
    """Send every due write of ``mapping``'s objects in ``system``."""
    await owners_for_writes(ctx, mapping, system)
    for obj in mapping.objects(system):
        for pending in prepared(ctx, mapping, system, obj):
            # A golden record queued under one object may owe writes to its links in another (a person queued
            # under Contact whose record is a Lead): each request goes to the object of the record it writes.
            by_obj: dict[str, list[Pending]] = defaultdict(list)
            for item in pending:
                by_obj[item.write.obj].append(item)
            for target, items in by_obj.items():
                await _send(ctx, mapping, system, target, items)


async def owners_for_writes(ctx: CycleContext, mapping: EntityMapping, system: str) -> None:
    """Have ``system``'s user directory at hand when writes are due there: owners' emails become its user ids.

    Read again (once per cycle) when a due write names an owner's email it does not know: the user may have
    joined since it was read, and a write refused for that would be quarantined for nothing.
    """
    owner_fields = [name for name, f in mapping.fields.items() if f.type is FieldType.OWNER and system in f.native]
    if not owner_fields:
        return
    due = [e for obj in mapping.objects(system) for e in ctx.store.due_outbox(ctx.name, system, obj, 1000, ctx.clock())]
    if not due:
        return
    if await ensure_owners(ctx, system):
        return
    goldens = ctx.store.get_goldens(list({e.item.golden_id for e in due}))
    emails = [g.fields.get(name) for g in goldens.values() for name in owner_fields]
    if unknown_emails(ctx.owners.get(system), emails):
        await ensure_owners(ctx, system, refresh=True)


def prepared(ctx: CycleContext, mapping: EntityMapping, system: str, obj: str) -> Iterator[list[Pending]]:
    """The due writes of one object, a window at a time, as the requests the target will be sent.

    ``plan`` lists these very requests (inside a transaction it rolls back), so it shows what ``sync`` writes:
    the same values left out (read-only at the target, refused by a restricted picklist), the same records.
    The next window is read only after the caller has handled this one.
    """
    limits = ctx.connectors[system].limits(obj)
    window = min(MAX_WINDOW, max(1, limits.max_write_batch) * max(1, limits.max_concurrency) * 2)
    after = 0
    while True:
        due = ctx.store.due_outbox(ctx.name, system, obj, window, ctx.clock(), after_id=after)
        if not due:
            return
        after = due[-1].id
        yield _prepare(ctx, mapping, system, due)


def _prepare(ctx: CycleContext, mapping: EntityMapping, system: str, due: Sequence[OutboxEntry]) -> list[Pending]:
    """Recompute what each golden record owes now; settle items that owe nothing any more."""
    by_golden: dict[str, list[OutboxEntry]] = defaultdict(list)
    for entry in due:
        by_golden[entry.item.golden_id].append(entry)
    goldens = ctx.store.get_goldens(list(by_golden))
    links = ctx.store.links_of_many(list(by_golden))
    pending: list[Pending] = []
    settled: list[int] = []
    deletes = [e for e in due if e.item.op is WriteOp.DELETE and e.item.native_id]
    for entry in deletes:
        request = WriteRequest(
            f"{entry.item.golden_id}:{entry.item.native_id}", WriteOp.DELETE, native_id=entry.item.native_id
        )
        write = OwedWrite(system, entry.item.object, WriteOp.DELETE, {}, native_id=entry.item.native_id)
        pending.append(Pending(request, write, entry.item.golden_id, [entry.id], entry.attempts))
    with ctx.store.transaction():
        for golden_id, entries in by_golden.items():
            ids = [e.id for e in entries if e.item.op is not WriteOp.DELETE]
            if not ids:
                continue
            stored = goldens.get(golden_id)
            if stored is None:
                settled.extend(ids)
                continue
            golden = GoldenState.decode(stored)
            writes = owed_writes(ctx, mapping, golden, system, ctx.connection.other(system), links[golden_id])
            read_at = {link.native_id: link.last_modified_at for link in links[golden_id] if link.system == system}
            built = [_request(ctx, mapping, golden, w, ids, read_at.get(w.native_id or "")) for w in writes]
            ready = [
                Pending(req, kept, golden_id, ids, max(e.attempts for e in entries), kept != w, sent)
                for (req, kept, sent), w in zip(built, writes, strict=True)
                if req is not None
            ]
            if not ready:
                settled.extend(ids)
            pending.extend(ready)
        ctx.store.outbox_done(settled)
    return pending


def _request(
    ctx: CycleContext,
    mapping: EntityMapping,
    golden: GoldenState,
    write: OwedWrite,
    outbox_ids: list[int],
    read_at: datetime | None = None,
) -> tuple[WriteRequest | None, OwedWrite, dict[str, Canonical]]:
    """The native request for an owed write, the write without the values the target refuses up front (those go
    to quarantine and must not enter the snapshot as if written), and the canonical values the request carries.

    An update carries ``read_at``, the target's modified time as closeloop last read it, for systems that can
    make the update conditional on it."""
    native, problems = to_native_fields(
        mapping, write.system, write.obj, write.values, ctx.schema(write.system, write.obj), ctx.owners
    )
    if problems:
        ctx.count("quarantined", write.system)
        ctx.store.quarantine(
            ctx.name,
            write.system,
            write.obj,
            mapping.entity,
            code="INVALID_FOR_TARGET",
            reason="; ".join(str(p) for p in problems),
            native_id=None,  # keyed by the golden record: a create and the updates after it share one entry
            golden_id=golden.id,
            payload={"values": dict(write.values), "native_id": write.native_id},
        )
        refused = {p.field for p in problems}
        write = replace(write, values={k: v for k, v in write.values.items() if k not in refused})
    fields = dict(native.fields)
    partner_field = mapping.partner_field(write.system)
    if partner_field and write.partner_id is not None:
        fields[partner_field] = write.partner_id
    if write.op is WriteOp.UPSERT and write.upsert_key:
        fields.setdefault(write.upsert_key, write.upsert_value)
    if not fields and write.op is WriteOp.UPDATE:
        return None, write, {}
    ref = f"{golden.id}:{write.native_id or 'new'}"
    since = read_at if write.op is WriteOp.UPDATE else None
    request = WriteRequest(
        ref, write.op, fields, native_id=write.native_id, upsert_key=write.upsert_key, unmodified_since=since
    )
    return request, write, native.canonical


async def _send(ctx: CycleContext, mapping: EntityMapping, system: str, obj: str, pending: list[Pending]) -> None:
    connector = ctx.connectors[system]
    limits = connector.limits(obj)
    gate = asyncio.Semaphore(max(1, limits.max_concurrency))
    by_op: dict[WriteOp, list[Pending]] = defaultdict(list)
    for item in pending:
        by_op[item.request.op].append(item)
    batches = [
        items[i : i + limits.max_write_batch]
        for items in by_op.values()
        for i in range(0, len(items), max(1, limits.max_write_batch))
    ]

    async def one(batch: list[Pending]) -> None:
        async with gate:
            await _send_batch(ctx, mapping, system, obj, batch)

    await asyncio.gather(*(one(batch) for batch in batches))


async def _send_batch(ctx: CycleContext, mapping: EntityMapping, system: str, obj: str, batch: list[Pending]) -> None:
    connector = ctx.connectors[system]
    try:
        conditional = _conditional(connector.limits(obj), batch)
        if not conditional:
            batch = await _unmoved(ctx, mapping, system, obj, batch)
        if not batch:
            return
        results = await connector.write(obj, [p.request for p in batch])
        if conditional:
            batch, results = await _after_refusals(ctx, mapping, system, obj, batch, results)
    except (Unreachable, BudgetExhausted, AuthError):
        raise  # nothing can be written to this system now: the run fails with the reason
    except Exception as exc:  # the whole call failed after the HTTP layer's retries: hold every item back
        log.warning("write batch to %s %s failed: %s", system, obj, exc)
        failed = VendorError("WRITE_FAILED", f"{type(exc).__name__}: {exc}", retryable=True)
        with ctx.store.transaction():
            for item in batch:
                _retry_later(ctx, mapping, item, failed)
        return
    with ctx.store.transaction():
        settled = Settled(ctx, mapping)
        settled.load(system, obj, batch, results)
        for item, result in zip(batch, results, strict=True):
            _settle(ctx, mapping, settled, item, result)
        settled.flush()


def _conditional(limits: Limits, batch: Sequence[Pending]) -> bool:
    """True when the target refuses each update of this batch whose record changed since closeloop read it,
    in one call: then no re-read is needed before sending, only after a refusal."""
    updates = [p for p in batch if p.request.op is WriteOp.UPDATE]
    return (
        0 < len(updates) <= limits.conditional_update_batch
        and len(updates) == len(batch)
        and all(p.request.unmodified_since is not None for p in updates)
    )


async def _after_refusals(
    ctx: CycleContext,
    mapping: EntityMapping,
    system: str,
    obj: str,
    batch: list[Pending],
    results: list[WriteResult],
) -> tuple[list[Pending], list[WriteResult]]:
    """Handle the updates refused as changed since the read: re-read and re-merge them (``recheck``).

    Those that moved are settled (the merge queued what they still owe); those whose mapped values did not move
    (an unmapped field's edit, closeloop's own write not read back yet) are sent again without the condition.
    """
    refused = [
        i for i, r in enumerate(results) if not r.ok and r.error is not None and r.error.code == MODIFIED_SINCE_READ
    ]
    if not refused:
        return batch, results
    moved = await moved_since_read(ctx, mapping, system, obj, [str(batch[i].write.native_id) for i in refused])
    again = [i for i in refused if batch[i].write.native_id not in moved]
    settled = [batch[i] for i in refused if batch[i].write.native_id in moved]
    if settled:
        with ctx.store.transaction():
            ctx.store.outbox_done([outbox_id for p in settled for outbox_id in p.outbox_ids])
    retried: dict[int, WriteResult] = {}
    if again:
        requests = [replace(batch[i].request, unmodified_since=None) for i in again]
        retried = dict(zip(again, await ctx.connectors[system].write(obj, requests), strict=True))
    keep = [i for i in range(len(batch)) if i not in refused or i in retried]
    return [batch[i] for i in keep], [retried.get(i, results[i]) for i in keep]


async def _unmoved(
    ctx: CycleContext, mapping: EntityMapping, system: str, obj: str, batch: list[Pending]
) -> list[Pending]:
    """The batch less the updates of records edited on the target since the cycle read them (see ``recheck``).

    Those were merged and queued again with what they still owe; their old outbox items are settled.
    """
    ids = updated_ids([(p.request.op, p.write.native_id) for p in batch])
    moved = await moved_since_read(ctx, mapping, system, obj, ids)
    if not moved:
        return batch
    dropped = [p for p in batch if p.request.op is WriteOp.UPDATE and p.write.native_id in moved]
    with ctx.store.transaction():
        ctx.store.outbox_done([outbox_id for p in dropped for outbox_id in p.outbox_ids])
    return [p for p in batch if p not in dropped]


def _settle(ctx: CycleContext, mapping: EntityMapping, settled: Settled, item: Pending, result: WriteResult) -> None:
    if result.ok:
        settled.succeeded(item, result)
    elif result.error is not None and result.error.retryable:
        _retry_later(ctx, mapping, item, result.error)
    else:
        _quarantine(ctx, mapping, item, result.error)


class Settled:
    """The successes of one batch, written with one statement per table: links, outbox, quarantine."""

    def __init__(self, ctx: CycleContext, mapping: EntityMapping) -> None:
        self.ctx, self.mapping = ctx, mapping
        self.work = Working(EMPTY, ctx.clock(), ctx.store.new_golden_id)
        self.where = (ctx.name, "", "")
        self.done: list[int] = []

    def load(self, system: str, obj: str, batch: Sequence[Pending], results: Sequence[WriteResult]) -> None:
        """Read the links of every record the batch wrote and the object's quarantined records, a query each."""
        written = (result.native_id or item.write.native_id for item, result in zip(batch, results, strict=True))
        store, self.where = self.ctx.store, (self.ctx.name, system, obj)
        links = store.find_links(system, obj, [native_id for native_id in written if native_id])
        parked = frozenset(store.quarantined_keys(self.ctx.name, system, obj))
        found = {(system, obj, native_id): link for native_id, link in links.items()}
        self.work = Working(replace(EMPTY, links=found, quarantined=parked), self.work.now, store.new_golden_id)

    def succeeded(self, item: Pending, result: WriteResult) -> None:
        """Settle one write the vendor accepted: its snapshot now holds the values written (the echo guard)."""
        write, ctx = item.write, self.ctx
        self.done.extend(item.outbox_ids)
        if write.op is WriteOp.DELETE:
            ctx.count("deleted_remote", write.system)
            return
        native_id = result.native_id or write.native_id
        if native_id is None:
            return
        link = self.work.link(write.system, write.obj, native_id)
        snapshot = {**(link.snapshot if link else {}), **write.values}
        self.work.put_link(
            (write.system, write.obj, native_id),
            item.golden_id,
            self.mapping.entity,
            snapshot=snapshot,
            partner_id=write.partner_id,
        )
        if write.op is WriteOp.UPDATE:
            ctx.count("updated", write.system)
        else:
            ctx.count("created" if result.status.value == "created" else "updated", write.system)
        if not item.refused:
            self.work.resolve(golden_id=item.golden_id)
        if self.mapping.entity == Entity.DEAL:
            ctx.deals.add(item.golden_id)

    def flush(self) -> None:
        """Write what the batch settled; the caller holds the transaction."""
        delta = self.work.delta(self.where)
        delta.done = self.done
        self.ctx.store.apply_delta(delta)


def _retry_later(ctx: CycleContext, mapping: EntityMapping, item: Pending, error: VendorError) -> None:
    """Hold the write back with exponential backoff; after the connection's last attempt, quarantine its record."""
    tried = item.attempts + 1
    if tried >= ctx.connection.write_attempts:
        _quarantine(ctx, mapping, item, replace(error, message=f"gave up after {tried} attempts: {error.message}"))
        return
    delay = min(BACKOFF_MAX, BACKOFF_BASE * (2 ** min(item.attempts, 10)))
    ctx.count("retry_later", item.write.system)
    for outbox_id in item.outbox_ids:
        ctx.store.outbox_retry_later(outbox_id, ctx.clock() + delay, str(error))


def _quarantine(ctx: CycleContext, mapping: EntityMapping, item: Pending, error: VendorError | None) -> None:
    ctx.count("quarantined", item.write.system)
    ctx.store.quarantine(
        ctx.name,
        item.write.system,
        item.write.obj,
        mapping.entity,
        code=error.code if error else "UNKNOWN",
        reason=error.message if error else "no reason",
        native_id=item.write.native_id,
        golden_id=item.golden_id,
        payload={"fields": dict(item.request.fields)},
    )
    ctx.store.outbox_done(item.outbox_ids)
