"""What one sync cycle of one connection shares: the store, the connectors, schemas, counts, the clock."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from closeloop.config.models import Connection, EntityMapping, LoopConfig
from closeloop.connector import Connector
from closeloop.model import ObjectSchema
from closeloop.store.api import StateStore


@dataclass
class CycleContext:
    """The state one cycle of one connection works with."""

    store: StateStore
    connection: Connection
    connectors: dict[str, Connector]
    loop: LoopConfig
    clock: Callable[[], datetime]
    schemas: dict[tuple[str, str], ObjectSchema] = field(default_factory=dict)
    counts: Counter[str] = field(default_factory=Counter)
    won_stages: frozenset[str] = frozenset()
    """Canonical deal stage values that mean closed-won."""
    dry_run: bool = False
    on_count: Callable[[str, int], None] | None = None
    """Observer of every counter change (progress bars, metrics)."""
    deals: set[str] = field(default_factory=set)
    """Golden deals touched or written this cycle: their associations are checked after the drain."""

    @property
    def name(self) -> str:
        """The connection's name."""
        return self.connection.name

    def schema(self, system: str, obj: str) -> ObjectSchema | None:
        """The described schema of a native object, when it has been described this cycle."""
        return self.schemas.get((system, obj))

    def count(self, what: str, system: str | None = None, n: int = 1) -> None:
        """Add to a run counter (``created``, ``updated``, ``quarantined``... optionally per system)."""
        self.counts[what] += n
        if self.on_count is not None:
            self.on_count(what, n)
        if system:
            self.counts[f"{what}:{system}"] += n

    def mapping_of(self, system: str, obj: str) -> EntityMapping | None:
        """The entity mapping that includes ``obj`` of ``system``."""
        return next((m for m in self.connection.mappings if obj in m.objects(system)), None)
