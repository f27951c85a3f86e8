"""Seeded fake people and deals for the emulators: realistic, reproducible, fast enough for a million rows."""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from itertools import accumulate

from faker import Faker

SOURCES: tuple[tuple[str, str, str, float], ...] = (
    # (original source, utm_source, utm_medium, weight)
    ("organic_search", "google", "organic", 0.28),
    ("paid_search", "google", "cpc", 0.18),
    ("paid_social", "linkedin", "paid_social", 0.12),
    ("email", "newsletter", "email", 0.12),
    ("referral", "partner", "referral", 0.10),
    ("direct", "", "", 0.12),
    ("events", "webinar", "event", 0.08),
)
CAMPAIGNS = ("spring-launch", "q3-webinar-series", "brand-search", "retargeting", "partner-week", "")
LIFECYCLE = ("subscriber", "lead", "mql", "sql", "opportunity", "customer")
LIFECYCLE_WEIGHTS = (0.15, 0.35, 0.2, 0.12, 0.1, 0.08)
DEAL_STAGES = ("discovery", "qualified", "proposal", "negotiation", "won", "lost")
DEAL_STAGE_WEIGHTS = (0.2, 0.2, 0.15, 0.1, 0.2, 0.15)
DEAL_KINDS = ("Pilot", "Annual", "Expansion", "Renewal")
CURRENCIES = ("USD", "USD", "USD", "EUR", "GBP")
# Cumulative weights, worked out once: random.choices(weights=...) would sum them again for every person.
_SOURCE_CUM_WEIGHTS = list(accumulate(source[3] for source in SOURCES))
_LIFECYCLE_CUM_WEIGHTS = list(accumulate(LIFECYCLE_WEIGHTS))
_DEAL_STAGE_CUM_WEIGHTS = list(accumulate(DEAL_STAGE_WEIGHTS))


@dataclass(frozen=True, slots=True)
class Person:
    """A seeded person, in vendor-neutral terms each sandbox renders into its own fields."""

    index: int
    first_name: str
    last_name: str
    email: str
    phone: str
    company: str
    title: str
    source: str
    utm_source: str
    utm_medium: str
    utm_campaign: str
    lifecycle: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class Deal:
    """A seeded deal credited to one or more people (by index)."""

    index: int
    name: str
    amount: Decimal
    currency: str
    stage: str
    close_date: datetime
    people: tuple[int, ...]


@dataclass
class Seeder:
    """Generates people and deals from a fixed seed; pools of Faker names keep a million rows fast."""

    seed: int = 0
    start: datetime = field(default_factory=lambda: datetime(2026, 1, 5, 9, 0, tzinfo=UTC))
    _rng: random.Random = field(init=False)
    _pools: dict[str, list[str]] = field(init=False)
    _each: random.Random = field(init=False)
    """Reseeded for each person or deal: the same draws as a new Random(seed), without making one."""

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)
        self._each = random.Random()
        fake = Faker("en_US")
        fake.seed_instance(self.seed)
        self._pools = {
            "first": [fake.first_name() for _ in range(400)],
            "last": [fake.last_name() for _ in range(600)],
            "company": [fake.company() for _ in range(300)],
            "title": [fake.job() for _ in range(120)],
            "domain": [fake.domain_name() for _ in range(200)],
        }

    def people(self, count: int, *, offset: int = 0) -> Iterator[Person]:
        """``count`` people with unique emails, indexes starting at ``offset``."""
        for index in range(offset, offset + count):
            yield self.person(index)

    def person(self, index: int) -> Person:
        """The person at ``index`` (same seed, same index: same person)."""
        rng = self._each
        rng.seed(self.seed * 1_000_003 + index)
        first, last = rng.choice(self._pools["first"]), rng.choice(self._pools["last"])
        source, utm_source, utm_medium, _ = rng.choices(SOURCES, cum_weights=_SOURCE_CUM_WEIGHTS)[0]
        campaign = "" if source in ("direct", "organic_search") else rng.choice(CAMPAIGNS)
        domain = rng.choice(self._pools["domain"])
        return Person(
            index=index,
            first_name=first,
            last_name=last,
            email=f"{first}.{last}.{index}@{domain}".lower().replace(" ", "").replace("'", ""),
            phone=f"+1 {rng.randint(201, 989)} {rng.randint(200, 999)} {rng.randint(1000, 9999)}",
            company=rng.choice(self._pools["company"]),
            title=rng.choice(self._pools["title"]),
            source=source,
            utm_source=utm_source,
            utm_medium=utm_medium,
            utm_campaign=campaign,
            lifecycle=rng.choices(LIFECYCLE, cum_weights=_LIFECYCLE_CUM_WEIGHTS)[0],
            created_at=self.start + timedelta(minutes=7 * index + rng.randint(0, 6)),
        )

    def deals(self, count: int, people: int) -> Iterator[Deal]:
        """``count`` deals, each credited to 1-3 of the first ``people`` people."""
        for index in range(count):
            rng = self._each
            rng.seed(self.seed * 7_000_003 + index)
            credited = tuple(sorted(rng.sample(range(people), k=min(people, rng.choice((1, 1, 2, 3))))))
            yield Deal(
                index=index,
                name=f"{rng.choice(self._pools['company'])} - {rng.choice(DEAL_KINDS)}",
                amount=Decimal(rng.randrange(1_000, 120_000, 250)),
                currency=rng.choice(CURRENCIES),
                stage=rng.choices(DEAL_STAGES, cum_weights=_DEAL_STAGE_CUM_WEIGHTS)[0],
                close_date=self.start + timedelta(days=30 + rng.randint(0, 300)),
                people=credited,
            )
