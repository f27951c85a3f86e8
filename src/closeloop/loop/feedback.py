"""Sales feedback on lead quality: acceptance, rejection and recycling of the leads each source and campaign brings.

Definitions (the README states them for users):

- the cohort is the contacts created in the period (the lead-creation milestone), as in the funnel;
- a lead was *handed to sales* when it reached the MQL stage or carries a sales verdict (a verdict implies it);
- its *verdict* is what its current lead status means under ``loop.feedback``: accepted, rejected or recycled;
  a status listed under none of them (new, working) is *pending*. Only the current status counts: a lead
  rejected and later recycled counts as recycled;
- *decided* = accepted + rejected + recycled; the acceptance, rejection and recycling rates are shares of the
  decided leads (pending ones would otherwise read as rejections), in percent to one decimal;
- the rejection reasons are the rejected leads' reason field as the CRM holds it (blank: ``(no reason)``),
  counted per source and per campaign, the most frequent first.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal

from closeloop.config.feedback import Verdict

NO_REASON = "(no reason)"
TOP_REASONS = 5
"""Rejection reasons listed per source or campaign; the rest are left out of the section, never of the counts."""


@dataclass(frozen=True, slots=True)
class Lead:
    """What the feedback figures need of one contact of the cohort."""

    source: str
    campaign: str
    handed: bool
    verdict: Verdict | None
    reason: str | None


def _percent(part: int, whole: int) -> Decimal | None:
    return None if not whole else (Decimal(part) * 100 / Decimal(whole)).quantize(Decimal("0.1"))


@dataclass(frozen=True, slots=True)
class FeedbackRow:
    """The verdicts on the leads one source or campaign handed to sales."""

    dimension: str
    key: str
    handed: int
    accepted: int
    rejected: int
    recycled: int

    @property
    def decided(self) -> int:
        """Leads sales has given a verdict on."""
        return self.accepted + self.rejected + self.recycled

    @property
    def pending(self) -> int:
        """Leads handed to sales without a verdict yet."""
        return self.handed - self.decided

    @property
    def acceptance_rate(self) -> Decimal | None:
        """Accepted leads in percent of the decided ones."""
        return _percent(self.accepted, self.decided)

    @property
    def rejection_rate(self) -> Decimal | None:
        """Rejected leads in percent of the decided ones."""
        return _percent(self.rejected, self.decided)

    @property
    def recycle_rate(self) -> Decimal | None:
        """Recycled leads in percent of the decided ones."""
        return _percent(self.recycled, self.decided)


@dataclass(frozen=True, slots=True)
class ReasonRow:
    """How many rejected leads of one source or campaign carry one rejection reason."""

    dimension: str
    key: str
    reason: str
    leads: int


@dataclass(frozen=True, slots=True)
class SalesFeedback:
    """The feedback section: rows by source and by campaign, the total, and the top rejection reasons."""

    rows: tuple[FeedbackRow, ...]
    total: FeedbackRow
    reasons: tuple[ReasonRow, ...]

    def rows_for(self, dimension: str) -> list[FeedbackRow]:
        """The rows of one dimension ("source" or "campaign")."""
        return [r for r in self.rows if r.dimension == dimension]

    def reasons_for(self, dimension: str) -> list[ReasonRow]:
        """The top rejection reasons of one dimension, per key."""
        return [r for r in self.reasons if r.dimension == dimension]


def _row(dimension: str, key: str, leads: Sequence[Lead]) -> FeedbackRow:
    verdicts = Counter(lead.verdict for lead in leads)
    return FeedbackRow(
        dimension,
        key,
        len(leads),
        verdicts[Verdict.ACCEPTED],
        verdicts[Verdict.REJECTED],
        verdicts[Verdict.RECYCLED],
    )


def _reasons(dimension: str, key: str, leads: Iterable[Lead]) -> list[ReasonRow]:
    counts = Counter((lead.reason or "").strip() or NO_REASON for lead in leads if lead.verdict is Verdict.REJECTED)
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))[:TOP_REASONS]
    return [ReasonRow(dimension, key, reason, n) for reason, n in ranked]


def build_feedback(leads: Iterable[Lead]) -> SalesFeedback:
    """The feedback figures of the cohort's leads handed to sales, by source and by campaign."""
    handed = [lead for lead in leads if lead.handed or lead.verdict is not None]
    rows: list[FeedbackRow] = []
    reasons: list[ReasonRow] = []
    for dimension in ("source", "campaign"):
        groups: dict[str, list[Lead]] = defaultdict(list)
        for lead in handed:
            groups[lead.source if dimension == "source" else lead.campaign].append(lead)
        ordered = sorted(groups.items(), key=lambda item: (-len(item[1]), item[0]))
        rows += [_row(dimension, key, group) for key, group in ordered]
        reasons += [r for key, group in ordered for r in _reasons(dimension, key, group)]
    return SalesFeedback(tuple(rows), _row("all", "all", handed), tuple(reasons))
