"""The cursor's boundary rules: one definition of (modified_at, id) for the engine, connectors and the kit."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from closeloop.model import Cursor, NativeRecord, Page, advance, position_key, record_key, records_after

T = datetime(2026, 3, 31, 23, 59, 59, tzinfo=UTC)


def rec(record_id: str, at: datetime = T) -> NativeRecord:
    return NativeRecord(record_id, at)


def test_numeric_ids_order_as_numbers_and_fixed_width_ids_as_text() -> None:
    ids = ["10000", "998", "1000", "999"]
    assert [r.id for r in sorted(map(rec, ids), key=record_key)] == ["998", "999", "1000", "10000"]
    sf = ["003B00000000002AAA", "003A00000000009AAA", "003A00000000010AAA"]
    assert sorted(sf, key=lambda i: position_key(T, i)) == sorted(sf)


def test_time_comes_before_id() -> None:
    assert Cursor(T, "9") < Cursor(T + timedelta(microseconds=1), "1")
    assert record_key(rec("9", T)) < record_key(rec("10", T))


def test_no_id_lies_before_every_id_of_its_moment() -> None:
    assert Cursor(T, "") == Cursor(T)
    assert Cursor(T).id == ""
    assert Cursor(T) < Cursor(T, "1") < Cursor(T, "0" * 2)
    assert Cursor(T).precedes(rec("1"))
    assert not Cursor(T).precedes(rec("1", T - timedelta(microseconds=1)))


def test_precedes_is_strict() -> None:
    cursor = Cursor(T, "500")
    assert not cursor.precedes(rec("500"))
    assert not cursor.precedes(rec("499"))
    assert cursor.precedes(rec("501"))
    assert cursor.precedes(rec("1000"))  # a longer number is a larger one
    assert not cursor.precedes(rec("9999", T - timedelta(milliseconds=1)))
    assert cursor.precedes(rec("1", T + timedelta(microseconds=1)))


def test_a_cursor_is_aware_utc() -> None:
    paris = datetime(2026, 4, 1, 1, 59, 59, tzinfo=timezone(timedelta(hours=2)))
    assert Cursor(paris, "1") == Cursor(T, "1")
    assert Cursor(paris).modified_at.tzinfo is UTC
    with pytest.raises(ValueError, match="naive"):
        Cursor(datetime(2026, 1, 1), "1")  # a naive time: the refusal is the point


def test_position_of_a_record_and_last_of_a_page() -> None:
    page = Page((rec("7"), rec("12")))
    assert page.last == Cursor(T, "12") == page.records[-1].position
    assert Page(()).last is None


def test_records_after_keeps_only_those_strictly_after() -> None:
    records = [rec("8"), rec("9"), rec("10"), rec("2", T + timedelta(seconds=1))]
    assert [r.id for r in records_after(None, records)] == ["8", "9", "10", "2"]
    assert [r.id for r in records_after(Cursor(T, "9"), records)] == ["10", "2"]
    assert [r.id for r in records_after(Cursor(T), records)] == ["8", "9", "10", "2"]
    assert records_after(Cursor(T + timedelta(seconds=1), "2"), records) == []


def test_advance_moves_to_the_last_record_and_never_back() -> None:
    assert advance(None, []) is None
    assert advance(None, [rec("1"), rec("2")]) == Cursor(T, "2")
    assert advance(Cursor(T, "2"), [rec("10")]) == Cursor(T, "10")
    later = Cursor(T + timedelta(minutes=1))
    assert advance(later, [rec("10")]) is later  # a lookback re-read ends before the stored cursor
    assert advance(later, []) is later


def test_lookback_drops_the_id_and_a_zero_window_keeps_it() -> None:
    cursor = Cursor(T, "42")
    assert cursor.lookback(timedelta(0)) is cursor
    back = cursor.lookback(timedelta(minutes=10))
    assert back == Cursor(T - timedelta(minutes=10))
    assert back.precedes(rec("1", T - timedelta(minutes=10)))  # the window's first moment comes again, whole
    assert back.precedes(rec("42"))


def test_store_form_is_fixed_width_text() -> None:
    assert Cursor(T.replace(microsecond=120), "003A").columns() == ("2026-03-31T23:59:59.000120Z", "003A")
    assert Cursor(T).columns() == ("2026-03-31T23:59:59.000000Z", "")
    later = Cursor(T + timedelta(microseconds=1)).columns()[0]
    assert Cursor(T).columns()[0] < later  # text order is time order
    for cursor in (Cursor(T), Cursor(T, "7"), Cursor(T.replace(microsecond=999_999), "0015")):
        assert Cursor.from_columns(*cursor.columns()) == cursor


def test_store_columns_as_every_version_wrote_them() -> None:
    assert Cursor.from_columns("2026-03-31T23:59:59.000000Z", "") == Cursor(T)
    assert Cursor.from_columns("2026-03-31T23:59:59.000Z", None) == Cursor(T)
    assert Cursor.from_columns("2026-03-31T23:59:59+00:00", "12") == Cursor(T, "12")


ids = st.integers(min_value=1, max_value=100_000).map(str)
moments = st.integers(min_value=0, max_value=3).map(lambda s: T + timedelta(seconds=s))
streams = st.lists(st.tuples(moments, ids), min_size=1, max_size=60, unique_by=lambda pair: pair[1])


@given(streams, st.integers(min_value=1, max_value=7), st.integers(min_value=0, max_value=59))
def test_resuming_at_any_page_boundary_reads_the_rest_exactly_once(
    stream: list[tuple[datetime, str]], page_size: int, stop: int
) -> None:
    """Runs of one moment split by pages: resuming from the stored cursor neither re-reads nor skips."""
    records = sorted((rec(i, at) for at, i in stream), key=record_key)
    pages = [records[n : n + page_size] for n in range(0, len(records), page_size)]
    cursor: Cursor | None = None
    for page in pages[: stop % (len(pages) + 1)]:
        cursor = advance(cursor, page)
    done = sum(len(p) for p in pages[: stop % (len(pages) + 1)])
    assert records_after(cursor, records) == records[done:]
    assert cursor == (records[done - 1].position if done else None)
