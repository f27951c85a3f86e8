"""Load: what deciding one page needs from the state store, read in a few bulk queries into a plain snapshot.

The first step of load -> decide -> apply (``closeloop.engine.reconcile``). Everything ``decide`` may ask about a
page is read here, inside the page's transaction: the links of the page's records, of the records they name as
partners and of the records they merged into; the golden records they lead to or match, with every link of
those; the match keys their values and ids hit; and which of them are quarantined. ``decide`` reads nothing
else: what is not in the snapshot does not exist.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from closeloop.config.models import EntityMapping
from closeloop.engine.mapper import MappingProblem
from closeloop.engine.normalize import Canonical
from closeloop.engine.partner import claimed, partner_key
from closeloop.model import NativeRecord
from closeloop.store.api import StateStore
from closeloop.store.rows import Golden, Link

LinkKey = tuple[str, str, str]
"""(system, object, native id)."""

MatchKey = tuple[str, str, str]
"""(entity, match key, value)."""

Mapped = tuple[dict[str, Canonical], list[MappingProblem]]
"""A record's canonical values and the problems mapping it."""


def link_key(link: Link) -> LinkKey:
    """Where a link sits: (system, object, native id)."""
    return (link.system, link.object, link.native_id)


@dataclass(frozen=True)
class Loaded:
    """What the store held for one page when it was loaded; never changed afterwards."""

    links: Mapping[LinkKey, Link]
    """Every link read, by (system, object, native id); a key absent here has no link."""
    links_of: Mapping[str, Sequence[Link]]
    """Golden id -> every link of that golden record, for the golden records in ``goldens`` (and more)."""
    goldens: Mapping[str, Golden]
    """The golden records the page's records lead to or match, by id."""
    matches: Mapping[MatchKey, Sequence[str]]
    """(entity, key, value) -> the live golden records holding that match-key value, for the values asked."""
    quarantined: frozenset[str]
    """Record keys (``n:<native id>``, ``g:<golden id>``) of the live quarantine entries of the page's object."""
    parked: frozenset[str]
    """Native ids of unlinked records whose very version is quarantined (not news until it changes)."""


EMPTY = Loaded({}, {}, {}, {}, frozenset(), frozenset())
"""A store that holds nothing (a first sync's first page, or a unit test's start)."""


def load(
    store: StateStore,
    connection: str,
    mapping: EntityMapping,
    system: str,
    other: str,
    obj: str,
    records: Sequence[NativeRecord],
    mapped: Mapping[str, Mapped],
) -> Loaded:
    """Read what deciding ``records`` (of ``obj`` in ``system``; ``other`` is the system across) needs."""
    reader = _Reader(store, mapping.entity)
    reader.links(system, obj, [r.id for r in records])
    own = {r.id: reader.found.get((system, obj, r.id)) for r in records}
    unlinked = [r for r in records if own[r.id] is None]
    versions = store.quarantined_versions(connection, system, obj, [r.id for r in unlinked]) if unlinked else {}
    reader.goldens(link.golden_id for link in own.values() if link is not None)
    unmatched = [r for r in records if (link := own[r.id]) is None or link.golden_id not in reader.rows]
    named = [partner for r in unmatched if (partner := claimed(mapping, system, r))]
    for other_obj in mapping.objects(other) if named else ():
        reader.links(other, other_obj, named)
    candidates = [
        link.golden_id for p in named for o in mapping.objects(other) if (link := reader.found.get((other, o, p)))
    ]
    candidates += reader.matches(partner_key(system), [r.id for r in unmatched])
    for key in mapping.match:
        candidates += reader.matches(key, [v for r in unmatched if (v := match_value(mapped.get(r.id), key))])
    winners = [r.merged_into for r in records if r.merged_into and own[r.id] is not None]
    for own_obj in mapping.objects(system) if winners else ():
        reader.links(system, own_obj, winners)
    reader.goldens(candidates)
    return Loaded(
        reader.found,
        reader.links_of,
        reader.rows,
        reader.keyed,
        frozenset(store.quarantined_keys(connection, system, obj)),
        frozenset(r.id for r in unlinked if versions.get(r.id) == r.modified_at),
    )


def match_value(mapped: Mapped | None, key: str) -> str | None:
    """A record's value of one match key, when it maps without problems and the value is a non-empty text."""
    if mapped is None or mapped[1]:
        return None
    value = mapped[0].get(key)
    return value if isinstance(value, str) and value else None


class _Reader:
    """The bulk reads of one load, each asking only for what no earlier read of the load answered."""

    def __init__(self, store: StateStore, entity: str) -> None:
        self.store, self.entity = store, entity
        self.found: dict[LinkKey, Link] = {}
        self.asked: set[LinkKey] = set()
        self.rows: dict[str, Golden] = {}
        self.links_of: dict[str, list[Link]] = {}
        self.keyed: dict[MatchKey, list[str]] = {}

    def links(self, system: str, obj: str, native_ids: Iterable[str]) -> None:
        wanted = [i for i in dict.fromkeys(native_ids) if (system, obj, i) not in self.asked]
        if not wanted:
            return
        self.asked.update((system, obj, i) for i in wanted)
        for native_id, link in self.store.find_links(system, obj, wanted).items():
            self.found[(system, obj, native_id)] = link

    def goldens(self, golden_ids: Iterable[str]) -> None:
        wanted = [g for g in dict.fromkeys(golden_ids) if g not in self.links_of]
        if not wanted:
            return
        self.rows.update(self.store.get_goldens(wanted))
        known: dict[LinkKey, Link | None] = dict(self.found)
        for golden_id, links in self.store.links_of_many(wanted, known).items():
            self.links_of[golden_id] = links
            for link in links:
                self.found.setdefault(link_key(link), link)
                self.asked.add(link_key(link))

    def matches(self, key: str, values: Sequence[str]) -> list[str]:
        wanted = [v for v in dict.fromkeys(values) if (self.entity, key, v) not in self.keyed]
        if not wanted:
            return []
        found = self.store.find_goldens_by_keys(self.entity, key, wanted)
        for value in wanted:
            self.keyed[(self.entity, key, value)] = list(found.get(value, []))
        return [g for v in wanted for g in self.keyed[(self.entity, key, v)]]
