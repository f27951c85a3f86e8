"""Mapped fields checked against described schemas: missing, read-only but written, wrong type, picklist values.

Each problem names the mapping file, line and column. The same checks against the vendors' own describe (the
HubSpot and Salesforce sandboxes) are in tests/integration/engine/test_fieldcheck_sandboxes.py.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest

from closeloop.config.loader import load_config
from closeloop.config.models import Connection
from closeloop.config.problems import ConfigProblem
from closeloop.engine.failures import FailureKind
from closeloop.engine.fieldcheck import check_connection
from closeloop.engine.runtime import Engine
from closeloop.model import FieldInfo, FieldType, ObjectSchema
from closeloop.store import Store
from closeloop.store.rows import RunStatus
from tests.fake_connector import FIELDS, FakeVendor, fake_registry, ticking_clock

from .conftest import CONTACTS, write_config


def connection(tmp_path: Path, contacts: str) -> Connection:
    vendors = {"a": FakeVendor("a", ticking_clock()), "b": FakeVendor("b", ticking_clock())}
    config = load_config(write_config(tmp_path, contacts=contacts), registry=fake_registry(vendors), environ={})
    return config.connections[0]


def schemas(**changed: FieldInfo) -> dict[tuple[str, str], ObjectSchema]:
    """The fake's schemas of both systems; ``changed`` replaces (or adds) fields of b's contacts."""
    out = {(system, obj): ObjectSchema(obj, dict(fields)) for system in "ab" for obj, fields in FIELDS.items()}
    out[("b", "contacts")] = ObjectSchema("contacts", {**FIELDS["contacts"], **changed})
    return out


def lines(tmp_path: Path, found: Sequence[ConfigProblem]) -> list[str]:
    """The problems as printed, with the test's folder left out."""
    return [str(p).replace(f"{tmp_path}/", "") for p in found]


def test_the_example_mapping_fits_the_fake_schemas(tmp_path: Path) -> None:
    assert check_connection(connection(tmp_path, CONTACTS), schemas()) == []


def test_a_missing_field_names_file_line_column_and_close_names(tmp_path: Path) -> None:
    contacts = CONTACTS.replace("phone: {type: phone, a: phone, b: phone,", "phone: {type: phone, a: phone, b: phon,")
    found = check_connection(connection(tmp_path, contacts), schemas())
    assert lines(tmp_path, found) == [
        "contacts.yaml:10:37: field 'phone': b contacts has no field 'phon'; close names: 'phone'"
    ]


def test_a_missing_field_with_no_close_name_says_so(tmp_path: Path) -> None:
    contacts = CONTACTS.replace("name: {type: string, a: name, b: name}", "name: {type: string, a: name, b: zzz}")
    (problem,) = check_connection(connection(tmp_path, contacts), schemas())
    assert problem.message == "field 'name': b contacts has no field 'zzz'; no close name among its 13 fields"
    assert (problem.line, problem.col) == (9, 36)


@pytest.mark.parametrize(
    ("policy", "expected"),
    [
        pytest.param(
            "",
            "field 'name': 'name' of b contacts is read-only, but policy 'two-way' writes it from 'a'; "
            "read it only (policy: 'b -> a') or map a writable field",
            id="two-way",
        ),
        pytest.param(
            ", policy: a -> b",
            "field 'name': 'name' of b contacts is read-only, but policy 'a -> b' writes it; "
            "read it only (policy: 'b -> a') or map a writable field",
            id="one-way-into-it",
        ),
        pytest.param(", policy: b -> a", None, id="one-way-out-of-it"),
        pytest.param(", policy: write-once", None, id="write-once-fills-only-writable-blanks"),
    ],
)
def test_a_read_only_field_is_a_problem_only_where_the_mapping_writes_it(
    tmp_path: Path, policy: str, expected: str | None
) -> None:
    contacts = CONTACTS.replace(
        "name: {type: string, a: name, b: name}", f"name: {{type: string, a: name, b: name{policy}}}"
    )
    found = check_connection(
        connection(tmp_path, contacts), schemas(name=FieldInfo("name", FieldType.STRING, read_only=True))
    )
    assert [p.message for p in found] == ([expected] if expected else [])


def test_a_rollup_into_a_read_only_field_is_a_problem(tmp_path: Path) -> None:
    found = check_connection(
        connection(tmp_path, CONTACTS), schemas(revenue=FieldInfo("revenue", FieldType.DECIMAL, read_only=True))
    )
    assert [p.message for p in found] == [
        "field 'revenue': 'revenue' of b contacts is read-only, but 'from: loop.closed_won_revenue' writes it; "
        "map a writable field"
    ]


@pytest.mark.parametrize(
    ("canonical", "native", "fits"),
    [
        ("string", FieldType.PICKLIST, True),
        ("date", FieldType.DATETIME, True),
        ("decimal", FieldType.NUMBER, True),
        ("datetime", FieldType.DATE, False),
        ("string", FieldType.NUMBER, False),
        ("decimal", FieldType.STRING, False),
        ("boolean", FieldType.STRING, False),
    ],
    ids=lambda v: str(v),
)
def test_types_that_cannot_hold_the_canonical_type_are_problems(
    tmp_path: Path, canonical: str, native: FieldType, fits: bool
) -> None:
    contacts = CONTACTS.replace(
        "name: {type: string, a: name, b: name}", f"name: {{type: {canonical}, a: name, b: name}}"
    )
    found = check_connection(connection(tmp_path, contacts), schemas(name=FieldInfo("name", native)))
    messages = [p.message for p in found if "'name' of b" in p.message]
    assert messages == ([] if fits else [messages[0]])
    if not fits:
        assert messages[0].startswith(
            f"field 'name' has type {canonical!r}, but 'name' of b contacts is a {native.value}"
        )


def test_a_value_map_naming_a_value_the_restricted_picklist_refuses_points_at_that_value(tmp_path: Path) -> None:
    stage = FieldInfo("stage", FieldType.PICKLIST, picklist=("lead", "customer"), restricted=True)
    (problem,) = check_connection(connection(tmp_path, CONTACTS), schemas(stage=stage))
    assert lines(tmp_path, [problem]) == [
        "contacts.yaml:19:23: field 'stage': the value map of 'b' names 'mql', which 'stage' of b contacts "
        "does not allow; allowed: 'lead' or 'customer'"
    ]


def test_an_unrestricted_picklist_takes_any_value_map(tmp_path: Path) -> None:
    stage = FieldInfo("stage", FieldType.PICKLIST, picklist=("lead", "customer"), restricted=False)
    assert check_connection(connection(tmp_path, CONTACTS), schemas(stage=stage)) == []


def test_a_missing_upsert_key_is_a_problem_at_the_key(tmp_path: Path) -> None:
    contacts = CONTACTS.replace(
        "b: {objects: [contacts], upsert: {key: email,", "b: {objects: [contacts], upsert: {key: mail,"
    )
    (problem,) = check_connection(connection(tmp_path, contacts), schemas())
    assert problem.message == "upsert key: b contacts has no field 'mail'; close names: 'email'"
    assert (problem.line, problem.col) == (5, 42)


async def test_a_run_with_a_missing_field_refuses_before_reading_and_describes_again_next_time(tmp_path: Path) -> None:
    clock = ticking_clock()
    vendors = {"a": FakeVendor("a", clock), "b": FakeVendor("b", clock)}
    contacts = CONTACTS.replace("name: {type: string, a: name, b: name}", "name: {type: string, a: name, b: nmae}")
    config = load_config(write_config(tmp_path, contacts=contacts), registry=fake_registry(vendors), environ={})
    vendors["a"].put("contacts", {"email": "ann@x.com", "name": "Ann"})
    with Store.open(tmp_path / "state.db", clock=clock) as store:
        async with Engine(config, store, clock=clock) as engine:
            for run in (1, 2):
                outcome = await engine.sync("ab")
                assert (outcome.status, outcome.failure, outcome.exit_code) == (RunStatus.FAILED, FailureKind.CONFIG, 2)
                assert outcome.details == (
                    f"{tmp_path / 'contacts.yaml'}:9:36: field 'name': b contacts has no field 'nmae'; "
                    "close names: 'name'",
                )
                assert vendors["b"].calls["describe"] == 2 * run  # contacts and deals, described again each run
            assert vendors["a"].calls["read"] == vendors["b"].calls["read"] == 0
            assert sum(vendors["b"].writes.values()) == 0
            assert store.get_cursor("ab", "a", "contacts") is None


def test_a_property_closeloop_owns_is_checked_too(tmp_path: Path) -> None:
    described = schemas()
    fields = dict(described[("b", "contacts")].fields)
    del fields["revenue"]  # the rollup's property, not created at the vendor yet
    described[("b", "contacts")] = ObjectSchema("contacts", fields)
    (problem,) = check_connection(connection(tmp_path, CONTACTS), described)
    assert problem.message == "field 'revenue': b contacts has no field 'revenue'; no close name among its 12 fields"
