"""The functional core on plain values: a page of records and a loaded snapshot in, a delta out; no store."""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from closeloop.config.models import (
    Connection,
    CreateRule,
    Entity,
    EntityMapping,
    FieldMapping,
    OnDelete,
    SystemObjects,
)
from closeloop.engine.decide import (
    Choice,
    Decided,
    Gone,
    PageRules,
    Pick,
    already_applied,
    choose,
    decide,
    gone,
    rival,
)
from closeloop.engine.loaded import EMPTY, Loaded, Mapped
from closeloop.engine.mapper import to_canonical_fields
from closeloop.model import NativeRecord, WriteOp
from closeloop.store.rows import Golden, Link

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
T1, T2, T3 = (T0 + timedelta(minutes=n) for n in (1, 2, 3))

MAPPING = EntityMapping(
    path=Path("contacts.yaml"),
    entity=Entity.CONTACT,
    systems={
        "crm": SystemObjects(system="crm", objects=("Contact",), create_as="Contact", partner_id="MktId"),
        "mkt": SystemObjects(system="mkt", objects=("lead",), create_as="lead", partner_id="crmId"),
    },
    match=("email",),
    fields={
        "email": FieldMapping(name="email", native={"crm": {"Contact": "Email"}, "mkt": {"lead": "email"}}),
        "name": FieldMapping(name="name", native={"crm": {"Contact": "Name"}, "mkt": {"lead": "name"}}),
    },
    create=(CreateRule(source="crm", target="mkt"), CreateRule(source="mkt", target="crm")),
    on_delete=OnDelete.PROPAGATE,
)
CONNECTION = Connection(name="c", systems=("crm", "mkt"), mappings=(MAPPING,))


def _rules(system: str = "crm", mapping: EntityMapping = MAPPING, **kw: object) -> PageRules:
    obj = "Contact" if system == "crm" else "lead"
    connection = replace(CONNECTION, mappings=(mapping,)) if mapping is not MAPPING else CONNECTION
    return PageRules(connection, mapping, system, obj, T3, **kw)  # type: ignore[arg-type]


def _crm(native_id: str, at: datetime, **fields: object) -> NativeRecord:
    return NativeRecord(native_id, at, {"Email": fields.pop("email", None), **fields})


def _mapped(records: Sequence[NativeRecord], system: str = "crm") -> dict[str, Mapped]:
    obj = "Contact" if system == "crm" else "lead"
    return {r.id: to_canonical_fields(MAPPING, system, obj, r.fields) for r in records if not r.deleted}


def _decide(records: Sequence[NativeRecord], loaded: Loaded = EMPTY, system: str = "crm", **kw: object) -> Decided:
    ids = (f"g{n}" for n in itertools.count(1))
    return decide(_rules(system, **kw), records, _mapped(records, system), loaded, lambda: next(ids))


def _link(system: str, native_id: str, golden_id: str, at: datetime = T0, **kw: object) -> Link:
    obj = "Contact" if system == "crm" else "lead"
    return Link(system, obj, native_id, golden_id, "contact", at, kw.pop("snapshot", {}), T0, **kw)  # type: ignore[arg-type]


def _golden(golden_id: str, fields: Mapping[str, str], by: str = "mkt", at: datetime = T0) -> Golden:
    provenance = {name: [by, at.isoformat()] for name in fields}
    return Golden(golden_id, "contact", fields, T0, T0, provenance=provenance)


def _loaded(links: Sequence[Link] = (), goldens: Sequence[Golden] = (), **kw: object) -> Loaded:
    by_golden: dict[str, list[Link]] = {g.id: [] for g in goldens}
    for link in links:
        by_golden.setdefault(link.golden_id, []).append(link)
    found = {(k.system, k.object, k.native_id): k for k in links}
    return replace(EMPTY, links=found, links_of=by_golden, goldens={g.id: g for g in goldens}, **kw)  # type: ignore[arg-type]


# -- the rules ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("at", "fields", "applied"),
    [
        (T0, {"Email": "a@x.com"}, True),
        (T0 - timedelta(seconds=1), {"Email": "b@x.com"}, True),
        (T0, {"Email": "b@x.com"}, False),
        (T1, {"Email": "a@x.com"}, False),
    ],
    ids=["same-version", "older", "same-second-other-values", "newer"],
)
def test_a_version_is_already_applied_when_older_or_as_old_with_the_same_values(
    at: datetime, fields: dict[str, str], applied: bool
) -> None:
    link = _link("crm", "1", "g1", T0, snapshot={"email": "a@x.com"})
    record = NativeRecord("1", at, fields)
    assert already_applied(record, link, _mapped([record])["1"]) is applied


@pytest.mark.parametrize(
    ("linked", "partners", "matches", "expected"),
    [
        ("g1", ["g2"], ["g3"], Choice(Pick.LINKED, "g1")),
        (None, ["g2"], ["g3"], Choice(Pick.MATCHED, "g2", ("g2",))),
        (None, [], ["g3"], Choice(Pick.MATCHED, "g3", ("g3",))),
        (None, [], ["g3", "g4"], Choice(Pick.AMBIGUOUS, None, ("g3", "g4"))),
        (None, [], [], Choice(Pick.NEW)),
    ],
    ids=["link-wins", "partner-before-key", "key", "ambiguous", "new"],
)
def test_a_stored_link_wins_then_partner_ids_then_match_keys(
    linked: str | None, partners: list[str], matches: list[str], expected: Choice
) -> None:
    assert choose(linked, partners, matches) == expected


def test_a_rival_is_another_live_record_of_the_same_object() -> None:
    links = [_link("crm", "1", "g1"), _link("mkt", "9", "g1"), _link("crm", "2", "g1", deleted=True)]
    assert rival(links, "crm", "Contact", "3") == "1"
    assert rival(links, "crm", "Contact", "1") is None
    assert rival(links, "mkt", "lead", "9") is None


@pytest.mark.parametrize(
    ("policy", "merged_into", "winner", "expected"),
    [
        (OnDelete.IGNORE, None, None, Gone.TOMBSTONE),
        (OnDelete.UNLINK, None, None, Gone.UNLINK),
        (OnDelete.PROPAGATE, None, None, Gone.PROPAGATE),
        (OnDelete.UNLINK, "w", "g2", Gone.RETIRE),
        (OnDelete.PROPAGATE, "w", "g1", Gone.MERGED),
        (OnDelete.IGNORE, "w", None, Gone.MERGED),
    ],
    ids=["ignore", "unlink", "propagate", "merged-elsewhere", "merged-into-itself", "winner-unlinked"],
)
def test_gone_records_follow_merges_first_then_the_delete_policy(
    policy: OnDelete, merged_into: str | None, winner: str | None, expected: Gone
) -> None:
    assert gone(policy, merged_into, "g1", winner) is expected


# -- a page ------------------------------------------------------------------------------------------------


def test_a_first_page_makes_a_golden_record_per_record_and_owes_the_other_side_a_create() -> None:
    decided = _decide([_crm("1", T1, email="a@x.com", Name="Ada"), _crm("2", T1, email="b@x.com")])
    assert decided.touched == {"1": "g1", "2": "g2"}
    assert [(g, dict(fields)) for g, _, fields, _ in decided.delta.goldens] == [
        ("g1", {"email": "a@x.com", "name": "Ada"}),
        ("g2", {"email": "b@x.com"}),  # a None is never taken from a record read for the first time
    ]
    assert [(k.native_id, k.golden_id, k.linked_at) for k in decided.delta.links] == [("1", "g1", T3), ("2", "g2", T3)]
    assert [(i.system, i.op, i.golden_id) for i in decided.delta.outbox] == [
        ("mkt", WriteOp.CREATE, "g1"),
        ("mkt", WriteOp.CREATE, "g2"),
    ]
    assert decided.delta.keys == {"contact": [("g1", {"email": "a@x.com"}), ("g2", {"email": "b@x.com"})]}
    assert decided.counts[("new", "crm")] == 2


def test_two_records_of_one_page_with_one_email_are_a_duplicate_not_two_golden_records() -> None:
    decided = _decide([_crm("1", T1, email="a@x.com"), _crm("2", T1, email="a@x.com")])
    assert decided.touched == {"1": "g1"}
    [parked] = decided.delta.parked
    assert (parked.native_id, parked.code, parked.modified_at) == ("2", "DUPLICATE", T1)


def test_a_record_matches_a_stored_golden_record_by_its_match_key() -> None:
    loaded = _loaded([_link("mkt", "m1", "g7")], [_golden("g7", {"email": "a@x.com"})],
                     matches={("contact", "email", "a@x.com"): ["g7"]})  # fmt: skip
    decided = _decide([_crm("1", T1, email="a@x.com")], loaded)
    assert decided.touched == {"1": "g7"}
    assert decided.counts[("matched", "crm")] == 1


def test_several_matches_park_the_record_rather_than_guess() -> None:
    goldens = [_golden("g7", {"email": "a@x.com"}), _golden("g8", {"email": "a@x.com"})]
    loaded = _loaded([], goldens, matches={("contact", "email", "a@x.com"): ["g7", "g8"]})
    decided = _decide([_crm("1", T1, email="a@x.com")], loaded)
    assert decided.touched == {}
    assert [(p.code, p.reason) for p in decided.delta.parked] == [
        ("AMBIGUOUS_MATCH", "several golden records match: g7, g8")
    ]


def test_a_partner_id_naming_a_linked_record_joins_its_golden_record_before_any_email() -> None:
    loaded = _loaded([_link("mkt", "m1", "g7")], [_golden("g7", {"email": "old@x.com"}), _golden("g8", {})],
                     matches={("contact", "email", "a@x.com"): ["g8"]})  # fmt: skip
    decided = _decide([_crm("1", T1, email="a@x.com", MktId="m1")], loaded)
    assert decided.touched == {"1": "g7"}
    assert decided.delta.links[0].partner_id == "m1"


@pytest.mark.parametrize(("at", "wins"), [(T1, False), (T2, True)], ids=["earlier-change-loses", "later-wins"])
def test_a_field_both_sides_changed_goes_to_the_later_change(at: datetime, wins: bool) -> None:
    stored = _link("crm", "1", "g1", T0, snapshot={"email": "a@x.com", "name": "Ada"})
    loaded = _loaded([stored, _link("mkt", "m1", "g1")], [_golden("g1", {"email": "a@x.com", "name": "Bea"}, at=T2)])
    decided = _decide([_crm("1", at, email="a@x.com", Name="Cy")], loaded)
    assert decided.changed == {"g1": {"name"} if wins else set()}
    [(_, _, fields, _)] = decided.delta.goldens or [(None, None, {"name": "Bea"}, {})]
    assert fields["name"] == ("Cy" if wins else "Bea")


def test_a_deletion_propagates_to_the_other_side_and_retires_the_golden_record() -> None:
    loaded = _loaded([_link("crm", "1", "g1"), _link("mkt", "m1", "g1")], [_golden("g1", {"email": "a@x.com"})],
                     quarantined=frozenset({"g:g1"}))  # fmt: skip
    decided = _decide([NativeRecord("1", T1, {}, deleted=True)], loaded)
    assert [(k.native_id, k.deleted) for k in decided.delta.links] == [("1", True)]
    assert [(i.system, i.op, i.native_id) for i in decided.delta.outbox] == [("mkt", WriteOp.DELETE, "m1")]
    assert decided.delta.deleted_goldens == ["g1"]
    assert decided.delta.resolved == {("c", "crm", "Contact"): ["g:g1"]}


def test_a_record_merged_into_another_golden_records_record_retires_its_own() -> None:
    links = [_link("crm", "1", "g1"), _link("crm", "2", "g2")]
    loaded = _loaded(links, [_golden("g1", {}), _golden("g2", {})])
    decided = _decide([NativeRecord("1", T1, {}, merged_into="2")], loaded)
    assert decided.merged == {"g1": "g2"}
    assert decided.delta.deleted_goldens == ["g1"]
    assert [(k.native_id, k.deleted, k.last_modified_at) for k in decided.delta.links] == [("1", True, T1)]


def test_versions_already_applied_and_parked_versions_are_skipped() -> None:
    stored = _link("crm", "1", "g1", T1, snapshot={"email": "a@x.com", "name": None})
    loaded = _loaded([stored], [_golden("g1", {"email": "a@x.com"})], parked=frozenset({"2"}))
    decided = _decide([_crm("1", T1, email="a@x.com"), _crm("2", T1, email="b@x.com")], loaded)
    assert decided.touched == {}
    assert decided.counts[("skipped", None)] == 2
    assert decided.delta.links == []
