"""The least time the vendors' limits allow for a cycle's calls: the bound benchmark 4 measures against.

A cycle has two phases, because the engine reads both sides before it writes anything (a record changed on both
sides is merged before a write goes out): the read phase, then the write phase. Within a phase the two systems
are independent, so the phase takes as long as the slower system; the phases add up.

- HubSpot answers at once (no latency in the sandbox); what it allows is a sliding window per bucket: 100 calls
  in any 10 s, and on top of it 5 search calls in any 1 s (searches count in both). The earliest schedule starts
  every call as soon as both of its windows have room, so a full window's burst goes at the start.
- Salesforce has no window worth the name here: every call takes 50 ms. Pages of one query follow one another
  (each names the next), so they cost 50 ms each in sequence; independent calls (writes, other objects) run up
  to 25 at a time.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from math import ceil


@dataclass(frozen=True)
class Limits:
    """The limits the sandboxes enforce in the benchmark."""

    hubspot_window: tuple[int, float] = (100, 10.0)
    hubspot_search: tuple[int, float] = (5, 1.0)
    salesforce_latency: float = 0.05
    salesforce_concurrency: int = 25


@dataclass(frozen=True)
class PhaseCalls:
    """The calls of one phase, as the limits see them."""

    name: str
    hubspot_search: int = 0
    """HubSpot search calls: they spend the search bucket and the window."""
    hubspot_other: int = 0
    """Every other HubSpot call: it spends the window."""
    salesforce_sequential: int = 0
    """Salesforce calls that must follow one another (the pages of one query)."""
    salesforce_concurrent: int = 0
    """Salesforce calls that may overlap (writes; the first page of another object's query)."""


@dataclass(frozen=True)
class PhaseBound:
    """The least time one phase can take, with each system's part."""

    calls: PhaseCalls
    hubspot_seconds: float
    salesforce_seconds: float

    @property
    def seconds(self) -> float:
        """The phase lasts as long as its slower system."""
        return max(self.hubspot_seconds, self.salesforce_seconds)


@dataclass
class Sliding:
    """At most ``requests`` starts in any ``seconds``: the vendor's count, on the bound's clock."""

    requests: int
    seconds: float
    starts: deque[float] = field(default_factory=deque)

    def free_at(self, t: float) -> float:
        """The earliest moment at or after ``t`` when one more call may start."""
        while self.starts and self.starts[0] + self.seconds <= t:
            self.starts.popleft()
        return t if len(self.starts) < self.requests else self.starts[0] + self.seconds


def _hubspot(start: float, calls: PhaseCalls, window: Sliding, search: Sliding) -> float:
    """When the last HubSpot call of the phase can start (= end: no latency), searches first when both fit."""
    searches, others, t, last = calls.hubspot_search, calls.hubspot_other, start, start
    while searches or others:
        window_at = window.free_at(t)
        search_at = max(window_at, search.free_at(t)) if searches else float("inf")
        other_at = window_at if others else float("inf")
        t = min(search_at, other_at)
        window.starts.append(t)
        if search_at <= other_at:
            search.starts.append(t)
            searches -= 1
        else:
            others -= 1
        last = t
    return last - start


def _salesforce(calls: PhaseCalls, limits: Limits) -> float:
    """One chain of sequential calls next to waves of concurrent ones, 50 ms a call."""
    chain = calls.salesforce_sequential * limits.salesforce_latency
    waves = ceil(calls.salesforce_concurrent / limits.salesforce_concurrency) * limits.salesforce_latency
    return max(chain, waves)


def bound(phases: list[PhaseCalls], limits: Limits | None = None) -> list[PhaseBound]:
    """Each phase's least time, phases one after another, HubSpot's windows carried across them (empty at first)."""
    limits = limits or Limits()
    window, search = Sliding(*limits.hubspot_window), Sliding(*limits.hubspot_search)
    result: list[PhaseBound] = []
    clock = 0.0
    for calls in phases:
        phase = PhaseBound(calls, _hubspot(clock, calls, window, search), _salesforce(calls, limits))
        result.append(phase)
        clock += phase.seconds
    return result
