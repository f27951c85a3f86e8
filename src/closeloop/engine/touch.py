"""Touchpoints of the marketing system's contacts, recorded for attribution after each page."""

from __future__ import annotations

import logging
from collections.abc import Mapping

from closeloop.engine.context import CycleContext
from closeloop.engine.source import capture_original_sources
from closeloop.store.rows import TouchpointRow

log = logging.getLogger(__name__)


async def record_touchpoints(ctx: CycleContext, system: str, obj: str, touched: Mapping[str, str]) -> None:
    """Fetch and store the touchpoints of a page of contacts; a failure here never fails the sync."""
    try:
        found = await ctx.connectors[system].touchpoints(obj, list(touched), None)
    except Exception as exc:  # attribution data is best effort; the sync itself must go on
        log.warning("touchpoints of %s %s not read: %s", system, obj, exc)
        return
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
    with ctx.store.transaction():
        capture_original_sources(ctx, system, touched, found)
        if rows:
            ctx.count("touchpoints", system, ctx.store.add_touchpoints(rows))
