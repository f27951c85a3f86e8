"""The engine's hard cases over two fake systems, as tables: conflicts per policy, a crash at every step boundary,
timestamps shared across pages, records changed during a run, restricted picklists, changed emails, deletes, merges.

System ``a`` is the CRM and ``b`` the marketing tool (see conftest.py). The fake's pages hold three records.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from closeloop.config.loader import load_config
from closeloop.engine.runtime import Engine
from closeloop.store import Store
from closeloop.store.rows import QuarantineStatus
from tests.fake_connector import Crash, FakeConnector, FakeVendor, crash_on_call, fake_registry, ticking_clock

from .conftest import CONTACTS, World, write_config

# A contact mapping with one field per policy the conflict table needs.
POLICY_CONTACTS = CONTACTS.replace(
    "  revenue:",
    "  title: {type: string, a: title, b: title, prefer: a unless blank}\n  revenue:",
)


async def make_world(tmp_path: Path, contacts: str = CONTACTS) -> World:
    clock = ticking_clock()
    vendors = {"a": FakeVendor("a", clock), "b": FakeVendor("b", clock)}
    config = load_config(write_config(tmp_path, contacts=contacts), registry=fake_registry(vendors), environ={})
    store = Store.open(tmp_path / "state.db", clock=clock)
    return World(vendors["a"], vendors["b"], Engine(config, store, clock=clock), store, clock, tmp_path)


@pytest.fixture
async def policy_world(tmp_path: Path) -> AsyncIterator[World]:
    w = await make_world(tmp_path, POLICY_CONTACTS)
    yield w
    await w.engine.aclose()
    w.store.close()


async def settle(world: World, cycles: int = 2) -> None:
    for _ in range(cycles):
        await world.sync()


async def assert_quiet(world: World) -> None:
    before = world.writes()
    counts = await world.sync()
    assert world.writes() == before, counts


def golden_of(world: World, email: str) -> dict[str, Any]:
    (golden_id,) = world.store.find_goldens_by_key("contact", "email", email)
    golden = world.store.get_golden(golden_id)
    assert golden is not None
    return dict(golden.fields)


# -- conflicts ------------------------------------------------------------------------------------------------

CONFLICTS = [
    # field, initial (native a, native b), edit in a, edit in b, which edits later, expected (native a, native b)
    pytest.param("name", "Ann", "From A", "From B", "b", ("From B", "From B"), id="two-way-b-later-wins"),
    pytest.param("name", "Ann", "From A", "From B", "a", ("From A", "From A"), id="two-way-a-later-wins"),
    pytest.param(
        "phone", "4155550100", "4155550111", "4155550122", "b", ("4155550111", "+14155550111"), id="prefer-a-b-later"
    ),
    pytest.param(
        "phone", "4155550100", "4155550111", "4155550122", "a", ("4155550111", "+14155550111"), id="prefer-a-a-later"
    ),
    pytest.param("title", "VP", "CEO", "CTO", "b", ("CEO", "CEO"), id="prefer-unless-blank-a-set"),
    pytest.param("title", "VP", "", "CTO", "a", ("CTO", "CTO"), id="prefer-unless-blank-a-blanked"),
    pytest.param("stage", "mql", "Customer", "lead", "a", ("Lead", "lead"), id="one-way-b-to-a-a-later"),
    pytest.param("stage", "mql", "Lead", "customer", "b", ("Customer", "customer"), id="one-way-b-to-a-b-later"),
    pytest.param("source", "paid_search", "email", "direct", "b", ("email", "direct"), id="write-once-kept"),
]


@pytest.mark.parametrize(("field", "initial", "in_a", "in_b", "later", "expected"), CONFLICTS)
async def test_conflict_resolves_per_policy(
    policy_world: World, field: str, initial: str, in_a: str, in_b: str, later: str, expected: tuple[str, str]
) -> None:
    world = policy_world
    row_b = world.b.put("contacts", {"email": "ann@x.com", "name": "Ann", "stage": "mql", field: initial})
    await settle(world)
    row_a = world.a.find("contacts", "email", "ann@x.com")
    assert row_a is not None
    edits = [("a", row_a.id, in_a), ("b", row_b.id, in_b)]
    if later == "a":
        edits.reverse()
    for system, native_id, value in edits:
        getattr(world, system).put("contacts", {field: value}, native_id)
    await settle(world)
    got = (world.a.table("contacts")[row_a.id].fields[field], world.b.table("contacts")[row_b.id].fields[field])
    assert got == expected
    if field == "source":  # write-once: the first value is kept forever, whatever the later edits say
        assert golden_of(world, "ann@x.com")["source"] == initial
    await assert_quiet(world)


async def test_write_once_fills_a_blank_on_the_other_side_only(world: World) -> None:
    world.a.put("contacts", {"email": "ann@x.com", "name": "Ann"})
    await settle(world)
    row_b = world.b.find("contacts", "email", "ann@x.com")
    assert row_b is not None
    world.b.put("contacts", {"source": "webinar"}, row_b.id)
    await settle(world)
    row_a = world.a.find("contacts", "email", "ann@x.com")
    assert row_a is not None
    assert row_a.fields["source"] == "webinar"
    world.a.put("contacts", {"source": "direct"}, row_a.id)
    world.b.put("contacts", {"source": "email"}, row_b.id)
    await settle(world)
    assert golden_of(world, "ann@x.com")["source"] == "webinar"
    assert world.b.table("contacts")[row_b.id].fields["source"] == "email"  # never overwritten elsewhere either
    await assert_quiet(world)


# -- crash safety ---------------------------------------------------------------------------------------------


BOUNDARIES = [
    # (module attribute to wrap, which call crashes, before or after it does its work)
    pytest.param("cycle._apply_page", 1, False, id="after-commit-of-first-page"),
    pytest.param("cycle._apply_page", 3, True, id="between-pages-of-a-pull"),
    pytest.param("cycle.pull", 2, True, id="after-pull-of-a-before-pull-of-b"),
    pytest.param("cycle.drain", 1, True, id="after-pull-before-drain"),
    pytest.param("connector.write", 2, True, id="mid-outbox-before-a-batch"),
    pytest.param("connector.write", 1, False, id="vendor-applied-first-batch-result-lost"),
    pytest.param("connector.write", 3, False, id="vendor-applied-later-batch-result-lost"),
    pytest.param("drain._settle", 2, True, id="mid-settle-of-a-batch"),
    pytest.param("cycle.sync_associations", 1, True, id="before-associations"),
]


@pytest.mark.parametrize(("target", "nth", "before"), BOUNDARIES)
async def test_crash_at_a_step_boundary_then_a_fresh_process_loses_nothing(
    world: World, monkeypatch: pytest.MonkeyPatch, target: str, nth: int, before: bool
) -> None:
    import closeloop.engine.cycle as cycle
    import closeloop.engine.drain as drain

    # already linked: one change each side, then new records on both sides (more than a page)
    ann_a = world.a.put("contacts", {"email": "ann@x.com", "name": "Ann", "phone": "4155550100"})
    bob_b = world.b.put("contacts", {"email": "bob@x.com", "name": "Bob", "stage": "mql"})
    await settle(world)
    ann_b = world.b.find("contacts", "email", "ann@x.com")
    bob_a = world.a.find("contacts", "email", "bob@x.com")
    assert ann_b is not None
    assert bob_a is not None
    world.a.put("contacts", {"name": "Ann Changed"}, ann_a.id)
    world.b.put("contacts", {"name": "Bob Changed"}, bob_b.id)
    for i in range(4):
        world.a.put("contacts", {"email": f"a{i}@x.com", "name": f"A{i}"})
    for i in range(2):
        world.b.put("contacts", {"email": f"b{i}@x.com", "name": f"B{i}", "stage": "customer"})

    where, name = target.split(".")
    owner: Any = {"cycle": cycle, "drain": drain, "connector": FakeConnector}[where]
    monkeypatch.setattr(owner, name, crash_on_call(nth, before=before)(getattr(owner, name)))
    with pytest.raises(Crash):
        await world.engine.sync("ab")
    monkeypatch.undo()

    await world.reopen()
    world.store.interrupt_running_runs()
    await settle(world)
    emails = sorted([f"a{i}@x.com" for i in range(4)] + [f"b{i}@x.com" for i in range(2)] + ["ann@x.com", "bob@x.com"])
    for vendor in (world.a, world.b):
        assert sorted(str(r.fields["email"]) for r in vendor.live("contacts")) == emails, vendor.name  # no duplicate
    assert world.a.table("contacts")[ann_a.id].fields["name"] == "Ann Changed"
    assert world.b.table("contacts")[ann_b.id].fields["name"] == "Ann Changed"
    assert world.a.table("contacts")[bob_a.id].fields["name"] == "Bob Changed"
    assert world.store.outbox_depth() == 0
    assert world.store.integrity_check() == "ok"
    await assert_quiet(world)


async def test_an_outage_holds_writes_back_and_they_all_arrive_after_it(world: World) -> None:
    for i in range(5):
        world.a.put("contacts", {"email": f"p{i}@x.com", "name": f"P{i}"})
    world.b.outage = True
    outcome = await world.engine.sync("ab")
    assert outcome.exit_code == 0  # a transient failure quarantines nothing
    assert world.store.list_quarantine(QuarantineStatus.OPEN) == []
    assert world.store.outbox_depth() == 5
    world.b.outage = False
    world.clock.now += timedelta(hours=2)  # past the backoff
    await settle(world)
    assert sorted(str(r.fields["email"]) for r in world.b.live("contacts")) == [f"p{i}@x.com" for i in range(5)]
    await assert_quiet(world)


# -- timestamps, pages and changes during a run ---------------------------------------------------------------


async def test_records_sharing_one_timestamp_across_page_boundaries_all_arrive(world: World) -> None:
    rows = [world.a.put("contacts", {"email": f"p{i}@x.com", "name": f"P{i}"}) for i in range(8)]
    stamp = rows[0].modified_at
    for row in rows:
        row.modified_at = stamp  # a mass update: eight records, one modified time, three pages
    await world.sync()
    assert len(world.b.live("contacts")) == 8
    # one more with the same stamp and an id sorting before the cursor's: the lookback re-reads it
    late = world.a.put("contacts", {"email": "late@x.com"}, "a-0")
    late.modified_at = stamp
    await world.sync()
    assert world.b.find("contacts", "email", "late@x.com") is not None
    await settle(world)
    await assert_quiet(world)


async def test_a_record_edited_between_pages_of_a_pull_is_picked_up_next_cycle(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    rows = [world.a.put("contacts", {"email": f"p{i}@x.com", "name": f"P{i}"}) for i in range(7)]
    await settle(world)
    for row in rows:
        world.a.put("contacts", {"name": f"{row.fields['name']} v2"}, row.id)
    real = FakeConnector.read_changes

    async def editing(self: FakeConnector, obj: str, since: Any) -> Any:
        pages = 0
        async for page in real(self, obj, since):
            yield page
            pages += 1
            if (
                self.system == "a" and obj == "contacts" and pages == 1
            ):  # after page 1 is applied: a user edits a page-1 record
                world.a.put("contacts", {"name": "edited during the run"}, page.records[0].id)

    monkeypatch.setattr(FakeConnector, "read_changes", editing)
    await world.sync()
    monkeypatch.undo()
    await settle(world)
    names = sorted(str(r.fields["name"]) for r in world.b.live("contacts"))
    assert "edited during the run" in names
    assert sorted(str(r.fields["name"]) for r in world.a.live("contacts")) == names
    await assert_quiet(world)


async def test_lookback_rereads_make_no_writes_and_no_new_records(world: World) -> None:
    for i in range(4):
        world.a.put("contacts", {"email": f"p{i}@x.com"})
    await settle(world)
    before = world.writes()
    counts = await world.sync()
    assert world.writes() == before
    assert counts.get("new", 0) == 0


# -- restricted picklists -------------------------------------------------------------------------------------


async def test_a_value_a_restricted_picklist_refuses_is_quarantined_before_sending_and_the_batch_proceeds(
    world: World,
) -> None:
    world.a.restricted = {"contacts": {"stage": ("Lead", "MQL", "Customer")}}
    rows = [world.b.put("contacts", {"email": f"p{i}@x.com", "name": f"P{i}", "stage": "mql"}) for i in range(3)]
    await settle(world)
    writes_before = dict(world.a.writes)
    world.b.put("contacts", {"stage": "evangelist", "name": "P1 changed"}, rows[1].id)  # no native value in a
    world.b.put("contacts", {"stage": "customer"}, rows[2].id)
    outcome = await world.engine.sync("ab")
    assert outcome.exit_code == 1
    quarantined = world.store.list_quarantine(QuarantineStatus.OPEN)
    assert [(q.system, q.code) for q in quarantined] == [("a", "INVALID_FOR_TARGET")]
    assert "'evangelist'" in quarantined[0].reason
    assert "Lead, MQL, Customer" in quarantined[0].reason
    p1 = world.a.find("contacts", "email", "p1@x.com")
    p2 = world.a.find("contacts", "email", "p2@x.com")
    assert p1 is not None
    assert p2 is not None
    assert p1.fields["stage"] == "MQL"  # never sent
    assert p1.fields["name"] == "P1 changed"  # the rest of the record went
    assert p2.fields["stage"] == "Customer"  # the rest of the batch went
    assert world.a.writes["contacts:update"] == writes_before.get("contacts:update", 0) + 2
    # the refused value is still owed: it stays quarantined on the next cycles, and goes once b has a value a accepts
    await settle(world)
    assert [q.code for q in world.store.list_quarantine(QuarantineStatus.OPEN)] == ["INVALID_FOR_TARGET"]
    world.b.put("contacts", {"stage": "customer"}, rows[1].id)
    await settle(world)
    assert world.a.table("contacts")[p1.id].fields["stage"] == "Customer"
    assert world.store.list_quarantine(QuarantineStatus.OPEN) == []
    await assert_quiet(world)


async def test_a_refused_value_in_a_create_stays_parked_and_is_not_recorded_as_written(world: World) -> None:
    world.b.restricted = {"contacts": {"source": ("direct", "email")}}
    world.a.put("contacts", {"email": "ann@x.com", "name": "Ann", "source": "webinar"})
    world.a.put("contacts", {"email": "bob@x.com", "name": "Bob", "source": "email"})
    outcome = await world.engine.sync("ab")
    assert outcome.exit_code == 1
    ann = world.b.find("contacts", "email", "ann@x.com")
    bob = world.b.find("contacts", "email", "bob@x.com")
    assert ann is not None
    assert bob is not None
    assert "source" not in ann.fields  # created without the refused value
    assert bob.fields["source"] == "email"
    quarantined = world.store.list_quarantine(QuarantineStatus.OPEN)
    assert [(q.system, q.code) for q in quarantined] == [("b", "INVALID_FOR_TARGET")]
    assert "'webinar'" in quarantined[0].reason
    await settle(world)
    assert [q.code for q in world.store.list_quarantine(QuarantineStatus.OPEN)] == ["INVALID_FOR_TARGET"]
    link = world.store.get_link("b", "contacts", ann.id)
    assert link is not None
    assert "source" not in link.snapshot  # b never got it: the snapshot must not say it did


# -- changed emails -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("side", ["a", "b"], ids=["changed-in-crm", "changed-in-marketing"])
async def test_an_email_changed_on_one_side_follows_the_link_without_a_duplicate(world: World, side: str) -> None:
    world.b.put("contacts", {"email": "ann@x.com", "name": "Ann", "stage": "mql"})
    await settle(world)
    vendor, other = (world.a, world.b) if side == "a" else (world.b, world.a)
    row = vendor.find("contacts", "email", "ann@x.com")
    linked = other.find("contacts", "email", "ann@x.com")
    assert row is not None
    assert linked is not None
    vendor.put("contacts", {"email": "Ann.Smith@Y.com"}, row.id)
    await settle(world)
    assert [r.id for r in other.live("contacts")] == [linked.id]  # the same record, updated
    assert str(linked.fields["email"]).lower() == "ann.smith@y.com"
    assert len(vendor.live("contacts")) == 1
    assert world.store.find_goldens_by_key("contact", "email", "ann.smith@y.com")
    assert world.store.find_goldens_by_key("contact", "email", "ann@x.com") == []
    await assert_quiet(world)
    # a new record with the old email is a different person now
    vendor.put("contacts", {"email": "ann@x.com", "name": "Another Ann", "stage": "MQL" if side == "a" else "mql"})
    await settle(world)
    assert len(other.live("contacts")) == 2


# -- deletes and merges ---------------------------------------------------------------------------------------

DELETES = [
    # policy, deleting side, the other side's record after the delete, the deleting side after the survivor's edit
    pytest.param("ignore", "a", "kept", "stays-deleted", id="ignore-crm-delete"),
    pytest.param("unlink", "a", "kept", "re-created-by-create-rule", id="unlink-crm-delete"),
    pytest.param("propagate", "a", "deleted", None, id="propagate-crm-delete"),
    pytest.param("ignore", "b", "kept", "stays-deleted", id="ignore-marketing-delete"),
    pytest.param("unlink", "b", "kept", "re-created-by-create-rule", id="unlink-marketing-delete"),
    pytest.param("propagate", "b", "deleted", None, id="propagate-marketing-delete"),
]


@pytest.mark.parametrize(("policy", "side", "other_after", "after_edit"), DELETES)
async def test_delete_follows_on_delete_policy(
    tmp_path: Path, policy: str, side: str, other_after: str, after_edit: str | None
) -> None:
    """ignore keeps the tombstone (nothing is ever written there again); unlink forgets the link, so the
    survivor is an unlinked record the create rules apply to; propagate deletes the survivor too."""
    world = await make_world(tmp_path, CONTACTS.replace("on_delete: unlink", f"on_delete: {policy}"))
    try:
        world.b.put("contacts", {"email": "ann@x.com", "name": "Ann", "stage": "mql"})  # both create rules pass
        world.b.put("contacts", {"email": "bob@x.com", "name": "Bob", "stage": "mql"})
        await settle(world)
        vendor, other = (world.a, world.b) if side == "a" else (world.b, world.a)
        gone = vendor.find("contacts", "email", "ann@x.com")
        kept = other.find("contacts", "email", "ann@x.com")
        assert gone is not None
        assert kept is not None
        gone.deleted = True
        vendor.put("contacts", {}, gone.id)
        await settle(world)
        assert other.table("contacts")[kept.id].deleted is (other_after == "deleted")
        assert vendor.table("contacts")[gone.id].deleted  # never undeleted by an update
        link = world.store.get_link(side, "contacts", gone.id)
        assert (link is None) is (policy == "unlink")
        await assert_quiet(world)
        if after_edit is not None:
            other.put("contacts", {"name": "Ann edited"}, kept.id)
            await settle(world)
            live = sorted(str(r.fields["email"]) for r in vendor.live("contacts"))
            assert vendor.table("contacts")[gone.id].deleted
            if after_edit == "stays-deleted":
                assert live == ["bob@x.com"]
            else:
                assert live == ["ann@x.com", "bob@x.com"]
                again = vendor.find("contacts", "email", "ann@x.com")
                assert again is not None
                assert again.id != gone.id
            await assert_quiet(world)
        bob = world.b.find("contacts", "email", "bob@x.com")
        assert bob is not None
        assert not bob.deleted  # the rest is untouched
    finally:
        await world.engine.aclose()
        world.store.close()


@pytest.mark.parametrize("side", ["a", "b"], ids=["merged-in-crm", "merged-in-marketing"])
async def test_merge_repoints_and_the_merged_away_record_is_never_resurrected(world: World, side: str) -> None:
    world.a.put("contacts", {"email": "ann@x.com", "name": "Ann", "stage": "MQL"})
    world.a.put("contacts", {"email": "ann.smith@x.com", "name": "Ann Smith", "stage": "MQL"})
    await settle(world)
    vendor, other = (world.a, world.b) if side == "a" else (world.b, world.a)
    loser = vendor.find("contacts", "email", "ann@x.com")
    winner = vendor.find("contacts", "email", "ann.smith@x.com")
    assert loser is not None
    assert winner is not None
    loser.deleted, loser.merged_into = True, winner.id
    vendor.put("contacts", {}, loser.id)
    vendor.put("contacts", {"name": "Ann Smith (merged)"}, winner.id)
    await settle(world)
    other_winner = other.find("contacts", "email", "ann.smith@x.com")
    assert other_winner is not None
    assert other_winner.fields["name"] == "Ann Smith (merged)"  # the winner keeps syncing
    loser_link = world.store.get_link(side, "contacts", loser.id)
    assert loser_link is not None
    loser_golden = world.store.get_golden(loser_link.golden_id)
    assert loser_golden is not None
    assert loser_golden.deleted  # retired: the winner has its own golden record
    # the other side's copy of the loser is edited: nothing is written to the merged-away record or re-created
    other_loser = other.find("contacts", "email", "ann@x.com")
    assert other_loser is not None
    other.put("contacts", {"name": "edited after the merge"}, other_loser.id)
    count = len(vendor.table("contacts"))
    await settle(world)
    assert len(vendor.table("contacts")) == count
    assert vendor.table("contacts")[loser.id].deleted
    assert [r.fields["email"] for r in vendor.live("contacts")] == ["ann.smith@x.com"]
    await assert_quiet(world)
