"""Numbered schema migrations, each applied together with its ``schema_version`` row in one transaction.

A migration is a function of the sqlite3 connection registered with ``@migration(n, "what it does")``.
Its SQL is written out in full rather than generated, so the schema a number stands for never changes
with a library upgrade. Migrations only ever move forward: there is no rebuild and no downgrade.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import dataclass

from closeloop.store.db import StoreError, Transactions

MigrationFn = Callable[[sqlite3.Connection], None]


class SchemaTooNewError(StoreError):
    """The database was written by a newer closeloop than this one."""


@dataclass(frozen=True, slots=True)
class Migration:
    """One numbered step of the schema."""

    version: int
    name: str
    apply: MigrationFn


@dataclass(frozen=True, slots=True)
class Applied:
    """What a migration pass did: the version found, the version left, and the steps applied in between."""

    before: int
    after: int
    steps: tuple[tuple[int, str], ...]


class Migrations:
    """An ordered registry of migrations; the decorator it returns registers one."""

    def __init__(self) -> None:
        self._steps: dict[int, Migration] = {}

    def __call__(self, version: int, name: str) -> Callable[[MigrationFn], MigrationFn]:
        """Register the decorated function as migration ``version``."""

        def register(fn: MigrationFn) -> MigrationFn:
            if version < 1 or version in self._steps:
                raise ValueError(f"migration {version} ({name}) is not a new positive number")
            self._steps[version] = Migration(version, name, fn)
            return fn

        return register

    @property
    def steps(self) -> list[Migration]:
        """Every migration, in version order."""
        return [self._steps[v] for v in sorted(self._steps)]

    @property
    def latest(self) -> int:
        """The highest version this code knows (0 when none)."""
        return max(self._steps, default=0)

    def upto(self, version: int) -> Migrations:
        """A registry holding only the migrations up to ``version`` (to build older databases)."""
        older = Migrations()
        older._steps = {v: m for v, m in self._steps.items() if v <= version}
        return older


def current_version(db: sqlite3.Connection) -> int:
    """The schema version recorded in ``db``; 0 for an empty file, an error for a foreign one."""
    tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    if "schema_version" not in tables:
        if tables:
            raise StoreError(
                "the file holds tables but no schema_version: it is not a closeloop state store "
                "(closeloop will not rebuild it; point it at a new file)"
            )
        return 0
    row = db.execute("SELECT max(version) FROM schema_version").fetchone()
    return int(row[0] or 0)


def migrate(db: sqlite3.Connection, registry: Migrations, *, transaction: Transactions, now: str) -> int:
    """Bring ``db`` up to ``registry.latest``, one transaction per step; return the resulting version."""
    found = current_version(db)
    if found > registry.latest:
        raise SchemaTooNewError(
            f"the state store is at schema version {found}, but this closeloop knows versions up to "
            f"{registry.latest}: upgrade closeloop, or restore a backup taken before the upgrade "
            "(closeloop never downgrades a store)"
        )
    for step in registry.steps:
        with transaction():
            # Re-read inside the write lock: another process may have migrated while this one waited.
            if step.version <= current_version(db):
                continue
            step.apply(db)
            db.execute(
                "INSERT INTO schema_version (version, name, applied_at) VALUES (?, ?, ?)",
                (step.version, step.name, now),
            )
    return current_version(db)


MIGRATIONS = Migrations()
"""The migrations of the state store, in order."""

migration = MIGRATIONS
"""Decorator: ``@migration(3, "what it does")`` registers a migration of the state store."""


def _script(db: sqlite3.Connection, sql: str) -> None:
    """Run several DDL statements inside the caller's transaction (executescript would commit it)."""
    statement = ""
    for line in sql.splitlines(keepends=True):
        statement += line
        # complete_statement knows that a trigger body's inner ";" does not end the CREATE TRIGGER.
        if sqlite3.complete_statement(statement):
            db.execute(statement)
            statement = ""
    if statement.strip():
        db.execute(statement)


@migration(1, "initial schema")
def _initial_schema(db: sqlite3.Connection) -> None:
    # schema_version itself is created by the first migration, so that it appears with version 1, atomically.
    _script(
        db,
        """
        CREATE TABLE schema_version (
            version INTEGER PRIMARY KEY,
            name TEXT NOT NULL,
            applied_at TEXT NOT NULL
        );
        CREATE TABLE golden (
            id TEXT PRIMARY KEY,
            entity TEXT NOT NULL,
            fields TEXT NOT NULL DEFAULT '{}',
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            deleted INTEGER NOT NULL DEFAULT 0
        );
        CREATE TABLE links (
            system TEXT NOT NULL,
            object TEXT NOT NULL,
            native_id TEXT NOT NULL,
            -- DEFERRED: the engine may write a link and its new golden record in either order in one
            -- transaction; the check runs at commit.
            golden_id TEXT NOT NULL REFERENCES golden(id) DEFERRABLE INITIALLY DEFERRED,
            entity TEXT NOT NULL,
            last_modified_at TEXT,
            snapshot TEXT NOT NULL DEFAULT '{}',
            linked_at TEXT NOT NULL,
            PRIMARY KEY (system, object, native_id)
        );
        CREATE INDEX links_golden_id ON links (golden_id);
        CREATE TABLE cursors (
            connection TEXT NOT NULL,
            system TEXT NOT NULL,
            object TEXT NOT NULL,
            modified_at TEXT NOT NULL,
            record_id TEXT NOT NULL DEFAULT '',
            updated_at TEXT NOT NULL,
            PRIMARY KEY (connection, system, object)
        );
        CREATE TABLE outbox (
            id INTEGER PRIMARY KEY,
            connection TEXT NOT NULL,
            system TEXT NOT NULL,
            object TEXT NOT NULL,
            entity TEXT NOT NULL,
            golden_id TEXT NOT NULL,
            op TEXT NOT NULL CHECK (op IN ('create', 'update', 'upsert', 'delete')),
            native_id TEXT,
            fields TEXT NOT NULL DEFAULT '{}',
            upsert_key TEXT,
            attempts INTEGER NOT NULL DEFAULT 0,
            next_attempt_at TEXT NOT NULL,
            last_error TEXT,
            created_at TEXT NOT NULL
        );
        CREATE INDEX outbox_due ON outbox (connection, system, object, next_attempt_at);
        CREATE TABLE quarantine (
            id INTEGER PRIMARY KEY,
            connection TEXT NOT NULL,
            system TEXT NOT NULL,
            object TEXT NOT NULL,
            entity TEXT NOT NULL,
            native_id TEXT,
            golden_id TEXT,
            -- The record the entry is about: its native id when it has one, else its golden id.
            record_key TEXT NOT NULL,
            code TEXT NOT NULL,
            reason TEXT NOT NULL,
            payload TEXT NOT NULL DEFAULT '{}',
            attempts INTEGER NOT NULL DEFAULT 1,
            status TEXT NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'retry', 'ignored', 'resolved')),
            first_seen TEXT NOT NULL,
            last_seen TEXT NOT NULL,
            CHECK (native_id IS NOT NULL OR golden_id IS NOT NULL)
        );
        -- One live entry per record; resolved entries are history and do not count.
        CREATE UNIQUE INDEX quarantine_live ON quarantine (connection, system, object, record_key)
            WHERE status != 'resolved';
        CREATE INDEX quarantine_status ON quarantine (status);
        CREATE TABLE runs (
            id INTEGER PRIMARY KEY,
            connection TEXT NOT NULL,
            started_at TEXT NOT NULL,
            finished_at TEXT,
            status TEXT NOT NULL DEFAULT 'running'
                CHECK (status IN ('running', 'ok', 'quarantined', 'failed', 'interrupted')),
            counts TEXT NOT NULL DEFAULT '{}',
            api_calls TEXT NOT NULL DEFAULT '{}',
            error TEXT
        );
        CREATE INDEX runs_connection ON runs (connection, id);
        CREATE INDEX runs_status ON runs (status)
        """,
    )


@migration(2, "closed-loop tables")
def _closed_loop(db: sqlite3.Connection) -> None:
    _script(
        db,
        """
        CREATE TABLE ledger (
            id INTEGER PRIMARY KEY,
            deal_golden_id TEXT NOT NULL,
            kind TEXT NOT NULL CHECK (kind IN ('won', 'reversal', 'adjustment')),
            amount TEXT NOT NULL,
            currency TEXT NOT NULL,
            amount_base TEXT,
            closed_at TEXT NOT NULL,
            contacts TEXT NOT NULL DEFAULT '[]',
            source_system TEXT,
            recorded_at TEXT NOT NULL
        );
        CREATE INDEX ledger_deal ON ledger (deal_golden_id, id);
        CREATE INDEX ledger_closed_at ON ledger (closed_at);
        -- The ledger is the revenue history: corrections are new entries, never edits.
        CREATE TRIGGER ledger_no_update BEFORE UPDATE ON ledger
            BEGIN SELECT RAISE(ABORT, 'the revenue ledger is append-only'); END;
        CREATE TRIGGER ledger_no_delete BEFORE DELETE ON ledger
            BEGIN SELECT RAISE(ABORT, 'the revenue ledger is append-only'); END;
        CREATE TABLE touchpoints (
            id INTEGER PRIMARY KEY,
            contact_golden_id TEXT NOT NULL,
            system TEXT NOT NULL,
            native_id TEXT NOT NULL,
            occurred_at TEXT NOT NULL,
            kind TEXT NOT NULL,
            channel TEXT,
            campaign TEXT,
            utm TEXT NOT NULL DEFAULT '{}',
            detail TEXT
        );
        -- An expression index rather than UNIQUE(...): NULLs are distinct in a plain UNIQUE constraint, so a
        -- touchpoint without a campaign would never be recognised as a duplicate.
        CREATE UNIQUE INDEX touchpoints_unique
            ON touchpoints (system, native_id, kind, occurred_at, coalesce(campaign, ''));
        CREATE INDEX touchpoints_contact ON touchpoints (contact_golden_id, occurred_at);
        CREATE TABLE rollups (
            contact_golden_id TEXT PRIMARY KEY,
            "values" TEXT NOT NULL DEFAULT '{}',
            updated_at TEXT NOT NULL
        );
        CREATE TABLE associations (
            deal_golden_id TEXT NOT NULL REFERENCES golden(id) DEFERRABLE INITIALLY DEFERRED,
            contact_golden_id TEXT NOT NULL REFERENCES golden(id) DEFERRABLE INITIALLY DEFERRED,
            role TEXT,
            PRIMARY KEY (deal_golden_id, contact_golden_id)
        );
        CREATE INDEX associations_contact ON associations (contact_golden_id);
        CREATE TABLE pending_associations (
            connection TEXT NOT NULL,
            deal_golden_id TEXT NOT NULL,
            system TEXT NOT NULL,
            object TEXT NOT NULL,
            contact_native_id TEXT NOT NULL,
            role TEXT,
            created_at TEXT NOT NULL,
            PRIMARY KEY (connection, deal_golden_id, system, object, contact_native_id)
        );
        CREATE INDEX pending_associations_contact
            ON pending_associations (system, object, contact_native_id)
        """,
    )


@migration(3, "golden record match keys")
def _golden_keys(db: sqlite3.Connection) -> None:
    _script(
        db,
        """
        CREATE TABLE golden_keys (
            entity TEXT NOT NULL,
            key TEXT NOT NULL,
            value TEXT NOT NULL,
            golden_id TEXT NOT NULL REFERENCES golden (id) DEFERRABLE INITIALLY DEFERRED,
            PRIMARY KEY (entity, key, value, golden_id)
        );
        CREATE INDEX golden_keys_golden ON golden_keys (golden_id);
        """,
    )


@migration(4, "outbox read in id order through an index")
def _outbox_in_order(db: sqlite3.Connection) -> None:
    # The drain reads due writes oldest first, a window at a time: with (…, next_attempt_at) every window sorted
    # the whole due outbox; (…, id) walks the index in order and stops at the window's end.
    _script(
        db,
        """
        DROP INDEX outbox_due;
        CREATE INDEX outbox_in_order ON outbox (connection, system, object, id);
        """,
    )


@migration(5, "ledger entries found by the contacts they credit")
def _ledger_contacts(db: sqlite3.Connection) -> None:
    # A contact's rollup reads the entries crediting it. Searching every entry's contacts array made a sync's
    # rollups cost the whole ledger per contact; this index table, filled by the ledger's own insert trigger
    # (the ledger is append-only), answers a page's contacts with one indexed query.
    _script(
        db,
        """
        CREATE TABLE ledger_contacts (
            contact_golden_id TEXT NOT NULL,
            ledger_id INTEGER NOT NULL REFERENCES ledger (id),
            PRIMARY KEY (contact_golden_id, ledger_id)
        ) WITHOUT ROWID;
        INSERT OR IGNORE INTO ledger_contacts (contact_golden_id, ledger_id)
            SELECT credited.value, ledger.id FROM ledger, json_each(ledger.contacts) AS credited;
        CREATE TRIGGER ledger_contacts_fill AFTER INSERT ON ledger BEGIN
            INSERT OR IGNORE INTO ledger_contacts (contact_golden_id, ledger_id)
                SELECT value, NEW.id FROM json_each(NEW.contacts);
        END;
        """,
    )


@migration(6, "runs say what kind of failure ended them")
def _run_failure(db: sqlite3.Connection) -> None:
    # The kind (auth, unreachable, bug...) decides readiness, metrics and exit codes; kept in its own column
    # rather than parsed back out of the error text.
    _script(db, "ALTER TABLE runs ADD COLUMN failure TEXT")


@migration(7, "quarantine entries keep the version of the record they parked")
def _quarantine_version(db: sqlite3.Connection) -> None:
    # A record parked while unlinked has no link to keep its last-seen modified time; the entry keeps it, so
    # the lookback's re-read of the same version is not another attempt.
    _script(db, "ALTER TABLE quarantine ADD COLUMN modified_at TEXT")


@migration(8, "tombstones and provenance in columns of their own, not reserved keys in JSON")
def _link_tombstones(db: sqlite3.Connection) -> None:
    # Every reader of a snapshot filtered the "~deleted" key out, and every reader of a link looked it up; the
    # flag is its own column now, and so is a golden record's "~provenance" (JSON text inside the fields JSON,
    # encoded twice on every write). The outbox's "fields" were written on every enqueue and never read (the
    # drain works out what a golden record owes when it sends it): the column goes.
    _script(
        db,
        """
        ALTER TABLE links ADD COLUMN deleted INTEGER NOT NULL DEFAULT 0;
        UPDATE links SET deleted = 1 WHERE coalesce(json_extract(snapshot, '$."~deleted"'), 0) NOT IN (0, '');
        UPDATE links SET snapshot = json_remove(snapshot, '$."~deleted"')
            WHERE json_extract(snapshot, '$."~deleted"') IS NOT NULL;
        ALTER TABLE outbox DROP COLUMN fields;
        ALTER TABLE golden ADD COLUMN provenance TEXT NOT NULL DEFAULT '{}';
        UPDATE golden SET provenance = coalesce(json_extract(fields, '$."~provenance"'), '{}'),
            fields = json_remove(fields, '$."~provenance"')
            WHERE json_extract(fields, '$."~provenance"') IS NOT NULL;
        """,
    )


@migration(9, "sales activities read for the follow-up SLA")
def _sales_activities(db: sqlite3.Connection) -> None:
    # One row per live, done activity (a call, email, meeting or task) of a CRM and person it names, keyed by
    # the vendor's id so a re-read or an edit replaces all of the activity's rows; the person is kept natively
    # and joined to its golden record through the links when the report asks, so an activity read before its
    # person was linked is not lost.
    _script(
        db,
        """
        CREATE TABLE sales_activities (
            system TEXT NOT NULL,
            activity_id TEXT NOT NULL,
            person_object TEXT NOT NULL,
            person_id TEXT NOT NULL,
            kind TEXT NOT NULL,
            occurred_at TEXT NOT NULL,
            owner TEXT,
            PRIMARY KEY (system, activity_id, person_object, person_id)
        );
        CREATE INDEX sales_activities_person ON sales_activities (system, person_object, person_id, occurred_at);
        """,
    )


@migration(10, "runs say which replica ran them")
def _run_replica(db: sqlite3.Connection) -> None:
    # With several replicas on one PostgreSQL store, the run history tells which one ran each run (NULL: a
    # single node, or a run from before this migration). The same statement serves both back-ends.
    _script(db, "ALTER TABLE runs ADD COLUMN replica TEXT")


@migration(11, "partner ids, written associations and kept original sources in columns of their own")
def _state_in_columns(db: sqlite3.Connection) -> None:
    # A link's snapshot held, beside the canonical values, the partner id its record carries ("~partner") and,
    # for a deal, the contacts already associated with it there ("~associated", a JSON list inside a JSON
    # string): every reader filtered them out. They are columns of the link now. The kept original source of a
    # contact was a touchpoint row per version (system "closeloop", the source as JSON in "detail"), read back
    # and decoded on every page: it is one row per contact in a table of its own, and the versions go.
    _script(
        db,
        """
        ALTER TABLE links ADD COLUMN partner_id TEXT;
        ALTER TABLE links ADD COLUMN associated TEXT;
        UPDATE links SET partner_id = json_extract(snapshot, '$."~partner"'),
            associated = json_extract(snapshot, '$."~associated"'),
            snapshot = json_remove(snapshot, '$."~partner"', '$."~associated"')
            WHERE json_extract(snapshot, '$."~partner"') IS NOT NULL
            OR json_extract(snapshot, '$."~associated"') IS NOT NULL;
        UPDATE links SET associated = NULL WHERE associated = '[]';
        CREATE TABLE original_sources (
            contact_golden_id TEXT PRIMARY KEY,
            source_type TEXT,
            detail TEXT,
            utm_source TEXT,
            utm_medium TEXT,
            utm_campaign TEXT,
            first_touch_at TEXT,
            system TEXT,
            captured_at TEXT NOT NULL
        );
        INSERT INTO original_sources (contact_golden_id, source_type, detail, utm_source, utm_medium,
            utm_campaign, first_touch_at, system, captured_at)
            SELECT t.contact_golden_id, json_extract(t.detail, '$.source_type'), json_extract(t.detail, '$.detail'),
                json_extract(t.detail, '$.utm_source'), json_extract(t.detail, '$.utm_medium'),
                json_extract(t.detail, '$.utm_campaign'), json_extract(t.detail, '$.first_touch_at'),
                json_extract(t.detail, '$.system'), t.occurred_at
            FROM touchpoints t
            WHERE t.system = 'closeloop' AND t.kind = 'original_source' AND t.detail IS NOT NULL
            AND NOT EXISTS (
                SELECT 1 FROM touchpoints n
                WHERE n.contact_golden_id = t.contact_golden_id AND n.system = 'closeloop'
                AND n.kind = 'original_source' AND n.detail IS NOT NULL
                AND (n.occurred_at > t.occurred_at OR (n.occurred_at = t.occurred_at AND n.id > t.id))
            );
        DELETE FROM touchpoints WHERE system = 'closeloop' AND kind = 'original_source';
        """,
    )


@migration(12, "first sightings of touches whose vendor keeps no time")
def _touch_first_seen(db: sqlite3.Connection) -> None:
    # A campaign membership read from a related list carries no time: its touch takes the time closeloop
    # first saw it, kept here by the source's own key (campaign and person) so that every later read, a restart
    # or a renamed campaign gives the same time, and a person linked only later still gets its first sighting.
    _script(
        db,
        """
        CREATE TABLE touch_first_seen (
            system TEXT NOT NULL,
            source_key TEXT NOT NULL,
            seen_at TEXT NOT NULL,
            PRIMARY KEY (system, source_key)
        );
        """,
    )


@migration(13, "PostgreSQL checks golden record references once per statement")
def _golden_references(db: sqlite3.Connection) -> None:
    # Nothing changes in SQLite, whose deferred foreign keys cost little in-process. On PostgreSQL a foreign key
    # runs one locking query per inserted row (a quarter of the server's CPU in a first sync); its form of this
    # step checks each statement's rows in one query instead (closeloop.store.pg_schema). The step exists here so
    # both back-ends keep the same numbers.
    del db


@migration(14, "PostgreSQL compares key columns byte by byte")
def _byte_order_keys(db: sqlite3.Connection) -> None:
    # Nothing changes in SQLite, whose text columns already compare as bytes (BINARY). On PostgreSQL the key
    # columns get COLLATE "C": every index insert, lookup and sort of a key compared through the database's locale
    # (strcoll) before, and a database created in en_US sorted keys otherwise than SQLite (closeloop.store.pg_schema).
    # The step exists here so both back-ends keep the same numbers.
    del db
