"""Spend CSV: rows parsed with the csv module; a bad row is reported with its line."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from closeloop.loop import Channel, SpendFileError, parse_spend_csv

HEADER = "period,channel,campaign,amount\n"


def test_rows_are_parsed() -> None:
    rows = parse_spend_csv(HEADER + "2024-03,Paid search,spring,400.50\n2024-12-31,email,,0\n")
    assert [(r.start, r.end, r.channel, r.campaign, r.amount) for r in rows] == [
        (date(2024, 3, 1), date(2024, 4, 1), Channel.PAID_SEARCH, "spring", Decimal("400.50")),
        (date(2024, 12, 31), date(2025, 1, 1), Channel.EMAIL, None, Decimal(0)),
    ]


def test_row_overlapping_the_period_counts() -> None:
    (row,) = parse_spend_csv(HEADER + "2024-12,events,,10\n")
    assert row.overlaps(datetime(2024, 12, 31, tzinfo=UTC), datetime(2025, 2, 1, tzinfo=UTC))
    assert not row.overlaps(datetime(2025, 1, 1, tzinfo=UTC), datetime(2025, 2, 1, tzinfo=UTC))


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("2024-03,email,,ten\n", "spend.csv line 2: amount 'ten' is not a number"),
        ("2024-03,email,,-5\n", "spend.csv line 2: amount '-5' must be zero or more"),
        ("2024-3,email,,5\n", "spend.csv line 2: period '2024-3' is not YYYY-MM or YYYY-MM-DD"),
        ("2024-13,email,,5\n", "spend.csv line 2: period '2024-13'"),
        ("2024-03,billboards,,5\n", "spend.csv line 2: channel 'billboards' is not one of paid_search"),
        ("2024-03,email,,5\n2024-03,email,5\n", "spend.csv line 3: expected 4 columns"),
        ("2024-03,email,,5,extra\n", "spend.csv line 2: expected 4 columns"),
    ],
    ids=[
        "amount-text",
        "amount-negative",
        "period-format",
        "period-month",
        "channel",
        "short-row",
        "long-row",
    ],
)
def test_bad_row_names_its_line(body: str, message: str) -> None:
    with pytest.raises(SpendFileError) as caught:
        parse_spend_csv(HEADER + body)
    assert str(caught.value).startswith(message)


def test_missing_column_is_reported_on_line_one() -> None:
    with pytest.raises(SpendFileError, match=r"costs.csv line 1: missing column\(s\) amount"):
        parse_spend_csv("period,channel,campaign\n", name="costs.csv")
