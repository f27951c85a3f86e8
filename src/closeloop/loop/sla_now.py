"""The SLA breaches open now, straight from the store: for ``closeloop status`` and the daemon's gauge.

Cheaper than the report: only contacts with an MQL date are looked at, and their source is what their fields
tell (no touchpoints are read), which is all an operational count and list need.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from closeloop.config.models import Connection
from closeloop.config.sla import SlaConfig
from closeloop.loop.facts import contact_facts, golden_contacts
from closeloop.loop.sla import OpenBreach, breaches_open, describe_span
from closeloop.loop.sla_facts import read_mqls
from closeloop.store.api import StateStore

MQL_FIELD = "became_mql_at"


def open_breaches_now(store: StateStore, sla: SlaConfig, now: datetime) -> list[OpenBreach]:
    """Every MQL without follow-up past its SLA at ``now``, still at the MQL stage; the oldest first."""
    found: list[OpenBreach] = []
    for goldens in golden_contacts(store):
        handed = [contact_facts(g, [], None) for g in goldens if g.fields.get(MQL_FIELD)]
        found += breaches_open(read_mqls(store, handed), sla, now)
    found.sort(key=lambda b: (b.mql_at, b.contact_id))
    return found


def breaches_by_connection(
    store: StateStore, connections: Sequence[Connection], breaches: Sequence[OpenBreach]
) -> dict[str, int]:
    """How many of the open breaches each connection holds (a contact linked in one of its systems)."""
    links = store.links_of_many([b.contact_id for b in breaches]) if breaches else {}
    counts = {c.name: 0 for c in connections}
    for breach in breaches:
        systems = {link.system for link in links.get(breach.contact_id, [])}
        for connection in connections:
            if systems & set(connection.systems):
                counts[connection.name] += 1
    return counts


SHOWN = 10
"""How many open breaches ``closeloop status`` lists (the oldest); the count covers them all."""


def status_lines(store: StateStore, sla: SlaConfig, connections: Sequence[Connection], now: datetime) -> list[str]:
    """What ``closeloop status`` says of the SLA: the open breaches per connection and the oldest ones."""
    breaches = open_breaches_now(store, sla, now)
    counts = breaches_by_connection(store, connections, breaches)
    per = ", ".join(f"{name} {count}" for name, count in counts.items())
    lines = [f"SLA breaches open now: {len(breaches)} ({per}); MQL follow-up within {describe_span(sla.mql_follow_up)}"]
    for b in breaches[:SHOWN]:
        lines.append(
            f"  {b.label}  owner {b.owner}  MQL since {b.mql_at:%Y-%m-%d %H:%M} UTC  age {b.age_hours}h  "
            f"overdue {b.overdue_hours}h"
        )
    if len(breaches) > SHOWN:
        lines.append(f"  … and {len(breaches) - SHOWN} more: closeloop report lists them all")
    return lines
