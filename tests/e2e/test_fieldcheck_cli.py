"""``closeloop validate --online``, ``sync`` and ``plan`` against served sandboxes, for a mapping naming a property
HubSpot does not have: each prints the file:line:col problem and exits 2, without a traceback."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

ConfigFactory = Callable[..., Path]


def closeloop(cli: list[str], *args: str, state: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 - our own CLI, fixed arguments
        [*cli, *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={"CLOSELOOP_STATE_DIR": str(state), "PATH": "/usr/bin:/bin"},
        check=False,
    )


def test_validate_online_passes_the_repository_mappings(
    make_config: ConfigFactory, cli: list[str], tmp_path: Path
) -> None:
    config = make_config()
    result = closeloop(cli, "validate", "--online", "--config", str(config), state=tmp_path / "state")
    assert (result.returncode, result.stderr) == (0, "")
    assert "every mapped field fits the vendors' describe" in result.stdout


@pytest.mark.parametrize("command", [["validate", "--online"], ["sync"], ["plan"]], ids=" ".join)
def test_a_missing_hubspot_property_exits_2_with_its_position(
    make_config: ConfigFactory, cli: list[str], tmp_path: Path, command: list[str]
) -> None:
    config = make_config()
    contacts = config.parent / "mappings" / "contacts.yaml"
    contacts.write_text(contacts.read_text().replace("marketing: jobtitle,", "marketing: jobtitel,"))
    result = closeloop(cli, *command, "--config", str(config), state=tmp_path / "state")
    assert result.returncode == 2
    (line, column), *_ = (
        (number, text.index("jobtitel") + 1)
        for number, text in enumerate(contacts.read_text().splitlines(), start=1)
        if "jobtitel" in text
    )
    problem = (
        f"{contacts.resolve()}:{line}:{column}: field 'title': marketing contacts has no field 'jobtitel'; "
        "close names: 'jobtitle'"
    )
    assert problem in result.stderr.splitlines()  # a line of its own (sync's log lines go to stderr too)
    assert "Traceback" not in result.stderr
