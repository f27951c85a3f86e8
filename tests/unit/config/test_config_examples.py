"""The example configurations in config/ validate, and the committed JSON Schema files are up to date."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import jsonschema
import pytest
from ruamel.yaml import YAML

from closeloop.config import build_schemas, load_config
from closeloop.config.schema import FILES, render
from closeloop.connector import Registry
from closeloop.connector import registry as installed_registry

ROOT = Path(__file__).resolve().parents[3]
CONFIG_DIR = ROOT / "config"
Named = Callable[[str, str], Registry]
PRODUCTION_ENV = {"SF_CLIENT_ID": "id", "SF_USERNAME": "sync@example.com", "HUBSPOT_TOKEN": "pat-1"}


@pytest.mark.parametrize("name", ["closeloop.yaml", "sandbox.yaml"])
def test_example_config_validates(name: str, registry_named: Named) -> None:
    config = load_config(CONFIG_DIR / name, installed_registry(), PRODUCTION_ENV)
    connection = config.connection("crm-marketing")
    assert [m.entity.value for m in connection.mappings] == ["contact", "deal"]
    assert connection.marketing_system == "marketing"


def test_sandbox_config_needs_no_environment(registry_named: Named) -> None:
    config = load_config(CONFIG_DIR / "sandbox.yaml", installed_registry(), {})
    assert config.systems["marketing"].settings.base_url == "http://127.0.0.1:8701"
    assert "pat-na1-sandbox-1" in config.secrets()


def test_schema_files_are_up_to_date() -> None:
    for kind, schema in build_schemas().items():
        committed = (CONFIG_DIR / "schema" / FILES[kind]).read_text(encoding="utf-8")
        assert committed == render(schema), "regenerate with closeloop.config.write_schemas(Path('config/schema'))"


@pytest.mark.parametrize(
    ("kind", "path"),
    [
        ("closeloop", "closeloop.yaml"),
        ("closeloop", "sandbox.yaml"),
        ("mapping", "mappings/contacts.yaml"),
        ("mapping", "mappings/deals.yaml"),
    ],
)
def test_example_files_match_their_json_schema(kind: str, path: str) -> None:
    data = json.loads(json.dumps(YAML(typ="safe").load(CONFIG_DIR / path)))
    jsonschema.validate(data, build_schemas()[kind])
