"""The PostgreSQL state store: the same table code as SQLite's, on one psycopg 3 connection.

The table modules write SQLite's dialect; ``PgConnection`` runs each statement through ``dialect.to_postgres`` and
offers the slice of ``sqlite3.Connection`` they use (``execute``, ``executemany``, ``rowcount``, ``lastrowid``,
``total_changes``), so one body of SQL serves both back-ends. Transactions are the connection's own: the outer
block is BEGIN/COMMIT, nested blocks are savepoints, as in SQLite; a lock keeps other threads out for the whole
block. The tables live in the first schema of the connection's ``search_path`` (see ``connect``).
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import orjson
import psycopg
from psycopg import pq

from closeloop.model import now_utc
from closeloop.state_url import is_postgres_url, redact
from closeloop.store.activity_tables import ActivityTables
from closeloop.store.db import StoreError, StoreUnavailable, ts
from closeloop.store.delta import DeltaTables
from closeloop.store.dialect import to_postgres, to_postgres_batch
from closeloop.store.fence import LeaseLost, current_fences, stale
from closeloop.store.loop_tables import LoopTables
from closeloop.store.migrations import MIGRATIONS, Applied, Migrations, SchemaTooNewError
from closeloop.store.pg_schema import PG_MIGRATIONS

if TYPE_CHECKING:
    from closeloop.store.api import StateStore

log = logging.getLogger("closeloop.store")

APPLICATION_NAME = "closeloop"
ANALYZE_MIN_ROWS = 500
"""A table is analysed once it gained this many rows, and again each time it quadruples (see analyze_grown)."""
ANALYZE_GROWTH = 3
"""Rows gained, as a multiple of the rows at the last analysis, that call for another."""
STATISTICS_COLUMNS: dict[str, tuple[str, ...]] = {
    "links": ("system", "object", "native_id", "golden_id"),
    "golden": ("id", "entity", "deleted"),
    "golden_keys": ("entity", "key", "value", "golden_id"),
    "touchpoints": ("contact_golden_id", "system"),
    "outbox": ("connection", "system", "object", "id", "next_attempt_at"),
    "associations": ("deal_golden_id", "contact_golden_id"),
}
"""The columns the store's queries filter or join on, per table: ``analyze_grown`` samples only these. The wide
JSON columns (a link's snapshot, a golden record's fields) were most of ANALYZE's work, and no plan depends on them
or on a column only sorted on. A table not named here is analysed whole."""
CONNECT_TIMEOUT_S = 10
RULE_TRIGGERS = (
    ("ledger_no_update", "ledger"),
    ("ledger_no_delete", "ledger"),
    ("ledger_no_truncate", "ledger"),
    ("ledger_contacts_fill", "ledger"),
    *(
        (f"{table}_golden_{event}", table)
        for table in ("links", "golden_keys", "associations")
        for event in ("insert", "update")
    ),
    ("golden_referenced_delete", "golden"),
    ("golden_referenced_rekey", "golden"),
)
"""The triggers that keep the store's rules (the append-only ledger, golden record references): ``integrity_check``
reports any of them missing or disabled."""
_MIGRATION_LOCK = 0x636C6F73656C6F6F  # "closeloop" as a 64-bit advisory lock key: one migrator at a time


class PgRow(dict[str | int, Any]):
    """A result row read by column name or position, like ``sqlite3.Row``: a dict holding each value under both.

    Item access is then the dict's own, in C; a row class with a Python ``__getitem__`` spent more of the sync
    process's CPU than building the row (a page's links and golden records are read field by field).
    """

    __slots__ = ()


def _row_factory(cursor: psycopg.Cursor[Any]) -> Callable[[Sequence[Any]], PgRow]:
    names = [column.name for column in cursor.description or []]
    positions = range(len(names))

    def make(values: Sequence[Any]) -> PgRow:
        row = PgRow(zip(names, values, strict=True))
        row.update(zip(positions, values, strict=True))
        return row

    return make


@dataclass(slots=True)
class PgResult:
    """What a statement left behind: changed rows, the inserted id, and its rows to fetch."""

    cursor: psycopg.Cursor[Any]
    rowcount: int
    lastrowid: int | None = None

    def fetchone(self) -> Any:
        """The next row, or None."""
        return self.cursor.fetchone() if self.cursor.description is not None else None

    def fetchall(self) -> list[Any]:
        """Every remaining row."""
        return self.cursor.fetchall() if self.cursor.description is not None else []


def _columns(rows: Sequence[Sequence[Any]], key: tuple[int, ...]) -> list[str]:
    """Rows transposed into one JSON array text per column (``dialect.to_postgres_batch`` reads them); with a
    ``key``, only the last row of each key value is kept."""
    if key:
        last = {tuple(row[i] for i in key): row for row in rows}
        rows = list(last.values())
    return [orjson.dumps(column).decode() for column in zip(*rows, strict=True)]


def _decode_lists(params: Any, positions: tuple[int, ...]) -> Any:
    """Turn the JSON id-list parameters (``db.id_list``) into PostgreSQL array literals (``= ANY(%s)`` takes the
    column's array type from the statement)."""
    if not positions:
        return params
    decoded = list(params)
    for i in positions:
        decoded[i] = _array_literal(decoded[i])
    return decoded


def _array_literal(text: str) -> str | list[Any]:
    """A JSON array of strings, numbers and nulls as an array literal, without visiting its elements.

    The two syntaxes agree once the brackets are braces: a double-quoted element with ``\\"`` and ``\\\\``
    escapes, bare numbers, bare ``null``. They differ on other backslash escapes (JSON's ``\\n``, ``\\u00e9``),
    so a text holding a backslash is decoded and sent as a list instead (psycopg then writes each element).
    """
    if "\\" in text:
        return list(orjson.loads(text))
    return "{" + text[1:-1] + "}"


class PgConnection:
    """The part of ``sqlite3.Connection`` the table modules use, on a psycopg connection, SQL translated.

    A lost connection (server restarted, network cut) fails the statement at hand with ``StoreUnavailable``;
    the next statement outside a transaction connects again, so a daemon recovers without a restart.
    """

    def __init__(self, raw: psycopg.Connection[Any], url: str) -> None:
        self._raw = raw
        self._url = url
        self._closed = False
        self.depth = 0
        """How many transaction blocks are open (set by ``PgTransactions``)."""
        self.total_changes = 0
        self._grown: Counter[str] = Counter()
        self._analyzed: Counter[str] = Counter()
        self.trace: Callable[[str], None] | None = None
        """Called with every statement as sent (tests count queries with it, as with SQLite's trace callback)."""

    @property
    def raw(self) -> psycopg.Connection[Any]:
        """The live psycopg connection, connecting again if the last one was lost (never inside a transaction:
        a lost connection took its transaction with it, and the failed block has already raised)."""
        if self._raw.broken and not self._closed:
            if self.depth:
                raise StoreUnavailable(f"lost the connection to the state store {redact(self._url)} in a transaction")
            self._raw.close()
            self._raw = connect(self._url)
        return self._raw

    def close(self) -> None:
        """Close for good."""
        self._closed = True
        self._raw.close()

    @contextmanager
    def _translated_errors(self) -> Iterator[None]:
        try:
            yield
        except psycopg.OperationalError as exc:
            if self._raw.broken or self._raw.closed:
                raise StoreUnavailable(
                    f"lost the connection to the state store {redact(self._url)}: {_first_line(exc)}"
                ) from exc
            raise

    @property
    def in_transaction(self) -> bool:
        """Whether a transaction is open on the connection."""
        return self._raw.info.transaction_status != pq.TransactionStatus.IDLE

    def execute(self, sql: str, parameters: Any = (), /) -> PgResult:
        """Run one statement written in SQLite's dialect."""
        statement = to_postgres(sql)
        if self.trace is not None:
            self.trace(statement.sql)
        with self._translated_errors():
            cursor = self.raw.cursor(row_factory=_row_factory)
            cursor.execute(statement.sql, _decode_lists(parameters, statement.list_params) or None)
        changed = max(cursor.rowcount, 0)
        lastrowid = None
        if statement.returns_id:
            found = cursor.fetchone()
            lastrowid = None if found is None else int(found[0])
        if cursor.description is None or statement.returns_id:
            self.total_changes += changed
        return PgResult(cursor, changed, lastrowid)

    def executemany(self, sql: str, parameters: Iterable[Any], /) -> PgResult:
        """Run one statement (SQLite's dialect) once per parameter row, pipelined in one round trip."""
        rows = parameters if isinstance(parameters, list) else list(parameters)
        batch = to_postgres_batch(sql) if len(rows) > 1 else None
        if batch is not None:
            # One statement for the whole page: row-by-row execution cost the server most of its CPU.
            if self.trace is not None:
                self.trace(batch.sql)
            with self._translated_errors():
                cursor = self.raw.cursor(row_factory=_row_factory)
                cursor.execute(batch.sql, _columns(rows, batch.key))
            changed = max(cursor.rowcount, 0)
            self.total_changes += changed
            if batch.inserts_into is not None:
                self.grew(batch.inserts_into, changed)
            return PgResult(cursor, changed)
        statement = to_postgres(sql, many=True)
        if self.trace is not None:
            self.trace(statement.sql)
        rows = [_decode_lists(p, statement.list_params) for p in rows]
        with self._translated_errors():
            cursor = self.raw.cursor(row_factory=_row_factory)
            if rows:
                cursor.executemany(statement.sql, rows)
        changed = max(cursor.rowcount, 0) if rows else 0
        self.total_changes += changed
        return PgResult(cursor, changed)

    def insert_ids(self, sql: str, rows: Sequence[Sequence[Any]]) -> list[int]:
        """Insert ``rows`` with ``sql`` (SQLite's dialect, a table with an ``id`` key); their ids in input order.

        Ids come back from ``RETURNING``: another replica inserting at the same time may take ids in between, so
        they need not be consecutive.
        """
        batch = to_postgres_batch(sql)
        if batch is None or batch.key:
            raise ValueError(f"not a plain row insert: {sql}")
        if self.trace is not None:
            self.trace(batch.sql)
        with self._translated_errors():
            cursor = self.raw.cursor()
            cursor.execute(batch.sql + " RETURNING id", _columns(rows, ()))
            # Rows are inserted in input order (ORDER BY their position), and a session's identity values only
            # grow: sorted, the ids line up with the input even if another replica took ids in between.
            ids = sorted(int(found[0]) for found in cursor.fetchall())
        self.total_changes += len(ids)
        if batch.inserts_into is not None:
            self.grew(batch.inserts_into, len(ids))
        return ids

    def grew(self, table: str, rows: int) -> None:
        """Note rows added to ``table``; outside a transaction, refresh the statistics of tables that grew enough."""
        self._grown[table] += rows
        if not self.depth:
            self.analyze_grown()

    def analyze_grown(self) -> None:
        """``ANALYZE`` each table that gained three times the rows it had at its last analysis (and 500).

        A first sync fills empty tables faster than autovacuum samples them; planned on the statistics of an empty
        table, a page's lookup of 500 links by native id scanned every link of the object (2 ms, 9,500 rows
        filtered out, at 10,000 links). Quadrupling as the trigger keeps it to a few ANALYZEs per table: on
        doubling, they were a tenth of the server's CPU in a first sync of 5,000 contacts, and a plan's choice
        between an index and a scan does not turn on a factor of four in a table's size.
        """
        for table, added in list(self._grown.items()):
            if added < max(ANALYZE_MIN_ROWS, ANALYZE_GROWTH * self._analyzed[table]):
                continue
            self._grown[table] = 0
            self._analyzed[table] += added
            try:
                with self._translated_errors():
                    self.raw.execute(_analyze_sql(table))
            except psycopg.Error as exc:  # statistics are an optimisation: autovacuum still gathers them
                log.warning("ANALYZE %s failed: %s", table, _first_line(exc))


def _analyze_sql(table: str) -> bytes:
    """``ANALYZE`` of ``table`` (a table name of the store's own SQL), on its queried columns when known."""
    columns = STATISTICS_COLUMNS.get(table)
    return (f"ANALYZE {table} ({', '.join(columns)})" if columns else f"ANALYZE {table}").encode()


def _check_fences(raw: psycopg.Connection[Any]) -> None:
    """Raise ``LeaseLost`` unless every lease the current run holds still has its generation (``store.fence``).

    ``FOR SHARE`` keeps the lease rows as they are until this transaction ends: a takeover, which rewrites the
    row, waits for the page in flight to commit, and the run's next transaction sees the new generation.
    """
    fences = current_fences()
    if not fences:
        return
    found = {
        str(row[0]): int(row[1])
        for row in raw.execute(
            "SELECT connection, generation FROM closeloop_leases WHERE connection = ANY(%s) FOR SHARE",
            ([fence.connection for fence in fences],),
        ).fetchall()
    }
    lost = stale(fences, found)
    if lost:
        names = ", ".join(repr(fence.connection) for fence in lost)
        raise LeaseLost(f"the lease of {names} was taken over since this run started: the run stops without committing")


class PgTransactions:
    """The outer block is a transaction, inner blocks are savepoints (psycopg's own nesting), under the lock."""

    def __init__(self, conn: PgConnection, lock: threading.RLock) -> None:
        self._conn = conn
        self._lock = lock

    @contextmanager
    def __call__(self) -> Iterator[None]:
        """Run the block atomically; an exception undoes everything the block wrote, then propagates."""
        with self._lock:
            raw = self._conn.raw
            self._conn.depth += 1
            try:
                with self._conn._translated_errors(), raw.transaction():
                    if self._conn.depth == 1:
                        _check_fences(raw)
                    yield
            finally:
                self._conn.depth -= 1
            if not self._conn.depth:
                self._conn.analyze_grown()

    @contextmanager
    def joined(self) -> Iterator[None]:
        """Run the block in the transaction already open (no savepoint), or in a transaction of its own.

        (The SQLite ``Transactions.joined`` of the engine-speed work, issue 19: a failure inside a caller's
        transaction rolls the caller's whole block back, so a savepoint per store method buys nothing.)
        """
        with self._lock:
            if self._conn.depth:
                yield
                return
        with self():
            yield


class PgAccess:
    """``Access`` on one PostgreSQL connection."""

    def __init__(self, conn: PgConnection, clock: Callable[[], datetime], lock: threading.RLock) -> None:
        self.conn = conn
        self.lock = lock
        self.transaction = PgTransactions(conn, lock)
        self.clock = clock

    def rows(self, sql: str, params: Sequence[Any] | Mapping[str, Any] = ()) -> list[PgRow]:
        """Run a query under the lock and fetch every row."""
        with self.lock:
            return self.conn.execute(sql, params).fetchall()

    def row(self, sql: str, params: Sequence[Any] | Mapping[str, Any] = ()) -> PgRow | None:
        """Run a query under the lock and fetch its first row, if any."""
        found = self.rows(sql, params)
        return found[0] if found else None

    def now(self) -> str:
        """The injected clock's current time, encoded for storage."""
        return ts(self.clock())

    def insert_ids(self, sql: str, rows: Sequence[Sequence[Any]]) -> list[int]:
        """Insert ``rows`` (inside the caller's transaction) into a table keyed by ``id``; their ids, in order."""
        with self.lock:
            return self.conn.insert_ids(sql, rows)


def connect(url: str) -> psycopg.Connection[Any]:
    """An autocommit connection to ``url`` (TLS and other libpq options pass through the URL's query).

    The URL's password never appears in the error: a failure names the redacted URL.
    """
    if not is_postgres_url(url):
        raise StoreError(f"{redact(url)}: not a PostgreSQL URL (postgresql://user@host:5432/database)")
    try:
        conn = psycopg.connect(
            url, autocommit=True, application_name=APPLICATION_NAME, connect_timeout=CONNECT_TIMEOUT_S
        )
    except psycopg.Error as exc:
        raise StoreError(f"cannot connect to the state store {redact(url)}: {_first_line(exc)}") from None
    # The server's plan_cache_mode (auto) stands: a statement psycopg has prepared gets a generic plan once that
    # costs no more than the values' own plans. A generic plan made while a table was small is not kept once the
    # table is large: the ANALYZE after it grows (``analyze_grown``) invalidates it, and the next execution plans
    # again on the new statistics. Planning every execution (force_custom_plan) cost 11% of the server's CPU in a
    # first sync of 5,000 contacts and 22% at 20,000, where the lookups' own plans (500 ids) chose sequential scans.
    return conn


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def current_version(conn: PgConnection) -> int:
    """The schema version in the connection's schema; 0 when it holds no table, an error for a foreign one."""
    schema = conn.execute("SELECT current_schema()").fetchone()[0]
    if schema is None:
        raise StoreError(
            "no schema to create the state store in: the search_path names no existing schema "
            "(create one the closeloop role owns, or set options=-csearch_path%3D<schema> in the URL)"
        )
    tables = {
        str(row[0])
        for row in conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = ?", (schema,)
        ).fetchall()
    }
    if "schema_version" not in tables:
        if tables:
            raise StoreError(
                f"schema {schema!r} holds tables but no schema_version: it is not a closeloop state store "
                "(closeloop will not rebuild it; point it at an empty schema)"
            )
        return 0
    return int(conn.execute("SELECT max(version) FROM schema_version").fetchone()[0] or 0)


def migrate(conn: PgConnection, registry: Migrations, *, transaction: PgTransactions, now: str) -> Applied:
    """Bring the schema up to ``registry.latest``, one transaction per step (its PostgreSQL form, ``pg_schema``)."""
    found = current_version(conn)
    if found > registry.latest:
        raise SchemaTooNewError(
            f"the state store is at schema version {found}, but this closeloop knows versions up to "
            f"{registry.latest}: upgrade closeloop, or restore a backup taken before the upgrade "
            "(closeloop never downgrades a store)"
        )
    applied: list[tuple[int, str]] = []
    for step in registry.steps:
        if step.version <= found:
            continue
        ddl = PG_MIGRATIONS.get(step.version)
        if ddl is None:
            raise StoreError(
                f"migration {step.version} ({step.name}) has no PostgreSQL form: closeloop.store.pg_schema "
                "must translate every migration"
            )
        with transaction():
            # Replicas starting together: one migrates, the others wait here and then find the step done.
            conn.raw.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK,))
            if step.version <= current_version(conn):
                continue
            conn.raw.execute(ddl.encode())  # bytes: a script without parameters, run as it is written
            conn.execute(
                "INSERT INTO schema_version (version, name, applied_at) VALUES (?, ?, ?)",
                (step.version, step.name, now),
            )
            applied.append((step.version, step.name))
    return Applied(found, current_version(conn), tuple(applied))


class PostgresStore(DeltaTables, LoopTables, ActivityTables):
    """The state store in a PostgreSQL schema; the only owner of its connection.

    Thread-safe as ``Store`` is: a lock serialises calls, and a transaction holds it for its whole block.
    """

    _a: PgAccess

    def __init__(self, access: PgAccess, url: str) -> None:
        """Wrap an open connection; use ``PostgresStore.open`` rather than calling this."""
        self._a = access
        self.location = redact(url)
        self.schema_version = 0
        self.applied: Applied | None = None

    @classmethod
    def open(
        cls,
        url: str,
        *,
        clock: Callable[[], datetime] = now_utc,
        migrations: Migrations = MIGRATIONS,
        interrupt_running: bool = True,
        create: bool = True,
    ) -> PostgresStore:
        """Connect to ``url`` and migrate its schema.

        ``interrupt_running`` marks runs left 'running' as 'interrupted' (as SQLite's store does on open); with
        several replicas on one database only a process that knows no other is running may pass True.
        ``create=False`` refuses an empty schema (a command that only reads makes no store where none is).
        """
        lock = threading.RLock()
        conn = PgConnection(connect(url), url)
        store = cls(PgAccess(conn, clock, lock), url)
        try:
            if not create and current_version(conn) == 0:
                raise StoreError(
                    f"no state store at {store.location} (schema {store.schema_name()!r} is empty): no sync has run "
                    "with this configuration yet, or the URL / CLOSELOOP_STATE_URL points elsewhere"
                )
            store.applied = migrate(conn, migrations, transaction=store._a.transaction, now=ts(clock()))
            store.schema_version = store.applied.after
            if interrupt_running and store.schema_version >= 1:
                store.interrupt_running_runs()
        except psycopg.Error as exc:
            conn.close()
            raise StoreError(f"state store {store.location}: {_first_line(exc)}") from None
        except BaseException:
            conn.close()
            raise
        return store

    def schema_name(self) -> str:
        """The schema the store's tables live in."""
        return str(self._a.conn.execute("SELECT current_schema()").fetchone()[0])

    @property
    def connection(self) -> psycopg.Connection[Any]:
        """The psycopg connection (for a caller that needs the same session, e.g. session advisory locks)."""
        return self._a.conn.raw

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Everything written inside the block commits together or not at all; nested blocks join it."""
        with self._a.transaction():
            yield

    def integrity_check(self) -> str:
        """'ok', or the problems found: constraints not validated, and rule triggers (``RULE_TRIGGERS``) missing or
        disabled."""
        problems = [
            f"constraint {row[0]} on {row[1]} is not validated"
            for row in self._a.rows(
                "SELECT c.conname, t.relname FROM pg_constraint c JOIN pg_class t ON t.oid = c.conrelid"
                " WHERE t.relnamespace = current_schema()::regnamespace AND NOT c.convalidated"
            )
        ]
        triggers = {
            (str(row[0]), str(row[1])): str(row[2])
            for row in self._a.rows(
                "SELECT g.tgname, t.relname, g.tgenabled FROM pg_trigger g JOIN pg_class t ON t.oid = g.tgrelid"
                " WHERE t.relnamespace = current_schema()::regnamespace AND NOT g.tgisinternal"
            )
        }
        for name, table in RULE_TRIGGERS:
            state = triggers.get((name, table))
            if state is None:
                problems.append(f"trigger {name} on {table} is missing")
            elif state == "D":
                problems.append(f"trigger {name} on {table} is disabled")
        return "\n".join(problems) or "ok"

    def close(self) -> None:
        """Close the connection; the store is unusable afterwards."""
        with self._a.lock:
            self._a.conn.close()

    def __enter__(self) -> PostgresStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


if TYPE_CHECKING:

    def _conforms(store: PostgresStore) -> StateStore:
        """Let mypy prove that PostgresStore offers everything StateStore promises."""
        return store
