"""``closeloop errors --retry``: quarantined records an admin asked to retry are tried again this cycle.

A record quarantined while being read (a value that did not map, an ambiguous match) is re-read from its system and
applied as if it had just changed; a write a system refused is owed again and goes out with the next drain.
"""

from __future__ import annotations

from closeloop.engine.context import CycleContext
from closeloop.engine.golden import GoldenState
from closeloop.engine.owed import queue_owed
from closeloop.engine.owners import ensure_owners
from closeloop.engine.reconcile import READ_CODES, PageApplier
from closeloop.store.rows import QuarantineEntry, QuarantineStatus


async def retry_quarantined(ctx: CycleContext) -> None:
    """Retry every quarantine entry of this connection marked for retry."""
    for entry in ctx.store.list_quarantine(QuarantineStatus.RETRY, connection=ctx.name):
        if entry.code in READ_CODES and entry.native_id:
            await _reread(ctx, entry)
        elif entry.golden_id:
            _owe_again(ctx, entry)


async def _reread(ctx: CycleContext, entry: QuarantineEntry) -> None:
    mapping = ctx.mapping_of(entry.system, entry.object)
    if mapping is None or entry.native_id is None:
        return
    records = await ctx.connectors[entry.system].read(entry.object, [entry.native_id])
    await ensure_owners(ctx, entry.system)
    with ctx.store.transaction():
        ctx.store.resolve_quarantine(ctx.name, entry.system, entry.object, native_id=entry.native_id)
        link = ctx.store.get_link(entry.system, entry.object, entry.native_id)
        if link is not None:  # forget the last seen time so the record is applied again
            ctx.store.delete_link(entry.system, entry.object, entry.native_id)
            ctx.store.put_link(
                entry.system, entry.object, entry.native_id, link.golden_id, link.entity, snapshot=link.snapshot
            )
        PageApplier(ctx, mapping, entry.system, entry.object).apply(records)


def _owe_again(ctx: CycleContext, entry: QuarantineEntry) -> None:
    mapping = ctx.connection.mapping(entry.entity)
    stored = ctx.store.get_golden(entry.golden_id or "")
    with ctx.store.transaction():
        ctx.store.resolve_quarantine(
            ctx.name,
            entry.system,
            entry.object,
            native_id=entry.native_id,
            golden_id=None if entry.native_id else entry.golden_id,
        )
        if mapping is None or stored is None:
            return
        golden = GoldenState.decode(stored)
        queue_owed(ctx, mapping, golden, source=ctx.connection.other(entry.system))
