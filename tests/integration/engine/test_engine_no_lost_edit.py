"""Never lose an edit (issue 24), Salesforce <-> HubSpot through the sandboxes' REST APIs, in-process.

1. "The later change wins" is decided per field: Salesforce sets FirstName=A, a second later HubSpot sets
   firstname=B, a second later Salesforce changes Title. B is the later change of that field, so both sides end
   with B, whatever the records' modified times say (HubSpot's property history, Salesforce's field history).
2. An edit made while a cycle runs is not overwritten: after the cycle has read HubSpot (Salesforce's latency
   knob holds the window open), a user sets firstname=B there. The drain re-reads the records it is about to
   write, merges B, and both sides end with B.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from closeloop.config.loader import load_config
from closeloop.connector import registry
from closeloop.engine.runtime import Engine
from closeloop.sandbox.kit import SandboxBase
from closeloop.store import Store
from closeloop.store.rows import QuarantineStatus

CONTACTS = """
entity: contact
systems:
  crm: {objects: [Contact], upsert: {key: Email, value: email}}
  marketing: {objects: [contacts], upsert: {key: email, value: email}}
match: [email]
fields:
  email: {type: email, crm: Email, marketing: email}
  first_name: {type: string, crm: FirstName, marketing: firstname}
  last_name: {type: string, crm: LastName, marketing: lastname}
create:
  crm -> marketing: all
  marketing -> crm: all
on_delete: unlink
"""

CONFIG = """
systems:
  crm:
    connector: salesforce
    settings: {auth_flow: client_credentials, client_id: closeloop-sandbox, client_secret: closeloop-sandbox-secret,
               base_url: 'http://crm.test', auth_url: 'http://crm.test'}
  marketing:
    connector: hubspot
    settings: {access_token: pat-na1-sandbox-3, base_url: 'http://marketing.test', requests_per_window: 2000,
               search_requests_per_window: 200}
connections:
  - name: pair
    systems: [crm, marketing]
    mappings: [contacts.yaml]
    lookback: 1m
    marketing_system: marketing
loop: {base_currency: USD}
"""

HS_TOKEN = "pat-na1-sandbox-3"


class Watched(httpx.AsyncBaseTransport):
    """An ASGI transport that sets ``searched`` once a read of the changes (``path_end``) has been answered."""

    def __init__(self, app: SandboxBase, path_end: str) -> None:
        self.inner = httpx.ASGITransport(app=app)
        self.path_end = path_end
        self.searched = asyncio.Event()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        if request.url.path.endswith(self.path_end):
            await response.aread()
            self.searched.set()
        return response


@dataclass
class Pair:
    """Salesforce and HubSpot sandboxes and an engine syncing them."""

    sf: SandboxBase
    hs: SandboxBase
    engine: Engine
    watched: Watched
    watched_sf: Watched

    async def sync(self) -> dict[str, int]:
        outcome = await self.engine.sync("pair")
        assert outcome.status.value == "ok", outcome
        return dict(outcome.counts)

    async def sf_call(self, method: str, path: str, fields: dict[str, Any]) -> httpx.Response:
        """A user's call to Salesforce's REST API (an edit or a create)."""
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=self.sf), base_url="http://crm.test") as c:
            token = await c.post(
                "/services/oauth2/token",
                data={
                    "grant_type": "client_credentials",
                    "client_id": "closeloop-sandbox",
                    "client_secret": "closeloop-sandbox-secret",
                },
            )
            headers = {"Authorization": f"Bearer {token.json()['access_token']}"}
            return await c.request(method, f"/services/data/v62.0/sobjects/{path}", json=fields, headers=headers)

    async def sf_edit(self, contact_id: str, fields: dict[str, Any]) -> None:
        """A user's edit in Salesforce, through its REST API."""
        answer = await self.sf_call("PATCH", f"Contact/{contact_id}", fields)
        assert answer.status_code == 204, answer.text

    async def hs_edit(self, contact_id: str, properties: dict[str, Any]) -> None:
        """A user's edit in HubSpot, through its REST API."""
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=self.hs),
            base_url="http://marketing.test",
            headers={"Authorization": f"Bearer {HS_TOKEN}"},
        ) as client:
            answer = await client.patch(f"/crm/v3/objects/contacts/{contact_id}", json={"properties": properties})
            assert answer.status_code == 200, answer.text

    def linked_pair(self) -> tuple[str, str]:
        """A Salesforce contact id and the HubSpot contact id of the same person."""
        for row in self.hs.table("contacts").live():
            email = str(row.fields.get("email") or "").lower()
            crm = [r for r in self.sf.table("Contact").live() if str(r.fields.get("Email") or "").lower() == email]
            if email and len(crm) == 1:
                return crm[0].id, row.id
        raise AssertionError("no linked contact")

    def first_names(self, sf_id: str, hs_id: str) -> tuple[Any, Any]:
        sf_row, hs_row = self.sf.table("Contact").get(sf_id), self.hs.table("contacts").get(hs_id)
        assert sf_row is not None
        assert hs_row is not None
        return sf_row.fields.get("FirstName"), hs_row.fields.get("firstname")


@pytest.fixture
async def pair(tmp_path: Path) -> AsyncIterator[Pair]:
    installed = registry()
    sf = installed.get("salesforce").sandbox(seed=3, people=4, deals=0, offset=0)  # type: ignore[misc]
    hs = installed.get("hubspot").sandbox(seed=3, people=4, deals=0, offset=2)  # type: ignore[misc]
    for box in (sf, hs):
        box.knobs.enforce_limits = False
    (tmp_path / "contacts.yaml").write_text(CONTACTS)
    (tmp_path / "closeloop.yaml").write_text(CONFIG)
    config = load_config(tmp_path / "closeloop.yaml", environ={})
    store = Store.open(tmp_path / "state.db")
    watched, watched_sf = Watched(hs, "/contacts/search"), Watched(sf, "/queryAll")
    engine = Engine(config, store, transports={"crm": watched_sf, "marketing": watched})
    made = Pair(sf, hs, engine, watched, watched_sf)
    for _ in range(2):
        await made.sync()
    yield made
    await engine.aclose()
    store.close()


def freeze(moment: datetime, *boxes: SandboxBase) -> None:
    """Stamp every write of these sandboxes with ``moment`` (one edit a second, as in the issue)."""
    for box in boxes:
        box.clock.frozen = moment


async def test_the_later_change_of_a_field_wins_though_the_other_record_changed_later(pair: Pair) -> None:
    sf_id, hs_id = pair.linked_pair()
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(minutes=1)
    freeze(start, pair.sf)
    await pair.sf_edit(sf_id, {"FirstName": "Ada"})
    freeze(start + timedelta(seconds=1), pair.hs)
    await pair.hs_edit(hs_id, {"firstname": "Bea"})
    freeze(start + timedelta(seconds=2), pair.sf)
    await pair.sf_edit(sf_id, {"Title": "Director"})  # an unmapped field: the Salesforce record is the later one
    freeze(start + timedelta(seconds=10), pair.sf, pair.hs)
    counts = await pair.sync()
    freeze(start + timedelta(seconds=20), pair.sf, pair.hs)
    await pair.sync()
    assert pair.first_names(sf_id, hs_id) == ("Bea", "Bea"), counts
    assert counts.get("field_histories:crm", 0) + counts.get("field_histories:marketing", 0) >= 1


async def test_an_edit_made_while_a_cycle_runs_is_not_overwritten(pair: Pair) -> None:
    sf_id, hs_id = pair.linked_pair()
    await pair.sf_edit(sf_id, {"FirstName": "Ada"})
    pair.watched.searched.clear()
    pair.sf.knobs.latency_s = 0.5  # Salesforce answers slowly: the cycle's window stays open
    cycle = asyncio.ensure_future(pair.sync())
    await pair.watched.searched.wait()  # the cycle has read HubSpot's changes
    await pair.hs_edit(hs_id, {"firstname": "Bea"})
    counts = await cycle
    pair.sf.knobs.latency_s = 0.0
    assert pair.first_names(sf_id, hs_id)[1] == "Bea", counts  # not overwritten with Ada
    assert counts.get("moved_before_write:marketing") == 1, counts
    await pair.sync()
    assert pair.first_names(sf_id, hs_id) == ("Bea", "Bea")
    writes = pair.sf.stats.records_written + pair.hs.stats.records_written
    await pair.sync()
    assert pair.sf.stats.records_written + pair.hs.stats.records_written == writes  # converged: no ping-pong


async def test_a_duplicate_parked_while_unlinked_counts_one_attempt_per_version(pair: Pair) -> None:
    sf_id, _ = pair.linked_pair()
    original = pair.sf.table("Contact").get(sf_id)
    assert original is not None
    created = await pair.sf_call("POST", "Contact", {"LastName": "Twin", "Email": original.fields["Email"]})
    assert created.status_code == 201, created.text
    twin = created.json()["id"]
    for _ in range(3):  # the lookback re-reads the same version of the twin every cycle
        await pair.engine.sync("pair")
    (parked,) = pair.engine.store.list_quarantine(QuarantineStatus.OPEN)
    assert (parked.native_id, parked.code, parked.attempts) == (twin, "DUPLICATE", 1)
    await pair.sf_edit(twin, {"Title": "Edited"})
    await pair.engine.sync("pair")
    (parked,) = pair.engine.store.list_quarantine(QuarantineStatus.OPEN)
    assert parked.attempts == 2  # a new version is a new attempt


async def test_field_histories_are_asked_only_for_a_conflict(pair: Pair) -> None:
    sf_id, hs_id = pair.linked_pair()
    await pair.sf_edit(sf_id, {"FirstName": "Ada", "Title": "Director"})
    counts = await pair.sync()  # a change on one side only: no conflict, no history asked
    assert pair.first_names(sf_id, hs_id) == ("Ada", "Ada")
    assert not [name for name in counts if name.startswith("field_histories")], counts
    await pair.sf_edit(sf_id, {"FirstName": "Ida"})
    await pair.hs_edit(hs_id, {"firstname": "Eda"})
    counts = await pair.sync()  # both changed the field: each side's history of that record, one call each
    assert (counts.get("field_histories:crm"), counts.get("field_histories:marketing")) == (1, 1), counts


async def test_an_edit_made_in_salesforce_while_a_cycle_runs_is_refused_by_a_conditional_update(pair: Pair) -> None:
    sf_id, hs_id = pair.linked_pair()
    await pair.sync()  # the partner ids' echo is read: every link knows its record's latest version
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(minutes=1)
    freeze(start, pair.hs)
    await pair.hs_edit(hs_id, {"firstname": "Ada"})
    pair.watched_sf.searched.clear()
    pair.hs.knobs.latency_s = 0.5  # HubSpot answers slowly: the cycle's window stays open
    cycle = asyncio.ensure_future(pair.sync())
    await pair.watched_sf.searched.wait()  # the cycle has read Salesforce's changes
    freeze(start + timedelta(seconds=10), pair.sf)
    await pair.sf_edit(sf_id, {"FirstName": "Bea"})
    counts = await cycle
    pair.hs.knobs.latency_s = 0.0
    assert pair.first_names(sf_id, hs_id)[0] == "Bea", counts  # Salesforce refused to overwrite it with Ada
    assert counts.get("moved_before_write:crm") == 1, counts
    assert counts.get("rechecked:crm") == 1, counts  # one re-read, of the refused record only
    freeze(start + timedelta(seconds=20), pair.sf, pair.hs)
    await pair.sync()
    assert pair.first_names(sf_id, hs_id) == ("Bea", "Bea")


async def test_an_update_of_an_unchanged_salesforce_record_costs_no_re_read(pair: Pair) -> None:
    sf_id, hs_id = pair.linked_pair()
    await pair.sync()  # the partner ids' echo is read: every link knows its record's latest version
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(minutes=1)
    freeze(start, pair.hs)
    await pair.hs_edit(hs_id, {"firstname": "Ada"})
    pair.sf.stats.reset()
    counts = await pair.sync()
    assert pair.first_names(sf_id, hs_id) == ("Ada", "Ada"), counts
    assert "rechecked:crm" not in counts, counts
    composite = {k: n for k, n in pair.sf.stats.calls.items() if k.endswith("/composite")}
    assert sum(composite.values()) == 1, pair.sf.stats.calls
