"""Revenue ledger, touchpoints, rollups and associations."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from closeloop.store import (
    DealContact,
    LedgerEntry,
    LedgerKind,
    PendingAssociation,
    Store,
    TouchpointRow,
)
from closeloop.testing.clock import FakeClock

from .conftest import INTEGRITY_ERRORS

CLOSED = datetime(2026, 1, 3, 12, tzinfo=UTC)


def _won(deal: str, amount: str, contacts: tuple[str, ...] = (), closed: datetime = CLOSED) -> LedgerEntry:
    return LedgerEntry(deal, LedgerKind.WON, Decimal(amount), "EUR", closed, contacts, amount_base=Decimal(amount))


def _goldens(store: Store, *ids: str) -> None:
    for gid in ids:
        store.put_golden(gid, "deal" if gid.startswith("d") else "contact", {})


# -- ledger -------------------------------------------------------------------------------------------------


def test_ledger_entry_keeps_exact_decimal_amounts(store: Store, clock: FakeClock) -> None:
    stored = store.append_ledger(_won("d1", "1999.990", ("c1", "c2")))
    assert stored.id is not None
    assert stored.recorded_at == clock.now
    assert (stored.amount, stored.amount_base, stored.contacts) == (
        Decimal("1999.990"),
        Decimal("1999.990"),
        ("c1", "c2"),
    )
    assert str(store.ledger_for_deals(["d1"])["d1"][0].amount) == "1999.990"


def test_ledger_is_append_only(store: Store) -> None:
    store.append_ledger(_won("d1", "10"))
    for sql in ("UPDATE ledger SET amount = '0'", "DELETE FROM ledger"):
        with pytest.raises(INTEGRITY_ERRORS, match="append-only"):
            store._a.conn.execute(sql)
    assert len(store.ledger_for_deals(["d1"])["d1"]) == 1


def test_reversal_follows_the_win_for_the_deal(store: Store) -> None:
    store.append_ledger(_won("d1", "10"))
    store.append_ledger(_won("d2", "20"))
    store.append_ledger(LedgerEntry("d1", LedgerKind.REVERSAL, Decimal("-10"), "EUR", CLOSED))
    by_deal = store.ledger_for_deals(["d1", "d2", "d3"])
    assert [e.kind for e in by_deal["d1"]] == [LedgerKind.WON, LedgerKind.REVERSAL]
    assert [e.amount for e in by_deal["d2"]] == [Decimal("20")]
    assert "d3" not in by_deal


def test_ledger_for_contacts_finds_every_entry_crediting_each(store: Store) -> None:
    store.append_ledger(_won("d1", "10", ("c1", "c2")))
    store.append_ledger(_won("d2", "20", ("c2",)))
    store.append_ledger(_won("d3", "30", ("c3",)))
    found = store.ledger_for_contacts(["c2", "c3", "c4"])
    by_contact = {c: [e.deal_golden_id for e in entries] for c, entries in found.items()}
    assert by_contact == {"c2": ["d1", "d2"], "c3": ["d3"]}


def test_ledger_entries_since_filters_on_close_date(store: Store) -> None:
    store.append_ledger(_won("d1", "10", closed=datetime(2025, 12, 31, tzinfo=UTC)))
    store.append_ledger(_won("d2", "20", closed=datetime(2026, 1, 1, tzinfo=UTC)))
    assert [e.deal_golden_id for e in store.ledger_entries()] == ["d1", "d2"]
    assert [e.deal_golden_id for e in store.ledger_entries(since=datetime(2026, 1, 1, tzinfo=UTC))] == ["d2"]


# -- touchpoints and rollups --------------------------------------------------------------------------------


def _touch(contact: str, native_id: str, campaign: str | None, day: int = 1) -> TouchpointRow:
    return TouchpointRow(
        contact,
        "mkt",
        native_id,
        datetime(2026, 1, day, tzinfo=UTC),
        "form_fill",
        "web",
        campaign,
        {"utm_source": "x"},
    )


def test_duplicate_touchpoints_are_ignored_even_without_a_campaign(store: Store) -> None:
    rows = [_touch("c1", "t1", "spring"), _touch("c1", "t2", None)]
    assert store.add_touchpoints(rows) == 2
    assert store.add_touchpoints(rows) == 0
    assert store.add_touchpoints([_touch("c1", "t2", "other")]) == 1


def test_touchpoints_of_many_contacts_in_time_order(store: Store) -> None:
    store.add_touchpoints([_touch("c1", "t2", None, day=3), _touch("c1", "t1", None, day=2), _touch("c2", "t3", "x")])
    found = store.touchpoints_of(["c1", "c2", "c9"])
    assert [t.native_id for t in found["c1"]] == ["t1", "t2"]
    assert found["c2"][0].utm == {"utm_source": "x"}
    assert "c9" not in found


def test_the_first_sighting_of_a_source_key_is_kept_and_later_proposals_are_ignored(store: Store) -> None:
    first, later = CLOSED, CLOSED.replace(day=9)
    assert store.first_seen("zoho", {"701:a": first}) == {"701:a": first}
    assert store.first_seen("zoho", {"701:a": later, "701:b": later}) == {"701:a": first, "701:b": later}
    assert store.first_seen("crm2", {"701:a": later}) == {"701:a": later}  # keys are per system
    assert store.first_seen("zoho", {}) == {}


def test_touchpoints_move_to_another_contact(store: Store) -> None:
    store.add_touchpoints([_touch("c1", "t1", None), _touch("c1", "t2", "x", day=2), _touch("c3", "t3", None)])
    assert store.move_touchpoints("c1", "c2") == 2
    found = store.touchpoints_of(["c1", "c2", "c3"])
    assert [t.native_id for t in found["c2"]] == ["t1", "t2"]
    assert "c1" not in found
    assert [t.native_id for t in found["c3"]] == ["t3"]


def test_rollup_is_replaced_and_read_in_batch(store: Store, clock: FakeClock) -> None:
    store.put_rollups({"c1": {"closed_won_revenue": "10"}})
    later = clock.advance(minutes=1)
    store.put_rollups({"c1": {"closed_won_revenue": "30", "closed_won_deals": "2"}, "c2": {"closed_won_revenue": "5"}})
    rollups = store.get_rollups(["c1", "c3"])
    assert list(rollups) == ["c1"]
    assert rollups["c1"].values == {"closed_won_revenue": "30", "closed_won_deals": "2"}
    assert rollups["c1"].updated_at == later


# -- associations -------------------------------------------------------------------------------------------


def test_replace_deal_contacts_replaces_each_deals_previous_set(store: Store) -> None:
    _goldens(store, "d1", "d2", "c1", "c2", "c3")
    store.replace_deal_contacts({"d1": ["c1", "c2"], "d2": ["c1"]})
    store.replace_deal_contacts({"d1": ["c2", "c3", "c3"]})
    assert [a.contact_golden_id for a in store.deal_contacts("d1")] == ["c2", "c3"]
    assert store.deals_of_contact("c2") == [DealContact("d1", "c2")]
    assert store.deals_of_contact("c1") == [DealContact("d2", "c1")]
    found = store.contacts_of_deals(["d1", "d2", "d3"])
    assert {d: [a.contact_golden_id for a in credits] for d, credits in found.items()} == {
        "d1": ["c2", "c3"],
        "d2": ["c1"],
        "d3": [],
    }


def test_association_to_an_unknown_golden_record_is_refused(store: Store) -> None:
    _goldens(store, "d1")
    with pytest.raises(INTEGRITY_ERRORS):
        store.replace_deal_contacts({"d1": ["nobody"]})
    assert store.deal_contacts("d1") == []


def test_pending_associations_wait_for_their_contact(store: Store) -> None:
    waiting = [
        PendingAssociation("conn", "d1", "crm", "contact", "C1"),
        PendingAssociation("conn", "d1", "crm", "contact", "C2", role="buyer"),
        PendingAssociation("conn", "d2", "crm", "contact", "C1"),
    ]
    store.add_pending_associations(waiting)
    store.add_pending_associations(waiting[:1])  # seen again on the next cycle
    found = store.pending_for_contacts("crm", "contact", ["C1"])
    assert sorted(p.deal_golden_id for p in found) == ["d1", "d2"]
    store.replace_pending_associations("crm", ["d2"], [])
    assert store.pending_for_contacts("crm", "contact", ["C1", "C2"]) == waiting[:2]
    store.replace_pending_associations("crm", ["d1"], [PendingAssociation("conn", "d1", "crm", "contact", "C3")])
    assert [p.contact_native_id for p in store.pending_of_system("conn", "crm")] == ["C3"]
