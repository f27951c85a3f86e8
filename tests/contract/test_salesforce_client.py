"""Salesforce's Python client (simple-salesforce) against the Salesforce sandbox over TLS.

simple-salesforce builds its login host from a ``domain`` under salesforce.com, so the token comes from the
client's own ``token_login`` with the sandbox's token URL and the same client-credentials form and Basic header
the client sends; everything after that is the client unchanged, trusting the sandbox's certificate.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from closeloop_connectors.salesforce.sandbox import SalesforceSandbox, create_sandbox
from closeloop_connectors.salesforce.sandbox.app import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import SalesforceError, SalesforceMalformedRequest, SalesforceResourceNotFound
from simple_salesforce.login import token_login

from closeloop.sandbox.serve import self_signed_cert
from tests.contract.kit import served_in_thread

PEOPLE = 2_050  # more than one query batch of 2,000


@pytest.fixture(scope="module")
def sandbox() -> SalesforceSandbox:
    """More contacts than one query batch holds."""
    return create_sandbox(seed=51, people=PEOPLE, deals=3)


@pytest.fixture(scope="module")
def cert(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1."""
    return self_signed_cert(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="module")
def base_url(sandbox: SalesforceSandbox, cert: tuple[Path, Path]) -> Iterator[str]:
    """The sandbox served once for the module, over TLS."""
    with served_in_thread("salesforce", sandbox, tls=cert) as url:
        yield url


@pytest.fixture(scope="module")
def statuses() -> list[int]:
    """Every HTTP status the client saw, redirects included."""
    return []


@pytest.fixture
def sf(base_url: str, cert: tuple[Path, Path], statuses: list[int]) -> Iterator[Salesforce]:
    """A client logged in with the client-credentials flow, trusting the sandbox's certificate."""
    session = requests.Session()
    session.verify = str(cert[0])
    session.trust_env = False  # else requests prefers REQUESTS_CA_BUNDLE from the environment to session.verify
    session.hooks["response"].append(lambda response, *args, **kwargs: statuses.append(response.status_code))
    basic = base64.b64encode(f"{DEFAULT_CLIENT_ID}:{DEFAULT_CLIENT_SECRET}".encode()).decode()
    session_id, instance = token_login(
        f"{base_url}/services/oauth2/token", {"grant_type": "client_credentials"}, "login",
        DEFAULT_CLIENT_ID, {"Authorization": f"Basic {basic}"}, None, session,
    )  # fmt: skip
    with session:  # closed afterwards: an open keep-alive connection would hold the server's shutdown
        yield Salesforce(instance_url=f"https://{instance}", session_id=session_id, session=session, version="60.0")


def test_query_and_limits_answer_without_a_redirect(sf: Salesforce, statuses: list[int]) -> None:
    statuses.clear()
    rows = sf.query("SELECT Id, Email FROM Contact ORDER BY Id LIMIT 3")
    limits = sf.limits()
    assert rows["totalSize"] == 3
    assert limits["DailyApiRequests"]["Max"] > 0
    assert statuses == [200, 200]


def test_query_all_follows_next_records_url_to_the_end(sf: Salesforce) -> None:
    rows = sf.query_all("SELECT Id FROM Contact")
    assert rows["totalSize"] == len(rows["records"]) == PEOPLE
    assert rows["done"]


def test_crud(sf: Salesforce) -> None:
    made = sf.Contact.create({"LastName": "Client", "Email": "client@example.org"})
    sf.Contact.update(made["id"], {"Title": "Buyer"})
    assert sf.Contact.get(made["id"])["Title"] == "Buyer"
    assert sf.Contact.delete(made["id"]) == 204
    assert isinstance(refusal(lambda: sf.Contact.get(made["id"])), SalesforceResourceNotFound)


def test_a_custom_external_id_field_then_upsert_by_it(sf: Salesforce) -> None:
    field = {"FullName": "Contact.Client_Key__c", "Metadata": {"type": "Text", "length": 64, "externalId": True}}
    assert sf.toolingexecute("sobjects/CustomField", method="POST", data=field)["success"]
    fields = {f["name"]: f for f in sf.Contact.describe()["fields"]}
    assert fields["Client_Key__c"]["externalId"]
    assert sf.Contact.upsert("Client_Key__c/ck-77", {"LastName": "Upserted"}) == 201
    assert sf.Contact.upsert("Client_Key__c/ck-77", {"LastName": "Again"}) == 200  # updated (API 46+)
    assert sf.query("SELECT LastName FROM Contact WHERE Client_Key__c = 'ck-77'")["records"][0]["LastName"] == "Again"


def test_composite_collection_with_a_bad_record(sf: Salesforce) -> None:
    records: list[dict[str, Any]] = [
        {"attributes": {"type": "Contact"}, "LastName": "Good", "Email": "good@example.org"},
        {"attributes": {"type": "Contact"}, "Email": "no-last-name@example.org"},
    ]
    answer = sf.restful("composite/sobjects", method="POST", json={"allOrNone": False, "records": records})
    assert [entry["success"] for entry in answer] == [True, False]
    assert answer[1]["errors"][0]["statusCode"] == "REQUIRED_FIELD_MISSING"


def refusal(call: Callable[[], Any]) -> SalesforceError:
    """The client's error for a refused call, without its traceback: the frames hold the response, whose open
    TLS connection would keep the served sandbox waiting for a close at shutdown."""
    try:
        call()
    except SalesforceError as exc:
        return exc.with_traceback(None)
    raise AssertionError("the call was not refused")


def test_a_malformed_query_and_an_unknown_resource(sf: Salesforce) -> None:
    malformed = refusal(lambda: sf.query("SELECT Nope FROM Contact"))
    unknown = refusal(lambda: sf.restful("no/such/resource"))
    assert isinstance(malformed, SalesforceMalformedRequest)
    assert malformed.content[0]["errorCode"] == "INVALID_FIELD"
    assert isinstance(unknown, SalesforceResourceNotFound)
    assert unknown.content == [
        {"message": "The requested resource does not exist", "errorCode": "NOT_FOUND", "fields": []}
    ]
