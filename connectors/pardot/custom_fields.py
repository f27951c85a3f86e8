"""closeloop's own prospect fields, created as v5 custom fields (``POST /objects/custom-fields``).

A custom field is created by its Field ID; prospect bodies and ``fields`` name it by its apiFieldId, the Field
ID plus ``__c``, which is how mappings name it. Account Engagement has no date-time custom field: a date-time
rollup is kept as text.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from closeloop.model import FieldType

from .api import API, PardotApi, PardotError
from .fields import CUSTOM_SUFFIX

KINDS = {FieldType.DECIMAL: "Number", FieldType.NUMBER: "Number", FieldType.DATE: "Date"}
"""Canonical type -> custom field type; anything else is Text."""


class NewField(Protocol):
    """What the setup step asks for: the field's name in the mapping, its canonical type and a label."""

    @property
    def name(self) -> str: ...

    @property
    def type(self) -> FieldType: ...

    @property
    def label(self) -> str: ...


class CustomFieldName(ValueError):
    """A mapping names a closeloop field that cannot be an Account Engagement custom field."""


async def create_custom_fields(api: PardotApi, fields: Sequence[NewField]) -> None:
    """Create each field; one that exists already (an earlier attempt's answer lost) counts as created."""
    for field in fields:
        if not field.name.endswith(CUSTOM_SUFFIX) or len(field.name) == len(CUSTOM_SUFFIX):
            raise CustomFieldName(
                f"prospect field {field.name!r} cannot be created: a custom field's v5 name is its Field ID "
                f"followed by {CUSTOM_SUFFIX} (e.g. closeloop_revenue{CUSTOM_SUFFIX})"
            )
        body = {
            "name": field.label or field.name,
            "fieldId": field.name.removesuffix(CUSTOM_SUFFIX),
            "type": KINDS.get(field.type, "Text"),
        }
        try:
            await api.call(
                "POST", f"{API}/custom-fields", params={"fields": "id,apiFieldId"}, body=body, idempotent=True
            )
        except PardotError:
            if field.name not in await existing(api):
                raise


async def existing(api: PardotApi) -> set[str]:
    """The apiFieldIds of the business unit's custom fields."""
    body = (await api.call("GET", f"{API}/custom-fields", params={"fields": "apiFieldId"})).json()
    return {str(value["apiFieldId"]) for value in body.get("values") or []}
