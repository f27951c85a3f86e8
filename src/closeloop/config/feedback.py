"""``loop.feedback``: what the CRM's lead statuses say about a lead, as sales' verdict on its quality.

Admins list the canonical values of the contact mapping's status field (the CRM's lead status, or a
disqualification field) under ``accepted``, ``rejected`` and ``recycled``; a rejected lead's reason is the
contact's ``reason`` field (the CRM's disqualification reason, which a crm -> marketing field of the mapping also
writes back to the marketing tool). Values listed nowhere are no verdict yet (new, working).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping

from pydantic import Field

from closeloop.config.documents import FeedbackDoc
from closeloop.config.policies import Frozen


class Verdict(enum.StrEnum):
    """What sales decided about a lead."""

    ACCEPTED = "accepted"
    REJECTED = "rejected"
    RECYCLED = "recycled"


class Feedback(Frozen):
    """The engine's view of ``loop.feedback``: status value (case-folded) -> verdict."""

    status: str = "lead_status"
    reason: str = "rejection_reason"
    verdicts: Mapping[str, Verdict] = Field(default_factory=dict)

    def verdict(self, status: object) -> Verdict | None:
        """The verdict a status value means, or None (no verdict yet, or a value listed nowhere)."""
        if not isinstance(status, str):
            return None
        return self.verdicts.get(status.strip().casefold())


def feedback_of(doc: FeedbackDoc) -> tuple[Feedback, list[str]]:
    """The feedback settings, and a problem per status value listed under two verdicts."""
    verdicts: dict[str, Verdict] = {}
    problems: list[str] = []
    for verdict, values in ((Verdict.ACCEPTED, doc.accepted), (Verdict.REJECTED, doc.rejected),
                            (Verdict.RECYCLED, doc.recycled)):  # fmt: skip
        for value in values:
            key = value.strip().casefold()
            if key in verdicts and verdicts[key] is not verdict:
                problems.append(f"status {value!r} is listed as both {verdicts[key]} and {verdict}")
            verdicts.setdefault(key, verdict)
    return Feedback(status=doc.status, reason=doc.reason, verdicts=verdicts), problems
