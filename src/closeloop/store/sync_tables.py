"""Golden records, links and cursors: what the engine reads and writes on every page of a sync."""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime

from closeloop.model import Cursor
from closeloop.store.db import (
    Access,
    Row,
    dump_fields,
    dump_json,
    from_ts,
    from_ts_or_none,
    id_list,
    load_json,
    ts,
    ts_or_none,
)
from closeloop.store.rows import Fields, Golden, Link, Provenance


def _golden(row: Row) -> Golden:
    return Golden(
        id=row["id"],
        entity=row["entity"],
        fields=load_json(row["fields"]),
        created_at=from_ts(row["created_at"]),
        updated_at=from_ts(row["updated_at"]),
        deleted=bool(row["deleted"]),
        provenance=load_json(row["provenance"]),
    )


def _link(row: Row) -> Link:
    return Link(
        system=row["system"],
        object=row["object"],
        native_id=row["native_id"],
        golden_id=row["golden_id"],
        entity=row["entity"],
        last_modified_at=from_ts_or_none(row["last_modified_at"]),
        snapshot=load_json(row["snapshot"]),
        linked_at=from_ts(row["linked_at"]),
        deleted=bool(row["deleted"]),
        partner_id=row["partner_id"],
        associated=tuple(load_json(row["associated"])) if row["associated"] else (),
    )


def _unique(ids: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(ids))


class SyncTables:
    """Golden records, links and cursors."""

    _a: Access

    # -- golden records ---------------------------------------------------------------------------------

    @staticmethod
    def new_golden_id() -> str:
        """A fresh golden record id: 32 hex digits, milliseconds since the epoch then 80 random bits.

        Ids made one after another sort together, so a bulk sync appends to the golden table's index instead of
        writing all over it (random uuid4 ids made a large initial sync slow down as the store grew).
        """
        return f"{time.time_ns() // 1_000_000:012x}{secrets.token_hex(10)}"

    def get_golden(self, golden_id: str) -> Golden | None:
        """The golden record ``golden_id``, deleted or not, or None."""
        row = self._a.row("SELECT * FROM golden WHERE id = ?", (golden_id,))
        return None if row is None else _golden(row)

    def get_goldens(self, golden_ids: Sequence[str]) -> dict[str, Golden]:
        """The golden records among ``golden_ids`` that exist, by id, in one query."""
        rows = self._a.rows(
            "SELECT * FROM golden WHERE id IN (SELECT value FROM json_each(?))",
            (id_list(_unique(golden_ids)),),
        )
        return {row["id"]: _golden(row) for row in rows}

    def put_golden(self, golden_id: str, entity: str, fields: Fields) -> None:
        """Create or replace the fields of a golden record (its deleted flag is kept)."""
        now = self._a.now()
        with self._a.transaction.joined():
            self._a.conn.execute(
                "INSERT INTO golden (id, entity, fields, created_at, updated_at) VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT (id) DO UPDATE SET entity = excluded.entity, fields = excluded.fields, "
                "updated_at = excluded.updated_at",
                (golden_id, entity, dump_fields(fields), now, now),
            )

    def put_goldens(self, goldens: Sequence[tuple[str, str, Fields, Provenance]]) -> None:
        """Create or replace many golden records' fields, given as (id, entity, fields, provenance), in one
        statement."""
        if not goldens:
            return
        now = self._a.now()
        with self._a.transaction.joined():
            self._a.conn.executemany(
                "INSERT INTO golden (id, entity, fields, provenance, created_at, updated_at)"
                " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET entity = excluded.entity,"
                " fields = excluded.fields, provenance = excluded.provenance, updated_at = excluded.updated_at",
                [
                    (golden_id, entity, dump_fields(fields), dump_json(provenance), now, now)
                    for golden_id, entity, fields, provenance in goldens
                ],
            )

    def mark_golden_deleted(self, golden_id: str) -> bool:
        """Flag a golden record deleted (it stays, so a merged-away record is never resurrected)."""
        with self._a.transaction.joined():
            cursor = self._a.conn.execute(
                "UPDATE golden SET deleted = 1, updated_at = ? WHERE id = ?", (self._a.now(), golden_id)
            )
        return cursor.rowcount > 0

    def goldens(self, entity: str, after_id: str = "", limit: int = 500) -> list[Golden]:
        """Up to ``limit`` live golden records of ``entity`` with ids after ``after_id``, in id order."""
        rows = self._a.rows(
            "SELECT * FROM golden WHERE entity = ? AND deleted = 0 AND id > ? ORDER BY id LIMIT ?",
            (entity, after_id, limit),
        )
        return [_golden(row) for row in rows]

    # -- links ------------------------------------------------------------------------------------------

    def get_link(self, system: str, object: str, native_id: str) -> Link | None:
        """The link of one native record, or None."""
        row = self._a.row(
            "SELECT * FROM links WHERE system = ? AND object = ? AND native_id = ?",
            (system, object, native_id),
        )
        return None if row is None else _link(row)

    def find_links(self, system: str, object: str, native_ids: Sequence[str]) -> dict[str, Link]:
        """The links of many native records of one object, by native id, in one query."""
        rows = self._a.rows(
            "SELECT * FROM links WHERE system = ? AND object = ? AND native_id IN (SELECT value FROM json_each(?))",
            (system, object, id_list(_unique(native_ids))),
        )
        return {row["native_id"]: _link(row) for row in rows}

    def links_of(self, golden_id: str) -> list[Link]:
        """Every link of a golden record, ordered by system, object, native id."""
        rows = self._a.rows("SELECT * FROM links WHERE golden_id = ? ORDER BY system, object, native_id", (golden_id,))
        return [_link(row) for row in rows]

    def links_of_many(
        self, golden_ids: Sequence[str], known: Mapping[tuple[str, str, str], Link | None] | None = None
    ) -> dict[str, list[Link]]:
        """Every link of many golden records in one query, by golden id (an id without links maps to []).

        ``known`` links (by system, object, native id, as the caller read them in the same transaction) are
        handed back as they are instead of being decoded again.
        """
        unique = _unique(golden_ids)
        found: dict[str, list[Link]] = {golden_id: [] for golden_id in unique}
        rows = self._a.rows(
            "SELECT * FROM links WHERE golden_id IN (SELECT value FROM json_each(?))"
            " ORDER BY golden_id, system, object, native_id",
            (id_list(unique),),
        )
        known = known or {}
        for row in rows:
            link = known.get((row["system"], row["object"], row["native_id"]))
            found[row["golden_id"]].append(
                link if link is not None and link.golden_id == row["golden_id"] else _link(row)
            )
        return found

    def put_links(self, links: Sequence[Link]) -> None:
        """Create or replace many links as given (every column, ``linked_at`` included) in one statement."""
        if not links:
            return
        with self._a.transaction.joined():
            self._a.conn.executemany(
                "INSERT INTO links (system, object, native_id, golden_id, entity, last_modified_at, snapshot,"
                " linked_at, deleted, partner_id, associated) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (system, object, native_id) DO UPDATE SET golden_id = excluded.golden_id,"
                " entity = excluded.entity, last_modified_at = excluded.last_modified_at,"
                " snapshot = excluded.snapshot, linked_at = excluded.linked_at, deleted = excluded.deleted,"
                " partner_id = excluded.partner_id, associated = excluded.associated",
                [
                    (
                        link.system,
                        link.object,
                        link.native_id,
                        link.golden_id,
                        link.entity,
                        ts_or_none(link.last_modified_at),
                        dump_fields(link.snapshot),
                        ts(link.linked_at),
                        int(link.deleted),
                        link.partner_id,
                        dump_json(list(link.associated)) if link.associated else None,
                    )
                    for link in links
                ],
            )

    def put_link(
        self,
        system: str,
        object: str,
        native_id: str,
        golden_id: str,
        entity: str,
        *,
        last_modified_at: datetime | None = None,
        snapshot: Fields | None = None,
    ) -> Link:
        """Create or update a link; a None ``last_modified_at`` or ``snapshot`` keeps the stored one."""
        params = {
            "system": system,
            "object": object,
            "native_id": native_id,
            "golden_id": golden_id,
            "entity": entity,
            "seen": ts_or_none(last_modified_at),
            "snapshot": None if snapshot is None else dump_fields(snapshot),
            "now": self._a.now(),
        }
        with self._a.transaction.joined():
            self._a.conn.execute(
                "INSERT INTO links (system, object, native_id, golden_id, entity, last_modified_at, snapshot,"
                " linked_at) VALUES (:system, :object, :native_id, :golden_id, :entity, :seen,"
                " coalesce(:snapshot, '{}'), :now)"
                " ON CONFLICT (system, object, native_id) DO UPDATE SET"
                # linked_at tells when the record joined its golden record, so it moves only on a re-link.
                " linked_at = CASE WHEN golden_id = :golden_id THEN linked_at ELSE :now END,"
                " golden_id = :golden_id, entity = :entity,"
                " last_modified_at = coalesce(:seen, last_modified_at),"
                " snapshot = coalesce(:snapshot, snapshot)",
                params,
            )
            link = self.get_link(system, object, native_id)
        assert link is not None  # just written inside this transaction
        return link

    def delete_link(self, system: str, object: str, native_id: str) -> bool:
        """Remove the link of one native record; True when there was one."""
        with self._a.transaction.joined():
            cursor = self._a.conn.execute(
                "DELETE FROM links WHERE system = ? AND object = ? AND native_id = ?",
                (system, object, native_id),
            )
        return cursor.rowcount > 0

    def delete_links(self, keys: Sequence[tuple[str, str, str]]) -> int:
        """Remove the links of many (system, object, native id); return how many there were."""
        if not keys:
            return 0
        with self._a.transaction.joined():
            cursor = self._a.conn.executemany(
                "DELETE FROM links WHERE system = ? AND object = ? AND native_id = ?", list(keys)
            )
        return cursor.rowcount

    def repoint_links(self, from_golden: str, to_golden: str) -> int:
        """Move every link of one golden record to another (after a merge); return how many moved."""
        with self._a.transaction.joined():
            cursor = self._a.conn.execute(
                "UPDATE links SET golden_id = ?, linked_at = ? WHERE golden_id = ?",
                (to_golden, self._a.now(), from_golden),
            )
        return cursor.rowcount

    # -- cursors ----------------------------------------------------------------------------------------

    def get_cursor(self, connection: str, system: str, object: str) -> Cursor | None:
        """Where the change stream of one object of one system was last read to, or None."""
        row = self._a.row(
            "SELECT modified_at, record_id FROM cursors WHERE connection = ? AND system = ? AND object = ?",
            (connection, system, object),
        )
        return None if row is None else Cursor.from_columns(row["modified_at"], row["record_id"])

    def set_cursor(self, connection: str, system: str, object: str, cursor: Cursor) -> None:
        """Record how far the change stream of one object of one system has been applied."""
        with self._a.transaction.joined():
            self._a.conn.execute(
                "INSERT INTO cursors (connection, system, object, modified_at, record_id, updated_at) "
                "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (connection, system, object) DO UPDATE SET "
                "modified_at = excluded.modified_at, record_id = excluded.record_id, "
                "updated_at = excluded.updated_at",
                (connection, system, object, *cursor.columns(), self._a.now()),
            )

    def cursors(self, connection: str) -> Mapping[tuple[str, str], Cursor]:
        """Every cursor of a connection, by (system, object)."""
        rows = self._a.rows(
            "SELECT system, object, modified_at, record_id FROM cursors WHERE connection = ?", (connection,)
        )
        return {
            (row["system"], row["object"]): Cursor.from_columns(row["modified_at"], row["record_id"]) for row in rows
        }
