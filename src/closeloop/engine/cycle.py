"""One sync cycle of one connection: describe, pull both sides page by page, drain the outbox, close the loop.

Per connection and per entity mapping, contacts before deals. Both sides of a mapping are read at once (one
side's round trips and rate-limit pauses overlap the work on the other side's pages), but pages are applied one
at a time. Each page commits its golden updates, links, outbox items, ledger entries and cursor advance in ONE
transaction; the outbox drains only after both sides have been pulled, so a record changed on both sides is
merged before anything is written.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Iterable, Sequence
from contextlib import aclosing
from dataclasses import dataclass

from closeloop.config.models import Entity, EntityMapping
from closeloop.engine import cursor as cursors
from closeloop.engine import fieldtimes
from closeloop.engine.activity import pull_activities
from closeloop.engine.context import CycleContext
from closeloop.engine.deals import fetch_associations, store_associations, sync_associations
from closeloop.engine.drain import drain
from closeloop.engine.fieldcheck import check_fields
from closeloop.engine.merges import move_merged
from closeloop.engine.owners import ensure_owners, unknown_ids
from closeloop.engine.reconcile import PageApplier
from closeloop.engine.retry import retry_quarantined
from closeloop.engine.revenue import STAGE, book_deals, refresh_rollups
from closeloop.engine.setup import after_setup, ensure_owned_fields
from closeloop.engine.sla_stamp import stamp_sla_breaches
from closeloop.engine.source import capture_original_sources
from closeloop.engine.survivors import name_survivors
from closeloop.engine.touch import fetch_touchpoints, pull_touches, store_touchpoints, touch_subjects
from closeloop.model import NativeRecord, Page


def ordered(mappings: Sequence[EntityMapping]) -> list[EntityMapping]:
    """Contacts before deals: deals resolve their contacts through contact links."""
    return sorted(mappings, key=lambda m: 0 if m.entity == Entity.CONTACT else 1)


async def describe(ctx: CycleContext) -> None:
    """Describe every mapped object once, check the mapped fields against it (``FieldCheckError`` before anything
    is read, written or created), create closeloop's missing fields (not in a dry run), and learn which canonical
    deal stages are won."""
    await _describe_objects(ctx)
    check_fields(ctx)
    if ctx.dry_run:  # a plan creates nothing, but plans as the run will write: with closeloop's fields made
        ctx.schemas = after_setup(ctx.connection, ctx.connectors, ctx.schemas)
    else:
        for created in await ensure_owned_fields(ctx):
            ctx.schemas.pop(created, None)  # described again below, with the new fields
        await _describe_objects(ctx)
    won: set[str] = set()
    for mapping in ctx.connection.mappings:
        for system in ctx.connection.systems:
            for obj in mapping.objects(system):
                if mapping.entity == Entity.DEAL and STAGE in mapping.fields:
                    won |= _won_stages(ctx, mapping, system, obj)
    ctx.won_stages = frozenset(won)


async def _describe_objects(ctx: CycleContext) -> None:
    for mapping in ctx.connection.mappings:
        for system in ctx.connection.systems:
            for obj in mapping.objects(system):
                if (system, obj) not in ctx.schemas:
                    ctx.schemas[(system, obj)] = await ctx.connectors[system].describe(obj)


def _won_stages(ctx: CycleContext, mapping: EntityMapping, system: str, obj: str) -> set[str]:
    configured = ctx.loop.won_stages.get(system)
    schema = ctx.schemas[(system, obj)]
    natives = set(configured) if configured else set(schema.won_stages())
    stage = mapping.fields[STAGE]
    return {str(stage.to_canonical(system, native)) for native in natives}


async def pull_mapping(ctx: CycleContext, mapping: EntityMapping) -> None:
    """Pull every object of one mapping, each system's objects in turn and the systems side by side.

    A page is applied whole under ``applying`` (what it asks the vendor first included), so pages of the two
    systems never interleave; only the reading of the change streams overlaps.
    """
    applying = asyncio.Lock()

    async def one_system(system: str) -> None:
        for obj in mapping.objects(system):
            await pull(ctx, mapping, system, obj, applying)

    await together(one_system(system) for system in ctx.connection.systems)


async def together(work: Iterable[Awaitable[None]], *, cancel_rest: bool = True) -> None:
    """Run awaitables concurrently; the first failure cancels the rest (awaited) and is raised as is.

    With ``cancel_rest=False`` the others run to their end first (writes in flight get their answers settled),
    then the first failure is raised.
    """
    tasks = [asyncio.ensure_future(one) for one in work]
    if not cancel_rest:
        outcomes = await asyncio.gather(*tasks, return_exceptions=True)
        failed = [outcome for outcome in outcomes if isinstance(outcome, BaseException)]
        if failed:
            raise failed[0]
        return
    try:
        await asyncio.gather(*tasks)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def pull(
    ctx: CycleContext, mapping: EntityMapping, system: str, obj: str, applying: asyncio.Lock | None = None
) -> None:
    """Read one object's changes since its cursor (less the lookback) and apply them page by page.

    ``applying`` is held while a page is applied, when another pull runs at the same time.
    """
    since = cursors.read_from(ctx, system, obj)
    applier = PageApplier(ctx, mapping, system, obj)
    lock = applying or asyncio.Lock()
    async with aclosing(read_ahead(ctx.connectors[system].read_changes(obj, since), READ_AHEAD_PAGES)) as pages:
        async for page in pages:
            if page.records:
                async with lock:
                    await _apply_page(ctx, applier, page.records)


READ_AHEAD_PAGES = 3
"""How many pages of a change stream may be read (or in flight) ahead of the page being applied."""


async def read_ahead(pages: AsyncIterator[Page], depth: int = 1) -> AsyncGenerator[Page, None]:
    """The pages of a change stream, up to ``depth`` of them read ahead while the caller applies one.

    A page's round trip (network, the vendor, rate-limit pauses) then overlaps the work of applying the pages
    before it, and a stream whose pages wait for the other side's to be applied keeps reading meanwhile. The
    stream is still read in order and one request at a time; nothing is applied early. Use it under
    ``contextlib.aclosing`` so that a cycle stopping mid-stream cancels the reading ahead and closes the stream.
    """
    iterator = aiter(pages)
    room = asyncio.Semaphore(depth)
    ready: asyncio.Queue[Page | _End] = asyncio.Queue()

    async def fetch() -> None:
        while True:
            await room.acquire()
            try:
                page = await anext(iterator)
            except StopAsyncIteration:
                ready.put_nowait(_End())
                return
            except Exception as exc:  # handed to the reader, raised where the page would have been
                ready.put_nowait(_End(exc))
                return
            ready.put_nowait(page)

    fetching = asyncio.ensure_future(fetch())
    try:
        while True:
            page = await ready.get()
            if isinstance(page, _End):
                if page.error is not None:
                    raise page.error
                return
            room.release()
            await asyncio.sleep(0)  # let the next fetch start: up to its first wait (the network, a rate-limit pause)
            yield page
    finally:
        fetching.cancel()
        await asyncio.gather(fetching, return_exceptions=True)
        closing = getattr(iterator, "aclose", None)
        if closing is not None:
            await closing()


@dataclass(frozen=True)
class _End:
    """The end of a change stream read ahead: its error, if it failed."""

    error: Exception | None = None


async def _apply_page(ctx: CycleContext, applier: PageApplier, records: Sequence[NativeRecord]) -> None:
    mapping, system, obj = applier.mapping, applier.system, applier.obj
    is_deal = mapping.entity == Entity.DEAL
    # What the vendor must be asked about (associations, touchpoints) is asked before the transaction, and only
    # for versions not applied yet: a quiet cycle's lookback re-reads cost no further calls.
    news = await _news(ctx, applier, records)
    if not is_deal:  # a merge the vendor reported as a plain deletion carries its survivor from here on
        records = await name_survivors(ctx, applier, records, news)
    fresh = [r.id for r in news if not r.deleted]
    times = await fieldtimes.fetch(ctx, mapping, fieldtimes.asked(ctx, mapping, system, obj, news))
    associations = await fetch_associations(ctx, system, obj, fresh) if is_deal else []
    touchpoints = [] if is_deal else await fetch_touchpoints(ctx, system, obj, touch_subjects(ctx, system, obj, fresh))
    with ctx.store.transaction():
        result = applier.apply(records, times)
        if is_deal:
            ctx.deals.update(result.touched.values())
            credited = store_associations(ctx, system, result.touched, associations)
            refresh_rollups(ctx, book_deals(ctx, system, credited))
        else:
            capture_original_sources(ctx, system, result.touched, touchpoints, result.goldens, result.changed)
            store_touchpoints(ctx, system, result.touched, touchpoints)
            refresh_rollups(ctx, move_merged(ctx, system, result.merged))
        cursors.move(ctx, system, obj, records[-1].position)


async def _news(ctx: CycleContext, applier: PageApplier, records: Sequence[NativeRecord]) -> list[NativeRecord]:
    """The page's versions not applied yet, with the user directory at hand when they name owners.

    The directory is read when missing or stale, or when a new version names an owner it does not know; versions
    as old as the last seen are told apart by their values, owners included, so they are looked at again then.
    """
    news = applier.fresh(records)
    live = [r for r in news if not (r.deleted or r.merged_into)]
    if not live:
        return news
    mapping, system, obj = applier.mapping, applier.system, applier.obj
    read = await ensure_owners(ctx, system)
    if not read and unknown_ids(ctx, mapping, system, obj, live):
        read = await ensure_owners(ctx, system, refresh=True)
    return applier.fresh(records) if read else news


async def run_cycle(ctx: CycleContext) -> None:
    """Pull every mapped object of both systems, then (unless a dry run) drain and write associations.

    Contacts before deals, in each step; the two systems of a mapping are read, and then written, side by side.
    Nothing is read or written when a mapped field does not fit the vendor's describe (``FieldCheckError``).
    """
    await describe(ctx)
    mappings = ordered(ctx.connection.mappings)
    await retry_quarantined(ctx)  # in a dry run too: the plan's rolled-back transaction undoes it
    for mapping in mappings:
        await pull_mapping(ctx, mapping)
        if mapping.entity == Entity.CONTACT:
            await pull_touches(ctx)
            await pull_activities(ctx)
            stamp_sla_breaches(ctx)
    if ctx.dry_run:
        return
    for mapping in mappings:
        await together((_write_side(ctx, mapping, system) for system in ctx.connection.systems), cancel_rest=False)
    contacts = ctx.connection.mapping(Entity.CONTACT)
    if contacts is not None:  # rollups written back after the deals closed this cycle
        await together((drain(ctx, contacts, system) for system in ctx.connection.systems), cancel_rest=False)


async def _write_side(ctx: CycleContext, mapping: EntityMapping, system: str) -> None:
    """Drain what one mapping owes one system, then (deals) write their associations there.

    The two systems are written side by side: their outbox items, links and quarantine entries are disjoint, and
    each batch settles in its own transaction. One side failing (its budget spent, say) lets the other finish, so
    no write in flight loses its answer.
    """
    await drain(ctx, mapping, system)
    if mapping.entity == Entity.DEAL:
        await sync_associations(ctx, mapping, system, ctx.deals)
