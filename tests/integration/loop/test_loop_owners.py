"""Owners mapped across by email, from vendor data only: users, leads and contacts made through the sandboxes' APIs.

Salesforce and HubSpot on the shipped mappings. Both sandboxes start with the integration user, Sam Seller and
Rita Rep (Salesforce users, HubSpot owners, same emails); each side's ids differ. The cases:

- a lead Sam owns in Salesforce reaches HubSpot owned by Sam's HubSpot owner; reassigned to Rita in Salesforce,
  the HubSpot contact names Rita's owner after one cycle;
- an MQL created in HubSpot with Rita as its owner reaches Salesforce owned by Rita's user;
- Zoho and HubSpot on a mapping with an owner field: a Zoho contact owned by Sam reaches HubSpot owned by Sam,
  an MQL made in HubSpot owned by Rita reaches Zoho owned by Rita, a reassignment in Zoho shows in HubSpot;
- a Salesforce user made through the API with no HubSpot owner: the lead it owns is quarantined with a message
  that names the missing email, and the HubSpot contact keeps its owner (never blanked); once the owner exists
  in HubSpot (a user made through HubSpot's API) and the entry is retried, the owner is written.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from closeloop.model import WriteOp, WriteRequest
from closeloop.store.rows import QuarantineStatus

from .shipped import custom_pair, hubspot_contact, shipped_pair, sync_ok
from .test_loop_vendor_milestones import World


@pytest.fixture
async def shipped(tmp_path: Path) -> AsyncIterator[World]:
    async with shipped_pair(tmp_path) as world:
        yield world


async def _salesforce_user(world: World, email: str) -> str:
    """The Salesforce id of the user with ``email``, found through the API."""
    (user,) = await world.api.search("User", "Email", [email])
    return user.id


async def _hubspot(world: World, method: str, path: str, body: Any = None) -> Any:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=world.mkt_box), base_url="http://marketing.test"
    ) as c:
        response = await c.request(method, path, json=body, headers={"authorization": "Bearer pat-na1-sandbox-3"})
    assert response.status_code < 300, response.text
    return response.json()


async def _hubspot_owner(world: World, email: str) -> str:
    body = await _hubspot(world, "GET", f"/crm/v3/owners?email={email}")
    (owner,) = body["results"]
    return str(owner["id"])


async def _lead(world: World, email: str, owner: str) -> str:
    fields = {"Email": email, "LastName": email.split("@")[0].title(), "Company": "Acme", "OwnerId": owner}
    (result,) = await world.api.write("Lead", [WriteRequest("new", WriteOp.CREATE, fields)])
    assert result.ok, result.error
    assert result.native_id
    return result.native_id


async def test_a_reassignment_in_salesforce_shows_on_the_hubspot_contact_within_one_cycle(shipped: World) -> None:
    sam = await _salesforce_user(shipped, "sam.seller@example.com")
    rita = await _salesforce_user(shipped, "rita.rep@example.com")
    lead = await _lead(shipped, "lena@example.com", sam)
    await sync_ok(shipped)
    sam_owner = await _hubspot_owner(shipped, "sam.seller@example.com")
    assert hubspot_contact(shipped, "lena@example.com").fields["hubspot_owner_id"] == sam_owner

    await shipped.update("Lead", lead, {"OwnerId": rita})
    await sync_ok(shipped)

    rita_owner = await _hubspot_owner(shipped, "rita.rep@example.com")
    assert rita_owner != sam_owner
    assert hubspot_contact(shipped, "lena@example.com").fields["hubspot_owner_id"] == rita_owner


async def test_an_mql_made_in_hubspot_reaches_salesforce_assigned_to_its_owner(shipped: World) -> None:
    rita_owner = await _hubspot_owner(shipped, "rita.rep@example.com")
    props = {"email": "max@example.com", "lastname": "Max", "lifecyclestage": "marketingqualifiedlead"}
    await _hubspot(world=shipped, method="POST", path="/crm/v3/objects/contacts",
                   body={"properties": {**props, "hubspot_owner_id": rita_owner}})  # fmt: skip
    await sync_ok(shipped)

    contact = next(r for r in shipped.crm_box.table("Contact").live() if r.fields.get("Email") == "max@example.com")
    assert contact.fields["OwnerId"] == await _salesforce_user(shipped, "rita.rep@example.com")


async def test_an_owner_without_a_user_on_the_other_side_is_quarantined_naming_the_email(shipped: World) -> None:
    sam = await _salesforce_user(shipped, "sam.seller@example.com")
    lead = await _lead(shipped, "nora@example.com", sam)
    await sync_ok(shipped)
    sam_owner = await _hubspot_owner(shipped, "sam.seller@example.com")
    (result,) = await shipped.api.write(
        "User",
        [WriteRequest("u", WriteOp.CREATE, {"Username": "nina.new@example.com", "Email": "Nina.New@example.com",
                                            "LastName": "New"})],
    )  # fmt: skip
    assert result.ok, result.error
    await shipped.update("Lead", lead, {"OwnerId": result.native_id, "Title": "CTO"})

    outcome = await shipped.engine.sync("pair")

    assert outcome.status.value == "quarantined"
    (entry,) = shipped.store.list_quarantine(QuarantineStatus.OPEN)
    assert "nina.new@example.com" in entry.reason
    assert entry.system == "marketing"
    contact = hubspot_contact(shipped, "nora@example.com")
    assert contact.fields["hubspot_owner_id"] == sam_owner  # kept, never blanked
    assert contact.fields["jobtitle"] == "CTO"  # the rest of the record still syncs

    await _hubspot(shipped, "POST", "/settings/v3/users/", {"email": "nina.new@example.com", "lastName": "New"})
    shipped.store.mark_retry(entry.id)
    await sync_ok(shipped)
    nina_owner = await _hubspot_owner(shipped, "nina.new@example.com")
    assert hubspot_contact(shipped, "nora@example.com").fields["hubspot_owner_id"] == nina_owner


ZOHO_CONTACTS = """
entity: contact
systems:
  crm: {objects: [Contacts], upsert: {key: Email, value: email}}
  marketing: {objects: [contacts], upsert: {key: email, value: email}}
match: [email]
fields:
  email: {type: email, crm: Email, marketing: email}
  last_name: {type: string, crm: Last_Name, marketing: lastname}
  owner: {type: owner, crm: Owner, marketing: hubspot_owner_id, prefer: crm}
create:
  crm -> marketing: all
  marketing -> crm: all
on_delete: unlink
"""


@pytest.fixture
async def zoho(tmp_path: Path) -> AsyncIterator[World]:
    async with custom_pair(tmp_path, "zoho", "hubspot", ZOHO_CONTACTS) as world:
        yield world


async def _zoho_user(world: World, email: str) -> str:
    """The Zoho id of the user with ``email``, from Zoho's users API."""
    users = await world.api.owners()  # type: ignore[attr-defined]
    return next(u.id for u in users if u.email == email)


async def test_zoho_owners_map_both_ways_by_email(zoho: World) -> None:
    sam, rita = await _zoho_user(zoho, "sam.seller@example.com"), await _zoho_user(zoho, "rita.rep@example.com")
    contact = await zoho.create("Contacts", {"Email": "zed@example.com", "Last_Name": "Zed", "Owner": sam})
    rita_owner = await _hubspot_owner(zoho, "rita.rep@example.com")
    props = {"email": "max@example.com", "lastname": "Max", "hubspot_owner_id": rita_owner}
    await _hubspot(zoho, "POST", "/crm/v3/objects/contacts", {"properties": props})
    await sync_ok(zoho)

    assert hubspot_contact(zoho, "zed@example.com").fields["hubspot_owner_id"] == await _hubspot_owner(
        zoho, "sam.seller@example.com"
    )
    max_row = zoho.crm_box.table("Contacts").find("Email", "max@example.com")
    assert max_row is not None
    assert max_row.fields["Owner"] == {"id": rita}

    await zoho.update("Contacts", contact, {"Owner": rita})
    await sync_ok(zoho)
    assert hubspot_contact(zoho, "zed@example.com").fields["hubspot_owner_id"] == rita_owner


MARKETO_CONTACTS = """
entity: contact
systems:
  crm: {objects: [Contacts], upsert: {key: Email, value: email}}
  marketing: {objects: [leads], upsert: {key: email, value: email}}
match: [email]
fields:
  email: {type: email, crm: Email, marketing: email}
  last_name: {type: string, crm: Last_Name, marketing: lastName}
  owner: {type: owner, crm: Owner, marketing: leadOwnerEmail, prefer: crm}
create:
  crm -> marketing: all
  marketing -> crm: all
on_delete: unlink
"""


@pytest.fixture
async def marketo(tmp_path: Path) -> AsyncIterator[World]:
    async with custom_pair(tmp_path, "zoho", "marketo", MARKETO_CONTACTS) as world:
        yield world


async def test_marketo_lead_owner_emails_map_to_zoho_users(marketo: World) -> None:
    sam = await _zoho_user(marketo, "sam.seller@example.com")
    await marketo.create("Contacts", {"Email": "zed@example.com", "Last_Name": "Zed", "Owner": sam})
    leads = marketo.engine.connector("marketing")
    new_lead = {"email": "max@example.com", "lastName": "Max", "leadOwnerEmail": "Nobody.Here@example.com"}
    (made,) = await leads.write("leads", [WriteRequest("max", WriteOp.CREATE, new_lead)])
    assert made.ok, made.error

    outcome = await marketo.engine.sync("pair")

    (zed,) = [r for r in marketo.mkt_box.table("leads").live() if r.fields.get("email") == "zed@example.com"]
    assert zed.fields["leadOwnerEmail"] == "sam.seller@example.com"
    assert outcome.status.value == "quarantined"
    (entry,) = marketo.store.list_quarantine(QuarantineStatus.OPEN)
    assert entry.system == "crm"
    assert "no crm user has the email nobody.here@example.com" in entry.reason


async def test_the_user_lists_are_read_once_then_kept_until_an_unknown_owner_shows(shipped: World) -> None:
    sam = await _salesforce_user(shipped, "sam.seller@example.com")
    lead = await _lead(shipped, "lena@example.com", sam)
    first = await shipped.engine.sync("pair")
    assert (first.counts["owner_directories:crm"], first.counts["owner_directories:marketing"]) == (1, 1)
    quiet = [await shipped.engine.sync("pair") for _ in range(2)]
    assert all("owner_directories" not in outcome.counts for outcome in quiet)

    (made,) = await shipped.api.write(
        "User", [WriteRequest("u", WriteOp.CREATE, {"Username": "ole@example.com", "Email": "ole@example.com",
                                                   "LastName": "Ole"})]
    )  # fmt: skip
    await shipped.update("Lead", lead, {"OwnerId": made.native_id})
    after = await shipped.engine.sync("pair")
    assert after.counts["owner_directories:crm"] == 1  # an owner id the kept list did not know: read again
