"""Sales activities: the calls, emails, meetings and tasks of CRM users on people, for the follow-up SLA."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from closeloop.model import SalesActivity
from closeloop.store.db import Access, from_ts, id_list, ts


@dataclass(frozen=True, slots=True)
class ActivityRow:
    """A stored sales activity of one golden contact: its system, kind, when it was done and its owner."""

    contact_golden_id: str
    system: str
    activity_id: str
    kind: str
    occurred_at: datetime
    owner: str | None = None


class ActivityTables:
    """The ``sales_activities`` table."""

    _a: Access

    def put_activities(self, system: str, activities: Iterable[SalesActivity]) -> int:
        """Record a stream page's activities: each activity id's rows are replaced by its done versions in the
        page (one per person it names); a deleted or undone one leaves none (it no longer counts as a follow-up).
        Return how many rows were written or removed."""
        page = list(activities)
        gone = [(system, activity_id) for activity_id in dict.fromkeys(a.id for a in page)]
        done = [
            (system, a.id, a.person_object, a.person_id, a.kind, ts(a.occurred_at), a.owner)
            for a in page
            if not a.deleted and a.occurred_at is not None and a.person_id
        ]
        with self._a.transaction():
            before = self._a.conn.total_changes
            self._a.conn.executemany("DELETE FROM sales_activities WHERE system = ? AND activity_id = ?", gone)
            self._a.conn.executemany(
                "INSERT OR REPLACE INTO sales_activities (system, activity_id, person_object, person_id, kind,"
                " occurred_at, owner) VALUES (?, ?, ?, ?, ?, ?, ?)",
                done,
            )
            return self._a.conn.total_changes - before

    def activities_of(self, contact_golden_ids: Sequence[str]) -> dict[str, list[ActivityRow]]:
        """The activities of many contacts, through the links of their people, by contact in time order."""
        rows = self._a.rows(
            "SELECT l.golden_id, a.system, a.activity_id, a.kind, a.occurred_at, a.owner FROM sales_activities a"
            " JOIN links l ON l.system = a.system AND l.object = a.person_object AND l.native_id = a.person_id"
            " WHERE l.golden_id IN (SELECT value FROM json_each(?)) ORDER BY l.golden_id, a.occurred_at, a.activity_id",
            (id_list(contact_golden_ids),),
        )
        found: dict[str, list[ActivityRow]] = {}
        for row in rows:
            found.setdefault(row["golden_id"], []).append(
                ActivityRow(
                    row["golden_id"],
                    row["system"],
                    row["activity_id"],
                    row["kind"],
                    from_ts(row["occurred_at"]),
                    row["owner"],
                )
            )
        return found
