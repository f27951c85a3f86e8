"""The MQL follow-up SLA and customer lifetime value from vendor data only: Salesforce and HubSpot sandboxes on
the shipped mappings, records and activities made through their REST APIs, the engine, then the report.

SLA of 24 hours, round the clock. Marketing makes MQLs in HubSpot (HubSpot stamps the day each entered the MQL
stage); closeloop creates them in Salesforce, where sales logs its follow-ups as Events and Tasks:

    ann  MQL 03-02 09:00  meeting booked (Event) 03-02 15:00           within, 6h
    bob  MQL 03-02 10:00  call logged (Task, Completed) 03-03 10:01    breached: one minute past, 24h01m
    fay  MQL 03-02 12:00  no activity; HubSpot moves her to SQL 18:00  within, 6h (the stage change counts)
    cid  MQL 03-03 08:00  nothing                                      breached and open at 03-05 08:00: 48h old
    dee  MQL 03-04 20:00  nothing                                      pending at 03-05 08:00 (12h of 24h gone)

Handed over 5, within 2, breached 2, pending 1: 50.0 % within of the 4 decided; waits 6h, 6h, 24h01m: median
(nearest rank 2 of 3) 6.00 h, 90th percentile (rank 3 of 3) 24.02 h.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from prometheus_client import generate_latest

from closeloop.daemon.lifecycle import Daemon
from closeloop.daemon.settings import DaemonSettings
from closeloop.loop import Report, build_report
from closeloop.loop.facts import read_facts
from closeloop.loop.render import render_text
from closeloop.loop.sla_facts import read_mqls
from closeloop.loop.sla_now import status_lines
from closeloop.loop.spend import parse_spend_csv
from closeloop.model import WriteOp, WriteRequest

from .shipped import custom_pair, hubspot_contact, shipped_pair, sync_ok
from .test_loop_vendor_milestones import World

SLA_24H = "{base_currency: USD, sla: {mql_follow_up: 24h}}"
SLA_BUSINESS = (
    "{base_currency: USD, sla: {mql_follow_up: 4h, time_zone: Europe/Berlin, "
    "business_hours: {start: '09:00', end: '17:00', days: [mon, tue, wed, thu, fri]}}}"
)


def at(month: int, dom: int, hour: int = 0, minute: int = 0) -> datetime:
    """A moment of 2026 in UTC."""
    return datetime(2026, month, dom, hour, minute, tzinfo=UTC)


async def hubspot(world: World, op: WriteOp, fields: dict[str, Any], native_id: str | None = None) -> None:
    """A contact made or changed through HubSpot's API."""
    api = world.engine.connector("marketing")
    (result,) = await api.write("contacts", [WriteRequest("x", op, fields, native_id=native_id)])
    assert result.ok, result.error


async def mql(world: World, email: str, when: datetime) -> None:
    """Marketing hands a lead over: an MQL made in HubSpot at ``when``, then synced to Salesforce."""
    world.at(when)
    await hubspot(
        world,
        WriteOp.CREATE,
        {"email": email, "lastname": email[:3].title(), "lifecyclestage": "marketingqualifiedlead"},
    )
    await sync_ok(world)


def salesforce_contact(world: World, email: str) -> str:
    """The id of the live Salesforce Contact of ``email`` (closeloop made it)."""
    return next(r.id for r in world.crm_box.table("Contact").live() if r.fields.get("Email") == email)


async def follow_up(world: World, obj: str, email: str, when: datetime) -> None:
    """Sales logs a follow-up on the person in Salesforce at ``when``: a completed call (Task) or a meeting."""
    world.at(when)
    who = salesforce_contact(world, email)
    if obj == "Task":
        await world.create("Task", {"WhoId": who, "Subject": "Call", "Status": "Completed", "TaskSubtype": "Call"})
    else:
        start = when.isoformat().replace("+00:00", "Z")
        await world.create("Event", {"WhoId": who, "Subject": "Demo", "StartDateTime": start, "DurationInMinutes": 30})


def report_of(world: World, start: datetime, end: datetime, now: datetime, **kw: Any) -> Report:
    """The report of [start, end) as of ``now``, with the configured SLA."""
    facts = read_facts(world.store, start, end, "USD", kw.pop("spend", ()))
    facts = replace(facts, mqls=read_mqls(world.store, facts.contacts))
    return build_report(facts, sla=world.engine.config.loop.sla, now=now, **kw)


async def test_sla_figures_from_vendor_activities(tmp_path: Path) -> None:
    async with shipped_pair(tmp_path, SLA_24H) as world:
        await mql(world, "ann@example.com", at(3, 2, 9))
        await mql(world, "bob@example.com", at(3, 2, 10))
        await mql(world, "fay@example.com", at(3, 2, 12))
        await follow_up(world, "Event", "ann@example.com", at(3, 2, 15))
        world.at(at(3, 2, 18))
        fay = hubspot_contact(world, "fay@example.com").id
        await hubspot(world, WriteOp.UPDATE, {"lifecyclestage": "salesqualifiedlead"}, fay)
        await mql(world, "cid@example.com", at(3, 3, 8))
        await follow_up(world, "Task", "bob@example.com", at(3, 3, 10, 1))
        await mql(world, "dee@example.com", at(3, 4, 20))
        world.at(at(3, 5, 8))
        await sync_ok(world, 2)
        report = report_of(world, at(3, 1), at(4, 1), now=at(3, 5, 8))
        config = world.engine.config
        assert config.loop.sla is not None
        status = status_lines(world.store, config.loop.sla, config.connections, at(3, 5, 8))
        daemon = Daemon(DaemonSettings(), config, world.store, tmp_path / "state.db", clock=lambda: at(3, 5, 8))
        daemon.count_sla_breaches("pair")
        scraped = generate_latest(daemon.metrics.registry).decode()
        await daemon.engine.aclose()
    assert status[0] == "SLA breaches open now: 1 (pair 1); MQL follow-up within 24h"
    assert status[1].startswith(
        "  cid@example.com  owner integration@sandbox.invalid  MQL since 2026-03-03 08:00 UTC  age 48.00h"
    )
    assert 'closeloop_sla_breaches{connection="pair"} 1.0' in scraped
    sla = report.sla
    assert sla is not None
    total = sla.total
    assert (total.handed_over, total.within, total.breached, total.pending) == (5, 2, 2, 1)
    assert (str(total.within_percent), str(total.median_hours), str(total.p90_hours)) == ("50.0", "6.00", "24.02")
    (breach,) = sla.open_breaches
    assert (breach.label, str(breach.age_hours), str(breach.overdue_hours)) == ("cid@example.com", "48.00", "24.00")
    assert [(r.key, r.handed_over) for r in sla.by_source] == [("unknown", 5)]
    assert [(r.key, r.within, r.breached) for r in sla.by_owner] == [
        ("integration@sandbox.invalid", 2, 2)
    ]  # the owner Salesforce gave the MQLs it got
    # every format carries the same figures
    data = json.loads(render_text(report, "json"))["sla"]
    assert (data["total"]["within_percent"], data["total"]["p90_hours"]) == ("50.0", "24.02")
    assert data["open_breaches"][0]["label"] == "cid@example.com"
    assert "sla,,all,all,within_sla_pct,50.0" in render_text(report, "csv").splitlines()
    table = render_text(report, "table", width=200)
    assert "Open SLA breaches (1)" in table
    assert "cid@example.com" in table
    page = render_text(report, "html")
    assert "MQL follow-up by owner" in page
    assert "Open SLA breaches (1)" in page


async def test_activities_are_read_incrementally_and_a_reopened_task_stops_counting(tmp_path: Path) -> None:
    async with shipped_pair(tmp_path, SLA_24H) as world:
        await mql(world, "ann@example.com", at(3, 2, 9))
        await follow_up(world, "Task", "ann@example.com", at(3, 2, 11))
        world.at(at(3, 2, 12))
        await sync_ok(world)
        first = report_of(world, at(3, 1), at(4, 1), now=at(3, 2, 12)).sla
        assert first is not None
        assert (first.total.within, str(first.total.median_hours)) == (1, "2.00")
        (task,) = world.crm_box.table("Task").live()
        world.at(at(3, 2, 13))
        await world.update("Task", task.id, {"Status": "In Progress"})  # reopened: no longer a follow-up
        await sync_ok(world)
        second = report_of(world, at(3, 1), at(4, 1), now=at(3, 4)).sla
    assert second is not None
    assert (second.total.within, second.total.breached) == (0, 1)
    assert [b.label for b in second.open_breaches] == ["ann@example.com"]


STAMP = "  sla_breached_at: {type: datetime, from: loop.sla_breached_at, crm: Closeloop_SLA_Breached_At__c}\n"


async def test_a_breach_is_stamped_on_the_crm_record_for_its_workflows(tmp_path: Path) -> None:
    """The stamp is set when the engine (on real time) finds the SLA run out: bob's ran out an hour ago, and his
    late call keeps it; ann was called in time and cid's SLA still runs: neither is stamped."""
    now = datetime.now(UTC).replace(microsecond=0)
    async with shipped_pair(tmp_path, SLA_24H, contact_fields=STAMP) as world:
        await mql(world, "bob@example.com", now - timedelta(hours=25))
        await mql(world, "ann@example.com", now - timedelta(hours=3))
        await follow_up(world, "Task", "ann@example.com", now - timedelta(hours=2))
        await mql(world, "cid@example.com", now - timedelta(hours=1))
        await follow_up(world, "Task", "bob@example.com", now - timedelta(minutes=30))  # late: the stamp stays
        world.at(now)
        await sync_ok(world, 2)
        contacts = {r.fields["Email"]: r.fields for r in world.crm_box.table("Contact").live()}
    stamps = {email: fields.get("Closeloop_SLA_Breached_At__c") for email, fields in contacts.items()}
    due = (now - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    assert stamps == {"bob@example.com": due, "ann@example.com": None, "cid@example.com": None}


async def test_business_hours_stop_the_clock_over_the_weekend(tmp_path: Path) -> None:
    # Friday 06 March 16:00 in Berlin (15:00 UTC); 4 business hours run out Monday 12:00 Berlin (11:00 UTC).
    async with shipped_pair(tmp_path, SLA_BUSINESS) as world:
        await mql(world, "ann@example.com", at(3, 6, 15))
        await mql(world, "bob@example.com", at(3, 6, 15))
        await follow_up(world, "Task", "ann@example.com", at(3, 9, 10, 30))  # Monday 11:30 Berlin: 3.5 business h
        await follow_up(world, "Task", "bob@example.com", at(3, 9, 11, 1))  # Monday 12:01 Berlin: one minute late
        world.at(at(3, 9, 12))
        await sync_ok(world)
        sla = report_of(world, at(3, 1), at(4, 1), now=at(3, 9, 12)).sla
    assert sla is not None
    assert sla.business_hours == "mon,tue,wed,thu,fri 09:00-17:00 Europe/Berlin"
    assert (sla.total.within, sla.total.breached) == (1, 1)
    assert (str(sla.total.median_hours), str(sla.total.p90_hours)) == ("3.50", "4.02")


SPEND = "period,channel,campaign,amount\n2026-01,paid_search,,300\n2026-02,email,,800\n"


async def test_customer_lifetime_value_by_source_from_won_deals(tmp_path: Path) -> None:
    """ann (paid search) won 1,000 in January and renewed for 500 in June; bob and cid (email) share a 2,000
    deal won in February. CLV: ann 1,500; bob and cid 1,000 each. With a 90-day horizon ann's is 1,000."""
    async with shipped_pair(tmp_path) as world:
        world.at(at(1, 2))
        people = {}
        for email, source in (("ann", "Paid Search"), ("bob", "Email"), ("cid", "Email")):
            people[email] = await world.create(
                "Contact", {"Email": f"{email}@example.com", "LastName": email.title(), "LeadSource": source}
            )

        async def won(name: str, amount: int, closed: datetime, *who: str) -> None:
            world.at(closed)
            day = closed.date().isoformat()
            deal = await world.create(
                "Opportunity",
                {
                    "Name": name,
                    "Amount": amount,
                    "StageName": "Prospecting",
                    "CloseDate": day,
                    "CurrencyIsoCode": "USD",
                },
            )
            for first, person in enumerate(who):
                await world.put_on_deal(deal, people[person], first=first == 0)
            await world.update("Opportunity", deal, {"StageName": "Closed Won"})

        await won("Ann new", 1000, at(1, 10), "ann")
        await won("Email pair", 2000, at(2, 1), "bob", "cid")
        await won("Ann renewal", 500, at(6, 10), "ann")
        world.at(at(6, 20))
        await sync_ok(world, 2)
        spend = parse_spend_csv(SPEND)
        full = report_of(world, at(1, 1), at(4, 1), now=at(6, 20), spend=spend)
        clv = full.clv
        bounded = report_of(world, at(1, 1), at(4, 1), now=at(6, 20), clv_horizon_days=90).clv
    assert clv is not None
    assert bounded is not None
    rows = {r.key: r for r in clv.rows_for("source")}
    assert (rows["paid_search"].customers, rows["paid_search"].average_value) == (1, Decimal("1500.00"))
    assert (rows["email"].customers, rows["email"].total_value, rows["email"].average_value) == (
        2,
        Decimal("2000.00"),
        Decimal("1000.00"),
    )
    assert (str(rows["paid_search"].cac), str(rows["paid_search"].clv_to_cac)) == ("300.00", "5.00")
    assert (str(rows["email"].cac), str(rows["email"].clv_to_cac)) == ("400.00", "2.50")
    assert (clv.total.customers, str(clv.total.average_value)) == (3, "1166.67")
    assert {r.key: str(r.average_value) for r in bounded.rows_for("source")} == {
        "paid_search": "1000.00",
        "email": "1000.00",
    }
    assert "clv,,source,email,clv_to_cac,2.50" in render_text(full, "csv").splitlines()


ZOHO_CONTACTS = """
entity: contact
systems:
  crm: {objects: [Contacts], upsert: {key: Email, value: email}}
  marketing: {objects: [contacts], upsert: {key: email, value: email}}
match: [email]
fields:
  email: {type: email, crm: Email, marketing: email}
  last_name: {type: string, crm: Last_Name, marketing: lastname}
  became_mql_at: {type: datetime, marketing: hs_lifecyclestage_marketingqualifiedlead_date, policy: earliest}
create:
  marketing -> crm: all
on_delete: unlink
"""


def zoho_pair(tmp_path: Path) -> AbstractAsyncContextManager[World]:
    """Zoho CRM and HubSpot sandboxes, people only, held to a 24h follow-up SLA."""
    return custom_pair(tmp_path, "zoho", "hubspot", ZOHO_CONTACTS, loop=SLA_24H, limits=False)


async def test_zoho_calls_tasks_and_events_are_follow_ups(tmp_path: Path) -> None:
    """ann: a call 1h after her MQL (within); bob: a task completed 24h01m after (breached); cid: a meeting booked
    4h after (within); dee: an open task only (no follow-up: an open breach)."""
    async with zoho_pair(tmp_path) as world:
        for email, hour in (("ann", 9), ("bob", 10), ("cid", 11), ("dee", 12)):
            await mql(world, f"{email}@example.com", at(3, 2, hour))
        zoho = {r.fields["Email"]: r.id for r in world.crm_box.table("Contacts").live()}
        world.at(at(3, 2, 15))
        who = {"Who_Id": {"id": zoho["cid@example.com"]}}
        await world.create("Events", {"Event_Title": "Demo", "Start_DateTime": "2026-03-09T10:00:00+00:00",
                                      "End_DateTime": "2026-03-09T11:00:00+00:00"} | who)  # fmt: skip
        call = {"Subject": "Intro", "Call_Type": "Outbound", "Call_Start_Time": "2026-03-02T10:00:00+00:00"}
        await world.create("Calls", call | {"Who_Id": {"id": zoho["ann@example.com"]}})
        await world.create("Tasks", {"Subject": "Call back", "Who_Id": {"id": zoho["dee@example.com"]}})
        task = await world.create("Tasks", {"Subject": "Call", "Who_Id": {"id": zoho["bob@example.com"]}})
        await sync_ok(world)
        world.at(at(3, 3, 10, 1))
        await world.update("Tasks", task, {"Status": "Completed"})
        world.at(at(3, 5))
        await sync_ok(world, 2)
        sla = report_of(world, at(3, 1), at(4, 1), now=at(3, 5)).sla
    assert sla is not None
    assert (sla.total.handed_over, sla.total.within, sla.total.breached) == (4, 2, 2)
    assert (str(sla.total.median_hours), str(sla.total.p90_hours)) == ("4.00", "24.02")
    assert [b.label for b in sla.open_breaches] == ["dee@example.com"]


HUBSPOT_CRM_CONTACTS = """
entity: contact
systems:
  crm: {objects: [contacts], upsert: {key: email, value: email}}
  marketing: {objects: [leads], upsert: {key: email, value: email}}
match: [email]
fields:
  email: {type: email, crm: email, marketing: email}
  last_name: {type: string, crm: lastname, marketing: lastName}
  became_mql_at: {type: datetime, crm: hs_lifecyclestage_marketingqualifiedlead_date, policy: earliest}
create:
  crm -> marketing: all
on_delete: unlink
"""


@asynccontextmanager
async def hubspot_crm(tmp_path: Path) -> AsyncIterator[tuple[World, Any]]:
    """HubSpot as the CRM (sales logs engagements there) and Marketo as the marketing tool; 24h SLA."""
    async with custom_pair(tmp_path, "hubspot", "marketo", HUBSPOT_CRM_CONTACTS, loop=SLA_24H, limits=False) as world:
        yield world, world.engine.connector("crm")


async def test_hubspot_engagements_are_follow_ups(tmp_path: Path) -> None:
    """ann: a connected call 2h after her MQL (within); bob: an email sent 24h01m after (breached), a no-answer
    call before it does not count; cid: a task completed 30 min after (within); dee: an incoming email only."""
    async with hubspot_crm(tmp_path) as (world, hubspot):

        async def engagement(obj: str, contact: str, when: datetime, **props: str) -> str:
            world.at(when)
            made = await hubspot.api.post(f"/crm/v3/objects/{obj}", {"properties": props}, idempotent=False)
            path = f"/crm/v4/objects/{obj}/{made['id']}/associations/default/contacts/{contact}"
            await hubspot.api.http.request("PUT", path, idempotent=True)
            return str(made["id"])

        people = {}
        for email, hour in (("ann", 9), ("bob", 10), ("cid", 11), ("dee", 12)):
            world.at(at(3, 2, hour))
            await hubspot_api_contact(hubspot, f"{email}@example.com")
            people[email] = next(
                r.id for r in world.crm_box.table("contacts").live() if r.fields["email"] == f"{email}@example.com"
            )
        stamp = lambda when: when.isoformat().replace("+00:00", "Z")  # noqa: E731 - a tiny formatting helper
        await engagement(
            "calls", people["ann"], at(3, 2, 11), hs_timestamp=stamp(at(3, 2, 11)), hs_call_status="COMPLETED"
        )
        await engagement(
            "calls", people["bob"], at(3, 2, 12), hs_timestamp=stamp(at(3, 2, 12)), hs_call_status="NO_ANSWER"
        )
        await engagement(
            "emails", people["dee"], at(3, 2, 13), hs_timestamp=stamp(at(3, 2, 13)), hs_email_direction="INCOMING_EMAIL"
        )
        task = await engagement("tasks", people["cid"], at(3, 2, 11), hs_task_status="NOT_STARTED")
        world.at(at(3, 2, 11, 30))
        await sync_ok(world)
        await hubspot.api.http.request(
            "PATCH",
            f"/crm/v3/objects/tasks/{task}",
            json={"properties": {"hs_task_status": "COMPLETED"}},
            idempotent=True,
        )
        await engagement(
            "emails", people["bob"], at(3, 3, 10, 1), hs_timestamp=stamp(at(3, 3, 10, 1)), hs_email_direction="EMAIL"
        )
        world.at(at(3, 5))
        await sync_ok(world, 2)
        sla = report_of(world, at(3, 1), at(4, 1), now=at(3, 5)).sla
    assert sla is not None
    assert (sla.total.handed_over, sla.total.within, sla.total.breached) == (4, 2, 2)
    assert (str(sla.total.median_hours), str(sla.total.p90_hours)) == ("2.00", "24.02")
    assert [b.label for b in sla.open_breaches] == ["dee@example.com"]


async def hubspot_api_contact(hubspot: Any, email: str) -> None:
    """An MQL made through HubSpot's API (the CRM here)."""
    fields = {"email": email, "lastname": email[:3].title(), "lifecyclestage": "marketingqualifiedlead"}
    (result,) = await hubspot.write("contacts", [WriteRequest("x", WriteOp.CREATE, fields)])
    assert result.ok, result.error


def fresh(folder: Path) -> Path:
    """A new empty folder."""
    folder.mkdir()
    return folder


async def quiet_cycle_calls(tmp_path: Path, loop: str) -> dict[str, int]:
    """API calls per system of a quiet cycle (the fourth) of the shipped pair."""
    async with shipped_pair(fresh(tmp_path), loop) as world:
        await sync_ok(world, 3)
        outcome = await world.engine.sync("pair")
    return {k: v for k, v in outcome.api_calls.items() if ":" not in k}


async def test_the_sla_costs_one_query_per_activity_object_in_a_quiet_cycle(tmp_path: Path) -> None:
    without = await quiet_cycle_calls(tmp_path / "without", "{base_currency: USD}")
    with_sla = await quiet_cycle_calls(tmp_path / "with", SLA_24H)
    assert with_sla == {"crm": without["crm"] + 2, "marketing": without["marketing"]}  # a Task and an Event query
