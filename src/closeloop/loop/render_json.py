"""The report as JSON: plain objects, money and rates as strings so nothing is lost to floats."""

from __future__ import annotations

import enum
import json
from collections.abc import Sequence
from dataclasses import fields
from typing import Any

from closeloop.loop.report import STAGES, AttributedRow, DealStatsRow, FunnelRow, Report, RoiRow
from closeloop.model import iso_utc


def _text(value: object) -> str | None:
    return None if value is None else str(value)


def _funnel(row: FunnelRow) -> dict[str, Any]:
    return {
        "source": row.source,
        "counts": {stage.value: count for stage, count in zip(STAGES, row.counts, strict=True)},
        "conversions": {
            f"{a.value}_to_{b.value}": _text(rate)
            for a, b, rate in zip(STAGES[:-1], STAGES[1:], row.conversions, strict=True)
        },
        "lead_to_customer": _text(row.overall),
    }


def _plain(value: object) -> object:
    """Counts stay numbers, enums become their value, money and rates become strings."""
    if value is None or isinstance(value, int):
        return value
    return value.value if isinstance(value, enum.Enum) else str(value)


def _rows(rows: Sequence[AttributedRow | DealStatsRow | RoiRow]) -> list[dict[str, object]]:
    return [{f.name: _plain(getattr(row, f.name)) for f in fields(row)} for row in rows]


def report_to_dict(report: Report) -> dict[str, Any]:
    """The report as JSON-ready data."""
    return {
        "period": {"start": iso_utc(report.period_start), "end": iso_utc(report.period_end)},
        "base_currency": report.base_currency,
        "models": [m.value for m in report.models],
        "total_revenue": str(report.total_revenue),
        "won_deals": report.won_deals,
        "funnel": {"by_source": [_funnel(r) for r in report.funnel], "total": _funnel(report.funnel_total)},
        "attributed": _rows(report.attributed),
        "deal_stats": _rows(report.deal_stats),
        "roi": _rows(report.roi),
    }


def render_json(report: Report) -> str:
    """The report as indented JSON text."""
    return json.dumps(report_to_dict(report), indent=2) + "\n"
