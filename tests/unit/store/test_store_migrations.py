"""Numbered migrations: from empty, from every earlier version, atomically with their version row."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from closeloop.store import MIGRATIONS, Migrations, Store
from closeloop.store.rows import LedgerEntry, LedgerKind

EXPECTED_TABLES = {
    "schema_version",
    "golden",
    "links",
    "golden_keys",
    "cursors",
    "outbox",
    "quarantine",
    "runs",
    "ledger",
    "ledger_contacts",
    "touchpoints",
    "rollups",
    "associations",
    "pending_associations",
    "sales_activities",
    "touch_first_seen",
    "original_sources",
}


def _tables(path: Path) -> set[str]:
    raw = sqlite3.connect(path)
    try:
        return {row[0] for row in raw.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    finally:
        raw.close()


def _schema(path: Path) -> list[tuple[str, str]]:
    raw = sqlite3.connect(path)
    try:
        return sorted(raw.execute("SELECT name, sql FROM sqlite_master WHERE name NOT LIKE 'sqlite_%'").fetchall())
    finally:
        raw.close()


def _versions(path: Path) -> list[int]:
    raw = sqlite3.connect(path)
    try:
        return [r[0] for r in raw.execute("SELECT version FROM schema_version ORDER BY version")]
    finally:
        raw.close()


ALL = [m.version for m in MIGRATIONS.steps]
"""Every migration's number, in order."""
EARLIER = ALL[:-1]


def _old_link(store: Store, system: str, native_id: str, snapshot: str = "{}") -> None:
    """A link as every earlier version stores it (the Store of today reads and writes today's columns)."""
    store._a.conn.execute(
        "INSERT INTO links (system, object, native_id, golden_id, entity, snapshot, linked_at)"
        " VALUES (?, 'contact', ?, 'g1', 'contact', ?, '2026-01-01T00:00:00.000000Z')",
        (system, native_id, snapshot),
    )


def test_migrations_are_numbered_from_one_without_gaps() -> None:
    assert [m.version for m in MIGRATIONS.steps] == list(range(1, MIGRATIONS.latest + 1))


def test_empty_file_migrates_to_latest(db_path: Path) -> None:
    with Store.open(db_path) as store:
        assert store.schema_version == MIGRATIONS.latest
    assert _tables(db_path) == EXPECTED_TABLES
    assert _versions(db_path) == ALL


@pytest.mark.parametrize("start", EARLIER, ids=lambda v: f"from-v{v}")
def test_each_earlier_version_migrates_to_the_same_schema(tmp_path: Path, start: int) -> None:
    fresh = tmp_path / "fresh.db"
    Store.open(fresh).close()
    old = tmp_path / "old.db"
    with Store.open(old, migrations=MIGRATIONS.upto(start)) as store:
        assert store.schema_version == start
    with Store.open(old) as store:
        assert store.schema_version == MIGRATIONS.latest
    assert _schema(old) == _schema(fresh)
    assert _versions(old) == ALL


@pytest.mark.parametrize("start", EARLIER, ids=lambda v: f"from-v{v}")
def test_data_written_at_an_earlier_version_survives_migration(tmp_path: Path, start: int) -> None:
    path = tmp_path / "old.db"
    with Store.open(path, migrations=MIGRATIONS.upto(start)) as store:
        store.put_golden("g1", "contact", {"email": "a@example.com"})
        _old_link(store, "crm", "1")
    with Store.open(path) as store:
        assert store.get_link("crm", "contact", "1") is not None
        golden = store.get_golden("g1")
        assert golden is not None
        assert golden.fields == {"email": "a@example.com"}


def test_ledger_entries_written_before_v5_are_found_by_their_contacts(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    closed = datetime(2026, 1, 1, tzinfo=UTC)
    with Store.open(path, migrations=MIGRATIONS.upto(4)) as store:
        store.append_ledger(LedgerEntry("d1", LedgerKind.WON, Decimal(10), "USD", closed, ("c1", "c2")))
        store.append_ledger(LedgerEntry("d2", LedgerKind.WON, Decimal(20), "USD", closed, ("c2",)))
    with Store.open(path) as store:
        found = store.ledger_for_contacts(["c1", "c2"])
        store.append_ledger(LedgerEntry("d3", LedgerKind.WON, Decimal(30), "USD", closed, ("c1",)))
        after = store.ledger_for_contacts(["c1"])
    assert {c: [e.deal_golden_id for e in entries] for c, entries in found.items()} == {
        "c1": ["d1"],
        "c2": ["d1", "d2"],
    }
    assert [e.deal_golden_id for e in after["c1"]] == ["d1", "d3"]


def test_reopening_an_up_to_date_store_applies_nothing(db_path: Path) -> None:
    Store.open(db_path).close()
    before = _versions(db_path)
    Store.open(db_path).close()
    assert _versions(db_path) == before


def test_failing_migration_leaves_neither_its_changes_nor_its_version(db_path: Path) -> None:
    registry = MIGRATIONS.upto(MIGRATIONS.latest)

    @registry(MIGRATIONS.latest + 1, "breaks half-way")
    def _broken(db: sqlite3.Connection) -> None:
        db.execute("CREATE TABLE half_done (id INTEGER)")
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        Store.open(db_path, migrations=registry)
    assert "half_done" not in _tables(db_path)
    assert _versions(db_path) == ALL


def test_migration_records_its_name(db_path: Path) -> None:
    Store.open(db_path).close()
    raw = sqlite3.connect(db_path)
    names = dict(raw.execute("SELECT version, name FROM schema_version").fetchall())
    raw.close()
    assert names[1] == "initial schema"


@pytest.mark.parametrize("version", [0, -1, 1], ids=["zero", "negative", "taken"])
def test_registering_a_bad_migration_number_is_refused(version: int) -> None:
    registry = Migrations()

    @registry(1, "first")
    def _first(db: sqlite3.Connection) -> None:
        return None

    with pytest.raises(ValueError, match="not a new positive number"):
        registry(version, "again")(_first)


@pytest.mark.parametrize("start", range(1, 8), ids=lambda v: f"from-v{v}")
def test_tombstones_move_out_of_snapshots_into_their_column(tmp_path: Path, start: int) -> None:
    path = tmp_path / "old.db"
    with Store.open(path, migrations=MIGRATIONS.upto(start)) as store:
        store.put_golden("g1", "contact", {"email": "a@example.com"})
        _old_link(store, "crm", "gone", '{"email": "a@example.com", "~deleted": true}')
        _old_link(store, "mkt", "here", '{"email": "a@example.com"}')
    with Store.open(path) as store:
        gone, here = store.get_link("crm", "contact", "gone"), store.get_link("mkt", "contact", "here")
    assert gone is not None
    assert here is not None
    assert (gone.deleted, dict(gone.snapshot)) == (True, {"email": "a@example.com"})
    assert (here.deleted, dict(here.snapshot)) == (False, {"email": "a@example.com"})


def test_outbox_items_queued_before_v8_are_still_due(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    with Store.open(path, migrations=MIGRATIONS.upto(7)) as store:
        store._a.conn.execute(
            "INSERT INTO outbox (connection, system, object, entity, golden_id, op, native_id, fields,"
            " next_attempt_at, created_at) VALUES ('c', 'crm', 'Contact', 'contact', 'g1', 'update', '1',"
            " '{\"email\": \"a@x\"}', '2026-01-01T00:00:00.000000Z', '2026-01-01T00:00:00.000000Z')"
        )
    with Store.open(path) as store:
        [due] = store.due_outbox("c", "crm", "Contact", 10)
    assert (due.item.golden_id, due.item.native_id) == ("g1", "1")


@pytest.mark.parametrize("start", range(1, 8), ids=lambda v: f"from-v{v}")
def test_provenance_moves_out_of_the_fields_into_its_column(tmp_path: Path, start: int) -> None:
    path = tmp_path / "old.db"
    with Store.open(path, migrations=MIGRATIONS.upto(start)) as store:
        store._a.conn.execute(
            "INSERT INTO golden (id, entity, fields, created_at, updated_at) VALUES ('g1', 'contact', ?, ?, ?)",
            (
                '{"email": "a@x.com", "~provenance": "{\\"email\\":[\\"crm\\",\\"2026-01-01T00:00:00+00:00\\"]}"}',
                "2026-01-01T00:00:00.000000Z",
                "2026-01-01T00:00:00.000000Z",
            ),
        )
    with Store.open(path) as store:
        golden = store.get_golden("g1")
    assert golden is not None
    assert dict(golden.fields) == {"email": "a@x.com"}
    assert golden.provenance == {"email": ["crm", "2026-01-01T00:00:00+00:00"]}


@pytest.mark.parametrize("start", range(1, 11), ids=lambda v: f"from-v{v}")
def test_partner_ids_and_associations_move_out_of_snapshots_into_their_columns(tmp_path: Path, start: int) -> None:
    path = tmp_path / "old.db"
    with Store.open(path, migrations=MIGRATIONS.upto(start)) as store:
        store.put_golden("g1", "contact", {"email": "a@example.com"})
        _old_link(
            store, "crm", "1", '{"email": "a@example.com", "~partner": "m1", "~associated": "[\\"c1\\", \\"c2\\"]"}'
        )
        _old_link(store, "mkt", "2", '{"email": "a@example.com", "~partner": "", "~associated": "[]"}')
        _old_link(store, "crm", "3", '{"email": "a@example.com"}')
    with Store.open(path) as store:
        links = [
            store.get_link(system, "contact", native) for system, native in (("crm", "1"), ("mkt", "2"), ("crm", "3"))
        ]
    assert [(k.partner_id, k.associated, dict(k.snapshot)) for k in links if k is not None] == [
        ("m1", ("c1", "c2"), {"email": "a@example.com"}),
        ("", (), {"email": "a@example.com"}),
        (None, (), {"email": "a@example.com"}),
    ]


@pytest.mark.parametrize("start", [2, 10], ids=lambda v: f"from-v{v}")
def test_the_newest_kept_source_version_moves_into_its_table(tmp_path: Path, start: int) -> None:
    path = tmp_path / "old.db"
    with Store.open(path, migrations=MIGRATIONS.upto(start)) as store:
        for day, detail in (
            (1, '{"source_type": "email", "system": "crm"}'),
            (
                2,
                '{"source_type": "email", "utm_campaign": "spring", "first_touch_at": "2026-01-01T00:00:00+00:00",'
                ' "system": "crm"}',
            ),
        ):
            store._a.conn.execute(
                "INSERT INTO touchpoints (contact_golden_id, system, native_id, occurred_at, kind, detail)"
                " VALUES ('g1', 'closeloop', 'g1', ?, 'original_source', ?)",
                (f"2026-01-0{day}T00:00:00.000000Z", detail),
            )
        store._a.conn.execute(
            "INSERT INTO touchpoints (contact_golden_id, system, native_id, occurred_at, kind)"
            " VALUES ('g1', 'mkt', 'm1', '2026-01-03T00:00:00.000000Z', 'form_fill')"
        )
    with Store.open(path) as store:
        kept = store.original_sources(["g1"])["g1"]
        left = store.touchpoints_of(["g1"])["g1"]
    assert (kept.source_type, kept.utm_campaign, kept.system) == ("email", "spring", "crm")
    assert kept.first_touch_at == datetime(2026, 1, 1, tzinfo=UTC)
    assert kept.captured_at == datetime(2026, 1, 2, tzinfo=UTC)
    assert [(t.system, t.kind) for t in left] == [("mkt", "form_fill")]
