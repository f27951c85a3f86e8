"""``closeloop report``: arguments, period, formats, output files and clear messages for bad input.

The seeded store: March 2024, EUR. Contacts g1 (customer, paid search, first touch 28 Feb) and g2 (lead, kept
source email, first touch 5 Mar, a form fill on 10 Mar) created in March; g3 created in January. One deal D1,
1000.00 EUR won on 20 Mar, credited to g1 and g2. D1's journey: paid search (28 Feb), email (5 Mar), email
form fill (10 Mar), so first touch gives paid search 1000.00, last touch email 1000.00, linear 333.34 / 666.66.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from rich.console import Console

from closeloop.cli.report import period, report_command, year_before
from closeloop.config.models import LoadedConfig, LoopConfig
from closeloop.connector import Registry
from closeloop.loop import OriginalSource
from closeloop.loop.facts import kept_row
from closeloop.store import Store
from closeloop.store.rows import LedgerEntry, LedgerKind, TouchpointRow

NOW = datetime(2024, 4, 15, 9, 30, tzinfo=UTC)


def day(month: int, dom: int) -> datetime:
    """Midnight UTC on a day of 2024."""
    return datetime(2024, month, dom, tzinfo=UTC)


@pytest.fixture
def config(tmp_path: Path) -> LoadedConfig:
    return LoadedConfig(
        path=tmp_path / "closeloop.yaml",
        systems={},
        connections=(),
        loop=LoopConfig(base_currency="EUR"),
        registry=Registry(plugins={}),
    )


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    opened = Store.open(tmp_path / "state.db", clock=lambda: NOW)
    yield opened
    opened.close()


@pytest.fixture
def seeded(store: Store) -> Store:
    paid = {"utm_source": "google", "utm_medium": "cpc", "utm_campaign": "spring"}
    store.put_golden(
        "g1",
        "contact",
        {"lifecycle_stage": "customer", "created_at": "2024-03-02", "original_source": "paid_search"}
        | paid
        | {"first_touch_at": "2024-02-28T00:00:00Z"},
    )
    store.put_golden("g2", "contact", {"lifecycle_stage": "lead", "created_at": "2024-03-05"})
    store.put_golden("g3", "contact", {"lifecycle_stage": "mql", "created_at": "2024-01-10"})
    store.put_golden("D1", "deal", {"created_at": "2024-03-13T00:00:00.000Z"})
    store.put_original_sources([kept_row("g2", OriginalSource("email", first_touch_at=day(3, 5)), NOW)])
    store.add_touchpoints(
        [
            TouchpointRow(
                "g2", "mkt", "m2", day(3, 10), "form_fill", utm={"utm_source": "news", "utm_medium": "email"}
            ),
        ]
    )
    store.append_ledger(
        LedgerEntry("D1", LedgerKind.WON, Decimal("1000.00"), "EUR", day(3, 20), ("g1", "g2"), Decimal("1000.00"))
    )
    return store


def args(**overrides: object) -> argparse.Namespace:
    """The parsed arguments of ``closeloop report`` for March 2024, as JSON."""
    values: dict[str, object] = {
        "model": "all",
        "format": "json",
        "out": None,
        "since": "2024-03-01",
        "until": "2024-03-31",
        "spend": None,
        "by": "month",
        "detail": False,
    }
    return argparse.Namespace(**(values | overrides))


def run(config: LoadedConfig, store: Store, **overrides: object) -> int:
    console = Console(width=200, color_system=None, force_terminal=False)
    return report_command(config, store, args(**overrides), clock=lambda: NOW, console=console)


def test_json_report_of_the_seeded_store(
    config: LoadedConfig, seeded: Store, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(config, seeded) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["period"] == {"start": "2024-03-01T00:00:00.000Z", "end": "2024-04-01T00:00:00.000Z"}
    assert (report["total_revenue"], report["won_deals"], report["base_currency"]) == ("1000.00", 1, "EUR")
    funnel = {row["source"]: row["counts"] for row in report["funnel"]["by_source"]}
    everyone = {"lead": 1, "mql": 1, "sql": 1, "opportunity": 1, "customer": 1}
    assert funnel == {"paid_search": everyone, "email": everyone}  # g2 is a customer by its won deal
    assert report["funnel"]["total"]["counts"]["lead"] == 2  # g3 was created before the period
    revenue = {(r["model"], r["key"]): r["revenue"] for r in report["attributed"] if r["dimension"] == "source"}
    assert revenue[("first_touch", "paid_search")] == "1000.00"
    assert revenue[("last_touch", "email")] == "1000.00"
    assert (revenue[("linear", "paid_search")], revenue[("linear", "email")]) == ("333.34", "666.66")
    assert report["deal_stats"] == [
        {
            "source": "paid_search",
            "deals": 1,
            "revenue": "1000.00",
            "average_deal": "1000.00",
            "average_cycle_days": "7.0",  # the deal's creation (03-13) to its close (03-20)
            "average_journey_days": "21.0",  # the first touch (02-28) to the close
        }
    ]


def test_one_model_and_spend_give_roi(
    config: LoadedConfig, seeded: Store, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spend = tmp_path / "spend.csv"
    spend.write_text("period,channel,campaign,amount\n2024-03,paid_search,spring,400\n")
    assert run(config, seeded, model="first_touch", spend=spend) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["models"] == ["first_touch"]
    source_roi = next(r for r in report["roi"] if r["dimension"] == "source")
    assert (source_roi["key"], source_roi["spend"], source_roi["revenue"]) == ("paid_search", "400.00", "1000.00")
    assert (source_roi["customers"], source_roi["cac"], source_roi["roi"]) == (1, "400.00", "150.0")


def test_table_and_csv_show_the_same_figures(
    config: LoadedConfig, seeded: Store, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(config, seeded, format="table") == 0
    table = capsys.readouterr().out
    assert "Closed-loop report 2024-03-01 → 2024-04-01: 1 won deals, 1,000.00 EUR" in table
    assert "│ Paid search │     1 │ 1,000.00 │ 1,000.00 │              7.0 │               21.0 │" in table
    assert run(config, seeded, format="csv") == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    total = next(r for r in rows if r["section"] == "summary" and r["metric"] == "total_revenue")
    assert total["value"] == "1000.00"


def test_html_goes_to_closeloop_report_html_by_default(
    config: LoadedConfig,
    seeded: Store,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)
    assert run(config, seeded, format="html") == 0
    assert capsys.readouterr().out.strip() == "report written to closeloop-report.html"
    html = (tmp_path / "closeloop-report.html").read_text()
    assert html.lstrip().lower().startswith("<!doctype html")
    assert "1,000.00" in html or "1000.00" in html


def test_out_writes_any_format_to_the_file(
    config: LoadedConfig, seeded: Store, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "report.json"
    assert run(config, seeded, out=out) == 0
    assert capsys.readouterr().out.strip() == f"report written to {out}"
    assert json.loads(out.read_text())["total_revenue"] == "1000.00"


@pytest.mark.parametrize("fmt", ["table", "csv", "json", "html"])
def test_empty_store_gives_an_empty_report(
    config: LoadedConfig, store: Store, tmp_path: Path, fmt: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(config, store, format=fmt, out=tmp_path / f"r.{fmt}") == 0
    text = (tmp_path / f"r.{fmt}").read_text()
    if fmt == "json":
        report = json.loads(text)
        assert (report["total_revenue"], report["won_deals"], report["attributed"]) == ("0.00", 0, [])
    assert text.strip()
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"model": "middle_touch"}, "--model 'middle_touch' is not a model; use one of first_touch"),
        ({"since": "2024-13-01"}, "--since '2024-13-01' is not a date; write it as YYYY-MM-DD"),
        ({"until": "31/03/2024"}, "--until '31/03/2024' is not a date"),
        ({"since": "2024-04-01", "until": "2024-03-01"}, "--since 2024-04-01 is after --until 2024-03-01"),
        ({"spend": Path("missing.csv")}, "--spend missing.csv: cannot read it"),
    ],
    ids=["unknown-model", "bad-month", "day-first-date", "since-after-until", "missing-spend-file"],
)
def test_bad_arguments_exit_2_with_a_message(
    config: LoadedConfig, store: Store, overrides: dict[str, object], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(config, store, **overrides) == 2
    captured = capsys.readouterr()
    assert message in captured.err
    assert captured.out == ""


def test_bad_spend_line_is_named(
    config: LoadedConfig, store: Store, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spend = tmp_path / "spend.csv"
    spend.write_text("period,channel,campaign,amount\n2024-03,email,,100\n2024-03,telepathy,,5\n")
    assert run(config, store, spend=spend) == 2
    assert f"{spend} line 3: channel 'telepathy'" in capsys.readouterr().err


def test_default_period_is_the_last_twelve_months_to_today() -> None:
    assert period(None, None, NOW.date()) == (day(4, 15).replace(year=2023), day(4, 16))
    assert period(None, "2024-02-29", NOW.date()) == (datetime(2023, 2, 28, tzinfo=UTC), day(3, 1))
    assert year_before(day(2, 29).date()).isoformat() == "2023-02-28"


def test_by_quarter_with_detail_reads_the_open_deals_of_the_store(
    config: LoadedConfig, seeded: Store, capsys: pytest.CaptureFixture[str]
) -> None:
    fields = {"name": "Globex pilot", "stage": "proposal", "amount": "500", "currency": "EUR"}
    seeded.put_golden("D9", "deal", fields | {"created_at": "2024-03-14T00:00:00Z"})
    seeded.put_golden("D3", "deal", fields | {"stage": "closed_lost"})
    seeded.replace_deal_contacts({"D9": ["g2"], "D3": ["g2"]})
    seeded.put_golden("g2", "contact", {"lifecycle_stage": "lead", "created_at": "2024-03-05", "email": "g2@x.test"})
    assert run(config, seeded, by="quarter", detail=True) == 0
    report = json.loads(capsys.readouterr().out)
    (quarter,) = report["trend"]["rows"]
    assert (report["trend"]["by"], quarter["label"], quarter["partial"], quarter["revenue"]) == (
        "quarter",
        "2024-Q1",
        True,  # the period is March alone
        "1000.00",
    )
    assert report["open_pipeline"] == {"amount": "500.00", "deals": 1}  # D3 is lost
    linear = [(r["key"], r["revenue"]) for r in report["pipeline"] if r["model"] == "linear"]
    assert linear == [("email", "500.00"), ("(no campaign)", "500.00")]  # g2's kept source and form fill, both email
    d9 = next(d for d in report["deals"] if d["deal"] == "D9")
    assert (d9["name"], d9["status"], d9["contacts"], d9["created_at"]) == (
        "Globex pilot",
        "open",
        ["g2@x.test"],
        "2024-03-14T00:00:00.000Z",
    )


def test_the_command_line_takes_by_and_detail() -> None:
    from closeloop.cli import build_parser

    parsed = build_parser().parse_args(["report", "--by", "quarter", "--detail"])
    assert (parsed.by, parsed.detail) == ("quarter", True)
    plain = build_parser().parse_args(["report"])
    assert (plain.by, plain.detail) == ("month", False)
