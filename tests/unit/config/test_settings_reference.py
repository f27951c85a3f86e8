"""docs/settings.md is what the settings models and the example mappings say now: it cannot drift from validation."""

from __future__ import annotations

from pathlib import Path
from typing import get_args

import pytest
from closeloop_connectors.zoho.settings import ZohoSettings

from closeloop.cli.reference import main, render
from closeloop.connector import registry

ROOT = Path(__file__).resolve().parents[3]
REFERENCE = ROOT / "docs" / "settings.md"


def test_reference_is_regenerated_after_every_model_change() -> None:
    expected = render(registry(), ROOT / "config" / "examples")
    assert REFERENCE.read_text(encoding="utf-8") == expected, "regenerate: python -m closeloop.cli.reference"


def test_zoho_data_centres_are_the_values_validation_accepts() -> None:
    (row,) = [line for line in REFERENCE.read_text(encoding="utf-8").splitlines() if line.startswith("| `data_centre`")]
    accepted = get_args(ZohoSettings.model_fields["data_centre"].annotation)
    assert row.split(" | ")[1] == " \\| ".join(f"`{value}`" for value in accepted)


@pytest.mark.parametrize(
    "setting", ["contact_roles", "lead_fields", "watched_fields", "scan_start_id", "scan_gap_batches", "data_centre"]
)
def test_settings_a_newcomer_needs_are_documented(setting: str) -> None:
    assert f"| `{setting}` |" in REFERENCE.read_text(encoding="utf-8")


def test_check_mode_reports_a_stale_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    stale = tmp_path / "settings.md"
    stale.write_text(REFERENCE.read_text(encoding="utf-8").replace("Zoho", "Zogo"), encoding="utf-8")
    assert main(["--out", str(stale), "--examples", str(ROOT / "config" / "examples"), "--check"]) == 1
    assert "out of date" in capsys.readouterr().out
    assert main(["--out", str(REFERENCE), "--examples", str(ROOT / "config" / "examples"), "--check"]) == 0
