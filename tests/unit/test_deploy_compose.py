"""deploy/docker-compose.yml (PostgreSQL and two replicas) checked without a container runtime: parsed and read."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from closeloop.cli import build_parser
from closeloop.daemon.settings import DaemonSettings

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
REPLICAS = ("replica-a", "replica-b")


def _load(name: str) -> dict[str, Any]:
    data = YAML(typ="safe").load((DEPLOY / name).read_text())
    assert isinstance(data, dict)
    return data


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return _load("docker-compose.yml")


def _subcommands() -> set[str]:
    parser = build_parser()
    action = next(a for a in parser._actions if a.dest == "command")  # argparse keeps subparsers there
    return set(action.choices)


def test_the_replicated_setup_has_postgres_and_two_replicas(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert {"postgres", *REPLICAS} <= set(services)
    assert str(services["postgres"]["image"]).startswith("postgres:")
    assert "pg_isready" in services["postgres"]["healthcheck"]["test"]


@pytest.mark.parametrize("replica", REPLICAS)
def test_each_replica_is_built_from_the_repositorys_dockerfile(compose: dict[str, Any], replica: str) -> None:
    build = compose["services"][replica]["build"]
    assert (DEPLOY / build["context"] / build.get("dockerfile", "Dockerfile")).resolve() == REPO / "Dockerfile"


@pytest.mark.parametrize("replica", REPLICAS)
def test_each_replica_shares_the_postgres_store_and_waits_for_it(compose: dict[str, Any], replica: str) -> None:
    service = compose["services"][replica]
    env = service["environment"]
    assert env["CLOSELOOP_STATE_URL"].startswith("postgresql://")
    assert "@postgres:5432/" in env["CLOSELOOP_STATE_URL"]
    assert ":" not in env["CLOSELOOP_STATE_URL"].split("@")[0].removeprefix("postgresql://")  # no password in it
    assert env["PGPASSWORD"].startswith("${")  # from the operator's environment, never written here
    assert service["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert service["command"][0] in _subcommands()


def test_replicas_have_their_own_names_and_ports(compose: dict[str, Any]) -> None:
    envs = [compose["services"][r]["environment"] for r in REPLICAS]
    assert len({env["CLOSELOOP_REPLICA"] for env in envs}) == len(REPLICAS)
    ports = {env["CLOSELOOP_HTTP_PORT"] for env in envs}
    assert len(ports) == len(REPLICAS)  # they share one network namespace
    published = {str(p).split(":")[0] for p in compose["services"]["hubspot"]["ports"]}
    assert ports <= published


@pytest.mark.parametrize("replica", REPLICAS)
def test_each_replica_is_health_checked_on_its_own_readyz(compose: dict[str, Any], replica: str) -> None:
    service = compose["services"][replica]
    check = " ".join(service["healthcheck"]["test"])
    assert "/readyz" in check
    assert "CLOSELOOP_HTTP_PORT" in check
    grace = str(service["stop_grace_period"])
    assert grace.endswith("s")
    assert float(grace.removesuffix("s")) > DaemonSettings().grace_seconds  # a running sync may finish


@pytest.mark.parametrize("replica", REPLICAS)
def test_each_replica_reads_settings_closeloop_knows(
    compose: dict[str, Any], replica: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = compose["services"][replica]["environment"]
    for key, value in env.items():
        monkeypatch.setenv(key, str(value))
    settings = DaemonSettings()
    assert settings.replica == env["CLOSELOOP_REPLICA"]
    assert settings.http_port == int(env["CLOSELOOP_HTTP_PORT"])
    config = env["CLOSELOOP_CONFIG"].removeprefix("/etc/closeloop/")
    assert (REPO / "config" / config).is_file()


def test_sandbox_services_run_closeloop_commands(compose: dict[str, Any]) -> None:
    for name in ("hubspot", "salesforce"):
        command = compose["services"][name]["command"]
        assert command[0] in _subcommands(), shlex.join(command)


def test_the_single_node_default_stays_beside_it() -> None:
    single = _load("docker-compose.single.yml")
    env = single["services"]["closeloop"]["environment"]
    assert "CLOSELOOP_STATE_URL" not in env  # SQLite in its volume
    assert any("/var/lib/closeloop" in str(v) for v in single["services"]["closeloop"]["volumes"])
