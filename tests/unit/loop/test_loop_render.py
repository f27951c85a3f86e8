"""Renderers: table, CSV, JSON and one self-contained HTML page with an SVG per chart."""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path

import pytest
from rich.console import Console

from closeloop.loop import Format, Model, Report, ReportInput, build_report, render, render_text


@pytest.fixture
def report(scenario_input: ReportInput) -> Report:
    return build_report(scenario_input)


def test_table_shows_every_model_and_total(report: Report) -> None:
    text = render_text(report, Format.TABLE)
    for model in Model:
        assert model.label in text
    assert "2,100.00" in text
    assert "Funnel by original source" in text
    assert "CAC and ROI" in text


def test_table_prints_to_the_console_when_no_file(report: Report) -> None:
    buffer = io.StringIO()
    render(report, "table", None, console=Console(file=buffer, width=160))
    assert "Revenue and open pipeline by source" in buffer.getvalue()


def test_csv_is_long_format(report: Report, tmp_path: Path) -> None:
    out = tmp_path / "report.csv"
    render(report, "csv", out)
    rows = list(csv.DictReader(out.read_text(encoding="utf-8").splitlines()))
    assert rows[0] == {
        "section": "summary",
        "model": "",
        "dimension": "",
        "key": "",
        "metric": "total_revenue",
        "value": "2100.00",
    }
    linear_email = [r for r in rows if r["model"] == "linear" and r["key"] == "email" and r["section"] == "attributed"]
    assert [(r["metric"], r["value"]) for r in linear_email] == [
        ("revenue", "930.00"),
        ("deals", "0.9"),
    ]  # 2/5 + 2/4


def test_json_round_trips_figures_as_strings(report: Report) -> None:
    data = json.loads(render_text(report, "json"))
    assert data["total_revenue"] == "2100.00"
    assert data["funnel"]["total"]["counts"] == {
        "lead": 8,
        "mql": 6,
        "sql": 5,
        "opportunity": 4,
        "customer": 3,
    }
    assert data["funnel"]["total"]["conversions"]["lead_to_mql"] == "75.0"
    assert data["period"] == {"start": "2024-03-01T00:00:00.000Z", "end": "2024-04-01T00:00:00.000Z"}


def test_html_is_self_contained_with_an_svg_per_chart(report: Report, tmp_path: Path) -> None:
    out = tmp_path / "report.html"
    render(report, "html", out)
    page = out.read_text(encoding="utf-8")
    # revenue over time, revenue by source per model, campaigns, funnel, ROI, lifetime value by source
    assert page.count("<svg") == 6
    urls = re.findall(r"https?://[^\s\"'<>)]+", page)
    assert set(urls) == {"http://www.w3.org/2000/svg"}
    assert "<script" not in page
    assert "<link" not in page
    assert "@import" not in page
    for model in Model:
        assert model.label in page


def test_html_without_spend_explains_the_missing_roi(scenario_input: ReportInput) -> None:
    from dataclasses import replace

    page = render_text(build_report(replace(scenario_input, spend=()), [Model.LINEAR]), "html")
    assert page.count("<svg") == 5
    assert "No spend supplied" in page


def test_html_escapes_names(scenario_input: ReportInput) -> None:
    from dataclasses import replace

    from closeloop.loop import TouchKind, make_touch

    evil = make_touch("c1", scenario_input.period_start, TouchKind.CAMPAIGN, campaign="<b>&x</b>")
    page = render_text(build_report(replace(scenario_input, touches=(*scenario_input.touches, evil))), "html")
    assert "<b>&x</b>" not in page
    assert "&lt;b&gt;&amp;x&lt;/b&gt;" in page


def test_unknown_format_is_refused(report: Report) -> None:
    with pytest.raises(ValueError, match="pdf"):
        render_text(report, "pdf")
