"""What only the PostgreSQL store has to prove: its migrations match SQLite's, it refuses what it does not
understand, it keeps the ledger append-only against its own owner's mistakes, it never shows the password, and it
comes back after losing its server. (Every table method is tested on both back-ends by the other store tests.)"""

from __future__ import annotations

import secrets
import sqlite3
import threading
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest

from closeloop.store import MIGRATIONS, LedgerEntry, LedgerKind, Link, SchemaTooNewError, Store, StoreError
from closeloop.store.db import StoreUnavailable
from closeloop.store.pg_schema import PG_MIGRATIONS
from closeloop.store.postgres import PostgresStore
from closeloop.testing.postgres import with_search_path

CLOSED = datetime(2026, 1, 1, tzinfo=UTC)


def _admin(url: str) -> psycopg.Connection[tuple[object, ...]]:
    return psycopg.connect(url, autocommit=True)


def _pg_columns(url: str) -> dict[str, list[str]]:
    with _admin(url) as conn:
        rows = conn.execute(
            "SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = current_schema()"
            " ORDER BY table_name, ordinal_position"
        ).fetchall()
    found: dict[str, list[str]] = {}
    for table, column in rows:
        found.setdefault(str(table), []).append(str(column))
    return found


def _sqlite_columns(path: Path) -> dict[str, list[str]]:
    raw = sqlite3.connect(path)
    try:
        tables = [r[0] for r in raw.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        return {t: [r[1] for r in raw.execute(f"PRAGMA table_info({t})")] for t in sorted(tables)}
    finally:
        raw.close()


def _pg_schema(url: str) -> list[tuple[str, ...]]:
    """Everything a migration makes: columns with types and defaults, indexes, constraints, triggers."""
    with _admin(url) as conn:
        columns = conn.execute(
            "SELECT table_name, column_name, data_type, coalesce(column_default, ''), is_nullable"
            " FROM information_schema.columns WHERE table_schema = current_schema()"
        ).fetchall()
        indexes = conn.execute(
            "SELECT indexname, regexp_replace(indexdef, ' ON [^ ]+\\.', ' ON ') FROM pg_indexes"
            " WHERE schemaname = current_schema()"
        ).fetchall()
        constraints = conn.execute(
            "SELECT conname, pg_get_constraintdef(c.oid) FROM pg_constraint c"
            " WHERE connamespace = current_schema()::regnamespace"
        ).fetchall()
        triggers = conn.execute(
            "SELECT g.tgname, t.relname FROM pg_trigger g JOIN pg_class t ON t.oid = g.tgrelid"
            " WHERE t.relnamespace = current_schema()::regnamespace AND NOT g.tgisinternal"
        ).fetchall()
    return sorted(tuple(str(v) for v in row) for row in [*columns, *indexes, *constraints, *triggers])


ALL = [m.version for m in MIGRATIONS.steps]


def _versions(url: str) -> list[int]:
    with _admin(url) as conn:
        return [int(str(r[0])) for r in conn.execute("SELECT version FROM schema_version ORDER BY version")]


# -- the same migrations ----------------------------------------------------------------------------------


def test_every_migration_has_its_postgresql_form() -> None:
    assert sorted(PG_MIGRATIONS) == [m.version for m in MIGRATIONS.steps]


def test_empty_schema_gets_the_same_tables_and_columns_as_a_sqlite_file(postgres_url: str, tmp_path: Path) -> None:
    with PostgresStore.open(postgres_url) as store:
        assert store.schema_version == MIGRATIONS.latest
    Store.open(tmp_path / "s.db").close()
    assert _pg_columns(postgres_url) == _sqlite_columns(tmp_path / "s.db")
    assert _versions(postgres_url) == ALL


EARLIER = [m.version for m in MIGRATIONS.steps][:-1]
"""Every version but the latest."""


@pytest.mark.parametrize("start", EARLIER, ids=lambda v: f"from-v{v}")
def test_each_earlier_version_migrates_to_the_same_schema(postgres_server: str, start: int) -> None:
    with _two_schemas(postgres_server) as (fresh, old):
        PostgresStore.open(fresh).close()
        with PostgresStore.open(old, migrations=MIGRATIONS.upto(start)) as store:
            assert store.schema_version == start
            store.put_golden("g1", "contact", {"email": "a@example.com"})
            # A link as every earlier version stores it (today's store reads and writes today's columns).
            store._a.conn.execute(
                "INSERT INTO links (system, object, native_id, golden_id, entity, snapshot, linked_at)"
                " VALUES ('crm', 'contact', '1', 'g1', 'contact', '{}', '2026-01-01T00:00:00.000000Z')"
            )
        with PostgresStore.open(old) as store:
            assert store.applied is not None
            assert [v for v, _ in store.applied.steps] == [v for v in [*EARLIER, MIGRATIONS.latest] if v > start]
            assert store.get_link("crm", "contact", "1") is not None
        assert _pg_schema(old) == _pg_schema(fresh)


def test_partner_ids_associations_and_kept_sources_move_into_their_columns(postgres_url: str) -> None:
    with PostgresStore.open(postgres_url, migrations=MIGRATIONS.upto(10)) as store:
        store.put_golden("g1", "contact", {"email": "a@example.com"})
        store._a.conn.execute(
            "INSERT INTO links (system, object, native_id, golden_id, entity, snapshot, linked_at)"
            " VALUES ('crm', 'deal', '1', 'g1', 'contact', ?, '2026-01-01T00:00:00.000000Z')",
            ('{"amount": "1", "~partner": "m1", "~associated": "[\\"c1\\"]"}',),
        )
        for day, kind, detail in ((1, "original_source", '{"source_type": "ad"}'), (2, "original_source",
                                  '{"source_type": "email", "system": "crm"}'), (3, "form_fill", None)):  # fmt: skip
            store._a.conn.execute(
                "INSERT INTO touchpoints (contact_golden_id, system, native_id, occurred_at, kind, detail)"
                " VALUES ('g1', ?, 'g1', ?, ?, ?)",
                ("closeloop" if detail else "mkt", f"2026-01-0{day}T00:00:00.000000Z", kind, detail),
            )
    with PostgresStore.open(postgres_url) as store:
        link = store.get_link("crm", "deal", "1")
        kept = store.original_sources(["g1"])["g1"]
        left = store.touchpoints_of(["g1"])["g1"]
    assert link is not None
    assert (link.partner_id, link.associated, dict(link.snapshot)) == ("m1", ("c1",), {"amount": "1"})
    assert (kept.source_type, kept.system, kept.captured_at) == ("email", "crm", datetime(2026, 1, 2, tzinfo=UTC))
    assert [t.kind for t in left] == ["form_fill"]


class _two_schemas:
    def __init__(self, server: str) -> None:
        self.server = server
        self.names = [f"t_{secrets.token_hex(6)}" for _ in range(2)]

    def __enter__(self) -> tuple[str, str]:
        with _admin(self.server) as conn:
            for name in self.names:
                conn.execute(f'CREATE SCHEMA "{name}"')
        first, second = (with_search_path(self.server, n) for n in self.names)
        return first, second

    def __exit__(self, *exc: object) -> None:
        with _admin(self.server) as conn:
            for name in self.names:
                conn.execute(f'DROP SCHEMA "{name}" CASCADE')


def test_ledger_entries_written_before_v5_are_found_by_their_contacts(postgres_url: str) -> None:
    with PostgresStore.open(postgres_url, migrations=MIGRATIONS.upto(4)) as store:
        store.append_ledger(LedgerEntry("d1", LedgerKind.WON, Decimal(10), "USD", CLOSED, ("c1", "c2")))
        store.append_ledger(LedgerEntry("d2", LedgerKind.WON, Decimal(20), "USD", CLOSED, ("c2",)))
    with PostgresStore.open(postgres_url) as store:
        found = store.ledger_for_contacts(["c1", "c2"])
        store.append_ledger(LedgerEntry("d3", LedgerKind.WON, Decimal(30), "USD", CLOSED, ("c1",)))
        after = store.ledger_for_contacts(["c1"])
    assert {c: [e.deal_golden_id for e in entries] for c, entries in found.items()} == {
        "c1": ["d1"],
        "c2": ["d1", "d2"],
    }
    assert [e.deal_golden_id for e in after["c1"]] == ["d1", "d3"]


def test_replicas_opening_together_migrate_once(postgres_url: str) -> None:
    opened: list[int] = []
    failures: list[BaseException] = []

    def open_one() -> None:
        try:
            with PostgresStore.open(postgres_url, interrupt_running=False) as store:
                opened.append(store.schema_version)
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=open_one) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert failures == []
    assert opened == [MIGRATIONS.latest] * 4
    assert _versions(postgres_url) == ALL


def test_failing_migration_leaves_neither_its_changes_nor_its_version(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    registry = MIGRATIONS.upto(MIGRATIONS.latest)
    broken = MIGRATIONS.latest + 1

    @registry(broken, "breaks half-way")
    def _broken(db: object) -> None:
        raise AssertionError("SQLite's form is not run on PostgreSQL")

    monkeypatch.setitem(PG_MIGRATIONS, broken, "CREATE TABLE half_done (id INTEGER); SELECT 1 / 0;")
    with pytest.raises(StoreError, match="division by zero"):
        PostgresStore.open(postgres_url, migrations=registry)
    assert "half_done" not in _pg_columns(postgres_url)
    assert _versions(postgres_url) == ALL


def test_a_migration_without_a_postgresql_form_is_refused_by_name(postgres_url: str) -> None:
    registry = MIGRATIONS.upto(MIGRATIONS.latest)

    @registry(MIGRATIONS.latest + 1, "sqlite only")
    def _sqlite_only(db: object) -> None:
        return None

    with pytest.raises(StoreError, match=rf"migration {MIGRATIONS.latest + 1} \(sqlite only\) has no PostgreSQL form"):
        PostgresStore.open(postgres_url, migrations=registry)
    assert _versions(postgres_url) == ALL


# -- refusing what it does not understand -------------------------------------------------------------------


def test_newer_schema_than_known_is_refused_and_left_untouched(postgres_url: str) -> None:
    PostgresStore.open(postgres_url).close()
    with _admin(postgres_url) as conn:
        conn.execute("INSERT INTO schema_version VALUES (999, 'from the future', '2030-01-01T00:00:00.000000Z')")
    with pytest.raises(SchemaTooNewError, match="schema version 999"):
        PostgresStore.open(postgres_url)
    assert _versions(postgres_url)[-1] == 999


def test_a_schema_holding_other_tables_is_not_taken_over(postgres_url: str) -> None:
    with _admin(postgres_url) as conn:
        conn.execute("CREATE TABLE invoices (id INTEGER)")
    with pytest.raises(StoreError, match="not a closeloop state store"):
        PostgresStore.open(postgres_url)
    assert set(_pg_columns(postgres_url)) == {"invoices"}


def test_a_search_path_without_an_existing_schema_says_what_to_do(postgres_server: str) -> None:
    with pytest.raises(StoreError, match="no schema to create the state store in"):
        PostgresStore.open(with_search_path(postgres_server, f"missing_{secrets.token_hex(4)}"))


def test_a_reader_does_not_create_a_store_in_an_empty_schema(postgres_url: str) -> None:
    with pytest.raises(StoreError, match=r"no state store at .*is empty"):
        PostgresStore.open(postgres_url, create=False)
    assert _pg_columns(postgres_url) == {}


# -- the ledger, against the owner's own statements -----------------------------------------------------------


def test_ledger_refuses_truncate_too(postgres_url: str) -> None:
    with PostgresStore.open(postgres_url) as store:
        store.append_ledger(LedgerEntry("d1", LedgerKind.WON, Decimal(10), "USD", CLOSED))
    with _admin(postgres_url) as conn, pytest.raises(psycopg.IntegrityError, match="append-only"):
        conn.execute("TRUNCATE ledger CASCADE")
    with PostgresStore.open(postgres_url) as store:
        assert len(store.ledger_entries()) == 1


def test_integrity_check_reports_a_disabled_ledger_trigger(postgres_url: str) -> None:
    with PostgresStore.open(postgres_url) as store:
        assert store.integrity_check() == "ok"
        with _admin(postgres_url) as conn:
            conn.execute("ALTER TABLE ledger DISABLE TRIGGER ledger_no_update")
        assert store.integrity_check() == "trigger ledger_no_update on ledger is disabled"


def test_integrity_check_reports_a_disabled_golden_reference_trigger(postgres_url: str) -> None:
    with PostgresStore.open(postgres_url) as store:
        with _admin(postgres_url) as conn:
            conn.execute("ALTER TABLE golden_keys DISABLE TRIGGER golden_keys_golden_insert")
        assert store.integrity_check() == "trigger golden_keys_golden_insert on golden_keys is disabled"


# -- golden record references: one check per statement ---------------------------------------------------------


@pytest.mark.parametrize(
    "statement",
    [
        pytest.param(
            "INSERT INTO golden_keys (entity, key, value, golden_id) VALUES ('contact', 'email', 'x', 'g0')",
            id="match-key",
        ),
        pytest.param(
            "INSERT INTO associations (deal_golden_id, contact_golden_id) VALUES ('g1', 'g0')", id="association-contact"
        ),
        pytest.param("UPDATE links SET golden_id = 'g0'", id="link-repointed"),
    ],
)
def test_a_reference_to_a_missing_golden_record_is_refused(postgres_url: str, statement: str) -> None:
    seen = datetime(2026, 1, 1, tzinfo=UTC)
    with PostgresStore.open(postgres_url) as store:
        store.put_goldens([("g1", "deal", {}, {})])
        store.put_links([Link("crm", "Deal", "d1", "g1", "deal", seen, {}, seen)])
    with _admin(postgres_url) as conn, pytest.raises(psycopg.errors.ForeignKeyViolation, match="golden"):
        conn.execute(statement)


def test_a_referenced_golden_record_cannot_be_deleted_or_rekeyed_an_unreferenced_one_can(postgres_url: str) -> None:
    seen = datetime(2026, 1, 1, tzinfo=UTC)
    with PostgresStore.open(postgres_url) as store:
        store.put_goldens([("g1", "contact", {}, {}), ("g2", "contact", {}, {})])
        store.put_links([Link("crm", "Contact", "c1", "g1", "contact", seen, {}, seen)])
    with _admin(postgres_url) as conn:
        with pytest.raises(psycopg.errors.ForeignKeyViolation, match="still referenced"):
            conn.execute("DELETE FROM golden WHERE id = 'g1'")
        with pytest.raises(psycopg.errors.ForeignKeyViolation, match="still referenced"):
            conn.execute("UPDATE golden SET id = 'g9' WHERE id = 'g1'")
        assert conn.execute("DELETE FROM golden WHERE id = 'g2'").rowcount == 1


# -- secrets, locks, lost connections -----------------------------------------------------------------------


def _with_password(url: str, password: str, port: int | None = None) -> str:
    parts = urlsplit(url)
    host = parts.hostname or "127.0.0.1"
    netloc = f"{parts.username or 'root'}:{password}@{host}:{port or parts.port or 5432}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def test_a_failed_connection_names_the_server_but_never_the_password(postgres_server: str) -> None:
    password = "s3cret-Pa55word"
    url = _with_password(postgres_server, password, port=1)  # nothing listens on port 1
    with pytest.raises(StoreError) as caught:
        PostgresStore.open(url)
    message = str(caught.value)
    assert "cannot connect to the state store" in message
    assert ":***@" in message
    assert password not in message
    assert caught.value.__suppress_context__  # `from None`: the driver's error (and its URL) is not chained


def test_a_lost_connection_fails_one_call_then_the_store_reconnects(postgres_url: str) -> None:
    with PostgresStore.open(postgres_url) as store:
        store.put_golden("g1", "contact", {})
        backend = store.connection.info.backend_pid
        with _admin(postgres_url) as conn:
            conn.execute("SELECT pg_terminate_backend(%s)", (backend,))
        with pytest.raises(StoreUnavailable, match="lost the connection to the state store"):
            store.get_golden("g1")
        assert store.get_golden("g1") is not None
        assert store.connection.info.backend_pid != backend


def test_joined_blocks_share_the_open_transaction_or_open_their_own(postgres_url: str) -> None:
    with PostgresStore.open(postgres_url) as store:
        joined = store._a.transaction.joined
        with joined():
            store.put_golden("alone", "contact", {})
        assert store.get_golden("alone") is not None  # committed by its own transaction

        def caller_fails_after_the_joined_block() -> None:
            with store.transaction():
                store.put_golden("outer", "contact", {})
                with joined():
                    store.put_golden("inner", "contact", {})
                raise RuntimeError("the caller's block fails after the joined one finished")

        with pytest.raises(RuntimeError):
            caller_fails_after_the_joined_block()
        assert store.get_golden("outer") is None
        assert store.get_golden("inner") is None  # no savepoint of its own: undone with the caller's block


def test_a_table_that_doubled_is_analysed_so_lookups_use_its_index(postgres_url: str) -> None:
    seen = datetime(2026, 1, 1, tzinfo=UTC)
    with PostgresStore.open(postgres_url) as store:
        with store.transaction():
            store.put_goldens([(f"g{i}", "contact", {}, {}) for i in range(2000)])
            store.put_links([Link("crm", "Contact", f"n{i}", f"g{i}", "contact", seen, {}, seen) for i in range(2000)])
        plan = "\n".join(
            str(row[0])
            for row in store.connection.execute(
                "EXPLAIN SELECT * FROM links WHERE system = 'crm' AND object = 'Contact'"
                " AND native_id = ANY(ARRAY['n1', 'n7', 'n9'])"
            ).fetchall()
        )
    with _admin(postgres_url) as conn:
        analysed = conn.execute(
            "SELECT relname FROM pg_stat_user_tables WHERE schemaname = current_schema() AND last_analyze IS NOT NULL"
        ).fetchall()
    assert {"links", "golden"} <= {str(row[0]) for row in analysed}
    assert "Index Cond: ((system = 'crm'::text) AND (object = 'Contact'::text) AND (native_id = ANY" in plan, plan


def test_a_plan_cached_while_links_was_small_is_planned_again_once_it_grew(postgres_url: str) -> None:
    # The session keeps the server's plan_cache_mode (auto): after a few executions a prepared lookup runs a cached
    # generic plan. One made on a one-page table scans it; the ANALYZE after the table grows must retire that plan.
    seen = datetime(2026, 1, 1, tzinfo=UTC)
    with PostgresStore.open(postgres_url) as store:
        store.put_goldens([(f"g{i}", "contact", {}, {}) for i in range(2000)])
        store.put_links([Link("crm", "Contact", f"n{i}", f"g{i}", "contact", seen, {}, seen) for i in range(5)])
        store.connection.execute("ANALYZE links")
        for _ in range(12):  # psycopg prepares at the 5th; the server plans generically after 5 custom plans
            assert set(store.find_links("crm", "Contact", ["n1", "n3"])) == {"n1", "n3"}

        def cached_plan() -> str:
            conn = store.connection
            row = conn.execute(
                "SELECT name FROM pg_prepared_statements WHERE statement LIKE 'SELECT * FROM links WHERE system%'"
            ).fetchone()
            assert row is not None
            plan = conn.execute(f"EXPLAIN EXECUTE {row[0]}('crm', 'Contact', '{{n1,n3}}')").fetchall()
            return "\n".join(str(r[0]) for r in plan)

        assert "Seq Scan on links" in cached_plan()
        with store.transaction():
            store.put_links(
                [Link("crm", "Contact", f"n{i}", f"g{i}", "contact", seen, {}, seen) for i in range(5, 2000)]
            )
        assert set(store.find_links("crm", "Contact", ["n1", "n1999"])) == {"n1", "n1999"}
        after = cached_plan()
        assert "Index Scan using links_pkey" in after, after


def test_every_index_key_compares_bytes_as_sqlite_does(postgres_url: str) -> None:
    # COLLATE "C" (migration 14): index upkeep and sorts compare with memcmp instead of the locale's strcoll, and
    # keys sort in SQLite's BINARY order whatever locale the database was created with.
    PostgresStore.open(postgres_url).close()
    with _admin(postgres_url) as conn:
        other = conn.execute(
            "SELECT i.relname, coll::regcollation::text FROM pg_index x"
            " JOIN pg_class i ON i.oid = x.indexrelid JOIN pg_class t ON t.oid = x.indrelid,"
            " unnest(x.indcollation::oid[]) AS coll"
            " WHERE t.relnamespace = current_schema()::regnamespace AND coll <> 0"
            " AND coll <> 'pg_catalog.\"C\"'::regcollation"
        ).fetchall()
        ordered = conn.execute(
            "SELECT v FROM (VALUES ('b'), ('B'), ('a'), ('é'), ('_')) AS t(v) ORDER BY v COLLATE \"C\""
        ).fetchall()
    assert other == []
    assert [row[0] for row in ordered] == sorted(["b", "B", "a", "é", "_"])
