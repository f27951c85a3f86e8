"""The report as rich tables on a console."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from closeloop.loop.feedback_render import feedback_sections
from closeloop.loop.fmt import money, number, percent, source_label
from closeloop.loop.report import Report
from closeloop.loop.sections import (
    Section,
    detail_sections,
    influence_section,
    pipeline_section,
    quality_section,
    trend_section,
)
from closeloop.loop.sla_clv_render import clv_sections, sla_sections

_STAGE_HEADERS = ("Leads", "MQL", "SQL", "Opps", "Customers")
_RATE_HEADERS = ("Lead→MQL", "MQL→SQL", "SQL→Opp", "Opp→Cust", "Lead→Cust")


def funnel_table(report: Report) -> Table:
    """Contacts created in the period by original source, per funnel stage, with conversion rates."""
    table = Table(title="Funnel by original source (contacts created in the period)", title_justify="left")
    table.add_column("Source")
    for header in (*_STAGE_HEADERS, *_RATE_HEADERS):
        table.add_column(header, justify="right")
    for row in (*report.funnel, report.funnel_total):
        rates = [percent(r) for r in (*row.conversions, row.overall)]
        table.add_row(
            source_label(row.source),
            *(number(c) for c in row.counts),
            *rates,
            style="bold" if row is report.funnel_total else None,
        )
    return table


def section_table(section: Section) -> Table:
    """A report section as a rich table: its note as the caption, word columns left, figures right."""
    table = Table(title=section.title, title_justify="left", caption=section.note, caption_justify="left")
    for i, header in enumerate(section.headers):
        table.add_column(header, justify="left" if i < section.text else "right")
    for n, row in enumerate(section.rows):
        table.add_row(*row, style="bold" if n >= len(section.rows) - section.totals else None)
    return table


def deal_table(report: Report) -> Table:
    """Won deals by first-touch source: count, revenue, average size, sales cycle and journey length."""
    table = Table(title="Won deals by first-touch source", title_justify="left")
    for header, justify in (
        ("Source", "left"),
        ("Deals", "right"),
        ("Revenue", "right"),
        ("Avg deal", "right"),
        ("Avg cycle (days)", "right"),
        ("Avg journey (days)", "right"),
    ):
        table.add_column(header, justify=justify)  # type: ignore[arg-type]  # rich's JustifyMethod literal
    for row in report.deal_stats:
        table.add_row(
            source_label(row.source),
            number(row.deals),
            money(row.revenue),
            money(row.average_deal),
            number(row.average_cycle_days),
            number(row.average_journey_days),
        )
    return table


def roi_table(report: Report) -> Table:
    """CAC and ROI for each channel and campaign with spend, under each model."""
    table = Table(title=f"CAC and ROI ({report.base_currency})", title_justify="left")
    for header in ("Model", "Channel / campaign", "Spend", "Revenue", "New customers", "CAC", "ROI"):
        table.add_column(header, justify="left" if header in ("Model", "Channel / campaign") else "right")
    for row in report.roi:
        key = source_label(row.key) if row.dimension == "source" else f"Campaign {row.key}"
        table.add_row(
            row.model.label,
            key,
            money(row.spend),
            money(row.revenue),
            number(row.customers),
            money(row.cac),
            percent(row.roi),
        )
    return table


def report_tables(report: Report) -> list[Table]:
    """Every table of the report, in reading order."""
    tables = [
        section_table(trend_section(report)),
        section_table(influence_section(report)),
        section_table(quality_section(report)),
        funnel_table(report),
        section_table(pipeline_section(report, "source")),
        section_table(pipeline_section(report, "campaign")),
        deal_table(report),
    ]
    tables += [roi_table(report)] if report.roi else []
    tables += [section_table(s) for s in feedback_sections(report)]
    tables += [section_table(s) for s in (*sla_sections(report), *clv_sections(report))]
    return tables + [section_table(s) for s in detail_sections(report)]


def render_table(report: Report, console: Console) -> None:
    """Print the report's tables to ``console``."""
    start, end = report.period_start.date().isoformat(), report.period_end.date().isoformat()
    previous = report.previous
    against = f" (previous period {money(previous.revenue)}, {percent(previous.change)})" if previous else ""
    console.print(
        f"[bold]Closed-loop report[/bold] {start} → {end}: {report.won_deals} won deals, "
        f"{money(report.total_revenue)} {report.base_currency}{against}; "
        f"open pipeline {money(report.open_amount)} in {report.open_deals} deals"
    )
    for table in report_tables(report):
        console.print(table)
