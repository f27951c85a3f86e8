"""Business time: how much of a span falls in the configured business hours, and when a business-time span ends.

Without business hours the clock runs day and night. With them, only the working days' [start, end) hours count,
in the SLA's time zone (daylight saving time included: a working day is its local hours, whatever their length
in UTC).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta

from closeloop.config.sla import BusinessHours, SlaConfig

_LONGEST_SEARCH = 366 * 20
"""Days a deadline search may walk (a week has at least one working day, so a deadline is always found sooner)."""


def _windows(hours: BusinessHours, sla: SlaConfig, first: date) -> Iterator[tuple[datetime, datetime]]:
    """The business windows in UTC, one per working day, from the local day ``first`` on."""
    zone = sla.zone
    for offset in range(_LONGEST_SEARCH):
        day = first + timedelta(days=offset)
        if day.weekday() not in hours.days:
            continue
        opens = datetime.combine(day, hours.start, tzinfo=zone)
        closes = (
            datetime.combine(day + timedelta(days=1), time(0), tzinfo=zone)
            if hours.end == time.max
            else datetime.combine(day, hours.end, tzinfo=zone)
        )
        yield opens.astimezone(UTC), closes.astimezone(UTC)


def business_elapsed(start: datetime, end: datetime, sla: SlaConfig) -> timedelta:
    """The business time between ``start`` and ``end`` (zero when ``end`` is not after ``start``)."""
    if end <= start:
        return timedelta()
    hours = sla.business_hours
    if hours is None:
        return end - start
    total = timedelta()
    for opens, closes in _windows(hours, sla, start.astimezone(sla.zone).date() - timedelta(days=1)):
        if opens >= end:
            break
        overlap = min(closes, end) - max(opens, start)
        if overlap > timedelta():
            total += overlap
    return total


def business_deadline(start: datetime, span: timedelta, sla: SlaConfig) -> datetime:
    """The moment ``span`` of business time after ``start`` has passed."""
    hours = sla.business_hours
    if hours is None:
        return start + span
    left = span
    for opens, closes in _windows(hours, sla, start.astimezone(sla.zone).date() - timedelta(days=1)):
        if closes <= start:
            continue
        begin = max(opens, start)
        if closes - begin >= left:
            return begin + left
        left -= closes - begin
    raise ValueError("business hours with no working day")  # unreachable: the configuration requires a day
