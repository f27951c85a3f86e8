"""SQLite's dialect, as the table modules write it, into PostgreSQL's: each construct the store uses."""

from __future__ import annotations

import pytest

from closeloop.store.dialect import DialectError, Statement, to_postgres, to_postgres_batch


@pytest.mark.parametrize(
    ("sqlite", "postgres"),
    [
        pytest.param(
            "SELECT * FROM golden WHERE id = ? AND entity = ?",
            Statement("SELECT * FROM golden WHERE id = %s AND entity = %s"),
            id="placeholders",
        ),
        pytest.param(
            "SELECT * FROM links WHERE system = ? AND native_id IN (SELECT value FROM json_each(?))",
            Statement("SELECT * FROM links WHERE system = %s AND native_id = ANY(%s)", list_params=(1,)),
            id="id_list_becomes_an_array",
        ),
        pytest.param(
            "SELECT * FROM runs WHERE (? IS NULL OR connection = ?) LIMIT ?",
            Statement("SELECT * FROM runs WHERE (CAST(%s AS TEXT) IS NULL OR connection = %s) LIMIT %s"),
            id="optional_filter_gets_a_type",
        ),
        pytest.param(
            "INSERT OR IGNORE INTO golden_keys (entity, key, value, golden_id) VALUES (?, ?, ?, ?)",
            Statement(
                "INSERT INTO golden_keys (entity, key, value, golden_id) VALUES (%s, %s, %s, %s) ON CONFLICT DO NOTHING"
            ),
            id="insert_or_ignore",
        ),
        pytest.param(
            "INSERT OR REPLACE INTO associations (deal_golden_id, contact_golden_id, role) VALUES (?, ?, NULL)",
            Statement(
                "INSERT INTO associations (deal_golden_id, contact_golden_id, role) VALUES (%s, %s, NULL)"
                " ON CONFLICT (deal_golden_id, contact_golden_id) DO UPDATE SET role = excluded.role"
            ),
            id="insert_or_replace_on_the_primary_key",
        ),
        pytest.param(
            "INSERT INTO quarantine (record_key, code) VALUES (?, ?)"
            " ON CONFLICT (record_key) WHERE status != 'resolved'"
            " DO UPDATE SET attempts = attempts + 1, code = excluded.code,"
            " status = CASE WHEN status = 'retry' THEN 'open' ELSE status END",
            Statement(
                "INSERT INTO quarantine (record_key, code) VALUES (%s, %s) ON CONFLICT (record_key)"
                " WHERE status != 'resolved' DO UPDATE SET attempts = quarantine.attempts + 1, code = excluded.code,"
                " status = CASE WHEN quarantine.status = 'retry' THEN 'open' ELSE quarantine.status END RETURNING id",
                returns_id=True,
            ),
            id="stored_row_columns_qualified_and_id_returned",
        ),
        pytest.param(
            "INSERT INTO links (system, golden_id) VALUES (:system, :golden_id) ON CONFLICT DO UPDATE SET"
            " snapshot = coalesce(:snapshot, snapshot)",
            Statement(
                "INSERT INTO links (system, golden_id) VALUES (%(system)s, %(golden_id)s)"
                " ON CONFLICT (system, object, native_id) DO UPDATE SET"
                " snapshot = coalesce(%(snapshot)s, links.snapshot)"
            ),
            id="named_placeholders_and_an_implicit_conflict_target",
        ),
        pytest.param(
            "SELECT * FROM golden WHERE fields LIKE '%?%' AND id = ?",
            Statement("SELECT * FROM golden WHERE fields LIKE '%%?%%' AND id = %s"),
            id="string_literals_keep_their_question_marks",
        ),
    ],
)
def test_translation(sqlite: str, postgres: Statement) -> None:
    assert to_postgres(sqlite) == postgres


def test_executemany_inserts_return_nothing() -> None:
    assert not to_postgres("INSERT INTO outbox (connection) VALUES (?)", many=True).returns_id


def test_a_table_without_a_known_key_is_named() -> None:
    with pytest.raises(DialectError, match="no primary key known for table 'mystery'"):
        to_postgres("INSERT OR REPLACE INTO mystery (a) VALUES (?)")


def test_an_upsert_reading_the_stored_row_stays_row_by_row() -> None:
    sql = (
        "INSERT INTO rollups (contact_golden_id, n) VALUES (?, ?)"
        " ON CONFLICT (contact_golden_id) DO UPDATE SET n = n + 1"
    )
    assert to_postgres_batch(sql) is None
    assert to_postgres_batch(sql.replace("n = n + 1", "n = excluded.n")) is not None


def test_a_batch_insert_keeps_the_input_order_and_names_its_table() -> None:
    batch = to_postgres_batch("INSERT INTO outbox (connection, attempts) VALUES (?, ?)")
    assert batch is not None
    assert batch.inserts_into == "outbox"
    assert batch.sql == (
        "INSERT INTO outbox (connection, attempts) SELECT v.c0, v.c1::bigint"
        " FROM ROWS FROM (json_array_elements_text(%s::json), json_array_elements_text(%s::json))"
        " WITH ORDINALITY AS v(c0, c1, n) ORDER BY v.n"
    )
