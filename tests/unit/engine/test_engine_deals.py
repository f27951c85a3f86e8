"""Deals: associations through contact links, the revenue ledger, and revenue written back to the contact."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from .conftest import World


async def _contacts(world: World) -> tuple[str, str]:
    ann = world.a.put("contacts", {"email": "ann@x.com", "name": "Ann"})
    bob = world.a.put("contacts", {"email": "bob@x.com", "name": "Bob"})
    await world.sync()
    return ann.id, bob.id


async def test_won_deal_books_revenue_and_writes_it_to_the_marketing_contact(world: World) -> None:
    ann, bob = await _contacts(world)
    deal = world.a.put(
        "deals", {"title": "Acme", "amount": "1200.00", "currency": "USD", "stage": "Open", "closed": "2026-03-10"}
    )
    world.a.links[deal.id] = {ann, bob}
    await world.sync()
    b_deal = world.b.find("deals", "title", "Acme")
    assert b_deal is not None
    b_ann = world.b.find("contacts", "email", "ann@x.com")
    b_bob = world.b.find("contacts", "email", "bob@x.com")
    assert world.b.links[b_deal.id] == {b_ann.id, b_bob.id}
    assert "revenue" not in b_ann.fields
    # the associations written are remembered in a column of the deal's link, not inside its snapshot
    deal_link = world.store.find_links("b", "deals", [b_deal.id])[b_deal.id]
    assert deal_link.associated == tuple(sorted([b_ann.id, b_bob.id]))
    assert not any(name.startswith("~") for name in deal_link.snapshot)

    world.a.put("deals", {"stage": "Won"}, deal.id)
    await world.sync()
    assert Decimal(str(world.b.find("contacts", "email", "ann@x.com").fields["revenue"])) == Decimal("1200")
    assert world.b.find("deals", "title", "Acme").fields["stage"] == "closedwon"
    entries = world.store.ledger_entries()
    assert [(e.kind.value, e.amount) for e in entries] == [("won", Decimal("1200.00"))]

    # reopened, then won again with a new amount: reversal, then a new won entry; never an edit
    world.a.put("deals", {"stage": "Open"}, deal.id)
    await world.sync()
    assert Decimal(str(world.b.find("contacts", "email", "ann@x.com").fields["revenue"])) == 0
    world.a.put("deals", {"stage": "Won", "amount": "1500"}, deal.id)
    await world.sync()
    kinds = [(e.kind.value, e.amount) for e in world.store.ledger_entries()]
    assert kinds == [("won", Decimal("1200.00")), ("reversal", Decimal("-1200.00")), ("won", Decimal("1500"))]
    assert Decimal(str(world.b.find("contacts", "email", "bob@x.com").fields["revenue"])) == Decimal("1500")
    before = world.writes()
    await world.sync()
    await world.sync()
    assert world.writes() == before  # revenue echoes back from b and changes nothing
    assert world.a.writes["associate"] == 0  # associations read from a are never written back to a


async def test_deal_waits_for_its_contact_link_instead_of_being_dropped(world: World) -> None:
    deal = world.a.put("deals", {"title": "Early", "amount": "10", "stage": "Open", "currency": "USD"})
    cy = world.a.put("contacts", {"email": "cy@x.com"})
    world.a.links[deal.id] = {cy.id}
    await world.sync()
    b_deal = world.b.find("deals", "title", "Early")
    b_cy = world.b.find("contacts", "email", "cy@x.com")
    assert b_deal is not None
    assert b_cy is not None
    await world.sync()
    assert world.b.links.get(b_deal.id) == {b_cy.id}


async def test_foreign_currency_converts_to_base(world: World) -> None:
    ann, _ = await _contacts(world)
    deal = world.a.put(
        "deals", {"title": "EU", "amount": "1000", "currency": "EUR", "stage": "Won", "closed": "2026-03-11"}
    )
    world.a.links[deal.id] = {ann}
    await world.sync()
    (entry,) = world.store.ledger_entries()
    assert entry.amount_base == Decimal("1100.00")


async def test_deal_read_back_before_its_associations_are_written_credits_nobody_less(world: World) -> None:
    ann, _ = await _contacts(world)
    deal = world.a.put(
        "deals", {"title": "Acme", "amount": "500", "currency": "USD", "stage": "Won", "closed": "2026-03-10"}
    )
    world.a.links[deal.id] = {ann}
    real_associate = type(world.engine.connector("b")).associate

    async def refuse(self: object, obj: str, links: object) -> object:
        raise ConnectionError("associations endpoint down")

    type(world.engine.connector("b")).associate = refuse  # type: ignore[method-assign]
    try:
        await world.sync()  # the deal is created in b, its association is not
        await world.sync()  # b's copy comes back with no contacts: not a change
    except ConnectionError:
        pass
    finally:
        type(world.engine.connector("b")).associate = real_associate  # type: ignore[method-assign]
    await world.sync()
    await world.sync()
    assert Decimal(str(world.b.find("contacts", "email", "ann@x.com").fields["revenue"])) == Decimal("500")
    assert [e.kind.value for e in world.store.ledger_entries()] == ["won"]


async def test_contact_taken_off_a_deal_is_no_longer_credited(world: World) -> None:
    ann, bob = await _contacts(world)
    deal = world.a.put("deals", {"title": "Acme", "amount": "900", "currency": "USD", "stage": "Open"})
    world.a.links[deal.id] = {ann, bob}
    await world.sync()
    link = world.store.get_link("a", "deals", deal.id)
    assert link is not None
    credited = {c.contact_golden_id for c in world.store.deal_contacts(link.golden_id)}
    assert len(credited) == 2
    world.a.links[deal.id] = {ann}
    world.a.put("deals", {"amount": "950"}, deal.id)
    await world.sync()
    ann_link = world.store.get_link("a", "contacts", ann)
    assert ann_link is not None
    assert [c.contact_golden_id for c in world.store.deal_contacts(link.golden_id)] == [ann_link.golden_id]


async def test_deal_waiting_for_a_contact_is_associated_once_the_contact_arrives_without_changing_itself(
    world: World,
) -> None:
    cy = world.a.put("contacts", {"email": "cy@x.com", "name": "Refused"})
    world.b.reject_values.add("Refused")
    deal = world.a.put("deals", {"title": "Early", "amount": "10", "stage": "Open", "currency": "USD"})
    world.a.links[deal.id] = {cy.id}
    await world.sync()
    b_deal = world.b.find("deals", "title", "Early")
    assert b_deal is not None
    assert world.b.find("contacts", "email", "cy@x.com") is None  # refused: the association waits for it
    assert not world.b.links.get(b_deal.id)
    await world.sync()  # reads back what the first cycle wrote (the deal's upsert key in a) and still waits
    assert not world.b.links.get(b_deal.id)

    world.b.reject_values.clear()
    world.clock.now += timedelta(minutes=5)  # the deal falls out of the lookback: only the waiting list names it
    world.a.put("contacts", {"name": "Cy"}, cy.id)
    await world.sync()
    b_cy = world.b.find("contacts", "email", "cy@x.com")
    assert b_cy is not None
    assert world.b.links.get(b_deal.id) == {b_cy.id}
