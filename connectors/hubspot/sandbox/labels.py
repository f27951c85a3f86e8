"""v4 association labels: the labelled types a pair of objects offers, and which of them each link carries."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from .catalog import ASSOCIATION_TYPES

# One paired USER_DEFINED label between deals and contacts, as a portal admin would create it in settings.
USER_LABELS: dict[tuple[str, str], dict[int, str]] = {
    ("deals", "contacts"): {101: "Decision maker"},
    ("contacts", "deals"): {102: "Decision maker"},
}
INVERSE = {101: 102, 102: 101}
Kind = tuple[str, int]
"""(associationCategory, associationTypeId)."""


def kinds(pair: tuple[str, str], specs: Any) -> list[Kind]:
    """The association kinds a labelled-create body names; ValueError says which one the pair does not have."""
    if not isinstance(specs, list) or not specs:
        raise ValueError("The request body must be a non-empty list of association specs")
    found: list[Kind] = []
    for spec in specs:
        category = spec.get("associationCategory") if isinstance(spec, dict) else None
        type_id = spec.get("associationTypeId") if isinstance(spec, dict) else None
        known = (category == "HUBSPOT_DEFINED" and type_id == ASSOCIATION_TYPES[pair]) or (
            category == "USER_DEFINED" and type_id in USER_LABELS.get(pair, {})
        )
        if not known:
            raise ValueError(f"{category} association type {type_id} does not exist between {pair[0]} and {pair[1]}")
        found.append((str(category), int(type_id)))
    return found


@dataclass
class Labels:
    """The labelled kinds of each directed link (the unlabelled default kind is implied by the link itself)."""

    of: dict[tuple[str, str, str, str], set[Kind]] = field(default_factory=dict)

    def add(self, from_type: str, from_id: str, to_type: str, to_id: str, added: Iterable[Kind]) -> None:
        """Record the USER_DEFINED kinds of a link, and their inverses on the link back."""
        for category, type_id in added:
            if category == "USER_DEFINED":
                self.of.setdefault((from_type, from_id, to_type, to_id), set()).add((category, type_id))
                self.of.setdefault((to_type, to_id, from_type, from_id), set()).add((category, INVERSE[type_id]))

    def drop(self, from_type: str, from_id: str, to_type: str, to_id: str) -> None:
        """Forget every label of a link, both ways."""
        self.of.pop((from_type, from_id, to_type, to_id), None)
        self.of.pop((to_type, to_id, from_type, from_id), None)

    def names(self, from_type: str, from_id: str, to_type: str, to_id: str) -> list[str]:
        """The label texts of a link."""
        kinds = sorted(self.of.get((from_type, from_id, to_type, to_id), ()))
        return [USER_LABELS[(from_type, to_type)][type_id] for _, type_id in kinds]

    def association_types(self, from_type: str, from_id: str, to_type: str, to_id: str) -> list[dict[str, Any]]:
        """``associationTypes[]`` of a link: the default kind (label null, as HubSpot answers) and its labels."""
        types: list[dict[str, Any]] = [
            {"category": "HUBSPOT_DEFINED", "typeId": ASSOCIATION_TYPES[(from_type, to_type)], "label": None}
        ]
        for category, type_id in sorted(self.of.get((from_type, from_id, to_type, to_id), ())):
            types.append({"category": category, "typeId": type_id, "label": USER_LABELS[(from_type, to_type)][type_id]})
        return types
