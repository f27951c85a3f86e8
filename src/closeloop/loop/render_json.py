"""The report as JSON: plain objects, money and rates as strings so nothing is lost to floats."""

from __future__ import annotations

import enum
import json
from collections.abc import Sequence
from dataclasses import fields
from typing import Any

from closeloop.loop.detail import DealDetail
from closeloop.loop.feedback_render import feedback_json
from closeloop.loop.influence import RevenueShare
from closeloop.loop.report import STAGES, AttributedRow, DealStatsRow, FunnelRow, Report, RoiRow
from closeloop.loop.sla_clv_render import clv_json, sla_json
from closeloop.loop.trend import TrendRow
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


def _share(share: RevenueShare) -> dict[str, object]:
    return {"revenue": str(share.revenue), "won_deals": share.deals, "share_pct": _text(share.share)}


def _trend(row: TrendRow) -> dict[str, object]:
    return {
        "label": row.label,
        "start": iso_utc(row.window.start),
        "end": iso_utc(row.window.end),
        "partial": row.partial,
        "revenue": str(row.revenue),
        "won_deals": row.deals,
        "previous_revenue": str(row.previous_revenue),
        "previous_won_deals": row.previous_deals,
        "change_pct": _text(row.change),
    }


def _deal(report: Report, deal: DealDetail) -> dict[str, object]:
    touches = [
        {
            "at": iso_utc(line.touch.at),
            "contact_id": line.touch.contact_id,
            "contact": line.contact,
            "kind": line.touch.kind.value,
            "channel": line.touch.channel.value,
            "campaign": line.touch.campaign,
            "credit": {m.value: str(a) for m, a in zip(report.models, line.amounts, strict=True)},
            "share": {m.value: str(s) for m, s in zip(report.models, line.shares, strict=True)},
        }
        for line in deal.touches
    ]
    return {
        "deal": deal.deal_id,
        "name": deal.name,
        "status": deal.status,
        "amount": str(deal.amount_base),
        "created_at": iso_utc(deal.created_at) if deal.created_at else None,
        "closed_at": iso_utc(deal.closed_at) if deal.closed_at else None,
        "contacts": list(deal.contacts),
        "touches": touches,
    }


def _newer(report: Report) -> dict[str, Any]:
    """The sections added with revenue over time, pipeline, influence, data quality and the deals in detail."""
    previous = report.previous
    quality = report.quality
    return {
        "previous_period": None
        if previous is None
        else {
            "start": iso_utc(previous.previous.start),
            "end": iso_utc(previous.previous.end),
            "revenue": str(previous.revenue),
            "won_deals": previous.deals,
            "change_pct": _text(previous.change),
        },
        "trend": {"by": report.granularity.value, "rows": [_trend(r) for r in report.trend]},
        "open_pipeline": {"amount": str(report.open_amount), "deals": report.open_deals},
        "pipeline": _rows(report.pipeline),
        "influence": None
        if report.influence is None
        else {
            "marketing_originated": _share(report.influence.originated),
            "marketing_influenced": _share(report.influence.influenced),
        },
        "data_quality": None
        if quality is None
        else {
            "unattributed": _share(quality.unattributed),
            "won_deals_without_contacts": quality.without_contacts,
            "open_deals_without_rate": quality.unpriced_open_deals,
        },
        "sales_feedback": feedback_json(report),
        "deals": [_deal(report, d) for d in report.details],
        "sla": sla_json(report),
        "clv": clv_json(report),
    }


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
    } | _newer(report)


def render_json(report: Report) -> str:
    """The report as indented JSON text."""
    return json.dumps(report_to_dict(report), indent=2) + "\n"
