"""Original source capture: each contact's first-known original source, kept write-once in the state store.

Called for every page of contacts. What the page tells about a contact's original source (its golden fields
named in ``closeloop.loop.facts.SOURCE_FIELDS``, and the touchpoints of kind ``original_source`` its system
reported) is merged into the kept source with ``merge_original_source``: a set value is never blanked or
replaced by a later sync; only an earlier first touch wins. A changed kept source replaces the kept one
(one row per contact in the store's ``original_sources``). Filling blanks in other systems is the mapping's job: its
``write-once`` policy on the same canonical fields.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence

from closeloop.engine.context import CycleContext
from closeloop.engine.golden import GoldenState
from closeloop.loop.facts import (
    ORIGINAL_SOURCE,
    SOURCE_FIELDS,
    kept_row,
    kept_source,
    source_from_fields,
    source_from_touch,
    tells_nothing,
)
from closeloop.loop.source import OriginalSource, merge_original_source
from closeloop.model import Touchpoint
from closeloop.store.rows import KeptSource

SOURCE_TYPE_FIELD = "original_source"
_SOURCE = frozenset(SOURCE_FIELDS)


def field_candidate(golden: GoldenState, system: str) -> OriginalSource:
    """The source a golden contact's fields tell, credited to the system that set its source type."""
    told = {name: golden.fields[name].value for name in SOURCE_FIELDS if name in golden.fields}
    source_type = golden.fields.get(SOURCE_TYPE_FIELD)
    return source_from_fields(told, (source_type.by if source_type else None) or system)


def candidates(
    system: str,
    touched: Mapping[str, str],
    goldens: Mapping[str, GoldenState],
    touchpoints: Sequence[Touchpoint],
) -> dict[str, list[OriginalSource]]:
    """What the page tells about each live contact's original source, fields first, then touches in time order."""
    found: dict[str, list[OriginalSource]] = {
        gid: [field_candidate(golden, system)] for gid, golden in goldens.items() if not golden.deleted
    }
    for touch in sorted(touchpoints, key=lambda t: t.occurred_at):
        gid = touched.get(touch.native_id)
        if touch.kind == ORIGINAL_SOURCE and gid in found:
            found[gid].append(source_from_touch(touch, system))
    return found


def merged(kept: OriginalSource | None, news: Sequence[OriginalSource]) -> OriginalSource | None:
    """The kept source after merging every non-blank candidate into it, write-once."""
    for candidate in news:
        if not tells_nothing(candidate):
            kept = merge_original_source(kept, candidate)
    return kept


def capture_original_sources(
    ctx: CycleContext,
    system: str,
    touched: Mapping[str, str],
    touchpoints: Sequence[Touchpoint] = (),
    goldens: Mapping[str, GoldenState] | None = None,
    changed: Mapping[str, Collection[str]] | None = None,
) -> int:
    """Merge what a page of ``system``'s contacts (native id -> golden id) tells into the kept original sources.

    ``goldens`` are the page's golden records as it left them, when the caller has them in memory; otherwise
    they are read from the store. ``changed`` (golden id -> the fields the page changed), when given, limits the
    work to what can be news: contacts whose source fields the page changed, or that the page's touchpoints tell
    an original source of (fields that did not change were merged when they did). Returns how many kept sources
    changed.
    """
    golden_ids = sorted(set(touched.values()))
    if changed is not None:
        told = {touched.get(t.native_id) for t in touchpoints if t.kind == ORIGINAL_SOURCE}
        golden_ids = [g for g in golden_ids if g in told or not _SOURCE.isdisjoint(changed.get(g, ()))]
    if not golden_ids:
        return 0
    if goldens is None:
        rows = ctx.store.get_goldens(golden_ids)
        goldens = {g: GoldenState.decode(r) for g, r in rows.items()}
    else:
        goldens = {g: goldens[g] for g in golden_ids if g in goldens}
    stored = ctx.store.original_sources(golden_ids)
    captured_at = ctx.clock()
    versions: list[KeptSource] = []
    for gid, news in candidates(system, touched, goldens, touchpoints).items():
        kept = kept_source(stored.get(gid))
        now = merged(kept, news)
        if now is not None and now != kept:
            versions.append(kept_row(gid, now, captured_at))
    if not versions:
        return 0
    # one statement: atomic on its own, in the page's transaction (no savepoint) or in one of its own
    added = ctx.store.put_original_sources(versions)
    ctx.count("original_sources", system, added)
    return added
