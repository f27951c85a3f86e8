"""Marketo's Python client (marketorestpython) against the Marketo sandbox, unchanged but for its host."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from closeloop_connectors.marketo.sandbox import MarketoSandbox, create_sandbox
from closeloop_connectors.marketo.sandbox.schema import NEW_LEAD
from marketorestpython.client import MarketoClient
from marketorestpython.helper.exceptions import MarketoException

from tests.contract.kit import base_url_fixture


@pytest.fixture(scope="module")
def sandbox() -> MarketoSandbox:
    """Twelve seeded leads, some of them members of programs."""
    return create_sandbox(seed=31, people=12)


base_url = base_url_fixture("marketo")  # served once for the module: the client blocks


@pytest.fixture
def client(sandbox: MarketoSandbox, base_url: str) -> MarketoClient:
    """The client as a user builds it; only its host is changed."""
    made = MarketoClient("123-ABC-456", sandbox.client_id, sandbox.client_secret)
    made.host = base_url
    return made


def emails(sandbox: MarketoSandbox, count: int) -> list[str]:
    """Emails of seeded leads, in id order."""
    return [str(row.fields["email"]) for row in sorted(sandbox.leads.live(), key=lambda r: int(r.id))[:count]]


def test_client_credentials_and_a_refused_secret(sandbox: MarketoSandbox, client: MarketoClient) -> None:
    client.authenticate()
    assert client.token
    assert client.expires_in > 0
    wrong = MarketoClient("123-ABC-456", sandbox.client_id, "not-the-secret")
    wrong.host = client.host
    with pytest.raises(Exception, match="Bad client credentials"):
        wrong.authenticate()


def test_leads_by_filter_type_read_through_a_form_post(sandbox: MarketoSandbox, client: MarketoClient) -> None:
    wanted = emails(sandbox, 3)
    leads = client.get_multiple_leads_by_filter_type("email", wanted, fields=["email", "firstName"])
    assert sorted(lead["email"] for lead in leads) == sorted(wanted)
    assert all(set(lead) == {"id", "email", "firstName"} for lead in leads)


def test_leads_by_filter_type_pages_to_the_end(sandbox: MarketoSandbox, client: MarketoClient) -> None:
    wanted = emails(sandbox, 7)
    leads = client.get_multiple_leads_by_filter_type("email", wanted, fields=["email"], batchSize=3)
    assert sorted(lead["email"] for lead in leads) == sorted(wanted)


def test_lead_by_id_has_its_id_whatever_fields_are_asked(sandbox: MarketoSandbox, client: MarketoClient) -> None:
    first = min(int(row.id) for row in sandbox.leads.live())
    assert client.get_lead_by_id(first, fields=["email"]) == [
        {"id": first, "email": sandbox.leads.get(str(first)).fields["email"]}  # type: ignore[union-attr]
    ]
    assert client.get_lead_by_id(99_999_999) == []


def test_leads_by_program_with_their_membership(sandbox: MarketoSandbox, client: MarketoClient) -> None:
    program = next(p for p in sandbox.programs if any(p in m for m in sandbox.memberships.values()))
    members = {lead for lead, programs in sandbox.memberships.items() if program in programs}
    leads = client.get_multiple_leads_by_program_id(program, fields=["email"], batchSize=1)
    assert sorted(str(lead["id"]) for lead in leads) == sorted(members)
    assert all(lead["membership"]["progressionStatus"] == "Registered" for lead in leads)


def test_sync_with_a_bad_record_then_delete(client: MarketoClient) -> None:
    leads = [
        {"email": "client.one@example.org", "firstName": "One"},
        {"email": "client.two@example.org", "acquisitionProgramId": "many"},
        {"email": "client.three@example.org", "lastName": "Three"},
    ]
    results = client.create_update_leads(leads, action="createOrUpdate", lookupField="email")
    assert [r["status"] for r in results] == ["created", "skipped", "created"]
    assert results[1]["reasons"][0]["code"] == "1003"
    deleted = client.delete_lead([results[0]["id"], results[2]["id"]])
    assert [r["status"] for r in deleted] == ["deleted", "deleted"]
    assert client.get_lead_by_id(results[0]["id"]) == []


def test_activities_of_listed_leads_after_a_paging_token(sandbox: MarketoSandbox, client: MarketoClient) -> None:
    ids = sorted(int(row.id) for row in sandbox.leads.live())[:2]
    found = client.get_lead_activities([str(NEW_LEAD)], sinceDatetime="2000-01-01", leadIds=ids, batchSize=1)
    assert sorted(a["leadId"] for a in found) == ids


def test_an_unknown_field_is_refused_with_its_code(client: MarketoClient) -> None:
    with pytest.raises(MarketoException) as refused:
        client.get_multiple_leads_by_filter_type("email", ["x@example.org"], fields=["noSuchField"])
    assert refused.value.code == "1006"


@pytest.mark.parametrize(
    ("method", "path", "code"),
    [("GET", "/rest/v1/nosuch.json", "610"), ("PUT", "/rest/v1/leads.json", "605")],
    ids=["unknown-path", "unknown-method"],
)
def test_unserved_paths_answer_as_marketo_does(client: MarketoClient, method: str, path: str, code: str) -> None:
    client.authenticate()
    answer = httpx.request(method, client.host + path, headers={"Authorization": f"Bearer {client.token}"})
    body: dict[str, Any] = answer.json()
    assert answer.status_code == 200
    assert (body["success"], body["errors"][0]["code"]) == (False, code)
