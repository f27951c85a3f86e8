"""Opening the SQLite store: file permissions, pragmas, refusing stores it does not understand.

PostgreSQL's counterparts are in test_store_postgres.py; the tests here are about SQLite's file.
"""

from __future__ import annotations

import sqlite3
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from closeloop.store import MEMORY, SchemaTooNewError, Store, StoreError

from .conftest import FakeClock


@pytest.fixture
def store(db_path: Path, clock: FakeClock) -> Iterator[Store]:
    """A SQLite store only (this module tests its file), rather than conftest's store of each back-end."""
    opened = Store.open(db_path, clock=clock)
    yield opened
    opened.close()


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_new_database_file_is_private(store: Store, db_path: Path) -> None:
    assert _mode(db_path) == 0o600


def test_wal_and_shm_files_are_private(store: Store, db_path: Path) -> None:
    store.put_golden("g1", "contact", {"email": "a@example.com"})  # forces the WAL to be written
    for suffix in ("-wal", "-shm"):
        side = db_path.with_name(db_path.name + suffix)
        assert side.exists()
        assert _mode(side) == 0o600


def test_existing_file_keeps_its_mode(tmp_path: Path) -> None:
    path = tmp_path / "shared.db"
    path.touch(mode=0o640)
    path.chmod(0o640)
    Store.open(path).close()
    assert _mode(path) == 0o640


def test_journal_is_wal(store: Store, db_path: Path) -> None:
    other = sqlite3.connect(db_path)
    try:
        assert other.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        other.close()


def test_connection_pragmas(store: Store) -> None:
    pragmas = {
        name: store._a.conn.execute(f"PRAGMA {name}").fetchone()[0]
        for name in ("synchronous", "foreign_keys", "busy_timeout")
    }
    assert pragmas == {"synchronous": 1, "foreign_keys": 1, "busy_timeout": 5000}


def test_newer_schema_than_known_is_refused_with_a_clear_message(db_path: Path) -> None:
    Store.open(db_path).close()
    raw = sqlite3.connect(db_path)
    with raw:
        raw.execute("INSERT INTO schema_version VALUES (99, 'from the future', '2030-01-01T00:00:00.000000Z')")
    raw.close()
    with pytest.raises(SchemaTooNewError, match=r"schema version 99.*knows versions up to \d+.*upgrade closeloop"):
        Store.open(db_path)


def test_newer_schema_is_left_untouched(db_path: Path) -> None:
    Store.open(db_path).close()
    raw = sqlite3.connect(db_path)
    with raw:
        raw.execute("INSERT INTO schema_version VALUES (99, 'from the future', '2030-01-01T00:00:00.000000Z')")
    raw.close()
    with pytest.raises(SchemaTooNewError):
        Store.open(db_path)
    raw = sqlite3.connect(db_path)
    assert raw.execute("SELECT max(version) FROM schema_version").fetchone()[0] == 99
    raw.close()


def test_foreign_database_is_not_rebuilt(tmp_path: Path) -> None:
    path = tmp_path / "other.db"
    raw = sqlite3.connect(path)
    with raw:
        raw.execute("CREATE TABLE customers (id INTEGER PRIMARY KEY)")
    raw.close()
    with pytest.raises(StoreError, match="not a closeloop state store"):
        Store.open(path)
    raw = sqlite3.connect(path)
    assert [r[0] for r in raw.execute("SELECT name FROM sqlite_master")] == ["customers"]
    raw.close()


def test_parent_directory_is_created(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "closeloop.db"
    Store.open(path).close()
    assert path.exists()


def test_in_memory_store_works_for_quick_use() -> None:
    with Store.open(MEMORY) as store:
        store.put_golden("g1", "contact", {})
        assert store.get_golden("g1") is not None


def test_integrity_check_of_a_healthy_store_is_ok(store: Store) -> None:
    store.put_golden("g1", "contact", {"email": "a@example.com"})
    store.put_link("crm", "contact", "1", "g1", "contact")
    assert store.integrity_check() == "ok"


def test_integrity_check_reports_a_dangling_link(store: Store) -> None:
    conn = store._a.conn
    conn.execute("PRAGMA foreign_keys = OFF")
    conn.execute(
        "INSERT INTO links (system, object, native_id, golden_id, entity, linked_at)"
        " VALUES ('crm', 'contact', '1', 'missing', 'contact', 'x')"
    )
    assert "foreign key: links" in store.integrity_check()
