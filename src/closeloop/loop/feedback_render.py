"""The sales feedback section in every report format: table and HTML sections, CSV rows, JSON data.

Kept apart from the renderers so that each of them adds the section with one line.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from closeloop.loop.feedback import FeedbackRow, SalesFeedback
from closeloop.loop.fmt import number, percent, source_label
from closeloop.loop.report import Report
from closeloop.loop.sections import Section

HEADERS = ("Handed to sales", "Accepted", "Rejected", "Recycled", "Pending", "Acceptance", "Rejection", "Recycling")
NOTE = (
    "Leads created in the period that reached MQL or carry a sales verdict, by the verdict their lead status"
    " means now (loop.feedback). Rates are shares of the leads sales has decided on (accepted + rejected +"
    " recycled); pending leads have no verdict yet."
)


def _label(dimension: str, key: str) -> str:
    return source_label(key) if dimension == "source" else key


def _figures(row: FeedbackRow) -> list[str]:
    return [
        number(row.handed),
        number(row.accepted),
        number(row.rejected),
        number(row.recycled),
        number(row.pending),
        percent(row.acceptance_rate),
        percent(row.rejection_rate),
        percent(row.recycle_rate),
    ]


def verdict_section(feedback: SalesFeedback, dimension: str) -> Section:
    """Acceptance, rejection and recycling of the leads each source or campaign handed to sales."""
    rows = [[_label(dimension, r.key), *_figures(r)] for r in feedback.rows_for(dimension)]
    rows.append(["Total", *_figures(feedback.total)])
    headers = (dimension.capitalize(), *HEADERS)
    return Section(f"Sales feedback on leads by {dimension}", NOTE, headers, rows, totals=1)


def reasons_section(feedback: SalesFeedback, dimension: str) -> Section:
    """The most frequent rejection reasons of each source or campaign."""
    rows = [[_label(dimension, r.key), r.reason, number(r.leads)] for r in feedback.reasons_for(dimension)]
    if not rows:
        rows = [["(no rejected lead)", "", ""]]
    note = "The rejected leads' reason as the CRM holds it, most frequent first (top 5 per key)."
    headers = (dimension.capitalize(), "Rejection reason", "Rejected leads")
    return Section(f"Top rejection reasons by {dimension}", note, headers, rows, text=2)


def feedback_sections(report: Report) -> list[Section]:
    """The feedback sections of the report, in reading order; none when feedback is not configured."""
    if report.feedback is None:
        return []
    return [
        section
        for dimension in ("source", "campaign")
        for section in (verdict_section(report.feedback, dimension), reasons_section(report.feedback, dimension))
    ]


def _metrics(row: FeedbackRow) -> Iterator[tuple[str, object]]:
    yield from (
        ("handed", row.handed),
        ("accepted", row.accepted),
        ("rejected", row.rejected),
        ("recycled", row.recycled),
        ("pending", row.pending),
        ("acceptance_pct", row.acceptance_rate),
        ("rejection_pct", row.rejection_rate),
        ("recycle_pct", row.recycle_rate),
    )


def feedback_csv_rows(report: Report) -> Iterator[tuple[str, str, str, str, str, str]]:
    """The CSV rows (section, model, dimension, key, metric, value) of the feedback section."""
    feedback = report.feedback
    if feedback is None:
        return
    for row in (*feedback.rows, feedback.total):
        for metric, value in _metrics(row):
            yield ("sales_feedback", "", row.dimension, row.key, metric, "" if value is None else str(value))
    for reason in feedback.reasons:
        yield ("rejection_reasons", "", reason.dimension, reason.key, reason.reason, str(reason.leads))


def _json_row(row: FeedbackRow) -> dict[str, Any]:
    return {"key": row.key} | {m: (str(v) if v is not None and m.endswith("_pct") else v) for m, v in _metrics(row)}


def feedback_json(report: Report) -> dict[str, Any] | None:
    """The feedback section as JSON-ready data, or None when feedback is not configured."""
    feedback = report.feedback
    if feedback is None:
        return None
    return {
        "by_source": [_json_row(r) for r in feedback.rows_for("source")],
        "by_campaign": [_json_row(r) for r in feedback.rows_for("campaign")],
        "total": _json_row(feedback.total),
        "rejection_reasons": [
            {"dimension": r.dimension, "key": r.key, "reason": r.reason, "leads": r.leads} for r in feedback.reasons
        ],
    }
