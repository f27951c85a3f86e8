"""The demo's follow-up SLA scene: two MQLs handed over two days ago, one followed up within hours, one not.

Played on the shipped pair (Salesforce CRM, HubSpot marketing) before the initial sync, with the sandboxes'
clocks set back, so the vendors stamp the MQL dates and the call as they would have two days ago: HubSpot
makes the MQLs, Salesforce holds each as a Lead (sales got them), and a sales rep logs a call on the first.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from rich.console import Console

from closeloop.connector import Connector
from closeloop.loop.fmt import money, source_label
from closeloop.loop.report import Report
from closeloop.loop.sla import describe_span
from closeloop.model import WriteOp, WriteRequest

if TYPE_CHECKING:  # the sandbox extra is checked by demo_command before the demo runs
    from closeloop.sandbox.kit import SandboxBase

PAIR = ("salesforce", "hubspot")
FOLLOWED_UP, BREACHED = "mql.followed-up@demo.example", "mql.waiting@demo.example"
HANDED_OVER_AGO, CALLED_AFTER = timedelta(days=2), timedelta(hours=3)


async def _create(connector: Connector, obj: str, fields: dict[str, str]) -> str:
    (result,) = await connector.write(obj, [WriteRequest("demo", WriteOp.CREATE, fields)])
    if not result.ok or result.native_id is None:
        raise RuntimeError(f"the demo could not create its {obj}: {result.error}")
    return result.native_id


async def hand_over_mqls(sandboxes: Sequence[SandboxBase], crm: Connector, marketing: Connector, now: datetime) -> None:
    """Two MQLs made two days before ``now``; a call logged on the first three hours later."""
    handed_over = now - HANDED_OVER_AGO
    for box in sandboxes:
        box.clock.frozen = handed_over
    try:
        leads = {}
        for email in (FOLLOWED_UP, BREACHED):
            person = {"email": email, "lastname": "Demo", "lifecyclestage": "marketingqualifiedlead"}
            await _create(marketing, "contacts", person)
            lead = {"Email": email, "LastName": "Demo", "Company": "Demo Inc", "Status__c": "MQL"}
            leads[email] = await _create(crm, "Lead", lead)
        for box in sandboxes:
            box.clock.frozen = handed_over + CALLED_AFTER
        call = {"WhoId": leads[FOLLOWED_UP], "Subject": "Intro call", "Status": "Completed", "TaskSubtype": "Call"}
        await _create(crm, "Task", call)
    finally:
        for box in sandboxes:
            box.clock.frozen = None


def show_sla(report: Report, console: Console) -> None:
    """The two demo MQLs as the report sees them: followed up in time, and an open breach."""
    sla = report.sla
    if sla is None:
        return
    open_ = {b.label: b for b in sla.open_breaches}
    console.print(
        f"[bold]MQL follow-up SLA[/bold]: {sla.total.within} of {sla.total.handed_over} MQLs followed up within "
        f"the SLA, {len(open_)} open breach(es) now (the sandboxes seed people at the MQL stage but no sales "
        "activity, so the seeded MQLs count as breaches; the two handed over by the demo:)"
    )
    if FOLLOWED_UP not in open_:
        after = describe_span(CALLED_AFTER)
        console.print(f"  {FOLLOWED_UP}: called {after} after the handover, [green]within the SLA[/green]")
    if (breach := open_.get(BREACHED)) is not None:
        console.print(
            f"  {BREACHED}: [red]no follow-up[/red], {breach.age_hours} h old, {breach.overdue_hours} h past the SLA"
        )


def show_clv(report: Report, console: Console) -> None:
    """Average customer lifetime value by original source, as the report counts it."""
    clv = report.clv
    if clv is None or not clv.total.customers:
        return
    rows = [r for r in clv.rows_for("source") if r.customers]
    figures = ", ".join(f"{source_label(r.key)} {money(r.average_value)} ({r.customers})" for r in rows)
    console.print(f"[bold]Average CLV by source[/bold] ({report.base_currency}, customers): {figures}")
