"""Match keys of golden records (normalized email, external ids), so first-time matching is one indexed lookup."""

from __future__ import annotations

from collections.abc import Mapping

from closeloop.store.db import Access


class KeyTables:
    """The golden_keys table: canonical match-key values of each golden record."""

    _a: Access

    def set_golden_keys(self, golden_id: str, entity: str, keys: Mapping[str, str]) -> None:
        """Replace the match-key values of one golden record."""
        with self._a.transaction():
            self._a.conn.execute("DELETE FROM golden_keys WHERE golden_id = ?", (golden_id,))
            self._a.conn.executemany(
                "INSERT OR IGNORE INTO golden_keys (entity, key, value, golden_id) VALUES (?, ?, ?, ?)",
                [(entity, key, value, golden_id) for key, value in keys.items() if value],
            )

    def find_goldens_by_key(self, entity: str, key: str, value: str) -> list[str]:
        """Live golden records of ``entity`` whose match key ``key`` has ``value``, oldest first."""
        rows = self._a.rows(
            "SELECT k.golden_id FROM golden_keys k JOIN golden g ON g.id = k.golden_id"
            " WHERE k.entity = ? AND k.key = ? AND k.value = ? AND g.deleted = 0 ORDER BY g.created_at, g.id",
            (entity, key, value),
        )
        return [str(row[0]) for row in rows]
