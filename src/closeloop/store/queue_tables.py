"""The outbox of owed writes, the quarantine of quarantined records, and the history of sync runs."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Literal

from closeloop.model import JSONValue, WriteOp
from closeloop.store.db import (
    Access,
    Row,
    dump_json,
    from_ts,
    from_ts_or_none,
    id_list,
    load_json,
    ts,
)
from closeloop.store.rows import (
    OutboxEntry,
    OutboxItem,
    QuarantineEntry,
    QuarantineStatus,
    Run,
    RunStatus,
)


def record_key(*, native_id: str | None = None, golden_id: str | None = None) -> str:
    """How a quarantine entry names its record: ``n:<native id>``, or ``g:<golden id>`` when it has none."""
    return f"n:{native_id}" if native_id is not None else f"g:{golden_id}"


def _outbox(row: Row) -> OutboxEntry:
    item = OutboxItem(
        connection=row["connection"],
        system=row["system"],
        object=row["object"],
        entity=row["entity"],
        golden_id=row["golden_id"],
        op=WriteOp(row["op"]),
        native_id=row["native_id"],
        upsert_key=row["upsert_key"],
    )
    return OutboxEntry(
        id=row["id"],
        item=item,
        attempts=row["attempts"],
        next_attempt_at=from_ts(row["next_attempt_at"]),
        last_error=row["last_error"],
        created_at=from_ts(row["created_at"]),
    )


def _quarantine(row: Row) -> QuarantineEntry:
    return QuarantineEntry(
        id=row["id"],
        connection=row["connection"],
        system=row["system"],
        object=row["object"],
        entity=row["entity"],
        native_id=row["native_id"],
        golden_id=row["golden_id"],
        code=row["code"],
        reason=row["reason"],
        payload=load_json(row["payload"]),
        attempts=row["attempts"],
        status=QuarantineStatus(row["status"]),
        first_seen=from_ts(row["first_seen"]),
        last_seen=from_ts(row["last_seen"]),
    )


def _run(row: Row) -> Run:
    return Run(
        id=row["id"],
        connection=row["connection"],
        started_at=from_ts(row["started_at"]),
        finished_at=from_ts_or_none(row["finished_at"]),
        status=RunStatus(row["status"]),
        counts=load_json(row["counts"]),
        api_calls=load_json(row["api_calls"]),
        error=row["error"],
        failure=row["failure"],
        replica=row["replica"],
    )


class QueueTables:
    """Outbox, quarantine and runs."""

    _a: Access

    # -- outbox -----------------------------------------------------------------------------------------

    def enqueue(self, items: Iterable[OutboxItem]) -> list[int]:
        """Queue writes, due at once; return their outbox ids in input order."""
        now = self._a.now()
        rows = [
            (
                item.connection,
                item.system,
                item.object,
                item.entity,
                item.golden_id,
                str(item.op),
                item.native_id,
                item.upsert_key,
                now,
                now,
            )
            for item in items
        ]
        if not rows:
            return []
        with self._a.transaction.joined():
            return self._a.insert_ids(
                "INSERT INTO outbox (connection, system, object, entity, golden_id, op, native_id,"
                " upsert_key, next_attempt_at, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                rows,
            )

    def due_outbox(
        self,
        connection: str,
        system: str,
        object: str,
        limit: int,
        now: datetime | None = None,
        *,
        after_id: int = 0,
    ) -> list[OutboxEntry]:
        """Up to ``limit`` queued writes to one object that are due at ``now``, oldest first, with ids above
        ``after_id`` (so a caller walking the outbox window by window never reads past items twice)."""
        moment = self._a.now() if now is None else ts(now)
        rows = self._a.rows(
            "SELECT * FROM outbox WHERE connection = ? AND system = ? AND object = ? AND id > ?"
            " AND next_attempt_at <= ? ORDER BY id LIMIT ?",
            (connection, system, object, after_id, moment, limit),
        )
        return [_outbox(row) for row in rows]

    def outbox_done(self, ids: Sequence[int]) -> int:
        """Remove delivered (or quarantined) writes from the outbox; return how many were removed."""
        with self._a.transaction.joined():
            cursor = self._a.conn.execute(
                "DELETE FROM outbox WHERE id IN (SELECT value FROM json_each(?))", (id_list(ids),)
            )
        return cursor.rowcount

    def outbox_retry_later(self, id: int, next_attempt_at: datetime, error: str) -> None:
        """Count a failed attempt of a queued write and hold it back until ``next_attempt_at``."""
        with self._a.transaction.joined():
            self._a.conn.execute(
                "UPDATE outbox SET attempts = attempts + 1, next_attempt_at = ?, last_error = ? WHERE id = ?",
                (ts(next_attempt_at), error, id),
            )

    def outbox_depth(self, connection: str | None = None) -> int:
        """How many writes are queued, for one connection or all."""
        if connection is None:
            row = self._a.row("SELECT count(*) FROM outbox")
        else:
            row = self._a.row("SELECT count(*) FROM outbox WHERE connection = ?", (connection,))
        assert row is not None  # count(*) always returns a row
        return int(row[0])

    # -- quarantine -------------------------------------------------------------------------------------

    def quarantine(
        self,
        connection: str,
        system: str,
        object: str,
        entity: str,
        *,
        code: str,
        reason: str,
        native_id: str | None = None,
        golden_id: str | None = None,
        payload: Mapping[str, JSONValue] | None = None,
        modified_at: datetime | None = None,
    ) -> QuarantineEntry:
        """Quarantine a record; quarantining it again bumps the live entry's attempts and last_seen instead.

        ``modified_at`` is the modified time of the version quarantined (a record read from a change stream).
        """
        if native_id is None and golden_id is None:
            raise ValueError("a quarantined record needs a native id or a golden id")
        key = record_key(native_id=native_id, golden_id=golden_id)
        now = self._a.now()
        with self._a.transaction.joined():
            self._a.conn.execute(
                "INSERT INTO quarantine (connection, system, object, entity, native_id, golden_id,"
                " record_key, code, reason, payload, first_seen, last_seen, modified_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (connection, system, object, record_key) WHERE status != 'resolved'"
                " DO UPDATE SET attempts = attempts + 1, last_seen = excluded.last_seen,"
                " code = excluded.code, reason = excluded.reason, payload = excluded.payload,"
                " entity = excluded.entity, modified_at = excluded.modified_at,"
                " golden_id = coalesce(excluded.golden_id, golden_id),"
                # A retry that failed again needs the admin once more; an ignored record stays ignored.
                " status = CASE WHEN status = 'retry' THEN 'open' ELSE status END",
                (
                    connection,
                    system,
                    object,
                    entity,
                    native_id,
                    golden_id,
                    key,
                    code,
                    reason,
                    dump_json(payload or {}),
                    now,
                    now,
                    None if modified_at is None else ts(modified_at),
                ),
            )
            row = self._a.row(
                "SELECT * FROM quarantine WHERE connection = ? AND system = ? AND object = ?"
                " AND record_key = ? AND status != 'resolved'",
                (connection, system, object, key),
            )
        assert row is not None  # just written inside this transaction
        return _quarantine(row)

    def list_quarantine(
        self,
        status: QuarantineStatus | Iterable[QuarantineStatus] | None = None,
        *,
        connection: str | None = None,
    ) -> list[QuarantineEntry]:
        """Quarantine entries with the given status(es) (all when None), optionally of one connection."""
        if status is None:
            statuses = list(QuarantineStatus)
        elif isinstance(status, QuarantineStatus):
            statuses = [status]
        else:
            statuses = list(status)
        rows = self._a.rows(
            "SELECT * FROM quarantine WHERE status IN (SELECT value FROM json_each(?))"
            " AND (? IS NULL OR connection = ?) ORDER BY id",
            (id_list([str(s) for s in statuses]), connection, connection),
        )
        return [_quarantine(row) for row in rows]

    def mark_retry(self, id: int | Literal["all"]) -> int:
        """Ask for a retry of one entry (open or ignored) or of every open one; return how many."""
        with self._a.transaction.joined():
            if id == "all":
                cursor = self._a.conn.execute("UPDATE quarantine SET status = 'retry' WHERE status = 'open'")
            else:
                cursor = self._a.conn.execute(
                    "UPDATE quarantine SET status = 'retry' WHERE id = ? AND status IN ('open', 'ignored')",
                    (id,),
                )
        return cursor.rowcount

    def resolve_quarantine(
        self,
        connection: str,
        system: str,
        object: str,
        *,
        native_id: str | None = None,
        golden_id: str | None = None,
    ) -> int:
        """Close the live entry of a record that has since synced; return how many entries closed (0 or 1)."""
        return self.resolve_quarantine_keys(
            connection, system, object, [record_key(native_id=native_id, golden_id=golden_id)]
        )

    def resolve_quarantine_keys(self, connection: str, system: str, object: str, keys: Sequence[str]) -> int:
        """Close the live entries of many records by ``record_key``; return how many closed."""
        if not keys:
            return 0
        with self._a.transaction.joined():
            cursor = self._a.conn.execute(
                "UPDATE quarantine SET status = 'resolved', last_seen = ? WHERE connection = ? AND system = ?"
                " AND object = ? AND record_key IN (SELECT value FROM json_each(?)) AND status != 'resolved'",
                (self._a.now(), connection, system, object, id_list(list(keys))),
            )
        return cursor.rowcount

    def quarantined_keys(self, connection: str, system: str, object: str) -> set[str]:
        """Record keys (``n:<native id>`` or ``g:<golden id>``) of the live entries of one object."""
        rows = self._a.rows(
            "SELECT record_key FROM quarantine WHERE connection = ? AND system = ? AND object = ?"
            " AND status != 'resolved'",
            (connection, system, object),
        )
        return {str(row[0]) for row in rows}

    def quarantined_versions(
        self, connection: str, system: str, object: str, native_ids: Sequence[str]
    ) -> dict[str, datetime]:
        """Native id -> the modified time of the version its open or ignored entry quarantined (where it keeps one)."""
        if not native_ids:
            return {}
        rows = self._a.rows(
            "SELECT native_id, modified_at FROM quarantine WHERE connection = ? AND system = ? AND object = ?"
            " AND status IN ('open', 'ignored') AND modified_at IS NOT NULL"
            " AND native_id IN (SELECT value FROM json_each(?))",
            (connection, system, object, id_list(list(native_ids))),
        )
        return {str(row[0]): from_ts(str(row[1])) for row in rows}

    def ignore_quarantine(self, id: int) -> bool:
        """Stop listing an entry as needing attention; True when it was live."""
        with self._a.transaction.joined():
            cursor = self._a.conn.execute(
                "UPDATE quarantine SET status = 'ignored' WHERE id = ? AND status != 'resolved'", (id,)
            )
        return cursor.rowcount > 0

    # -- runs -------------------------------------------------------------------------------------------

    def start_run(self, connection: str, *, replica: str | None = None) -> int:
        """Record the start of a sync run (by ``replica``, when several share the store); return its id."""
        with self._a.transaction.joined():
            cursor = self._a.conn.execute(
                "INSERT INTO runs (connection, started_at, replica) VALUES (?, ?, ?)",
                (connection, self._a.now(), replica),
            )
        assert cursor.lastrowid is not None  # an INSERT into a rowid table always has one
        return cursor.lastrowid

    def finish_run(
        self,
        run_id: int,
        status: RunStatus,
        counts: Mapping[str, int],
        api_calls: Mapping[str, int],
        error: str | None = None,
        failure: str | None = None,
    ) -> None:
        """Record how a sync run ended."""
        if status is RunStatus.RUNNING:
            raise ValueError("a finished run cannot be 'running'")
        with self._a.transaction.joined():
            cursor = self._a.conn.execute(
                "UPDATE runs SET finished_at = ?, status = ?, counts = ?, api_calls = ?, error = ?, failure = ?"
                " WHERE id = ?",
                (
                    self._a.now(),
                    str(status),
                    dump_json(dict(counts)),
                    dump_json(dict(api_calls)),
                    error,
                    failure,
                    run_id,
                ),
            )
        if cursor.rowcount == 0:
            raise KeyError(f"no run {run_id}")

    def recent_runs(self, limit: int = 20, *, connection: str | None = None) -> list[Run]:
        """The latest runs, newest first, optionally of one connection."""
        rows = self._a.rows(
            "SELECT * FROM runs WHERE (? IS NULL OR connection = ?) ORDER BY id DESC LIMIT ?",
            (connection, connection, limit),
        )
        return [_run(row) for row in rows]

    def last_run(self, connection: str, status: RunStatus | None = None) -> Run | None:
        """The latest run of a connection, optionally the latest with a given status."""
        row = self._a.row(
            "SELECT * FROM runs WHERE connection = ? AND (? IS NULL OR status = ?) ORDER BY id DESC LIMIT 1",
            (connection, status, status),
        )
        return None if row is None else _run(row)

    def interrupt_running_runs(self, connection: str | None = None) -> int:
        """Mark runs still 'running' (their process died) as 'interrupted', of one connection or all; how many."""
        with self._a.transaction.joined():
            cursor = self._a.conn.execute(
                "UPDATE runs SET status = 'interrupted', finished_at = ?"
                " WHERE status = 'running' AND (? IS NULL OR connection = ?)",
                (self._a.now(), connection, connection),
            )
        return cursor.rowcount
