"""Marketing spend rows, read from a CSV file with the columns period,channel,campaign,amount."""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, InvalidOperation

from closeloop.loop.touchpoints import Channel

SPEND_COLUMNS = ("period", "channel", "campaign", "amount")
_MONTH = re.compile(r"^(\d{4})-(\d{2})$")
_DAY = re.compile(r"^(\d{4})-(\d{2})-(\d{2})$")


class SpendFileError(ValueError):
    """A spend file that cannot be read; the message names the file and line."""


@dataclass(frozen=True, slots=True)
class SpendRow:
    """Money spent on a channel (and optionally one campaign) over a period, in the base currency."""

    period: str
    start: date
    end: date
    """The day after the period (exclusive)."""
    channel: Channel
    campaign: str | None
    amount: Decimal

    def overlaps(self, start: datetime, end: datetime) -> bool:
        """True when the row's period overlaps [start, end); a row counts whole, never pro rata."""
        row_start = datetime(self.start.year, self.start.month, self.start.day, tzinfo=UTC)
        row_end = datetime(self.end.year, self.end.month, self.end.day, tzinfo=UTC)
        return row_start < end and start < row_end


def parse_period(text: str) -> tuple[date, date] | None:
    """A month (YYYY-MM) or day (YYYY-MM-DD) as [start, end) dates, or None when it is neither."""
    try:
        if month := _MONTH.match(text):
            start = date(int(month[1]), int(month[2]), 1)
            following = date(start.year + start.month // 12, start.month % 12 + 1, 1)
            return start, following
        if day := _DAY.match(text):
            start = date(int(day[1]), int(day[2]), int(day[3]))
            return start, start + timedelta(days=1)
    except ValueError:
        return None
    return None


def parse_channel(text: str) -> Channel | None:
    """A channel written as its value or label ("paid_search", "Paid search", "paid-search")."""
    key = re.sub(r"[\s-]+", "_", text.strip().lower())
    return Channel(key) if key in {c.value for c in Channel} else None


def _row(values: dict[str, str], where: str) -> SpendRow:
    period = (values.get("period") or "").strip()
    span = parse_period(period)
    if span is None:
        raise SpendFileError(f"{where}: period {period!r} is not YYYY-MM or YYYY-MM-DD")
    channel = parse_channel(values.get("channel") or "")
    if channel is None:
        valid = ", ".join(c.value for c in Channel)
        raise SpendFileError(f"{where}: channel {values.get('channel')!r} is not one of {valid}")
    text = (values.get("amount") or "").strip()
    try:
        amount = Decimal(text)
    except InvalidOperation:
        raise SpendFileError(f"{where}: amount {text!r} is not a number") from None
    if not amount.is_finite() or amount < 0:
        raise SpendFileError(f"{where}: amount {text!r} must be zero or more")
    campaign = (values.get("campaign") or "").strip() or None
    return SpendRow(period, span[0], span[1], channel, campaign, amount)


def parse_spend_csv(text: str, *, name: str = "spend.csv") -> list[SpendRow]:
    """Read spend rows from CSV text with a header row; a bad row raises SpendFileError naming its line."""
    reader = csv.DictReader(io.StringIO(text))
    missing = [c for c in SPEND_COLUMNS if c not in (reader.fieldnames or [])]
    if missing:
        raise SpendFileError(
            f"{name} line 1: missing column(s) {', '.join(missing)}; expected {','.join(SPEND_COLUMNS)}"
        )
    rows = []
    for values in reader:
        where = f"{name} line {reader.line_num}"
        if None in values or any(values.get(c) is None for c in SPEND_COLUMNS):
            raise SpendFileError(f"{where}: expected {len(SPEND_COLUMNS)} columns ({','.join(SPEND_COLUMNS)})")
        rows.append(_row(values, where))
    return rows
