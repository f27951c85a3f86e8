"""The report marketing acts on: revenue over time, open pipeline, originated/influenced, data quality, detail.

Every figure is checked against values computed by hand in the test's docstring or comment.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from closeloop.loop import (
    Channel,
    ContactFacts,
    EntryKind,
    LedgerEntry,
    Model,
    Position,
    Report,
    ReportInput,
    TouchKind,
    build_report,
    make_touch,
    render,
    render_text,
)
from closeloop.loop.influence import is_marketing
from closeloop.loop.trend import Granularity

from .conftest import day, report_input, utm


def at(year: int, month: int, dom: int, hour: int = 0) -> datetime:
    """A moment in UTC."""
    return datetime(year, month, dom, hour, tzinfo=UTC)


def won(deal: str, amount: str, closed: datetime, *contacts: str) -> LedgerEntry:
    """A won entry in EUR, the base currency."""
    return LedgerEntry(deal, EntryKind.WON, Decimal(amount), "EUR", Decimal(amount), closed, contacts)


def trend_input() -> ReportInput:
    """Won deals around a period from 15 January to 31 March 2024 (W6 won then reversed).

    W5 1000 (2023-12-20), W1 100 (01-10), W2 200 (02-05), W3 50 (02-20), W4 400 (03-31 23:00), W6 300 (03-05, reversed).
    """
    ledger = (
        won("W5", "1000", at(2023, 12, 20)),
        won("W1", "100", at(2024, 1, 10)),
        won("W2", "200", at(2024, 2, 5)),
        won("W3", "50", at(2024, 2, 20)),
        won("W4", "400", at(2024, 3, 31, 23)),
        won("W6", "300", at(2024, 3, 5)),
        LedgerEntry("W6", EntryKind.REVERSAL, Decimal(-300), "EUR", Decimal(-300), at(2024, 3, 5), ()),
    )
    return ReportInput((), ledger, (), at(2024, 1, 15), at(2024, 4, 1), "EUR")


def test_revenue_by_month_against_the_month_before() -> None:
    report = build_report(trend_input())
    figures = [
        (r.label, str(r.revenue), r.deals, str(r.previous_revenue), r.previous_deals, r.change, r.partial)
        for r in report.trend
    ]
    assert figures == [
        # cut at 01-15: compared with 12-15 to 12-31, which holds W5; W1 (01-10) is before the period
        ("2024-01", "0.00", 0, "1000.00", 1, Decimal("-100.0"), True),
        ("2024-02", "250.00", 2, "100.00", 1, Decimal("150.0"), False),  # (250 - 100) / 100
        ("2024-03", "400.00", 1, "250.00", 2, Decimal("60.0"), False),  # W6 was reversed: it earns nothing
    ]


def test_the_whole_period_against_as_many_days_before_it() -> None:
    previous = build_report(trend_input()).previous
    assert previous is not None
    # 77 days from 01-15: the previous span is 2023-10-30 to 2024-01-15, holding W5 and W1
    assert (previous.previous.start, previous.previous.end) == (at(2023, 10, 30), at(2024, 1, 15))
    assert (str(previous.revenue), previous.deals, previous.change) == ("1100.00", 2, Decimal("-40.9"))


def test_revenue_by_quarter_compares_a_cut_quarter_like_for_like() -> None:
    (quarter,) = build_report(trend_input(), by=Granularity.QUARTER).trend
    assert (quarter.label, str(quarter.revenue), quarter.deals, quarter.partial) == ("2024-Q1", "650.00", 3, True)
    # the same days one quarter earlier, 2023-10-15 to 2023-12-31: W5 alone; (650 - 1000) / 1000
    assert (quarter.window.start, str(quarter.previous_revenue), quarter.change) == (
        at(2024, 1, 15),
        "1000.00",
        Decimal("-35.0"),
    )


def _contact(cid: str) -> ContactFacts:
    return ContactFacts(cid, day(3, 1), "customer")


def influence_input() -> ReportInput:
    """Five deals created 03-05 and won 03-20, 2,500.00 EUR in all.

    X 1000 (x1: direct 03-01, then an email campaign 03-10): influenced, not originated (first touch direct).
    Y  500 (y1: email 03-08, after the deal's creation): influenced, not originated.
    Z  250 (z1: direct 03-02 only): neither.
    V  250 (v1: paid search 03-02): originated and influenced.
    U  500 (no contact): unattributed.
    """
    touches = (
        make_touch("x1", day(3, 1), TouchKind.VISIT, channel=Channel.DIRECT),
        make_touch("x1", day(3, 10), TouchKind.CAMPAIGN, utm=utm("newsletter", "email", "nurture")),
        make_touch("y1", day(3, 8), TouchKind.FORM_FILL, utm=utm("newsletter", "email")),
        make_touch("z1", day(3, 2), TouchKind.VISIT, channel=Channel.DIRECT),
        make_touch("v1", day(3, 2), TouchKind.VISIT, utm=utm("google", "cpc")),
    )
    deals = {"X": ("1000", "x1"), "Y": ("500", "y1"), "Z": ("250", "z1"), "V": ("250", "v1"), "U": ("500", "")}
    ledger = tuple(won(d, amount, day(3, 20), *([c] if c else [])) for d, (amount, c) in deals.items())
    contacts = tuple(_contact(c) for c in ("x1", "y1", "z1", "v1"))
    created = {d: day(3, 5) for d in deals}
    return ReportInput(contacts, ledger, touches, day(3, 1), day(4, 1), "EUR", (), created)


def test_marketing_originated_and_influenced_revenue() -> None:
    influence = build_report(influence_input()).influence
    assert influence is not None
    originated, influenced = influence.originated, influence.influenced
    assert (str(originated.revenue), originated.deals, originated.share) == ("250.00", 1, Decimal("10.0"))
    assert (str(influenced.revenue), influenced.deals, influenced.share) == ("1750.00", 3, Decimal("70.0"))


def test_without_a_creation_time_a_deal_is_originated_by_its_first_touch() -> None:
    inp = replace(influence_input(), deal_created={})
    influence = build_report(inp).influence
    assert influence is not None
    assert (str(influence.originated.revenue), influence.originated.deals) == ("750.00", 2)  # Y joins V


def test_a_direct_touch_is_marketing_only_with_a_campaign() -> None:
    assert not is_marketing(make_touch("c", day(3, 1), TouchKind.VISIT, channel=Channel.DIRECT))
    assert is_marketing(make_touch("c", day(3, 1), TouchKind.CAMPAIGN, channel=Channel.DIRECT, campaign="expo"))
    assert is_marketing(make_touch("c", day(3, 1), TouchKind.VISIT, utm=utm("newsletter", "email")))


def test_the_unattributed_share_is_a_data_quality_figure() -> None:
    quality = build_report(replace(influence_input(), unpriced_open_deals=2)).quality
    assert quality is not None
    unattributed = quality.unattributed
    assert (str(unattributed.revenue), unattributed.deals, unattributed.share) == ("500.00", 1, Decimal("20.0"))
    assert (quality.without_contacts, quality.unpriced_open_deals) == (1, 2)


def pipeline_input() -> ReportInput:
    """The March 2024 scenario with two open deals: D9 1000.00 EUR for c1 (created 03-13), D8 800.00 with no contact.

    c1's five touches, in journey order: paid search (02-28, spring), email form fill and email visit (03-06,
    nurture; c1 was created 03-06, so the visit is the lead-creation touch), events (03-13, expo: the
    deal-creation touch), direct visit (03-20). An open deal has no close: all five count.
    """
    opened = (
        Position("D9", Decimal("1000.00"), "EUR", Decimal("1000.00"), None, ("c1",)),
        Position("D8", Decimal("800.00"), "EUR", Decimal("800.00"), None, ()),
    )
    inp = report_input()
    created = {**inp.deal_created, "D9": day(3, 13)}
    names = {"D1": "Acme rollout", "D9": "Globex pilot"}
    return replace(inp, open_deals=opened, deal_created=created, deal_names=names, contact_labels={"c1": "c1@x.test"})


@pytest.fixture
def pipeline_report() -> Report:
    return build_report(pipeline_input(), detail=True)


def _figures(rows: list[tuple[str, Decimal, Decimal]]) -> dict[str, tuple[str, str]]:
    return {key: (str(amount), str(deals)) for key, amount, deals in rows}


def test_open_pipeline_per_model_beside_closed_won(pipeline_report: Report) -> None:
    def pipeline(model: Model) -> dict[str, tuple[str, str]]:
        return _figures([(r.key, r.revenue, r.deals) for r in pipeline_report.pipeline_for(model, "source")])

    assert pipeline(Model.LINEAR) == {  # a fifth of D9 each; D8 has no contact
        "paid_search": ("200.00", "0.2"),
        "email": ("400.00", "0.4"),
        "events": ("200.00", "0.2"),
        "direct": ("200.00", "0.2"),
        "(unattributed)": ("800.00", "1"),
    }
    assert pipeline(Model.W_SHAPED) == {  # 30 first touch, 30 lead creation (the visit), 30 deal creation, 5 + 5
        "paid_search": ("300.00", "0.3"),
        "email": ("350.00", "0.35"),
        "events": ("300.00", "0.3"),
        "direct": ("50.00", "0.05"),
        "(unattributed)": ("800.00", "1"),
    }
    assert (str(pipeline_report.open_amount), pipeline_report.open_deals) == ("1800.00", 2)
    assert str(pipeline_report.total_revenue) == "2100.00"  # open deals earn nothing yet
    key, won_cells, open_cells = pipeline_report.won_and_pipeline("source")[0]
    assert key == "paid_search"  # the largest closed-won revenue under the models, then its pipeline beside it
    assert [c.revenue if c else None for c in won_cells][:2] == [Decimal("1200.00"), Decimal("900.00")]
    assert [c.revenue if c else None for c in open_cells][:3] == [Decimal("1000.00"), None, Decimal("200.00")]


def test_detail_lists_each_touch_with_every_models_credit(pipeline_report: Report) -> None:
    acme = next(d for d in pipeline_report.details if d.deal_id == "D1")
    assert (acme.name, acme.status, acme.contacts, str(acme.amount_base)) == (
        "Acme rollout",
        "won",
        ("c1@x.test",),
        "1200.00",
    )
    assert [(str(t.touch.at.date()), t.touch.kind.value, t.contact) for t in acme.touches] == [
        ("2024-02-28", "original_source", "c1@x.test"),
        ("2024-03-06", "form_fill", "c1@x.test"),
        ("2024-03-06", "visit", "c1@x.test"),
        ("2024-03-13", "campaign", "c1@x.test"),
        ("2024-03-20", "visit", "c1@x.test"),
    ]
    u_shaped, full_path = pipeline_report.models.index(Model.U_SHAPED), pipeline_report.models.index(Model.FULL_PATH)
    # U-shaped: 40 first, 40 lead creation (the visit of 03-06), 20 over the other three
    assert [str(t.amounts[u_shaped]) for t in acme.touches] == ["480.00", "80.00", "480.00", "80.00", "80.00"]
    assert [str(t.shares[u_shaped]) for t in acme.touches] == ["0.4000", "0.0667", "0.4000", "0.0667", "0.0667"]
    # full path: 22.5 first, lead creation, deal creation (03-13) and closed won (03-20), 10 to the form fill
    assert [str(t.amounts[full_path]) for t in acme.touches] == ["270.00", "120.00", "270.00", "270.00", "270.00"]
    for i in range(len(pipeline_report.models)):
        assert sum(t.amounts[i] for t in acme.touches) == Decimal("1200.00")
    statuses = [(d.deal_id, d.status) for d in pipeline_report.details]
    assert statuses == [("D1", "won"), ("D2", "won"), ("D9", "open"), ("D8", "open")]


def test_detail_only_when_asked() -> None:
    assert build_report(pipeline_input()).details == ()


def test_the_table_shows_the_new_sections_and_fractional_deal_credits(pipeline_report: Report) -> None:
    text = render_text(pipeline_report, "table", width=400)
    for title in (
        "Revenue over time (by month)",
        "Marketing-originated and marketing-influenced revenue",
        "Data quality",
        "Revenue and open pipeline by source",
        "Revenue and open pipeline by campaign",
        "Deal Acme rollout (D1)",
    ):
        assert title in text
    assert "0.4667 deals" in text  # U-shaped paid search: 2/5 of D1 plus 1/15 of D2, not "0.47" nor "0"
    assert "× 0.0667" in text  # a touch's share of D1 under U-shaped, in the detail
    assert "│ 2024-03      │ 2,100.00 │         2 │" in text


def test_a_piped_table_keeps_its_rows_whole(pipeline_report: Report, capsys: pytest.CaptureFixture[str]) -> None:
    render(pipeline_report, "table")  # stdout is captured, not a terminal
    lines = capsys.readouterr().out.splitlines()
    header = next(line for line in lines if "First touch" in line and "Time decay" in line)
    assert len(header) > 80
    assert all(model.label in header for model in Model)


def test_json_carries_the_new_sections(pipeline_report: Report) -> None:
    data = json.loads(render_text(pipeline_report, "json"))
    assert data["trend"]["rows"][0] | {"start": "", "end": ""} == {
        "label": "2024-03",
        "start": "",
        "end": "",
        "partial": False,
        "revenue": "2100.00",
        "won_deals": 2,
        "previous_revenue": "575.00",  # D4, won 02-25
        "previous_won_deals": 1,
        "change_pct": "265.2",  # (2100 - 575) / 575
    }
    assert data["open_pipeline"] == {"amount": "1800.00", "deals": 2}
    assert data["influence"]["marketing_originated"] == {"revenue": "2100.00", "won_deals": 2, "share_pct": "100.0"}
    assert data["data_quality"]["unattributed"]["share_pct"] == "0.0"
    linear = {(r["key"], r["revenue"], r["deals"]) for r in data["pipeline"] if r["model"] == "linear"}
    assert ("email", "400.00", "0.4") in linear
    d9 = next(d for d in data["deals"] if d["deal"] == "D9")
    assert (d9["status"], d9["closed_at"], d9["touches"][0]["credit"]["first_touch"]) == ("open", None, "1000.00")


def test_csv_carries_the_new_sections(pipeline_report: Report) -> None:
    rows = list(csv.DictReader(io.StringIO(render_text(pipeline_report, "csv"))))

    def value(section: str, key: str, metric: str, model: str = "") -> str:
        found = [
            r["value"]
            for r in rows
            if (r["section"], r["key"], r["metric"], r["model"]) == (section, key, metric, model)
        ]
        assert len(found) == 1, (section, key, metric, model, found)
        return found[0]

    assert value("trend", "2024-03", "change_pct") == "265.2"
    assert value("summary", "", "open_pipeline") == "1800.00"
    assert value("pipeline", "email", "amount", "w_shaped") == "350.00"
    assert value("influence", "marketing_influenced", "share_pct") == "100.0"
    assert value("data_quality", "open_deals_without_rate", "deals") == "0"
    assert value("detail", "D1", "touch_3_credit", "u_shaped") == "480.00"
    assert value("detail", "D1", "touch_3_share", "u_shaped") == "0.4000"
