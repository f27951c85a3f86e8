"""Zoho field metadata (``/settings/fields``, ``/settings/pipeline``) turned into closeloop's ObjectSchema."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from closeloop.model import FieldInfo, FieldType, ObjectSchema, OwnedField, StageInfo

MODIFIED_TIME = "Modified_Time"
STAGE = "Stage"

TYPES: Mapping[str, FieldType] = {
    "text": FieldType.STRING,
    "textarea": FieldType.STRING,
    "website": FieldType.STRING,
    "autonumber": FieldType.STRING,
    "email": FieldType.EMAIL,
    "phone": FieldType.PHONE,
    "integer": FieldType.NUMBER,
    "bigint": FieldType.NUMBER,
    "long": FieldType.NUMBER,
    "double": FieldType.DECIMAL,
    "currency": FieldType.DECIMAL,
    "decimal": FieldType.DECIMAL,
    "percent": FieldType.DECIMAL,
    "boolean": FieldType.BOOLEAN,
    "date": FieldType.DATE,
    "datetime": FieldType.DATETIME,
    "picklist": FieldType.PICKLIST,
    "multiselectpicklist": FieldType.PICKLIST,
    "lookup": FieldType.REFERENCE,
    "ownerlookup": FieldType.REFERENCE,
    "userlookup": FieldType.REFERENCE,
}


class MissingFieldError(LookupError):
    """A module lacks a field closeloop cannot work without (e.g. Modified_Time on a custom module)."""


def require_field(schema: ObjectSchema, name: str, purpose: str) -> None:
    """Fail with a message naming the module and the field when ``schema`` lacks ``name``."""
    if name not in schema.fields:
        raise MissingFieldError(
            f"Zoho module {schema.object!r} has no field {name!r} in its field metadata, "
            f"so closeloop cannot {purpose}; add the field to the module's layout or leave the module out "
            "of the mapping"
        )


def field_info(entry: Mapping[str, Any]) -> FieldInfo:
    """One ``fields[]`` entry of Zoho's field metadata as a FieldInfo."""
    name = str(entry["api_name"])
    operations = entry.get("operation_type") or {}
    writable = operations.get("api_create", True) or operations.get("api_update", True)
    values = entry.get("pick_list_values") or []
    picklist = tuple(str(v["actual_value"]) for v in values) if values else None
    return FieldInfo(
        name=name,
        type=TYPES.get(str(entry.get("data_type")), FieldType.STRING),
        read_only=bool(entry.get("read_only") or entry.get("field_read_only") or not writable),
        picklist=picklist,
        # Ordinary picklists take unknown values through the API; Stage must be a stage of the pipeline.
        restricted=name == STAGE and picklist is not None,
        label=str(entry.get("field_label") or entry.get("display_label") or name),
    )


def stage_info(entry: Mapping[str, Any], pipeline: str | None = None) -> StageInfo:
    """A Stage picklist value or pipeline map with Zoho's forecast type ("Open", "Closed Won", "Closed Lost")."""
    forecast = str(entry.get("forecast_type") or "Open")
    probability = entry.get("probability")
    return StageInfo(
        value=str(entry["actual_value"]),
        label=str(entry.get("display_value") or entry["actual_value"]),
        is_closed=forecast.startswith("Closed"),
        is_won=forecast == "Closed Won",
        probability=float(probability) / 100 if probability is not None else None,
        pipeline=pipeline,
    )


def object_schema(module: str, entries: Sequence[Mapping[str, Any]]) -> ObjectSchema:
    """The schema of ``module``; the Stage picklist carries the stage metadata when it has forecast types."""
    fields = {"id": FieldInfo("id", FieldType.ID, read_only=True, label="Record Id")}
    stages: tuple[StageInfo, ...] = ()
    for entry in entries:
        info = field_info(entry)
        fields[info.name] = info
        if info.name == STAGE:
            values = entry.get("pick_list_values") or []
            if values and all("forecast_type" in v for v in values):
                stages = tuple(stage_info(v) for v in values)
    return ObjectSchema(object=module, fields=fields, stages=stages)


def pipeline_stages(payload: Mapping[str, Any]) -> tuple[StageInfo, ...]:
    """Stages of every pipeline in a ``/settings/pipeline`` answer."""
    return tuple(
        stage_info(entry, str(pipeline.get("actual_value")))
        for pipeline in payload.get("pipeline") or []
        for entry in pipeline.get("maps") or []
    )


def layout_id(entries: Sequence[Mapping[str, Any]]) -> str | None:
    """The layout the Stage field belongs to (what ``/settings/pipeline`` asks for)."""
    for entry in entries:
        if entry.get("api_name") == STAGE:
            for layout in entry.get("layout_associations") or []:
                return str(layout["id"])
    return None


CUSTOM_TYPES = {FieldType.DECIMAL: "currency", FieldType.NUMBER: "integer", FieldType.DATE: "date",
                FieldType.DATETIME: "datetime"}  # fmt: skip
"""closeloop's field types as Zoho data types; anything else is text."""


def custom_field(field: OwnedField) -> dict[str, Any]:
    """The ``POST /settings/fields`` entry that creates one of closeloop's fields.

    Zoho derives the API name from the label (spaces become underscores), so the label spells the API name.
    """
    data_type = CUSTOM_TYPES.get(field.type, "text")
    entry: dict[str, Any] = {"field_label": field.name.replace("_", " "), "data_type": data_type}
    if data_type == "text":
        entry["length"] = 255
    if field.unique:
        entry["unique"] = {"casesensitive": "false"}
    return entry
