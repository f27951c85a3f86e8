"""The helpers the engine calls on a loaded configuration."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from closeloop.config import ConfigError, Entity, FromLoop, LoadedConfig, OneWay, Rollup, load_config
from closeloop.connector import Registry
from closeloop.connector import registry as installed_registry

Named = Callable[[str, str], Registry]
CONFIG = Path(__file__).resolve().parents[3] / "config" / "sandbox.yaml"


@pytest.fixture
def config(registry_named: Named) -> LoadedConfig:
    return load_config(CONFIG, installed_registry(), {})


def test_native_field_per_object(config: LoadedConfig) -> None:
    contacts = config.connection("crm-marketing").mapping(Entity.CONTACT)
    assert contacts is not None
    assert contacts.native_field("crm", "Lead", "company") == "Company"
    assert contacts.native_field("crm", "Contact", "company") is None
    assert contacts.native_field("marketing", "contacts", "email") == "email"


def test_fields_for_keeps_file_order(config: LoadedConfig) -> None:
    contacts = config.connection("crm-marketing").mapping("contact")
    assert contacts is not None
    fields = contacts.fields_for("crm", "Contact")
    assert list(fields)[:3] == ["email", "first_name", "last_name"]
    assert "company" not in fields
    assert contacts.canonical_field("marketing", "contacts", "lifecyclestage") == "lifecycle_stage"


def test_parsed_policies(config: LoadedConfig) -> None:
    contacts = config.connection("crm-marketing").mapping("contact")
    assert contacts is not None
    assert contacts.fields["lifecycle_stage"].policy == OneWay(source="marketing", target="crm")
    assert contacts.fields["closed_won_revenue"].policy == FromLoop(rollup=Rollup.CLOSED_WON_REVENUE)
    assert contacts.fields["closed_won_revenue"].systems == ("marketing",)


def test_value_maps_both_ways(config: LoadedConfig) -> None:
    deals = config.connection("crm-marketing").mapping("deal")
    assert deals is not None
    stage = deals.fields["stage"]
    assert stage.to_canonical("marketing", "contractsent") == "negotiation"
    assert stage.to_native("crm", "negotiation") == "Negotiation/Review"
    assert stage.to_native("marketing", "negotiation") == "contractsent"
    assert stage.to_canonical("crm", "Unmapped Stage") == "Unmapped Stage"


def test_create_rules(config: LoadedConfig) -> None:
    contacts = config.connection("crm-marketing").mapping("contact")
    assert contacts is not None
    assert contacts.may_create("crm", "marketing", {})
    assert contacts.may_create("marketing", "crm", {"lifecycle_stage": "sql"})
    assert not contacts.may_create("marketing", "crm", {"lifecycle_stage": "subscriber"})
    deals = config.connection("crm-marketing").mapping("deal")
    assert deals is not None
    assert deals.create_rule("marketing", "crm") is None


def test_connection_helpers(config: LoadedConfig) -> None:
    connection = config.connection("crm-marketing")
    assert connection.other("crm") == "marketing"
    assert connection.other("marketing") == "crm"
    assert connection.schedule.every == timedelta(seconds=10)
    assert connection.lookback == timedelta(minutes=1)
    with pytest.raises(KeyError, match="not in connection"):
        connection.other("erp")
    with pytest.raises(KeyError, match="configured: crm-marketing"):
        config.connection("nope")


def test_loop_rates_are_decimals(config: LoadedConfig) -> None:
    assert config.loop.rates["EUR"] == Decimal("1.08")
    assert config.loop.to_base(Decimal("100"), "EUR") == Decimal("108.00")
    assert config.loop.to_base(Decimal("5"), "USD") == Decimal("5")
    with pytest.raises(KeyError, match="known: USD, EUR, GBP"):
        config.loop.to_base(Decimal("1"), "JPY")


def test_state_path_is_relative_to_the_config_file_and_moves_into_state_dir(config: LoadedConfig) -> None:
    assert config.state.resolve(None) == config.path.parent / "state" / "sandbox.db"
    assert config.state.resolve(Path("/var/lib/closeloop")) == Path("/var/lib/closeloop/sandbox.db")


def test_models_are_frozen(config: LoadedConfig) -> None:
    with pytest.raises(ValueError, match="frozen"):
        config.connection("crm-marketing").lookback = timedelta()  # type: ignore[misc]


def test_load_config_raises_with_every_problem(tmp_path: Path, registry_named: Named) -> None:
    path = tmp_path / "closeloop.yaml"
    path.write_text("systems: {}\nconnections: []\nloop: {time_decay_half_life_days: 0}\n", encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_config(path, registry_named("a", "b"), {})
    assert [f"{p.line}:{p.col}" for p in caught.value.problems] == ["2:14", "3:35"]
