"""A page's changes as ``decide`` makes them, over the ``Loaded`` snapshot: what it reads back, and the delta.

Records of one page see each other's effects (two records with one new email make one golden record, the second
finds the first's link), so deciding a page keeps its own changes beside what was loaded. ``Working`` is that and
nothing more: plain dictionaries of the page's links, golden records, match keys, outbox items and quarantine
entries, read through the snapshot; it never reads the store and never looks at a clock.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import datetime

from closeloop.engine.golden import GoldenState
from closeloop.engine.loaded import LinkKey, Loaded, MatchKey, link_key
from closeloop.store import record_key
from closeloop.store.rows import Fields, Link, OutboxItem, PageDelta, Parked


class Working:
    """The links, golden records, match keys and queued writes of one page, as the page has left them so far."""

    def __init__(self, loaded: Loaded, now: datetime, new_id: Callable[[], str]) -> None:
        self.loaded, self.now, self._new_id = loaded, now, new_id
        self._links: dict[LinkKey, Link | None] = {}
        """Links this page put (None: removed)."""
        self._put_of: dict[str, dict[LinkKey, Link]] = {}
        """Links this page put, by golden id."""
        self._goldens: dict[str, GoldenState] = {}
        """Golden records decoded (or made) by this page: the same object each time, changed in place."""
        self._dirty: dict[str, None] = {}
        self._new: set[str] = set()
        self._deleted: set[str] = set()
        self._keys: dict[str, tuple[str, dict[str, str]]] = {}
        """Match keys this page set, by golden id: (entity, keys)."""
        self._keyed: dict[MatchKey, dict[str, None]] = {}
        """The golden ids this page gave each (entity, key, value), in the order it did."""
        self.outbox: list[OutboxItem] = []
        self.parked: list[Parked] = []
        self._resolved: set[str] = set()

    # -- reading ----------------------------------------------------------------------------------------

    def link(self, system: str, obj: str, native_id: str) -> Link | None:
        """The link of one native record as this page left it."""
        key = (system, obj, native_id)
        return self._links[key] if key in self._links else self.loaded.links.get(key)

    def links_of(self, golden_id: str) -> list[Link]:
        """Every link of a golden record as this page left it, ordered by system, object, native id."""
        stored = [k for k in self.loaded.links_of.get(golden_id, ()) if link_key(k) not in self._links]
        return sorted([*stored, *self._put_of.get(golden_id, {}).values()], key=link_key)

    def golden(self, golden_id: str) -> GoldenState | None:
        """A golden record as this page left it, or None."""
        found = self._goldens.get(golden_id)
        if found is None:
            row = self.loaded.goldens.get(golden_id)
            if row is None:
                return None
            found = self._goldens[golden_id] = GoldenState.decode(row)
        return found

    def matches(self, entity: str, key: str, value: str) -> list[str]:
        """Live golden records of ``entity`` whose match key ``key`` has ``value``, as this page left them."""
        where = (entity, key, value)
        stored = [g for g in self.loaded.matches.get(where, ()) if g not in self._keys and g not in self._deleted]
        return stored + [g for g in self._keyed.get(where, ()) if g not in self._deleted]

    def is_new(self, golden_id: str) -> bool:
        """True for a golden record this page made."""
        return golden_id in self._new

    # -- changing ---------------------------------------------------------------------------------------

    def new_golden(self, entity: str) -> GoldenState:
        """A new, empty golden record."""
        golden = GoldenState(self._new_id(), entity)
        self._goldens[golden.id] = golden
        self._new.add(golden.id)
        return golden

    def put_golden(self, golden: GoldenState) -> None:
        """Write a golden record's fields."""
        self._goldens[golden.id] = golden
        self._dirty[golden.id] = None

    def mark_deleted(self, golden_id: str) -> None:
        """Flag a golden record deleted (it stays, so a merged-away record is never resurrected)."""
        golden = self.golden(golden_id)
        if golden is not None:
            golden.deleted = True
            self._deleted.add(golden_id)

    def set_keys(self, golden_id: str, entity: str, keys: Mapping[str, str]) -> None:
        """Replace the match-key values of a golden record."""
        if golden_id in self._keys:
            before, old = self._keys[golden_id]
            for key, value in old.items():
                self._keyed.get((before, key, value), {}).pop(golden_id, None)
        kept = {k: v for k, v in keys.items() if v}
        self._keys[golden_id] = (entity, kept)
        for key, value in kept.items():
            self._keyed.setdefault((entity, key, value), {})[golden_id] = None

    def put_link(
        self,
        key: LinkKey,
        golden_id: str,
        entity: str,
        *,
        last_modified_at: datetime | None = None,
        snapshot: Fields | None = None,
        deleted: bool | None = None,
        partner_id: str | None = None,
    ) -> Link:
        """Create or update a link; None keeps the current ``last_modified_at``, ``snapshot``, ``deleted`` or
        ``partner_id``."""
        old = self.link(*key)
        link = Link(
            *key,
            golden_id,
            entity,
            last_modified_at if last_modified_at is not None else (old.last_modified_at if old else None),
            dict(snapshot) if snapshot is not None else (dict(old.snapshot) if old else {}),
            old.linked_at if old is not None and old.golden_id == golden_id else self.now,
            deleted if deleted is not None else (old.deleted if old else False),
            partner_id if partner_id is not None else (old.partner_id if old else None),
            old.associated if old else (),
        )
        self._forget(key, old)
        self._links[key] = link
        self._put_of.setdefault(golden_id, {})[key] = link
        return link

    def delete_link(self, key: LinkKey) -> None:
        """Remove the link of one native record."""
        self._forget(key, self.link(*key))
        self._links[key] = None

    def _forget(self, key: LinkKey, old: Link | None) -> None:
        if old is not None:
            self._put_of.get(old.golden_id, {}).pop(key, None)

    def enqueue(self, items: Iterable[OutboxItem]) -> None:
        """Queue writes owed to other systems."""
        self.outbox.extend(items)

    def park(self, entry: Parked) -> None:
        """Quarantine a record."""
        self.parked.append(entry)

    def resolve(self, *, native_id: str | None = None, golden_id: str | None = None) -> None:
        """Release a quarantined record of the page's object that synced; a no-op unless it is quarantined."""
        key = record_key(native_id=native_id, golden_id=golden_id)
        if key in self.loaded.quarantined:
            self._resolved.add(key)

    # -- the delta --------------------------------------------------------------------------------------

    def delta(self, where: tuple[str, str, str]) -> PageDelta:
        """Every change of the page, as the store applies it; ``where`` is the page's (connection, system, object)."""
        keys: dict[str, list[tuple[str, Mapping[str, str]]]] = {}
        for golden_id, (entity, values) in self._keys.items():
            keys.setdefault(entity, []).append((golden_id, values))
        return PageDelta(
            goldens=[self._goldens[g].encode() for g in self._dirty],
            deleted_goldens=sorted(self._deleted),
            unlinked=[key for key, link in self._links.items() if link is None],
            links=[link for link in self._links.values() if link is not None],
            keys=keys,
            new_goldens=frozenset(self._new),
            resolved={where: sorted(self._resolved)} if self._resolved else {},
            outbox=list(self.outbox),
            parked=list(self.parked),
        )
