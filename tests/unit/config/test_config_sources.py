"""YAML positions, environment interpolation, the validate and schema commands, and process settings."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from pathlib import Path

import pytest

from closeloop.cli.config import schema_command, validate_command
from closeloop.config.env import interpolate
from closeloop.config.problems import Problems
from closeloop.config.yamlsrc import Mark, load_source
from closeloop.connector import Registry
from closeloop.connector import registry as installed_registry
from closeloop.settings import Settings

Named = Callable[[str, str], Registry]
SANDBOX = Path(__file__).resolve().parents[3] / "config" / "sandbox.yaml"


def test_positions_of_keys_and_values(tmp_path: Path) -> None:
    path = tmp_path / "a.yaml"
    path.write_text("a:\n  b: [x, 2]\n", encoding="utf-8")
    source = load_source(path, Problems())
    assert source is not None
    assert source.data == {"a": {"b": ["x", 2]}}
    assert source.key_at(("a", "b")) == Mark(2, 3)
    assert source.at(("a", "b", 1)) == Mark(2, 10)
    assert source.at(("a", "missing", 3)) == Mark(2, 3)


@pytest.mark.parametrize(
    ("text", "environ", "expected", "problem"),
    [
        pytest.param("${A}", {"A": "one"}, "one", None, id="set"),
        pytest.param("x-${A}-y", {"A": "one"}, "x-one-y", None, id="inside_text"),
        pytest.param("${A:-two}", {}, "two", None, id="default_when_unset"),
        pytest.param("${A:-two}", {"A": ""}, "two", None, id="default_when_empty"),
        pytest.param("${A}", {}, "", "1:4: environment variable A is not set", id="missing_is_named"),
        pytest.param("${1A}", {}, "", "1:4: bad environment reference '${1A}'", id="bad_name"),
    ],
)
def test_interpolation(tmp_path: Path, text: str, environ: dict[str, str], expected: str, problem: str | None) -> None:
    path = tmp_path / "a.yaml"
    path.write_text(f"k: '{text}'\n", encoding="utf-8")
    problems = Problems()
    source = load_source(path, problems)
    assert source is not None
    interpolate(source, environ, problems)
    assert source.data == {"k": expected}
    found = [f"{p.line}:{p.col}: {p.message}" for p in problems.sorted()]
    assert found == [] if problem is None else found[0].startswith(problem)


def test_unreadable_file_is_a_problem(tmp_path: Path) -> None:
    problems = Problems()
    assert load_source(tmp_path / "none.yaml", problems) is None
    assert str(problems.sorted()[0]).startswith(f"{tmp_path}/none.yaml:1:1: cannot read file")


def test_validate_command_prints_summary(registry_named: Named) -> None:
    out, err = io.StringIO(), io.StringIO()
    assert validate_command(SANDBOX, installed_registry(), {}, out, err) == 0
    assert out.getvalue().count("\n") == 1
    assert "ok - systems crm (salesforce), marketing (hubspot)" in out.getvalue()
    assert err.getvalue() == ""


def test_validate_command_prints_problems_and_exits_2(tmp_path: Path, registry_named: Named) -> None:
    path = tmp_path / "closeloop.yaml"
    path.write_text("systems: {}\nconnections: [{name: x}]\n", encoding="utf-8")
    out, err = io.StringIO(), io.StringIO()
    assert validate_command(path, registry_named("a", "b"), {}, out, err) == 2
    lines = err.getvalue().splitlines()
    assert lines[0].startswith(f"{path}:2:15: missing required key 'mappings'")
    assert lines[1].startswith(f"{path}:2:15: missing required key 'systems'")
    assert lines[-1] == f"{path}: 2 problems; nothing was synced"
    assert out.getvalue() == ""


def test_schema_command_prints_both_schemas() -> None:
    out = io.StringIO()
    assert schema_command(out) == 0
    document = json.loads(out.getvalue())
    assert set(document) == {"closeloop", "mapping"}
    assert "connections" in document["closeloop"]["properties"]
    assert "from" in document["mapping"]["$defs"]["FieldDoc"]["properties"]


def test_settings_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("LOG_LEVEL", "LOG_FORMAT", "STATE_DIR", "HTTP_PORT", "HTTP_HOST", "CONFIG"):
        monkeypatch.delenv(f"CLOSELOOP_{name}", raising=False)
    settings = Settings()
    assert (settings.http_host, settings.http_port) == ("127.0.0.1", 8080)
    assert settings.config == Path("config/closeloop.yaml")
    assert (settings.log_level, settings.log_format, settings.state_dir) == ("INFO", "auto", None)


def test_settings_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLOSELOOP_LOG_LEVEL", "debug")
    monkeypatch.setenv("CLOSELOOP_LOG_FORMAT", "JSON")
    monkeypatch.setenv("CLOSELOOP_HTTP_PORT", "9090")
    monkeypatch.setenv("CLOSELOOP_STATE_DIR", "/var/lib/closeloop")
    settings = Settings()
    assert (settings.log_level, settings.log_format, settings.http_port) == ("DEBUG", "json", 9090)
    assert settings.state_dir == Path("/var/lib/closeloop")


def test_keys_are_always_text(tmp_path: Path) -> None:
    path = tmp_path / "a.yaml"
    path.write_text("values: {12345678: won, true: yes, 1.5: x}\n", encoding="utf-8")
    source = load_source(path, Problems())
    assert source is not None
    assert source.data == {"values": {"12345678": "won", "true": "yes", "1.5": "x"}}
