"""Every mistake in a mapping file is reported at its file:line:col with what would be valid.

The cases edit the base mapping of conftest.CONTACTS, whose line 7 is the email field and line 9 the create rules.
"""

from __future__ import annotations

import pytest

from .conftest import CONTACTS

EMAIL = "  email: {type: email, crm: Email, marketing: email}"
CREATE = "create: {crm -> marketing: all}"
MARKETING = "  marketing: {objects: [contacts]}"
VALUES = "values: {marketing: {mql: mql, customer: won}}"


def email(extra: str) -> tuple[str, str]:
    """Replace the email field (line 7) with one that also carries ``extra``."""
    return EMAIL, EMAIL[:-1] + ", " + extra + "}"


CASES = [
    pytest.param(
        [email("policy: one-way")],
        "contacts.yaml:7:62: unknown policy 'one-way'; valid: 'two-way', 'write-once', 'earliest', "
        "'crm -> marketing' or 'marketing -> crm'; did you mean 'two-way'?",
        id="unknown_policy_names_valid_ones",
    ),
    pytest.param(
        [email("polcy: two-way")],
        "contacts.yaml:7:54: unknown key 'polcy' in field 'email'; valid: 'type', 'policy', 'prefer', 'from', "
        "'values' or 'transform', or a system of this mapping: 'crm' or 'marketing'; did you mean 'policy'?",
        id="unknown_field_key_suggests_closest",
    ),
    pytest.param(
        [(EMAIL, "  email: {type: email, crn: Email, marketing: email}")],
        "contacts.yaml:7:24: unknown key 'crn' in field 'email'; valid: 'type', 'policy', 'prefer', 'from', "
        "'values' or 'transform', or a system of this mapping: 'crm' or 'marketing'; did you mean 'crm'?",
        id="field_mapped_to_unknown_system_lists_mapping_systems",
    ),
    pytest.param(
        [email("values: {crm: {A: a}}")],
        "contacts.yaml:7:54: value maps are only allowed on picklist fields; field 'email' has type 'email'",
        id="value_map_on_non_picklist",
    ),
    pytest.param(
        [(EMAIL, EMAIL + "\n" + EMAIL)],
        "contacts.yaml:8:3: duplicate key 'email' (first defined at line 7); each key may appear once",
        id="duplicate_canonical_field",
    ),
    pytest.param(
        [(EMAIL, "  email: {type: decimal, marketing: email, from: loop.revenue}")],
        "contacts.yaml:7:50: unknown rollup 'loop.revenue'; valid: 'loop.closed_won_revenue', "
        "'loop.closed_won_deals', 'loop.first_closed_won_at', 'loop.last_closed_won_at', 'loop.customer_since' "
        "or 'loop.sla_breached_at'",
        id="unknown_rollup_names_valid_ones",
    ),
    pytest.param(
        [(EMAIL, "  email: {type: email, crm: Email, marketing: email, policy: crm -> marketing, from: loop.x}")],
        "contacts.yaml:7:80: a field has either 'policy' or 'from', not both",
        id="policy_and_from_together",
    ),
    pytest.param(
        [email("prefer: erp")],
        "contacts.yaml:7:62: unknown system 'erp' in prefer; valid: 'crm' or 'marketing'",
        id="prefer_names_unknown_system",
    ),
    pytest.param(
        [email("prefer: crm if set")],
        "contacts.yaml:7:62: bad prefer 'crm if set'; use '<system>' or '<system> unless blank'",
        id="prefer_with_bad_wording",
    ),
    pytest.param(
        [email("policy: crm -> marketing, prefer: crm")],
        "contacts.yaml:7:80: prefer only applies to two-way and write-once fields; 'email' is one-way",
        id="prefer_on_one_way_field",
    ),
    pytest.param(
        [(EMAIL, "  email: {type: email, crm: Email, policy: marketing -> crm}")],
        "contacts.yaml:7:44: policy 'marketing -> crm' needs a native field in 'marketing'; field 'email' maps "
        "only 'crm'",
        id="one_way_policy_needs_both_ends",
    ),
    pytest.param(
        [(EMAIL, "  email: {type: email, crm: {Contacts: Email}, marketing: email}")],
        "contacts.yaml:7:30: unknown object 'Contacts' for system 'crm'; valid: 'Contact' or 'Lead'; "
        "did you mean 'Contact'?",
        id="per_object_field_names_unknown_object",
    ),
    pytest.param(
        [(EMAIL, "  email: {type: e-mail, crm: Email, marketing: email}")],
        "contacts.yaml:7:17: type: Input should be 'string', 'email', 'phone'",
        id="unknown_field_type_names_valid_ones",
    ),
    pytest.param(
        [(EMAIL, "  email: {type: email}")],
        "contacts.yaml:7:3: field 'email' maps no system; give its native field for at least one of 'crm' or "
        "'marketing'",
        id="field_without_any_system",
    ),
    pytest.param(
        [(CREATE, "create: {marketing -> crm: {score: {equals: 1}}}")],
        "contacts.yaml:9:29: unknown canonical field 'score' in create filter; valid: 'email' or 'stage'",
        id="create_filter_on_unknown_field",
    ),
    pytest.param(
        [(CREATE, "create: {marketing -> crm: {stage: {in: [mql, sqll]}}}")],
        "contacts.yaml:9:47: 'sqll' is not a value of picklist 'stage'; valid: 'mql' or 'won'",
        id="create_filter_on_unknown_picklist_value",
    ),
    pytest.param(
        [(CREATE, "create: {marketing -> crm: {stage: {in: [mql], equals: mql}}}")],
        "contacts.yaml:9:29: a filter on 'stage' needs exactly one of 'in', 'equals' or 'not_blank'",
        id="create_filter_needs_exactly_one_test",
    ),
    pytest.param(
        [(CREATE, "create: {crm -> marketing: everything}")],
        "contacts.yaml:9:28: crm -> marketing: Input should be 'all', or a mapping",
        id="create_rule_is_all_or_a_filter",
    ),
    pytest.param(
        [(MARKETING, "  marketing: [contacts]")],
        "contacts.yaml:4:14: marketing: Input should be a mapping with keys 'objects', 'create_as', 'upsert' or "
        "'partner_id'",
        id="system_entry_must_be_a_mapping",
    ),
    pytest.param(
        [(MARKETING, "  marketing: {objects: [contacts], partner_id: email}")],
        "contacts.yaml:4:48: partner_id 'email' of 'marketing' is already used by 'email'; "
        "give closeloop a field of its own for the other system's id",
        id="partner_id_must_be_a_field_of_its_own",
    ),
    pytest.param(
        [(CREATE, "create: {marketing => crm: all}")],
        "contacts.yaml:9:10: bad direction 'marketing => crm'; valid: 'crm -> marketing' or 'marketing -> crm'",
        id="bad_create_direction",
    ),
    pytest.param(
        [(CREATE, "create: {crm -> erp: all}")],
        "contacts.yaml:9:10: unknown system 'erp' in 'crm -> erp'; valid: 'crm' or 'marketing'",
        id="create_direction_names_unknown_system",
    ),
    pytest.param(
        [("on_delete: unlink", "on_delet: unlink")],
        "contacts.yaml:10:1: unknown key 'on_delet'; valid: 'entity', 'systems', 'match', 'fields', 'create' or "
        "'on_delete'; did you mean 'on_delete'?",
        id="unknown_top_level_key_suggests_closest",
    ),
    pytest.param(
        [("on_delete: unlink", "on_delete: delete")],
        "contacts.yaml:10:12: on_delete: Input should be 'ignore', 'unlink' or 'propagate'",
        id="unknown_on_delete_names_valid_ones",
    ),
    pytest.param(
        [("entity: contact", "entity: person")],
        "contacts.yaml:1:9: entity: Input should be 'contact' or 'deal'",
        id="unknown_entity_names_valid_ones",
    ),
    pytest.param(
        [("fields:", "felds:")],
        "contacts.yaml:1:1: missing required key 'fields'",
        id="missing_required_key",
    ),
    pytest.param(
        [("match: [email]", "match: [email, mail]")],
        "contacts.yaml:5:16: unknown canonical field 'mail'; valid: 'email' or 'stage'; did you mean 'email'?",
        id="match_on_unknown_field",
    ),
    pytest.param(
        [("value: email}", "value: emial}")],
        "contacts.yaml:3:63: unknown upsert value 'emial'; valid: 'email', 'stage' or 'golden_id'",
        id="upsert_value_names_canonical_fields",
    ),
    pytest.param(
        [("{objects: [Contact, Lead],", "{objects: [Contact, Lead], create_as: Leads,")],
        "contacts.yaml:3:46: unknown object 'Leads' in create_as of 'crm'; valid: 'Contact' or 'Lead'",
        id="create_as_not_among_objects",
    ),
    pytest.param(
        [("upsert: {key: Email, value: email}", "upsert: {key: Email, val: email}")],
        "contacts.yaml:3:56: unknown key 'val'; valid: 'key' or 'value'; did you mean 'value'?",
        id="unknown_nested_key_suggests_closest",
    ),
    pytest.param(
        [(MARKETING, MARKETING + "\n  erp: {objects: [Item]}")],
        "contacts.yaml:5:3: system 'erp' is not in connection 'sync' (its systems: 'crm', 'marketing')",
        id="mapping_system_not_in_connection",
    ),
    pytest.param(
        [(MARKETING, MARKETING + "\n  erp: {objects: [Item]}"), email("erp: sku")],
        "contacts.yaml:8:54: field 'email' is mapped to system 'erp', which is not in connection 'sync'",
        id="field_mapped_to_system_connection_lacks",
    ),
    pytest.param(
        [(MARKETING, "")],
        "contacts.yaml:7:36: unknown key 'marketing' in field 'email'; valid: 'type', 'policy', 'prefer', 'from', "
        "'values' or 'transform', or a system of this mapping: 'crm'",
        id="field_names_a_system_the_mapping_left_out",
    ),
    pytest.param(
        [("[Contact, Lead]", "[Contact, Leads]")],
        "contacts.yaml:3:28: connector 'fakecrm' has no contact object 'Leads'; valid: 'Contact' or 'Lead'",
        id="object_the_connector_does_not_offer",
    ),
    pytest.param(
        [("match: [email]", "match: [email")],
        "contacts.yaml:6:7: YAML syntax error: expected ',' or ']', but got ':'",
        id="yaml_syntax_error",
    ),
    pytest.param(
        [(VALUES, "values: {crm: {Open: lead}, hubspot: {a: b}}")],
        "contacts.yaml:8:98: unknown system 'hubspot' in the value maps of field 'stage'; valid: 'crm' or 'marketing'",
        id="value_map_for_unknown_system",
    ),
    pytest.param(
        [("  stage: {type: picklist", "  ~stage: {type: picklist")],
        "contacts.yaml:8:3: field '~stage': canonical field names may not start with '~'",
        id="reserved_tilde_field_name",
    ),
]


@pytest.mark.parametrize(("edits", "expected"), CASES)
def test_mapping_problem(edits: list[tuple[str, str]], expected: str, problems_of: object) -> None:
    contacts = CONTACTS
    for old, new in edits:
        assert old in contacts
        contacts = contacts.replace(old, new)
    found = problems_of(contacts=contacts)  # type: ignore[operator]
    prefix = expected.split(": ", 1)[0]
    assert any(p.startswith(expected) for p in found), f"{prefix}: not in\n" + "\n".join(found)
