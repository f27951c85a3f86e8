"""The follow-up SLA and customer lifetime value sections, laid out once for every report format.

``sla_sections`` and ``clv_sections`` are rows of text for the terminal table and the HTML page; ``sla_csv_rows``
and ``clv_csv_rows`` the long-format CSV rows; ``sla_json`` and ``clv_json`` plain data for JSON; ``sla_chart``
and ``clv_chart`` the HTML page's charts.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import fields
from datetime import datetime
from decimal import Decimal
from typing import Any

from closeloop.loop.clv import ClvReport, ClvRow
from closeloop.loop.fmt import DASH, money, number, percent, source_label
from closeloop.loop.report import Report
from closeloop.loop.sections import Section
from closeloop.loop.sla import OpenBreach, SlaReport, SlaRow, describe_span
from closeloop.loop.svg import Series, grouped_bars
from closeloop.model import iso_utc

CsvRow = tuple[str, str, str, str, str, str]
_SLA_HEADERS = ("Handed over", "Within SLA", "Breached", "Pending", "Within %", "Median (h)", "90th pct (h)")


def _hours(value: Decimal | None) -> str:
    return DASH if value is None else f"{value:,.2f}"


def _when(moment: datetime) -> str:
    return f"{moment:%Y-%m-%d %H:%M} UTC"


def _sla_cells(row: SlaRow) -> list[str]:
    return [
        number(row.handed_over),
        number(row.within),
        number(row.breached),
        number(row.pending),
        percent(row.within_percent),
        _hours(row.median_hours),
        _hours(row.p90_hours),
    ]


def sla_note(sla: SlaReport) -> str:
    """What the SLA section counts, in one sentence or two."""
    clock = f"business hours {sla.business_hours}" if sla.business_hours else "round the clock"
    within = describe_span(sla.follow_up)
    return (
        f"MQLs handed over in the period, held to a follow-up within {within} ({clock}): the first "
        "sales activity after the MQL date, else the first move out of MQL. Within % of those decided (pending: "
        "not yet followed up, time left). Times to follow-up in hours, nearest-rank median and 90th percentile."
    )


def sla_sections(report: Report) -> list[Section]:
    """The SLA by owner and by source, and the open breaches now; none when no SLA is configured."""
    sla = report.sla
    if sla is None:
        return []
    found = []
    for dimension, rows, label in (("Owner", sla.by_owner, str), ("Source", sla.by_source, source_label)):
        cells = [[label(r.key), *_sla_cells(r)] for r in rows] + [["All", *_sla_cells(sla.total)]]
        title = f"MQL follow-up SLA by {dimension.lower()}"
        found.append(Section(title, sla_note(sla), (dimension, *_SLA_HEADERS), cells, totals=1))
    found.append(breach_section(sla))
    return found


def breach_section(sla: SlaReport) -> Section:
    """The MQLs past their SLA without any follow-up, now: the oldest first."""
    note = f"As of {_when(sla.as_of)}: MQLs still at the MQL stage, not followed up, past their SLA."
    headers = ("MQL", "Owner", "Source", "MQL since", "Age (h)", "Overdue (h)")
    rows = [
        [b.label, b.owner, source_label(b.source), _when(b.mql_at), _hours(b.age_hours), _hours(b.overdue_hours)]
        for b in sla.open_breaches
    ]
    return Section(f"Open SLA breaches ({len(rows)})", note, headers, rows, text=4)


def clv_note(clv: ClvReport, currency: str) -> str:
    """What the CLV section counts."""
    horizon = f"within {clv.horizon_days} days of the first win" if clv.horizon_days else "to date"
    return (
        f"Customers acquired in the period (first standing win in it) and their lifetime value in {currency}: "
        f"their shares of every won deal {horizon}, renewals and expansions included. CAC and CLV:CAC where the "
        "spend file has spend."
    )


def _clv_cells(row: ClvRow) -> list[str]:
    ratio = DASH if row.clv_to_cac is None else f"{row.clv_to_cac}:1"
    return [
        number(row.customers),
        money(row.total_value),
        money(row.average_value),
        money(row.spend),
        money(row.cac),
        ratio,
    ]


def clv_sections(report: Report) -> list[Section]:
    """Customer lifetime value by original source and by campaign."""
    clv = report.clv
    if clv is None:
        return []
    headers = ("Customers", "Total CLV", "Average CLV", "Spend", "CAC", "CLV:CAC")
    found = []
    for dimension in ("source", "campaign"):
        label = source_label if dimension == "source" else str
        section = Section(
            f"Customer lifetime value by {'original source' if dimension == 'source' else 'campaign'}",
            clv_note(clv, report.base_currency),
            (dimension.capitalize(), *headers),
            [[label(r.key), *_clv_cells(r)] for r in clv.rows_for(dimension)] + [["All", *_clv_cells(clv.total)]],
            totals=1,
        )
        found.append(section)
    return found


def _value(value: object) -> str:
    return "" if value is None else str(value)


def sla_csv_rows(report: Report) -> Iterator[CsvRow]:
    """The SLA as long-format CSV rows: figures per owner, source and all, then one row set per open breach."""
    sla = report.sla
    if sla is None:
        return
    for dimension, rows in (("owner", sla.by_owner), ("source", sla.by_source), ("all", (sla.total,))):
        for row in rows:
            for metric, value in (
                ("handed_over", row.handed_over),
                ("within_sla", row.within),
                ("breached", row.breached),
                ("pending", row.pending),
                ("within_sla_pct", row.within_percent),
                ("median_hours", row.median_hours),
                ("p90_hours", row.p90_hours),
            ):
                yield ("sla", "", dimension, row.key, metric, _value(value))
    for b in sla.open_breaches:
        told: tuple[tuple[str, object], ...] = (
            ("label", b.label),
            ("owner", b.owner),
            ("source", b.source),
            ("mql_at", iso_utc(b.mql_at)),
            ("due_at", iso_utc(b.due_at)),
            ("age_hours", b.age_hours),
            ("overdue_hours", b.overdue_hours),
        )
        for name, told_value in told:
            yield ("sla_open_breach", "", "contact", b.contact_id, name, _value(told_value))


def clv_csv_rows(report: Report) -> Iterator[CsvRow]:
    """Customer lifetime value as long-format CSV rows, per source, campaign and all."""
    clv = report.clv
    if clv is None:
        return
    for row in (*clv.rows, clv.total):
        for metric in ("customers", "total_value", "average_value", "spend", "cac", "clv_to_cac"):
            yield ("clv", "", row.dimension, row.key, metric, _value(getattr(row, metric)))


def _plain(value: object) -> object:
    if value is None or isinstance(value, int | str):
        return value
    if isinstance(value, datetime):
        return iso_utc(value)
    return str(value)


def _fields(row: SlaRow | OpenBreach | ClvRow) -> dict[str, object]:
    return {f.name: _plain(getattr(row, f.name)) for f in fields(row)}


def sla_json(report: Report) -> dict[str, Any] | None:
    """The SLA section as JSON-ready data (hours and percentages as strings), or None without an SLA."""
    sla = report.sla
    if sla is None:
        return None

    def row(r: SlaRow) -> dict[str, object]:
        return _fields(r) | {"within_percent": _plain(r.within_percent)}

    return {
        "follow_up_hours": str(Decimal(sla.follow_up.total_seconds()) / 3600),
        "business_hours": sla.business_hours,
        "as_of": iso_utc(sla.as_of),
        "total": row(sla.total),
        "by_owner": [row(r) for r in sla.by_owner],
        "by_source": [row(r) for r in sla.by_source],
        "open_breaches": [_fields(b) for b in sla.open_breaches],
    }


def clv_json(report: Report) -> dict[str, Any] | None:
    """Customer lifetime value as JSON-ready data (money as strings)."""
    clv = report.clv
    if clv is None:
        return None
    return {
        "horizon_days": clv.horizon_days,
        "total": _fields(clv.total),
        "by_source": [_fields(r) for r in clv.rows_for("source")],
        "by_campaign": [_fields(r) for r in clv.rows_for("campaign")],
    }


def sla_chart(report: Report) -> str | None:
    """Bars of MQLs within and past the SLA per owner, or None without an SLA or MQLs."""
    sla = report.sla
    if sla is None or not sla.by_owner:
        return None
    series = [Series("Within SLA", "#2e9e5b"), Series("Breached", "#d1495b"), Series("Pending", "#8a94a6")]
    values = [[Decimal(r.within), Decimal(r.breached), Decimal(r.pending)] for r in sla.by_owner]
    return grouped_bars("MQL follow-up by owner", [r.key for r in sla.by_owner], series, values, lambda v: f"{v:,.0f}")


def clv_chart(report: Report) -> str | None:
    """Bars of average CLV per original source, or None when no customer was acquired in the period."""
    clv = report.clv
    rows = [r for r in clv.rows_for("source") if r.customers] if clv else []
    if not rows:
        return None
    series = [Series("Average CLV", "#5e81ac")]
    values = [[r.average_value] for r in rows]
    return grouped_bars(
        "Average customer lifetime value by source",
        [source_label(r.key) for r in rows],
        series,
        values,
        lambda v: f"{v:,.0f}",
    )
