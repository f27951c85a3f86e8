"""``loop.sla``: how fast sales must follow up an MQL, and the business hours that clock counts.

As admins write it (``SlaDoc``) and as the report uses it (``SlaConfig``)::

    loop:
      sla:
        mql_follow_up: 24h                # required: the longest wait from MQL to the first sales activity
        time_zone: Europe/Berlin          # business hours are in this zone (default UTC)
        business_hours: {start: "09:00", end: "17:00", days: [mon, tue, wed, thu, fri]}

The breach time is written back by a contacts mapping field with ``from: loop.sla_breached_at``.
"""

from __future__ import annotations

import re
from datetime import time, timedelta
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field

from closeloop.config.policies import Frozen, parse_duration

Day = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
DAYS: tuple[Day, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_CLOCK = re.compile(r"^([01]\d|2[0-4]):([0-5]\d)$")


class BusinessHoursDoc(BaseModel):
    """The hours of the working week in which the SLA clock runs."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    start: str = Field(default="09:00", description="Start of the working day, HH:MM in the SLA's time zone.")
    end: str = Field(default="17:00", description="End of the working day, HH:MM (24:00 for midnight).")
    days: list[Day] = Field(default_factory=lambda: list(DAYS[:5]), min_length=1, description="Working days.")


class SlaDoc(BaseModel):
    """``loop.sla`` as written in closeloop.yaml."""

    model_config = ConfigDict(extra="forbid", frozen=True, coerce_numbers_to_str=True)

    mql_follow_up: str | int = Field(description="Longest wait from MQL to the first sales activity (24h, 2d, 4h).")
    time_zone: str = Field(default="UTC", description="IANA time zone of the business hours (Europe/Berlin).")
    business_hours: BusinessHoursDoc | None = Field(
        default=None, description="Count only these hours; without them the clock runs day and night."
    )


class BusinessHours(Frozen):
    """Working days (0 = Monday) and the [start, end) of each working day, local time."""

    start: time
    end: time
    """``time.max`` stands for 24:00."""
    days: frozenset[int]


class SlaConfig(Frozen):
    """The follow-up SLA the report holds MQLs to."""

    mql_follow_up: timedelta
    time_zone: str = "UTC"
    business_hours: BusinessHours | None = None

    @property
    def zone(self) -> ZoneInfo:
        """The time zone object (checked when the configuration was loaded)."""
        return ZoneInfo(self.time_zone)


def _clock(text: str, what: str) -> time:
    match = _CLOCK.match(text.strip())
    if not match or (match[1] == "24" and match[2] != "00"):
        raise ValueError(f"business_hours.{what} {text!r} is not a time of day; write it as HH:MM (09:00, 17:30)")
    return time.max if match[1] == "24" else time(int(match[1]), int(match[2]))


def parse_sla(doc: SlaDoc) -> SlaConfig:
    """The SLA a document describes; ValueError with a message that names the bad setting."""
    try:
        follow_up = parse_duration(doc.mql_follow_up)
    except ValueError as exc:
        raise ValueError(f"mql_follow_up: {exc}") from None
    if follow_up <= timedelta():
        raise ValueError(f"mql_follow_up {doc.mql_follow_up!r} must be longer than zero")
    try:
        ZoneInfo(doc.time_zone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"time_zone {doc.time_zone!r} is not an IANA time zone (Europe/Berlin, America/New_York)"
        ) from None
    hours = None
    if doc.business_hours is not None:
        start, end = _clock(doc.business_hours.start, "start"), _clock(doc.business_hours.end, "end")
        if end <= start:
            raise ValueError(
                f"business_hours: end {doc.business_hours.end} is not after start {doc.business_hours.start}"
            )
        hours = BusinessHours(start=start, end=end, days=frozenset(DAYS.index(d) for d in doc.business_hours.days))
    return SlaConfig(mql_follow_up=follow_up, time_zone=doc.time_zone, business_hours=hours)
