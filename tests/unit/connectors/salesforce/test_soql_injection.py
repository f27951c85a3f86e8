"""SOQL injection: the one escaping function, name allow-listing, and the sandbox parser as the proof."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from closeloop_connectors.salesforce import soql
from closeloop_connectors.salesforce.sandbox import create_sandbox
from closeloop_connectors.salesforce.sandbox import soql as parser

from closeloop.model import Cursor

MALICIOUS_EMAIL = "x' OR Name != '"

ESCAPES = [
    pytest.param("plain@example.com", "'plain@example.com'", id="plain"),
    pytest.param("O'Brien", r"'O\'Brien'", id="single-quote"),
    pytest.param('say "hi"', r"""'say \"hi\"'""", id="double-quote"),
    pytest.param("back\\slash", r"'back\\slash'", id="backslash"),
    pytest.param("\\'", r"'\\\''", id="backslash-then-quote"),
    pytest.param("line\nbreak", r"'line\nbreak'", id="newline"),
    pytest.param("carriage\rreturn", r"'carriage\rreturn'", id="carriage-return"),
    pytest.param("tab\there", r"'tab\there'", id="tab"),
    pytest.param("bell\bform\f", r"'bell\bform\f'", id="backspace-formfeed"),
    pytest.param("100%_sure", "'100%_sure'", id="percent-underscore-outside-like"),
    pytest.param(MALICIOUS_EMAIL, r"'x\' OR Name != \''", id="injected-or"),
    pytest.param("ünïcødé", "'ünïcødé'", id="unicode"),
]


@pytest.mark.parametrize(("value", "literal"), ESCAPES)
def test_string_literals_are_escaped(value: str, literal: str) -> None:
    assert soql.soql_literal(value) == literal


@pytest.mark.parametrize(
    ("value", "literal"),
    [
        pytest.param("100%", r"'100\%'", id="percent"),
        pytest.param("first_last", r"'first\_last'", id="underscore"),
        pytest.param("a'%_\\", r"'a\'\%\_\\'", id="all-together"),
    ],
)
def test_like_literals_escape_wildcards(value: str, literal: str) -> None:
    assert soql.soql_literal(value, like=True) == literal


@pytest.mark.parametrize(
    ("value", "literal"),
    [
        pytest.param(None, "null", id="null"),
        pytest.param(True, "TRUE", id="true"),
        pytest.param(False, "FALSE", id="false"),
        pytest.param(42, "42", id="int"),
        pytest.param(Decimal("1234.50"), "1234.50", id="decimal"),
        pytest.param(Decimal("1E+3"), "1000", id="decimal-exponent"),
        pytest.param(2.5, "2.5", id="float"),
        pytest.param(date(2026, 3, 31), "2026-03-31", id="date"),
        pytest.param(datetime(2026, 3, 31, 23, 59, 59, 123456, tzinfo=UTC), "2026-03-31T23:59:59.123Z", id="utc"),
        pytest.param(
            datetime(2026, 4, 1, 1, 0, tzinfo=timezone(timedelta(hours=2))), "2026-03-31T23:00:00.000Z", id="offset"
        ),
    ],
)
def test_other_literals(value: object, literal: str) -> None:
    assert soql.soql_literal(value) == literal


@pytest.mark.parametrize(
    "value",
    [
        pytest.param("nul\x00byte", id="nul"),
        pytest.param(float("nan"), id="nan"),
        pytest.param(Decimal("Infinity"), id="infinity"),
        pytest.param(datetime(2026, 1, 1), id="naive-datetime"),
        pytest.param(object(), id="object"),
    ],
)
def test_values_soql_cannot_carry_are_refused(value: object) -> None:
    with pytest.raises((ValueError, TypeError)):
        soql.soql_literal(value)


@pytest.mark.parametrize("value", [v.values[0] for v in ESCAPES] + ["a\\", "\\\\'", "'; DELETE", "%' OR '1'='1"])
def test_sandbox_parser_reads_back_the_exact_value(value: str) -> None:
    tokens = parser.tokenize(soql.soql_literal(value))
    assert [t.kind for t in tokens] == ["string"]
    assert parser.decode_string(tokens[0].text) == value


ALLOWED = soql.AllowList("Contact", frozenset({"Id", "Email", "SystemModstamp", "LastName"}))


@pytest.mark.parametrize(
    "name",
    [
        pytest.param("Name", id="not-in-describe"),
        pytest.param("Email, Id", id="list-smuggled"),
        pytest.param("Email FROM Lead --", id="clause-smuggled"),
        pytest.param("email", id="wrong-case"),
    ],
)
def test_field_names_outside_describe_are_refused(name: str) -> None:
    with pytest.raises(soql.UnsafeName):
        soql.select(ALLOWED, ["Id", name])
    with pytest.raises(soql.UnsafeName):
        soql.compare(ALLOWED, name, "=", "x")


@pytest.mark.parametrize("name", ["Contact WHERE", "Contact/describe", "../limits", "Con tact", ""])
def test_object_names_must_be_plain_identifiers(name: str) -> None:
    with pytest.raises(soql.UnsafeName):
        soql.object_name(name)
    with pytest.raises(soql.UnsafeName):
        soql.AllowList(name, frozenset({"Id"}))


def test_unknown_operator_is_refused() -> None:
    with pytest.raises(ValueError, match="operator"):
        soql.compare(ALLOWED, "Email", "= 'a' OR Id !=", "x")


def test_changes_query_uses_id_tiebreak() -> None:
    stamp = datetime(2026, 3, 31, 23, 59, 59, 500000, tzinfo=UTC)
    query = soql.changes_query(ALLOWED, ["Id", "Email"], Cursor(stamp, "003000000000001AAA"))
    assert query == (
        "SELECT Id, Email FROM Contact WHERE (SystemModstamp > 2026-03-31T23:59:59.500Z OR "
        "(SystemModstamp = 2026-03-31T23:59:59.500Z AND Id > '003000000000001AAA')) ORDER BY SystemModstamp, Id"
    )
    assert parser.parse(query).where is not None


def test_like_prefix_keeps_its_own_wildcards_literal() -> None:
    assert soql.like(ALLOWED, "Email", "a_b%") == r"Email LIKE 'a\_b\%%'"


async def _ids(sandbox: object, query: str) -> list[str]:
    _, _, rows = sandbox.org.query(query, include_deleted=False)  # type: ignore[attr-defined]
    return [row.id for row in rows]


async def test_escaped_malicious_email_matches_nothing_extra() -> None:
    sandbox = create_sandbox(seed=3, people=20)
    contacts = soql.AllowList("Contact", frozenset(sandbox.org.objects["Contact"].fields))
    victim = next(iter(sandbox.table("Contact").live()))
    target = sandbox.table("Contact").insert({"LastName": "Quote", "Email": MALICIOUS_EMAIL})

    injected = soql.select(contacts, ["Id"], soql.compare(contacts, "Email", "=", MALICIOUS_EMAIL))
    assert await _ids(sandbox, injected) == [target.id]
    in_list = soql.select(contacts, ["Id"], soql.is_in(contacts, "Email", [MALICIOUS_EMAIL, "nobody@x.io"]))
    assert await _ids(sandbox, in_list) == [target.id]
    # The same value formatted in raw would have matched every contact: the attack is real.
    raw = "SELECT Id FROM Contact WHERE Email = 'x' OR LastName != ''"
    assert len(await _ids(sandbox, raw)) == 21
    assert victim.id not in await _ids(sandbox, injected)


async def test_escaped_like_wildcards_match_literally() -> None:
    sandbox = create_sandbox(seed=3, people=5)
    contacts = soql.AllowList("Contact", frozenset(sandbox.org.objects["Contact"].fields))
    exact = sandbox.table("Contact").insert({"LastName": "100%_off"})
    sandbox.table("Contact").insert({"LastName": "100 and x off"})
    query = soql.select(contacts, ["Id"], soql.like(contacts, "LastName", "100%_"))
    assert await _ids(sandbox, query) == [exact.id]


@pytest.mark.parametrize(
    ("query", "code"),
    [
        pytest.param("SELECT Id FROM Contact WHERE Email = 'x\\' OR Id != ''", "MALFORMED_QUERY", id="unterminated"),
        pytest.param("SELECT Id FROM Contact WHERE Email = 'a\\qb'", "MALFORMED_QUERY", id="bad-escape"),
        pytest.param(
            "SELECT Id FROM Contact WHERE Email = 'a' AND Id != null OR Email = 'b'",
            "MALFORMED_QUERY",
            id="and-or-without-parentheses",
        ),
        pytest.param(
            "SELECT Id FROM Contact WHERE SystemModstamp > '2026-01-01T00:00:00Z'",
            "INVALID_FIELD",
            id="quoted-datetime",
        ),
        pytest.param("SELECT Id FROM Contact WHERE Email = 2026-01-01T00:00:00Z", "INVALID_FIELD", id="unquoted-text"),
        pytest.param("SELECT Id FROM Contact WHERE Id = 'x OR 1'", "INVALID_QUERY_FILTER_OPERATOR", id="bad-id"),
        pytest.param("SELECT Nope FROM Contact", "INVALID_FIELD", id="unknown-field"),
        pytest.param("SELECT Id FROM Nope", "INVALID_TYPE", id="unknown-object"),
        pytest.param("SELECT Id FROM Contact; DELETE", "MALFORMED_QUERY", id="statement-smuggled"),
    ],
)
def test_sandbox_refuses_what_salesforce_refuses(query: str, code: str) -> None:
    sandbox = create_sandbox(seed=1, people=1)
    with pytest.raises(parser.SoqlError) as refused:
        sandbox.org.query(query, include_deleted=False)
    assert refused.value.code == code


def test_every_soql_text_is_built_in_one_module() -> None:
    """No f-string or format call elsewhere in the connector assembles SOQL keywords."""
    import pathlib
    import re

    package = pathlib.Path(soql.__file__).parent
    pattern = re.compile(r"""f["'][^"']*\b(SELECT|WHERE|FROM|ORDER BY|LIMIT)\b""")
    offenders = [
        f"{path.name}:{number}"
        for path in package.glob("*.py")
        if path.name != "soql.py"
        for number, line in enumerate(path.read_text().splitlines(), start=1)
        if pattern.search(line) or ".format(" in line
    ]
    assert offenders == []
