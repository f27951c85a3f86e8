"""The Salesforce sandbox's indexes and one-pass query evaluation answer what scans and key-by-key sorts do."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from closeloop_connectors.salesforce.sandbox import create_sandbox, soql
from closeloop_connectors.salesforce.sandbox.app import SalesforceSandbox
from closeloop_connectors.salesforce.sandbox.schema import SfField, json_value
from closeloop_connectors.salesforce.sandbox.soql import OrderKey

START = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def reference_sort(rows: list[dict[str, Any]], order: list[OrderKey]) -> list[dict[str, Any]]:
    """ORDER BY as one stable sort per key, last key first (the sandbox's original way)."""
    rows = list(rows)
    for key in reversed(order):

        def rank(row: dict[str, Any], key: OrderKey = key) -> Any:
            value = row.get(key.field)
            value = value.lower() if isinstance(value, str) else value
            if value is not None:
                return (1, value)
            return (2 if key.nulls_last != key.descending else 0, 0)

        rows.sort(key=rank, reverse=key.descending)
    return rows


@pytest.mark.parametrize("seed", range(20))
def test_sort_rows_orders_like_one_sort_per_key(seed: int) -> None:
    rng = random.Random(seed)
    rows = [
        {
            "n": i,
            "A": rng.choice([None, "x", "Y", "z", "X"]),
            "B": rng.choice([None, 1, 2, 3]),
            "C": rng.choice([None, START, START + timedelta(seconds=1)]),
        }
        for i in range(60)
    ]
    order = [
        OrderKey(name, rng.random() < 0.5, rng.random() < 0.5)
        for name in rng.sample(["A", "B", "C"], rng.randint(1, 3))
    ]
    expected = reference_sort(rows, order)
    assert soql.sort_rows(list(rows), order, lambda row, name: row.get(name)) == expected
    # Rows already in order (a change read off the index) stay as they are, ties included.
    assert soql.sort_rows(list(expected), order, lambda row, name: row.get(name)) == expected


@pytest.fixture
def org() -> SalesforceSandbox:
    return create_sandbox(seed=2, people=40)


def query(sandbox: SalesforceSandbox, text: str) -> list[str]:
    _, _, rows = sandbox.org.query(text, include_deleted=False)
    return [row.id for row in rows]


def test_in_lists_and_likes_compile_once_and_match_like_a_scan(org: SalesforceSandbox) -> None:
    contacts = list(org.table("Contact").live())
    emails = [row.fields["Email"] for row in contacts[::3]]
    quoted = ", ".join(f"'{e.upper()}'" for e in emails)
    wanted = sorted(row.id for row in contacts if row.fields["Email"] in emails)
    assert query(org, f"SELECT Id FROM Contact WHERE Email IN ({quoted}) ORDER BY Id") == wanted  # noqa: S608
    assert query(org, f"SELECT Id FROM Contact WHERE FirstName IN ({quoted}, null) ORDER BY Id") == []  # noqa: S608
    not_in = sorted(row.id for row in contacts if row.fields["Email"] not in emails)
    assert query(org, f"SELECT Id FROM Contact WHERE Email NOT IN ({quoted}) ORDER BY Id") == not_in  # noqa: S608
    first = contacts[0].fields["FirstName"]
    like = sorted(row.id for row in contacts if row.fields["FirstName"].lower().startswith(first[:2].lower()))
    assert query(org, f"SELECT Id FROM Contact WHERE FirstName LIKE '{first[:2]}%' ORDER BY Id") == like  # noqa: S608
    either = sorted(row.id for row in contacts if row.fields["Email"] in emails[:2] or row.fields["FirstName"] == first)
    text = (
        f"SELECT Id FROM Contact WHERE (Email IN ('{emails[0]}', '{emails[1]}') OR FirstName = '{first}') ORDER BY Id"  # noqa: S608
    )
    assert query(org, text) == either


def test_upserts_by_a_unique_field_find_the_one_record_through_its_index(org: SalesforceSandbox) -> None:
    table = org.org.table("Contact")
    contact = org.org.objects["Contact"]
    org.org.add_field(contact, SfField("Closeloop_Id__c", "string", external_id=True, unique=True, length=64))
    row, created = org.org.upsert(contact, "Closeloop_Id__c", "cl-1", {"LastName": "One"})
    again, created_again = org.org.upsert(contact, "Closeloop_Id__c", "CL-1", {"LastName": "Again"})
    assert created
    assert not created_again
    assert again.id == row.id
    assert [r.id for r in table.find_all("Closeloop_Id__c", "cl-1")] == [row.id]
    org.org.delete(contact, row.id)
    assert table.find_all("Closeloop_Id__c", "cl-1") == []


def test_an_email_shared_by_several_records_finds_them_all(org: SalesforceSandbox) -> None:
    table = org.org.table("Contact")
    contact = org.org.objects["Contact"]
    first = org.org.create(contact, {"LastName": "A", "Email": "same@example.com"})
    second = org.org.create(contact, {"LastName": "B", "Email": "Same@Example.com"})
    assert [r.id for r in table.find_all("Email", "SAME@example.com")] == sorted([first.id, second.id])
    org.org.update(contact, first, {"Email": "other@example.com"})
    assert [r.id for r in table.find_all("Email", "same@example.com")] == [second.id]
    assert [r.id for r in table.find_all("Email", "other@example.com")] == [first.id]


def test_a_query_on_a_reference_field_reads_its_index_and_answers_like_a_scan() -> None:
    sandbox = create_sandbox(seed=4, people=30, deals=25)
    org = sandbox.org
    roles, table = org.objects["OpportunityContactRole"], org.table("OpportunityContactRole")
    opportunities = [row.id for row in org.table("Opportunity").live()]
    every = list(table.rows.values())
    org.delete(roles, every[0].id)
    moved = every[1]
    table.update(moved.id, {"OpportunityId": opportunities[-1]})  # not updateable through the API
    asked = [every[0].fields["OpportunityId"], every[1].fields["OpportunityId"], *opportunities[:5]]
    quoted = ", ".join(f"'{i.lower()}'" for i in [*asked, moved.fields["OpportunityId"]])
    text = f"SELECT Id, OpportunityId FROM OpportunityContactRole WHERE OpportunityId IN ({quoted})"  # noqa: S608
    wanted = {i.lower() for i in [*asked, moved.fields["OpportunityId"]]}
    for deleted in (False, True):
        _, _, rows = org.query(text, include_deleted=deleted)
        scan = [r.id for r in every if r.fields["OpportunityId"].lower() in wanted and (deleted or not r.deleted)]
        assert [r.id for r in rows] == scan
    assert moved.id in [r.id for r in table.referring("OpportunityId", [opportunities[-1]])]


def test_render_writes_each_field_as_its_typed_value_in_json() -> None:
    sandbox = create_sandbox(seed=6, people=10, deals=6, leads=4)
    org = sandbox.org
    org.convert_lead(next(org.table("Lead").live()).id)
    for name, sobject in org.objects.items():
        names = list(sobject.fields)
        for row in org.table(name).rows.values():
            rendered = sobject.render(row, names, "v60.0")
            assert {n: rendered[n] for n in names} == {n: json_value(sobject.value(row, n)) for n in names}
