"""The report as rich tables on a console."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from closeloop.loop.fmt import money, number, percent, source_label
from closeloop.loop.report import Report

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


def revenue_table(report: Report, dimension: str) -> Table:
    """Attributed revenue per source or campaign, one column per model."""
    title = f"Revenue by {dimension} ({report.base_currency})"
    table = Table(title=title, title_justify="left")
    table.add_column(dimension.capitalize())
    for model in report.models:
        table.add_column(model.label, justify="right")
    for key, values in report.revenue_matrix(dimension):
        label = source_label(key) if dimension == "source" else key
        table.add_row(label, *(money(v) for v in values))
    table.add_row("Total", *([money(report.total_revenue)] * len(report.models)), style="bold")
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
        funnel_table(report),
        revenue_table(report, "source"),
        revenue_table(report, "campaign"),
        deal_table(report),
    ]
    return [*tables, roi_table(report)] if report.roi else tables


def render_table(report: Report, console: Console) -> None:
    """Print the report's tables to ``console``."""
    start, end = report.period_start.date().isoformat(), report.period_end.date().isoformat()
    console.print(
        f"[bold]Closed-loop report[/bold] {start} → {end}: {report.won_deals} won deals, "
        f"{money(report.total_revenue)} {report.base_currency}"
    )
    for table in report_tables(report):
        console.print(table)
