"""The SOAP API's merge call in the sandbox: losers deleted with MasterRecordId, related records moved, faults."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from closeloop_connectors.salesforce.sandbox import (
    DEFAULT_CLIENT_ID,
    DEFAULT_CLIENT_SECRET,
    SalesforceSandbox,
    create_sandbox,
)

API = "/services/data/v61.0/sobjects"
ENVELOPE = """<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"
  xmlns:urn="urn:partner.soap.sforce.com" xmlns:urn1="urn:sobject.partner.soap.sforce.com">
  <soapenv:Header><urn:SessionHeader><urn:sessionId>{session}</urn:sessionId></urn:SessionHeader></soapenv:Header>
  <soapenv:Body><urn:merge><urn:request>
    <urn:masterRecord><urn1:type>{kind}</urn1:type><urn1:Id>{master}</urn1:Id></urn:masterRecord>{losers}
  </urn:request></urn:merge></soapenv:Body></soapenv:Envelope>"""


@pytest.fixture
async def org() -> AsyncIterator[tuple[httpx.AsyncClient, SalesforceSandbox, str]]:
    sandbox = create_sandbox(seed=2, people=0, deals=0)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=sandbox), base_url=sandbox.base_url) as http:
        form = {"grant_type": "client_credentials", "client_id": DEFAULT_CLIENT_ID}
        form["client_secret"] = DEFAULT_CLIENT_SECRET
        session = (await http.post("/services/oauth2/token", data=form)).json()["access_token"]
        http.headers["Authorization"] = f"Bearer {session}"
        yield http, sandbox, session


async def _made(http: httpx.AsyncClient, sobject: str, fields: dict[str, Any]) -> str:
    answer = await http.post(f"{API}/{sobject}", json=fields)
    assert answer.status_code == 201, answer.text
    return str(answer.json()["id"])


def _merge(session: str, master: str, *losers: str, kind: str = "Contact") -> str:
    ids = "".join(f"<urn:recordToMergeIds>{i}</urn:recordToMergeIds>" for i in losers)
    return ENVELOPE.format(session=session, kind=kind, master=master, losers=ids)


async def test_merge_deletes_the_loser_and_moves_its_roles_and_memberships(
    org: tuple[httpx.AsyncClient, SalesforceSandbox, str],
) -> None:
    http, sandbox, session = org
    ann = await _made(http, "Contact", {"LastName": "Ann", "Email": "ann@example.com"})
    bob = await _made(http, "Contact", {"LastName": "Bob", "Email": "bob@example.com"})
    deal = await _made(http, "Opportunity", {"Name": "D", "StageName": "Prospecting", "CloseDate": "2026-03-01"})
    role = await _made(http, "OpportunityContactRole", {"OpportunityId": deal, "ContactId": bob})
    campaign = await _made(http, "Campaign", {"Name": "Webinar", "Type": "Webinar"})
    member = await _made(http, "CampaignMember", {"CampaignId": campaign, "ContactId": bob, "Status": "Responded"})
    answer = await http.post("/services/Soap/u/61.0", content=_merge(session, ann, bob))
    assert answer.status_code == 200, answer.text
    assert "<success>true</success>" in answer.text
    assert f"<mergedRecordIds>{bob}</mergedRecordIds>" in answer.text
    loser = sandbox.table("Contact").get(bob, include_deleted=True)
    assert loser is not None
    assert (loser.deleted, loser.merged_into) == (True, ann)
    assert sandbox.table("OpportunityContactRole").get(role).fields["ContactId"] == ann  # type: ignore[union-attr]
    assert sandbox.table("CampaignMember").get(member).fields["ContactId"] == ann  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("session", "losers", "expected"),
    [
        pytest.param("wrong", 1, "<faultcode>sf:INVALID_SESSION_ID</faultcode>", id="bad-session"),
        pytest.param(None, 3, "<statusCode>INVALID_ID_FIELD</statusCode>", id="more-than-two"),
        pytest.param(None, 0, "<statusCode>INVALID_ID_FIELD</statusCode>", id="none"),
    ],
)
async def test_merge_refusals(
    org: tuple[httpx.AsyncClient, SalesforceSandbox, str], session: str | None, losers: int, expected: str
) -> None:
    http, sandbox, good = org
    ids = [await _made(http, "Contact", {"LastName": f"P{i}"}) for i in range(losers + 1)]
    answer = await http.post("/services/Soap/u/61.0", content=_merge(session or good, ids[0], *ids[1:]))
    assert expected in answer.text
    assert all(not row.deleted for row in sandbox.table("Contact").rows.values())
