"""The Tooling API's CustomField create: how an app adds its own fields to an sObject of the emulated org."""

from __future__ import annotations

import itertools
import re
from typing import Any

from .org import Org, SfError
from .schema import SfField, make_id

# Metadata API field types the sandbox creates, as the describe type each one shows.
DESCRIBE_TYPES = {
    "Text": "string",
    "Number": "double",
    "Currency": "currency",
    "Date": "date",
    "DateTime": "datetime",
    "Checkbox": "boolean",
}
_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9]*(_[A-Za-z0-9]+)*__c$")
_ids = itertools.count(1)


def create_custom_field(org: Org, body: Any) -> tuple[int, dict[str, Any] | list[dict[str, Any]]]:
    """``POST /tooling/sobjects/CustomField``: the status and body Salesforce answers."""
    if not isinstance(body, dict) or not isinstance(body.get("Metadata"), dict):
        return 400, [SfError("JSON_PARSER_ERROR", "Metadata is required").single()]
    full_name = str(body.get("FullName") or "")
    object_name, _, field_name = full_name.partition(".")
    sobject = org.sobject(object_name)
    if sobject is None:
        return 400, [SfError("INVALID_TYPE", f"sObject type '{object_name}' is not supported.").single()]
    if not _NAME.match(field_name):
        message = f"Invalid field name {full_name!r}: a custom field's API name is letters, digits, underscores, __c"
        return 400, [SfError("FIELD_INTEGRITY_EXCEPTION", message).single()]
    if sobject.lookup(field_name) is not None:
        message = f"There is already a field named {field_name.removesuffix('__c')} on {sobject.name}."
        return 400, [SfError("DUPLICATE_DEVELOPER_NAME", message).single()]
    field = _field(field_name, body["Metadata"])
    if isinstance(field, SfError):
        return 400, [field.single()]
    org.add_field(sobject, field)
    return 201, {"id": make_id("00N", next(_ids)), "success": True, "errors": [], "warnings": [], "infos": []}


def _field(name: str, metadata: dict[str, Any]) -> SfField | SfError:
    kind = str(metadata.get("type") or "")
    if kind not in DESCRIBE_TYPES:
        valid = ", ".join(DESCRIBE_TYPES)
        return SfError("FIELD_INTEGRITY_EXCEPTION", f"Field type '{kind}' is not valid; valid: {valid}")
    length = int(metadata.get("length") or 0)
    if kind == "Text" and not 1 <= length <= 255:
        return SfError("FIELD_INTEGRITY_EXCEPTION", "Length must be between 1 and 255 for a Text field")
    external = bool(metadata.get("externalId"))
    return SfField(
        name,
        DESCRIBE_TYPES[kind],
        str(metadata.get("label") or name.removesuffix("__c").replace("_", " ")),
        external_id=external,
        unique=bool(metadata.get("unique")),
        length=length if kind == "Text" else 0,
    )
