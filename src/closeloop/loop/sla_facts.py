"""Read the state store into the SLA's input: every contact that became an MQL, its owner and its activities.

Canonical contact fields read (each may be missing): ``became_mql_at`` (the handover), ``became_sql_at``,
``became_opportunity_at``, ``became_customer_at`` (a move out of MQL), ``lifecycle_stage`` (still an MQL?),
``owner`` (whose MQL it is, as the mapping gives it: the CRM record's owner) and ``email`` (its label).
The activities are those the CRMs' activity streams stored for the contact's linked people.
"""

from __future__ import annotations

from collections.abc import Sequence

from closeloop.loop.report import STAGES, ContactFacts, FunnelStage
from closeloop.loop.sla import MqlFacts
from closeloop.store.api import StateStore

OWNER, EMAIL = "owner", "email"
BATCH = 500
_LATER = STAGES[STAGES.index(FunnelStage.MQL) + 1 :]


def still_mql(contact: ContactFacts) -> bool:
    """True when the contact's lifecycle stage now is MQL, or unknown."""
    stage = contact.lifecycle_stage.strip().lower().replace(" ", "")
    return stage in ("", "mql", "marketingqualifiedlead")


def read_mqls(store: StateStore, contacts: Sequence[ContactFacts], batch: int = BATCH) -> tuple[MqlFacts, ...]:
    """The contacts with an MQL date, each with its owner, label, activity times and later stage dates."""
    handed = [c for c in contacts if FunnelStage.MQL in c.stage_dates]
    found: list[MqlFacts] = []
    for start in range(0, len(handed), batch):
        chunk = handed[start : start + batch]
        ids = [c.contact_id for c in chunk]
        goldens, activities = store.get_goldens(ids), store.activities_of(ids)
        for contact in chunk:
            fields = goldens[contact.contact_id].fields if contact.contact_id in goldens else {}
            owner = fields.get(OWNER)
            found.append(
                MqlFacts(
                    contact.contact_id,
                    str(fields.get(EMAIL) or contact.contact_id),
                    contact.stage_dates[FunnelStage.MQL],
                    contact.source,
                    str(owner) if owner not in (None, "") else None,
                    tuple(a.occurred_at for a in activities.get(contact.contact_id, ())),
                    tuple(contact.stage_dates[s] for s in _LATER if s in contact.stage_dates),
                    still_mql(contact),
                )
            )
    return tuple(found)
