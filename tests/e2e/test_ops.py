"""What ops see when something is wrong: failed runs in health, metrics and exit codes; one writer per store;
one-line messages instead of tracebacks; a store found from any folder and never created by a read."""

from __future__ import annotations

import os
import sqlite3
import stat
import subprocess
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from .conftest import HUBSPOT_TOKEN

DaemonFactory = Callable[..., Any]
ConfigFactory = Callable[..., Path]


def closeloop(
    cli: list[str], args: Sequence[str], state: Path | None, *, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """Run one command as a user would, output piped (not a terminal); ``state`` None: no CLOSELOOP_STATE_DIR."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    if state is not None:
        env["CLOSELOOP_STATE_DIR"] = str(state)
    return subprocess.run(  # noqa: S603 - our own CLI, fixed arguments
        [*cli, *args], capture_output=True, text=True, timeout=120, env=env, cwd=cwd, check=False
    )


def with_bad_token(config: Path) -> Path:
    config.write_text(config.read_text().replace(HUBSPOT_TOKEN, "pat-na1-revoked"))
    return config


def run_rows(db: Path) -> list[tuple[str, str | None, str | None]]:
    with sqlite3.connect(db) as conn:
        return list(conn.execute("SELECT status, failure, error FROM runs ORDER BY id"))


def test_a_rejected_token_fails_the_run_and_readyz_metrics_and_status_say_so(
    make_config: ConfigFactory, tmp_path: Path, daemon_factory: DaemonFactory, cli: list[str]
) -> None:
    config = with_bad_token(make_config())
    daemon = daemon_factory(config)
    finished = daemon.wait_run_finished(timeout=30)
    assert finished["failure"] == "auth"
    with daemon.http() as http:
        ready = http.get("/readyz")
        assert ready.status_code == 503
        assert "connection crm-marketing: last run failed (auth)" in ready.text
        metrics = http.get("/metrics").text
    assert 'closeloop_runs_total{connection="crm-marketing",status="failed"} 1.0' in metrics
    assert 'closeloop_run_failures_total{connection="crm-marketing",kind="auth"} 1.0' in metrics
    assert not any("Traceback" in str(record) for record in daemon.records)
    daemon.stop()
    status = closeloop(cli, ["status", "--config", str(config)], tmp_path / "state")
    assert status.returncode == 0, status.stderr
    assert "failed (auth)" in status.stdout
    assert "marketing: HTTP 401" in status.stdout  # which system and why, one line: piped tables are not cut


def test_sync_with_a_rejected_token_exits_2_with_one_line_and_no_traceback(
    make_config: ConfigFactory, tmp_path: Path, cli: list[str]
) -> None:
    config = with_bad_token(make_config())
    result = closeloop(cli, ["sync", "--config", str(config)], tmp_path / "state")
    assert result.returncode == 2
    assert "Traceback" not in result.stdout + result.stderr
    assert "failed (auth)" in result.stdout
    [(status, failure, error)] = run_rows(tmp_path / "state" / "e2e.db")
    assert (status, failure) == ("failed", "auth")
    assert error is not None
    assert "401" in error


def test_sync_refuses_while_the_daemon_holds_the_store_and_leaves_its_runs_alone(
    make_config: ConfigFactory, tmp_path: Path, daemon_factory: DaemonFactory, cli: list[str]
) -> None:
    config = make_config()
    daemon = daemon_factory(config)
    daemon.wait_run_finished(timeout=30)
    result = closeloop(cli, ["sync", "--config", str(config)], tmp_path / "state")
    assert result.returncode == 2
    assert "in use by another closeloop instance" in result.stderr
    assert "POST /connections/NAME/sync" in result.stderr
    daemon.stop()
    [(status, _, _)] = run_rows(tmp_path / "state" / "e2e.db")  # the daemon's run alone, not interrupted
    assert status in ("ok", "quarantined")


def test_read_commands_never_create_a_store_and_find_it_from_any_folder(
    make_config: ConfigFactory, tmp_path: Path, cli: list[str]
) -> None:
    config = make_config()
    config.write_text(config.read_text())
    env_state = tmp_path / "unused"
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    nothing = closeloop(cli, ["status", "--config", str(config)], None, cwd=elsewhere)
    assert nothing.returncode == 2
    assert "no state store at" in nothing.stderr
    assert not (config.parent / "state").exists()
    assert not (elsewhere / "state").exists()
    synced = closeloop(cli, ["sync", "--config", str(config)], None, cwd=elsewhere)
    assert synced.returncode in (0, 1), synced.stderr
    store = config.parent / "state" / "e2e.db"  # state.path is relative to the config file, like mappings
    assert store.exists()
    assert stat.S_IMODE(store.parent.stat().st_mode) == 0o700
    assert not env_state.exists()


def test_usage_mistakes_get_exit_2_and_one_line(make_config: ConfigFactory, tmp_path: Path, cli: list[str]) -> None:
    config = make_config()
    state = tmp_path / "state"
    assert closeloop(cli, ["sync", "--config", str(config)], state).returncode in (0, 1)
    cases = {
        "retry-not-an-id": ["errors", "--config", str(config), "--retry", "abc"],
        "report-into-a-missing-folder": ["report", "--config", str(config), "--out", "/missing/dir/x.json"],
        "unknown-connection": ["sync", "--config", str(config), "--connection", "nope"],
        "unknown-connection-plan": ["plan", "--config", str(config), "--connection", "nope"],
    }
    for case, args in cases.items():
        result = closeloop(cli, args, state)
        assert result.returncode == 2, (case, result.stdout, result.stderr)
        assert "Traceback" not in result.stderr, case
        assert result.stderr.strip(), case
