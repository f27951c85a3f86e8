"""The report as one self-contained HTML page: inline CSS, inline SVG charts, no scripts, no network."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from decimal import Decimal
from html import escape

from closeloop.loop.attribution import Model
from closeloop.loop.feedback_render import feedback_sections
from closeloop.loop.fmt import money, number, percent, source_label
from closeloop.loop.report import NO_CAMPAIGN, Report
from closeloop.loop.sections import (
    Section,
    detail_sections,
    influence_section,
    pipeline_section,
    quality_section,
    trend_section,
)
from closeloop.loop.sla_clv_render import clv_chart, clv_sections, sla_chart, sla_sections
from closeloop.loop.svg import Series, columns, diverging_bars, funnel, grouped_bars
from closeloop.loop.trend import Granularity

MODEL_COLORS = {
    Model.FIRST_TOUCH: "#4e79a7",
    Model.LAST_TOUCH: "#f28e2b",
    Model.LINEAR: "#59a14f",
    Model.U_SHAPED: "#e15759",
    Model.W_SHAPED: "#76b7b2",
    Model.FULL_PATH: "#edc948",
    Model.TIME_DECAY: "#b07aa1",
}

CSS = """
:root { color-scheme: light; }
* { box-sizing: border-box; }
body { margin: 0; background: #f4f6fa; color: #2e3440;
  font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
main { max-width: 1360px; margin: 0 auto; padding: 32px 24px 48px; }
header h1 { margin: 0; font-size: 28px; letter-spacing: -0.02em; }
header p { margin: 4px 0 0; color: #5e6a7d; }
.kpis { display: grid; grid-template-columns: repeat(auto-fit, minmax(220px, 1fr)); gap: 14px;
  margin: 24px 0; }
.kpi { background: #fff; border-radius: 12px; padding: 16px 18px; box-shadow: 0 1px 3px rgba(30,40,60,.08); }
.kpi .label { color: #5e6a7d; font-size: 13px; text-transform: uppercase; letter-spacing: .04em; }
.kpi .value { font-size: 22px; white-space: nowrap; font-weight: 700; margin-top: 2px; }
.card { background: #fff; border-radius: 12px; padding: 20px 24px; margin: 0 0 20px;
  box-shadow: 0 1px 3px rgba(30,40,60,.08); }
.card h2 { margin: 0 0 4px; font-size: 18px; }
.card p.note { margin: 0 0 14px; color: #5e6a7d; font-size: 13px; }
svg { display: block; max-width: 100%; height: auto; font-family: inherit; }
table { width: 100%; border-collapse: collapse; font-size: 14px; }
th, td { padding: 7px 10px; border-bottom: 1px solid #e8ecf2; text-align: left; white-space: nowrap; }
th { color: #5e6a7d; font-weight: 600; font-size: 12px; text-transform: uppercase; letter-spacing: .03em; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
td small { color: #5e6a7d; font-size: 12px; }
table.dense { font-size: 13px; }
table.dense th, table.dense td { padding: 6px 7px; }
table.dense td:not(.num) { white-space: normal; overflow-wrap: anywhere; max-width: 200px; }
tr.total td { font-weight: 700; }
tr:not(.total) + tr.total td { border-top: 2px solid #d8dee9; }
.scroll { overflow-x: auto; }
footer { color: #8a94a6; font-size: 12px; text-align: center; margin-top: 28px; }
"""


DENSE_COLUMNS = 9
"""A table with more columns than this is set tighter, so that it reads whole at 1,400 px."""


def _cell(text: str) -> str:
    """A cell's text; a second line (a figure's deals or share) goes below it in small print."""
    first, _, second = text.partition("\n")
    return escape(first) + (f"<br><small>{escape(second)}</small>" if second else "")


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]], *, totals: int = 0, text: int = 1) -> str:
    """An HTML table; columns after the first ``text`` are right-aligned; the last ``totals`` rows are bold."""
    head = "".join(f"<th{' class=num' if i >= text else ''}>{escape(h)}</th>" for i, h in enumerate(headers))
    body = []
    for n, row in enumerate(rows):
        cells = "".join(f"<td{' class=num' if i >= text else ''}>{_cell(c)}</td>" for i, c in enumerate(row))
        marker = ' class="total"' if n >= len(rows) - totals else ""
        body.append(f"<tr{marker}>{cells}</tr>")
    dense = ' class="dense"' if len(headers) > DENSE_COLUMNS else ""
    table = f"<table{dense}><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"
    return f'<div class="scroll">{table}</div>'


def _section(section: Section) -> str:
    table = _table(section.headers, section.rows, totals=section.totals, text=section.text)
    return _card(section.title, section.note, table)


def _card(title: str, note: str, content: str) -> str:
    note_html = f'<p class="note">{escape(note)}</p>' if note else ""
    return f'<section class="card"><h2>{escape(title)}</h2>{note_html}{content}</section>'


def _kpis(report: Report) -> str:
    average = report.total_revenue / report.won_deals if report.won_deals else None
    spend = sum((r.spend for r in report.roi if r.dimension == "source" and r.model is report.models[0]), Decimal(0))
    items = [
        (f"Revenue ({report.base_currency})", money(report.total_revenue)),
        ("Won deals", number(report.won_deals)),
        ("Average deal", money(None if average is None else average.quantize(Decimal("0.01")))),
        ("New leads", number(report.funnel_total.counts[0])),
        ("Lead → customer", percent(report.funnel_total.overall)),
    ]
    if report.previous is not None:
        items.append(("Vs previous period", percent(report.previous.change)))
    items.append((f"Open pipeline ({report.open_deals} deals)", money(report.open_amount)))
    if report.quality is not None:
        items.append(("Unattributed", percent(report.quality.unattributed.share)))
    if report.roi:
        items.append(("Spend", money(spend)))
    cards = "".join(
        f'<div class="kpi"><div class="label">{escape(k)}</div><div class="value">{escape(v)}</div></div>'
        for k, v in items
    )
    return f'<section class="kpis">{cards}</section>'


def revenue_chart(report: Report) -> str:
    """Grouped bars of attributed revenue by source, one bar per model."""
    matrix = report.revenue_matrix("source")
    series = [Series(m.label, MODEL_COLORS[m]) for m in report.models]
    chart = grouped_bars(
        "Revenue by source per attribution model",
        [source_label(k) for k, _ in matrix],
        series,
        [values for _, values in matrix],
        lambda v: f"{v:,.0f}",
    )
    note = f"Closed-won revenue in {report.base_currency}, credited to the channel of each touch."
    return _card("Revenue by source", note + " One bar per attribution model.", chart)


def funnel_chart(report: Report) -> str:
    """The funnel of all contacts created in the period."""
    names = ("Leads", "MQL", "SQL", "Opportunities", "Customers")
    total = report.funnel_total
    chart = funnel("Funnel", list(zip(names, total.counts, strict=True)), total.conversions)
    return _card("Funnel", "Contacts created in the period and the furthest stage each reached.", chart)


def roi_chart(report: Report) -> str:
    """ROI bars per channel under the first model, or a note when no spend was supplied."""
    model = report.models[0]
    items = [
        (source_label(r.key), r.roi)
        for r in report.roi
        if r.model is model and r.dimension == "source" and r.roi is not None
    ]
    if not items:
        note = "No spend supplied: pass a spend CSV (period,channel,campaign,amount) to see CAC and ROI."
        return _card("ROI by channel", note, "")
    chart = diverging_bars(
        f"ROI by channel ({model.label})", [(k, v) for k, v in items if v is not None], lambda v: f"{v:,.1f}%"
    )
    return _card("ROI by channel", f"(Attributed revenue − spend) ÷ spend, under the {model.label} model.", chart)


def _funnel_table(report: Report) -> str:
    headers = (
        "Source",
        "Leads",
        "MQL",
        "SQL",
        "Opps",
        "Customers",
        "Lead→MQL",
        "MQL→SQL",
        "SQL→Opp",
        "Opp→Cust",
        "Lead→Cust",
    )
    rows = [
        [
            source_label(r.source),
            *(number(c) for c in r.counts),
            *(percent(p) for p in (*r.conversions, r.overall)),
        ]
        for r in (*report.funnel, report.funnel_total)
    ]
    return _card("Funnel by original source", "Stage-to-stage conversion rates.", _table(headers, rows, totals=1))


def trend_chart(report: Report) -> str:
    """Columns of closed-won revenue per month or quarter of the period."""
    unit = "month" if report.granularity is Granularity.MONTH else "quarter"
    items = [(row.label, row.revenue) for row in report.trend]
    chart = columns(f"Revenue per {unit}", items, lambda v: f"{v:,.0f}", "#4e79a7")
    note = f"Closed-won revenue in {report.base_currency} per {unit}, by close date; the table below compares each"
    return _card("Revenue over time", f"{note} {unit} with the one before it.", chart)


CAMPAIGNS_CHARTED = 12


def campaign_chart(report: Report) -> str:
    """Closed-won revenue and open pipeline per campaign under the first model, the largest campaigns first."""
    model = report.models[0]
    figures = [
        (key, [cell.revenue if cell else Decimal(0) for cell in (won[0], opened[0])])
        for key, won, opened in report.won_and_pipeline("campaign")
    ]
    figures = sorted((f for f in figures if any(f[1])), key=lambda f: (-f[1][0], -f[1][1], f[0]))
    charted = figures[:CAMPAIGNS_CHARTED]
    labels, values = [key for key, _ in charted], [v for _, v in charted]
    series = [Series("Closed-won revenue", "#59a14f"), Series("Open pipeline", "#f28e2b")]
    chart = grouped_bars(f"Campaigns ({model.label})", labels, series, values, lambda v: f"{v:,.0f}")
    note = (
        f"In {report.base_currency}, credited to each touch's campaign under the {model.label} model;"
        f" {NO_CAMPAIGN} holds the touches that name none. The {CAMPAIGNS_CHARTED} largest campaigns."
    )
    return _card("Campaigns: revenue and open pipeline", note, chart)


def feedback_chart(report: Report) -> str:
    """Accepted, rejected and recycled leads per source: which channels bring leads sales does not want."""
    if report.feedback is None:
        return ""
    rows = report.feedback.rows_for("source")
    labels = [source_label(r.key) for r in rows]
    values = [[Decimal(r.accepted), Decimal(r.rejected), Decimal(r.recycled)] for r in rows]
    series = [Series("Accepted", "#59a14f"), Series("Rejected", "#e15759"), Series("Recycled", "#edc948")]
    chart = grouped_bars("Sales feedback by source", labels, series, values, lambda v: f"{v:,.0f}")
    note = "Leads handed to sales in the period, by the verdict their lead status means now (loop.feedback)."
    return _card("Sales feedback on leads", note, chart)


def _deal_table(report: Report) -> str:
    headers = ("Source", "Deals", "Revenue", "Average deal", "Sales cycle (days)", "Journey (days)")
    rows = [
        [
            source_label(r.source),
            number(r.deals),
            money(r.revenue),
            money(r.average_deal),
            number(r.average_cycle_days),
            number(r.average_journey_days),
        ]
        for r in report.deal_stats
    ]
    note = (
        "Grouped by the channel of each deal's first touch; the sales cycle runs from deal creation to close,"
        " the journey from first touch to close."
    )
    return _card("Won deals by first-touch source", note, _table(headers, rows))


def _roi_table(report: Report) -> str:
    headers = ("Model", "Channel / campaign", "Spend", "Revenue", "New customers", "CAC", "ROI")
    rows = [
        [
            r.model.label,
            source_label(r.key) if r.dimension == "source" else f"Campaign {r.key}",
            money(r.spend),
            money(r.revenue),
            number(r.customers),
            money(r.cac),
            percent(r.roi),
        ]
        for r in report.roi
    ]
    note = f"Spend and attributed revenue in {report.base_currency}; CAC is spend per new customer."
    return _card("CAC and ROI", note, _table(headers, rows, text=2))


def alignment_cards(report: Report) -> list[str]:
    """The follow-up SLA and customer lifetime value: each chart, then its tables."""
    cards = []
    if (chart := sla_chart(report)) is not None:
        cards.append(_card("MQL follow-up by owner", "MQLs handed over in the period, by whose they are.", chart))
    cards += [_section(s) for s in sla_sections(report)]
    if (chart := clv_chart(report)) is not None:
        cards.append(_card("Customer lifetime value", "Average CLV of the customers acquired in the period.", chart))
    return cards + [_section(s) for s in clv_sections(report)]


def render_html(report: Report) -> str:
    """The whole report as one HTML document."""
    last_day = report.period_end - timedelta(microseconds=1)
    span = f"{report.period_start:%d %b %Y} – {last_day:%d %b %Y}"
    models = ", ".join(m.label for m in report.models)
    sections = [
        trend_chart(report),
        _section(trend_section(report)),
        _section(influence_section(report)),
        _section(quality_section(report)),
        revenue_chart(report),
        campaign_chart(report),
        funnel_chart(report),
        roi_chart(report),
        _funnel_table(report),
        _section(pipeline_section(report, "source")),
        _section(pipeline_section(report, "campaign")),
        _deal_table(report),
    ]
    if report.roi:
        sections.append(_roi_table(report))
    sections += [feedback_chart(report), *(_section(s) for s in feedback_sections(report))]
    sections += alignment_cards(report)
    sections += [_section(s) for s in detail_sections(report)]
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>Closed-loop report {escape(span)}</title><style>{CSS}</style></head><body><main>"
        f"<header><h1>Closed-loop report</h1><p>{escape(span)} · amounts in {escape(report.base_currency)}"
        f" · models: {escape(models)}</p></header>{_kpis(report)}{''.join(sections)}"
        "<footer>Generated by closeloop</footer></main></body></html>\n"
    )
