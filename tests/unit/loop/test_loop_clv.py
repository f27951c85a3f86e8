"""Customer lifetime value: shares of shared deals, the horizon, reversals, spend without customers."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from closeloop.loop.clv import build_clv
from closeloop.loop.ledger import EntryKind, LedgerEntry
from closeloop.loop.spend import parse_spend_csv

START, END = datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 4, 1, tzinfo=UTC)
ORIGINS = {"ann": ("paid_search", "spring"), "bob": ("email", "(no campaign)"), "cid": ("email", "(no campaign)")}


def won(deal: str, amount: str, month: int, *contacts: str, kind: EntryKind = EntryKind.WON) -> LedgerEntry:
    closed = datetime(2026, month, 10, tzinfo=UTC)
    return LedgerEntry(deal, kind, Decimal(amount), "USD", Decimal(amount), closed, contacts)


def test_a_shared_deal_is_split_and_renewals_count() -> None:
    ledger = [won("d1", "1000", 1, "ann"), won("d2", "2000", 2, "bob", "cid"), won("d3", "500", 6, "ann")]
    clv = build_clv(ledger, ORIGINS, START, END)
    rows = {r.key: r for r in clv.rows_for("source")}
    assert (rows["paid_search"].average_value, rows["email"].average_value) == (Decimal("1500.00"), Decimal("1000.00"))
    assert clv.total.total_value == Decimal("3500.00")  # the customers' values add up to the revenue
    assert {r.key for r in clv.rows_for("campaign")} == {"spring", "(no campaign)"}


def test_the_horizon_bounds_the_deals_counted() -> None:
    ledger = [won("d1", "1000", 1, "ann"), won("d3", "500", 6, "ann")]
    assert build_clv(ledger, ORIGINS, START, END, horizon_days=90).total.total_value == Decimal("1000.00")
    assert build_clv(ledger, ORIGINS, START, END, horizon_days=200).total.total_value == Decimal("1500.00")


def test_a_reversed_win_makes_no_customer() -> None:
    ledger = [won("d1", "1000", 1, "ann"), won("d1", "1000", 1, "ann", kind=EntryKind.REVERSAL)]
    assert build_clv(ledger, ORIGINS, START, END).total.customers == 0


def test_a_customer_acquired_before_the_period_is_not_counted_in_it() -> None:
    ledger = [won("d0", "700", 1, "ann")]
    later = build_clv(ledger, ORIGINS, datetime(2026, 2, 1, tzinfo=UTC), END)
    assert later.total.customers == 0


def test_spend_without_customers_shows_the_spend_and_no_ratio() -> None:
    spend = parse_spend_csv("period,channel,campaign,amount\n2026-01,paid_social,,250\n")
    clv = build_clv([won("d1", "1000", 1, "ann")], ORIGINS, START, END, spend)
    social = next(r for r in clv.rows_for("source") if r.key == "paid_social")
    assert (social.customers, social.spend, social.cac, social.clv_to_cac) == (0, Decimal("250.00"), None, None)
    assert (clv.total.spend, clv.total.clv_to_cac) == (Decimal("250.00"), Decimal("4.00"))
