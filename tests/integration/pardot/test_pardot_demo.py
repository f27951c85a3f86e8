"""``closeloop demo --marketing pardot``: Salesforce and Account Engagement sandboxes on loopback, end to end."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from closeloop.cli import main
from closeloop.cli.demo import run_demo


async def test_demo_with_pardot_shows_revenue_on_a_prospect(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "report.html"
    assert await run_demo(40, out, "pardot") == 0
    printed = capsys.readouterr().out
    assert "sandbox pardot (marketing)" in printed
    revenue = re.search(r"closeloop_revenue__c = \s*(\d+)", printed)
    assert revenue is not None, printed
    assert int(revenue.group(1)) > 0
    assert out.read_text().lower().startswith("<!doctype html>")


def test_demo_names_the_missing_config_of_an_unknown_marketing_system(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit, match=r"config/sandbox-nosuch\.yaml not found"):
        main(["demo", "--marketing", "nosuch"])
