"""The sync engine over two fake systems: creates, matches, merges per policy, converges, never ping-pongs."""

from __future__ import annotations

from .conftest import World


async def test_initial_sync_creates_and_matches_both_ways(world: World) -> None:
    world.a.put("contacts", {"email": "Ann@X.com", "name": "Ann", "stage": "Lead"})
    world.a.put("contacts", {"email": "bob@x.com", "name": "Bob"})
    world.b.put("contacts", {"email": "ann@x.com", "name": "Ann B", "stage": "lead"})
    world.b.put("contacts", {"email": "cy@x.com", "name": "Cy", "stage": "mql"})
    world.b.put("contacts", {"email": "di@x.com", "name": "Di", "stage": "lead"})

    await world.sync()

    assert sorted(r.fields["email"].lower() for r in world.b.live("contacts")) == [
        "ann@x.com",
        "bob@x.com",
        "cy@x.com",
        "di@x.com",
    ]
    # di is only a lead: the create rule b -> a lets only MQLs and customers into the CRM
    assert sorted(r.fields["email"].lower() for r in world.a.live("contacts")) == ["ann@x.com", "bob@x.com", "cy@x.com"]
    assert world.a.find("contacts", "email", "cy@x.com").fields["stage"] == "MQL"


async def test_second_cycle_after_convergence_makes_zero_writes(world: World) -> None:
    world.a.put("contacts", {"email": "ann@x.com", "name": "Ann", "phone": "(415) 555-0100"})
    world.b.put("contacts", {"email": "bob@x.com", "name": "Bob", "stage": "mql"})
    await world.sync()
    await world.sync()  # the echoes of the first cycle's writes come back: nothing to do
    before = world.writes()
    counts = await world.sync()
    assert world.writes() == before
    assert counts.get("created", 0) == counts.get("updated", 0) == 0


async def test_one_change_makes_one_write_then_quiet(world: World) -> None:
    row = world.a.put("contacts", {"email": "ann@x.com", "name": "Ann"})
    await world.sync()
    await world.sync()
    before = world.writes()
    world.a.put("contacts", {"name": "Ann Smith"}, row.id)
    await world.sync()
    assert world.writes() == before + 1
    assert world.b.find("contacts", "email", "ann@x.com").fields["name"] == "Ann Smith"
    await world.sync()
    assert world.writes() == before + 1


async def test_equal_values_in_other_formats_are_not_changes(world: World) -> None:
    world.a.put("contacts", {"email": "ann@x.com", "phone": "+1 415 555 0100"})
    await world.sync()
    other = world.b.find("contacts", "email", "ann@x.com")
    world.b.put("contacts", {"email": "ANN@x.com", "phone": "(415) 555-0100"}, other.id)
    before = world.writes()
    await world.sync()
    await world.sync()
    assert world.writes() == before


async def test_conflict_goes_to_the_later_change(world: World) -> None:
    row = world.a.put("contacts", {"email": "ann@x.com", "name": "Ann"})
    await world.sync()
    await world.sync()
    other = world.b.find("contacts", "email", "ann@x.com")
    world.a.put("contacts", {"name": "From A"}, row.id)
    world.b.put("contacts", {"name": "From B (later)"}, other.id)
    await world.sync()
    await world.sync()
    assert world.a.table("contacts")[row.id].fields["name"] == "From B (later)"
    assert world.b.table("contacts")[other.id].fields["name"] == "From B (later)"


async def test_conflict_on_preferred_field_goes_to_the_preferred_system(world: World) -> None:
    row = world.a.put("contacts", {"email": "ann@x.com", "phone": "4155550100"})
    await world.sync()
    await world.sync()
    other = world.b.find("contacts", "email", "ann@x.com")
    world.a.put("contacts", {"phone": "4155550111"}, row.id)
    world.b.put("contacts", {"phone": "4155550122"}, other.id)  # later, but a is preferred for phone
    await world.sync()
    await world.sync()
    assert world.b.table("contacts")[other.id].fields["phone"] == "+14155550111"


async def test_write_once_original_source_is_never_overwritten(world: World) -> None:
    row = world.b.put("contacts", {"email": "ann@x.com", "stage": "mql", "source": "paid_search"})
    await world.sync()
    crm = world.a.find("contacts", "email", "ann@x.com")
    assert crm.fields["source"] == "paid_search"
    world.b.put("contacts", {"source": "direct"}, row.id)
    world.a.put("contacts", {"source": "email"}, crm.id)
    await world.sync()
    await world.sync()
    golden = world.store.get_golden(world.store.find_goldens_by_key("contact", "email", "ann@x.com")[0])
    assert golden is not None
    assert golden.fields["source"] == "paid_search"


async def test_one_way_field_ignores_edits_on_the_target(world: World) -> None:
    row = world.b.put("contacts", {"email": "ann@x.com", "stage": "mql"})
    await world.sync()
    crm = world.a.find("contacts", "email", "ann@x.com")
    world.a.put("contacts", {"stage": "Customer"}, crm.id)  # stage flows b -> a only
    await world.sync()
    assert world.b.table("contacts")[row.id].fields["stage"] == "mql"
    world.b.put("contacts", {"stage": "customer"}, row.id)
    await world.sync()
    assert world.a.table("contacts")[crm.id].fields["stage"] == "Customer"


async def test_lookback_rereads_are_deduplicated(world: World) -> None:
    world.a.put("contacts", {"email": "ann@x.com"})
    await world.sync()
    counts = await world.sync()  # the lookback window re-reads ann: seen before, skipped
    assert counts.get("skipped", 0) >= 1
    assert counts.get("new", 0) == 0


async def test_edit_within_the_same_second_as_the_last_seen_version_is_applied(world: World) -> None:
    row = world.a.put("contacts", {"email": "ann@x.com", "name": "Ann"})
    await world.sync()
    stamp = row.modified_at
    row.fields["name"] = "Ann Again"  # a vendor that stamps to the second: same modified time, new value
    row.modified_at = stamp
    await world.sync()
    assert world.b.find("contacts", "email", "ann@x.com").fields["name"] == "Ann Again"
