"""The follow-up SLA's arithmetic: business time, deadlines, verdicts and the nearest-rank figures."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from closeloop.config.sla import SlaConfig, SlaDoc, parse_sla
from closeloop.loop.business_time import business_deadline, business_elapsed
from closeloop.loop.sla import MqlFacts, build_sla, follow_up_of, nearest_rank

BERLIN_OFFICE = parse_sla(
    SlaDoc(mql_follow_up="4h", time_zone="Europe/Berlin", business_hours={"start": "09:00", "end": "17:00"})
)
ROUND_THE_CLOCK = parse_sla(SlaDoc(mql_follow_up="24h"))


def utc(day: int, hour: int, minute: int = 0, month: int = 3) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=UTC)


@pytest.mark.parametrize(
    ("start", "expected"),
    [
        pytest.param(utc(6, 15), utc(9, 11), id="friday_afternoon_runs_into_monday"),
        pytest.param(utc(7, 10), utc(9, 12), id="saturday_starts_at_monday_opening"),
        pytest.param(utc(9, 6), utc(9, 12), id="before_opening_starts_at_opening"),
        pytest.param(utc(9, 9), utc(9, 13), id="within_one_day"),
        # Berlin moves to summer time on 29 March 2026: Monday 30 March opens at 07:00 UTC
        pytest.param(utc(27, 15), utc(30, 10), id="across_the_daylight_saving_change"),
    ],
)
def test_business_deadline(start: datetime, expected: datetime) -> None:
    assert business_deadline(start, timedelta(hours=4), BERLIN_OFFICE) == expected


def test_business_elapsed_counts_only_open_hours() -> None:
    assert business_elapsed(utc(6, 15), utc(9, 10, 30), BERLIN_OFFICE) == timedelta(hours=3, minutes=30)
    assert business_elapsed(utc(7, 10), utc(8, 20), BERLIN_OFFICE) == timedelta()  # a weekend
    assert business_elapsed(utc(9, 10), utc(9, 9), BERLIN_OFFICE) == timedelta()  # backwards
    assert business_elapsed(utc(6, 15), utc(9, 10, 30), ROUND_THE_CLOCK) == timedelta(hours=67, minutes=30)


def test_nearest_rank_percentiles() -> None:
    hours = [timedelta(hours=h) for h in (5, 1, 3, 2, 4)]
    assert nearest_rank(hours, 50) == timedelta(hours=3)
    assert nearest_rank(hours, 90) == timedelta(hours=5)
    assert nearest_rank([], 50) is None


def mql(
    at: datetime,
    activities: tuple[datetime, ...] = (),
    moved: tuple[datetime, ...] = (),
    *,
    owner: str | None = None,
    still: bool = True,
) -> MqlFacts:
    return MqlFacts("c", "c@example.com", at, "email", owner, activities, moved, still)


def test_an_activity_before_the_handover_is_no_follow_up() -> None:
    found = follow_up_of(mql(utc(2, 9), activities=(utc(1, 9),)), ROUND_THE_CLOCK)
    assert found.followed_up_at is None


def test_a_stage_move_counts_only_where_no_activity_exists() -> None:
    moved_first = follow_up_of(mql(utc(2, 9), activities=(utc(2, 20),), moved=(utc(2, 10),)), ROUND_THE_CLOCK)
    assert (moved_first.followed_up_at, moved_first.by_activity) == (utc(2, 20), True)
    only_moved = follow_up_of(mql(utc(2, 9), moved=(utc(2, 10),)), ROUND_THE_CLOCK)
    assert (only_moved.followed_up_at, only_moved.by_activity) == (utc(2, 10), False)


def test_exactly_at_the_deadline_is_within() -> None:
    on_time = follow_up_of(mql(utc(2, 9), activities=(utc(3, 9),)), ROUND_THE_CLOCK)
    assert on_time.within
    assert not on_time.breached(utc(9, 0))


def test_an_mql_that_left_the_stage_without_a_date_is_not_an_open_breach() -> None:
    mqls = [mql(utc(2, 9), still=False), mql(utc(2, 9), owner="005A")]
    report = build_sla(mqls, ROUND_THE_CLOCK, utc(1, 0), utc(1, 0, month=4), now=utc(5, 9))
    assert [b.owner for b in report.open_breaches] == ["005A"]
    assert (report.total.handed_over, report.total.breached, report.total.within_percent) == (2, 2, 0)


def test_the_period_counts_handovers_but_open_breaches_are_all_of_them() -> None:
    report = build_sla([mql(utc(2, 9, month=2))], ROUND_THE_CLOCK, utc(1, 0), utc(1, 0, month=4), now=utc(5, 9))
    assert report.total.handed_over == 0
    assert report.total.within_percent is None
    assert len(report.open_breaches) == 1


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        pytest.param({"mql_follow_up": "0h"}, "must be longer than zero", id="zero"),
        pytest.param({"mql_follow_up": "1w"}, "mql_follow_up: bad duration '1w'", id="bad_unit"),
        pytest.param({"mql_follow_up": "4h", "time_zone": "Mars/Base"}, "not an IANA time zone", id="bad_zone"),
        pytest.param(
            {"mql_follow_up": "4h", "business_hours": {"start": "17:00", "end": "09:00"}},
            "end 09:00 is not after start 17:00",
            id="end_before_start",
        ),
        pytest.param(
            {"mql_follow_up": "4h", "business_hours": {"start": "9am"}},
            "start '9am' is not a time of day",
            id="bad_time",
        ),
    ],
)
def test_bad_sla_settings_are_named(doc: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_sla(SlaDoc.model_validate(doc))


def test_a_day_ending_at_midnight() -> None:
    late = SlaConfig(
        mql_follow_up=timedelta(hours=2),
        business_hours=parse_sla(
            SlaDoc(mql_follow_up="2h", business_hours={"start": "20:00", "end": "24:00"})
        ).business_hours,
    )
    assert business_deadline(utc(2, 23), timedelta(hours=2), late) == utc(3, 21)
