"""The revenue ledger: append-only entries that follow each deal in and out of a won stage."""

from __future__ import annotations

import enum
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from closeloop.loop.money import Rates, UnknownCurrency
from closeloop.model import utc


class EntryKind(enum.StrEnum):
    """Why a ledger entry was appended."""

    WON = "won"
    REVERSAL = "reversal"
    ADJUSTMENT = "adjustment"


def _normalize_contacts(contacts: Iterable[str]) -> tuple[str, ...]:
    return tuple(sorted(set(contacts)))


@dataclass(frozen=True, slots=True)
class DealState:
    """What a deal looks like now, as the sync sees it; contacts are the ones credited with it."""

    deal_id: str
    won: bool
    amount: Decimal | None
    currency: str
    closed_at: datetime | None
    contacts: tuple[str, ...] = ()
    deleted: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "currency", self.currency.strip().upper())
        object.__setattr__(self, "contacts", _normalize_contacts(self.contacts))
        if self.closed_at is not None:
            object.__setattr__(self, "closed_at", utc(self.closed_at))

    @property
    def counts_as_won(self) -> bool:
        """True when the deal is in a won stage and not deleted."""
        return self.won and not self.deleted


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    """One appended ledger line; ``amount`` is in ``currency``, ``amount_base`` in the base currency."""

    deal_id: str
    kind: EntryKind
    amount: Decimal
    currency: str
    amount_base: Decimal
    closed_at: datetime | None
    contacts: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Position:
    """What a won deal's entries add up to: the revenue it currently contributes."""

    deal_id: str
    amount: Decimal
    currency: str
    amount_base: Decimal
    closed_at: datetime | None
    contacts: tuple[str, ...]


def position(history: Iterable[LedgerEntry]) -> Position | None:
    """Replay one deal's entries in order; None when the deal is not currently won."""
    current: Position | None = None
    for entry in history:
        if entry.kind is EntryKind.WON:
            current = Position(
                entry.deal_id,
                entry.amount,
                entry.currency,
                entry.amount_base,
                entry.closed_at,
                entry.contacts,
            )
        elif entry.kind is EntryKind.REVERSAL:
            current = None
        elif current is not None:
            current = Position(
                current.deal_id,
                current.amount + entry.amount,
                current.currency,
                current.amount_base + entry.amount_base,
                current.closed_at,
                current.contacts,
            )
    return current


def positions(entries: Iterable[LedgerEntry]) -> dict[str, Position]:
    """The open position of every currently won deal among ``entries`` (kept in ledger order)."""
    by_deal: dict[str, list[LedgerEntry]] = {}
    for entry in entries:
        by_deal.setdefault(entry.deal_id, []).append(entry)
    result = {deal_id: position(history) for deal_id, history in by_deal.items()}
    return {deal_id: pos for deal_id, pos in result.items() if pos is not None}


def _entry(kind: EntryKind, pos: Position) -> LedgerEntry:
    return LedgerEntry(pos.deal_id, kind, pos.amount, pos.currency, pos.amount_base, pos.closed_at, pos.contacts)


def _reversal(pos: Position) -> LedgerEntry:
    return LedgerEntry(
        pos.deal_id,
        EntryKind.REVERSAL,
        -pos.amount,
        pos.currency,
        -pos.amount_base,
        pos.closed_at,
        pos.contacts,
    )


def ledger_delta(
    history: Sequence[LedgerEntry], new_state: DealState, rates: Rates
) -> list[LedgerEntry] | UnknownCurrency:
    """The entries to append so the deal's entries add up to its current won amount (0 unless won).

    Nothing is ever edited: leaving the won stage or deletion appends a reversal; a changed amount appends
    an adjustment; changed contacts, currency or close date append a reversal and a new won entry. Base
    amounts are converted at booking time, so a later change of rates alone appends nothing. Applying the
    same state twice appends nothing. An amount in a currency without a rate returns ``UnknownCurrency``.
    """
    current = position(e for e in history if e.deal_id == new_state.deal_id)
    if not new_state.counts_as_won:
        return [] if current is None else [_reversal(current)]
    amount = new_state.amount if new_state.amount is not None else Decimal(0)
    base = rates.convert(amount, new_state.currency)
    if isinstance(base, UnknownCurrency):
        return base
    # A deal without a close date was booked at the time it was first seen won; re-reading it is no new close.
    closed_at = new_state.closed_at if new_state.closed_at is not None or current is None else current.closed_at
    target = Position(new_state.deal_id, amount, new_state.currency, base, closed_at, new_state.contacts)
    if current is None:
        return [_entry(EntryKind.WON, target)]
    same_terms = (current.currency, current.contacts, current.closed_at) == (
        target.currency,
        target.contacts,
        target.closed_at,
    )
    if not same_terms:
        return [_reversal(current), _entry(EntryKind.WON, target)]
    if current.amount == target.amount:
        return []
    delta = Position(
        target.deal_id,
        target.amount - current.amount,
        target.currency,
        target.amount_base - current.amount_base,
        target.closed_at,
        target.contacts,
    )
    return [_entry(EntryKind.ADJUSTMENT, delta)]


def moved_to(history: Sequence[LedgerEntry], loser: str, winner: str) -> list[LedgerEntry]:
    """The entries that move a deal's standing win from a merged-away contact to the contact it merged into.

    A move is a reversal and a new won entry with the same amounts, currency and close (never an edit, and
    never a conversion at today's rates); the win then credits the winner once, in the loser's place. A deal
    not currently won, or whose win does not credit the loser, needs no entry.
    """
    current = position(history)
    if current is None or loser not in current.contacts:
        return []
    contacts = _normalize_contacts(winner if contact == loser else contact for contact in current.contacts)
    target = Position(
        current.deal_id, current.amount, current.currency, current.amount_base, current.closed_at, contacts
    )
    return [_reversal(current), _entry(EntryKind.WON, target)]
