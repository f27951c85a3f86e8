"""Per-contact revenue rollups, computed from the ledger alone."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from closeloop.loop.ledger import EntryKind, LedgerEntry, positions
from closeloop.loop.money import cents
from closeloop.model import iso_utc

ROLLUP_NAMES = (
    "closed_won_revenue",
    "closed_won_deals",
    "first_closed_won_at",
    "last_closed_won_at",
    "customer_since",
)


@dataclass(frozen=True, slots=True)
class Rollup:
    """A contact's closed-won figures, in the base currency.

    Each credited contact gets the full amount of a deal (as CRM "revenue on contact" fields do);
    attribution, not the rollup, splits revenue. Revenue, deal count and first/last close dates cover the
    deals currently won. ``customer_since`` follows the ledger too: the earliest close ever booked for the
    contact on a deal that is won now. A reopen that leaves no won deal clears it; a deal reopened and won
    again with a later close date keeps its first booking, so ``customer_since`` may be earlier than
    ``first_closed_won_at`` for that one reason: the customer relationship began at that deal's first win.
    """

    contact_id: str
    closed_won_revenue: Decimal = Decimal("0.00")
    closed_won_deals: int = 0
    first_closed_won_at: datetime | None = None
    last_closed_won_at: datetime | None = None
    customer_since: datetime | None = None

    def as_canonical(self) -> dict[str, str | None]:
        """The rollup as canonical strings keyed by rollup name (money in cents, times RFC 3339 UTC)."""
        return {
            "closed_won_revenue": f"{cents(self.closed_won_revenue):f}",
            "closed_won_deals": str(self.closed_won_deals),
            "first_closed_won_at": _iso(self.first_closed_won_at),
            "last_closed_won_at": _iso(self.last_closed_won_at),
            "customer_since": _iso(self.customer_since),
        }


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else iso_utc(moment)


def _earliest(moments: Iterable[datetime | None]) -> datetime | None:
    known = [m for m in moments if m is not None]
    return min(known) if known else None


def _latest(moments: Iterable[datetime | None]) -> datetime | None:
    known = [m for m in moments if m is not None]
    return max(known) if known else None


def rollups_for(contact_ids: Iterable[str], entries: Iterable[LedgerEntry]) -> dict[str, Rollup]:
    """The rollup of each of ``contact_ids`` from the ledger ``entries`` (every deal's full history)."""
    ledger = list(entries)
    open_positions = list(positions(ledger).values())
    result: dict[str, Rollup] = {}
    for contact in dict.fromkeys(contact_ids):
        won = [p for p in open_positions if contact in p.contacts]
        standing = {p.deal_id for p in won}
        booked = [
            e.closed_at for e in ledger if e.kind is EntryKind.WON and e.deal_id in standing and contact in e.contacts
        ]
        result[contact] = Rollup(
            contact_id=contact,
            closed_won_revenue=cents(sum((p.amount_base for p in won), Decimal(0))),
            closed_won_deals=len(won),
            first_closed_won_at=_earliest(p.closed_at for p in won),
            last_closed_won_at=_latest(p.closed_at for p in won),
            customer_since=_earliest(booked),
        )
    return result
