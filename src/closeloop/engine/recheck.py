"""No lost update: re-read the records a write batch updates, just before sending it, and re-merge those that moved.

The drain's writes were computed from what the cycle read at its start. A user may edit a target record after
that read; a plain update would then replace the edit, and its snapshot would take the overwrite for closeloop's
own echo. So each batch of updates first reads its records again (one batch read, the vendor's largest), and a
record whose version was not applied yet is merged like any page (its field histories asked on a conflict) before
anything is sent. Its write is dropped from the batch: the merge queued what the record still owes, which a later
window of the same drain (or the next cycle) sends from the merged golden record. The links keep their last-seen
times, so the change stream still hands the moved version over, with its touchpoints, as news.

What remains is the instant between this read and the write landing, which no vendor without conditional
batch updates lets a client close.
"""

from __future__ import annotations

from collections.abc import Sequence

from closeloop.config.models import EntityMapping
from closeloop.engine import fieldtimes
from closeloop.engine.context import CycleContext
from closeloop.engine.reconcile import PageApplier
from closeloop.model import NativeRecord, WriteOp


def updated_ids(batch: Sequence[tuple[WriteOp, str | None]]) -> list[str]:
    """The native ids of the records a batch updates (creates, upserts and deletes replace no edit)."""
    return list(dict.fromkeys(native_id for op, native_id in batch if op is WriteOp.UPDATE and native_id))


async def moved_since_read(
    ctx: CycleContext, mapping: EntityMapping, system: str, obj: str, ids: Sequence[str]
) -> set[str]:
    """Read ``ids`` again; merge the versions not applied yet; return the native ids that moved."""
    if not ids:
        return set()
    records: list[NativeRecord] = await ctx.connectors[system].read(obj, ids)
    ctx.count("rechecked", system, len(ids))
    applier = PageApplier(ctx, mapping, system, obj)
    moved = [r for r in applier.fresh(records) if not (r.deleted or r.merged_into)]
    if not moved:
        return set()
    times = await fieldtimes.fetch(ctx, mapping, fieldtimes.asked(ctx, mapping, system, obj, moved))
    with ctx.store.transaction():
        applier.apply(moved, times, keep_last_seen=True)
    ctx.count("moved_before_write", system, len(moved))
    return {r.id for r in moved}
