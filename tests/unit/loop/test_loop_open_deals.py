"""The open deals the report reads from the store: live, not won, not in a closed stage, priced at the rates."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from closeloop.loop.money import Rates
from closeloop.loop.open_deals import contact_labels, is_closed_stage, read_deal_book
from closeloop.store import Store

RATES = Rates("USD", {"GBP": Decimal("1.27")})


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    opened = Store.open(tmp_path / "state.db")
    deals = {
        "d-open": {"name": "Open one", "stage": "proposal", "amount": "1000", "currency": "USD"},
        "d-gbp": {"name": "In pounds", "stage": "qualification", "amount": "100", "currency": "GBP"},
        "d-lost": {"name": "Lost", "stage": "closed_lost", "amount": "50", "currency": "USD"},
        "d-won-quarantined": {"stage": "closed_won", "amount": "70", "currency": "USD"},  # won, quarantined: no entry
        "d-signed": {"stage": "signed", "amount": "90", "currency": "USD"},  # a won stage of this org's own naming
        "d-yen": {"stage": "proposal", "amount": "5000", "currency": "JPY"},
        "d-blank": {"stage": "proposal", "amount": "10", "currency": ""},
        "d-gone": {"stage": "proposal", "amount": "10", "currency": "USD"},
    }
    for deal_id, fields in deals.items():
        opened.put_golden(deal_id, "deal", fields)
    opened.mark_golden_deleted("d-gone")
    opened.put_golden("c1", "contact", {"email": "ann@example.com"})
    opened.put_golden("c2", "contact", {"last_name": "Nomail"})
    opened.replace_deal_contacts({"d-open": ["c2", "c1"]})
    yield opened
    opened.close()


def test_open_deals_are_live_not_won_and_not_in_a_closed_stage(store: Store) -> None:
    book = read_deal_book(store, {"d-signed"}, RATES)
    priced = {(p.deal_id, str(p.amount_base), p.currency, p.contacts, p.closed_at) for p in book.open}
    assert priced == {
        ("d-open", "1000.00", "USD", ("c1", "c2"), None),
        ("d-gbp", "127.00", "GBP", (), None),  # 100 GBP at 1.27
    }
    assert book.unpriced == 2  # JPY has no rate; the blank currency is not guessed
    assert book.names == {"d-open": "Open one", "d-gbp": "In pounds", "d-lost": "Lost"}


def test_a_blank_currency_is_the_base_only_where_no_mapping_maps_a_currency(store: Store) -> None:
    book = read_deal_book(store, {"d-signed"}, RATES, currency_mapped=False)
    assert "d-blank" in {p.deal_id for p in book.open}
    assert book.unpriced == 1


@pytest.mark.parametrize(
    ("stage", "closed"),
    [("closed_won", True), ("Closed Lost", True), ("won", True), ("lost", True), ("proposal", False), ("", False)],
)
def test_closed_stages(stage: str, closed: bool) -> None:
    assert is_closed_stage(stage) is closed


def test_contacts_are_labelled_by_their_email(store: Store) -> None:
    assert contact_labels(store, ["c1", "c2", "c1"]) == {"c1": "ann@example.com"}
