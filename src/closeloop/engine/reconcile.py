"""Apply one page of one system's changes: link or match, merge each field, queue the writes owed elsewhere.

Everything a page changes (golden records, links, outbox, quarantine, the cursor) is written by the caller's
single transaction, so a crash leaves either the whole page applied or none of it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from closeloop.config.models import EntityMapping, OnDelete
from closeloop.engine.context import CycleContext
from closeloop.engine.fieldmerge import MISSING, FieldState, Incoming, changed_fields, first_fields
from closeloop.engine.fieldtimes import NativeKey, Times, canonical_times, incoming_fields, owners, timed_conflicts
from closeloop.engine.golden import GoldenState
from closeloop.engine.mapper import MappingProblem, to_canonical_fields
from closeloop.engine.normalize import Canonical
from closeloop.engine.owed import owed_items
from closeloop.engine.pagestate import PageState
from closeloop.engine.partner import carried, claimed, claims, partner_key
from closeloop.model import NativeRecord, WriteOp
from closeloop.store.rows import Link, OutboxItem

Mapped = tuple[dict[str, Canonical], list[MappingProblem]]
"""A record's canonical values and the problems mapping it."""

READ_CODES = frozenset({"INVALID_VALUE", "AMBIGUOUS_MATCH", "DUPLICATE"})
"""Quarantine codes of records quarantined while being read (the others are writes a system refused)."""


@dataclass
class PageResult:
    """The golden ids a page touched (deals use them for associations and the ledger)."""

    touched: dict[str, str]
    """native id -> golden id, for the records applied."""
    changed: dict[str, set[str]]
    """golden id -> the canonical fields this page changed, for the golden records it touched."""
    merged: dict[str, str] = field(default_factory=dict)
    """golden id of a record merged away -> golden id of the record it merged into, for the merges applied."""


class PageApplier:
    """Applies pages of one native object of one system to the golden records."""

    def __init__(self, ctx: CycleContext, mapping: EntityMapping, system: str, obj: str) -> None:
        self.ctx, self.mapping, self.system, self.obj = ctx, mapping, system, obj
        self.page = PageState(ctx.store, ctx.clock())
        self._changed: dict[str, set[str]] = {}
        self._times: Times = {}
        self._keep_last_seen = False
        self._merged: dict[str, str] = {}

    def apply(
        self, records: Sequence[NativeRecord], times: Times | None = None, *, keep_last_seen: bool = False
    ) -> PageResult:
        """Apply a page; the caller holds the transaction.

        ``times`` are field change times read from the vendors (see ``fieldtimes.asked``). With
        ``keep_last_seen`` the links keep their last-seen modified times: a version read outside the change
        stream (just before a write) is merged, and the stream still hands it over as news.
        """
        self.page = page = PageState(self.ctx.store, self.ctx.clock())
        self._changed, self._merged = {}, {}
        self._times = times or {}
        self._keep_last_seen = keep_last_seen
        mapped = self._prefetch(records)
        touched: dict[str, str] = {}
        quarantined = self._quarantined([r for r in records if page.link(self.system, self.obj, r.id) is None])
        for record in records:
            link = page.link(self.system, self.obj, record.id)
            self.ctx.count("read", self.system)
            if (link and self._seen(record, link, mapped.get(record.id))) or record.id in quarantined:
                self.ctx.count("skipped")  # re-read by the lookback window, already applied (or quarantined)
                continue
            if link and link.deleted:
                continue
            golden_id = self._apply_one(record, link, mapped.get(record.id))
            if golden_id:
                touched[record.id] = golden_id
        page.flush()
        return PageResult(touched, {g: self._changed.get(g, set()) for g in touched.values()}, self._merged)

    def fresh(self, records: Sequence[NativeRecord]) -> list[NativeRecord]:
        """The records of a page that are versions not applied yet (one query; nothing is written).

        Only a guide for what to ask the vendor before the page's transaction: ``apply`` reads the links again
        inside the transaction, where they cannot change under it.
        """
        links = self.ctx.store.find_links(self.system, self.obj, [r.id for r in records])
        quarantined = self._quarantined([r for r in records if r.id not in links])
        found = []
        for record in records:
            link = links.get(record.id)
            if record.id in quarantined:
                continue
            if link is None or link.last_modified_at is None or record.modified_at > link.last_modified_at:
                found.append(record)
            elif record.modified_at == link.last_modified_at and not (record.deleted or record.merged_into):
                mapped = to_canonical_fields(self.mapping, self.system, self.obj, record.fields, self.ctx.owners)
                if not self._seen(record, link, mapped):
                    found.append(record)
        return found

    def _quarantined(self, unlinked: Sequence[NativeRecord]) -> set[str]:
        """The unlinked records whose very version is quarantined (not news until it changes)."""
        if not unlinked:
            return set()
        versions = self.ctx.store.quarantined_versions(self.ctx.name, self.system, self.obj, [r.id for r in unlinked])
        return {r.id for r in unlinked if versions.get(r.id) == r.modified_at}

    def _prefetch(self, records: Sequence[NativeRecord]) -> dict[str, Mapped]:
        """Map the page's live records and read, in bulk, every link, golden record and match they need."""
        page, entity = self.page, self.mapping.entity
        page.load_links(self.system, self.obj, [r.id for r in records])
        page.load_quarantine(self.ctx.name, self.system, self.obj)
        mapped = {
            r.id: to_canonical_fields(self.mapping, self.system, self.obj, r.fields, self.ctx.owners)
            for r in records
            if not (r.deleted or r.merged_into)
        }
        linked = [page.link(self.system, self.obj, r.id) for r in records]
        page.load_goldens(link.golden_id for link in linked if link is not None)
        unlinked = [values for r, link in zip(records, linked, strict=True) if link is None
                    for values, problems in [mapped.get(r.id, ({}, []))] if not problems]  # fmt: skip
        candidates = self._prefetch_partners([r for r, link in zip(records, linked, strict=True) if link is None])
        for key in self.mapping.match:
            wanted = [v for values in unlinked if isinstance(v := values.get(key), str) and v]
            page.load_matches(entity, key, wanted)
            candidates.extend(g for v in wanted for g in page.matches(entity, key, v))
        page.load_goldens(candidates)
        return mapped

    def _prefetch_partners(self, unlinked: Sequence[NativeRecord]) -> list[str]:
        """Read the links of the partner ids unlinked records carry, and the golden records naming them."""
        page, other = self.page, self.ctx.connection.other(self.system)
        named = [partner for r in unlinked if (partner := claimed(self.mapping, self.system, r))]
        found: list[str] = []
        for obj in self.mapping.objects(other) if named else ():
            page.load_links(other, obj, named)
            found.extend(link.golden_id for p in named if (link := page.link(other, obj, p)) is not None)
        key = partner_key(self.system)
        ids = [r.id for r in unlinked]
        page.load_matches(self.mapping.entity, key, ids)
        found.extend(g for native_id in ids for g in page.matches(self.mapping.entity, key, native_id))
        return found

    def _seen(self, record: NativeRecord, link: Link, mapped: Mapped | None) -> bool:
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

    def _apply_one(self, record: NativeRecord, link: Link | None, mapped: Mapped | None) -> str | None:
        if record.deleted or record.merged_into or mapped is None:
            self._apply_gone(record, link)
            return None
        values, problems = mapped
        if problems:
            self._quarantine(record, "INVALID_VALUE", "; ".join(str(p) for p in problems), link)
            return None
        golden = self._golden_for(record, link, values)
        if golden is None:
            return None
        if link is None and self.page.is_new(golden.id) and not golden.fields:
            # a first sync's bulk path: a record seen for the first time makes a new golden record of its own
            changes = first_fields(
                self.mapping.fields, self.system, values, record.modified_at, self._own_times(record)
            )
        else:
            snapshot = link.snapshot if link else None
            incoming = incoming_fields(self.system, record, values, snapshot, self._own_times(record))
            changes = changed_fields(self.mapping.fields, self._timed(golden, incoming), incoming)
        golden.fields.update(changes)
        self._changed.setdefault(golden.id, set()).update(changes)
        page = self.page
        if changes or link is None:
            page.put_golden(golden)
        partner = carried(self.mapping, self.system, record)
        page.put_link(
            self.system,
            self.obj,
            record.id,
            golden.id,
            self.mapping.entity,
            last_modified_at=link.last_modified_at if link and self._keep_last_seen else record.modified_at,
            snapshot={**(link.snapshot if link else {}), **values},
            partner_id=partner,
        )
        renamed = link is not None and (partner or "") != (link.partner_id or "")
        if link is None or renamed or any(key in changes for key in self.mapping.match):
            self._index_keys(golden)
        page.resolve_quarantine(self.ctx.name, self.system, self.obj, native_id=record.id)
        page.enqueue(owed_items(self.ctx, self.mapping, golden, source=self.system, links=page.links_of(golden.id)))
        return golden.id

    def _own_times(self, record: NativeRecord) -> dict[str, datetime]:
        """When each mapped field of ``record`` changed, where its vendor told (inline or asked)."""
        native = {**record.field_times, **self._times.get((self.system, self.obj, record.id), {})}
        return canonical_times(self.mapping, self.system, self.obj, native)

    def _timed(self, golden: GoldenState, incoming: Mapping[str, Incoming]) -> dict[str, FieldState]:
        """The golden fields, those in a conflict settled by time carrying their setter's field change time."""
        fields = golden.fields
        conflicts = timed_conflicts(self.mapping, golden, incoming)
        if not conflicts:
            return fields
        timed = dict(fields)
        links = self.page.links_of(golden.id)
        for name, state in conflicts:
            for key in owners(links, state.by):
                at = self._field_time(key, name)
                if at is not None:
                    timed[name] = state._replace(at=at)
        return timed

    def _field_time(self, key: NativeKey, name: str) -> datetime | None:
        system, obj, _ = key
        return canonical_times(self.mapping, system, obj, self._times.get(key, {})).get(name)

    def _golden_for(self, record: NativeRecord, link: Link | None, values: dict[str, Canonical]) -> GoldenState | None:
        page = self.page
        if link is not None:
            linked = page.golden(link.golden_id)
            if linked is not None:
                return linked
        candidates = self._partner(record) or self._match(values)
        if len(candidates) > 1:
            names = ", ".join(candidates)
            self._quarantine(record, "AMBIGUOUS_MATCH", f"several golden records match: {names}", link)
            return None
        if candidates:
            matched = page.golden(candidates[0])
            if matched is not None:
                same_object = [
                    other
                    for other in page.links_of(matched.id)
                    if (other.system, other.object) == (self.system, self.obj)
                    and other.native_id != record.id
                    and not other.deleted
                ]
                if same_object:
                    self._quarantine(
                        record,
                        "DUPLICATE",
                        f"{self.system} {self.obj} {same_object[0].native_id} and {record.id} match the same record",
                        link,
                    )
                    return None
                self.ctx.count("matched", self.system)
                return matched
        self.ctx.count("new", self.system)
        return page.new_golden(self.mapping.entity)

    def _partner(self, record: NativeRecord) -> list[str]:
        """The golden record the other system's copy of ``record`` is linked to, found through partner ids: the
        record names a linked record there, or a linked record there names it."""
        other = self.ctx.connection.other(self.system)
        named = claimed(self.mapping, self.system, record)
        for obj in self.mapping.objects(other) if named else ():
            found = self.page.link(other, obj, named or "")
            if found is not None and not found.deleted:
                golden = self.page.golden(found.golden_id)
                if golden is not None and not golden.deleted:
                    return [golden.id]
        return self.page.matches(self.mapping.entity, partner_key(self.system), record.id)

    def _match(self, values: dict[str, Canonical]) -> list[str]:
        for key in self.mapping.match:
            value = values.get(key)
            if isinstance(value, str) and value:
                found = self.page.matches(self.mapping.entity, key, value)
                if found:
                    return found
        return []

    def _index_keys(self, golden: GoldenState) -> None:
        """Index the golden record's match keys and the partner ids its linked records carry."""
        keys = {key: golden.fields[key].value for key in self.mapping.match if key in golden.fields}
        plain_keys = {k: v for k, v in keys.items() if isinstance(v, str) and v}
        systems = self.ctx.connection.systems
        others = {system: self.ctx.connection.other(system) for system in systems}
        partners = claims(self.page.links_of(golden.id), others)
        self.page.set_keys(golden.id, self.mapping.entity, {**plain_keys, **partners})

    def _apply_gone(self, record: NativeRecord, link: Link | None) -> None:
        if link is None:
            return
        self.ctx.count("deleted", self.system)
        # Writes it refused while it was being deleted or merged away (not found) are moot now: release them.
        self.page.resolve_quarantine(self.ctx.name, self.system, self.obj, native_id=record.id)
        self.page.resolve_quarantine(self.ctx.name, self.system, self.obj, golden_id=link.golden_id)
        if record.merged_into:
            self._apply_merge(record, link)
            return
        policy = self.mapping.on_delete
        if policy is OnDelete.UNLINK:
            self.page.delete_link(self.system, self.obj, record.id)
            return
        self._tombstone(link, record)
        if policy is OnDelete.PROPAGATE:
            self._propagate_delete(link.golden_id)

    def _apply_merge(self, record: NativeRecord, link: Link) -> None:
        """The loser is never written or re-created; its golden record retires when the winner has its own.

        The other system's copies of the loser stay linked to the retired golden record: they are duplicates
        there now, and closeloop neither overwrites them with the winner's values nor lets them re-create the
        loser. When the winner is not linked yet (a converted lead), the loser's golden record stays alive for
        the winner to match when it arrives in its own stream. A retired loser is reported in the page's result
        (``merged``): the cycle moves its credits and touches to the winner (``closeloop.engine.merges``).
        """
        winner_link = self._find_any_link(record.merged_into or "")
        self._tombstone(link, record)
        self.ctx.count("merged", self.system)
        if winner_link is not None and winner_link.golden_id != link.golden_id:
            self.page.mark_deleted(link.golden_id)
            self._merged[link.golden_id] = winner_link.golden_id

    def _find_any_link(self, native_id: str) -> Link | None:
        for obj in self.mapping.objects(self.system):
            found = self.page.link(self.system, obj, native_id)
            if found is not None:
                return found
        return None

    def _tombstone(self, link: Link, record: NativeRecord) -> None:
        self.page.put_link(
            self.system,
            self.obj,
            record.id,
            link.golden_id,
            link.entity,
            last_modified_at=record.modified_at,
            deleted=True,
        )

    def _propagate_delete(self, golden_id: str) -> None:
        for other in self.page.links_of(golden_id):
            if other.system == self.system or other.deleted:
                continue
            self.page.enqueue(
                [
                    OutboxItem(
                        self.ctx.name,
                        other.system,
                        other.object,
                        self.mapping.entity,
                        golden_id,
                        WriteOp.DELETE,
                        native_id=other.native_id,
                    )
                ]
            )
        self.page.mark_deleted(golden_id)

    def _quarantine(self, record: NativeRecord, code: str, reason: str, link: Link | None) -> None:
        self.ctx.count("quarantined", self.system)
        self.ctx.store.quarantine(
            self.ctx.name,
            self.system,
            self.obj,
            self.mapping.entity,
            code=code,
            reason=reason,
            native_id=record.id,
            golden_id=link.golden_id if link else None,
            payload={"fields": dict(record.fields)},
            modified_at=record.modified_at,
        )
        # Advance past it: the record is retried when it changes again or on request, never blocks the page.
        if link is not None:
            self.page.put_link(
                self.system,
                self.obj,
                record.id,
                link.golden_id,
                link.entity,
                last_modified_at=record.modified_at,
            )
