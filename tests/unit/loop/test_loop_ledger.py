"""The revenue ledger: won, reopened, re-won, adjusted, re-credited, deleted; appended, never edited."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from closeloop.loop import DealState, EntryKind, LedgerEntry, Rates, UnknownCurrency, ledger_delta, position
from closeloop.loop.ledger import moved_to

EUR = Rates("EUR", {"USD": Decimal("0.9"), "JPY": Decimal("0.0061")})
MARCH_1 = datetime(2024, 3, 1, tzinfo=UTC)
MARCH_15 = datetime(2024, 3, 15, tzinfo=UTC)


def deal(
    amount: str | None,
    *,
    won: bool = True,
    closed_at: datetime = MARCH_1,
    contacts: tuple[str, ...] = ("c1",),
    currency: str = "EUR",
    deleted: bool = False,
) -> DealState:
    value = None if amount is None else Decimal(amount)
    return DealState("D", won, value, currency, closed_at, contacts, deleted)


def apply(states: list[DealState], rates: Rates = EUR) -> list[LedgerEntry]:
    entries: list[LedgerEntry] = []
    for state in states:
        delta = ledger_delta(entries, state, rates)
        assert isinstance(delta, list), delta
        entries.extend(delta)
    return entries


def summary(entries: list[LedgerEntry]) -> list[tuple[str, str, str]]:
    return [(e.kind.value, str(e.amount), str(e.amount_base)) for e in entries]


def test_won_then_reopened_then_won_with_new_amount() -> None:
    entries = apply([deal("1000.00"), deal("1000.00", won=False), deal("1500.00", closed_at=MARCH_15)])
    assert summary(entries) == [
        ("won", "1000.00", "1000.00"),
        ("reversal", "-1000.00", "-1000.00"),
        ("won", "1500.00", "1500.00"),
    ]
    assert sum(e.amount_base for e in entries) == Decimal("1500.00")
    assert entries[-1].closed_at == MARCH_15


def test_changed_amount_while_won_appends_an_adjustment() -> None:
    entries = apply([deal("1500.00"), deal("1800.00"), deal("1750.50")])
    assert summary(entries) == [
        ("won", "1500.00", "1500.00"),
        ("adjustment", "300.00", "300.00"),
        ("adjustment", "-49.50", "-49.50"),
    ]
    assert sum(e.amount_base for e in entries) == Decimal("1750.50")


def test_same_state_twice_appends_nothing() -> None:
    entries = apply([deal("900.00")])
    assert ledger_delta(entries, deal("900.00"), EUR) == []
    assert ledger_delta(entries, deal("900.0"), EUR) == []


def test_not_won_deal_without_history_appends_nothing() -> None:
    assert ledger_delta([], deal("900.00", won=False), EUR) == []


def test_deleted_deal_is_reversed_once() -> None:
    entries = apply([deal("700.00"), deal("700.00", deleted=True)])
    assert summary(entries) == [("won", "700.00", "700.00"), ("reversal", "-700.00", "-700.00")]
    assert ledger_delta(entries, deal("700.00", deleted=True), EUR) == []
    assert position(entries) is None


def test_deal_credited_to_three_contacts_then_one_removed() -> None:
    entries = apply([deal("3000.00", contacts=("c3", "c1", "c2")), deal("3000.00", contacts=("c1", "c2"))])
    assert [(e.kind.value, e.contacts, str(e.amount)) for e in entries] == [
        ("won", ("c1", "c2", "c3"), "3000.00"),
        ("reversal", ("c1", "c2", "c3"), "-3000.00"),
        ("won", ("c1", "c2"), "3000.00"),
    ]


def test_contact_order_and_duplicates_do_not_matter() -> None:
    entries = apply([deal("10.00", contacts=("b", "a"))])
    assert ledger_delta(entries, deal("10.00", contacts=("a", "b", "a")), EUR) == []


def test_changed_close_date_rebooks_the_deal() -> None:
    entries = apply([deal("10.00"), deal("10.00", closed_at=MARCH_15)])
    assert [e.kind for e in entries] == [EntryKind.WON, EntryKind.REVERSAL, EntryKind.WON]


def test_currency_converts_to_base_in_cents() -> None:
    entries = apply([DealState("J", won=True, amount=Decimal("12345"), currency="jpy", closed_at=MARCH_1)])
    assert (entries[0].currency, entries[0].amount_base) == ("JPY", Decimal("75.30"))
    usd = apply([deal("1000.00", currency="USD")])
    assert usd[0].amount_base == Decimal("900.00")


def test_changed_currency_reverses_in_the_old_currency() -> None:
    entries = apply([deal("1000.00", currency="USD"), deal("1000.00", currency="EUR")])
    assert [(e.kind.value, e.currency, str(e.amount_base)) for e in entries] == [
        ("won", "USD", "900.00"),
        ("reversal", "USD", "-900.00"),
        ("won", "EUR", "1000.00"),
    ]


def test_unknown_currency_is_an_error_value_not_a_crash() -> None:
    result = ledger_delta([], deal("100.00", currency="CHF"), EUR)
    assert result == UnknownCurrency("CHF", "EUR")
    assert "CHF" in str(result)
    assert "EUR" in str(result)


def test_reversal_needs_no_rate() -> None:
    entries = apply([deal("100.00", currency="USD")])
    reversed_ = ledger_delta(entries, deal("100.00", currency="USD", won=False), Rates("EUR"))
    assert isinstance(reversed_, list)
    assert reversed_[0].amount_base == Decimal("-90.00")


def test_won_without_amount_books_zero() -> None:
    entries = apply([deal(None)])
    assert summary(entries) == [("won", "0", "0.00")]


@pytest.mark.parametrize(
    ("rate", "amount", "expected"),
    [("0.5", "0.01", "0.01"), ("0.5", "0.03", "0.02"), ("1.15", "500.00", "575.00")],
    ids=["half-cent-rounds-up", "one-and-a-half-cents-rounds-up", "plain"],
)
def test_conversion_rounds_half_up(rate: str, amount: str, expected: str) -> None:
    rates = Rates("eur", {"gbp": Decimal(rate)})
    assert rates.convert(Decimal(amount), "GBP") == Decimal(expected)


@pytest.mark.parametrize(
    "rate", [Decimal(0), Decimal(-1), Decimal("NaN"), 1.2], ids=["zero", "negative", "nan", "float"]
)
def test_bad_configured_rate_is_refused(rate: object) -> None:
    with pytest.raises(ValueError, match="USD"):
        Rates("EUR", {"USD": rate})  # type: ignore[dict-item]


def test_won_deal_without_close_date_read_again_books_nothing() -> None:
    # The store dates an undated deal's won entry when it books it; reading the deal again is no new close.
    booked = LedgerEntry("D", EntryKind.WON, Decimal("1000.00"), "EUR", Decimal("1000.00"), MARCH_1, ("c1",))
    undated = DealState("D", won=True, amount=Decimal("1000.00"), currency="EUR", closed_at=None, contacts=("c1",))
    assert ledger_delta([booked], undated, EUR) == []


# -- merges ------------------------------------------------------------------------------------------------


def test_a_merge_moves_a_standing_win_with_a_reversal_and_a_new_win_at_the_booked_amounts() -> None:
    booked = apply([deal("1000", contacts=("loser", "other"), currency="USD")])
    moved = moved_to(booked, "loser", "winner")
    # the base amount stays as booked, never converted again at today's rates
    assert summary(moved) == [("reversal", "-1000", "-900.00"), ("won", "1000", "900.00")]
    assert [e.contacts for e in moved] == [("loser", "other"), ("other", "winner")]
    now = position([*booked, *moved])
    assert now is not None
    assert (now.amount_base, now.closed_at, now.contacts) == (Decimal("900.00"), MARCH_1, ("other", "winner"))


@pytest.mark.parametrize(
    "states",
    [
        pytest.param([deal("1000", contacts=("winner",))], id="loser-not-credited"),
        pytest.param([deal("1000", contacts=("loser",)), deal("1000", won=False)], id="reopened"),
        pytest.param([], id="never-won"),
    ],
)
def test_a_merge_moves_nothing_that_does_not_credit_the_loser_now(states: list[DealState]) -> None:
    assert moved_to(apply(states), "loser", "winner") == []


def test_a_merge_into_a_contact_already_credited_credits_it_once() -> None:
    moved = moved_to(apply([deal("1000", contacts=("loser", "winner"))]), "loser", "winner")
    assert moved[-1].contacts == ("winner",)
