"""Kept original sources: one row per contact, the first-known way it found us (write-once, see
``closeloop.engine.source``)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from closeloop.store.db import Access, Row, from_ts, from_ts_or_none, id_list, ts, ts_or_none
from closeloop.store.rows import KeptSource


def _kept(row: Row) -> KeptSource:
    return KeptSource(
        contact_golden_id=row["contact_golden_id"],
        captured_at=from_ts(row["captured_at"]),
        source_type=row["source_type"],
        detail=row["detail"],
        utm_source=row["utm_source"],
        utm_medium=row["utm_medium"],
        utm_campaign=row["utm_campaign"],
        first_touch_at=from_ts_or_none(row["first_touch_at"]),
        system=row["system"],
    )


class SourceTables:
    """The ``original_sources`` table."""

    _a: Access

    def original_sources(self, contact_golden_ids: Sequence[str]) -> dict[str, KeptSource]:
        """The kept original sources of the contacts among ``contact_golden_ids`` that have one, in one query."""
        rows = self._a.rows(
            "SELECT * FROM original_sources WHERE contact_golden_id IN (SELECT value FROM json_each(?))",
            (id_list(list(dict.fromkeys(contact_golden_ids))),),
        )
        return {row["contact_golden_id"]: _kept(row) for row in rows}

    def put_original_sources(self, sources: Iterable[KeptSource]) -> int:
        """Create or replace the kept original sources of many contacts in one statement; return how many."""
        rows = [
            (
                s.contact_golden_id,
                s.source_type,
                s.detail,
                s.utm_source,
                s.utm_medium,
                s.utm_campaign,
                ts_or_none(s.first_touch_at),
                s.system,
                ts(s.captured_at),
            )
            for s in sources
        ]
        if not rows:
            return 0
        with self._a.transaction.joined():
            self._a.conn.executemany(
                "INSERT INTO original_sources (contact_golden_id, source_type, detail, utm_source, utm_medium,"
                " utm_campaign, first_touch_at, system, captured_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (contact_golden_id) DO UPDATE SET source_type = excluded.source_type,"
                " detail = excluded.detail, utm_source = excluded.utm_source, utm_medium = excluded.utm_medium,"
                " utm_campaign = excluded.utm_campaign, first_touch_at = excluded.first_touch_at,"
                " system = excluded.system, captured_at = excluded.captured_at",
                rows,
            )
        return len(rows)
