"""Match keys of golden records (normalized email, external ids), so first-time matching is one indexed lookup."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence

from closeloop.store.db import Access, id_list


class KeyTables:
    """The golden_keys table: canonical match-key values of each golden record."""

    _a: Access

    def set_golden_keys(
        self, entity: str, keys: Sequence[tuple[str, Mapping[str, str]]], *, new: Collection[str] = ()
    ) -> None:
        """Replace the match-key values of golden records of one entity, given as (golden id, keys).

        Golden ids in ``new`` were made in this transaction and have no keys yet: nothing of theirs is deleted.
        """
        if not keys:
            return
        with self._a.transaction.joined():
            old = [(golden_id,) for golden_id, _ in keys if golden_id not in new]
            if old:
                self._a.conn.executemany("DELETE FROM golden_keys WHERE golden_id = ?", old)
            self._a.conn.executemany(
                "INSERT INTO golden_keys (entity, key, value, golden_id) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
                [
                    (entity, key, value, golden_id)
                    for golden_id, values in keys
                    for key, value in values.items()
                    if value
                ],
            )

    def find_goldens_by_keys(self, entity: str, key: str, values: Sequence[str]) -> dict[str, list[str]]:
        """Live golden records of ``entity`` by each value of match key ``key`` (oldest first), in one query.

        Values no live golden record has are left out.
        """
        found: dict[str, list[str]] = {}
        if not values:
            return found
        rows = self._a.rows(
            "SELECT k.value, k.golden_id FROM golden_keys k JOIN golden g ON g.id = k.golden_id"
            " WHERE k.entity = ? AND k.key = ? AND k.value IN (SELECT value FROM json_each(?)) AND g.deleted = 0"
            " ORDER BY g.created_at, g.id",
            (entity, key, id_list(list(dict.fromkeys(values)))),
        )
        for row in rows:
            found.setdefault(str(row[0]), []).append(str(row[1]))
        return found

    def find_goldens_by_key(self, entity: str, key: str, value: str) -> list[str]:
        """Live golden records of ``entity`` whose match key ``key`` has ``value``, oldest first."""
        rows = self._a.rows(
            "SELECT k.golden_id FROM golden_keys k JOIN golden g ON g.id = k.golden_id"
            " WHERE k.entity = ? AND k.key = ? AND k.value = ? AND g.deleted = 0 ORDER BY g.created_at, g.id",
            (entity, key, value),
        )
        return [str(row[0]) for row in rows]
