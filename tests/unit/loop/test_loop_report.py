"""The March 2024 report: funnel, attributed revenue, deal figures, CAC and ROI against hand-made figures."""

from __future__ import annotations

from decimal import Decimal

import pytest

from closeloop.loop import Model, Report, ReportInput, build_report


@pytest.fixture
def report(scenario_input: ReportInput) -> Report:
    return build_report(scenario_input)


def test_totals(report: Report) -> None:
    assert (report.total_revenue, report.won_deals) == (Decimal("2100.00"), 2)


def test_funnel_counts_by_original_source(report: Report) -> None:
    assert [(r.source, r.counts) for r in report.funnel] == [
        ("paid_search", (3, 3, 2, 2, 1)),
        ("email", (2, 2, 2, 1, 1)),
        ("organic_search", (2, 1, 1, 1, 1)),
        ("unknown", (1, 0, 0, 0, 0)),
    ]
    assert report.funnel_total.counts == (8, 6, 5, 4, 3)


def test_funnel_conversion_rates(report: Report) -> None:
    rates = {r.source: [None if p is None else str(p) for p in (*r.conversions, r.overall)] for r in report.funnel}
    assert rates == {
        "paid_search": ["100.0", "66.7", "100.0", "50.0", "33.3"],
        "email": ["100.0", "100.0", "50.0", "100.0", "50.0"],
        "organic_search": ["50.0", "100.0", "100.0", "100.0", "50.0"],
        "unknown": ["0.0", None, None, None, "0.0"],
    }
    total = report.funnel_total
    assert [str(p) for p in (*total.conversions, total.overall)] == ["75.0", "83.3", "80.0", "75.0", "37.5"]


REVENUE_BY_SOURCE = {
    Model.FIRST_TOUCH: {"paid_search": "1200.00", "organic_search": "900.00"},
    Model.LAST_TOUCH: {"direct": "1200.00", "paid_search": "900.00"},
    Model.LINEAR: {
        "email": "780.00",
        "paid_search": "540.00",
        "organic_search": "300.00",
        "direct": "240.00",
        "events": "240.00",
    },
    Model.U_SHAPED: {
        "paid_search": "840.00",
        "direct": "480.00",
        "organic_search": "360.00",
        "email": "340.00",
        "events": "80.00",
    },
    Model.W_SHAPED: {
        "paid_search": "765.00",
        "email": "510.00",
        "organic_search": "405.00",
        "events": "360.00",
        "direct": "60.00",
    },
    Model.FULL_PATH: {
        "paid_search": "675.00",
        "email": "480.00",
        "organic_search": "405.00",
        "direct": "270.00",
        "events": "270.00",
    },
    Model.TIME_DECAY: {
        "paid_search": "584.88",
        "direct": "564.70",
        "email": "539.50",
        "events": "282.35",
        "organic_search": "128.57",
    },
}


@pytest.mark.parametrize("model", list(Model), ids=str)
def test_revenue_by_source_per_model(report: Report, model: Model) -> None:
    rows = report.attributed_for(model, "source")
    assert {r.key: str(r.revenue) for r in rows} == REVENUE_BY_SOURCE[model]
    assert list({r.key: None for r in rows}) == list(REVENUE_BY_SOURCE[model])  # largest first
    assert sum(r.revenue for r in rows) == report.total_revenue


def test_revenue_and_deals_by_campaign_linear(report: Report) -> None:
    rows = report.attributed_for(Model.LINEAR, "campaign")
    assert {r.key: (str(r.revenue), str(r.deals)) for r in rows} == {
        "spring": ("540.00", "0.53"),  # 1/5 of D1 + 1/3 of D2
        "(no campaign)": ("540.00", "0.53"),
        "nurture": ("480.00", "0.40"),
        "webinar": ("300.00", "0.33"),
        "expo": ("240.00", "0.20"),
    }


def test_deal_size_and_cycle_by_first_touch_source(report: Report) -> None:
    assert [
        (r.source, r.deals, str(r.revenue), str(r.average_deal), str(r.average_cycle_days)) for r in report.deal_stats
    ] == [
        ("paid_search", 1, "1200.00", "1200.00", "21.0"),
        ("organic_search", 1, "900.00", "900.00", "21.0"),
    ]


def test_cac_and_roi_linear(report: Report) -> None:
    rows = [r for r in report.roi if r.model is Model.LINEAR]
    assert [
        (r.dimension, r.key, str(r.spend), str(r.revenue), r.customers, r.cac and str(r.cac), str(r.roi)) for r in rows
    ] == [
        ("source", "email", "100.00", "780.00", 1, "100.00", "680.0"),
        ("source", "events", "300.00", "240.00", 0, None, "-20.0"),
        ("source", "paid_search", "400.00", "540.00", 1, "400.00", "35.0"),
        ("campaign", "expo", "300.00", "240.00", 0, None, "-20.0"),
        ("campaign", "spring", "400.00", "540.00", 1, "400.00", "35.0"),
    ]


def test_no_spend_no_roi(scenario_input: ReportInput) -> None:
    from dataclasses import replace

    assert build_report(replace(scenario_input, spend=()), [Model.LINEAR]).roi == ()


def test_deal_without_touches_is_unattributed(scenario_input: ReportInput) -> None:
    from dataclasses import replace

    bare = replace(scenario_input, touches=(), contacts=())
    report = build_report(bare, [Model.LINEAR])
    assert [(r.key, str(r.revenue), str(r.deals)) for r in report.attributed_for(Model.LINEAR, "source")] == [
        ("(unattributed)", "2100.00", "2.00")
    ]
