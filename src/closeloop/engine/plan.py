"""``closeloop plan``: the writes a cycle would make, computed by a real pull inside a transaction rolled back.

The writes listed are the drain's own requests (``drain.prepared``), so ``plan`` and ``sync`` agree field for field:
what a target refuses (read-only, a value its restricted picklist does not allow) is left out of both alike.
"""

from __future__ import annotations

from dataclasses import dataclass

from closeloop.engine.context import CycleContext
from closeloop.engine.cycle import ordered, run_cycle
from closeloop.engine.drain import Pending, owners_for_writes, prepared
from closeloop.engine.normalize import Canonical
from closeloop.model import WriteOp


@dataclass(frozen=True)
class PlannedWrite:
    """One write a sync would make, with the field diff (field: (current value there, new value))."""

    system: str
    obj: str
    op: WriteOp
    golden_id: str
    native_id: str | None
    diff: dict[str, tuple[Canonical, Canonical]]
    fields: tuple[str, ...] = ()
    """The native fields the request carries (an upsert's key included)."""


class _RollBack(Exception):
    """Raised to undo everything a planning pull wrote."""


async def planned_writes(ctx: CycleContext) -> list[PlannedWrite]:
    """Pull like a sync, list the owed writes of every outbox item, then roll the store back."""
    plan: list[PlannedWrite] = []
    try:
        with ctx.store.transaction():
            await run_cycle(ctx)
            for mapping in ctx.connection.mappings:
                for system in ctx.connection.systems:
                    await owners_for_writes(ctx, mapping, system)
            plan = _collect(ctx)
            raise _RollBack
    except _RollBack:
        pass
    return plan


def _collect(ctx: CycleContext) -> list[PlannedWrite]:
    """Every write the drains of a sync would send, in the order they would go."""
    plan: list[PlannedWrite] = []
    for mapping in ordered(ctx.connection.mappings):
        for system in ctx.connection.systems:
            for obj in mapping.objects(system):
                for batch in prepared(ctx, mapping, system, obj):
                    plan.extend(_planned(ctx, item) for item in batch)
    return plan


def _planned(ctx: CycleContext, item: Pending) -> PlannedWrite:
    write, request = item.write, item.request
    link = None
    if request.native_id and request.op is not WriteOp.DELETE:
        link = ctx.store.get_link(write.system, write.obj, request.native_id)
    before = link.snapshot if link else {}
    diff = {name: (before.get(name), value) for name, value in item.sent.items()}
    mapping = ctx.mapping_of(write.system, write.obj)
    partner_field = mapping.partner_field(write.system) if mapping else None
    if partner_field and write.partner_id is not None:
        diff[partner_field] = (link.partner_id if link else None, write.partner_id)
    return PlannedWrite(
        write.system, write.obj, request.op, item.golden_id, request.native_id, diff, tuple(request.fields)
    )
