"""The MQL follow-up SLA: how fast sales followed up the MQLs marketing handed over, and which are overdue now.

Definitions (the README states them for users):

- An MQL is *handed over* when the contact became an MQL (its ``became_mql_at`` milestone); the period counts
  the MQLs handed over within it.
- Its *follow-up* is the first sales activity on the person at or after that moment (a call, email, meeting or
  completed task in the CRM). Where it has none, the first move out of the MQL stage (the earliest later stage
  date: SQL, opportunity, customer) counts instead.
- Its SLA runs out ``mql_follow_up`` after the handover, counting only business hours when they are configured.
  Followed up *within the SLA* means at or before that moment; *breached* means later, or not yet and the SLA
  has run out; *pending* means not yet, with time left.
- *Time to follow-up* is the time from handover to follow-up (business time when business hours are set), in
  hours; the median and the 90th percentile are nearest-rank over the MQLs followed up.
- An *open breach* is an MQL without follow-up whose SLA has run out, still at the MQL stage now.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from closeloop.config.sla import SlaConfig
from closeloop.loop.business_time import business_deadline, business_elapsed

NO_OWNER = "(no owner)"


@dataclass(frozen=True, slots=True)
class MqlFacts:
    """What the SLA needs of one contact that became an MQL."""

    contact_id: str
    label: str
    """What the open list shows of it (its email, else its id)."""
    mql_at: datetime
    source: str
    owner: str | None
    activities: tuple[datetime, ...]
    """When each of its sales activities was done."""
    moved_on_at: tuple[datetime, ...] = ()
    """When it reached each stage after MQL (SQL, opportunity, customer), where known."""
    still_mql: bool = True
    """True when its lifecycle stage now is MQL (or unknown)."""


@dataclass(frozen=True, slots=True)
class FollowUp:
    """One MQL held to the SLA: when it was due, when (if ever) it was followed up, and its verdict."""

    mql: MqlFacts
    due_at: datetime
    followed_up_at: datetime | None
    by_activity: bool
    waited: timedelta | None
    """Time to follow-up (business time when business hours are set); None when not followed up."""

    @property
    def within(self) -> bool:
        """Followed up at or before the SLA ran out."""
        return self.followed_up_at is not None and self.followed_up_at <= self.due_at

    def breached(self, now: datetime) -> bool:
        """Followed up late, or not yet and the SLA has run out."""
        if self.followed_up_at is not None:
            return self.followed_up_at > self.due_at
        return now > self.due_at


@dataclass(frozen=True, slots=True)
class SlaRow:
    """The SLA figures of one group of MQLs handed over in the period (all of them, an owner, a source)."""

    key: str
    handed_over: int
    within: int
    breached: int
    pending: int
    median_hours: Decimal | None
    p90_hours: Decimal | None

    @property
    def within_percent(self) -> Decimal | None:
        """Followed up within the SLA, in percent of the MQLs decided (within or breached; pending left out)."""
        decided = self.within + self.breached
        return (Decimal(self.within) * 100 / decided).quantize(Decimal("0.1")) if decided else None


@dataclass(frozen=True, slots=True)
class OpenBreach:
    """An MQL past its SLA without follow-up, now: whose it is, where it came from, how old and how overdue."""

    contact_id: str
    label: str
    owner: str
    source: str
    mql_at: datetime
    due_at: datetime
    age_hours: Decimal
    overdue_hours: Decimal


@dataclass(frozen=True, slots=True)
class SlaReport:
    """The follow-up SLA section of the report."""

    follow_up: timedelta
    business_hours: str | None
    """The business hours as configured ("mon-fri 09:00-17:00 Europe/Berlin"), None for round the clock."""
    total: SlaRow
    by_owner: tuple[SlaRow, ...]
    by_source: tuple[SlaRow, ...]
    open_breaches: tuple[OpenBreach, ...]
    as_of: datetime


def _hours(span: timedelta) -> Decimal:
    return (Decimal(span.total_seconds()) / 3600).quantize(Decimal("0.01"))


def nearest_rank(values: Sequence[timedelta], percent: int) -> timedelta | None:
    """The nearest-rank percentile of ``values`` (the smallest value with at least ``percent`` % at or below)."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(1, math.ceil(percent * len(ordered) / 100)) - 1]


def follow_up_of(mql: MqlFacts, sla: SlaConfig) -> FollowUp:
    """Hold one MQL to the SLA: its deadline, its follow-up (an activity, else a move out of MQL), its wait."""
    due = business_deadline(mql.mql_at, sla.mql_follow_up, sla)
    done = [at for at in mql.activities if at >= mql.mql_at]
    moved = [at for at in mql.moved_on_at if at >= mql.mql_at]
    first = min(done) if done else min(moved, default=None)
    waited = business_elapsed(mql.mql_at, first, sla) if first is not None else None
    return FollowUp(mql, due, first, bool(done), waited)


def sla_row(key: str, group: Iterable[FollowUp], now: datetime) -> SlaRow:
    """The figures of one group of followed-up-or-not MQLs."""
    members = list(group)
    within = sum(f.within for f in members)
    breached = sum(f.breached(now) for f in members)
    waits = [f.waited for f in members if f.waited is not None]
    median, p90 = nearest_rank(waits, 50), nearest_rank(waits, 90)
    return SlaRow(
        key,
        len(members),
        within,
        breached,
        len(members) - within - breached,
        None if median is None else _hours(median),
        None if p90 is None else _hours(p90),
    )


def _grouped(follow_ups: Sequence[FollowUp], key_of: str, now: datetime) -> tuple[SlaRow, ...]:
    groups: dict[str, list[FollowUp]] = defaultdict(list)
    for f in follow_ups:
        groups[(f.mql.owner or NO_OWNER) if key_of == "owner" else f.mql.source].append(f)
    rows = [sla_row(key, members, now) for key, members in groups.items()]
    rows.sort(key=lambda r: (-r.handed_over, r.key))
    return tuple(rows)


def open_breaches(follow_ups: Iterable[FollowUp], now: datetime) -> list[OpenBreach]:
    """MQLs still at the MQL stage, not followed up, past their SLA: the oldest first."""
    found = [
        OpenBreach(
            f.mql.contact_id,
            f.mql.label,
            f.mql.owner or NO_OWNER,
            f.mql.source,
            f.mql.mql_at,
            f.due_at,
            _hours(now - f.mql.mql_at),
            _hours(now - f.due_at),
        )
        for f in follow_ups
        if f.followed_up_at is None and f.mql.still_mql and now > f.due_at
    ]
    found.sort(key=lambda b: (b.mql_at, b.contact_id))
    return found


def describe_span(span: timedelta) -> str:
    """A duration as the configuration writes it ("24h", "3d", "90m")."""
    minutes = int(span.total_seconds() // 60)
    if minutes % 60:
        return f"{minutes}m"
    hours = minutes // 60
    return f"{hours // 24}d" if hours >= 48 and not hours % 24 else f"{hours}h"


def describe_hours(sla: SlaConfig) -> str | None:
    """The business hours in words, or None when the clock runs day and night."""
    hours = sla.business_hours
    if hours is None:
        return None
    names = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
    days = ",".join(names[d] for d in sorted(hours.days))
    end = "24:00" if hours.end.hour == 23 and hours.end.minute == 59 else hours.end.strftime("%H:%M")
    return f"{days} {hours.start.strftime('%H:%M')}-{end} {sla.time_zone}"


def build_sla(
    mqls: Sequence[MqlFacts], sla: SlaConfig, period_start: datetime, period_end: datetime, now: datetime
) -> SlaReport:
    """The SLA section: figures for the MQLs handed over in [period_start, period_end), open breaches as of now."""
    now = now.astimezone(UTC)
    everyone = [follow_up_of(m, sla) for m in mqls]
    cohort = [f for f in everyone if period_start <= f.mql.mql_at < period_end]
    return SlaReport(
        follow_up=sla.mql_follow_up,
        business_hours=describe_hours(sla),
        total=sla_row("all", cohort, now),
        by_owner=_grouped(cohort, "owner", now),
        by_source=_grouped(cohort, "source", now),
        open_breaches=tuple(open_breaches(everyone, now)),
        as_of=now,
    )


def breaches_open(mqls: Sequence[MqlFacts], sla: SlaConfig, now: datetime) -> list[OpenBreach]:
    """The MQLs past their SLA without follow-up now, whatever their handover date (``closeloop status``)."""
    return open_breaches([follow_up_of(m, sla) for m in mqls], now.astimezone(UTC))
