"""The closed-loop tables: revenue ledger, touchpoints, rollups and deal-contact associations."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from decimal import Decimal

from closeloop.store.db import Access, Row, dump_fields, dump_json, from_ts, id_list, load_json, ts
from closeloop.store.rows import (
    DealContact,
    Fields,
    LedgerEntry,
    LedgerKind,
    PendingAssociation,
    Rollup,
    TouchpointRow,
)
from closeloop.store.source_tables import SourceTables


def _ledger(row: Row) -> LedgerEntry:
    base = row["amount_base"]
    return LedgerEntry(
        id=row["id"],
        deal_golden_id=row["deal_golden_id"],
        kind=LedgerKind(row["kind"]),
        amount=Decimal(row["amount"]),
        currency=row["currency"],
        amount_base=None if base is None else Decimal(base),
        closed_at=from_ts(row["closed_at"]),
        contacts=tuple(load_json(row["contacts"])),
        source_system=row["source_system"],
        recorded_at=from_ts(row["recorded_at"]),
    )


def _ledger_by(rows: Sequence[Row], column: str) -> dict[str, list[LedgerEntry]]:
    """Ledger rows decoded and grouped by one column's value, each group in the rows' order."""
    found: dict[str, list[LedgerEntry]] = {}
    for row in rows:
        found.setdefault(row[column], []).append(_ledger(row))
    return found


def _touchpoint(row: Row) -> TouchpointRow:
    return TouchpointRow(
        id=row["id"],
        contact_golden_id=row["contact_golden_id"],
        system=row["system"],
        native_id=row["native_id"],
        occurred_at=from_ts(row["occurred_at"]),
        kind=row["kind"],
        channel=row["channel"],
        campaign=row["campaign"],
        utm=load_json(row["utm"]),
        detail=row["detail"],
    )


def _pending(row: Row) -> PendingAssociation:
    return PendingAssociation(
        connection=row["connection"],
        deal_golden_id=row["deal_golden_id"],
        system=row["system"],
        object=row["object"],
        contact_native_id=row["contact_native_id"],
        role=row["role"],
    )


class LoopTables(SourceTables):
    """Ledger, touchpoints, rollups, associations and pending associations."""

    _a: Access

    # -- ledger -----------------------------------------------------------------------------------------

    def append_ledger(self, entry: LedgerEntry) -> LedgerEntry:
        """Append a revenue-ledger entry (the ledger is never edited); return it with id and recorded_at."""
        now = self._a.now()
        with self._a.transaction.joined():
            cursor = self._a.conn.execute(
                "INSERT INTO ledger (deal_golden_id, kind, amount, currency, amount_base, closed_at,"
                " contacts, source_system, recorded_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    entry.deal_golden_id,
                    str(entry.kind),
                    str(entry.amount),
                    entry.currency,
                    None if entry.amount_base is None else str(entry.amount_base),
                    ts(entry.closed_at),
                    dump_json(list(entry.contacts)),
                    entry.source_system,
                    now,
                ),
            )
            row = self._a.row("SELECT * FROM ledger WHERE id = ?", (cursor.lastrowid,))
        assert row is not None  # just written inside this transaction
        return _ledger(row)

    def ledger_for_deals(self, deal_golden_ids: Sequence[str]) -> dict[str, list[LedgerEntry]]:
        """The ledger entries of each of many deals, in recorded order, by deal (a deal without any is left out)."""
        rows = self._a.rows(
            "SELECT * FROM ledger WHERE deal_golden_id IN (SELECT value FROM json_each(?)) ORDER BY deal_golden_id, id",
            (id_list(deal_golden_ids),),
        )
        return _ledger_by(rows, "deal_golden_id")

    def ledger_for_contacts(self, contact_golden_ids: Sequence[str]) -> dict[str, list[LedgerEntry]]:
        """The ledger entries crediting each of many contacts, in recorded order, by contact; one indexed query.

        A contact no entry credits is left out.
        """
        rows = self._a.rows(
            "SELECT credited.contact_golden_id AS credited_contact, ledger.* FROM ledger_contacts AS credited"
            " JOIN ledger ON ledger.id = credited.ledger_id"
            " WHERE credited.contact_golden_id IN (SELECT value FROM json_each(?))"
            " ORDER BY credited.contact_golden_id, ledger.id",
            (id_list(contact_golden_ids),),
        )
        return _ledger_by(rows, "credited_contact")

    def ledger_entries(self, since: datetime | None = None) -> list[LedgerEntry]:
        """Ledger entries whose deal closed at or after ``since`` (all when None), in recorded order."""
        if since is None:
            rows = self._a.rows("SELECT * FROM ledger ORDER BY id")
        else:
            rows = self._a.rows("SELECT * FROM ledger WHERE closed_at >= ? ORDER BY id", (ts(since),))
        return [_ledger(row) for row in rows]

    # -- touchpoints ------------------------------------------------------------------------------------

    def add_touchpoints(self, touchpoints: Iterable[TouchpointRow]) -> int:
        """Record touchpoints, skipping ones already recorded; return how many were new."""
        rows = [
            (
                tp.contact_golden_id,
                tp.system,
                tp.native_id,
                ts(tp.occurred_at),
                tp.kind,
                tp.channel,
                tp.campaign,
                dump_json(dict(tp.utm)),
                tp.detail,
            )
            for tp in touchpoints
        ]
        if not rows:
            return 0
        with self._a.transaction.joined():
            before = self._a.conn.total_changes
            self._a.conn.executemany(
                "INSERT INTO touchpoints (contact_golden_id, system, native_id, occurred_at,"
                " kind, channel, campaign, utm, detail) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                rows,
            )
            return self._a.conn.total_changes - before

    def first_seen(self, system: str, proposed: Mapping[str, datetime]) -> dict[str, datetime]:
        """When each source key of ``system`` was first seen: the stored time, or the proposed one (kept now)."""
        if not proposed:
            return {}
        with self._a.transaction.joined():
            self._a.conn.executemany(
                "INSERT INTO touch_first_seen (system, source_key, seen_at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
                [(system, key, ts(moment)) for key, moment in proposed.items()],
            )
            rows = self._a.rows(
                "SELECT source_key, seen_at FROM touch_first_seen"
                " WHERE system = ? AND source_key IN (SELECT value FROM json_each(?))",
                (system, id_list(list(proposed))),
            )
        return {row["source_key"]: from_ts(row["seen_at"]) for row in rows}

    def touchpoints_of(self, contact_golden_ids: Sequence[str]) -> dict[str, list[TouchpointRow]]:
        """The touchpoints of many contacts, by contact, each in time order; one query."""
        rows = self._a.rows(
            "SELECT * FROM touchpoints WHERE contact_golden_id IN (SELECT value FROM json_each(?))"
            " ORDER BY contact_golden_id, occurred_at, id",
            (id_list(contact_golden_ids),),
        )
        found: dict[str, list[TouchpointRow]] = {}
        for row in rows:
            found.setdefault(row["contact_golden_id"], []).append(_touchpoint(row))
        return found

    def move_touchpoints(self, from_golden: str, to_golden: str) -> int:
        """Credit one contact's touchpoints to another (after a merge); return how many moved."""
        with self._a.transaction.joined():
            cursor = self._a.conn.execute(
                "UPDATE touchpoints SET contact_golden_id = ? WHERE contact_golden_id = ?", (to_golden, from_golden)
            )
        return cursor.rowcount

    # -- rollups ----------------------------------------------------------------------------------------

    def put_rollups(self, values_by_contact: Mapping[str, Fields]) -> None:
        """Store the closed-loop values computed for many contacts, replacing their previous ones, in one statement."""
        now = self._a.now()
        with self._a.transaction.joined():
            self._a.conn.executemany(
                'INSERT INTO rollups (contact_golden_id, "values", updated_at) VALUES (?, ?, ?)'
                ' ON CONFLICT (contact_golden_id) DO UPDATE SET "values" = excluded."values",'
                " updated_at = excluded.updated_at",
                [(contact, dump_fields(values), now) for contact, values in values_by_contact.items()],
            )

    def get_rollups(self, contact_golden_ids: Sequence[str]) -> dict[str, Rollup]:
        """The rollups of many contacts that have one, by contact, in one query."""
        rows = self._a.rows(
            "SELECT * FROM rollups WHERE contact_golden_id IN (SELECT value FROM json_each(?))",
            (id_list(contact_golden_ids),),
        )
        return {
            row["contact_golden_id"]: Rollup(
                row["contact_golden_id"], load_json(row["values"]), from_ts(row["updated_at"])
            )
            for row in rows
        }

    # -- associations -----------------------------------------------------------------------------------

    def replace_deal_contacts(self, contacts_by_deal: Mapping[str, Iterable[str]]) -> None:
        """Make each deal's contacts exactly the ones given (no roles), many deals in two statements."""
        if not contacts_by_deal:
            return
        with self._a.transaction.joined():
            self._a.conn.execute(
                "DELETE FROM associations WHERE deal_golden_id IN (SELECT value FROM json_each(?))",
                (id_list(list(contacts_by_deal)),),
            )
            self._a.conn.executemany(
                "INSERT INTO associations (deal_golden_id, contact_golden_id, role) VALUES (?, ?, NULL)"
                " ON CONFLICT DO NOTHING",  # the deals' rows were just deleted: nothing to replace
                [(deal, c) for deal, contacts in contacts_by_deal.items() for c in dict.fromkeys(contacts)],
            )

    def contacts_of_deals(self, deal_golden_ids: Sequence[str]) -> dict[str, list[DealContact]]:
        """The contacts credited on each of many deals, by deal (every deal asked for, perhaps with none)."""
        found: dict[str, list[DealContact]] = {deal: [] for deal in deal_golden_ids}
        rows = self._a.rows(
            "SELECT * FROM associations WHERE deal_golden_id IN (SELECT value FROM json_each(?))"
            " ORDER BY deal_golden_id, contact_golden_id",
            (id_list(list(found)),),
        )
        for r in rows:
            found[r["deal_golden_id"]].append(DealContact(r["deal_golden_id"], r["contact_golden_id"], r["role"]))
        return found

    def deal_contacts(self, deal_golden_id: str) -> list[DealContact]:
        """The contacts credited on a deal."""
        return self.contacts_of_deals([deal_golden_id])[deal_golden_id]

    def deals_of_contact(self, contact_golden_id: str) -> list[DealContact]:
        """The deals a contact is credited on."""
        rows = self._a.rows(
            "SELECT * FROM associations WHERE contact_golden_id = ? ORDER BY deal_golden_id",
            (contact_golden_id,),
        )
        return [DealContact(r["deal_golden_id"], r["contact_golden_id"], r["role"]) for r in rows]

    # -- pending associations ---------------------------------------------------------------------------

    def add_pending_associations(self, pending: Iterable[PendingAssociation]) -> None:
        """Remember deal-contact links whose contact is not linked yet (re-adding one is harmless)."""
        now = self._a.now()
        with self._a.transaction.joined():
            self._a.conn.executemany(
                "INSERT INTO pending_associations (connection, deal_golden_id, system, object,"
                " contact_native_id, role, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT DO UPDATE SET role = excluded.role",
                [
                    (p.connection, p.deal_golden_id, p.system, p.object, p.contact_native_id, p.role, now)
                    for p in pending
                ],
            )

    def pending_for_contacts(
        self, system: str, object: str, contact_native_ids: Sequence[str]
    ) -> list[PendingAssociation]:
        """Pending links waiting for any of these native contacts, in one query."""
        rows = self._a.rows(
            "SELECT * FROM pending_associations WHERE system = ? AND object = ?"
            " AND contact_native_id IN (SELECT value FROM json_each(?)) ORDER BY created_at, deal_golden_id",
            (system, object, id_list(contact_native_ids)),
        )
        return [_pending(row) for row in rows]

    def pending_of_system(self, connection: str, system: str) -> list[PendingAssociation]:
        """Pending links of one connection waiting for contacts in ``system``."""
        rows = self._a.rows(
            "SELECT * FROM pending_associations WHERE connection = ? AND system = ?"
            " ORDER BY deal_golden_id, contact_native_id",
            (connection, system),
        )
        return [_pending(row) for row in rows]

    def replace_pending_associations(
        self, system: str, deal_golden_ids: Sequence[str], pending: Iterable[PendingAssociation]
    ) -> None:
        """Forget every pending link in ``system`` of these deals, then remember ``pending`` (theirs, as now)."""
        with self._a.transaction.joined():
            self._a.conn.execute(
                "DELETE FROM pending_associations WHERE system = ?"
                " AND deal_golden_id IN (SELECT value FROM json_each(?))",
                (system, id_list(deal_golden_ids)),
            )
            self.add_pending_associations(pending)
