"""Sales activities: each CRM activity stream (Salesforce Tasks and Events, say) read incrementally, for the SLA.

Every stream has its own cursor, named ``~activities:<stream>`` (``~`` keeps it apart from every vendor object's
name), read less the connection's lookback like every other stream; a page is stored and its cursor moved in
one transaction. Activities are kept by the vendor's id, so the lookback's re-read writes nothing new.
"""

from __future__ import annotations

import logging

from closeloop.connector import ActivityStream
from closeloop.engine import cursor as cursors
from closeloop.engine.context import CycleContext

log = logging.getLogger(__name__)

ACTIVITY_CURSOR = "~activities:"
"""Prefix of the cursor name of each activity stream."""


def streams_configured(ctx: CycleContext) -> bool:
    """True when the report holds sales to a follow-up SLA: only then are activities worth their API calls."""
    return ctx.loop.sla is not None


def sales_systems(ctx: CycleContext) -> list[str]:
    """The systems whose activities are sales follow-ups: all but the connection's marketing system (where one is
    named, its emails and tasks are marketing's own, and reading them would spend its API budget for nothing)."""
    marketing = ctx.connection.marketing_system
    return [s for s in ctx.connection.systems if s != marketing]


async def pull_activities(ctx: CycleContext) -> None:
    """Read the activity streams of every sales system that has them, when ``loop.sla`` is configured."""
    if not streams_configured(ctx):
        return
    for system in sales_systems(ctx):
        connector = ctx.connectors[system]
        if isinstance(connector, ActivityStream):
            for stream in connector.activity_streams():
                await pull_activity_stream(ctx, system, connector, stream)


async def pull_activity_stream(ctx: CycleContext, system: str, connector: ActivityStream, stream: str) -> None:
    """Store the activities of one stream changed since its cursor (less the lookback), one transaction a page."""
    name = ACTIVITY_CURSOR + stream
    since = cursors.read_from(ctx, system, name)
    async for page in connector.activity_changes(stream, since):
        with ctx.store.transaction():
            changed = ctx.store.put_activities(system, page.activities)
            ctx.count("activities", system, changed)
            cursors.move(ctx, system, name, page.last)
