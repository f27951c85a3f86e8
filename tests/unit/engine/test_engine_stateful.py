"""Convergence (G12): a hypothesis state machine over the two fake systems.

Users create, edit and delete contacts on either side; cycles run, sometimes crashing at a step boundary (then a
fresh process resumes), sometimes losing the answer of a write the vendor applied, sometimes against an outage.
After every "settle" (time passes, two cycles without faults) the policies hold for every linked pair, no system
holds an email twice, and one more cycle writes nothing.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

import closeloop.engine.cycle as cycle
import closeloop.engine.drain as drain
from closeloop.config.loader import load_config
from closeloop.engine.normalize import to_canonical
from closeloop.engine.runtime import Engine
from closeloop.model import FieldType
from closeloop.store import Store
from tests.fake_connector import Crash, FakeConnector, FakeVendor, crash_on_call, fake_registry, ticking_clock

from .conftest import World, write_config

EMAILS = [f"p{i}@x.com" for i in range(6)]
NAMES = ["Ann", "Bob", "Cy", ""]
PHONES = ["4155550100", "+1 415 555 0111", "(415) 555-0122", ""]
SOURCES = ["paid_search", "webinar", ""]
STAGES = {"a": ["Lead", "MQL", "Customer"], "b": ["lead", "mql", "customer"]}
FIELDS = ["name", "phone", "stage", "source"]

BOUNDARIES = [
    ("cycle", "_apply_page", 1, False),  # after the first page committed
    ("cycle", "_apply_page", 2, True),  # between pages
    ("cycle", "drain", 1, True),  # after the pull, before the drain
    ("connector", "write", 1, True),  # before the first batch
    ("connector", "write", 2, True),  # mid-drain
    ("connector", "write", 1, False),  # the vendor applied the batch; its answer never stored
    ("drain", "_settle", 1, False),  # mid-settle
]
OWNERS: dict[str, Any] = {"cycle": cycle, "drain": drain, "connector": FakeConnector}


def _stage(system: str, value: object) -> object:
    return str(value).lower() if value else None


class Convergence(RuleBasedStateMachine):
    """Two fake systems, an engine and its state file; the model is the systems themselves."""

    def __init__(self) -> None:
        super().__init__()
        self.dir = Path(tempfile.mkdtemp(prefix="closeloop-stateful-"))
        clock = ticking_clock()
        vendors = {"a": FakeVendor("a", clock), "b": FakeVendor("b", clock)}
        config = load_config(write_config(self.dir), registry=fake_registry(vendors), environ={})
        store = Store.open(self.dir / "state.db", clock=clock)
        self.world = World(vendors["a"], vendors["b"], Engine(config, store, clock=clock), store, clock, self.dir)
        self.sources: dict[str, object] = {}  # golden id -> its write-once source, once set
        self.settled = False

    def teardown(self) -> None:
        asyncio.run(self.world.engine.aclose())
        self.world.store.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    def vendor(self, side: str) -> FakeVendor:
        return self.world.a if side == "a" else self.world.b

    # -- what users do --------------------------------------------------------------------------------------

    @rule(side=st.sampled_from("ab"), email=st.sampled_from(EMAILS), name=st.sampled_from(NAMES[:3]), data=st.data())
    def create(self, side: str, email: str, name: str, data: st.DataObject) -> None:
        vendor = self.vendor(side)
        if vendor.find("contacts", "email", email) is not None:
            return  # one person once per system; a second one is a duplicate the user made, not the engine
        fields: dict[str, object] = {"email": email, "name": name}
        if data.draw(st.booleans(), label="with stage"):
            fields["stage"] = data.draw(st.sampled_from(STAGES[side]), label="stage")
        if data.draw(st.booleans(), label="with source"):
            fields["source"] = data.draw(st.sampled_from(SOURCES[:2]), label="source")
        vendor.put("contacts", fields)
        self.settled = False

    @rule(side=st.sampled_from("ab"), pick=st.integers(0, 20), field=st.sampled_from(FIELDS), data=st.data())
    def edit(self, side: str, pick: int, field: str, data: st.DataObject) -> None:
        vendor = self.vendor(side)
        live = vendor.live("contacts")
        if not live:
            return
        row = live[pick % len(live)]
        pool = {"name": NAMES, "phone": PHONES, "stage": STAGES[side], "source": SOURCES}[field]
        vendor.put("contacts", {field: data.draw(st.sampled_from(pool), label=field)}, row.id)
        self.settled = False

    @rule(side=st.sampled_from("ab"), pick=st.integers(0, 20))
    def delete(self, side: str, pick: int) -> None:
        vendor = self.vendor(side)
        live = vendor.live("contacts")
        if not live:
            return
        row = live[pick % len(live)]
        row.deleted = True
        vendor.put("contacts", {}, row.id)
        self.settled = False

    # -- what happens to the daemon -------------------------------------------------------------------------

    @rule()
    def sync(self) -> None:
        asyncio.run(self.world.sync())
        self.settled = False

    @rule(boundary=st.sampled_from(BOUNDARIES))
    def crash(self, boundary: tuple[str, str, int, bool]) -> None:
        where, name, nth, before = boundary
        owner = OWNERS[where]
        real = getattr(owner, name)
        setattr(owner, name, crash_on_call(nth, before=before)(real))
        try:
            asyncio.run(self.world.sync())
        except Crash:
            pass
        finally:
            setattr(owner, name, real)
        asyncio.run(self.world.reopen())
        self.world.store.interrupt_running_runs()
        self.settled = False

    @rule(side=st.sampled_from("ab"))
    def ambiguous_write(self, side: str) -> None:
        self.vendor(side).fail_after_apply = 1
        asyncio.run(self.world.sync())
        self.vendor(side).fail_after_apply = 0
        self.settled = False

    @rule(side=st.sampled_from("ab"))
    def outage(self, side: str) -> None:
        self.vendor(side).outage = True
        try:
            asyncio.run(self.world.sync())
        finally:
            self.vendor(side).outage = False
        self.settled = False

    @rule()
    def settle(self) -> None:
        self.world.clock.now += timedelta(hours=2)  # every backoff has passed
        asyncio.run(self.world.sync())
        asyncio.run(self.world.sync())
        self.settled = True

    # -- what must hold ---------------------------------------------------------------------------------------

    @precondition(lambda self: self.settled)
    @invariant()
    def converged(self) -> None:
        world = self.world
        for golden in world.store.goldens("contact", limit=10_000):
            rows = {}
            for link in world.store.links_of(golden.id):
                row = self.vendor(link.system).table("contacts").get(link.native_id)
                if row is not None and not row.deleted and not link.deleted:
                    rows[link.system] = row.fields
            source = golden.fields.get("source")
            if golden.id in self.sources:
                assert source == self.sources[golden.id], f"write-once source of {golden.id} changed"
            elif source:
                self.sources[golden.id] = source
            if golden.deleted or set(rows) != {"a", "b"}:
                continue
            a, b = rows["a"], rows["b"]
            assert str(a["email"]).lower() == str(b["email"]).lower()
            for name, kind in (("name", FieldType.STRING), ("phone", FieldType.PHONE)):
                assert to_canonical(kind, a.get(name)) == to_canonical(kind, b.get(name)), (name, a, b)
            if b.get("stage"):  # one-way b -> a: the CRM shows the marketing tool's value
                assert _stage("a", a.get("stage")) == _stage("b", b.get("stage")), (a, b)
            if source:  # write-once: it fills blanks everywhere, and never overwrites
                assert a.get("source"), (golden.fields, a, b)
                assert b.get("source"), (golden.fields, a, b)
                assert source in (a.get("source"), b.get("source"))

    @invariant()
    def no_duplicate_emails(self) -> None:
        for vendor in (self.world.a, self.world.b):
            emails = [str(r.fields.get("email")).lower() for r in vendor.live("contacts")]
            assert len(emails) == len(set(emails)), (vendor.name, sorted(emails))

    @precondition(lambda self: self.settled)
    @invariant()
    def quiet_after_settling(self) -> None:
        before = self.world.writes()
        counts = asyncio.run(self.world.sync())
        assert self.world.writes() == before, counts


FAST = settings(
    max_examples=25,
    stateful_step_count=20,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
SLOW = settings(FAST, max_examples=300, stateful_step_count=40)

TestConvergence = Convergence.TestCase
TestConvergence.settings = FAST


@pytest.mark.slow
def test_convergence_many_examples() -> None:
    from hypothesis.stateful import run_state_machine_as_test

    run_state_machine_as_test(Convergence, settings=SLOW)
