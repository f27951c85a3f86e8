"""Read the open deals (the pipeline) and every deal's name from the state store, for the report.

A deal is *open* while it is live (not deleted), has no standing win in the ledger and its canonical stage is not
a closed one. A closed stage is one whose canonical value is ``won`` or ``lost`` or begins with ``closed``
(``closed_won``, ``closed_lost``, as the shipped deals mapping names them): the report reads only the store, and
the stage's canonical value is all the store keeps of it. An open deal's amount is converted to the base currency
at the configured rates; one whose currency has no rate (or is blank where the deals mapping maps a currency) is
left out of the pipeline and counted as unpriced, never booked in the base currency.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation

from closeloop.loop.facts import moment
from closeloop.loop.ledger import Position
from closeloop.loop.money import Rates, UnknownCurrency
from closeloop.store import rows
from closeloop.store.api import StateStore

DEAL = "deal"
BATCH = 500
NAME, STAGE, AMOUNT, CURRENCY, CREATED_AT, EMAIL = "name", "stage", "amount", "currency", "created_at", "email"


@dataclass(frozen=True, slots=True)
class DealBook:
    """The open deals as positions without a close, the open deals left unpriced, and every deal's name."""

    open: tuple[Position, ...] = ()
    unpriced: int = 0
    names: Mapping[str, str] = field(default_factory=dict, hash=False)
    created: Mapping[str, datetime] = field(default_factory=dict, hash=False)
    """When each open deal was created, from its ``created_at`` field, where known."""


def is_closed_stage(stage: object) -> bool:
    """True for a canonical stage that closes a deal: won, lost, or one named closed..."""
    text = str(stage or "").strip().lower()
    return text in {"won", "lost"} or text.startswith("closed")


def _amount(value: rows.FieldValue) -> Decimal:
    try:
        return Decimal(str(value)) if value not in (None, "") else Decimal(0)
    except InvalidOperation:
        return Decimal(0)


def _goldens(store: StateStore, batch: int) -> Iterator[list[rows.Golden]]:
    after = ""
    while found := store.goldens(DEAL, after, batch):
        yield found
        after = found[-1].id


def _position(golden: rows.Golden, contacts: tuple[str, ...], rates: Rates, base_default: bool) -> Position | None:
    amount = _amount(golden.fields.get(AMOUNT))
    currency = str(golden.fields.get(CURRENCY) or "") or (rates.base if base_default else "")
    converted = rates.convert(amount, currency)
    if isinstance(converted, UnknownCurrency):
        return None
    return Position(golden.id, amount, currency.upper(), converted, None, contacts)


def contact_labels(store: StateStore, contact_ids: Iterable[str], batch: int = BATCH) -> dict[str, str]:
    """The email of each of these contacts where its golden record has one (the ``email`` field)."""
    ids, labels = sorted(set(contact_ids)), {}
    for start in range(0, len(ids), batch):
        for golden in store.get_goldens(ids[start : start + batch]).values():
            if golden.fields.get(EMAIL):
                labels[golden.id] = str(golden.fields[EMAIL])
    return labels


def read_deal_book(
    store: StateStore, won: set[str], rates: Rates, *, currency_mapped: bool = True, batch: int = BATCH
) -> DealBook:
    """Every deal's name and the open deals priced in the base currency; ``won`` holds the deals won now.

    ``currency_mapped`` False means no deals mapping maps a currency (a single-currency org): a blank currency
    is then the base currency.
    """
    opened: list[Position] = []
    names: dict[str, str] = {}
    created: dict[str, datetime] = {}
    unpriced = 0
    for goldens in _goldens(store, batch):
        names.update({g.id: str(g.fields[NAME]) for g in goldens if g.fields.get(NAME)})
        candidates = [g for g in goldens if g.id not in won and not is_closed_stage(g.fields.get(STAGE))]
        credited = store.contacts_of_deals([g.id for g in candidates])
        for golden in candidates:
            contacts = tuple(sorted({c.contact_golden_id for c in credited.get(golden.id, [])}))
            found = _position(golden, contacts, rates, not currency_mapped)
            if found is None:
                unpriced += 1
                continue
            opened.append(found)
            if (at := moment(golden.fields.get(CREATED_AT))) is not None:
                created[golden.id] = at
    return DealBook(tuple(opened), unpriced, names, created)
