"""Rejections, ambiguity, crashes, deletes and merges: nothing lost, nothing duplicated, nothing blocked."""

from __future__ import annotations

import pytest

from closeloop.store.rows import QuarantineStatus

from .conftest import World


async def test_rejected_record_is_quarantined_and_the_rest_of_its_batch_proceeds(world: World) -> None:
    world.b.reject_values = {"Bad Name"}
    for i in range(5):
        world.a.put("contacts", {"email": f"p{i}@x.com", "name": "Bad Name" if i == 2 else f"P{i}"})
    outcome = await world.engine.sync("ab")
    assert outcome.exit_code == 1
    assert len(world.b.live("contacts")) == 4
    quarantined = world.store.list_quarantine(QuarantineStatus.OPEN)
    assert [(q.system, q.code) for q in quarantined] == [("b", "INVALID")]
    assert "name is not valid" in quarantined[0].reason
    # fixed at the source, retried on request: it arrives and the entry closes
    world.b.reject_values = set()
    world.store.mark_retry("all")
    outcome = await world.engine.sync("ab")
    assert len(world.b.live("contacts")) == 5
    assert world.store.list_quarantine(QuarantineStatus.OPEN) == []


async def test_ambiguous_match_is_quarantined_naming_both_candidates(world: World) -> None:
    world.a.put("contacts", {"email": "ann@x.com", "name": "Ann"})
    world.b.put("contacts", {"email": "other@x.com"})
    await world.sync()
    goldens = world.store.find_goldens_by_key("contact", "email", "ann@x.com")
    # a second golden record with the same email (e.g. from a merge gone wrong elsewhere)
    with world.store.transaction():
        world.store.put_golden("g-extra", "contact", {"email": "ann@x.com"})
        world.store.set_golden_keys("contact", [("g-extra", {"email": "ann@x.com"})])
    world.b.put("contacts", {"email": "ANN@x.com", "name": "Ann in B"}, "b-new")
    world.b.writes.clear()
    await world.sync()
    quarantined = [q for q in world.store.list_quarantine(QuarantineStatus.OPEN) if q.code == "AMBIGUOUS_MATCH"]
    assert len(quarantined) == 1
    assert goldens[0] in quarantined[0].reason
    assert "g-extra" in quarantined[0].reason


async def test_a_record_parked_while_unlinked_is_not_parked_again_when_the_lookback_rereads_it(world: World) -> None:
    world.a.put("contacts", {"email": "ann@x.com", "name": "Ann"})
    await world.sync()
    with world.store.transaction():
        world.store.put_golden("g-extra", "contact", {"email": "ann@x.com"})
        world.store.set_golden_keys("contact", [("g-extra", {"email": "ann@x.com"})])
    world.b.put("contacts", {"email": "ann@x.com", "name": "Ann in B"}, "b-new")
    for _ in range(3):  # each cycle's lookback re-reads the same version of b-new
        await world.sync()
    (quarantined,) = world.store.list_quarantine(QuarantineStatus.OPEN)
    assert (quarantined.native_id, quarantined.code, quarantined.attempts) == ("b-new", "AMBIGUOUS_MATCH", 1)
    world.b.put("contacts", {"email": "ann@x.com", "name": "Ann in B, edited"}, "b-new")
    await world.sync()  # a new version is a new attempt
    (quarantined,) = world.store.list_quarantine(QuarantineStatus.OPEN)
    assert quarantined.attempts == 2


@pytest.mark.parametrize("batches_before_crash", [1, 2, 3], ids=["first-batch", "second-batch", "third-batch"])
async def test_crash_after_vendor_applied_write_resumes_without_duplicates(
    world: World, batches_before_crash: int
) -> None:
    for i in range(5):
        world.a.put("contacts", {"email": f"p{i}@x.com", "name": f"P{i}"})
    world.b.fail_after_apply = batches_before_crash
    outcome = await world.engine.sync("ab")  # the lost answer is a transient failure: items wait
    assert outcome.exit_code == 0
    await world.reopen()
    world.store.interrupt_running_runs()
    for entry in world.store.due_outbox("ab", "b", "contacts", 100, world.clock().replace(year=2100)):
        world.store.outbox_retry_later(entry.id, world.clock(), "make due now")
    await world.sync()
    await world.sync()
    emails = sorted(r.fields["email"] for r in world.b.live("contacts"))
    assert emails == [f"p{i}@x.com" for i in range(5)]


@pytest.mark.parametrize("crash_at", ["after-pull", "mid-drain"])
async def test_exception_at_a_step_boundary_then_fresh_process_loses_nothing(
    world: World, crash_at: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import closeloop.engine.cycle as cycle

    for i in range(4):
        world.a.put("contacts", {"email": f"p{i}@x.com", "name": f"P{i}"})

    class Crash(BaseException):  # a process dying, not an error the engine handles
        pass

    if crash_at == "after-pull":

        async def boom(*args: object, **kwargs: object) -> None:
            raise Crash

        monkeypatch.setattr(cycle, "drain", boom)
    else:
        real_write = type(world.engine.connector("b")).write
        calls = {"n": 0}

        async def flaky(self: object, obj: str, batch: object) -> object:
            calls["n"] += 1
            if calls["n"] == 2:
                raise Crash
            return await real_write(self, obj, batch)  # type: ignore[arg-type]

        monkeypatch.setattr(type(world.engine.connector("b")), "write", flaky)
    with pytest.raises(Crash):
        await world.engine.sync("ab")
    monkeypatch.undo()
    await world.reopen()
    await world.sync()
    await world.sync()
    assert sorted(r.fields["email"] for r in world.b.live("contacts")) == [f"p{i}@x.com" for i in range(4)]
    assert world.store.integrity_check() == "ok"


async def test_deletion_with_unlink_keeps_the_other_side(world: World) -> None:
    row = world.a.put("contacts", {"email": "ann@x.com"})
    await world.sync()
    world.a.table("contacts")[row.id].deleted = True
    world.a.put("contacts", {}, row.id)
    await world.sync()
    assert world.b.find("contacts", "email", "ann@x.com") is not None
    assert world.store.get_link("a", "contacts", row.id) is None


async def test_merged_away_record_is_never_resurrected(world: World) -> None:
    loser = world.a.put("contacts", {"email": "ann@x.com", "name": "Ann"})
    winner = world.a.put("contacts", {"email": "ann.smith@x.com", "name": "Ann Smith"})
    await world.sync()
    assert len(world.b.live("contacts")) == 2
    world.a.table("contacts")[loser.id].deleted = True
    world.a.table("contacts")[loser.id].merged_into = winner.id
    world.a.put("contacts", {}, loser.id)
    world.a.put("contacts", {"name": "Ann Smith (merged)"}, winner.id)
    await world.sync()
    b_loser = world.b.find("contacts", "email", "ann@x.com")
    assert b_loser is not None
    world.b.put("contacts", {"name": "edited in b"}, b_loser.id)
    a_before = len(world.a.table("contacts"))
    await world.sync()
    assert len(world.a.table("contacts")) == a_before  # no new record re-creates the merged-away one


async def test_plan_lists_writes_without_writing_or_moving_cursors(world: World) -> None:
    world.a.put("contacts", {"email": "ann@x.com", "name": "Ann"})
    plan = await world.engine.plan("ab")
    assert [(p.system, p.op.value) for p in plan] == [("b", "upsert")]
    assert plan[0].diff["name"] == (None, "Ann")
    assert world.writes() == 0
    assert world.store.get_cursor("ab", "a", "contacts") is None
    assert world.store.outbox_depth() == 0
    await world.sync()
    assert len(world.b.live("contacts")) == 1


async def test_a_refused_write_to_a_record_since_deleted_there_leaves_quarantine(world: World) -> None:
    """HubSpot sweeps its archive every few minutes: until then a write to a record deleted there is refused."""
    row = world.a.put("contacts", {"email": "ann@x.com", "name": "Ann"})
    await world.sync()
    copy = world.b.find("contacts", "email", "ann@x.com")
    assert copy is not None
    world.b.reject_values = {"Ann Edited"}  # stands in for the vendor's "not found" on the deleted record
    world.a.put("contacts", {"name": "Ann Edited"}, row.id)
    await world.sync()
    assert [q.native_id for q in world.store.list_quarantine(QuarantineStatus.OPEN)] == [copy.id]
    world.b.table("contacts")[copy.id].deleted = True
    world.b.put("contacts", {}, copy.id)  # the deletion reaches closeloop's read of b
    await world.sync()
    assert world.store.list_quarantine(QuarantineStatus.OPEN) == []
