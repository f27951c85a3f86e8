"""The report as one long-format CSV: section, model, dimension, key, metric, value."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import datetime

from closeloop.loop.detail import DealDetail
from closeloop.loop.feedback_render import feedback_csv_rows
from closeloop.loop.influence import RevenueShare
from closeloop.loop.report import STAGES, Report
from closeloop.loop.sla_clv_render import clv_csv_rows, sla_csv_rows
from closeloop.model import iso_utc

CSV_COLUMNS = ("section", "model", "dimension", "key", "metric", "value")
Row = tuple[str, str, str, str, str, str]


def _value(value: object) -> str:
    return "" if value is None else str(value)


def _funnel_rows(report: Report) -> Iterator[Row]:
    for row in (*report.funnel, report.funnel_total):
        for stage, count in zip(STAGES, row.counts, strict=True):
            yield ("funnel", "", "source", row.source, stage.value, str(count))
        for a, b, rate in zip(STAGES[:-1], STAGES[1:], row.conversions, strict=True):
            yield ("funnel", "", "source", row.source, f"{a.value}_to_{b.value}_pct", _value(rate))


def _summary_rows(report: Report) -> Iterator[Row]:
    yield ("summary", "", "", "", "total_revenue", str(report.total_revenue))
    yield ("summary", "", "", "", "won_deals", str(report.won_deals))
    if report.previous is not None:
        yield ("summary", "", "", "", "previous_period_revenue", str(report.previous.revenue))
        yield ("summary", "", "", "", "previous_period_won_deals", str(report.previous.deals))
        yield ("summary", "", "", "", "revenue_change_pct", _value(report.previous.change))
    yield ("summary", "", "", "", "open_pipeline", str(report.open_amount))
    yield ("summary", "", "", "", "open_deals", str(report.open_deals))


def _trend_rows(report: Report) -> Iterator[Row]:
    unit = report.granularity.value
    for t in report.trend:
        for metric, value in (
            ("revenue", t.revenue),
            ("won_deals", t.deals),
            ("previous_revenue", t.previous_revenue),
            ("previous_won_deals", t.previous_deals),
            ("change_pct", t.change),
            ("partial", str(t.partial).lower()),
        ):
            yield ("trend", "", unit, t.label, metric, _value(value))


def _share_rows(section: str, key: str, share: RevenueShare) -> Iterator[Row]:
    yield (section, "", "", key, "revenue", str(share.revenue))
    yield (section, "", "", key, "won_deals", str(share.deals))
    yield (section, "", "", key, "share_pct", _value(share.share))


def _influence_rows(report: Report) -> Iterator[Row]:
    if report.influence is not None:
        yield from _share_rows("influence", "marketing_originated", report.influence.originated)
        yield from _share_rows("influence", "marketing_influenced", report.influence.influenced)
    if report.quality is not None:
        yield from _share_rows("data_quality", "unattributed", report.quality.unattributed)
        yield ("data_quality", "", "", "won_deals_without_contacts", "deals", str(report.quality.without_contacts))
        yield ("data_quality", "", "", "open_deals_without_rate", "deals", str(report.quality.unpriced_open_deals))


def _at(moment: datetime | None) -> str:
    return iso_utc(moment) if moment else ""


def _detail_rows(report: Report, deal: DealDetail) -> Iterator[Row]:
    for metric, value in (
        ("name", deal.name or ""),
        ("status", deal.status),
        ("amount", str(deal.amount_base)),
        ("created_at", _at(deal.created_at)),
        ("closed_at", _at(deal.closed_at)),
        ("contacts", " ".join(deal.contacts)),
    ):
        yield ("detail", "", "deal", deal.deal_id, metric, value)
    for n, line in enumerate(deal.touches, start=1):
        t = line.touch
        told = " | ".join((iso_utc(t.at), line.contact, t.kind.value, t.channel.value, t.campaign or ""))
        yield ("detail", "", "deal", deal.deal_id, f"touch_{n}", told)
        for model, amount, share in zip(report.models, line.amounts, line.shares, strict=True):
            yield ("detail", model.value, "deal", deal.deal_id, f"touch_{n}_credit", str(amount))
            yield ("detail", model.value, "deal", deal.deal_id, f"touch_{n}_share", str(share))


def _rows(report: Report) -> Iterator[Row]:
    yield from _summary_rows(report)
    yield from _trend_rows(report)
    yield from _influence_rows(report)
    yield from _funnel_rows(report)
    for a in report.attributed:
        yield ("attributed", a.model.value, a.dimension, a.key, "revenue", str(a.revenue))
        yield ("attributed", a.model.value, a.dimension, a.key, "deals", str(a.deals))
    for p in report.pipeline:
        yield ("pipeline", p.model.value, p.dimension, p.key, "amount", str(p.revenue))
        yield ("pipeline", p.model.value, p.dimension, p.key, "deals", str(p.deals))
    for d in report.deal_stats:
        for metric, value in (
            ("deals", d.deals),
            ("revenue", d.revenue),
            ("average_deal", d.average_deal),
            ("average_cycle_days", d.average_cycle_days),
            ("average_journey_days", d.average_journey_days),
        ):
            yield ("deal_stats", "", "source", d.source, metric, _value(value))
    for r in report.roi:
        for metric, value in (
            ("spend", r.spend),
            ("revenue", r.revenue),
            ("customers", r.customers),
            ("cac", r.cac),
            ("roi_pct", r.roi),
        ):
            yield ("roi", r.model.value, r.dimension, r.key, metric, _value(value))
    yield from feedback_csv_rows(report)
    yield from sla_csv_rows(report)
    yield from clv_csv_rows(report)
    for deal in report.details:
        yield from _detail_rows(report, deal)


def render_csv(report: Report) -> str:
    """The report as CSV text with a header row."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    writer.writerows(_rows(report))
    return buffer.getvalue()
