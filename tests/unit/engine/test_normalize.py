"""Normalizers: equal values in other formats compare equal; dates and times never shift; bad values are refused."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from closeloop.engine.normalize import NormalizeError, decimal_text, to_canonical, to_native
from closeloop.model import FieldType

NY = ZoneInfo("America/New_York")
PARIS = ZoneInfo("Europe/Paris")
KOLKATA = ZoneInfo("Asia/Kolkata")


def case(kind: FieldType, native: object, canonical: object, id: str) -> object:
    return pytest.param(kind, native, canonical, id=id)


BLANKS = [
    case(kind, value, None, f"{kind.value}-{label}")
    for kind in FieldType
    for value, label in ((None, "none"), ("", "empty"), ("   ", "spaces"), ([], "empty-list"))
]

STRINGS = [
    case(FieldType.STRING, "  Ann  ", "Ann", "string-trimmed"),
    case(FieldType.STRING, 42, "42", "string-from-number"),
    case(FieldType.STRING, {"id": "001", "name": "Acme"}, "Acme", "string-lookup-name"),
    case(FieldType.PICKLIST, "MQL", "MQL", "picklist-unchanged"),
    case(FieldType.REFERENCE, "003ABC", "003ABC", "reference"),
    case(FieldType.ID, " 42 ", "42", "id-trimmed"),
]

EMAILS = [
    case(FieldType.EMAIL, "Ann@X.COM", "ann@x.com", "email-lower"),
    case(FieldType.EMAIL, "  ann@x.com ", "ann@x.com", "email-trimmed"),
]

PHONES = [
    case(FieldType.PHONE, "(415) 555-0100", "+14155550100", "phone-national-10-digits"),
    case(FieldType.PHONE, "+1 415 555 0100", "+14155550100", "phone-plus"),
    case(FieldType.PHONE, "1-415-555-0100", "+14155550100", "phone-11-digits-leading-1"),
    case(FieldType.PHONE, "0044 20 7946 0958", "+442079460958", "phone-00-prefix"),
    case(FieldType.PHONE, "+44 (0)20 7946 0958", "+4402079460958", "phone-plus-keeps-digits"),
    case(FieldType.PHONE, "7946 0958", "79460958", "phone-short-kept-as-digits"),
    case(FieldType.PHONE, "n/a", None, "phone-no-digits-is-blank"),
]

DECIMALS = [
    case(FieldType.DECIMAL, "1200", "1200", "decimal-integer"),
    case(FieldType.DECIMAL, "1200.00", "1200", "decimal-trailing-zeros"),
    case(FieldType.DECIMAL, 1200.5, "1200.5", "decimal-float"),
    case(FieldType.DECIMAL, 1200, "1200", "decimal-int"),
    case(FieldType.DECIMAL, "1,200.50", "1200.5", "decimal-thousands-separator"),
    case(FieldType.DECIMAL, "1E+3", "1000", "decimal-exponent"),
    case(FieldType.DECIMAL, "1e30", "1" + "0" * 30, "decimal-large-exponent-not-rounded"),
    case(FieldType.DECIMAL, "0.10", "0.1", "decimal-fraction"),
    case(FieldType.DECIMAL, "1E-7", "0.0000001", "decimal-small"),
    case(FieldType.DECIMAL, "-5.50", "-5.5", "decimal-negative"),
    case(FieldType.DECIMAL, "-0", "0", "decimal-negative-zero"),
    case(FieldType.DECIMAL, "0.00", "0", "decimal-zero-with-places"),
    case(
        FieldType.DECIMAL,
        "12345678901234567890123456789.5",
        "12345678901234567890123456789.5",
        "decimal-more-than-28-digits-exact",
    ),
    case(FieldType.NUMBER, " 7 ", "7", "number-trimmed"),
]

BOOLEANS = [
    pytest.param(FieldType.BOOLEAN, True, True, id="boolean-true"),
    pytest.param(FieldType.BOOLEAN, False, False, id="boolean-false"),
    *[pytest.param(FieldType.BOOLEAN, t, True, id=f"boolean-{t}") for t in ("true", "TRUE", "1", "yes", "Y", "on")],
    *[pytest.param(FieldType.BOOLEAN, t, False, id=f"boolean-{t}") for t in ("false", "0", "No", "n", "off")],
]

DATES = [
    case(FieldType.DATE, "2026-03-08", "2026-03-08", "date-plain"),
    case(FieldType.DATE, date(2026, 3, 8), "2026-03-08", "date-object"),
    case(FieldType.DATE, 1772928000000, "2026-03-08", "date-epoch-millis-midnight-utc"),
    case(FieldType.DATE, "1772928000000", "2026-03-08", "date-epoch-millis-text"),
    case(FieldType.DATE, "2026-03-08T00:00:00Z", "2026-03-08", "date-midnight-z"),
    case(FieldType.DATE, "2026-03-08T00:00:00+05:30", "2026-03-08", "date-midnight-ahead-of-utc-no-shift"),
    case(FieldType.DATE, "2026-03-08T23:30:00-08:00", "2026-03-08", "date-late-behind-utc-no-shift"),
    case(FieldType.DATE, "2026-03-08T23:30:00-0800", "2026-03-08", "date-offset-without-colon"),
    case(FieldType.DATE, datetime(2026, 3, 8, 0, 0, tzinfo=KOLKATA), "2026-03-08", "date-aware-datetime-no-shift"),
    case(FieldType.DATE, datetime(2026, 3, 29, 23, 59, tzinfo=PARIS), "2026-03-29", "date-eu-dst-day"),
]

DATETIMES = [
    case(FieldType.DATETIME, "2026-03-08T10:00:00Z", "2026-03-08T10:00:00.000Z", "datetime-z"),
    case(FieldType.DATETIME, "2026-03-08T10:00:00+00:00", "2026-03-08T10:00:00.000Z", "datetime-plus-zero"),
    case(FieldType.DATETIME, "2026-03-08T10:00:00+0000", "2026-03-08T10:00:00.000Z", "datetime-salesforce-offset"),
    case(FieldType.DATETIME, "2026-03-08T15:30:00+05:30", "2026-03-08T10:00:00.000Z", "datetime-kolkata"),
    case(FieldType.DATETIME, "2026-03-08T10:00:00.123456Z", "2026-03-08T10:00:00.123Z", "datetime-micros-to-millis"),
    case(FieldType.DATETIME, 1772964000000, "2026-03-08T10:00:00.000Z", "datetime-epoch-millis"),
    case(FieldType.DATETIME, "2026-03-08", "2026-03-08T00:00:00.000Z", "datetime-from-date-is-midnight-utc"),
    case(FieldType.DATETIME, "2026-03-09T04:30:00+05:30", "2026-03-08T23:00:00.000Z", "datetime-across-midnight"),
]

TABLE = BLANKS + STRINGS + EMAILS + PHONES + DECIMALS + BOOLEANS + DATES + DATETIMES


@pytest.mark.parametrize(("kind", "native", "canonical"), TABLE)
def test_to_canonical(kind: FieldType, native: object, canonical: object) -> None:
    assert to_canonical(kind, native) == canonical


REFUSED = [
    pytest.param(FieldType.DECIMAL, "twelve", id="decimal-words"),
    pytest.param(FieldType.DECIMAL, "NaN", id="decimal-nan"),
    pytest.param(FieldType.DECIMAL, "Infinity", id="decimal-infinity"),
    pytest.param(FieldType.DECIMAL, True, id="decimal-boolean"),
    pytest.param(FieldType.DECIMAL, "1e999999999", id="decimal-absurd-exponent"),
    pytest.param(FieldType.NUMBER, "1.2.3", id="number-two-points"),
    pytest.param(FieldType.BOOLEAN, "maybe", id="boolean-maybe"),
    pytest.param(FieldType.DATETIME, "2026-03-08T10:00:00", id="datetime-without-zone"),
    pytest.param(FieldType.DATETIME, datetime(2026, 3, 8, 10, 0), id="datetime-naive-object"),
    pytest.param(FieldType.DATETIME, "next tuesday", id="datetime-words"),
    pytest.param(FieldType.DATE, "2026-03-08T10:00:00", id="date-time-without-zone"),
]


@pytest.mark.parametrize(("kind", "native"), REFUSED)
def test_unreadable_values_raise_normalize_error(kind: FieldType, native: object) -> None:
    with pytest.raises(NormalizeError):
        to_canonical(kind, native)


def _instants() -> list[object]:
    """Pairs of the same instant written in different zones, around the US and EU DST switches and midnight."""
    pairs = []
    for label, utc_moment in (
        ("us-dst-start", datetime(2026, 3, 8, 6, 59, tzinfo=UTC)),  # 01:59 EST, the minute before the switch
        ("us-dst-start-after", datetime(2026, 3, 8, 7, 0, tzinfo=UTC)),  # 03:00 EDT
        ("eu-dst-start", datetime(2026, 3, 29, 0, 59, tzinfo=UTC)),  # 01:59 CET
        ("eu-dst-start-after", datetime(2026, 3, 29, 1, 0, tzinfo=UTC)),  # 03:00 CEST
        ("us-dst-end-first-1am", datetime(2026, 11, 1, 5, 30, tzinfo=UTC)),  # 01:30 EDT
        ("us-dst-end-second-1am", datetime(2026, 11, 1, 6, 30, tzinfo=UTC)),  # 01:30 EST
        ("eu-dst-end", datetime(2026, 10, 25, 0, 30, tzinfo=UTC)),
        ("utc-midnight", datetime(2026, 3, 8, 0, 0, tzinfo=UTC)),
        ("new-year", datetime(2026, 12, 31, 23, 59, 59, tzinfo=UTC)),
    ):
        for zone in (NY, PARIS, KOLKATA, timezone(timedelta(hours=-8))):
            local = utc_moment.astimezone(zone)
            pairs.append(pytest.param(utc_moment, local, id=f"{label}-{zone}"))
    return pairs


@pytest.mark.parametrize(("utc_moment", "local"), _instants())
def test_the_same_instant_in_any_zone_is_equal(utc_moment: datetime, local: datetime) -> None:
    canonical = to_canonical(FieldType.DATETIME, utc_moment)
    assert to_canonical(FieldType.DATETIME, local) == canonical
    assert to_canonical(FieldType.DATETIME, local.isoformat()) == canonical
    assert to_canonical(FieldType.DATETIME, int(utc_moment.timestamp() * 1000)) == canonical


def test_the_two_one_thirty_ams_of_the_us_fall_back_differ() -> None:
    first = datetime(2026, 11, 1, 1, 30, tzinfo=NY, fold=0)
    second = datetime(2026, 11, 1, 1, 30, tzinfo=NY, fold=1)
    assert to_canonical(FieldType.DATETIME, first) != to_canonical(FieldType.DATETIME, second)


@pytest.mark.parametrize(
    ("kind", "canonical", "native"),
    [
        pytest.param(FieldType.DECIMAL, "1200", 1200, id="decimal-integral-as-int"),
        pytest.param(FieldType.DECIMAL, "1200.5", 1200.5, id="decimal-fraction-as-float"),
        pytest.param(FieldType.NUMBER, "0", 0, id="number-zero"),
        pytest.param(FieldType.STRING, "Ann", "Ann", id="string"),
        pytest.param(FieldType.BOOLEAN, True, True, id="boolean"),
        pytest.param(FieldType.DATE, None, None, id="blank"),
    ],
)
def test_to_native(kind: FieldType, canonical: str | bool | None, native: object) -> None:
    out = to_native(kind, canonical)
    assert out == native
    assert type(out) is type(native)


@pytest.mark.parametrize(
    ("value", "text"),
    [
        pytest.param(Decimal("1.10"), "1.1", id="trailing-zero"),
        pytest.param(Decimal("1E+2"), "100", id="exponent"),
        pytest.param(Decimal("-0.000"), "0", id="negative-zero"),
        pytest.param(Decimal("1234567890123456789012345678901.25"), "1234567890123456789012345678901.25", id="long"),
    ],
)
def test_decimal_text(value: Decimal, text: str) -> None:
    assert decimal_text(value) == text
