"""A contact's original source: the first-known way it found us, captured once and kept."""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from datetime import datetime

from closeloop.model import utc


@dataclass(frozen=True, slots=True)
class OriginalSource:
    """A contact's first-known original source; blank strings are stored as None."""

    source_type: str | None = None
    detail: str | None = None
    utm_source: str | None = None
    utm_medium: str | None = None
    utm_campaign: str | None = None
    first_touch_at: datetime | None = None
    system: str | None = None
    """The system that reported this source first."""

    def __post_init__(self) -> None:
        for name in ("source_type", "detail", "utm_source", "utm_medium", "utm_campaign", "system"):
            value = getattr(self, name)
            object.__setattr__(self, name, (value.strip() or None) if isinstance(value, str) else None)
        if self.first_touch_at is not None:
            object.__setattr__(self, "first_touch_at", utc(self.first_touch_at))

    @property
    def is_blank(self) -> bool:
        """True when no field is known."""
        return all(getattr(self, f.name) is None for f in fields(self))


def merge_original_source(existing: OriginalSource | None, candidate: OriginalSource) -> OriginalSource:
    """Merge a newly reported source into the kept one, write-once.

    The earlier first touch wins when both are known; otherwise the existing source stays. Either way a set
    value is never replaced by a blank: the winner's blanks are filled from the other source.
    """
    if existing is None:
        return candidate
    primary, secondary = existing, candidate
    if (
        candidate.first_touch_at is not None
        and existing.first_touch_at is not None
        and candidate.first_touch_at < existing.first_touch_at
    ):
        primary, secondary = candidate, existing
    filled = {
        f.name: getattr(secondary, f.name)
        for f in fields(primary)
        if getattr(primary, f.name) is None and getattr(secondary, f.name) is not None
    }
    return replace(primary, **filled) if filled else primary
