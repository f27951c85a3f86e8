"""The engine's cursor end to end: a run of records sharing one modified time across page boundaries.

Twenty-five HubSpot contacts are created through the sandbox's REST API while its control API stamps every write
with one time (a mass update), and HubSpot is read ten a page. The engine stores (modified_at, id) after each
page, so a sync stopped inside that run resumes right after the last record applied: no record of the run is
read twice and none is skipped. The connection looks back zero seconds, so that what the id does is what is seen.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from closeloop.config.loader import load_config
from closeloop.connector import Connector, registry
from closeloop.engine.runtime import Engine
from closeloop.model import Cursor, Page, WriteOp, WriteRequest, iso_utc
from closeloop.sandbox.kit import SandboxBase
from closeloop.store import Store

STAMP = datetime(2026, 3, 31, 23, 59, 59, 123000, tzinfo=UTC)
PEOPLE, PAGE = 25, 10

CONTACTS = """
entity: contact
systems:
  crm: {objects: [Contact], upsert: {key: Email, value: email}}
  marketing: {objects: [contacts], upsert: {key: email, value: email}}
match: [email]
fields:
  email: {type: email, crm: Email, marketing: email}
  last_name: {type: string, crm: LastName, marketing: lastname}
create:
  crm -> marketing: all
  marketing -> crm: all
on_delete: unlink
"""


@dataclass
class World:
    """Salesforce and HubSpot sandboxes, an engine syncing them, and the HubSpot records the engine was handed."""

    crm: SandboxBase
    hubspot: SandboxBase
    engine: Engine
    store: Store
    handed: Counter[str]

    def searches(self) -> int:
        return sum(n for call, n in self.hubspot.stats.calls.items() if call.endswith("/search"))


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    installed = registry()
    crm = installed.get("salesforce").sandbox(seed=3, people=0, deals=0, offset=0)  # type: ignore[misc]
    hubspot = installed.get("hubspot").sandbox(seed=3, people=0, deals=0, offset=0)  # type: ignore[misc]
    crm.base_url, hubspot.base_url = "http://crm.test", "http://marketing.test"
    (tmp_path / "contacts.yaml").write_text(CONTACTS)
    (tmp_path / "closeloop.yaml").write_text(f"""
systems:
  crm: {{connector: salesforce, settings: {{auth_flow: client_credentials, client_id: closeloop-sandbox,
    client_secret: closeloop-sandbox-secret, base_url: 'http://crm.test', auth_url: 'http://crm.test'}}}}
  marketing: {{connector: hubspot, settings: {{access_token: pat-na1-sandbox-3, base_url: 'http://marketing.test',
    page_size: {PAGE}}}}}
connections:
  - name: pair
    systems: [crm, marketing]
    mappings: [contacts.yaml]
    lookback: 0s
""")
    config = load_config(tmp_path / "closeloop.yaml", environ={})
    store = Store.open(tmp_path / "state.db")
    engine = Engine(
        config, store, transports={"crm": httpx.ASGITransport(app=crm), "marketing": httpx.ASGITransport(app=hubspot)}
    )
    handed: Counter[str] = Counter()
    yield World(crm, hubspot, engine, store, handed)
    await engine.aclose()
    store.close()


async def create_run_at_one_moment(world: World) -> list[str]:
    """Twenty-five contacts created through HubSpot's API, every one stamped STAMP by the sandbox's control API."""
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=world.hubspot), base_url="http://marketing.test"
    ) as c:
        answer = await c.patch("/__sandbox/knobs", json={"same_timestamp": iso_utc(STAMP)})
        assert answer.status_code == 200, answer.text
    writes = [
        WriteRequest(f"r{i}", WriteOp.CREATE, {"email": f"run{i}@example.org", "lastname": f"Run {i}"})
        for i in range(PEOPLE)
    ]
    results = await world.engine.connector("marketing").write("contacts", writes)
    assert all(r.ok for r in results), results
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=world.hubspot), base_url="http://marketing.test"
    ) as c:
        await c.patch("/__sandbox/knobs", json={"same_timestamp": None})
    rows = [world.hubspot.table("contacts").get(str(r.native_id)) for r in results]
    assert {row.modified_at for row in rows if row} == {STAMP}
    return [str(r.native_id) for r in results]


def count_reads(world: World, stop_after: int | None = None) -> Callable[[], None]:
    """Count each HubSpot contact the engine is handed; with ``stop_after``, the read fails after that many pages."""
    connector: Connector = world.engine.connector("marketing")
    real = connector.read_changes

    async def counted(obj: str, since: Cursor | None) -> AsyncIterator[Page]:
        pages = 0
        async for page in real(obj, since):
            if obj == "contacts":
                if stop_after is not None and pages == stop_after:
                    raise RuntimeError("the process stops here")
                world.handed.update(r.id for r in page.records)
                pages += 1
            yield page

    connector.read_changes = counted  # type: ignore[method-assign]

    def undo() -> None:
        connector.read_changes = real  # type: ignore[method-assign]

    return undo


def crm_emails(world: World) -> set[str]:
    return {str(row.fields.get("Email")).lower() for row in world.crm.table("Contact").live()}


async def test_first_and_incremental_sync_read_a_run_across_pages_once(world: World) -> None:
    ids = await create_run_at_one_moment(world)
    count_reads(world)
    searches = world.searches()
    first = await world.engine.sync("pair")
    assert first.status.value == "ok", first
    assert world.handed == Counter(ids), "each record of the run is handed to the engine once"
    # one search finds a page filled by one instant, three walk the instant by id, one goes past it
    assert world.searches() - searches == 1 + -(-PEOPLE // PAGE) + 1
    assert world.store.get_cursor("pair", "marketing", "contacts") == Cursor(STAMP, max(ids, key=lambda i: (len(i), i)))
    assert crm_emails(world) == {f"run{i}@example.org" for i in range(PEOPLE)}
    searches = world.searches()
    again = await world.engine.sync("pair")
    assert again.status.value == "ok", again
    assert world.handed == Counter(ids), "an incremental sync after the run reads none of it again"
    # HubSpot: the rest of the cursor's instant (by id, empty), then past it. Without the id one inclusive search
    # would do, and hand all 25 out again.
    assert world.searches() - searches == 2


async def test_a_sync_stopped_inside_the_run_resumes_after_the_last_record_applied(world: World) -> None:
    ids = sorted(await create_run_at_one_moment(world), key=lambda i: (len(i), i))
    undo = count_reads(world, stop_after=2)
    stopped = await world.engine.sync("pair")
    assert stopped.status.value != "ok"
    assert world.handed == Counter(ids[: 2 * PAGE])
    assert world.store.get_cursor("pair", "marketing", "contacts") == Cursor(STAMP, ids[2 * PAGE - 1])
    undo()
    count_reads(world)
    resumed = await world.engine.sync("pair")
    assert resumed.status.value == "ok", resumed
    assert world.handed == Counter(ids), "the rest of the run is read once, and nothing before it again"
    assert crm_emails(world) == {f"run{i}@example.org" for i in range(PEOPLE)}
