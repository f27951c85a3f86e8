"""One page's view of the state store: read in bulk up front, changed in memory, written in bulk at the end.

Applying a page record by record would cost a dozen statements per record (its link, its golden record, the
golden record's other links, its match keys, the quarantine, the outbox). ``PageState`` loads what a page needs
in a few queries, answers the per-record questions from memory with the page's own changes laid over what was
loaded, and writes every change with one statement per table in ``flush``. The caller holds the transaction
around both, so the page still commits (or rolls back) as a whole.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime

from closeloop.engine.golden import GoldenState
from closeloop.store import record_key
from closeloop.store.api import StateStore
from closeloop.store.rows import Fields, Link, OutboxItem, PageDelta

LinkKey = tuple[str, str, str]
"""(system, object, native id)."""


def _key(link: Link) -> LinkKey:
    return (link.system, link.object, link.native_id)


class PageState:
    """Golden records, links, match keys and queued writes of one page, over one store."""

    def __init__(self, store: StateStore, now: datetime) -> None:
        self.store = store
        self.now = now
        self._stored_links: dict[LinkKey, Link | None] = {}
        self._stored_links_of: dict[str, list[Link]] = {}
        self._links: dict[LinkKey, Link | None] = {}
        """Links changed by this page (None: deleted)."""
        self._links_of: dict[str, dict[LinkKey, Link]] = {}
        """Links this page put, by golden id."""
        self._goldens: dict[str, GoldenState | None] = {}
        self._dirty: dict[str, GoldenState] = {}
        self._new: set[str] = set()
        """Golden records this page made (no match keys stored yet)."""
        self._deleted: set[str] = set()
        self._stored_matches: dict[tuple[str, str, str], list[str]] = {}
        self._keys: dict[str, tuple[str, dict[str, str]]] = {}
        """Match keys this page set, by golden id: (entity, keys)."""
        self._keyed: dict[tuple[str, str, str], dict[str, None]] = {}
        """The golden ids this page gave each (entity, key, value), in the order it did."""
        self._outbox: list[OutboxItem] = []
        self._live_quarantine: dict[tuple[str, str, str], set[str]] = {}
        self._resolved: dict[tuple[str, str, str], set[str]] = {}

    # -- loading ----------------------------------------------------------------------------------------

    def load_links(self, system: str, obj: str, native_ids: Sequence[str]) -> None:
        """Read the links of many native records of one object."""
        wanted = [i for i in native_ids if (system, obj, i) not in self._stored_links]
        found = self.store.find_links(system, obj, wanted)
        for native_id in wanted:
            self._stored_links[(system, obj, native_id)] = found.get(native_id)

    def load_goldens(self, golden_ids: Iterable[str]) -> None:
        """Read many golden records and all their links."""
        wanted = [g for g in dict.fromkeys(golden_ids) if g not in self._goldens]
        if not wanted:
            return
        rows = self.store.get_goldens(wanted)
        for golden_id in wanted:
            row = rows.get(golden_id)
            self._goldens[golden_id] = None if row is None else GoldenState.decode(row)
        missing = [g for g in wanted if g not in self._stored_links_of]
        for golden_id, links in self.store.links_of_many(missing, self._stored_links).items():
            self._stored_links_of[golden_id] = links
            for link in links:
                self._stored_links.setdefault(_key(link), link)

    def load_matches(self, entity: str, key: str, values: Sequence[str]) -> None:
        """Read which live golden records have each of these values of one match key."""
        wanted = [v for v in dict.fromkeys(values) if (entity, key, v) not in self._stored_matches]
        found = self.store.find_goldens_by_keys(entity, key, wanted)
        for value in wanted:
            self._stored_matches[(entity, key, value)] = found.get(value, [])

    def load_quarantine(self, connection: str, system: str, obj: str) -> None:
        """Read which records of one object are quarantined, so records that sync again are released in bulk."""
        where = (connection, system, obj)
        if where not in self._live_quarantine:
            self._live_quarantine[where] = self.store.quarantined_keys(connection, system, obj)

    # -- reading ----------------------------------------------------------------------------------------

    def link(self, system: str, obj: str, native_id: str) -> Link | None:
        """The link of one native record as this page left it."""
        key = (system, obj, native_id)
        if key in self._links:
            return self._links[key]
        if key not in self._stored_links:
            self._stored_links[key] = self.store.get_link(system, obj, native_id)
        return self._stored_links[key]

    def links_of(self, golden_id: str) -> list[Link]:
        """Every link of a golden record as this page left it, ordered by system, object, native id."""
        if golden_id not in self._stored_links_of:
            self._stored_links_of[golden_id] = self.store.links_of(golden_id)
        stored = [link for link in self._stored_links_of[golden_id] if _key(link) not in self._links]
        put = self._links_of.get(golden_id, {})
        return sorted([*stored, *put.values()], key=_key)

    def golden(self, golden_id: str) -> GoldenState | None:
        """A golden record as this page left it (the same object each time: changes to it are the page's)."""
        if golden_id not in self._goldens:
            self.load_goldens([golden_id])
        return self._goldens[golden_id]

    def goldens(self, golden_ids: Iterable[str]) -> dict[str, GoldenState]:
        """Many golden records as this page left them (the ones that exist)."""
        found = {golden_id: self.golden(golden_id) for golden_id in golden_ids}
        return {golden_id: golden for golden_id, golden in found.items() if golden is not None}

    def matches(self, entity: str, key: str, value: str) -> list[str]:
        """Live golden records of ``entity`` whose match key ``key`` has ``value``, as this page left them."""
        where = (entity, key, value)
        if where not in self._stored_matches:
            self.load_matches(entity, key, [value])
        stored = [g for g in self._stored_matches[where] if g not in self._keys and g not in self._deleted]
        mine = [g for g in self._keyed.get(where, ()) if g not in self._deleted]
        return stored + mine

    # -- changing ---------------------------------------------------------------------------------------

    def new_golden(self, entity: str) -> GoldenState:
        """A new, empty golden record (stored by ``put_golden``)."""
        golden = GoldenState(self.store.new_golden_id(), entity)
        self._goldens[golden.id] = golden
        self._new.add(golden.id)
        self._stored_links_of[golden.id] = []
        return golden

    def is_new(self, golden_id: str) -> bool:
        """True for a golden record this page made."""
        return golden_id in self._new

    def put_golden(self, golden: GoldenState) -> None:
        """Store a golden record's fields."""
        self._goldens[golden.id] = golden
        self._dirty[golden.id] = golden

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
        self._keys[golden_id] = (entity, {k: v for k, v in keys.items() if v})
        for key, value in self._keys[golden_id][1].items():
            self._keyed.setdefault((entity, key, value), {})[golden_id] = None

    def put_link(
        self,
        system: str,
        obj: str,
        native_id: str,
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
        key = (system, obj, native_id)
        old = self.link(system, obj, native_id)
        link = Link(
            system,
            obj,
            native_id,
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
        self._links_of.setdefault(golden_id, {})[key] = link
        return link

    def delete_link(self, system: str, obj: str, native_id: str) -> None:
        """Remove the link of one native record."""
        key = (system, obj, native_id)
        self._forget(key, self.link(system, obj, native_id))
        self._links[key] = None

    def _forget(self, key: LinkKey, old: Link | None) -> None:
        if old is not None:
            self._links_of.get(old.golden_id, {}).pop(key, None)

    def enqueue(self, items: Iterable[OutboxItem]) -> None:
        """Queue writes owed to other systems."""
        self._outbox.extend(items)

    def resolve_quarantine(
        self, connection: str, system: str, obj: str, *, native_id: str | None = None, golden_id: str | None = None
    ) -> None:
        """Release a quarantined record (by native id, or by golden id) that synced; a no-op unless quarantined."""
        where = (connection, system, obj)
        self.load_quarantine(connection, system, obj)
        key = record_key(native_id=native_id, golden_id=golden_id)
        if key in self._live_quarantine[where]:
            self._resolved.setdefault(where, set()).add(key)

    # -- writing ----------------------------------------------------------------------------------------

    def delta(self) -> PageDelta:
        """Every change of the page, as the store applies it; nothing is written."""
        keys: dict[str, list[tuple[str, Mapping[str, str]]]] = {}
        for golden_id, (entity, values) in self._keys.items():
            keys.setdefault(entity, []).append((golden_id, values))
        return PageDelta(
            goldens=[g.encode() for g in self._dirty.values()],
            deleted_goldens=sorted(self._deleted),
            unlinked=[key for key, link in self._links.items() if link is None],
            links=[link for link in self._links.values() if link is not None],
            keys=keys,
            new_goldens=frozenset(self._new),
            resolved={where: sorted(parked) for where, parked in self._resolved.items()},
            outbox=list(self._outbox),
        )

    def flush(self) -> None:
        """Write every change of the page, one statement per table; the caller holds the transaction."""
        self.store.apply_delta(self.delta())
