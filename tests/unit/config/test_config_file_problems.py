"""Every mistake in closeloop.yaml is reported at its file:line:col with what would be valid.

The cases edit conftest.CONFIG; its line numbers are given in the comments of CONFIG below.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import pytest

from .conftest import CONFIG, CONTACTS

Check = Callable[..., list[str]]
ENV = {"MKT_TOKEN": "mkt-token-value-123"}

CASES = [
    pytest.param(
        [("connector: fakecrm", "connector: fakecrn")],
        ENV,
        "closeloop.yaml:4:16: unknown connector 'fakecrn'; installed: 'fakecrm' or 'fakemkt'; did you mean 'fakecrm'?",
        id="unknown_connector_lists_installed",
    ),
    pytest.param(
        [],
        {},
        "closeloop.yaml:8:23: environment variable MKT_TOKEN is not set (set it, or give a default: "
        "${MKT_TOKEN:-default})",
        id="missing_env_var_is_named",
    ),
    pytest.param(
        [('{token: "${MKT_TOKEN}"}', '{token: "${MKT_TOKEN}", tokn: x}')],
        ENV,
        "closeloop.yaml:8:39: unknown key 'tokn'; valid: 'base_url', 'auth_url',",
        id="unknown_settings_key_lists_valid_ones",
    ),
    pytest.param(
        [(', client_secret: "${CRM_SECRET:-default-secret}"', "")],
        ENV,
        "closeloop.yaml:5:5: missing required key 'client_secret'",
        id="missing_settings_key",
    ),
    pytest.param(
        [('{token: "${MKT_TOKEN}"}', '{token: "${MKT_TOKEN}", timeout_seconds: soon}')],
        ENV,
        "closeloop.yaml:8:56: timeout_seconds: Input should be a valid number",
        id="settings_value_of_wrong_type",
    ),
    pytest.param(
        [("{every: 60s}", "{every: 60x}")],
        ENV,
        "closeloop.yaml:13:23: bad duration '60x'; use a number and a unit s, m, h or d",
        id="bad_duration_names_units",
    ),
    pytest.param(
        [("lookback: 10m", "lookback: 1w")],
        ENV,
        "closeloop.yaml:14:15: bad duration '1w'",
        id="bad_lookback",
    ),
    pytest.param(
        [("{every: 60s}", "{every: 0s}")],
        ENV,
        "closeloop.yaml:13:23: every: 0s is out of range; a schedule runs every 5s to 31d (use cron for rarer runs)",
        id="every_zero",
    ),
    pytest.param(
        [("{every: 60s}", "{every: 4s}")],
        ENV,
        "closeloop.yaml:13:23: every: 4s is out of range; a schedule runs every 5s to 31d",
        id="every_too_small",
    ),
    pytest.param(
        [("{every: 60s}", "{every: 0}")],
        ENV,
        "closeloop.yaml:13:23: every: 0s is out of range",
        id="every_bare_zero",
    ),
    pytest.param(
        [("{every: 60s}", "{every: 32d}")],
        ENV,
        "closeloop.yaml:13:23: every: 32d is out of range; a schedule runs every 5s to 31d (use cron for rarer runs)",
        id="every_too_large",
    ),
    pytest.param(
        [("{every: 60s}", "{every: -5}")],
        ENV,
        "closeloop.yaml:13:23: bad duration -5; a duration is not negative",
        id="every_negative",
    ),
    pytest.param(
        [("{every: 60s}", "{every: 60s, jitter: -1}")],
        ENV,
        "closeloop.yaml:13:36: bad duration -1; a duration is not negative",
        id="jitter_negative",
    ),
    pytest.param(
        [("lookback: 10m", "lookback: 99999999999d")],
        ENV,
        "closeloop.yaml:14:15: bad duration '99999999999d'; it is too long to be a duration",
        id="lookback_overflows",
    ),
    pytest.param(
        [("{every: 60s}", '{cron: "61 * * * *"}')],
        ENV,
        "closeloop.yaml:13:22: bad cron expression '61 * * * *'",
        id="bad_cron_value",
    ),
    pytest.param(
        [("{every: 60s}", '{cron: "*/5 * *"}')],
        ENV,
        "closeloop.yaml:13:22: bad cron expression '*/5 * *': Wrong number of fields; got 3, expected 5",
        id="bad_cron_field_count",
    ),
    pytest.param(
        [("{every: 60s}", "{jitter: 5s}")],
        ENV,
        "closeloop.yaml:13:5: a schedule needs exactly one of 'every' (e.g. 60s) or 'cron'",
        id="schedule_needs_every_or_cron",
    ),
    pytest.param(
        [("{every: 60s}", "{evry: 60s}")],
        ENV,
        "closeloop.yaml:13:16: unknown key 'evry'; valid: 'every', 'cron' or 'jitter'; did you mean 'every'?",
        id="unknown_schedule_key",
    ),
    pytest.param(
        [("systems: [crm, marketing]", "systems: [crm, mkt]")],
        ENV,
        "closeloop.yaml:11:20: unknown system 'mkt'; valid: 'crm' or 'marketing'",
        id="unknown_system_in_connection",
    ),
    pytest.param(
        [("systems: [crm, marketing]", "systems: [crm]")],
        ENV,
        "closeloop.yaml:11:14: systems: List should have at least 2 items",
        id="connection_needs_two_systems",
    ),
    pytest.param(
        [("marketing_system: marketing", "marketing_system: hubspot")],
        ENV,
        "closeloop.yaml:15:23: unknown system 'hubspot'; valid: 'crm' or 'marketing'",
        id="unknown_marketing_system",
    ),
    pytest.param(
        [("[contacts.yaml]", "[contact.yaml]")],
        ENV,
        "closeloop.yaml:12:16: mapping file 'contact.yaml' not found",
        id="mapping_file_not_found",
    ),
    pytest.param(
        [("[contacts.yaml]", "[deals.yaml, contacts.yaml]")],
        ENV,
        "closeloop.yaml:12:28: list the contact mapping before the deal mapping",
        id="deals_before_contacts",
    ),
    pytest.param(
        [("[contacts.yaml]", "[contacts.yaml, contacts.yaml]")],
        ENV,
        "closeloop.yaml:12:31: a second contact mapping; a connection has one mapping per entity",
        id="two_mappings_of_one_entity",
    ),
    pytest.param(
        [("loop:", "loops:")],
        ENV,
        "closeloop.yaml:16:1: unknown key 'loops'; valid: 'state', 'systems', 'connections' or 'loop'; "
        "did you mean 'loop'?",
        id="unknown_top_level_key",
    ),
    pytest.param(
        [('{EUR: "1.08"}', '{EUR: "1,08"}')],
        ENV,
        "closeloop.yaml:18:16: bad rate '1,08' for EUR; use a positive decimal",
        id="bad_rate",
    ),
    pytest.param(
        [('{EUR: "1.08"}', '{eur: "1.08"}')],
        ENV,
        "closeloop.yaml:18:11: bad currency code 'eur'; use an ISO 4217 code",
        id="bad_currency_code",
    ),
    pytest.param(
        [("base_currency: USD", "base_currency: usd")],
        ENV,
        "closeloop.yaml:17:18: base_currency: String should match pattern",
        id="bad_base_currency",
    ),
    pytest.param(
        [('rates: {EUR: "1.08"}', 'rates: {EUR: "1.08"}\n  won_stages: {crn: [Won]}')],
        ENV,
        "closeloop.yaml:19:16: unknown system 'crn'; valid: 'crm' or 'marketing'; did you mean 'crm'?",
        id="won_stages_of_unknown_system",
    ),
    pytest.param(
        [("  marketing:\n", "  crm:\n")],
        ENV,
        "closeloop.yaml:6:3: duplicate key 'crm' (first defined at line 3)",
        id="duplicate_system",
    ),
    pytest.param(
        [("  - name: sync", "  - name: sync\n  - name: other")],
        ENV,
        "closeloop.yaml:10:5: missing required key 'systems'",
        id="connection_missing_keys",
    ),
    pytest.param(
        [("state: {path: ./state.db}", "state: {path: ./state.db")],
        ENV,
        "closeloop.yaml:2:8: YAML syntax error: expected ',' or '}', but got ':'",
        id="yaml_syntax_error",
    ),
]


@pytest.mark.parametrize(("edits", "environ", "expected"), CASES)
def test_config_problem(
    edits: list[tuple[str, str]], environ: Mapping[str, str], expected: str, problems_of: Check
) -> None:
    config = CONFIG
    for old, new in edits:
        assert old in config
        config = config.replace(old, new)
    found = problems_of(config=config, environ=environ)
    assert any(p.startswith(expected) for p in found), "\n".join(found)


def test_problems_of_both_files_are_collected_together(problems_of: Check) -> None:
    config = CONFIG.replace("lookback: 10m", "lookback: 1w")
    contacts = CONTACTS.replace("on_delete: unlink", "on_delete: delete")
    found = problems_of(config=config, contacts=contacts)
    assert [p.split(":", 1)[0] for p in found] == ["closeloop.yaml", "contacts.yaml"]


def test_secret_values_never_appear_in_messages(problems_of: Check) -> None:
    config = CONFIG.replace('{token: "${MKT_TOKEN}"}', '{token: x, daily_budget: "${MKT_TOKEN}"}')
    found = problems_of(config=config, environ={"MKT_TOKEN": "hunter2-secret"})
    assert found
    assert not any("hunter2-secret" in p for p in found)


def test_a_broken_entry_does_not_cascade(problems_of: Check) -> None:
    contacts = CONTACTS.replace("value: email}", "val: email}")
    found = problems_of(contacts=contacts)
    assert found == [
        "contacts.yaml:3:35: missing required key 'value' (keys: 'key' or 'value')",
        "contacts.yaml:3:56: unknown key 'val'; valid: 'key' or 'value'; did you mean 'value'?",
    ]


def test_a_plain_value_after_a_commented_key_is_a_problem_not_an_internal_error(problems_of: Check) -> None:
    """ruamel.yaml's round-trip parser raises NotImplementedError on this shape (found by the config fuzzer)."""
    plain = "create:   # who creates where\n  crm -> marketing all\n\n"
    contacts = CONTACTS.replace("create: {crm -> marketing: all}\n", plain)
    found = problems_of(contacts=contacts)
    assert found == ["contacts.yaml:10:3: create: Input should be a mapping"], found
