"""Reading the state store into a report input: contacts, kept original sources, the ledger and touches."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from closeloop.loop import FunnelStage, OriginalSource, TouchKind
from closeloop.loop.facts import (
    golden_contacts,
    kept_row,
    kept_source,
    observed_source,
    read_facts,
    tells_nothing,
)
from closeloop.store import Store
from closeloop.store.rows import LedgerEntry, LedgerKind, TouchpointRow

START, END = datetime(2024, 3, 1, tzinfo=UTC), datetime(2024, 4, 1, tzinfo=UTC)


def day(month: int, dom: int) -> datetime:
    """Midnight UTC on a day of 2024."""
    return datetime(2024, month, dom, tzinfo=UTC)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    opened = Store.open(tmp_path / "state.db", clock=lambda: datetime(2026, 3, 1, tzinfo=UTC))
    yield opened
    opened.close()


def _touch(
    contact: str,
    at: datetime,
    kind: str,
    *,
    channel: str | None = None,
    campaign: str | None = None,
    utm: dict[str, str] | None = None,
    detail: str | None = None,
) -> TouchpointRow:
    return TouchpointRow(contact, "mkt", f"n-{contact}", at, kind, channel, campaign, utm or {}, detail)


def test_contact_facts_come_from_canonical_fields(store: Store) -> None:
    store.put_golden(
        "g1",
        "contact",
        {"email": "a@x.com", "lifecycle_stage": "sql", "created_at": "2024-03-02", "became_mql_at": "2024-03-04"},
    )
    (contact,) = read_facts(store, START, END, "eur").contacts
    assert (contact.contact_id, contact.lifecycle_stage, contact.created_at) == ("g1", "sql", day(3, 2))
    assert contact.stage_dates == {FunnelStage.MQL: day(3, 4)}
    assert contact.original_source is None


def test_created_at_falls_back_to_when_closeloop_first_saw_the_contact(store: Store) -> None:
    store.put_golden("g1", "contact", {"created_at": "not a date"})
    (contact,) = read_facts(store, START, END, "EUR").contacts
    assert contact.created_at == datetime(2026, 3, 1, tzinfo=UTC)


def test_deleted_contacts_and_deals_are_not_contacts(store: Store) -> None:
    store.put_golden("g1", "contact", {})
    store.put_golden("g2", "contact", {})
    store.put_golden("d1", "deal", {})
    store.mark_golden_deleted("g2")
    assert [c.contact_id for c in read_facts(store, START, END, "EUR").contacts] == ["g1"]


def test_contacts_are_read_in_batches(store: Store) -> None:
    for n in range(5):
        store.put_golden(f"g{n}", "contact", {})
    assert [[g.id for g in batch] for batch in golden_contacts(store, batch=2)] == [
        ["g0", "g1"],
        ["g2", "g3"],
        ["g4"],
    ]


def test_kept_source_round_trips_through_the_store(store: Store) -> None:
    source = OriginalSource("paid_search", "spring ad", "google", "cpc", "spring", day(2, 28), "crm")
    store.put_original_sources([kept_row("g1", source, day(3, 1))])
    kept = store.original_sources(["g1", "g2"])
    assert list(kept) == ["g1"]
    assert kept["g1"].captured_at == day(3, 1)
    assert kept_source(kept["g1"]) == source
    assert kept_source(None) is None


def test_a_changed_kept_source_replaces_the_kept_one(store: Store) -> None:
    store.put_original_sources([kept_row("g1", OriginalSource("email"), day(3, 1))])
    store.put_original_sources([kept_row("g1", OriginalSource("email", utm_campaign="webinar"), day(3, 2))])
    assert kept_source(store.original_sources(["g1"])["g1"]) == OriginalSource("email", utm_campaign="webinar")


def test_without_a_kept_source_fields_and_reported_sources_are_merged() -> None:
    fields = {"original_source": "EMAIL", "utm_campaign": "webinar", "first_touch_at": True}
    reported = _touch("g1", day(3, 3), "original_source", channel="referral", detail="partner site")
    assert observed_source(fields, [reported]) == OriginalSource(
        "EMAIL", "partner site", None, None, "webinar", day(3, 3), "mkt"
    )
    assert observed_source({}, []) is None
    assert observed_source({"original_source": " ", "utm_source": None}, []) is None


def test_a_source_that_only_names_its_system_tells_nothing() -> None:
    assert tells_nothing(OriginalSource(system="crm"))
    assert not tells_nothing(OriginalSource(first_touch_at=day(3, 1), system="crm"))


def test_kept_source_wins_over_what_the_fields_say_now(store: Store) -> None:
    store.put_golden("g1", "contact", {"original_source": "direct"})
    store.put_original_sources([kept_row("g1", OriginalSource("referral", first_touch_at=day(3, 1)), day(3, 5))])
    (contact,) = read_facts(store, START, END, "EUR").contacts
    assert contact.original_source == OriginalSource("referral", first_touch_at=day(3, 1))


def test_stored_touchpoints_become_touches_but_original_source_rows_do_not(store: Store) -> None:
    store.put_golden("g1", "contact", {})
    store.add_touchpoints(
        [
            _touch("g1", day(3, 2), "original_source", channel="email"),
            _touch("g1", day(3, 6), "form_fill", utm={"utm_source": "newsletter", "utm_medium": "email"}),
            _touch("g1", day(3, 7), "web_visit", campaign="spring"),
        ]
    )
    touches = read_facts(store, START, END, "EUR").touches
    assert [(t.contact_id, t.kind, t.channel.value, t.campaign) for t in touches] == [
        ("g1", TouchKind.FORM_FILL, "email", None),
        ("g1", TouchKind.CAMPAIGN, "direct", "spring"),  # no UTM values: direct
    ]


def test_ledger_is_read_whole_and_won_deals_make_their_contacts_customers(store: Store) -> None:
    store.put_golden("g1", "contact", {"lifecycle_stage": "lead", "became_customer_at": "2024-03-09T10:00:00Z"})
    store.put_golden("g2", "contact", {"lifecycle_stage": "lead"})
    store.put_golden("g3", "contact", {"lifecycle_stage": "lead"})
    won = LedgerEntry("d1", LedgerKind.WON, Decimal("100"), "USD", day(3, 10), ("g1", "g2"), Decimal("90.00"))
    early = LedgerEntry("d0", LedgerKind.WON, Decimal("5"), "EUR", day(1, 10), ("g3",), Decimal("5"))
    undone = LedgerEntry("d0", LedgerKind.REVERSAL, Decimal("-5"), "EUR", day(1, 10), ("g3",), Decimal("-5"))
    for entry in (won, early, undone):
        store.append_ledger(entry)
    facts = read_facts(store, START, END, "EUR")
    assert [(e.deal_id, e.kind.value, e.amount_base) for e in facts.ledger] == [
        ("d1", "won", Decimal("90.00")),
        ("d0", "won", Decimal("5")),
        ("d0", "reversal", Decimal("-5")),
    ]
    by_id = {c.contact_id: c for c in facts.contacts}
    assert by_id["g1"].stage_dates == {FunnelStage.CUSTOMER: datetime(2024, 3, 9, 10, tzinfo=UTC)}
    assert by_id["g2"].stage_dates == {FunnelStage.CUSTOMER: day(3, 10)}
    assert by_id["g3"].stage_dates == {}  # its only deal was reopened
