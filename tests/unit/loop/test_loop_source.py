"""Original source: write-once, earliest first touch wins, blanks never overwrite."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from closeloop.loop import OriginalSource, merge_original_source

EARLY = datetime(2024, 1, 1, tzinfo=UTC)
LATE = datetime(2024, 2, 1, tzinfo=UTC)


def test_first_source_is_kept_when_nothing_is_stored() -> None:
    candidate = OriginalSource("paid_search", utm_source="google", first_touch_at=LATE)
    assert merge_original_source(None, candidate) is candidate


def test_earlier_first_touch_wins() -> None:
    existing = OriginalSource("organic_search", "google.com", first_touch_at=LATE, system="crm")
    earlier = OriginalSource("paid_search", utm_campaign="spring", first_touch_at=EARLY, system="marketing")
    merged = merge_original_source(existing, earlier)
    assert merged == OriginalSource("paid_search", "google.com", None, None, "spring", EARLY, "marketing")


def test_later_first_touch_only_fills_blanks() -> None:
    existing = OriginalSource("organic_search", first_touch_at=EARLY)
    later = OriginalSource("paid_search", "ad 7", "google", "cpc", "spring", LATE)
    assert merge_original_source(existing, later) == OriginalSource(
        "organic_search", "ad 7", "google", "cpc", "spring", EARLY
    )


def test_unknown_times_keep_the_existing_values() -> None:
    existing = OriginalSource("referral")
    candidate = OriginalSource("direct", first_touch_at=EARLY)
    assert merge_original_source(existing, candidate) == OriginalSource("referral", first_touch_at=EARLY)


def test_blank_strings_are_blanks() -> None:
    existing = OriginalSource("referral", detail="partner.example")
    assert merge_original_source(existing, OriginalSource(" ", detail="")) == existing
    assert OriginalSource("  ").is_blank


texts = st.one_of(st.none(), st.sampled_from(["", "a", "b", "paid_search"]))
times = st.one_of(st.none(), st.sampled_from([EARLY, LATE]))
sources = st.builds(OriginalSource, texts, texts, texts, texts, texts, times, texts)


@given(sources, sources)
def test_merge_never_blanks_a_set_value(existing: OriginalSource, candidate: OriginalSource) -> None:
    merged = merge_original_source(existing, candidate)
    for name in OriginalSource.__dataclass_fields__:
        if getattr(existing, name) is not None:
            assert getattr(merged, name) is not None
    assert merge_original_source(merged, candidate) == merged
    assert merge_original_source(existing, candidate) == merged
