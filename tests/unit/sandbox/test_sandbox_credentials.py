"""``closeloop sandbox`` prints, beside each URL, credentials that are real settings of the vendor's connector, and
seeds every object the connector reads."""

from __future__ import annotations

import shlex
import stat
from pathlib import Path

import pytest

from closeloop.connector import registry
from closeloop.sandbox.cli import build_sandboxes
from closeloop.sandbox.env import env_name, export_lines

INSTALLED = [name for name in registry().names if registry().get(name).sandbox is not None]


@pytest.mark.parametrize("vendor", INSTALLED)
def test_credentials_are_settings_the_connector_accepts(vendor: str, tmp_path: Path) -> None:
    plugin = registry().get(vendor)
    box = plugin.sandbox(seed=1)  # type: ignore[misc]
    box.base_url = "http://127.0.0.1:8701"
    credentials = box.credentials(tmp_path)
    assert credentials["base_url"] == "http://127.0.0.1:8701"
    settings = plugin.settings_model(**credentials)  # a missing credential or an unknown key is refused here
    assert settings.base_url == "http://127.0.0.1:8701"


def test_salesforce_key_file_is_written_for_its_owner_only(tmp_path: Path) -> None:
    box = registry().get("salesforce").sandbox(seed=1)  # type: ignore[misc]
    key_file = Path(box.credentials(tmp_path / "keys")["private_key_file"])
    assert key_file.read_text().startswith("-----BEGIN PRIVATE KEY-----")
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600


def test_export_lines_name_connector_and_setting_and_quote_values() -> None:
    lines = export_lines("zoho", {"client_secret": "a b$c", "data_centre": "eu"})
    assert lines == ["export ZOHO_CLIENT_SECRET='a b$c'", "export ZOHO_DATA_CENTRE=eu"]
    assert shlex.split(lines[0]) == ["export", "ZOHO_CLIENT_SECRET=a b$c"]
    assert env_name("pardot", "business_unit_id") == "PARDOT_BUSINESS_UNIT_ID"


@pytest.mark.parametrize("vendor", INSTALLED)
def test_every_object_the_connector_reads_is_seeded(vendor: str) -> None:
    ((_, box),) = build_sandboxes([vendor], seed=1, people=10, deals=4, leads=3)
    objects = registry().get(vendor).objects
    for obj in objects:
        assert list(box.table(obj).live()), f"{vendor} seeds no {obj}"
