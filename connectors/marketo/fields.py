"""closeloop's own lead fields, created through Create Lead Fields (``POST /rest/v1/leads/schema/fields.json``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from closeloop.model import FieldType, OwnedField

from .api import MarketoApi, MarketoError

DATA_TYPES = {
    FieldType.DECIMAL: "currency",
    FieldType.NUMBER: "integer",
    FieldType.DATE: "date",
    FieldType.DATETIME: "datetime",
}
"""closeloop's field types as Marketo data types; anything else is a string."""


def field_input(field: OwnedField) -> dict[str, Any]:
    """One Create Lead Fields input."""
    return {
        "name": field.name,
        "displayName": field.label,
        "dataType": DATA_TYPES.get(field.type, "string"),
        "description": "Kept by closeloop; do not edit.",
    }


async def create_lead_fields(api: MarketoApi, fields: Sequence[OwnedField]) -> None:
    """Create the fields; one that exists already (another replica made it) is left as it is."""
    # Safe to repeat: a field made by an attempt whose answer was lost is skipped as existing below.
    inputs = {"input": [field_input(f) for f in fields]}
    body = await api.post("/rest/v1/leads/schema/fields.json", inputs, idempotent=True)
    for result in body.get("result") or []:
        if result.get("status") == "created":
            continue
        reasons = result.get("reasons") or [{}]
        message = str(reasons[0].get("message") or "")
        if "already exists" not in message:
            raise MarketoError(str(reasons[0].get("code") or "skipped"), f"lead field {result.get('name')}: {message}")
