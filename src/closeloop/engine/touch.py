"""Touchpoints of the marketing system's contacts, read before a page's transaction and stored inside it."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

from closeloop.engine.context import CycleContext
from closeloop.model import Touchpoint
from closeloop.store.rows import TouchpointRow

log = logging.getLogger(__name__)


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
