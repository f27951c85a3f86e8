"""Golden records, links and cursors."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest

from closeloop.model import Cursor, WriteOp
from closeloop.store import Link, OutboxItem, Store
from closeloop.store.rows import PageDelta
from closeloop.testing.clock import FakeClock

from .conftest import Backend

SEEN = datetime(2026, 1, 2, 3, 4, 5, 123456, tzinfo=UTC)


def test_golden_record_round_trips_canonical_values(store: Store) -> None:
    fields = {"email": "a@example.com", "opted_in": True, "phone": None, "amount": "12.50"}
    store.put_golden("g1", "contact", fields)
    golden = store.get_golden("g1")
    assert golden is not None
    assert (golden.entity, dict(golden.fields), golden.deleted) == ("contact", fields, False)


def test_put_golden_replaces_fields_and_keeps_created_at(store: Store, clock: FakeClock) -> None:
    store.put_golden("g1", "contact", {"email": "a@example.com"})
    created = clock.now
    later = clock.advance(minutes=5)
    store.put_golden("g1", "contact", {"email": "b@example.com"})
    golden = store.get_golden("g1")
    assert golden is not None
    assert golden.fields == {"email": "b@example.com"}
    assert (golden.created_at, golden.updated_at) == (created, later)


@pytest.mark.parametrize("value", [1, 1.5, ["a"], {"a": "b"}], ids=["int", "float", "list", "dict"])
def test_non_canonical_field_value_is_refused(store: Store, value: object) -> None:
    with pytest.raises(TypeError, match=r"field 'n'.*not a canonical value"):
        store.put_golden("g1", "contact", {"n": value})  # type: ignore[dict-item]


def test_get_goldens_returns_only_existing_ones_in_one_query(store: Store, backend: Backend) -> None:
    for gid in ("g1", "g2", "g3"):
        store.put_golden(gid, "contact", {})
    statements = backend.trace(store)
    found = store.get_goldens(["g1", "g3", "nope", "g1"])
    assert sorted(found) == ["g1", "g3"]
    assert len(statements) == 1


def test_deleted_golden_record_is_kept_and_flagged(store: Store) -> None:
    store.put_golden("g1", "contact", {})
    assert store.mark_golden_deleted("g1")
    golden = store.get_golden("g1")
    assert golden is not None
    assert golden.deleted
    assert not store.mark_golden_deleted("missing")


def test_new_golden_ids_are_unique_hex() -> None:
    ids = {Store.new_golden_id() for _ in range(100)}
    assert len(ids) == 100
    assert all(len(i) == 32 and int(i, 16) >= 0 for i in ids)


def test_link_round_trips_with_exact_modified_time(store: Store) -> None:
    store.put_golden("g1", "contact", {})
    store.put_link("crm", "contact", "003A", "g1", "contact", last_modified_at=SEEN, snapshot={"email": "a@x"})
    link = store.get_link("crm", "contact", "003A")
    assert link is not None
    assert (link.golden_id, link.last_modified_at, dict(link.snapshot)) == ("g1", SEEN, {"email": "a@x"})


def test_put_link_without_time_or_snapshot_keeps_the_stored_ones(store: Store) -> None:
    store.put_golden("g1", "contact", {})
    store.put_link("crm", "contact", "1", "g1", "contact", last_modified_at=SEEN, snapshot={"email": "a@x"})
    link = store.put_link("crm", "contact", "1", "g1", "contact")
    assert (link.last_modified_at, dict(link.snapshot)) == (SEEN, {"email": "a@x"})


def test_relinking_moves_linked_at_but_updating_does_not(store: Store, clock: FakeClock) -> None:
    store.put_golden("g1", "contact", {})
    store.put_golden("g2", "contact", {})
    first = store.put_link("crm", "contact", "1", "g1", "contact").linked_at
    clock.advance(minutes=1)
    assert store.put_link("crm", "contact", "1", "g1", "contact", snapshot={}).linked_at == first
    later = clock.advance(minutes=1)
    assert store.put_link("crm", "contact", "1", "g2", "contact").linked_at == later


def test_find_links_looks_up_a_whole_page_in_one_query(store: Store, backend: Backend) -> None:
    with store.transaction():
        for n in range(1500):
            store.put_golden(f"g{n}", "contact", {})
            store.put_link("crm", "contact", f"n{n}", f"g{n}", "contact")
        store.put_golden("other", "contact", {})
        store.put_link("mkt", "contact", "n1", "other", "contact")
    statements = backend.trace(store)
    wanted = [f"n{n}" for n in range(0, 3000, 2)]
    found = store.find_links("crm", "contact", wanted)
    assert len(statements) == 1
    assert sorted(found) == sorted(f"n{n}" for n in range(0, 1500, 2))
    assert found["n10"].golden_id == "g10"


def test_find_links_of_no_ids_is_empty(store: Store) -> None:
    assert store.find_links("crm", "contact", []) == {}


def test_links_of_a_golden_record_span_systems(store: Store) -> None:
    store.put_golden("g1", "contact", {})
    store.put_link("mkt", "lead", "L1", "g1", "contact")
    store.put_link("crm", "contact", "C1", "g1", "contact")
    assert [(lk.system, lk.native_id) for lk in store.links_of("g1")] == [("crm", "C1"), ("mkt", "L1")]


def test_links_of_many_hands_back_known_links_and_decodes_the_rest(store: Store) -> None:
    store.put_golden("g1", "contact", {})
    store.put_golden("g2", "contact", {})
    crm = store.put_link("crm", "contact", "C1", "g1", "contact", snapshot={"email": "a@x"})
    store.put_link("mkt", "lead", "L1", "g1", "contact", snapshot={"email": "a@x"})
    store.put_link("crm", "contact", "C2", "g2", "contact")
    stale = store.put_link("mkt", "lead", "L2", "g2", "contact")
    store.put_link("mkt", "lead", "L2", "g1", "contact")  # moved since it was read: decoded again

    found = store.links_of_many(["g1", "g2"], {("crm", "contact", "C1"): crm, ("mkt", "lead", "L2"): stale})
    assert found["g1"][0] is crm
    assert [(lk.native_id, lk.golden_id) for lk in found["g1"]] == [("C1", "g1"), ("L1", "g1"), ("L2", "g1")]
    assert [lk.native_id for lk in found["g2"]] == ["C2"]


def test_repoint_links_moves_every_link_after_a_merge(store: Store) -> None:
    for gid in ("loser", "winner"):
        store.put_golden(gid, "contact", {})
    store.put_link("crm", "contact", "1", "loser", "contact")
    store.put_link("mkt", "lead", "2", "loser", "contact")
    assert store.repoint_links("loser", "winner") == 2
    assert store.links_of("loser") == []
    assert len(store.links_of("winner")) == 2


def test_delete_link(store: Store) -> None:
    store.put_golden("g1", "contact", {})
    store.put_link("crm", "contact", "1", "g1", "contact")
    assert store.delete_link("crm", "contact", "1")
    assert store.get_link("crm", "contact", "1") is None
    assert not store.delete_link("crm", "contact", "1")


def test_cursor_round_trips_time_and_id(store: Store) -> None:
    assert store.get_cursor("c1", "crm", "contact") is None
    store.set_cursor("c1", "crm", "contact", Cursor(SEEN, "003A"))
    store.set_cursor("c1", "crm", "contact", Cursor(SEEN, "003B"))
    store.set_cursor("c1", "mkt", "lead", Cursor(SEEN))
    assert store.get_cursor("c1", "crm", "contact") == Cursor(SEEN, "003B")
    assert store.get_cursor("c2", "crm", "contact") is None
    assert store.cursors("c1") == {("crm", "contact"): Cursor(SEEN, "003B"), ("mkt", "lead"): Cursor(SEEN)}


def test_cursor_rows_written_by_earlier_versions_read_back(store: Store) -> None:
    """Rows as earlier versions wrote them: '' for no id, a time text in any RFC 3339 form. The store's form is
    unchanged (no migration): no id is still written as ''."""
    rows = [
        ("crm", "contact", "2026-01-02T03:04:05.123456Z", "003B"),
        ("crm", "lead", "2026-01-02T03:04:05.123456Z", ""),
        ("mkt", "lead", "2026-01-02T05:04:05.123456+02:00", "1000"),
    ]
    for system, obj, at, record_id in rows:
        store._a.conn.execute(
            "INSERT INTO cursors (connection, system, object, modified_at, record_id, updated_at) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            ("c1", system, obj, at, record_id, "2026-01-02T03:04:05.000000Z"),
        )
    assert store.cursors("c1") == {
        ("crm", "contact"): Cursor(SEEN, "003B"),
        ("crm", "lead"): Cursor(SEEN),
        ("mkt", "lead"): Cursor(SEEN, "1000"),
    }
    store.set_cursor("c1", "crm", "lead", Cursor(SEEN))
    row = store._a.row("SELECT modified_at, record_id FROM cursors WHERE system = ? AND object = ?", ("crm", "lead"))
    assert row is not None
    assert (row["modified_at"], row["record_id"]) == ("2026-01-02T03:04:05.123456Z", "")


def test_golden_keys_find_live_records_by_match_key(store: Store) -> None:
    with store.transaction():
        for golden_id in ("g1", "g2"):
            store.put_golden(golden_id, "contact", {"email": "ann@x.com"})
            store.set_golden_keys("contact", [(golden_id, {"email": "ann@x.com"})])
    assert store.find_goldens_by_key("contact", "email", "ann@x.com") == ["g1", "g2"]
    store.mark_golden_deleted("g1")
    assert store.find_goldens_by_key("contact", "email", "ann@x.com") == ["g2"]
    store.set_golden_keys("contact", [("g2", {"email": "bob@x.com"})])
    assert store.find_goldens_by_key("contact", "email", "ann@x.com") == []
    assert store.find_goldens_by_key("deal", "email", "bob@x.com") == []


def test_goldens_pages_live_records_of_one_entity_in_id_order(store: Store) -> None:
    for gid, entity in (("g3", "contact"), ("g1", "contact"), ("g2", "deal"), ("g4", "contact"), ("g5", "contact")):
        store.put_golden(gid, entity, {})
    store.mark_golden_deleted("g4")
    first = store.goldens("contact", limit=2)
    rest = store.goldens("contact", first[-1].id, limit=2)
    assert [g.id for g in first] == ["g1", "g3"]
    assert [g.id for g in rest] == ["g5"]
    assert store.goldens("contact", "g5") == []


def test_golden_ids_made_later_sort_later() -> None:
    first = Store.new_golden_id()
    time.sleep(0.002)
    assert Store.new_golden_id() > first


def test_apply_delta_writes_a_page_set_based_in_one_transaction(store: Store, backend: Backend) -> None:
    store.put_golden("old", "contact", {"email": "old@x.com"})
    store.put_golden("gone", "contact", {"email": "gone@x.com"})
    store.set_golden_keys("contact", [("old", {"email": "old@x.com"})])
    store.put_link("crm", "Contact", "c-gone", "gone", "contact")
    [stale] = store.enqueue([OutboxItem("bench", "crm", "Contact", "contact", "old", WriteOp.UPDATE, "c1")])
    link = Link("crm", "Contact", "c-new", "new", "contact", SEEN, {"email": "new@x.com"}, SEEN)
    delta = PageDelta(
        goldens=[
            ("new", "contact", {"email": "new@x.com"}, {"email": ["crm", None]}),
            ("old", "contact", {"email": "old2@x.com"}, {}),
        ],
        deleted_goldens=["gone"],
        unlinked=[("crm", "Contact", "c-gone")],
        links=[link],
        keys={"contact": [("new", {"email": "new@x.com"}), ("old", {"email": "old2@x.com"})]},
        new_goldens=frozenset({"new"}),
        outbox=[OutboxItem("bench", "marketing", "contacts", "contact", "new", WriteOp.CREATE)],
        done=[stale],
    )
    statements = backend.trace(store)
    with store.transaction():
        store.apply_delta(delta)
    assert not [s for s in statements if s.upper().startswith(("SAVEPOINT", "RELEASE"))]
    assert not [s for s in statements if "golden_keys WHERE golden_id = 'new'" in s]  # nothing to delete
    assert store.find_goldens_by_keys("contact", "email", ["old@x.com", "old2@x.com", "new@x.com"]) == {
        "old2@x.com": ["old"],
        "new@x.com": ["new"],
    }
    gone, new = store.get_golden("gone"), store.get_golden("new")
    assert gone is not None
    assert gone.deleted
    assert new is not None
    assert new.provenance == {"email": ["crm", None]}
    assert store.get_link("crm", "Contact", "c-gone") is None
    assert store.get_link("crm", "Contact", "c-new") == link
    assert [e.item.golden_id for e in store.due_outbox("bench", "marketing", "contacts", 10)] == ["new"]
    assert store.due_outbox("bench", "crm", "Contact", 10) == []
