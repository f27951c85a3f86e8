"""Owners mapped across by email, from vendor data only: users, leads and contacts made through the sandboxes' APIs.

Salesforce and HubSpot on the shipped mappings. Both sandboxes start with the integration user, Sam Seller and
Rita Rep (Salesforce users, HubSpot owners, same emails); each side's ids differ. The cases:

- a lead Sam owns in Salesforce reaches HubSpot owned by Sam's HubSpot owner; reassigned to Rita in Salesforce,
  the HubSpot contact names Rita's owner after one cycle;
- an MQL created in HubSpot with Rita as its owner reaches Salesforce owned by Rita's user;
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

from .shipped import hubspot_contact, shipped_pair, sync_ok
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
