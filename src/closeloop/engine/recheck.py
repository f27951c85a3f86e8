"""No lost update: re-read the records a write batch updates, just before sending it, and re-merge those that moved.

The drain's writes were computed from what the cycle read at its start. A user may edit a target record after
that read; a plain update would then replace the edit, and its snapshot would take the overwrite for closeloop's
own echo. So each batch of updates first reads its records again (one batch read, the vendor's largest), and a
record whose mapped values differ from what closeloop last saw from it or wrote to it is merged like any page
(its field histories asked on a conflict) before anything is sent. Its write is dropped from the batch: the merge
queued what the record still owes, which a later window of the same drain (or the next cycle) sends from the
merged golden record. The links keep their last-seen times, so the change stream still hands the moved version
over, with its touchpoints, as news.

What remains is the instant between this read and the write landing, which no vendor without conditional
batch updates lets a client close.
"""

from __future__ import annotations

from collections.abc import Sequence

from closeloop.config.models import EntityMapping
from closeloop.engine import fieldtimes
from closeloop.engine.context import CycleContext
from closeloop.engine.fieldmerge import MISSING
from closeloop.engine.mapper import Owners, to_canonical_fields
from closeloop.engine.reconcile import PageApplier
from closeloop.model import NativeRecord, WriteOp
from closeloop.store.rows import Link


def updated_ids(batch: Sequence[tuple[WriteOp, str | None]]) -> list[str]:
    """The native ids of the records a batch updates (creates, upserts and deletes replace no edit)."""
    return list(dict.fromkeys(native_id for op, native_id in batch if op is WriteOp.UPDATE and native_id))


def edited(
    mapping: EntityMapping, system: str, obj: str, record: NativeRecord, link: Link | None, owners: Owners | None = None
) -> bool:
    """True when a re-read record's mapped values differ from what closeloop last saw from it or wrote to it.

    A newer version with the same values (closeloop's own write not pulled yet, an edit of an unmapped field, or
    a version this drain merged already) replaces no edit: its write goes out as computed.
    """
    if link is None:
        return False
    values, problems = to_canonical_fields(mapping, system, obj, record.fields, owners)
    snapshot = link.snapshot
    return bool(problems) or any(snapshot.get(name, MISSING) != value for name, value in values.items())


async def moved_since_read(
    ctx: CycleContext, mapping: EntityMapping, system: str, obj: str, ids: Sequence[str]
) -> set[str]:
    """Read ``ids`` again; merge the versions not applied yet; return the native ids that moved."""
    if not ids:
        return set()
    records: list[NativeRecord] = await ctx.connectors[system].read(obj, ids)
    ctx.count("rechecked", system, len(ids))
    applier = PageApplier(ctx, mapping, system, obj)
    fresh = [r for r in applier.fresh(records) if not (r.deleted or r.merged_into)]
    links = ctx.store.find_links(system, obj, [r.id for r in fresh])
    moved = [r for r in fresh if edited(mapping, system, obj, r, links.get(r.id), ctx.owners)]
    if not moved:
        return set()
    times = await fieldtimes.fetch(ctx, mapping, fieldtimes.asked(ctx, mapping, system, obj, moved))
    with ctx.store.transaction():
        applier.apply(moved, times, keep_last_seen=True)
    ctx.count("moved_before_write", system, len(moved))
    return {r.id for r in moved}
