"""Parsing of policies, preferences, rollups, durations and cron expressions, and how filters match."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest

from closeloop.config.policies import (
    LOOP,
    Condition,
    Earliest,
    Filter,
    FromLoop,
    OneWay,
    Prefer,
    Rollup,
    TwoWay,
    WriteOnce,
    check_cron,
    parse_duration,
    parse_from,
    parse_policy,
    parse_prefer,
)

SYSTEMS = ["crm", "marketing"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("30s", timedelta(seconds=30), id="seconds"),
        pytest.param("10m", timedelta(minutes=10), id="minutes"),
        pytest.param("1h", timedelta(hours=1), id="hours"),
        pytest.param("1d", timedelta(days=1), id="days"),
        pytest.param("1h30m", timedelta(minutes=90), id="combined"),
        pytest.param(45, timedelta(seconds=45), id="bare_number_is_seconds"),
        pytest.param("120", timedelta(seconds=120), id="digits_are_seconds"),
    ],
)
def test_duration_parses(text: str | int, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize(
    "text", ["1w", "10 minutes", "m10", "", "1.5h"], ids=["week", "word", "unit_first", "empty", "fraction"]
)
def test_bad_duration_names_the_units(text: str) -> None:
    with pytest.raises(ValueError, match="use a number and a unit s, m, h or d"):
        parse_duration(text)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("two-way", TwoWay(), id="two_way"),
        pytest.param("write-once", WriteOnce(), id="write_once"),
        pytest.param("earliest", Earliest(), id="earliest"),
        pytest.param("marketing -> crm", OneWay(source="marketing", target="crm"), id="one_way"),
        pytest.param("crm->marketing", OneWay(source="crm", target="marketing"), id="one_way_without_spaces"),
    ],
)
def test_policy_parses(text: str, expected: object) -> None:
    assert parse_policy(text, SYSTEMS) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param(
            "both",
            "unknown policy 'both'; valid: 'two-way', 'write-once', 'earliest', 'crm -> marketing' or"
            " 'marketing -> crm'",
            id="unknown_policy_names_valid_ones",
        ),
        pytest.param(
            "crm -> erp",
            "unknown system 'erp' in 'crm -> erp'; valid: 'crm' or 'marketing'",
            id="one_way_to_unknown_system",
        ),
        pytest.param("crm -> crm", "goes from a system to itself", id="one_way_to_itself"),
    ],
)
def test_bad_policy_names_valid_ones(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        parse_policy(text, SYSTEMS)


@pytest.mark.parametrize(
    ("policy", "source", "target", "flows"),
    [
        pytest.param(TwoWay(), "crm", "marketing", True, id="two_way_flows_both_ways"),
        pytest.param(OneWay(source="crm", target="marketing"), "marketing", "crm", False, id="one_way_blocks_back"),
        pytest.param(OneWay(source="crm", target="marketing"), "crm", "marketing", True, id="one_way_forward"),
        pytest.param(FromLoop(rollup=Rollup.CLOSED_WON_REVENUE), "crm", "marketing", False, id="rollup_not_synced"),
        pytest.param(Earliest(), "crm", "marketing", False, id="earliest_never_flows"),
        pytest.param(FromLoop(rollup=Rollup.CLOSED_WON_REVENUE), LOOP, "marketing", True, id="rollup_from_loop"),
    ],
)
def test_policy_flows(policy: TwoWay | OneWay | FromLoop | Earliest, source: str, target: str, flows: bool) -> None:
    assert policy.flows(source, target) is flows


def test_prefer_parses_unless_blank() -> None:
    assert parse_prefer("crm unless blank", SYSTEMS) == Prefer(system="crm", unless_blank=True)
    assert parse_prefer("marketing", SYSTEMS) == Prefer(system="marketing")


def test_from_parses_every_rollup() -> None:
    for rollup in Rollup:
        assert parse_from(f"loop.{rollup.value}") == FromLoop(rollup=rollup)


def test_cron_accepts_five_fields() -> None:
    assert check_cron("*/5 * * * *") == "*/5 * * * *"


@pytest.mark.parametrize(
    ("condition", "record", "matches"),
    [
        pytest.param(Condition(field="stage", op="in", values=("mql", "sql")), {"stage": "sql"}, True, id="in"),
        pytest.param(Condition(field="stage", op="in", values=("mql",)), {"stage": "lead"}, False, id="not_in"),
        pytest.param(Condition(field="n", op="equals", values=(1,)), {"n": "1"}, True, id="equals_as_text"),
        pytest.param(Condition(field="x", op="not_blank", values=(True,)), {"x": "  "}, False, id="blank"),
        pytest.param(Condition(field="x", op="not_blank", values=(True,)), {"x": "a"}, True, id="not_blank"),
        pytest.param(Condition(field="x", op="not_blank", values=(False,)), {}, True, id="blank_wanted"),
    ],
)
def test_condition_matches(condition: Condition, record: dict[str, object], matches: bool) -> None:
    assert condition.matches(record) is matches


def test_empty_filter_matches_everything() -> None:
    assert Filter().matches({})
