"""The seeder's people and deals stay the same for a seed: a faster person() draws exactly what it always drew."""

from __future__ import annotations

import random
from datetime import timedelta
from decimal import Decimal

import pytest

from closeloop.sandbox.seed import (
    CAMPAIGNS,
    CURRENCIES,
    DEAL_KINDS,
    DEAL_STAGE_WEIGHTS,
    DEAL_STAGES,
    LIFECYCLE,
    LIFECYCLE_WEIGHTS,
    SOURCES,
    Deal,
    Person,
    Seeder,
)


def reference_person(seeder: Seeder, index: int) -> Person:
    """person() as first written: a new Random per person, weights summed per draw."""
    pools = seeder._pools
    rng = random.Random(seeder.seed * 1_000_003 + index)
    first, last = rng.choice(pools["first"]), rng.choice(pools["last"])
    source, utm_source, utm_medium, _ = rng.choices(SOURCES, weights=[s[3] for s in SOURCES])[0]
    campaign = "" if source in ("direct", "organic_search") else rng.choice(CAMPAIGNS)
    domain = rng.choice(pools["domain"])
    return Person(
        index=index,
        first_name=first,
        last_name=last,
        email=f"{first}.{last}.{index}@{domain}".lower().replace(" ", "").replace("'", ""),
        phone=f"+1 {rng.randint(201, 989)} {rng.randint(200, 999)} {rng.randint(1000, 9999)}",
        company=rng.choice(pools["company"]),
        title=rng.choice(pools["title"]),
        source=source,
        utm_source=utm_source,
        utm_medium=utm_medium,
        utm_campaign=campaign,
        lifecycle=rng.choices(LIFECYCLE, weights=LIFECYCLE_WEIGHTS)[0],
        created_at=seeder.start + timedelta(minutes=7 * index + rng.randint(0, 6)),
    )


def reference_deal(seeder: Seeder, index: int, people: int) -> Deal:
    rng = random.Random(seeder.seed * 7_000_003 + index)
    credited = tuple(sorted(rng.sample(range(people), k=min(people, rng.choice((1, 1, 2, 3))))))
    return Deal(
        index=index,
        name=f"{rng.choice(seeder._pools['company'])} - {rng.choice(DEAL_KINDS)}",
        amount=Decimal(rng.randrange(1_000, 120_000, 250)),
        currency=rng.choice(CURRENCIES),
        stage=rng.choices(DEAL_STAGES, weights=DEAL_STAGE_WEIGHTS)[0],
        close_date=seeder.start + timedelta(days=30 + rng.randint(0, 300)),
        people=credited,
    )


@pytest.mark.parametrize("seed", [0, 1, 7, 12345])
def test_people_and_deals_are_what_the_seed_always_gave(seed: int) -> None:
    seeder = Seeder(seed)
    assert list(seeder.people(300, offset=1000)) == [reference_person(seeder, i) for i in range(1000, 1300)]
    assert list(seeder.deals(100, 300)) == [reference_deal(seeder, i, 300) for i in range(100)]


def test_a_person_does_not_depend_on_what_was_drawn_before() -> None:
    seeder = Seeder(3)
    alone = Seeder(3).person(42)
    next(seeder.deals(1, 10))
    assert seeder.person(42) == alone
