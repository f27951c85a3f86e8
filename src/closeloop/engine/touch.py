"""Touchpoints: those of a page of contacts, read before the page's transaction and stored inside it, and the
touch streams of systems whose touches change apart from their people (campaign memberships)."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import datetime

from closeloop.config.models import Entity
from closeloop.connector import TouchStream
from closeloop.engine import cursor as cursors
from closeloop.engine.context import CycleContext
from closeloop.model import Touchpoint
from closeloop.store.rows import TouchpointRow

log = logging.getLogger(__name__)


def touch_subjects(ctx: CycleContext, system: str, obj: str, fresh: Sequence[str]) -> list[str]:
    """The people of a page whose touches to ask the system for: every fresh one; where the system streams its
    touches, only those arriving (not linked there yet), since the stream brings every later touch."""
    if not fresh or not isinstance(ctx.connectors[system], TouchStream):
        return list(fresh)
    linked = ctx.store.find_links(system, obj, fresh)
    return [native for native in fresh if native not in linked]


async def fetch_touchpoints(ctx: CycleContext, system: str, obj: str, ids: Sequence[str]) -> list[Touchpoint]:
    """The touchpoints of a page's contacts; a failure here never fails the sync (none are recorded then)."""
    if not ids:
        return []
    try:
        return await ctx.connectors[system].touchpoints(obj, list(ids), None)
    except Exception as exc:  # attribution data is best effort; the sync itself must go on
        log.warning("touchpoints of %s %s not read: %s", system, obj, exc)
        return []


def store_touchpoints(ctx: CycleContext, system: str, touched: Mapping[str, str], found: Sequence[Touchpoint]) -> int:
    """Record the touchpoints of the contacts a page applied (native id -> golden id); return how many were new."""
    rows = [
        TouchpointRow(
            touched[t.native_id],
            system,
            t.native_id,
            t.occurred_at,
            t.kind,
            t.channel,
            t.campaign,
            dict(t.utm),
            t.detail,
        )
        for t in found
        if t.native_id in touched
    ]
    added = ctx.store.add_touchpoints(rows) if rows else 0
    ctx.count("touchpoints", system, added)
    return added


TOUCH_STREAM = "~touches"
"""The cursor name of a system's touch stream (``~`` keeps it apart from every vendor object's name)."""


async def pull_touches(ctx: CycleContext) -> None:
    """Read the touch stream of every system that has one, after its contacts are pulled; see ``pull_touch_stream``."""
    for system in ctx.connection.systems:
        connector = ctx.connectors[system]
        if isinstance(connector, TouchStream):
            await pull_touch_stream(ctx, system, connector)


async def pull_touch_stream(ctx: CycleContext, system: str, connector: TouchStream) -> None:
    """Store the touches changed since the stream's cursor (less the lookback), one transaction per page.

    Touches of people not linked (yet) are left: a person's touches are also read when it first arrives in its
    change stream. A touch read again (the lookback) is recorded once.
    """
    since = cursors.read_from(ctx, system, TOUCH_STREAM)
    async for page in connector.touch_changes(since):
        with ctx.store.transaction():
            touches = first_seen_times(ctx, system, page.touches)
            linked = linked_people(ctx, system, [t.native_id for t in touches])
            store_touchpoints(ctx, system, linked, touches)
            cursors.move(ctx, system, TOUCH_STREAM, page.last)


def first_seen_times(ctx: CycleContext, system: str, touches: Sequence[Touchpoint]) -> list[Touchpoint]:
    """Touches whose vendor keeps no time (they carry a ``seen_key``) take the time closeloop first saw their
    source, kept in the store, so every later read of the same membership gives the same touch; other touches
    are left as they are. A key is kept even while its person is not linked, so a person linked later keeps it."""
    proposed: dict[str, datetime] = {}
    for t in touches:
        if t.seen_key is not None:
            proposed[t.seen_key] = min(t.occurred_at, proposed.get(t.seen_key, t.occurred_at))
    if not proposed:
        return list(touches)
    seen = ctx.store.first_seen(system, proposed)
    return [replace(t, occurred_at=seen[t.seen_key]) if t.seen_key is not None else t for t in touches]


def linked_people(ctx: CycleContext, system: str, natives: Sequence[str]) -> dict[str, str]:
    """Native person id -> golden id, for the people linked in ``system`` under any contact object, not deleted."""
    mapping = ctx.connection.mapping(Entity.CONTACT)
    wanted = list(dict.fromkeys(natives))
    found: dict[str, str] = {}
    for obj in mapping.objects(system) if mapping else ():
        for native, link in ctx.store.find_links(system, obj, wanted).items():
            if native not in found and not link.deleted:
                found[native] = link.golden_id
    return found
