"""Prospect bodies of the emulator: rendering the asked fields, and checking what a write may carry."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta, timezone
from typing import Any

from closeloop.model import FieldType, parse_utc, utc
from closeloop.sandbox.records import Row

from ..fields import CUSTOM_SUFFIX, CUSTOM_TYPES, STANDARD, WRITABLE
from .query import QueryError

USER_TIMEZONE = timezone(timedelta(hours=-5))
"""v5 reports times in the API user's time zone; the emulated user sits at UTC-05:00."""
TIMESTAMPS = {"createdAt", "updatedAt"}


def stamp(moment: datetime | None) -> str | None:
    """A timestamp as v5 writes it: ISO 8601 in the user's zone, with its offset."""
    return None if moment is None else utc(moment).astimezone(USER_TIMEZONE).isoformat(timespec="seconds")


def asked_fields(raw: str | None, known: set[str]) -> list[str]:
    """The ``fields`` parameter, required on every read; unknown names are refused (code 51)."""
    if not raw or not raw.strip():
        raise QueryError(400, 13, "Required parameter missing: fields")
    names = [name.strip() for name in raw.split(",") if name.strip()]
    unknown = [name for name in names if name not in known]
    if unknown:
        raise QueryError(400, 51, f"Invalid parameter: fields. '{unknown[0]}' is an invalid or unknown field")
    return names


def render(row: Row, names: list[str], related: Mapping[str, Mapping[int, Mapping[str, Any]]]) -> dict[str, Any]:
    """A record with exactly the asked fields; ``relation.field`` reads a related record (dot notation)."""
    out: dict[str, Any] = {}
    for name in names:
        if name == "id":
            out[name] = int(row.id)
        elif name == "createdAt":
            out[name] = stamp(row.created_at)
        elif name == "updatedAt":
            out[name] = stamp(row.modified_at)
        elif name == "isDeleted":
            out[name] = row.deleted
        elif "." in name:
            relation, _, field = name.partition(".")
            target = related.get(relation, {}).get(row.fields.get(f"{relation}Id") or 0)
            out[name] = None if target is None else target.get(field)
        else:
            value = row.fields.get(name)
            out[name] = stamp(value) if isinstance(value, datetime) else value
    return out


def checked_body(body: Any, custom: Mapping[str, str]) -> dict[str, Any]:
    """A create/update body's values, converted; unknown (154), read-only (180) or bad (4, 85) ones refuse it.

    ``custom`` maps each custom field's apiFieldId to its type.
    """
    if not isinstance(body, dict):
        raise QueryError(400, 152, "Invalid request body: a JSON object is required")
    values: dict[str, Any] = {}
    for name, value in body.items():
        if name in custom:
            values[name] = _custom_value(name, custom[name], value)
        elif name not in STANDARD:
            raise QueryError(400, 154, f"Invalid property specified: '{name}'")
        elif name not in WRITABLE:
            raise QueryError(400, 180, f"The field '{name}' is not writable")
        else:
            values[name] = _standard_value(name, value)
    return values


def _standard_value(name: str, value: Any) -> Any:
    if value in (None, ""):
        return None
    kind = STANDARD[name]
    if kind is FieldType.EMAIL and (not isinstance(value, str) or "@" not in value):
        raise QueryError(400, 4, f"Invalid prospect email address: '{value}'")
    if kind is FieldType.BOOLEAN and not isinstance(value, bool):
        raise QueryError(400, 85, f"Unable to save the prospect: '{name}' must be true or false")
    if kind in (FieldType.NUMBER, FieldType.REFERENCE):
        if isinstance(value, bool) or not str(value).lstrip("-").isdigit():
            raise QueryError(400, 85, f"Unable to save the prospect: '{name}' must be an integer")
        return int(value)
    return value if isinstance(value, bool) else str(value)


def _custom_value(name: str, kind: str, value: Any) -> Any:
    if value in (None, ""):
        return None
    try:
        if CUSTOM_TYPES.get(kind) is FieldType.DECIMAL:
            if isinstance(value, bool):
                raise ValueError(value)
            number = float(value)
            return int(number) if number.is_integer() else number
        if CUSTOM_TYPES.get(kind) is FieldType.DATE:
            text = str(value)
            return (parse_utc(text) if "T" in text else parse_utc(f"{text}T00:00:00+00:00")).date().isoformat()
    except (TypeError, ValueError):
        raise QueryError(400, 85, f"Unable to save the prospect: invalid value '{value}' for '{name}'") from None
    return str(value)


def custom_name(field_id: str) -> str:
    """The apiFieldId of a custom field."""
    return f"{field_id}{CUSTOM_SUFFIX}"
