"""A page's changes written at once: the table code both back-ends share for ``StateStore.apply_delta``."""

from __future__ import annotations

from closeloop.store.key_tables import KeyTables
from closeloop.store.queue_tables import QueueTables
from closeloop.store.rows import PageDelta
from closeloop.store.sync_tables import SyncTables


class DeltaTables(SyncTables, KeyTables, QueueTables):
    """Golden records, links, match keys, released quarantine and the outbox of one page, table by table."""

    def apply_delta(self, delta: PageDelta) -> None:
        """Write a page's changes with one statement per table, in the caller's transaction (or one of its own)."""
        with self._a.transaction.joined():
            self.put_goldens(delta.goldens)
            if delta.deleted_goldens:
                now = self._a.now()
                self._a.conn.executemany(
                    "UPDATE golden SET deleted = 1, updated_at = ? WHERE id = ?",
                    [(now, golden_id) for golden_id in sorted(delta.deleted_goldens)],
                )
            self.delete_links(delta.unlinked)
            self.put_links(delta.links)
            for entity, keys in delta.keys.items():
                self.set_golden_keys(entity, keys, new=delta.new_goldens)
            for p in delta.parked:
                self.quarantine(p.connection, p.system, p.object, p.entity, code=p.code, reason=p.reason,
                                native_id=p.native_id, golden_id=p.golden_id, payload=p.payload,
                                modified_at=p.modified_at)  # fmt: skip
            for (connection, system, obj), parked in delta.resolved.items():
                self.resolve_quarantine_keys(connection, system, obj, parked)
            self.enqueue(delta.outbox)
            if delta.done:
                self.outbox_done(delta.done)
