"""The report marketing acts on, from vendor data only: records made through the Salesforce sandbox's REST API.

On top of the journey of ``test_loop_vendor_milestones`` (Acme, 10,000.00 USD won 2026-03-01; contacts Ann,
paid search, created 01-05; Bob, email, 01-20; Cid, events, 02-10; Dee, direct, 02-20; the deal created 02-01),
made before closeloop's first sync, in the order the days came:

    02-03  Eve created, lead source Web (direct)
    02-05  "February win" 2,000.00 USD created for Eve; won 02-15
    03-02  "Orphan" 1,000.00 USD created with no contact; won 03-02
    03-03  "Beta expansion" 4,000.00 USD created for Ann and Bob, left open (Prospecting)
    03-04  "Lost one" 3,000.00 USD created for Ann, lost (Closed Lost)

Hand-computed for January to March 2026 (13,000.00 won in all):

- revenue over time: March 11,000.00 against February's 2,000.00: +450.0%;
- open pipeline: Beta alone, 4,000.00 in 1 deal; linear: paid search 2,000.00 (Ann's touch) and email 2,000.00
  (Bob's), first touch: paid search 4,000.00; the lost deal is no pipeline;
- marketing-originated: Acme alone (its first touch, Ann's paid search of 01-05, came before its creation on
  02-01), 10,000.00 of 13,000.00 = 76.9%; Eve's deal started with a direct touch, the orphan with none;
- data quality: the orphan's 1,000.00 is unattributed, 7.7% of the revenue, one won deal with no contact;
- detail: Acme's four touches get 2,500.00 each under linear; under W-shaped Bob's touch (the last at or before
  the deal's creation) gets 3,000.00 (30%).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import pytest

from closeloop.cli.report import report_command

from .test_loop_vendor_milestones import World, _contact, _report, _seed, day, world  # noqa: F401 - world: the fixture

SALESFORCE_HUBSPOT = pytest.mark.parametrize("world", [("salesforce", "hubspot")], indirect=True, ids=["sf-hs"])


async def _deal(scene: World, name: str, amount: int, close: str, stage: str, *contacts: str) -> str:
    """A Salesforce opportunity made now through the REST API, with its contact roles."""
    fields = dict(zip(scene.crm.deal_fields, (name, amount, stage, close, "USD"), strict=True))
    deal = await scene.create(scene.crm.deals, fields)
    for n, contact in enumerate(contacts):
        await scene.put_on_deal(deal, contact, first=n == 0)
    return deal


async def _more(scene: World) -> None:
    """The deals of the module docstring, made before the first sync on the days they happened."""
    open_stage, won_stage = scene.crm.stages
    stage = scene.crm.deal_fields[2]
    found = await scene.api.search(scene.crm.contacts, "Email", ["ann@example.com", "bob@example.com"])
    ann, bob = sorted(found, key=lambda r: str(r.fields.get("Email")))
    scene.at(day(2, 3))
    eve = await _contact(scene, "eve@example.com", "direct")
    scene.at(day(2, 5))
    february = await _deal(scene, "February win", 2000, "2026-02-15", open_stage, eve)
    scene.at(day(2, 15))
    await scene.update(scene.crm.deals, february, {stage: won_stage})
    scene.at(day(3, 2))
    await _deal(scene, "Orphan", 1000, "2026-03-02", won_stage)
    scene.at(day(3, 3))
    await _deal(scene, "Beta expansion", 4000, "2026-04-30", open_stage, ann.id, bob.id)
    scene.at(day(3, 4))
    await _deal(scene, "Lost one", 3000, "2026-03-04", "Closed Lost", ann.id)
    scene.at(day(3, 5))


def _run(scene: World, capsys: pytest.CaptureFixture[str], **options: object) -> dict[str, Any]:
    values = {"model": "all", "format": "json", "out": None, "since": "2026-01-01", "until": "2026-03-31"}
    args = argparse.Namespace(**(values | {"spend": None, "by": "month", "detail": True} | options))
    assert report_command(scene.engine.config, scene.store, args, console=None) == 0
    printed = capsys.readouterr().out
    return {} if args.out else dict(json.loads(printed))


@SALESFORCE_HUBSPOT
async def test_the_new_sections_from_vendor_data(
    world: World,  # noqa: F811 - the fixture imported above
    capsys: pytest.CaptureFixture[str],
) -> None:
    await _seed(world)
    await _more(world)
    await _report(world, day(1, 1), day(4, 1))  # two cycles: everything synced, the ledger booked
    report = _run(world, capsys)
    assert (report["total_revenue"], report["won_deals"]) == ("13000.00", 3)
    march = report["trend"]["rows"][2]
    assert (march["label"], march["revenue"], march["previous_revenue"], march["change_pct"]) == (
        "2026-03",
        "11000.00",
        "2000.00",
        "450.0",
    )
    assert report["open_pipeline"] == {"amount": "4000.00", "deals": 1}
    pipeline = {(r["model"], r["key"]): r["revenue"] for r in report["pipeline"] if r["dimension"] == "source"}
    assert (pipeline["linear", "paid_search"], pipeline["linear", "email"]) == ("2000.00", "2000.00")
    assert pipeline["first_touch", "paid_search"] == "4000.00"
    originated = report["influence"]["marketing_originated"]
    assert (originated["revenue"], originated["share_pct"]) == ("10000.00", "76.9")
    quality = report["data_quality"]
    assert quality["unattributed"] == {"revenue": "1000.00", "won_deals": 1, "share_pct": "7.7"}
    assert quality["won_deals_without_contacts"] == 1
    acme = next(d for d in report["deals"] if d["name"] == "Acme rollout")
    assert [t["credit"]["linear"] for t in acme["touches"]] == ["2500.00"] * 4
    assert [(t["contact"], t["credit"]["w_shaped"]) for t in acme["touches"]][1] == ("bob@example.com", "3000.00")


@SALESFORCE_HUBSPOT
async def test_the_html_report_of_vendor_data_has_the_campaign_chart(
    world: World,  # noqa: F811 - the fixture imported above
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    await _seed(world)
    await _more(world)
    await _report(world, day(1, 1), day(4, 1))
    out = tmp_path / "report.html"
    _run(world, capsys, format="html", out=out)
    page = out.read_text(encoding="utf-8")
    assert "Campaigns: revenue and open pipeline" in page
    assert "Revenue over time (by month)" in page
    assert "Deal Beta expansion" in page
