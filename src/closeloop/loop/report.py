"""Closed-loop report data: funnel by original source, attributed revenue, deal figures, CAC and ROI."""

from __future__ import annotations

import enum
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from decimal import Decimal
from fractions import Fraction

from closeloop.config.feedback import Verdict
from closeloop.config.sla import SlaConfig
from closeloop.loop.attribution import DEFAULT_HALF_LIFE, Milestones, Model, attribute
from closeloop.loop.clv import ClvReport, build_clv
from closeloop.loop.detail import DealDetail, build_details
from closeloop.loop.feedback import Lead, SalesFeedback, build_feedback
from closeloop.loop.influence import DataQuality, Influence, build_influence, build_quality
from closeloop.loop.ledger import LedgerEntry, Position, positions
from closeloop.loop.money import cents
from closeloop.loop.sla import MqlFacts, SlaReport, build_sla
from closeloop.loop.source import OriginalSource
from closeloop.loop.spend import SpendRow
from closeloop.loop.touchpoints import Touch, TouchKind, channel_of_source, touch_from_original_source
from closeloop.loop.trend import Granularity, PeriodComparison, TrendRow, Window, build_trend, compare_period
from closeloop.model import utc

UNKNOWN = "unknown"
UNATTRIBUTED = "(unattributed)"
NO_CAMPAIGN = "(no campaign)"
ALL_SOURCES = "all"


class FunnelStage(enum.StrEnum):
    """The funnel stages, in order."""

    LEAD = "lead"
    MQL = "mql"
    SQL = "sql"
    OPPORTUNITY = "opportunity"
    CUSTOMER = "customer"


STAGES = tuple(FunnelStage)
_STAGE_ALIASES = {
    "marketingqualifiedlead": FunnelStage.MQL,
    "salesqualifiedlead": FunnelStage.SQL,
    "opportunity": FunnelStage.OPPORTUNITY,
    **{s.value: s for s in FunnelStage},
}


@dataclass(frozen=True, slots=True)
class ContactFacts:
    """What the report needs to know about one contact."""

    contact_id: str
    created_at: datetime
    lifecycle_stage: str
    original_source: OriginalSource | None = None
    stage_dates: Mapping[FunnelStage, datetime] = field(default_factory=dict, hash=False)
    verdict: Verdict | None = None
    """Sales' verdict on the lead, from its lead status (``loop.feedback``), where it has one."""
    rejection_reason: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "created_at", utc(self.created_at))

    @property
    def source(self) -> str:
        """The channel of the contact's original source, or "unknown"."""
        known = self.original_source is not None and not self.original_source.is_blank
        return channel_of_source(self.original_source).value if known and self.original_source else UNKNOWN

    def reached(self, stage: FunnelStage) -> bool:
        """True when the contact's lifecycle stage or stage dates show it got to ``stage``."""
        current = _STAGE_ALIASES.get(self.lifecycle_stage.strip().lower().replace(" ", ""))
        ranks = [STAGES.index(s) for s in (current, *self.stage_dates) if s is not None]
        return stage is FunnelStage.LEAD or max(ranks, default=0) >= STAGES.index(stage)


@dataclass(frozen=True, slots=True)
class ReportInput:
    """Everything a report is computed from; the period is [period_start, period_end).

    ``deal_created`` holds each deal's creation time (deal id -> when), where it is known; ``open_deals`` the
    deals open now (positions without a close, amounts in the base currency), ``unpriced_open_deals`` how many
    open deals were left out for want of a rate, ``deal_names`` each deal's name where it has one and
    ``contact_labels`` the email of contacts that ``--detail`` lists.
    """

    contacts: tuple[ContactFacts, ...]
    ledger: tuple[LedgerEntry, ...]
    touches: tuple[Touch, ...]
    period_start: datetime
    period_end: datetime
    base_currency: str
    spend: tuple[SpendRow, ...] = ()
    deal_created: Mapping[str, datetime] = field(default_factory=dict, hash=False)
    open_deals: tuple[Position, ...] = ()
    unpriced_open_deals: int = 0
    deal_names: Mapping[str, str] = field(default_factory=dict, hash=False)
    contact_labels: Mapping[str, str] = field(default_factory=dict, hash=False)
    feedback: bool = False
    """Sales feedback is configured: the report has its section (with zeros when no lead has a verdict)."""
    mqls: tuple[MqlFacts, ...] = ()
    """The contacts that became MQLs, with their sales activities (read when ``loop.sla`` is configured)."""

    def in_period(self, moment: datetime | None) -> bool:
        """True when ``moment`` falls within the period."""
        return moment is not None and self.period_start <= moment < self.period_end


def _percent(part: Decimal | int, whole: Decimal | int) -> Decimal | None:
    return None if not whole else (Decimal(part) * 100 / Decimal(whole)).quantize(Decimal("0.1"))


@dataclass(frozen=True, slots=True)
class FunnelRow:
    """Contacts created in the period from one source, counted at each funnel stage they reached."""

    source: str
    counts: tuple[int, ...]

    @property
    def conversions(self) -> tuple[Decimal | None, ...]:
        """Stage-to-stage conversion rates in percent (lead→MQL, MQL→SQL, SQL→opportunity, →customer)."""
        return tuple(_percent(b, a) for a, b in zip(self.counts, self.counts[1:], strict=False))

    @property
    def overall(self) -> Decimal | None:
        """Lead-to-customer conversion in percent."""
        return _percent(self.counts[-1], self.counts[0])


@dataclass(frozen=True, slots=True)
class AttributedRow:
    """Revenue and (fractional) deals credited to one source or campaign under one model."""

    model: Model
    dimension: str
    key: str
    revenue: Decimal
    deals: Decimal


@dataclass(frozen=True, slots=True)
class DealStatsRow:
    """Won deals by first-touch source: count, revenue, average size, sales cycle and journey length in days.

    The sales cycle runs from deal creation to close (as CRMs measure it); the journey from first touch to close.
    """

    source: str
    deals: int
    revenue: Decimal
    average_deal: Decimal
    average_cycle_days: Decimal | None
    average_journey_days: Decimal | None = None


@dataclass(frozen=True, slots=True)
class RoiRow:
    """Spend against attributed revenue and new customers for one channel or campaign under one model."""

    model: Model
    dimension: str
    key: str
    spend: Decimal
    revenue: Decimal
    customers: int
    cac: Decimal | None
    roi: Decimal | None
    """(revenue - spend) / spend in percent."""


KeyFigures = tuple[str, list[AttributedRow | None], list[AttributedRow | None]]
"""One source or campaign: its key, its closed-won rows and its open-pipeline rows, one per model."""


@dataclass(frozen=True, slots=True)
class Report:
    """A closed-loop report for one period, under one or several models."""

    period_start: datetime
    period_end: datetime
    base_currency: str
    models: tuple[Model, ...]
    total_revenue: Decimal
    won_deals: int
    funnel: tuple[FunnelRow, ...]
    funnel_total: FunnelRow
    attributed: tuple[AttributedRow, ...]
    deal_stats: tuple[DealStatsRow, ...]
    roi: tuple[RoiRow, ...]
    granularity: Granularity = Granularity.MONTH
    trend: tuple[TrendRow, ...] = ()
    previous: PeriodComparison | None = None
    pipeline: tuple[AttributedRow, ...] = ()
    """Open pipeline credited per model, source and campaign: ``revenue`` is the open amount in the base currency."""
    open_deals: int = 0
    open_amount: Decimal = Decimal("0.00")
    influence: Influence | None = None
    quality: DataQuality | None = None
    details: tuple[DealDetail, ...] = ()
    feedback: SalesFeedback | None = None
    sla: SlaReport | None = None
    clv: ClvReport | None = None

    def attributed_for(self, model: Model, dimension: str) -> list[AttributedRow]:
        """The attributed rows of one model and dimension ("source" or "campaign")."""
        return [r for r in self.attributed if r.model is model and r.dimension == dimension]

    def pipeline_for(self, model: Model, dimension: str) -> list[AttributedRow]:
        """The open-pipeline rows of one model and dimension ("source" or "campaign")."""
        return [r for r in self.pipeline if r.model is model and r.dimension == dimension]

    def revenue_matrix(self, dimension: str) -> list[tuple[str, list[Decimal]]]:
        """Revenue per key (rows) and model (columns, in ``models`` order), largest total first."""
        cells = {(r.key, r.model): r.revenue for r in self.attributed if r.dimension == dimension}
        keys = {key for key, _ in cells}
        rows = [(k, [cells.get((k, m), Decimal("0.00")) for m in self.models]) for k in keys]
        rows.sort(key=lambda row: (-sum(row[1]), row[0]))
        return rows

    def won_and_pipeline(self, dimension: str) -> list[KeyFigures]:
        """Per key: its closed-won rows and its open-pipeline rows, one per model (None where it has none).

        Keys come largest closed-won revenue first, then largest pipeline, then by name.
        """
        won = {(r.key, r.model): r for r in self.attributed if r.dimension == dimension}
        open_ = {(r.key, r.model): r for r in self.pipeline if r.dimension == dimension}
        keys = {key for key, _ in (*won, *open_)}
        rows = [(k, [won.get((k, m)) for m in self.models], [open_.get((k, m)) for m in self.models]) for k in keys]

        def weight(cells: list[AttributedRow | None]) -> Decimal:
            return sum((c.revenue for c in cells if c is not None), Decimal(0))

        rows.sort(key=lambda row: (-weight(row[1]), -weight(row[2]), row[0]))
        return rows


def _funnel_row(source: str, contacts: Iterable[ContactFacts]) -> FunnelRow:
    group = list(contacts)
    return FunnelRow(source, tuple(sum(c.reached(s) for c in group) for s in STAGES))


def build_funnel(inp: ReportInput) -> tuple[tuple[FunnelRow, ...], FunnelRow]:
    """The funnel of contacts created in the period, by original source, and its total."""
    cohort = [c for c in inp.contacts if inp.in_period(c.created_at)]
    by_source: dict[str, list[ContactFacts]] = defaultdict(list)
    for contact in cohort:
        by_source[contact.source].append(contact)
    rows = [_funnel_row(source, group) for source, group in by_source.items()]
    rows.sort(key=lambda r: (-r.counts[0], r.source))
    return tuple(rows), _funnel_row(ALL_SOURCES, cohort)


def feedback_leads(inp: ReportInput) -> list[Lead]:
    """The contacts created in the period as leads for the sales feedback figures."""
    return [
        Lead(c.source, _campaign_of(c), c.reached(FunnelStage.MQL), c.verdict, c.rejection_reason)
        for c in inp.contacts
        if inp.in_period(c.created_at)
    ]


def won_in_period(inp: ReportInput) -> list[Position]:
    """The deals currently won whose close date falls in the period, by close date."""
    won = [p for p in positions(inp.ledger).values() if inp.in_period(p.closed_at)]
    return sorted(won, key=lambda p: (p.closed_at, p.deal_id))


def source_touch(contact: ContactFacts) -> Touch | None:
    """The contact's original source as a touch, at its first-touch time but never after the contact's creation.

    The original source is what created the contact, so it happened by then: a first-touch time after the
    creation is the time a system got its copy (closeloop's own create of it), and the creation time stands.
    """
    source = contact.original_source
    if source is None or source.is_blank:
        return None
    first = source.first_touch_at
    at = contact.created_at if first is None else min(first, contact.created_at)
    return touch_from_original_source(contact.contact_id, replace(source, first_touch_at=at))


def journeys(inp: ReportInput) -> dict[str, list[Touch]]:
    """Each contact's touches, with its original source added as a touch when none is recorded."""
    by_contact: dict[str, list[Touch]] = defaultdict(list)
    for touch in inp.touches:
        by_contact[touch.contact_id].append(touch)
    for contact in inp.contacts:
        has_source = any(t.kind is TouchKind.ORIGINAL_SOURCE for t in by_contact[contact.contact_id])
        found = None if has_source else source_touch(contact)
        if found is not None:
            by_contact[contact.contact_id].append(found)
    return dict(by_contact)


def deal_milestones(inp: ReportInput, deals: Sequence[Position]) -> dict[str, Milestones]:
    """Each deal's milestones: its contacts' first creation (one pooled journey), its own creation, its close."""
    created = {c.contact_id: c.created_at for c in inp.contacts}
    found: dict[str, Milestones] = {}
    for deal in deals:
        leads = [created[c] for c in deal.contacts if c in created]
        found[deal.deal_id] = Milestones(min(leads, default=None), inp.deal_created.get(deal.deal_id), deal.closed_at)
    return found


def deal_touches(deal: Position, by_contact: Mapping[str, Sequence[Touch]]) -> list[Touch]:
    """The touches of a deal's credited contacts up to its close."""
    return [
        t
        for contact in deal.contacts
        for t in by_contact.get(contact, ())
        if deal.closed_at is None or t.at <= deal.closed_at
    ]


DEAL_CREDIT = Decimal("0.0001")
"""Fractional deal credits keep four decimals: a 1/17 share of a deal is 0.0588 deals, not 0.06 or 0.00."""


def deal_credit(share: Fraction) -> Decimal:
    """A fractional deal count to four decimals, without trailing zeros ("0.0588", "1", "2.5")."""
    exact = (Decimal(share.numerator) / Decimal(share.denominator)).quantize(DEAL_CREDIT)
    return Decimal(format(exact.normalize(), "f"))


def attribute_deals(
    model: Model,
    deals: Sequence[Position],
    milestones: Mapping[str, Milestones],
    by_contact: Mapping[str, Sequence[Touch]],
    half_life: timedelta,
) -> list[AttributedRow]:
    """Revenue and fractional deal counts per source and per campaign under ``model``."""
    revenue: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
    counts: dict[tuple[str, str], Fraction] = defaultdict(Fraction)
    for deal in deals:
        touches = deal_touches(deal, by_contact)
        credits = attribute(model, deal.amount_base, touches, milestones[deal.deal_id], half_life=half_life)
        if not credits:
            for dimension in ("source", "campaign"):
                revenue[dimension, UNATTRIBUTED] += deal.amount_base
                counts[dimension, UNATTRIBUTED] += 1
        for credit in credits:
            for key in (
                ("source", credit.touch.channel.value),
                ("campaign", credit.touch.campaign or NO_CAMPAIGN),
            ):
                revenue[key] += credit.amount
                counts[key] += credit.share
    rows = [
        AttributedRow(model, d, k, cents(v), deal_credit(counts[d, k]))
        for (d, k), v in revenue.items()
        if v or counts[d, k]  # a touch a model gives nothing is no row
    ]
    rows.sort(key=lambda r: (r.dimension != "source", -r.revenue, r.key))
    return rows


def _first_touch(touches: Sequence[Touch]) -> Touch | None:
    return min(touches, key=lambda t: t.at) if touches else None


def _average_days(spans: Sequence[tuple[datetime | None, datetime | None]]) -> Decimal | None:
    """The average of the known (start, end) spans in days, to one decimal; None when none is known.

    A span that ends before it starts (a deal entered in the CRM after its close, as imported history is) tells
    no cycle and is left out rather than averaged in as negative days.
    """
    days = [(end - start) / timedelta(days=1) for start, end in spans if start and end and end >= start]
    return Decimal(str(sum(days) / len(days))).quantize(Decimal("0.1")) if days else None


def build_deal_stats(
    inp: ReportInput, deals: Sequence[Position], by_contact: Mapping[str, Sequence[Touch]]
) -> list[DealStatsRow]:
    """Won deals grouped by the channel of their first touch, with average size, sales cycle and journey."""
    groups: dict[str, list[tuple[Position, Touch | None]]] = defaultdict(list)
    for deal in deals:
        first = _first_touch(deal_touches(deal, by_contact))
        groups[first.channel.value if first else UNATTRIBUTED].append((deal, first))
    rows = []
    for source, members in groups.items():
        revenue = sum((d.amount_base for d, _ in members), Decimal(0))
        cycle = _average_days([(inp.deal_created.get(d.deal_id), d.closed_at) for d, _ in members])
        journey = _average_days([(t.at if t else None, d.closed_at) for d, t in members])
        average = cents(revenue / len(members))
        rows.append(DealStatsRow(source, len(members), cents(revenue), average, cycle, journey))
    rows.sort(key=lambda r: (-r.revenue, r.source))
    return rows


def new_customers(inp: ReportInput) -> list[ContactFacts]:
    """Contacts whose first currently won deal closed in the period."""
    first_won: dict[str, datetime] = {}
    for pos in positions(inp.ledger).values():
        for contact in pos.contacts:
            if pos.closed_at is not None and (contact not in first_won or pos.closed_at < first_won[contact]):
                first_won[contact] = pos.closed_at
    return [c for c in inp.contacts if inp.in_period(first_won.get(c.contact_id))]


def _campaign_of(contact: ContactFacts) -> str:
    return (contact.original_source.utm_campaign if contact.original_source else None) or NO_CAMPAIGN


def build_roi(inp: ReportInput, attributed: Sequence[AttributedRow], models: Sequence[Model]) -> list[RoiRow]:
    """CAC and ROI for every channel and campaign that has spend in the period, under each model."""
    spend: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
    for row in inp.spend:
        if row.overlaps(inp.period_start, inp.period_end):
            spend["source", row.channel.value] += row.amount
            if row.campaign:
                spend["campaign", row.campaign] += row.amount
    customers: dict[tuple[str, str], int] = defaultdict(int)
    for contact in new_customers(inp):
        customers["source", contact.source] += 1
        customers["campaign", _campaign_of(contact)] += 1
    rows = []
    for model in models:
        revenue = {(r.dimension, r.key): r.revenue for r in attributed if r.model is model}
        for (dimension, key), cost in sorted(spend.items(), key=lambda item: (item[0][0] != "source", item[0][1])):
            earned, won = revenue.get((dimension, key), Decimal("0.00")), customers[dimension, key]
            cac = cents(cost / won) if won else None
            rows.append(RoiRow(model, dimension, key, cents(cost), earned, won, cac, _percent(earned - cost, cost)))
    return rows


def credited(
    models: Sequence[Model],
    deals: Sequence[Position],
    milestones: Mapping[str, Milestones],
    by_contact: Mapping[str, Sequence[Touch]],
    half_life: timedelta,
) -> list[AttributedRow]:
    """The rows of ``attribute_deals`` for every model in turn."""
    return [row for model in models for row in attribute_deals(model, deals, milestones, by_contact, half_life)]


def build_report(
    inp: ReportInput,
    models: Sequence[Model] = tuple(Model),
    *,
    half_life: timedelta = DEFAULT_HALF_LIFE,
    by: Granularity = Granularity.MONTH,
    detail: bool = False,
    sla: SlaConfig | None = None,
    now: datetime | None = None,
    clv_horizon_days: int | None = None,
) -> Report:
    """The closed-loop report for ``inp``'s period under ``models`` (all of them by default).

    ``by`` buckets revenue over time by month or quarter; ``detail`` adds each deal with its touches and credits.
    ``sla`` adds the follow-up SLA section of ``inp.mqls`` as of ``now`` (the period's end by default);
    ``clv_horizon_days`` bounds customer lifetime value (all won deals by default).
    Open deals are attributed as won ones are, with every touch so far (they have no close yet).
    """
    deals = won_in_period(inp)
    both = [*deals, *inp.open_deals]
    by_contact = journeys(inp)
    milestones = deal_milestones(inp, both)
    attributed = credited(models, deals, milestones, by_contact, half_life)
    pipeline = credited(models, inp.open_deals, milestones, by_contact, half_life)
    won_now, period = list(positions(inp.ledger).values()), Window(inp.period_start, inp.period_end)
    touched = {d.deal_id: deal_touches(d, by_contact) for d in both}
    funnel, funnel_total = build_funnel(inp)
    labels = inp.deal_names, inp.contact_labels
    details = build_details(both, touched, milestones, models, half_life, *labels) if detail else []
    return Report(
        period_start=inp.period_start,
        period_end=inp.period_end,
        base_currency=inp.base_currency,
        models=tuple(models),
        total_revenue=cents(sum((d.amount_base for d in deals), Decimal(0))),
        won_deals=len(deals),
        funnel=funnel,
        funnel_total=funnel_total,
        attributed=tuple(attributed),
        deal_stats=tuple(build_deal_stats(inp, deals, by_contact)),
        roi=tuple(build_roi(inp, attributed, models)),
        granularity=by,
        trend=tuple(build_trend(won_now, period, by)),
        previous=compare_period(won_now, period),
        pipeline=tuple(pipeline),
        open_deals=len(inp.open_deals),
        open_amount=cents(sum((d.amount_base for d in inp.open_deals), Decimal(0))),
        influence=build_influence(deals, touched, inp.deal_created),
        quality=build_quality(deals, touched, inp.unpriced_open_deals),
        details=tuple(details),
        feedback=build_feedback(feedback_leads(inp)) if inp.feedback else None,
        sla=None if sla is None else build_sla(inp.mqls, sla, inp.period_start, inp.period_end, now or inp.period_end),
        clv=build_clv(inp.ledger, origins(inp), inp.period_start, inp.period_end, inp.spend, clv_horizon_days),
    )


def origins(inp: ReportInput) -> dict[str, tuple[str, str]]:
    """Each contact's original source channel and campaign, as CLV groups customers."""
    return {c.contact_id: (c.source, _campaign_of(c)) for c in inp.contacts}
