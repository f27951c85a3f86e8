"""The Account Engagement (Pardot) example configuration and its mappings validate and match the JSON Schemas."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
from ruamel.yaml import YAML

from closeloop.config import build_schemas, load_config
from closeloop.config.policies import Earliest, FromLoop, WriteOnce
from closeloop.connector import registry

CONFIG_DIR = Path(__file__).resolve().parents[3] / "config"
MAPPINGS = sorted(p.relative_to(CONFIG_DIR).as_posix() for p in (CONFIG_DIR / "mappings" / "pardot").glob("*.yaml"))


def test_pardot_sandbox_config_validates_with_no_environment() -> None:
    config = load_config(CONFIG_DIR / "sandbox-pardot.yaml", registry(), {})
    assert config.systems["marketing"].connector == "pardot"
    contacts, _ = config.connection("crm-marketing").mappings
    # Beside Salesforce's own connector: nothing is created, and only rollups are written to prospects.
    assert contacts.create == ()
    written = {name for name, field in contacts.fields.items() if not isinstance(field.policy, WriteOnce | Earliest)}
    assert written == {name for name, field in contacts.fields.items() if isinstance(field.policy, FromLoop)}
    assert contacts.fields["created_at"].native["marketing"] == {"prospects": "createdAt"}


@pytest.mark.parametrize("path", ["sandbox-pardot.yaml", *MAPPINGS])
def test_pardot_examples_match_their_json_schema(path: str) -> None:
    kind = "mapping" if path.startswith("mappings/") else "closeloop"
    data = json.loads(json.dumps(YAML(typ="safe").load(CONFIG_DIR / path)))
    jsonschema.validate(data, build_schemas()[kind])


def test_six_pardot_mappings_ship() -> None:
    names = {Path(p).stem for p in MAPPINGS}
    assert names == {f"{crm}-{entity}" for crm in ("salesforce", "hubspot", "zoho") for entity in ("contacts", "deals")}
