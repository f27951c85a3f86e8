"""Where the engine reads each change stream from, and how far a page moves it: the stored :class:`Cursor`.

Every stream (a vendor object, a touch stream, an activity stream) keeps one cursor per connection and system:
the (modified_at, id) of the last record applied, id included. A read starts from it less the connection's
lookback; with no lookback it starts at the cursor itself, so a page boundary inside a run of records sharing
one modified time neither reads them again nor skips them. A page's cursor moves in the page's transaction and
never backwards (a page the lookback reads again may end before the stored cursor). The type and its boundary
rules live in :mod:`closeloop.model`, below the connectors, which share them.
"""

from __future__ import annotations

from closeloop.engine.context import CycleContext
from closeloop.model import Cursor

__all__ = ["Cursor", "move", "read_from"]


def read_from(ctx: CycleContext, system: str, stream: str) -> Cursor | None:
    """Where a read of ``stream`` starts: its stored cursor less the lookback, None when never read."""
    stored = ctx.store.get_cursor(ctx.name, system, stream)
    return None if stored is None else stored.lookback(ctx.connection.lookback)


def move(ctx: CycleContext, system: str, stream: str, last: Cursor) -> None:
    """Store ``last`` as the cursor of ``stream`` unless the stored one already lies at or past it.

    Call it inside the transaction that applies the page ``last`` ends.
    """
    stored = ctx.store.get_cursor(ctx.name, system, stream)
    if stored is None or last > stored:
        ctx.store.set_cursor(ctx.name, system, stream, last)
