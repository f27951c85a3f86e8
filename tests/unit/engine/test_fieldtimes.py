"""Per-field change times: which fields a merge times by their history, and how native times become canonical."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from closeloop.config.models import Entity, EntityMapping, FieldMapping, SystemObjects
from closeloop.config.policies import OneWay, Prefer
from closeloop.engine.fieldmerge import MISSING, FieldState
from closeloop.engine.fieldtimes import canonical_times, incoming_fields, owners, timed_conflicts
from closeloop.engine.golden import GoldenState
from closeloop.model import NativeRecord
from closeloop.store.rows import Link

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
T1, T2 = T0 + timedelta(seconds=1), T0 + timedelta(seconds=2)

MAPPING = EntityMapping(
    path=Path("contacts.yaml"),
    entity=Entity.CONTACT,
    systems={
        "crm": SystemObjects(system="crm", objects=("Contact",), create_as="Contact"),
        "marketing": SystemObjects(system="marketing", objects=("contacts",), create_as="contacts"),
    },
    fields={
        "first_name": FieldMapping(name="first_name", native={"crm": {"Contact": "FirstName"},
                                                              "marketing": {"contacts": "firstname"}}),
        "phone": FieldMapping(name="phone", native={"crm": {"Contact": "Phone"}, "marketing": {"contacts": "phone"}},
                              prefer=Prefer(system="crm")),
        "stage": FieldMapping(name="stage", native={"crm": {"Contact": "Status"}, "marketing": {"contacts": "stage"}},
                              policy=OneWay(source="marketing", target="crm")),
    },
)  # fmt: skip


def test_native_times_are_named_by_canonical_field_and_unmapped_ones_dropped() -> None:
    native = {"firstname": T0, "phone": T1, "hs_lead_status": T2}
    assert canonical_times(MAPPING, "marketing", "contacts", native) == {"first_name": T0, "phone": T1}


def test_a_field_without_a_known_change_time_is_timed_by_its_record() -> None:
    record = NativeRecord("h1", T2, {"firstname": "Bea", "phone": "+1"})
    incoming = incoming_fields("marketing", record, {"first_name": "Bea", "phone": "+1"}, None, {"first_name": T1})
    assert incoming["first_name"].modified_at == T1
    assert incoming["phone"].modified_at == T2  # the record-level rule: the latest it can have changed
    assert incoming["phone"].snapshot is MISSING


def test_only_two_way_conflicts_without_a_preferred_system_are_settled_by_time() -> None:
    golden = GoldenState(
        "g1",
        "contact",
        {
            "first_name": FieldState("Ada", "crm", T2),
            "phone": FieldState("+2", "crm", T2),
            "stage": FieldState("lead", "marketing", T0),
        },
    )
    record = NativeRecord("h1", T1, {})
    snapshot = {"first_name": "Old", "phone": "+0", "stage": "new"}
    values = {"first_name": "Bea", "phone": "+1", "stage": "mql"}
    incoming = incoming_fields("marketing", record, values, snapshot, {})
    assert [name for name, _ in timed_conflicts(MAPPING, golden, incoming)] == ["first_name"]


def test_the_owner_of_a_golden_value_is_its_setters_live_record() -> None:
    links = [
        Link("crm", "Contact", "003A", "g1", "contact", T0, {}, T0),
        Link("crm", "Contact", "003B", "g1", "contact", T0, {}, T0, deleted=True),
        Link("marketing", "contacts", "h1", "g1", "contact", T0, {}, T0),
    ]
    assert owners(links, "crm") == [("crm", "Contact", "003A")]
    assert owners(links, None) == []
