"""state.url selects the PostgreSQL store: validated at file:line:col without echoing the URL, exclusive with
state.path, its password redacted; CLOSELOOP_STATE_URL wins over the file."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from pydantic import SecretStr

from closeloop.config import check_config

from .conftest import CONFIG, make_registry

Check = Callable[..., list[str]]
Write = Callable[..., Path]
ENV = {"MKT_TOKEN": "mkt-token-value-123", "PGPASS": "pg-Pa55-word"}
URL = "postgresql://closeloop:${PGPASS}@db.internal:5432/closeloop?sslmode=verify-full"


def test_state_url_selects_postgresql_and_its_password_is_a_secret(write: Write) -> None:
    config, problems = check_config(
        write(config=CONFIG.replace("{path: ./state.db}", f"{{url: '{URL}'}}")), make_registry(), ENV
    )
    assert problems == []
    assert config is not None
    target = config.state.target(None)
    assert target == "postgresql://closeloop:pg-Pa55-word@db.internal:5432/closeloop?sslmode=verify-full"
    assert "pg-Pa55-word" in config.secrets()
    assert "pg-Pa55-word" not in repr(config.state)


@pytest.mark.parametrize(
    ("state", "expected"),
    [
        pytest.param(
            "{url: 'mysql://u:hunter2-pass@h/db'}",
            "closeloop.yaml:1:14: state.url must be a PostgreSQL URL, postgresql://user@host:5432/database "
            "(found scheme 'mysql'); a SQLite file goes in state.path",
            id="other_scheme",
        ),
        pytest.param(
            "{url: ./state.db}",
            "closeloop.yaml:1:14: state.url must be a PostgreSQL URL, postgresql://user@host:5432/database "
            "(found no scheme)",
            id="a_path_in_url",
        ),
        pytest.param(
            "{path: ./state.db, url: 'postgresql://u:hunter2-pass@h/db'}",
            "closeloop.yaml:1:32: state.url and state.path name two different stores; give one of them",
            id="both",
        ),
    ],
)
def test_state_url_problems_are_placed_and_never_show_the_url(problems_of: Check, state: str, expected: str) -> None:
    found = problems_of(config=CONFIG.replace("{path: ./state.db}", state))
    assert any(p.startswith(expected) for p in found), "\n".join(found)
    assert not any("hunter2-pass" in p for p in found)


def test_the_environment_wins_over_the_file(write: Write) -> None:
    config, _ = check_config(
        write(config=CONFIG.replace("{path: ./state.db}", f"{{url: '{URL}'}}")), make_registry(), ENV
    )
    assert config is not None
    env_url = SecretStr("postgresql://other@replica-db/closeloop")
    assert config.state.target(None, env_url) == "postgresql://other@replica-db/closeloop"


def test_without_a_url_the_sqlite_file_stays(write: Write, tmp_path: Path) -> None:
    config, _ = check_config(write(), make_registry(), ENV)
    assert config is not None
    assert config.state.target(None) == tmp_path / "state.db"
    assert config.state.target(tmp_path / "vol") == tmp_path / "vol" / "state.db"
