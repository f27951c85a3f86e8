"""Fencing: a run commits a page only while its connection's lease is still the one it started with.

A replica learns that it lost a lease (its lease session ended) at its next lease tick; until then its run could
go on committing while another replica, having taken the lease, runs the same connection. The fence closes that
window. Each take of a lease writes a new *generation* (a number from one sequence, never reused) into the
lease's row; a run remembers the generation it started under, and every transaction of the run first reads the
row ``FOR SHARE`` and compares. A takeover rewrites the row, so it waits for a page in flight to commit, and every
page after it finds another generation (or no row) and rolls back with :class:`LeaseLost`: the stale run commits
nothing more, and the new holder's run starts from everything the old one committed.

The fence travels with the run's task (a context variable), so the store needs no argument for it and the engine
none at all; a store with no fence set (SQLite, a single node) checks nothing.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

from closeloop.store.db import StoreError

__all__ = ["Fence", "LeaseLost", "current_fences", "fenced", "stale"]


@dataclass(frozen=True, slots=True)
class Fence:
    """The lease a run holds: its connection and the generation written when the lease was taken."""

    connection: str
    generation: int


class LeaseLost(StoreError):
    """The run's lease was taken over (or given up) since the run started: its transaction was rolled back."""


_FENCES: ContextVar[tuple[Fence, ...]] = ContextVar("closeloop_fences", default=())


def current_fences() -> tuple[Fence, ...]:
    """The leases the current task's transactions must still hold (none outside a fenced run)."""
    return _FENCES.get()


@contextmanager
def fenced(fence: Fence) -> Iterator[None]:
    """Inside the block (and in tasks and threads started from it), every store transaction checks ``fence``."""
    token = _FENCES.set((*_FENCES.get(), fence))
    try:
        yield
    finally:
        _FENCES.reset(token)


def stale(fences: tuple[Fence, ...], found: dict[str, int]) -> list[Fence]:
    """The fences whose lease row is gone or carries another generation (``found``: connection -> generation)."""
    return [fence for fence in fences if found.get(fence.connection) != fence.generation]
