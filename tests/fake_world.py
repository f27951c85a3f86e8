"""Two fake systems 'a' (the CRM) and 'b' (the marketing tool) in connection ``ab``, the real engine over them:
the world the engine's and the loop's tests share; each suite brings its own mappings."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from closeloop.config.loader import load_config
from closeloop.config.models import LoadedConfig
from closeloop.engine.runtime import Engine
from closeloop.store import Store
from closeloop.testing.clock import FakeClock
from tests.fake_connector import FakeVendor, fake_registry, ticking_clock

CONFIG = """
state: {path: state.db}
systems:
  a: {connector: fake, settings: {}}
  b: {connector: fake, settings: {}}
connections:
  - name: ab
    systems: [a, b]
    mappings: [contacts.yaml, deals.yaml]
    lookback: 5s
    marketing_system: b
loop:
  base_currency: USD
  rates: {EUR: "1.10"}
"""


@dataclass
class World:
    """The two fake vendors, the engine and its store."""

    a: FakeVendor
    b: FakeVendor
    engine: Engine
    store: Store
    clock: FakeClock
    path: Path

    @property
    def config(self) -> LoadedConfig:
        """The loaded configuration the engine runs."""
        return self.engine.config

    async def sync(self) -> dict[str, int]:
        """One cycle of connection ab."""
        outcome = await self.engine.sync("ab")
        return dict(outcome.counts)

    def writes(self) -> int:
        """Writes both fake vendors received."""
        return sum(self.a.writes.values()) + sum(self.b.writes.values())

    def golden_of(self, email: str) -> str:
        """The golden contact id linked to the contact of ``email`` in system a or b."""
        for vendor in (self.a, self.b):
            row = vendor.find("contacts", "email", email)
            link = self.store.get_link(vendor.name, "contacts", row.id) if row else None
            if link is not None:
                return link.golden_id
        raise LookupError(email)

    async def reopen(self) -> None:
        """A fresh process: new store handle and new engine over the same files and vendors."""
        await self.engine.aclose()
        self.store.close()
        self.store = Store.open(self.path / "state.db", clock=self.clock)
        self.engine = Engine(self.engine.config, self.store, clock=self.clock)


def write_config(path: Path, contacts: str, deals: str, config: str = CONFIG) -> Path:
    """The configuration and its two mappings written under ``path``; the configuration's path."""
    (path / "contacts.yaml").write_text(contacts)
    (path / "deals.yaml").write_text(deals)
    (path / "closeloop.yaml").write_text(config)
    return path / "closeloop.yaml"


@asynccontextmanager
async def fake_world(path: Path, contacts: str, deals: str) -> AsyncIterator[World]:
    """A world under ``path`` with these mappings; the engine and store are closed afterwards."""
    clock = ticking_clock()
    vendors = {"a": FakeVendor("a", clock), "b": FakeVendor("b", clock)}
    config = load_config(write_config(path, contacts, deals), registry=fake_registry(vendors), environ={})
    store = Store.open(path / "state.db", clock=clock)
    world = World(vendors["a"], vendors["b"], Engine(config, store, clock=clock), store, clock, path)
    try:
        yield world
    finally:
        await world.engine.aclose()
        world.store.close()
