"""The report's newer sections as plain rows of text, laid out once for the terminal table and the HTML page.

A cell may hold two lines ("1,200.00" over "0.5 deals"): the table shows both, the HTML page breaks the line.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from decimal import Decimal

from closeloop.loop.detail import DealDetail, TouchCredit
from closeloop.loop.fmt import DASH, money, number, percent, source_label
from closeloop.loop.influence import RevenueShare
from closeloop.loop.report import AttributedRow, Report
from closeloop.loop.trend import Granularity


@dataclass(frozen=True, slots=True)
class Section:
    """A titled table: the first ``text`` columns are words (left-aligned), the rest figures."""

    title: str
    note: str
    headers: tuple[str, ...]
    rows: list[list[str]] = field(default_factory=list)
    text: int = 1
    totals: int = 0
    """How many rows at the end are totals (shown bold)."""


def deals_label(count: Decimal | int) -> str:
    """A deal count as people read it, fractional credits kept ("0.3333 deals", "1 deal")."""
    return f"{number(count)} deal" + ("" if count == 1 else "s")


def trend_section(report: Report) -> Section:
    """Closed-won revenue per month or quarter against the same span one bucket earlier."""
    unit = "month" if report.granularity is Granularity.MONTH else "quarter"
    headers = (unit.capitalize(), "Revenue", "Won deals", f"Previous {unit}", "Previous deals", "Change")
    rows = [
        [
            row.label + (" (part)" if row.partial else ""),
            money(row.revenue),
            number(row.deals),
            money(row.previous_revenue),
            number(row.previous_deals),
            percent(row.change),
        ]
        for row in report.trend
    ]
    note = (
        f"Closed-won revenue in {report.base_currency} by close date, each {unit} against the {unit} before it"
        f" (a {unit} the period cuts is marked part and compared with the same days one {unit} earlier)."
    )
    if report.previous is not None:
        previous = report.previous
        last = previous.previous.end - timedelta(days=1)
        rows.append(
            [
                "Whole period",
                money(report.total_revenue),
                number(report.won_deals),
                money(previous.revenue),
                number(previous.deals),
                percent(previous.change),
            ]
        )
        span = f"{previous.previous.start:%Y-%m-%d} to {last:%Y-%m-%d}"
        note += f" The whole period against as many days just before it, {span}."
    return Section(f"Revenue over time (by {unit})", note, headers, rows, totals=int(report.previous is not None))


def _share_row(label: str, share: RevenueShare) -> list[str]:
    return [label, money(share.revenue), number(share.deals), percent(share.share)]


def influence_section(report: Report) -> Section:
    """Marketing-originated and marketing-influenced closed-won revenue, with their share of all of it."""
    headers = ("Revenue", "Amount", "Won deals", "Share of revenue")
    rows = []
    if report.influence is not None:
        rows = [
            _share_row("Marketing-originated", report.influence.originated),
            _share_row("Marketing-influenced", report.influence.influenced),
        ]
    rows.append(
        [
            "All closed-won",
            money(report.total_revenue),
            number(report.won_deals),
            percent(Decimal("100.0") if report.total_revenue else None),
        ]
    )
    note = (
        "Originated: the deal's first touch is a marketing touch made by the deal's creation. Influenced: at least"
        " one marketing touch by the close. A marketing touch is any touch but a direct one without a campaign."
    )
    return Section("Marketing-originated and marketing-influenced revenue", note, headers, rows, totals=1)


def quality_section(report: Report) -> Section:
    """The unattributed share of revenue and what the report had to leave out."""
    headers = ("Data quality", "Amount", "Deals", "Share of revenue")
    rows = []
    if report.quality is not None:
        quality = report.quality
        rows = [
            _share_row("Unattributed revenue (no touch by the close)", quality.unattributed),
            ["Won deals credited to no contact", "", number(quality.without_contacts), ""],
            ["Open deals left out (no exchange rate)", "", number(quality.unpriced_open_deals), ""],
        ]
    note = "Unattributed revenue counts as (unattributed) under every model: its deals' contacts have no touch."
    return Section("Data quality", note, headers, rows)


def _cell(row: AttributedRow | None) -> str:
    return DASH if row is None else f"{money(row.revenue)}\n{deals_label(row.deals)}"


def pipeline_section(report: Report, dimension: str) -> Section:
    """Closed-won revenue and open pipeline per source or campaign, one column per model, deal credits beside."""
    headers = (dimension.capitalize(), "Figure", *(m.label for m in report.models))
    rows = []
    for key, won, opened in report.won_and_pipeline(dimension):
        label = source_label(key) if dimension == "source" else key
        rows.append([label, "Closed won", *(_cell(c) for c in won)])
        rows.append(["", "Open pipeline", *(_cell(c) for c in opened)])
    rows.append(
        [
            "Total",
            "Closed won",
            *([f"{money(report.total_revenue)}\n{deals_label(report.won_deals)}"] * len(report.models)),
        ]
    )
    rows.append(
        [
            "",
            "Open pipeline",
            *([f"{money(report.open_amount)}\n{deals_label(report.open_deals)}"] * len(report.models)),
        ]
    )
    note = (
        f"In {report.base_currency}, per attribution model: closed-won revenue of the period and the open pipeline"
        " (every deal open now), each with the deals it stands for; a share of a deal counts as a fraction."
    )
    return Section(f"Revenue and open pipeline by {dimension}", note, headers, rows, text=2, totals=2)


def _when(moment: datetime) -> str:
    """A touch's time: the day, and the time of day when it is not midnight."""
    return f"{moment:%Y-%m-%d}" if moment.time() == time(0) else f"{moment:%Y-%m-%d %H:%M}"


def _touch_row(line: TouchCredit) -> list[str]:
    touch = line.touch
    credits = [f"{money(a)}\n× {number(s.normalize())}" for a, s in zip(line.amounts, line.shares, strict=True)]
    kind = touch.kind.value.replace("_", " ")
    return [_when(touch.at), line.contact, kind, touch.channel.label, touch.campaign or "", *credits]


def detail_section(report: Report, deal: DealDetail) -> Section:
    """One deal with its touches in journey order and every model's credit to each."""
    headers = ("Touch at", "Contact", "Kind", "Channel", "Campaign", *(m.label for m in report.models))
    rows = [_touch_row(line) for line in deal.touches]
    if not rows:
        rows = [["(no touch: unattributed)", "", "", "", "", *([""] * len(report.models))]]
    name = f"{deal.name} ({deal.deal_id})" if deal.name else deal.deal_id
    when = f"won {deal.closed_at:%Y-%m-%d}" if deal.closed_at else "open"
    created = f"created {deal.created_at:%Y-%m-%d}" if deal.created_at else "creation unknown"
    contacts = ", ".join(deal.contacts) or "none"
    note = (
        f"{when}, {created}, {money(deal.amount_base)} {report.base_currency}; contacts: {contacts}."
        " Each model's credit to each touch, and below it the share of the deal it stands for."
    )
    return Section(f"Deal {name}", note, headers, rows, text=5)


def detail_sections(report: Report) -> Sequence[Section]:
    """Every deal of ``--detail``, won ones first."""
    return [detail_section(report, deal) for deal in report.details]
