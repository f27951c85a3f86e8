"""``closeloop plan``: the writes a cycle would make, computed by a real pull inside a transaction rolled back."""

from __future__ import annotations

from dataclasses import dataclass

from closeloop.config.models import EntityMapping
from closeloop.engine.context import CycleContext
from closeloop.engine.cycle import ordered, run_cycle
from closeloop.engine.golden import PARTNER, GoldenState, plain
from closeloop.engine.normalize import Canonical
from closeloop.engine.owed import owed_writes
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


class _RollBack(Exception):
    """Raised to undo everything a planning pull wrote."""


async def planned_writes(ctx: CycleContext) -> list[PlannedWrite]:
    """Pull like a sync, list the owed writes of every outbox item, then roll the store back."""
    plan: list[PlannedWrite] = []
    try:
        with ctx.store.transaction():
            await run_cycle(ctx)
            plan = _collect(ctx)
            raise _RollBack
    except _RollBack:
        pass
    return plan


def _collect(ctx: CycleContext) -> list[PlannedWrite]:
    plan: list[PlannedWrite] = []
    far_future = ctx.clock().replace(year=9999)
    for mapping in ordered(ctx.connection.mappings):
        for system in ctx.connection.systems:
            seen: set[str] = set()
            for obj in mapping.objects(system):
                for entry in ctx.store.due_outbox(ctx.name, system, obj, 1_000_000, far_future):
                    golden_id = entry.item.golden_id
                    if golden_id in seen:
                        continue
                    seen.add(golden_id)
                    plan.extend(_planned(ctx, mapping, system, golden_id, entry.item.op))
    return plan


def _planned(ctx: CycleContext, mapping: EntityMapping, system: str, golden_id: str, op: WriteOp) -> list[PlannedWrite]:
    stored = ctx.store.get_golden(golden_id)
    if stored is None:
        return []
    if op is WriteOp.DELETE:
        return [PlannedWrite(system, "", WriteOp.DELETE, golden_id, None, {})]
    golden = GoldenState.decode(stored.id, stored.entity, stored.fields, deleted=stored.deleted)
    out = []
    for write in owed_writes(ctx, mapping, golden, system, ctx.connection.other(system)):
        snapshot = {}
        if write.native_id:
            link = ctx.store.get_link(system, write.obj, write.native_id)
            snapshot = dict(link.snapshot) if link else {}
        before = plain(snapshot)
        diff = {name: (before.get(name), value) for name, value in write.values.items()}
        partner_field = mapping.partner_field(system)
        if partner_field and write.partner_id is not None:
            diff[partner_field] = (snapshot.get(PARTNER), write.partner_id)
        out.append(PlannedWrite(system, write.obj, write.op, golden_id, write.native_id, diff))
    return out
