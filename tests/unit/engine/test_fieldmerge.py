"""The three-way field merge, as a table: (policy, golden, snapshot, incoming) → the new golden state or none.

Systems are ``a`` and ``b``; T0 < T1 < T2 are modified times. A golden state is (value, set by, at).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from closeloop.config.models import FieldMapping
from closeloop.config.policies import LOOP, Earliest, FromLoop, OneWay, Prefer, Rollup, WriteOnce
from closeloop.engine.fieldmerge import (
    MISSING,
    FieldState,
    Incoming,
    _Missing,
    changed_fields,
    first_fields,
    merge_field,
    owed_values,
    settled_by_time,
)
from closeloop.engine.normalize import Canonical
from closeloop.model import FieldType

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
T1 = T0 + timedelta(minutes=1)
T2 = T0 + timedelta(minutes=2)

TWO_WAY = FieldMapping(name="name")
PREFER_A = FieldMapping(name="phone", type=FieldType.PHONE, prefer=Prefer(system="a"))
PREFER_A_UNLESS_BLANK = FieldMapping(name="title", prefer=Prefer(system="a", unless_blank=True))
ONE_WAY_B_TO_A = FieldMapping(name="stage", policy=OneWay(source="b", target="a"))
WRITE_ONCE = FieldMapping(name="source", policy=WriteOnce())
EARLIEST = FieldMapping(name="created_at", type=FieldType.DATETIME, policy=Earliest())
OLD, NEW = "2024-01-05T09:00:00.000Z", "2026-03-01T12:00:00.000Z"  # a CRM creation, closeloop's create of a copy
FROM_LOOP = FieldMapping(name="revenue", type=FieldType.DECIMAL, policy=FromLoop(rollup=Rollup.CLOSED_WON_REVENUE))

Golden = tuple[Canonical, str | None, datetime | None] | None
In = tuple[str, Canonical, Canonical | _Missing, datetime]
TAKEN = "taken"  # the incoming value becomes golden, credited to its system and time
KEPT = None  # the golden value stands


def row(field: FieldMapping, golden: Golden, incoming: In, result: str | None, id: str) -> object:
    return pytest.param(field, golden, incoming, result, id=id)


MERGES = [
    # two-way: the system that changed since its snapshot carries the change; both changed → the later one
    row(TWO_WAY, None, ("b", "Ann", MISSING, T1), TAKEN, "two-way-first-value"),
    row(TWO_WAY, ("Ann", "a", T1), ("b", "Ann", MISSING, T2), KEPT, "two-way-same-value-first-link"),
    row(TWO_WAY, ("Ann B", "a", T1), ("b", "Ann B", "Ann B", T2), KEPT, "two-way-echo-of-a-write"),
    row(TWO_WAY, ("Ann B", "a", T1), ("b", "Ann", "Ann", T2), KEPT, "two-way-behind-not-changed"),
    row(TWO_WAY, ("Ann", "a", T1), ("b", "Ann B", "Ann", T0), TAKEN, "two-way-change-no-conflict-even-if-older"),
    row(TWO_WAY, ("From A", "a", T1), ("b", "From B", "Ann", T2), TAKEN, "two-way-conflict-later-wins"),
    row(TWO_WAY, ("From A", "a", T1), ("b", "From B", "Ann", T0), KEPT, "two-way-conflict-earlier-loses"),
    row(TWO_WAY, ("From A", "a", T1), ("b", "From B", "Ann", T1), TAKEN, "two-way-conflict-tie-goes-to-incoming"),
    row(TWO_WAY, ("From A", None, None), ("b", "From B", "Ann", T0), TAKEN, "two-way-conflict-no-provenance"),
    row(TWO_WAY, ("Ann", "a", T1), ("b", "Annie", MISSING, T2), TAKEN, "two-way-first-link-later-wins"),
    row(TWO_WAY, ("Ann", "a", T1), ("b", "Annie", MISSING, T0), KEPT, "two-way-first-link-earlier-loses"),
    row(TWO_WAY, ("Ann", "a", T1), ("b", None, MISSING, T2), KEPT, "two-way-first-link-never-blanks"),
    row(TWO_WAY, ("Ann", "a", T1), ("b", None, "Ann", T2), TAKEN, "two-way-blanking-is-a-change"),
    row(TWO_WAY, (None, "a", T1), ("b", "Ann", None, T0), TAKEN, "two-way-blank-golden-takes-any-change"),
    # prefer: the preferred system wins a conflict whatever the times
    row(PREFER_A, ("+1", "b", T1), ("a", "+2", "+0", T0), TAKEN, "prefer-conflict-preferred-wins-though-older"),
    row(PREFER_A, ("+1", "a", T1), ("b", "+2", "+0", T2), KEPT, "prefer-conflict-other-loses-though-later"),
    row(PREFER_A, ("+1", "a", T1), ("b", "+2", "+1", T2), TAKEN, "prefer-no-conflict-other-may-change"),
    row(PREFER_A, ("+1", "b", T1), ("a", None, "+0", T0), TAKEN, "prefer-preferred-blank-still-wins"),
    # prefer unless blank: the preferred system wins unless its value is blank
    row(PREFER_A_UNLESS_BLANK, ("CEO", "a", T1), ("b", "CTO", "VP", T2), KEPT, "prefer-unless-blank-preferred-set"),
    row(PREFER_A_UNLESS_BLANK, ("CTO", "b", T1), ("a", None, "VP", T2), KEPT, "prefer-unless-blank-preferred-blank"),
    row(PREFER_A_UNLESS_BLANK, ("CTO", "b", T1), ("a", "CEO", "VP", T0), TAKEN, "prefer-unless-blank-preferred-wins"),
    # one-way b -> a: only the source's changes count
    row(ONE_WAY_B_TO_A, ("mql", "b", T1), ("a", "customer", "mql", T2), KEPT, "one-way-target-edit-ignored"),
    row(ONE_WAY_B_TO_A, ("mql", "b", T1), ("b", "customer", "mql", T0), TAKEN, "one-way-source-change"),
    row(ONE_WAY_B_TO_A, ("mql", "a", T2), ("b", "customer", "lead", T0), TAKEN, "one-way-source-wins-conflict"),
    row(ONE_WAY_B_TO_A, None, ("a", "lead", MISSING, T1), KEPT, "one-way-target-never-seeds"),
    # write-once: the first non-empty value is kept forever
    row(WRITE_ONCE, None, ("b", "paid_search", MISSING, T1), TAKEN, "write-once-first-value"),
    row(WRITE_ONCE, (None, "a", T0), ("b", "paid_search", None, T1), TAKEN, "write-once-fills-blank"),
    row(WRITE_ONCE, ("paid_search", "b", T1), ("b", "direct", "paid_search", T2), KEPT, "write-once-source-changes"),
    row(WRITE_ONCE, ("paid_search", "b", T1), ("a", "email", MISSING, T2), KEPT, "write-once-other-first-link"),
    row(WRITE_ONCE, ("paid_search", "b", T1), ("a", None, "paid_search", T2), KEPT, "write-once-never-blanked"),
    row(WRITE_ONCE, None, ("a", None, MISSING, T1), KEPT, "write-once-blank-is-no-value"),
    # earliest: a server-set time; the earliest any system tells is kept, whatever order they are read in
    row(EARLIEST, None, ("a", NEW, MISSING, T1), TAKEN, "earliest-first-value"),
    row(EARLIEST, (NEW, "a", T1), ("b", OLD, MISSING, T2), TAKEN, "earliest-earlier-value-wins"),
    row(EARLIEST, (OLD, "b", T1), ("a", NEW, MISSING, T2), KEPT, "earliest-later-copy-ignored"),
    row(EARLIEST, (OLD, "b", T1), ("b", None, OLD, T2), KEPT, "earliest-never-blanked"),
    # from loop: computed by closeloop, systems never set it
    row(FROM_LOOP, ("1200", LOOP, T1), ("b", "99", "1200", T2), KEPT, "from-loop-edit-ignored"),
    row(FROM_LOOP, None, ("b", "99", MISSING, T2), KEPT, "from-loop-never-seeded"),
]


def _state(golden: Golden) -> FieldState | None:
    return FieldState(*golden) if golden is not None else None


@pytest.mark.parametrize(("field", "golden", "incoming", "result"), MERGES)
def test_merge_field(field: FieldMapping, golden: Golden, incoming: In, result: str | None) -> None:
    system, value, snapshot, at = incoming
    merged = merge_field(field, _state(golden), Incoming(system, value, snapshot, at))
    if result is TAKEN:
        assert merged == FieldState(value, system, at)
    else:
        assert merged is None


Owed = tuple[bool, Canonical]

OWED = [
    pytest.param(TWO_WAY, ("Ann", "a", T1), "b", "Old", (True, "Ann"), id="two-way-other-side-behind"),
    pytest.param(TWO_WAY, ("Ann", "a", T1), "b", "Ann", (False, None), id="two-way-other-side-equal"),
    pytest.param(TWO_WAY, ("Ann", "a", T1), "a", "Old", (False, None), id="two-way-never-back-to-its-setter"),
    pytest.param(TWO_WAY, ("Ann", "a", T1), "b", MISSING, (True, "Ann"), id="two-way-create"),
    pytest.param(TWO_WAY, ("Ann", "a", T1), "a", MISSING, (True, "Ann"), id="two-way-new-record-of-setter"),
    pytest.param(TWO_WAY, None, "b", "Old", (False, None), id="no-golden-value"),
    pytest.param(TWO_WAY, (None, "a", T1), "b", "Ann", (True, None), id="two-way-blank-propagates"),
    pytest.param(TWO_WAY, (None, "a", T1), "b", MISSING, (False, None), id="two-way-create-omits-blank"),
    pytest.param(ONE_WAY_B_TO_A, ("mql", "b", T1), "a", "lead", (True, "mql"), id="one-way-to-target"),
    pytest.param(ONE_WAY_B_TO_A, ("mql", "b", T1), "a", "customer", (True, "mql"), id="one-way-overrides-target-edit"),
    pytest.param(ONE_WAY_B_TO_A, ("mql", "b", T1), "b", "lead", (False, None), id="one-way-never-to-source"),
    pytest.param(ONE_WAY_B_TO_A, ("mql", None, None), "a", MISSING, (True, "mql"), id="one-way-unattributed"),
    pytest.param(WRITE_ONCE, ("paid", "b", T1), "a", None, (True, "paid"), id="write-once-fills-blank"),
    pytest.param(WRITE_ONCE, ("paid", "b", T1), "a", MISSING, (True, "paid"), id="write-once-on-create"),
    pytest.param(WRITE_ONCE, ("paid", "b", T1), "a", "direct", (False, None), id="write-once-never-overwrites"),
    pytest.param(WRITE_ONCE, ("paid", "b", T1), "b", None, (True, "paid"), id="write-once-refills-its-setter"),
    pytest.param(WRITE_ONCE, ("paid", "b", T1), "b", "paid", (False, None), id="write-once-setter-equal"),
    pytest.param(EARLIEST, (OLD, "b", T1), "a", NEW, (False, None), id="earliest-never-written"),
    pytest.param(EARLIEST, (OLD, "b", T1), "a", MISSING, (False, None), id="earliest-not-on-create"),
    pytest.param(FROM_LOOP, ("1200", LOOP, T1), "b", "99", (True, "1200"), id="from-loop-written"),
    pytest.param(FROM_LOOP, ("99", "b", T1), "a", None, (False, None), id="from-loop-not-from-a-system"),
]


@pytest.mark.parametrize(("field", "golden", "target", "snapshot", "owed"), OWED)
def test_owed_values(
    field: FieldMapping, golden: Golden, target: str, snapshot: Canonical | _Missing, owed: Owed
) -> None:
    assert owed_values(field, target, _state(golden), snapshot) == owed


def test_changed_fields_returns_only_the_fields_that_change() -> None:
    fields = {"name": TWO_WAY, "source": WRITE_ONCE, "stage": ONE_WAY_B_TO_A}
    golden = {"name": FieldState("Ann", "a", T1), "source": FieldState("paid", "a", T1)}
    incoming = {
        "name": Incoming("b", "Ann B", "Ann", T2),
        "source": Incoming("b", "direct", MISSING, T2),
        "stage": Incoming("b", "mql", MISSING, T2),
    }
    assert changed_fields(fields, golden, incoming) == {
        "name": FieldState("Ann B", "b", T2),
        "stage": FieldState("mql", "b", T2),
    }


def test_merge_then_owed_round_trip_makes_no_echo() -> None:
    """After b's change wins, a is owed it once; a's echo of the write changes nothing; b owes nothing."""
    golden = FieldState("Ann", "a", T0)
    merged = merge_field(TWO_WAY, golden, Incoming("b", "Ann B", "Ann", T1))
    assert merged is not None
    assert owed_values(TWO_WAY, "a", merged, "Ann") == (True, "Ann B")
    assert owed_values(TWO_WAY, "b", merged, "Ann B") == (False, None)
    assert merge_field(TWO_WAY, merged, Incoming("a", "Ann B", "Ann B", T2)) is None


EARLY, LATE = T0 - timedelta(days=1), T2 + timedelta(days=1)


@pytest.mark.parametrize(("field", "golden", "incoming", "result"), MERGES)
def test_settled_by_time_exactly_where_the_change_times_decide(
    field: FieldMapping, golden: Golden, incoming: In, result: str | None
) -> None:
    """The fields worth asking a field history for: those whose merge turns on when each side changed."""
    system, value, snapshot, _ = incoming
    state = _state(golden)
    outcomes = {merge_field(field, state, Incoming(system, value, snapshot, at)) is None for at in (EARLY, LATE)}
    asked = settled_by_time(field, state, Incoming(system, value, snapshot, T1))
    if len(outcomes) == 2:
        assert asked
    elif state is not None and state.at is not None:
        assert not asked


def test_the_issue_example_turns_on_the_field_times_not_the_record_times() -> None:
    """Salesforce (a) sets A at T0, HubSpot (b) sets B at T1, Salesforce edits another field at T2."""
    by_record = FieldState("A", "a", T2)  # the Salesforce record's modified time: the latest A can have been set
    by_field = FieldState("A", "a", T0)  # its field history: when A was set
    incoming = Incoming("b", "B", "old", T1)
    assert merge_field(TWO_WAY, by_record, incoming) is None  # the record-level rule: A stays
    assert merge_field(TWO_WAY, by_field, incoming) == FieldState("B", "b", T1)  # the later change of the field


FIRST_VALUES: list[Canonical] = [None, "", "Ann", True, False, OLD]


@pytest.mark.parametrize(
    "field", [TWO_WAY, PREFER_A, PREFER_A_UNLESS_BLANK, ONE_WAY_B_TO_A, WRITE_ONCE, EARLIEST, FROM_LOOP]
)
@pytest.mark.parametrize("system", ["a", "b"])
def test_first_fields_is_the_merge_over_an_empty_golden_record(field: FieldMapping, system: str) -> None:
    """The bulk path of a first sync gives what the three-way merge gives for a record seen the first time."""
    for value in FIRST_VALUES:
        fields = {field.name: field}
        incoming = {field.name: Incoming(system, value, MISSING, T1)}
        expected = changed_fields(fields, {}, incoming)
        assert first_fields(fields, system, {field.name: value}, T0, {field.name: T1}) == expected, value
        untimed = changed_fields(fields, {}, {field.name: Incoming(system, value, MISSING, T0)})
        assert first_fields(fields, system, {field.name: value}, T0, {}) == untimed, value
