"""The HubSpot connector against its sandbox, beyond the conformance kit; and the sandbox served over HTTP."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from closeloop_connectors.hubspot import HubSpotConnector, HubSpotSettings, create
from closeloop_connectors.hubspot.sandbox import create_sandbox

from closeloop.connector import ConnectorContext
from closeloop.model import FieldType, NativeRecord, OwnedField, WriteOp, WriteRequest, WriteStatus, parse_utc
from closeloop.sandbox.serve import serving


async def read_all(connector: HubSpotConnector, obj: str, since: Any = None) -> list[NativeRecord]:
    return [r async for page in connector.read_changes(obj, since) for r in page.records]


async def test_served_over_http_to_plain_httpx_and_the_connector() -> None:
    sandbox = create_sandbox(seed=21, people=8, deals=3)
    async with serving([("hubspot", sandbox)]) as served:
        base = served[0].base_url
        headers = {"Authorization": f"Bearer {sandbox.private_app_token}"}
        async with httpx.AsyncClient(base_url=base, headers=headers) as http:
            listing = await http.get("/crm/v3/objects/contacts", params={"limit": 3})
            found = await http.post(
                "/crm/v3/objects/deals/search",
                json={"filterGroups": [], "sorts": ["hs_object_id"], "properties": ["dealname"], "limit": 2},
            )
            stats = (await http.get("/__sandbox/stats")).json()
        connector = create(
            ConnectorContext("hubspot-http", HubSpotSettings(base_url=base, access_token=sandbox.private_app_token))
        )
        try:
            records = await read_all(connector, "contacts")
        finally:
            await connector.aclose()
    assert listing.status_code == 200
    assert len(listing.json()["results"]) == 3
    assert listing.json()["paging"]["next"]["link"].startswith(base)
    assert found.json()["total"] == 3
    assert stats["vendor"] == "hubspot"
    assert stats["calls"]["GET /crm/v3/objects/{object_type}"] == 1
    assert len(records) == 8


async def test_hubspot_client_library_works_with_only_the_base_url_changed() -> None:
    sdk = pytest.importorskip("hubspot", reason="HubSpot's client library (hubspot-api-client) is not installed")
    from hubspot.crm.associations.v4 import BatchInputPublicFetchAssociationsBatchRequest
    from hubspot.crm.contacts import (
        BatchInputSimplePublicObjectBatchInputUpsert,
        Filter,
        FilterGroup,
        PublicObjectSearchRequest,
    )

    sandbox = create_sandbox(seed=22, people=6, deals=4)

    def use_library(base: str) -> dict[str, Any]:
        token = sdk.HubSpot(host=base).oauth.tokens_api.create(
            grant_type="refresh_token", client_id=sandbox.client_id,
            client_secret=sandbox.client_secret, refresh_token=sandbox.refresh_token,
        )  # fmt: skip
        client = sdk.HubSpot(access_token=token.access_token, host=base)
        page = client.crm.contacts.basic_api.get_page(limit=4, properties=["email", "hs_analytics_source"])
        newest = PublicObjectSearchRequest(
            filter_groups=[FilterGroup(filters=[Filter(property_name="lastmodifieddate", operator="GT", value="0")])],
            sorts=["-lastmodifieddate"], properties=["email"], limit=2,
        )  # fmt: skip
        found = client.crm.contacts.search_api.do_search(public_object_search_request=newest)
        inputs = [{"id": "SDK@Example.org", "idProperty": "email", "properties": {"firstname": "Sdk"}}]
        upserted = client.crm.contacts.batch_api.upsert(
            batch_input_simple_public_object_batch_input_upsert=BatchInputSimplePublicObjectBatchInputUpsert(
                inputs=inputs
            )
        )
        pipelines = client.crm.pipelines.pipelines_api.get_all(object_type="deals")
        properties = client.crm.properties.core_api.get_all(object_type="contacts")
        links = client.crm.associations.v4.batch_api.get_page(
            from_object_type="deals", to_object_type="contacts",
            batch_input_public_fetch_associations_batch_request=BatchInputPublicFetchAssociationsBatchRequest(
                inputs=[{"id": "2000000001"}]
            ),
        )  # fmt: skip
        return {"page": page, "found": found, "upserted": upserted, "pipelines": pipelines,
                "properties": properties, "links": links}  # fmt: skip

    async with serving([("hubspot", sandbox)]) as served:
        got = await asyncio.to_thread(use_library, served[0].base_url)
    assert len(got["page"].results) == 4
    assert got["page"].paging.next.after
    assert got["found"].total == 6
    assert got["found"].results[0].updated_at >= got["found"].results[1].updated_at
    assert got["upserted"].results[0].properties["email"] == "sdk@example.org"
    assert got["upserted"].results[0].new
    stages = got["pipelines"].results[0].stages
    assert [s.id for s in stages if s.metadata["probability"] == "1.0"] == ["closedwon"]
    read_only = {p.name for p in got["properties"].results if p.modification_metadata.read_only_value}
    assert "hs_analytics_source" in read_only
    assert got["links"].results[0].to[0].association_types[0].type_id == 3


async def test_deal_upsert_by_closeloop_id_creates_once(hubspot: SimpleNamespace) -> None:
    sandbox = create_sandbox(seed=23)
    connector = hubspot.connect(sandbox)
    deal = {"closeloop_id": "cl-1", "dealname": "Acme", "amount": 5000, "dealstage": "qualifiedtobuy",
            "pipeline": "default", "deal_currency_code": "EUR"}  # fmt: skip
    request = WriteRequest("d", WriteOp.UPSERT, deal, upsert_key="closeloop_id")
    try:
        await connector.create_fields(
            "deals", [OwnedField("closeloop_id", FieldType.STRING, "closeloop id", unique=True)]
        )
        first = await connector.write("deals", [request])
        moved = WriteRequest("d", WriteOp.UPSERT, {**deal, "dealstage": "closedwon"}, upsert_key="closeloop_id")
        second = await connector.write("deals", [moved])
        records = await connector.read("deals", [str(first[0].native_id)])
    finally:
        await connector.aclose()
    assert (first[0].status, second[0].status) == (WriteStatus.CREATED, WriteStatus.UPDATED)
    assert first[0].native_id == second[0].native_id
    assert len(sandbox.table("deals")) == 1
    assert records[0].fields["dealstage"] == "closedwon"
    assert records[0].fields["hs_is_closed_won"] == "true"
    assert records[0].fields["amount"] == "5000"


async def test_merge_through_the_api_surfaces_the_loser_merged_into_the_winner(hubspot: SimpleNamespace) -> None:
    sandbox = create_sandbox(seed=24, people=6)
    connector = hubspot.connect(sandbox, archived_check_seconds=0)  # the merge is read in the very next stream
    try:
        start = await read_all(connector, "contacts")
        loser, winner = start[0].id, start[4].id
        async with hubspot.client(sandbox) as http:
            merged = await http.post(
                "/crm/v3/objects/contacts/merge", json={"primaryObjectId": winner, "objectIdToMerge": loser}
            )
        later = {r.id: r for r in await read_all(connector, "contacts", start[-1].position)}
        full = {r.id: r for r in await read_all(connector, "contacts")}
    finally:
        await connector.aclose()
    assert merged.status_code == 200
    assert sandbox.table("contacts").get(winner).fields["hs_merged_object_ids"] == loser
    assert (later[loser].deleted, later[loser].merged_into) == (True, winner)
    assert not later[winner].deleted
    assert later[winner].fields["hs_merged_object_ids"] == loser
    assert full[loser].merged_into == winner


async def test_archive_surfaces_as_a_deletion_stamped_archived_at(hubspot: SimpleNamespace) -> None:
    sandbox = create_sandbox(seed=25, people=5)
    connector = hubspot.connect(sandbox, archived_check_seconds=0)  # the deletion is read in the very next stream
    try:
        start = await read_all(connector, "contacts")
        victim = start[2].id
        deleted = await connector.write("contacts", [WriteRequest("x", WriteOp.DELETE, native_id=victim)])
        later = await read_all(connector, "contacts", start[-1].position)
        async with hubspot.client(sandbox) as http:
            archived = (await http.get(f"/crm/v3/objects/contacts/{victim}", params={"archived": "true"})).json()
    finally:
        await connector.aclose()
    assert deleted[0].status is WriteStatus.DELETED
    assert [(r.id, r.deleted) for r in later] == [(victim, True)]
    assert later[0].modified_at == parse_utc(archived["archivedAt"])


async def test_seeded_portal_speaks_hubspot(hubspot: SimpleNamespace) -> None:
    sandbox = create_sandbox(seed=26, people=30, deals=12)
    connector = hubspot.connect(sandbox)
    try:
        contacts = await read_all(connector, "contacts")
        deals = await read_all(connector, "deals")
        links = await connector.associations("deals", [d.id for d in deals])
        touches = await connector.touchpoints("contacts", [c.id for c in contacts], None)
    finally:
        await connector.aclose()
    sources = {c.fields["hs_analytics_source"] for c in contacts}
    assert sources <= {"ORGANIC_SEARCH", "PAID_SEARCH", "PAID_SOCIAL", "EMAIL_MARKETING", "REFERRALS",
                       "DIRECT_TRAFFIC", "OFFLINE"}  # fmt: skip
    assert len(sources) >= 4
    assert {c.fields["lifecyclestage"] for c in contacts} <= {
        "subscriber", "lead", "marketingqualifiedlead", "salesqualifiedlead", "opportunity", "customer",
    }  # fmt: skip
    assert all(c.fields["email"] == c.fields["email"].lower() for c in contacts)
    assert {d.fields["pipeline"] for d in deals} == {"default"}
    assert all(d.fields["deal_currency_code"] for d in deals)
    assert {link.from_id for link in links} == {d.id for d in deals}
    kinds = {t.kind for t in touches}
    assert {"original_source", "form_fill"} <= kinds
    original = [t for t in touches if t.kind == "original_source"]
    assert len(original) == 30
    assert {t.channel for t in original} <= {"organic_search", "paid_search", "paid_social", "email", "referral",
                                             "direct", "events"}  # fmt: skip
    assert any(t.utm.get("utm_campaign") for t in touches if t.kind == "form_fill")


async def test_knobs_and_stats_over_http(hubspot: SimpleNamespace) -> None:
    sandbox = create_sandbox(seed=27, people=2)
    async with hubspot.client(sandbox) as http:
        await http.patch("/__sandbox/knobs", json={"fault_500": 1.0})
        failed = await http.get("/crm/v3/objects/contacts")
        await http.patch("/__sandbox/knobs", json={"fault_500": 0.0, "fault_502": 1.0})
        edge = await http.get("/crm/v3/objects/contacts")
        await http.patch("/__sandbox/knobs", json={"fault_502": 0.0})
        stats = (await http.get("/__sandbox/stats")).json()
    assert failed.status_code == 500
    assert failed.json()["category"] == "INTERNAL_ERROR"
    assert edge.status_code == 502
    assert edge.headers["content-type"].startswith("text/html")
    assert stats["faults"] == {"500": 1, "502": 1}
    assert sandbox.stats.faults["500"] == 1


async def test_5xx_storm_loses_nothing(hubspot: SimpleNamespace) -> None:
    sandbox = create_sandbox(seed=28, people=40)
    sandbox.knobs.fault_500, sandbox.knobs.fault_502 = 0.2, 0.1
    connector = hubspot.connect(sandbox, **{**hubspot.fast_search(sandbox), "page_size": 10})
    try:
        records = await read_all(connector, "contacts")
        written = await connector.write("contacts", [
            WriteRequest(f"r{i}", WriteOp.UPSERT, {"email": f"storm.{i}@example.org"}, upsert_key="email")
            for i in range(30)
        ])  # fmt: skip
    finally:
        await connector.aclose()
    assert len(records) == 40
    assert all(r.ok for r in written)
    assert sandbox.stats.faults["500"] + sandbox.stats.faults["502"] > 0


async def test_same_timestamp_knob_stamps_every_write(hubspot: SimpleNamespace) -> None:
    sandbox = create_sandbox(seed=29, people=3)
    sandbox.knobs.same_timestamp = "2026-06-30T23:59:59.999Z"
    connector = hubspot.connect(sandbox)
    rows = list(sandbox.table("contacts").live())
    try:
        results = await connector.write(
            "contacts",
            [WriteRequest(f"u{i}", WriteOp.UPDATE, {"firstname": "X"}, native_id=r.id) for i, r in enumerate(rows)],
        )
    finally:
        await connector.aclose()
    stamp = datetime(2026, 6, 30, 23, 59, 59, 999000, tzinfo=UTC)
    assert {r.modified_at for r in results} == {stamp}
    assert {row.modified_at for row in rows} == {stamp}
