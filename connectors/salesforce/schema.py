"""Salesforce describe and OpportunityStage rows turned into closeloop's ObjectSchema."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from closeloop.model import FieldInfo, FieldType, NativeRecord, ObjectSchema, OwnedField, StageInfo, parse_utc

FIELD_TYPES: Mapping[str, FieldType] = {
    "id": FieldType.ID,
    "reference": FieldType.REFERENCE,
    "string": FieldType.STRING,
    "textarea": FieldType.STRING,
    "url": FieldType.STRING,
    "encryptedstring": FieldType.STRING,
    "email": FieldType.EMAIL,
    "phone": FieldType.PHONE,
    "picklist": FieldType.PICKLIST,
    "multipicklist": FieldType.PICKLIST,
    "combobox": FieldType.PICKLIST,
    "boolean": FieldType.BOOLEAN,
    "currency": FieldType.DECIMAL,
    "double": FieldType.NUMBER,
    "percent": FieldType.NUMBER,
    "int": FieldType.NUMBER,
    "long": FieldType.NUMBER,
    "date": FieldType.DATE,
    "datetime": FieldType.DATETIME,
}
STAGE_OBJECT = "OpportunityStage"
STAGE_FIELDS = ("ApiName", "MasterLabel", "IsClosed", "IsWon", "DefaultProbability", "SortOrder", "IsActive")
# Compound and binary fields cannot be selected field by field in SOQL the way closeloop reads.
_UNSELECTABLE = frozenset({"address", "location", "base64", "complexvalue"})


def field_info(entry: Mapping[str, Any]) -> FieldInfo:
    """One describe field."""
    picklist = [p["value"] for p in entry.get("picklistValues") or [] if p.get("active", True)]
    return FieldInfo(
        name=entry["name"],
        type=FIELD_TYPES.get(entry.get("type", ""), FieldType.STRING),
        read_only=not (entry.get("createable") or entry.get("updateable")),
        picklist=tuple(picklist) if picklist else None,
        restricted=bool(entry.get("restrictedPicklist")),
        label=entry.get("label", ""),
    )


def object_schema(name: str, describe: Mapping[str, Any], stages: Sequence[StageInfo] = ()) -> ObjectSchema:
    """An sObject Describe answer as an ObjectSchema."""
    fields = {entry["name"]: field_info(entry) for entry in describe.get("fields") or []}
    return ObjectSchema(object=name, fields=fields, stages=tuple(stages))


def selectable(describe: Mapping[str, Any]) -> list[str]:
    """The fields a record read selects: every plain field describe lists."""
    return [e["name"] for e in describe.get("fields") or [] if e.get("type") not in _UNSELECTABLE]


def upsert_keys(describe: Mapping[str, Any]) -> frozenset[str]:
    """Fields an upsert may key on: external ids and idLookup fields."""
    return frozenset(e["name"] for e in describe.get("fields") or [] if e.get("externalId") or e.get("idLookup"))


def stage_infos(rows: Iterable[Mapping[str, Any]]) -> tuple[StageInfo, ...]:
    """OpportunityStage rows (active ones, in SortOrder) as StageInfo; probability as a 0..1 share."""
    stages = []
    for row in rows:
        probability = row.get("DefaultProbability")
        stages.append(
            StageInfo(
                value=row.get("ApiName") or row["MasterLabel"],
                label=row.get("MasterLabel") or row["ApiName"],
                is_closed=bool(row.get("IsClosed")),
                is_won=bool(row.get("IsWon")),
                probability=None if probability is None else float(probability) / 100,
            )
        )
    return tuple(stages)


def to_record(raw: Mapping[str, Any]) -> NativeRecord:
    """A query row as a NativeRecord: deleted and merged records from queryAll, converted leads as merged
    into their contact (the lead lives on as that contact and Salesforce refuses updates to it)."""
    fields = {k: v for k, v in raw.items() if k != "attributes"}
    deleted = bool(fields.get("IsDeleted"))
    merged_into = fields.get("MasterRecordId") or None
    if fields.get("IsConverted") and fields.get("ConvertedContactId"):
        deleted, merged_into = True, fields["ConvertedContactId"]
    return NativeRecord(
        id=str(fields["Id"]),
        modified_at=parse_utc(str(fields["SystemModstamp"])),
        fields=fields,
        deleted=deleted,
        merged_into=merged_into,
    )


# closeloop's field types as Metadata API custom field types (with their size); anything else is Text(255).
CUSTOM_FIELD_TYPES: dict[FieldType, dict[str, Any]] = {
    FieldType.DECIMAL: {"type": "Currency", "precision": 18, "scale": 2},
    FieldType.NUMBER: {"type": "Number", "precision": 18, "scale": 0},
    FieldType.DATE: {"type": "Date"},
    FieldType.DATETIME: {"type": "DateTime"},
}


def custom_field(obj: str, field: OwnedField) -> dict[str, Any]:
    """The Tooling API ``CustomField`` body that creates one of closeloop's fields on ``obj``."""
    if not field.name.endswith("__c"):
        raise ValueError(f"Salesforce custom fields end in __c; rename {field.name!r} in the mapping")
    metadata: dict[str, Any] = CUSTOM_FIELD_TYPES.get(field.type, {"type": "Text", "length": 255})
    metadata = {**metadata, "label": field.label[:40], "description": "Kept by closeloop; do not edit."}
    if field.unique:
        metadata |= {"externalId": True, "unique": True, "caseSensitive": False}
    return {"FullName": f"{obj}.{field.name}", "Metadata": metadata}
