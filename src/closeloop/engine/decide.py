"""Decide: a page of one system's records and what the store held for them in, the page's delta out.

The middle step of load -> decide -> apply (``closeloop.engine.reconcile``), and a pure function: no store, no
clock (the time is an argument, new golden ids come from the caller), no cycle context. Per record: skip a
version already applied; a deleted or merged-away record tombstones, unlinks or retires its golden record;
otherwise link (a stored link wins), match (partner ids, then match keys; several candidates quarantine, never a
guess) or create; merge each field against the golden record (``closeloop.engine.fieldmerge``); queue the
writes owed elsewhere (``closeloop.engine.owed``). The rules each step follows are small functions of plain
values below, unit-tested on their own.
"""

from __future__ import annotations

import enum
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import NamedTuple

from closeloop.config.models import Connection, EntityMapping, OnDelete
from closeloop.engine.fieldmerge import MISSING, FieldState, Incoming, changed_fields, first_fields
from closeloop.engine.fieldtimes import NativeKey, Times, canonical_times, incoming_fields, owners, timed_conflicts
from closeloop.engine.golden import GoldenState
from closeloop.engine.loaded import Loaded, Mapped, match_value
from closeloop.engine.normalize import Canonical
from closeloop.engine.owed import items_owed
from closeloop.engine.partner import carried, claimed, claims, partner_key
from closeloop.engine.working import Working
from closeloop.model import NativeRecord, WriteOp
from closeloop.store.rows import Link, OutboxItem, PageDelta, Parked

# -- the rules, on plain values ----------------------------------------------------------------------------


def already_applied(record: NativeRecord, link: Link, mapped: Mapped | None) -> bool:
    """True for a version already applied: older than the last seen, or as old and with the same values.

    Vendors that stamp to the second give an edit made within the second of the last seen version the same
    modified time; its values tell it apart.
    """
    last = link.last_modified_at
    if last is None or record.modified_at > last:
        return False
    if record.modified_at < last or record.deleted or record.merged_into or mapped is None:
        return True
    values, problems = mapped
    snapshot = link.snapshot
    return not problems and all(snapshot.get(name, MISSING) == value for name, value in values.items())


class Pick(enum.Enum):
    """How a record finds its golden record."""

    LINKED = "linked"
    MATCHED = "matched"
    NEW = "new"
    AMBIGUOUS = "ambiguous"


class Choice(NamedTuple):
    """The golden record a record joins (None: a new one, or none when ambiguous) and how it was found."""

    pick: Pick
    golden_id: str | None = None
    candidates: tuple[str, ...] = ()


def choose(linked: str | None, partners: Sequence[str], matches: Sequence[str]) -> Choice:
    """A stored link wins; else the record's partner ids, else its match keys; several candidates are ambiguous."""
    if linked is not None:
        return Choice(Pick.LINKED, linked)
    candidates = tuple(partners or matches)
    if len(candidates) > 1:
        return Choice(Pick.AMBIGUOUS, None, candidates)
    if candidates:
        return Choice(Pick.MATCHED, candidates[0], candidates)
    return Choice(Pick.NEW)


def rival(links: Sequence[Link], system: str, obj: str, native_id: str) -> str | None:
    """Another live record of the same object already linked to a golden record (a duplicate there), if any."""
    return next(
        (
            k.native_id
            for k in links
            if (k.system, k.object) == (system, obj) and k.native_id != native_id and not k.deleted
        ),
        None,
    )


class Gone(enum.Enum):
    """What a deleted or merged-away record does to its link and golden record."""

    UNLINK = "unlink"
    TOMBSTONE = "tombstone"
    PROPAGATE = "propagate"
    RETIRE = "retire"
    """Merged into a record linked to another golden record: tombstone, and the golden record retires into it."""
    MERGED = "merged"
    """Merged into a record not linked elsewhere yet: tombstone; the golden record waits for the winner."""


def gone(policy: OnDelete, merged_into: str | None, golden_id: str, winner_golden_id: str | None) -> Gone:
    """The rule for a record that is gone: merges retire into the winner's golden record; deletions follow the
    mapping's ``on_delete``."""
    if merged_into:
        return Gone.RETIRE if winner_golden_id is not None and winner_golden_id != golden_id else Gone.MERGED
    if policy is OnDelete.UNLINK:
        return Gone.UNLINK
    return Gone.PROPAGATE if policy is OnDelete.PROPAGATE else Gone.TOMBSTONE


# -- one page ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PageRules:
    """What deciding a page needs besides its records and the loaded state."""

    connection: Connection
    mapping: EntityMapping
    system: str
    obj: str
    now: datetime
    times: Times = field(default_factory=dict)
    """Field change times read from the vendors (``fieldtimes``), by native record."""
    keep_last_seen: bool = False
    """Links keep their last-seen modified times (a version read outside the change stream, just before a write)."""


@dataclass
class Decided:
    """A page decided: its delta, and what the rest of the cycle needs to know about it."""

    delta: PageDelta
    touched: dict[str, str]
    """native id -> golden id, for the records applied."""
    changed: dict[str, set[str]]
    """golden id -> the canonical fields this page changed, for the golden records it touched."""
    merged: dict[str, str]
    """golden id of a record merged away -> golden id of the record it merged into."""
    goldens: dict[str, GoldenState]
    """The golden records touched, as the page left them."""
    counts: Counter[tuple[str, str | None]]
    """(counter, system or None) -> how many: read, skipped, matched, new, deleted, merged, quarantined."""


def decide(
    rules: PageRules,
    records: Sequence[NativeRecord],
    mapped: Mapping[str, Mapped],
    loaded: Loaded,
    new_id: Callable[[], str],
) -> Decided:
    """The delta of one page: ``mapped`` holds the canonical values of its live records, ``loaded`` what the
    store held for them (``closeloop.engine.loaded.load``)."""
    return _Page(rules, loaded, new_id).run(records, mapped)


class _Page:
    def __init__(self, rules: PageRules, loaded: Loaded, new_id: Callable[[], str]) -> None:
        self.rules, self.mapping, self.system, self.obj = rules, rules.mapping, rules.system, rules.obj
        self.other = rules.connection.other(rules.system)
        self.work = Working(loaded, rules.now, new_id)
        self.changed: dict[str, set[str]] = {}
        self.merged: dict[str, str] = {}
        self.counts: Counter[tuple[str, str | None]] = Counter()

    def run(self, records: Sequence[NativeRecord], mapped: Mapping[str, Mapped]) -> Decided:
        work, system, obj = self.work, self.system, self.obj
        touched: dict[str, str] = {}
        for record in records:
            link = work.link(system, obj, record.id)
            self.counts["read", system] += 1
            parked = link is None and record.id in work.loaded.parked
            if (link and already_applied(record, link, mapped.get(record.id))) or parked:
                self.counts["skipped", None] += 1  # re-read by the lookback window, already applied (or parked)
                continue
            if link and link.deleted:
                continue
            golden_id = self._apply(record, link, mapped.get(record.id))
            if golden_id:
                touched[record.id] = golden_id
        goldens = {g: golden for g in touched.values() if (golden := work.golden(g)) is not None}
        return Decided(
            work.delta((self.rules.connection.name, system, obj)),
            touched,
            {g: self.changed.get(g, set()) for g in touched.values()},
            self.merged,
            goldens,
            self.counts,
        )

    def _apply(self, record: NativeRecord, link: Link | None, mapped: Mapped | None) -> str | None:
        if record.deleted or record.merged_into or mapped is None:
            self._gone(record, link)
            return None
        values, problems = mapped
        if problems:
            self._park(record, "INVALID_VALUE", "; ".join(str(p) for p in problems), link)
            return None
        golden = self._golden_for(record, link, values)
        if golden is None:
            return None
        work, mapping, system = self.work, self.mapping, self.system
        own = self._own_times(record)
        targets = None
        if link is None and work.is_new(golden.id) and not golden.fields:
            # a first sync's bulk path: a record seen for the first time makes a new golden record of its own, and
            # owes that record nothing (it holds every value taken, and has no partner linked yet)
            changes = first_fields(mapping.fields, system, values, record.modified_at, own)
            targets = [self.other]
        else:
            incoming = incoming_fields(system, record, values, link.snapshot if link else None, own)
            changes = changed_fields(mapping.fields, self._timed(golden, incoming), incoming)
        golden.fields.update(changes)
        self.changed.setdefault(golden.id, set()).update(changes)
        if changes or link is None:
            work.put_golden(golden)
        partner = carried(mapping, system, record)
        work.put_link(
            (system, self.obj, record.id),
            golden.id,
            mapping.entity,
            last_modified_at=link.last_modified_at if link and self.rules.keep_last_seen else record.modified_at,
            snapshot={**(link.snapshot if link else {}), **values},
            partner_id=partner,
        )
        renamed = link is not None and (partner or "") != (link.partner_id or "")
        if link is None or renamed or any(key in changes for key in mapping.match):
            self._index_keys(golden)
        work.resolve(native_id=record.id)
        work.enqueue(items_owed(self.rules.connection, mapping, golden, system, work.links_of(golden.id), targets))
        return golden.id

    def _own_times(self, record: NativeRecord) -> dict[str, datetime]:
        """When each mapped field of ``record`` changed, where its vendor told (inline or asked)."""
        native = {**record.field_times, **self.rules.times.get((self.system, self.obj, record.id), {})}
        return canonical_times(self.mapping, self.system, self.obj, native)

    def _timed(self, golden: GoldenState, incoming: Mapping[str, Incoming]) -> dict[str, FieldState]:
        """The golden fields, those in a conflict settled by time carrying their setter's field change time."""
        conflicts = timed_conflicts(self.mapping, golden, incoming)
        if not conflicts:
            return golden.fields
        timed = dict(golden.fields)
        links = self.work.links_of(golden.id)
        for name, state in conflicts:
            for key in owners(links, state.by):
                at = self._field_time(key, name)
                if at is not None:
                    timed[name] = state._replace(at=at)
        return timed

    def _field_time(self, key: NativeKey, name: str) -> datetime | None:
        system, obj, _ = key
        return canonical_times(self.mapping, system, obj, self.rules.times.get(key, {})).get(name)

    def _golden_for(self, record: NativeRecord, link: Link | None, values: dict[str, Canonical]) -> GoldenState | None:
        work = self.work
        linked = work.golden(link.golden_id) if link is not None else None
        choice = choose(linked.id if linked else None, self._partners(record) if linked is None else (),
                        self._matches(values) if linked is None else ())  # fmt: skip
        if choice.pick is Pick.LINKED and linked is not None:
            return linked
        if choice.pick is Pick.AMBIGUOUS:
            names = ", ".join(choice.candidates)
            self._park(record, "AMBIGUOUS_MATCH", f"several golden records match: {names}", link)
            return None
        matched = work.golden(choice.golden_id) if choice.golden_id else None
        if matched is not None:
            duplicate = rival(work.links_of(matched.id), self.system, self.obj, record.id)
            if duplicate is not None:
                reason = f"{self.system} {self.obj} {duplicate} and {record.id} match the same record"
                self._park(record, "DUPLICATE", reason, link)
                return None
            self.counts["matched", self.system] += 1
            return matched
        self.counts["new", self.system] += 1
        return work.new_golden(self.mapping.entity)

    def _partners(self, record: NativeRecord) -> list[str]:
        """The golden record the other system's copy of ``record`` is linked to, found through partner ids: the
        record names a linked record there, or a linked record there names it."""
        work, named = self.work, claimed(self.mapping, self.system, record)
        for obj in self.mapping.objects(self.other) if named else ():
            found = work.link(self.other, obj, named or "")
            if found is not None and not found.deleted:
                golden = work.golden(found.golden_id)
                if golden is not None and not golden.deleted:
                    return [golden.id]
        return work.matches(self.mapping.entity, partner_key(self.system), record.id)

    def _matches(self, values: dict[str, Canonical]) -> list[str]:
        for key in self.mapping.match:
            value = match_value((values, []), key)
            found = self.work.matches(self.mapping.entity, key, value) if value else []
            if found:
                return found
        return []

    def _index_keys(self, golden: GoldenState) -> None:
        """Index the golden record's match keys and the partner ids its linked records carry."""
        keys = {key: golden.fields[key].value for key in self.mapping.match if key in golden.fields}
        plain_keys = {k: v for k, v in keys.items() if isinstance(v, str) and v}
        connection = self.rules.connection
        partners = claims(self.work.links_of(golden.id), {s: connection.other(s) for s in connection.systems})
        self.work.set_keys(golden.id, self.mapping.entity, {**plain_keys, **partners})

    def _gone(self, record: NativeRecord, link: Link | None) -> None:
        if link is None:
            return
        work, system = self.work, self.system
        self.counts["deleted", system] += 1
        # Writes it refused while it was being deleted or merged away (not found) are moot now: release them.
        work.resolve(native_id=record.id)
        work.resolve(golden_id=link.golden_id)
        winner = self._any_link(record.merged_into) if record.merged_into else None
        rule = gone(self.mapping.on_delete, record.merged_into, link.golden_id, winner.golden_id if winner else None)
        if rule is Gone.UNLINK:
            work.delete_link((system, self.obj, record.id))
            return
        work.put_link((system, self.obj, record.id), link.golden_id, link.entity,
                      last_modified_at=record.modified_at, deleted=True)  # fmt: skip
        if rule in (Gone.RETIRE, Gone.MERGED):
            self.counts["merged", system] += 1
        if rule is Gone.RETIRE and winner is not None:
            # The other system's copies of the loser stay linked to the retired golden record (duplicates there
            # now); a retired loser's credits and touches move to the winner (``closeloop.engine.merges``).
            work.mark_deleted(link.golden_id)
            self.merged[link.golden_id] = winner.golden_id
        elif rule is Gone.PROPAGATE:
            self._propagate_delete(link.golden_id)

    def _any_link(self, native_id: str | None) -> Link | None:
        for obj in self.mapping.objects(self.system):
            found = self.work.link(self.system, obj, native_id or "")
            if found is not None:
                return found
        return None

    def _propagate_delete(self, golden_id: str) -> None:
        connection, entity = self.rules.connection.name, self.mapping.entity
        self.work.enqueue(
            OutboxItem(connection, k.system, k.object, entity, golden_id, WriteOp.DELETE, native_id=k.native_id)
            for k in self.work.links_of(golden_id)
            if k.system != self.system and not k.deleted
        )
        self.work.mark_deleted(golden_id)

    def _park(self, record: NativeRecord, code: str, reason: str, link: Link | None) -> None:
        self.counts["quarantined", self.system] += 1
        self.work.park(
            Parked(self.rules.connection.name, self.system, self.obj, self.mapping.entity, code, reason,
                   native_id=record.id, golden_id=link.golden_id if link else None,
                   payload={"fields": dict(record.fields)}, modified_at=record.modified_at)
        )  # fmt: skip
        # Advance past it: the record is retried when it changes again or on request, never blocks the page.
        if link is not None:
            self.work.put_link((self.system, self.obj, record.id), link.golden_id, link.entity,
                               last_modified_at=record.modified_at)  # fmt: skip
