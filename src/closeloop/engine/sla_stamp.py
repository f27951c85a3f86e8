"""The SLA breach stamp: a contact field the CRM's own workflows can escalate on.

A contacts mapping field ``from: loop.sla_breached_at`` (say ``Closeloop_SLA_Breached_At__c`` on the CRM side)
holds the moment the contact's MQL follow-up SLA ran out without a follow-up: set once the SLA runs out, kept
when a late follow-up comes (the breach happened), cleared only when the MQL turns out followed up in time
(an activity read late). Checked every cycle after the activity streams, for every contact with an MQL date;
a changed stamp is queued like any other write.
"""

from __future__ import annotations

from closeloop.config.models import Entity, EntityMapping
from closeloop.config.policies import LOOP, FromLoop, Rollup
from closeloop.engine.context import CycleContext
from closeloop.engine.fieldmerge import FieldState
from closeloop.engine.golden import GoldenState
from closeloop.engine.normalize import to_canonical
from closeloop.engine.owed import owed_items
from closeloop.loop.facts import contact_facts, golden_contacts
from closeloop.loop.sla import follow_up_of
from closeloop.loop.sla_facts import read_mqls
from closeloop.model import iso_utc

MQL_FIELD = "became_mql_at"


def stamp_fields(mapping: EntityMapping | None) -> list[str]:
    """The canonical contact fields that hold the SLA breach stamp."""
    if mapping is None:
        return []
    return [
        name
        for name, spec in mapping.fields.items()
        if isinstance(spec.policy, FromLoop) and spec.policy.rollup is Rollup.SLA_BREACHED_AT
    ]


def stamp_sla_breaches(ctx: CycleContext) -> None:
    """Set the breach stamp of every MQL whose SLA ran out without follow-up by now; queue what that owes."""
    sla, mapping = ctx.loop.sla, ctx.connection.mapping(Entity.CONTACT)
    names = stamp_fields(mapping)
    if sla is None or mapping is None or not names:
        return
    now = ctx.clock()
    for goldens in golden_contacts(ctx.store):
        handed = {g.id: g for g in goldens if g.fields.get(MQL_FIELD)}
        if not handed:
            continue
        changed: list[GoldenState] = []
        for mql in read_mqls(ctx.store, [contact_facts(g, [], None) for g in handed.values()]):
            found = follow_up_of(mql, sla)
            late = found.breached(now)
            found_golden = handed[mql.contact_id]
            golden = GoldenState.decode(found_golden)
            moved = False
            for name in names:
                value = to_canonical(mapping.fields[name].type, iso_utc(found.due_at) if late else None)
                if golden.fields.get(name, FieldState(None)).value != value:
                    golden.fields[name] = FieldState(value, LOOP, now)
                    moved = True
            if moved:
                changed.append(golden)
        if changed:
            with ctx.store.transaction():
                ctx.store.put_goldens([g.encode() for g in changed])
                links = ctx.store.links_of_many([g.id for g in changed])
                ctx.store.enqueue(
                    item for g in changed for item in owed_items(ctx, mapping, g, source=LOOP, links=links[g.id])
                )
            ctx.count("sla_breaches_stamped", None, len(changed))
