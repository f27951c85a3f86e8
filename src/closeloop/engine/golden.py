"""The golden record as the engine sees it: per-field state (value, who set it, when) over the store's fields.

The store keeps canonical values as plain JSON and the provenance of each value (system and that system's
modified time) in a column of its own; the store stays ignorant of merge rules.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache

from closeloop.engine.fieldmerge import FieldState
from closeloop.model import parse_utc, utc
from closeloop.store.rows import FieldValue, Golden


@dataclass
class GoldenState:
    """Every field of one golden record with its provenance."""

    id: str
    entity: str
    fields: dict[str, FieldState] = field(default_factory=dict)
    deleted: bool = False

    @classmethod
    def decode(cls, stored: Golden) -> GoldenState:
        """Read a stored golden record: its values, and who set each (its own column)."""
        provenance = stored.provenance
        unknown = (None, None)
        states = {}
        for name, value in stored.fields.items():
            by, at = provenance.get(name, unknown)
            states[name] = FieldState(value, by, _moment(at) if at else None)
        return cls(stored.id, stored.entity, states, stored.deleted)

    def encode(self) -> tuple[str, str, dict[str, FieldValue], dict[str, list[str | None]]]:
        """The record as the store takes it: (id, entity, fields, provenance)."""
        stored: dict[str, FieldValue] = {name: state.value for name, state in self.fields.items()}
        provenance: dict[str, list[str | None]] = {
            name: [state.by, _stamp(state.at) if state.at else None] for name, state in self.fields.items() if state.by
        }
        return self.id, self.entity, stored, provenance

    def values(self) -> dict[str, FieldValue]:
        """Canonical values only."""
        return {name: state.value for name, state in self.fields.items()}


@lru_cache(maxsize=4096)
def _stamp(moment: datetime) -> str:
    """A provenance time as stored (the fields of one record mostly share one, so it is formatted once)."""
    return utc(moment).isoformat()


@lru_cache(maxsize=4096)
def _moment(text: str) -> datetime:
    """A provenance time (the fields of one record mostly share one, so it is parsed once)."""
    return parse_utc(text)
