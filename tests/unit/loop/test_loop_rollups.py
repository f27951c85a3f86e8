"""Contact rollups from the ledger: full deal amount per credited contact, canonical strings."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from closeloop.loop import ROLLUP_NAMES, DealState, LedgerEntry, Rates, Rollup, ledger_delta, rollups_for


@pytest.fixture
def canonical(scenario_ledger: tuple[LedgerEntry, ...]) -> dict[str, dict[str, str | None]]:
    rollups = rollups_for(["c1", "c2", "c3", "c7", "c8", "c9"], scenario_ledger)
    return {contact: rollup.as_canonical() for contact, rollup in rollups.items()}


def test_ledger_totals_of_the_scenario(scenario_ledger: tuple[LedgerEntry, ...]) -> None:
    entries = scenario_ledger
    assert len(entries) == 5
    assert sum(e.amount_base for e in entries) == Decimal("2675.00")
    by_deal = {d: sum(e.amount_base for e in entries if e.deal_id == d) for d in ("D1", "D2", "D4", "D5")}
    assert by_deal == {
        "D1": Decimal("1200.00"),
        "D2": Decimal("900.00"),
        "D4": Decimal("575.00"),
        "D5": Decimal("0.00"),
    }


def test_rollups_per_contact(canonical: dict[str, dict[str, str | None]]) -> None:
    assert canonical["c1"] == {
        "closed_won_revenue": "1200.00",
        "closed_won_deals": "1",
        "first_closed_won_at": "2024-03-20T00:00:00.000Z",
        "last_closed_won_at": "2024-03-20T00:00:00.000Z",
        "customer_since": "2024-03-20T00:00:00.000Z",
    }
    for shared in ("c2", "c7"):
        assert canonical[shared]["closed_won_revenue"] == "900.00"
        assert canonical[shared]["closed_won_deals"] == "1"
    assert canonical["c8"]["closed_won_revenue"] == "575.00"
    assert canonical["c8"]["first_closed_won_at"] == "2024-02-25T00:00:00.000Z"


def test_reopened_deal_that_leaves_no_win_clears_every_rollup(canonical: dict[str, dict[str, str | None]]) -> None:
    assert canonical["c3"] == {
        "closed_won_revenue": "0.00",
        "closed_won_deals": "0",
        "first_closed_won_at": None,
        "last_closed_won_at": None,
        "customer_since": None,
    }


def test_deal_won_again_later_keeps_customer_since_at_its_first_win() -> None:
    rates = Rates("USD", {})
    states = [
        DealState("D", won=True, amount=Decimal(100), currency="USD", closed_at=SEP_29, contacts=("c",)),
        DealState("D", won=False, amount=Decimal(100), currency="USD", closed_at=None, contacts=("c",)),
        DealState("D", won=True, amount=Decimal(100), currency="USD", closed_at=OCT_20, contacts=("c",)),
        DealState("E", won=True, amount=Decimal(50), currency="USD", closed_at=SEP_01, contacts=("c",)),
        DealState("E", won=False, amount=Decimal(50), currency="USD", closed_at=None, contacts=("c",)),
    ]
    entries: list[LedgerEntry] = []
    for state in states:
        delta = ledger_delta(entries, state, rates)
        assert isinstance(delta, list)
        entries.extend(delta)
    rollup = rollups_for(["c"], entries)["c"]
    # E (won 09-01) was reopened and stands lost: it counts for nothing; D was first won 09-29
    assert (rollup.customer_since, rollup.first_closed_won_at) == (SEP_29, OCT_20)


SEP_01, SEP_29, OCT_20 = (datetime(2024, m, d, tzinfo=UTC) for m, d in ((9, 1), (9, 29), (10, 20)))


def test_contact_without_deals_has_zero_rollup(
    canonical: dict[str, dict[str, str | None]], scenario_ledger: tuple[LedgerEntry, ...]
) -> None:
    assert rollups_for(["nobody"], scenario_ledger) == {"nobody": Rollup("nobody")}
    assert list(canonical["c9"]) == list(ROLLUP_NAMES)


def test_deal_credited_to_three_contacts_gives_each_the_full_amount() -> None:
    rates = Rates("EUR")
    entries: list[LedgerEntry] = []
    first = datetime(2024, 5, 1, tzinfo=UTC)
    second = datetime(2024, 6, 1, tzinfo=UTC)
    for state in (
        DealState("A", won=True, amount=Decimal("3000"), currency="EUR", closed_at=first, contacts=("x", "y", "z")),
        DealState("B", won=True, amount=Decimal("250.5"), currency="EUR", closed_at=second, contacts=("x",)),
    ):
        delta = ledger_delta(entries, state, rates)
        assert isinstance(delta, list)
        entries.extend(delta)
    result = rollups_for(["x", "y", "z"], entries)
    assert result["x"] == Rollup("x", Decimal("3250.50"), 2, first, second, first)
    assert result["y"] == Rollup("y", Decimal("3000.00"), 1, first, first, first)
    assert result["z"].as_canonical()["closed_won_revenue"] == "3000.00"
