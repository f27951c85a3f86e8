"""Per-field change times: which records' field histories a page needs, and reading them from the vendors.

"The later change wins" compares when each side changed *the field*. A vendor's change stream gives the record's
modified time only, and any edit of another field moves it. Where a vendor keeps a field history (a connector
that is a ``FieldHistory``), the engine asks it, but only for the records whose merge is a conflict settled by
time, and for the other side's record whose value the golden record holds: a page without such a conflict costs
no call. Where a vendor keeps none, the record's modified time stands in: the record-level rule.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from datetime import datetime

from closeloop.config.models import EntityMapping
from closeloop.connector import FieldHistory
from closeloop.engine.context import CycleContext
from closeloop.engine.fieldmerge import MISSING, FieldState, Incoming, settled_by_time
from closeloop.engine.golden import GoldenState
from closeloop.engine.mapper import to_canonical_fields
from closeloop.engine.normalize import Canonical
from closeloop.model import NativeRecord
from closeloop.store.rows import Link

NativeKey = tuple[str, str, str]
"""(system, object, native id)."""

Times = Mapping[NativeKey, Mapping[str, datetime]]
"""When each native field of a native record last changed."""


def canonical_times(
    mapping: EntityMapping, system: str, obj: str, native: Mapping[str, datetime]
) -> dict[str, datetime]:
    """The change times of a native record's fields, by canonical field name."""
    if not native:
        return {}
    return {name: native[field] for name, _, field in mapping.specs(system, obj) if field in native}


def incoming_fields(
    system: str,
    record: NativeRecord,
    values: Mapping[str, Canonical],
    snapshot: Mapping[str, Canonical] | None,
    times: Mapping[str, datetime],
) -> dict[str, Incoming]:
    """Each mapped value of ``record`` as the merge takes it, timed by its field's change time where known."""
    return {
        name: Incoming(
            system,
            value,
            snapshot.get(name, MISSING) if snapshot is not None else MISSING,
            times.get(name, record.modified_at),
        )
        for name, value in values.items()
    }


def timed_conflicts(
    mapping: EntityMapping, golden: GoldenState, incoming: Mapping[str, Incoming]
) -> list[tuple[str, FieldState]]:
    """The fields of a record whose merge the later change settles, with the golden state they conflict with."""
    found = []
    for name, value in incoming.items():
        state = golden.fields.get(name)
        if state is not None and settled_by_time(mapping.fields[name], state, value):
            found.append((name, state))
    return found


def owners(golden_links: Sequence[Link], by: str | None) -> list[NativeKey]:
    """The native records of system ``by`` linked to a golden record (whose values it set)."""
    return [
        (link.system, link.object, link.native_id) for link in golden_links if link.system == by and not link.deleted
    ]


def asked(
    ctx: CycleContext, mapping: EntityMapping, system: str, obj: str, records: Sequence[NativeRecord]
) -> dict[tuple[str, str], list[str]]:
    """The native records whose field histories merging ``records`` needs: (system, object) -> native ids.

    Read outside the page's transaction, as a guide only (as ``PageApplier.fresh`` is): the merge itself uses
    whatever times were found and the record's modified time for the rest.
    """
    live = [r for r in records if not (r.deleted or r.merged_into)]
    links = ctx.store.find_links(system, obj, [r.id for r in live])
    goldens = ctx.store.get_goldens(list({link.golden_id for link in links.values()}))
    others = ctx.store.links_of_many(list(goldens))
    wanted: dict[tuple[str, str], dict[str, None]] = defaultdict(dict)
    for record in live:
        link = links.get(record.id)
        stored = goldens.get(link.golden_id) if link else None
        if link is None or stored is None:
            continue
        values, problems = to_canonical_fields(mapping, system, obj, record.fields, ctx.owners)
        golden = GoldenState.decode(stored)
        own = canonical_times(mapping, system, obj, record.field_times)
        incoming = incoming_fields(system, record, values, link.snapshot, own)
        conflicts = [] if problems else timed_conflicts(mapping, golden, incoming)
        if any(name not in own for name, _ in conflicts):
            wanted[(system, obj)][record.id] = None
        for _, state in conflicts:
            for key in owners(others.get(golden.id, []), state.by):
                if key[0] != system:
                    wanted[(key[0], key[1])][key[2]] = None
    return {key: list(ids) for key, ids in wanted.items()}


async def fetch(
    ctx: CycleContext, mapping: EntityMapping, wanted: Mapping[tuple[str, str], Sequence[str]]
) -> dict[NativeKey, dict[str, datetime]]:
    """Ask each vendor that keeps field histories for the change times of ``wanted``; the others are skipped."""
    found: dict[NativeKey, dict[str, datetime]] = {}
    for (system, obj), ids in wanted.items():
        connector = ctx.connectors[system]
        if not ids or not isinstance(connector, FieldHistory):
            continue
        fields = [native for _, _, native in mapping.specs(system, obj)]
        for native_id, times in (await connector.field_times(obj, ids, fields)).items():
            found[(system, obj, native_id)] = times
        ctx.count("field_histories", system, len(ids))
    return found
