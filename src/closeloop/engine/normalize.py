"""Normalizers: native values become canonical values that compare equal when they mean the same thing.

Canonical values are ``str | bool | None``: emails lower-case, phones E.164-ish, decimals without exponent or
trailing zeros, dates ``YYYY-MM-DD``, datetimes RFC 3339 UTC with milliseconds and ``Z``. Blank is ``None``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation

from closeloop.model import FieldType, iso_utc, parse_utc

Canonical = str | bool | None


class NormalizeError(ValueError):
    """A native value that cannot be read as its field's type."""


def _blank(value: object) -> bool:
    return value is None or (isinstance(value, str) and not value.strip()) or value == []


def _string(value: object) -> Canonical:
    if isinstance(value, dict) and "name" in value:  # lookup fields carry {id, name}
        value = value["name"]
    text = str(value).strip()
    return text or None


def _email(value: object) -> Canonical:
    text = str(value).strip().lower()
    return text or None


_NOT_DIGITS = re.compile(r"\D")


def _phone(value: object) -> Canonical:
    text = str(value).strip()
    digits = _NOT_DIGITS.sub("", text)
    if not digits:
        return None
    if text.startswith("+"):
        return "+" + digits
    if text.startswith("00"):
        return "+" + digits[2:]
    if len(digits) == 10:  # a national North American number, the common case without a prefix
        return "+1" + digits
    if len(digits) == 11 and digits.startswith("1"):
        return "+" + digits
    return digits


def decimal_text(value: Decimal) -> str:
    """A decimal as plain text without exponent or trailing zeros (``1200``, ``1200.5``), never rounded."""
    if value.is_zero():
        return "0"  # -0 and 0.00 are zero
    text = format(value, "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


_MAX_EXPONENT = 100
"""Numbers beyond 10**±100 are refused rather than written out digit by digit."""


def _decimal(value: object) -> Canonical:
    if isinstance(value, bool):
        raise NormalizeError(f"{value!r} is not a number")
    try:
        number = Decimal(str(value).strip().replace(",", ""))
    except InvalidOperation:
        raise NormalizeError(f"{value!r} is not a number") from None
    if not number.is_finite():
        raise NormalizeError(f"{value!r} is not a finite number")
    if abs(number.adjusted()) > _MAX_EXPONENT:
        raise NormalizeError(f"{value!r} is out of range")
    return decimal_text(number)


_TRUE = {"true", "1", "yes", "y", "on"}
_FALSE = {"false", "0", "no", "n", "off"}


def _boolean(value: object) -> Canonical:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise NormalizeError(f"{value!r} is not a boolean")


def _moment(value: object) -> datetime:
    """A datetime from epoch milliseconds, an RFC 3339 string, or a date (midnight UTC)."""
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise NormalizeError(f"{value!r} has no time zone")
        return value.astimezone(UTC)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=UTC)
    text = str(value).strip()
    if text.lstrip("-").isdigit():
        return datetime.fromtimestamp(int(text) / 1000, tz=UTC)
    if len(text) == 10 and text[4] == "-":
        return datetime.fromisoformat(text).replace(tzinfo=UTC)
    try:
        return parse_utc(text)
    except ValueError:
        raise NormalizeError(f"{value!r} is not a date-time with a time zone") from None


def _datetime(value: object) -> Canonical:
    return iso_utc(_moment(value))


def _date(value: object) -> Canonical:
    """The calendar day as written: a date-time with an offset keeps its own day, never shifted to UTC's."""
    moment = _moment(value)
    if isinstance(value, datetime):
        return value.date().isoformat()
    text = str(value).strip()
    if len(text) > 10 and not text.lstrip("-").isdigit():
        return datetime.fromisoformat(text.replace("Z", "+00:00")).date().isoformat()
    return moment.date().isoformat()


_NORMALIZERS: dict[FieldType, Callable[[object], Canonical]] = {
    FieldType.STRING: _string,
    FieldType.EMAIL: _email,
    FieldType.PHONE: _phone,
    FieldType.NUMBER: _decimal,
    FieldType.DECIMAL: _decimal,
    FieldType.BOOLEAN: _boolean,
    FieldType.DATE: _date,
    FieldType.DATETIME: _datetime,
    FieldType.PICKLIST: _string,
    FieldType.REFERENCE: _string,
    FieldType.ID: _string,
    FieldType.OWNER: _email,  # an owner's canonical value is their email (see closeloop.engine.owners)
}


def to_canonical(kind: FieldType, value: object) -> Canonical:
    """The canonical form of a native value of type ``kind``; blank becomes None."""
    if _blank(value):
        return None
    return _NORMALIZERS[kind](value)


def to_native(kind: FieldType, value: Canonical) -> object:
    """The JSON value to send a vendor for a canonical value (numbers as JSON numbers)."""
    if value is None or isinstance(value, bool):
        return value
    if kind in (FieldType.NUMBER, FieldType.DECIMAL):
        number = Decimal(value)
        return int(number) if number == number.to_integral_value() else float(number)
    return value
