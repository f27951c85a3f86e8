"""Sales feedback figures: verdicts from lead statuses, rates of the decided leads, top rejection reasons."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

import pytest
from rich.console import Console

from closeloop.config.documents import FeedbackDoc
from closeloop.config.feedback import Verdict, feedback_of
from closeloop.loop import build_report
from closeloop.loop.feedback import NO_REASON, TOP_REASONS, Lead, build_feedback
from closeloop.loop.render_csv import render_csv
from closeloop.loop.render_html import render_html
from closeloop.loop.render_json import report_to_dict
from closeloop.loop.render_table import render_table

from .conftest import report_input

A, R, C = Verdict.ACCEPTED, Verdict.REJECTED, Verdict.RECYCLED


def lead(source: str, verdict: Verdict | None, reason: str | None = None, *, handed: bool = True) -> Lead:
    return Lead(source, f"{source}-campaign", handed, verdict, reason)


def test_status_values_read_as_verdicts_whatever_their_case() -> None:
    doc = FeedbackDoc(accepted=["Working - Contacted"], rejected=["Closed - Not Converted"], recycled=["Recycled"])
    feedback, problems = feedback_of(doc)
    assert problems == []
    assert feedback.verdict(" closed - NOT converted ") is R
    assert feedback.verdict("Recycled") is C
    assert feedback.verdict("Open - Not Contacted") is None
    assert feedback.verdict(None) is None


def test_a_status_under_two_verdicts_is_a_problem_naming_both() -> None:
    _, problems = feedback_of(FeedbackDoc(accepted=["Qualified"], rejected=["qualified"]))
    assert problems == ["status 'qualified' is listed as both accepted and rejected"]


def test_rates_are_shares_of_the_decided_leads_and_pending_ones_are_counted_apart() -> None:
    figures = build_feedback(
        [
            lead("paid_search", A),
            lead("paid_search", R, "No budget"),
            lead("paid_search", None),
            lead("email", C),
            lead("email", None, handed=False),
        ]
    )
    paid = next(r for r in figures.rows_for("source") if r.key == "paid_search")
    assert (paid.handed, paid.decided, paid.pending) == (3, 2, 1)
    assert (paid.acceptance_rate, paid.rejection_rate, paid.recycle_rate) == (
        Decimal("50.0"), Decimal("50.0"), Decimal("0.0"),
    )  # fmt: skip
    assert figures.total.handed == 4  # the lead never handed over (no MQL, no verdict) is left out


def test_a_lead_with_a_verdict_counts_as_handed_even_without_an_mql() -> None:
    figures = build_feedback([lead("events", R, "Competitor", handed=False)])
    assert (figures.total.handed, figures.total.rejected) == (1, 1)


def test_no_decided_lead_has_no_rate() -> None:
    assert build_feedback([lead("email", None)]).total.acceptance_rate is None


@pytest.mark.parametrize(
    ("reasons", "expected"),
    [
        pytest.param(["Not a fit", "No budget", "Not a fit"], [("Not a fit", 2), ("No budget", 1)], id="most-first"),
        pytest.param([None, " "], [(NO_REASON, 2)], id="blank-reasons"),
        pytest.param([f"r{i}" for i in range(7)], [(f"r{i}", 1) for i in range(TOP_REASONS)], id="top-five"),
    ],
)
def test_top_rejection_reasons_per_source(reasons: list[str | None], expected: list[tuple[str, int]]) -> None:
    figures = build_feedback([lead("paid_search", R, reason) for reason in reasons] + [lead("paid_search", A, "x")])
    assert [(r.reason, r.leads) for r in figures.reasons_for("source")] == expected


def test_every_report_format_carries_the_feedback_section() -> None:
    base = report_input()
    judged = tuple(replace(c, verdict=R, rejection_reason="No budget") for c in base.contacts)
    report = build_report(replace(base, contacts=judged, feedback=True))
    assert report.feedback is not None
    total = report.feedback.total
    console = Console(record=True, width=200)
    render_table(report, console)
    assert "Top rejection reasons by source" in console.export_text()
    assert "Sales feedback by source" in render_html(report)
    assert f"sales_feedback,,all,all,rejected,{total.rejected}" in render_csv(report)
    assert report_to_dict(report)["sales_feedback"]["total"]["rejection_pct"] == "100.0"
    assert build_report(base).feedback is None  # not configured: no section, JSON null
    assert report_to_dict(build_report(base))["sales_feedback"] is None
