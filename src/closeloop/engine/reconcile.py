"""Apply one page of one system's changes: load what the store holds for it, decide the delta, apply it.

The imperative shell around the functional core: ``closeloop.engine.loaded.load`` reads what the page needs in a
few bulk queries, ``closeloop.engine.decide.decide`` works out the page's delta from the records and that
snapshot (a pure function), and ``StateStore.apply_delta`` writes it with one statement per table. Everything a
page changes (golden records, links, outbox, quarantine, and the cursor the caller sets) is written by the
caller's single transaction, so a crash leaves either the whole page applied or none of it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from closeloop.config.models import EntityMapping
from closeloop.engine.context import CycleContext
from closeloop.engine.decide import PageRules, already_applied, decide
from closeloop.engine.fieldtimes import Times
from closeloop.engine.golden import GoldenState
from closeloop.engine.loaded import Mapped, load
from closeloop.engine.mapper import to_canonical_fields
from closeloop.model import NativeRecord

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
    goldens: dict[str, GoldenState] = field(default_factory=dict)
    """The golden records touched, as the page left them."""


class PageApplier:
    """Applies pages of one native object of one system to the golden records."""

    def __init__(self, ctx: CycleContext, mapping: EntityMapping, system: str, obj: str) -> None:
        self.ctx, self.mapping, self.system, self.obj = ctx, mapping, system, obj

    def apply(
        self, records: Sequence[NativeRecord], times: Times | None = None, *, keep_last_seen: bool = False
    ) -> PageResult:
        """Apply a page; the caller holds the transaction.

        ``times`` are field change times read from the vendors (see ``fieldtimes.asked``). With
        ``keep_last_seen`` the links keep their last-seen modified times: a version read outside the change
        stream (just before a write) is merged, and the stream still hands it over as news.
        """
        ctx, mapping, system, obj = self.ctx, self.mapping, self.system, self.obj
        mapped = {r.id: self._map(r) for r in records if not (r.deleted or r.merged_into)}
        loaded = load(ctx.store, ctx.name, mapping, system, ctx.connection.other(system), obj, records, mapped)
        rules = PageRules(ctx.connection, mapping, system, obj, ctx.clock(), times or {}, keep_last_seen)
        decided = decide(rules, records, mapped, loaded, ctx.store.new_golden_id)
        ctx.store.apply_delta(decided.delta)
        for (what, where), n in decided.counts.items():
            ctx.count(what, where, n)
        return PageResult(decided.touched, decided.changed, decided.merged, decided.goldens)

    def _map(self, record: NativeRecord) -> Mapped:
        return to_canonical_fields(self.mapping, self.system, self.obj, record.fields, self.ctx.owners)

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
                mapped = self._map(record)
                if not already_applied(record, link, mapped):
                    found.append(record)
        return found

    def _quarantined(self, unlinked: Sequence[NativeRecord]) -> set[str]:
        """The unlinked records whose very version is quarantined (not news until it changes)."""
        if not unlinked:
            return set()
        versions = self.ctx.store.quarantined_versions(self.ctx.name, self.system, self.obj, [r.id for r in unlinked])
        return {r.id for r in unlinked if versions.get(r.id) == r.modified_at}
