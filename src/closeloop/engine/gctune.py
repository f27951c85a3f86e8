"""Python's cycle collector tuned for a sync: fewer young-generation passes while pages are applied.

A page makes tens of thousands of short-lived objects (records, field states, rows) that reference counting frees
on its own; with the default thresholds (700 allocations) the collector runs every few records and, every tenth
pass or so, walks every tracked object alive, a tenth of a first sync's CPU. During a cycle the young generation's
threshold is raised so that collections are rare; cyclic garbage is still collected, only later. The previous
thresholds come back when the cycle ends, whatever way it ends.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

SYNC_THRESHOLDS = (50_000, 20, 20)
"""Allocations between young collections, and young / middle passes between older ones, during a sync."""


_outer: list[tuple[int, ...]] = []
"""The thresholds found by the outermost tuned block still running, once per running block (cycles of several
connections may overlap in one process: the last one to end restores them)."""


@contextmanager
def collector_tuned() -> Iterator[None]:
    """Run the block with :data:`SYNC_THRESHOLDS` (never lowering a threshold); restore them when the last
    overlapping block ends."""
    before = _outer[0] if _outer else gc.get_threshold()
    _outer.append(before)
    gc.set_threshold(*(max(a, b) for a, b in zip(SYNC_THRESHOLDS, before, strict=True)))
    try:
        yield
    finally:
        _outer.pop()
        if not _outer:
            gc.set_threshold(*before)
