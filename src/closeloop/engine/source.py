"""Original source capture: each contact's first-known original source, kept write-once in the state store.

Called for every page of contacts. What the page tells about a contact's original source (its golden fields
named in ``closeloop.loop.facts.SOURCE_FIELDS``, and the touchpoints of kind ``original_source`` its system
reported) is merged into the kept source with ``merge_original_source``: a set value is never blanked or
replaced by a later sync; only an earlier first touch wins. A changed kept source is appended as a new version
(see ``closeloop.loop.facts`` for how it is stored). Filling blanks in other systems is the mapping's job: its
``write-once`` policy on the same canonical fields.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from closeloop.engine.context import CycleContext
from closeloop.engine.golden import set_by
from closeloop.loop.facts import (
    ORIGINAL_SOURCE,
    kept_row,
    kept_source,
    source_from_fields,
    source_from_touch,
    tells_nothing,
)
from closeloop.loop.source import OriginalSource, merge_original_source
from closeloop.model import Touchpoint
from closeloop.store.rows import Golden, TouchpointRow

SOURCE_TYPE_FIELD = "original_source"


def field_candidate(golden: Golden, system: str) -> OriginalSource:
    """The source a golden contact's fields tell, credited to the system that set its source type."""
    return source_from_fields(golden.fields, set_by(golden.fields, SOURCE_TYPE_FIELD) or system)


def candidates(
    system: str,
    touched: Mapping[str, str],
    goldens: Mapping[str, Golden],
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
) -> int:
    """Merge what a page of ``system``'s contacts (native id -> golden id) tells into the kept original sources.

    Returns how many kept sources changed.
    """
    golden_ids = sorted(set(touched.values()))
    if not golden_ids:
        return 0
    goldens = ctx.store.get_goldens(golden_ids)
    stored = ctx.store.touchpoints_of(golden_ids)
    captured_at = ctx.clock()
    versions: list[TouchpointRow] = []
    for gid, news in candidates(system, touched, goldens, touchpoints).items():
        kept = kept_source(stored.get(gid, ()))
        now = merged(kept, news)
        if now is not None and now != kept:
            versions.append(kept_row(gid, now, captured_at))
    if not versions:
        return 0
    with ctx.store.transaction():
        added = ctx.store.add_touchpoints(versions)
    ctx.count("original_sources", system, added)
    return added
