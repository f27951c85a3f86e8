"""The report as one long-format CSV: section, model, dimension, key, metric, value."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator

from closeloop.loop.report import STAGES, Report

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


def _rows(report: Report) -> Iterator[Row]:
    yield ("summary", "", "", "", "total_revenue", str(report.total_revenue))
    yield ("summary", "", "", "", "won_deals", str(report.won_deals))
    yield from _funnel_rows(report)
    for a in report.attributed:
        yield ("attributed", a.model.value, a.dimension, a.key, "revenue", str(a.revenue))
        yield ("attributed", a.model.value, a.dimension, a.key, "deals", str(a.deals))
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


def render_csv(report: Report) -> str:
    """The report as CSV text with a header row."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    writer.writerows(_rows(report))
    return buffer.getvalue()
