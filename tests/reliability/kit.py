"""Reliability helpers: seeded sandboxes served on 127.0.0.1 from a background thread, configs pointing at them."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import httpx

from closeloop.config.loader import load_config
from closeloop.config.models import LoadedConfig
from closeloop.connector import registry
from closeloop.engine.runtime import Engine
from closeloop.model import now_utc
from closeloop.sandbox.kit import SandboxBase
from closeloop.sandbox.serve import serving
from closeloop.store import Store

REPO = Path(__file__).resolve().parents[2]
MAPPINGS = REPO / "config" / "mappings"
SEED = 1
HUBSPOT_TOKEN = f"pat-na1-sandbox-{SEED}"
SF_SECRET = "closeloop-sandbox-secret"


def seeded(contacts: int, deals: int) -> tuple[SandboxBase, SandboxBase]:
    """Salesforce with 60% of the people and the deals, HubSpot with the last 60%: 20% match by email."""
    installed = registry()
    crm_people = contacts * 6 // 10
    crm = installed.get("salesforce").sandbox(seed=SEED, people=crm_people, deals=deals, offset=0)  # type: ignore[misc]
    mkt = installed.get("hubspot").sandbox(  # type: ignore[misc]
        seed=SEED, people=crm_people, deals=0, offset=contacts - crm_people
    )
    for box in (crm, mkt):
        box.knobs.enforce_limits = False
    return crm, mkt


def config_text(crm_url: str, mkt_url: str, state: Path, extra: str = "", mkt_auth: str = "") -> str:
    """A closeloop.yaml for the demo mappings against the given base URLs; ``extra`` joins both settings."""
    more = f", {extra}" if extra else ""
    mkt_auth = mkt_auth or f"access_token: {HUBSPOT_TOKEN}"
    return f"""
state: {{path: {state}}}
systems:
  crm:
    connector: salesforce
    settings: {{base_url: '{crm_url}', auth_url: '{crm_url}', auth_flow: client_credentials,
      client_id: closeloop-sandbox, client_secret: {SF_SECRET}{more}}}
  marketing:
    connector: hubspot
    settings: {{base_url: '{mkt_url}', {mkt_auth}{more}}}
connections:
  - name: rel
    systems: [crm, marketing]
    mappings: [{MAPPINGS / "contacts.yaml"}, {MAPPINGS / "deals.yaml"}]
    lookback: 1m
    marketing_system: marketing
loop: {{base_currency: USD, rates: {{EUR: "1.08", GBP: "1.27"}}}}
"""


@dataclass(frozen=True)
class Served:
    """Two sandboxes listening on loopback."""

    crm: SandboxBase
    mkt: SandboxBase
    crm_url: str
    mkt_url: str


@contextmanager
def served(crm: SandboxBase, mkt: SandboxBase) -> Iterator[Served]:
    """Serve both sandboxes from a thread with its own event loop until the block ends."""
    ready: list[Served] = []
    started, stop = threading.Event(), threading.Event()
    failure: list[BaseException] = []

    async def run() -> None:
        async with serving([("salesforce", crm), ("hubspot", mkt)]) as listening:
            ready.append(Served(crm, mkt, listening[0].base_url, listening[1].base_url))
            started.set()
            await asyncio.to_thread(stop.wait)

    def thread_main() -> None:
        try:
            asyncio.run(run())
        except BaseException as exc:  # surfaced to the test below
            failure.append(exc)
            started.set()

    thread = threading.Thread(target=thread_main, daemon=True)
    thread.start()
    started.wait(timeout=30)
    if failure or not ready:
        raise RuntimeError(f"sandboxes did not start: {failure}")
    try:
        yield ready[0]
    finally:
        stop.set()
        thread.join(timeout=30)


def people(box: SandboxBase, obj: str, fields: tuple[str, ...]) -> list[tuple[str, ...]]:
    """The live people of a sandbox as sorted tuples of field values (ids and stamps left out)."""
    rows = [tuple(str(row.fields.get(f) or "").lower() for f in fields) for row in box.table(obj).live()]
    return sorted(rows)


def state_of(crm: SandboxBase, mkt: SandboxBase) -> dict[str, list[tuple[str, ...]]]:
    """Everything a sync decides, comparable across runs: contacts and deals on both sides."""
    return {
        "crm contacts": people(crm, "Contact", ("Email", "FirstName", "LastName", "Phone", "Status__c", "LeadSource")),
        "mkt contacts": people(mkt, "contacts", ("email", "firstname", "lastname", "phone", "closeloop_revenue")),
        "crm deals": people(crm, "Opportunity", ("Name", "Amount", "StageName", "CloseDate")),
        "mkt deals": people(mkt, "deals", ("dealname", "amount", "dealstage", "closedate")),
    }


@dataclass
class ShiftedClock:
    """The engine's clock: real time shifted forward, so outbox back-offs come due without waiting.

    Not the tests' FakeClock (``closeloop.testing.clock``): the sandboxes here stamp records with real time, and
    the engine's clock must keep moving with it.
    """

    offset: timedelta = timedelta(0)

    def __call__(self) -> datetime:
        return now_utc() + self.offset


def _prepare(tmp: Path, extra: str, mkt_auth: str) -> tuple[LoadedConfig, Store]:
    tmp.mkdir(exist_ok=True)
    text = config_text("http://crm.test", "http://marketing.test", tmp / "s.db", extra, mkt_auth)
    (tmp / "closeloop.yaml").write_text(text)
    return load_config(tmp / "closeloop.yaml", environ={}), Store.open(tmp / "s.db")


@asynccontextmanager
async def in_process(
    tmp: Path,
    crm: SandboxBase,
    mkt: SandboxBase,
    extra: str = "",
    clock: ShiftedClock | None = None,
    mkt_auth: str = "",
) -> AsyncIterator[tuple[Engine, Store]]:
    """An engine over in-process sandboxes (httpx.ASGITransport), its store in ``tmp``."""
    config, store = _prepare(tmp, extra, mkt_auth)
    crm.base_url, mkt.base_url = "http://crm.test", "http://marketing.test"
    transports = {"crm": httpx.ASGITransport(app=crm), "marketing": httpx.ASGITransport(app=mkt)}
    engine = Engine(config, store, transports=transports, clock=clock or now_utc)
    try:
        yield engine, store
    finally:
        await engine.aclose()
        store.close()


async def converge(engine: Engine, crm: SandboxBase, mkt: SandboxBase, cycles: int = 6) -> int:
    """Cycles until one writes nothing; how many ran."""
    for cycle in range(1, cycles + 1):
        before = crm.stats.records_written + mkt.stats.records_written
        await engine.sync("rel")
        if crm.stats.records_written + mkt.stats.records_written == before:
            return cycle
    raise AssertionError(f"no quiet cycle in {cycles}")
