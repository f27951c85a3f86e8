"""``closeloop run`` as ops run it: endpoints, webhooks, signals, reloads and refusals, against served sandboxes."""

from __future__ import annotations

import base64
import hashlib
import hmac
import signal
import sqlite3
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

DaemonFactory = Callable[..., Any]
ConfigFactory = Callable[..., Path]


def hubspot_headers(uri: str, body: bytes, *, secret: str, age_ms: int = 0) -> dict[str, str]:
    stamp = str(int(time.time() * 1000) - age_ms)
    message = b"POST" + uri.encode() + body + stamp.encode()
    signature = base64.b64encode(hmac.new(secret.encode(), message, hashlib.sha256).digest()).decode()
    return {"X-HubSpot-Request-Timestamp": stamp, "X-HubSpot-Signature-v3": signature}


def integrity(db: Path) -> tuple[str, list[str]]:
    with sqlite3.connect(db) as conn:
        check = conn.execute("PRAGMA integrity_check").fetchone()[0]
        statuses = [row[0] for row in conn.execute("SELECT status FROM runs ORDER BY id")]
    return check, statuses


def test_endpoints_answer(make_config: ConfigFactory, tmp_path: Path, daemon_factory: DaemonFactory) -> None:
    daemon = daemon_factory(make_config())
    daemon.wait_run_finished(timeout=25)
    with daemon.http() as http:
        assert http.get("/healthz").json() == {"status": "alive"}
        ready = http.get("/readyz")
        assert ready.status_code == 200, ready.text
        metrics = http.get("/metrics").text
        assert 'closeloop_runs_total{connection="crm-marketing"' in metrics
        assert 'closeloop_records_total{action="read",connection="crm-marketing",system="crm"}' in metrics
        assert 'closeloop_api_calls_total{system="marketing"}' in metrics
        assert 'closeloop_outbox_depth{connection="crm-marketing"}' in metrics
        assert "closeloop_run_duration_seconds_bucket" in metrics
        assert http.post("/connections/crm-marketing/sync").status_code == 202
        assert http.post("/connections/nope/sync").status_code == 404


def test_signed_webhook_triggers_a_run_and_a_bad_one_gets_401(
    make_config: ConfigFactory, tmp_path: Path, daemon_factory: DaemonFactory
) -> None:
    daemon = daemon_factory(make_config())
    daemon.wait_run_finished(timeout=25)
    uri = f"{daemon.url}/webhooks/hubspot"
    body = b'[{"objectId": 101, "subscriptionType": "contact.propertyChange"}]'
    with daemon.http() as http:
        for bad in (
            hubspot_headers(uri, body, secret="not-the-secret"),
            hubspot_headers(uri, body, secret=daemon.webhook_secret, age_ms=6 * 60 * 1000),
            {},
        ):
            assert http.post("/webhooks/hubspot", content=body, headers=bad).status_code == 401
        time.sleep(1)
        assert daemon.runs_finished() == 1  # G14: refused webhooks schedule nothing
        mark = len(daemon.records)
        accepted = http.post(
            "/webhooks/hubspot", content=body, headers=hubspot_headers(uri, body, secret=daemon.webhook_secret)
        )
        assert accepted.status_code == 200, accepted.text
        assert accepted.json() == {"scheduled": 1}
    daemon.wait_run_finished(timeout=25, after=mark)


def test_sigterm_mid_run_lets_the_run_finish_and_exits_0(
    make_config: ConfigFactory, tmp_path: Path, daemon_factory: DaemonFactory
) -> None:
    daemon = daemon_factory(make_config())
    daemon.wait_run_started(timeout=20)
    daemon.signal(signal.SIGTERM)
    assert daemon.wait(timeout=30) == 0
    check, statuses = integrity(tmp_path / "state" / "e2e.db")
    assert check == "ok"
    assert statuses
    assert statuses[-1] in ("ok", "quarantined")  # the run finished and committed


def test_sigterm_past_the_grace_period_interrupts_cleanly(
    make_config: ConfigFactory, tmp_path: Path, daemon_factory: DaemonFactory, sandboxes: dict[str, str]
) -> None:
    # The shared sandboxes may be synced already (a fresh store then re-links and writes little): slow every
    # HubSpot answer so the run is still going when the grace period ends.
    knobs = f"{sandboxes['hubspot']}/__sandbox/knobs"
    httpx.patch(knobs, json={"latency_s": 0.05}).raise_for_status()
    try:
        daemon = daemon_factory(make_config(), CLOSELOOP_GRACE_SECONDS="0.2")
        daemon.wait_run_started(timeout=20)
        daemon.signal(signal.SIGTERM)
        assert daemon.wait(timeout=15) == 0
    finally:
        httpx.patch(knobs, json={"latency_s": 0.0}).raise_for_status()
    check, statuses = integrity(tmp_path / "state" / "e2e.db")
    assert check == "ok"
    assert statuses[-1] == "interrupted"  # rolled back to its last commit, marked for the history


def test_second_signal_stops_at_once_without_corrupting_the_store(
    make_config: ConfigFactory, tmp_path: Path, daemon_factory: DaemonFactory
) -> None:
    daemon = daemon_factory(make_config())
    daemon.wait_run_started(timeout=20)
    daemon.signal(signal.SIGTERM)
    daemon.wait_for(lambda r: "stopping" in str(r.get("msg")), timeout=5)
    daemon.signal(signal.SIGTERM)
    assert daemon.wait(timeout=10) == 128 + signal.SIGTERM
    check, statuses = integrity(tmp_path / "state" / "e2e.db")
    assert check == "ok"
    assert "running" not in statuses


def test_sighup_with_a_broken_mapping_keeps_the_config_in_force(
    make_config: ConfigFactory, tmp_path: Path, daemon_factory: DaemonFactory
) -> None:
    config = make_config()
    daemon = daemon_factory(config)
    daemon.wait_run_finished(timeout=25)
    mapping = config.parent / "mappings" / "contacts.yaml"
    mapping.write_text(mapping.read_text().replace("entity: contact", "entity: contakt"))
    mark = len(daemon.records)
    daemon.signal(signal.SIGHUP)
    refused = daemon.wait_for(lambda r: "refused" in str(r.get("msg")), timeout=10, after=mark)
    assert "contacts.yaml:" in refused["msg"]  # file:line:col of the problem
    with daemon.http() as http:
        assert http.post("/connections/crm-marketing/sync").status_code == 202
    daemon.wait_run_finished(timeout=25, after=mark)


def test_a_changed_config_file_is_reloaded_between_runs(
    make_config: ConfigFactory, tmp_path: Path, daemon_factory: DaemonFactory
) -> None:
    config = make_config()
    daemon = daemon_factory(config, CLOSELOOP_RELOAD_POLL_SECONDS="0.3")
    daemon.wait_run_finished(timeout=25)
    config.write_text(config.read_text().replace("name: crm-marketing", "name: renamed"))
    daemon.wait_for(lambda r: str(r.get("msg", "")).startswith("config reloaded"), timeout=10)
    with daemon.http() as http:
        assert http.post("/connections/renamed/sync").status_code == 202
        assert http.post("/connections/crm-marketing/sync").status_code == 404


def test_the_watcher_survives_a_binary_config_and_reloads_the_next_edit(
    make_config: ConfigFactory, tmp_path: Path, daemon_factory: DaemonFactory
) -> None:
    config = make_config()
    good = config.read_text()
    daemon = daemon_factory(config, CLOSELOOP_RELOAD_POLL_SECONDS="0.3")
    daemon.wait_run_finished(timeout=25)
    mark = len(daemon.records)
    config.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    refused = daemon.wait_for(lambda r: "refused" in str(r.get("msg")), timeout=10, after=mark)
    assert refused["msg"].endswith("closeloop.yaml:3:1: binary file, not YAML text (NUL byte at offset 8)")
    with daemon.http() as http:
        assert http.get("/healthz").status_code == 200
        deep = http.post("/webhooks/zoho", content=b"[" * 10_000 + b"]" * 10_000)
        assert (deep.status_code, deep.json()) == (400, {"error": "body nests deeper than 32 levels"})
        config.write_text(good.replace("name: crm-marketing", "name: renamed"))
        daemon.wait_for(lambda r: str(r.get("msg", "")).startswith("config reloaded"), timeout=10, after=mark)
        assert http.post("/connections/renamed/sync").status_code == 202
        metrics = http.get("/metrics").text
    assert 'closeloop_config_reloads_total{result="invalid"} 1.0' in metrics
    assert 'closeloop_webhooks_total{result="malformed",source="zoho"} 1.0' in metrics
    assert not any("Traceback" in str(r.get("msg")) or "exc" in r for r in daemon.records)


@pytest.mark.parametrize(
    ("schedule", "problem"),
    [
        pytest.param("{every: soon}", "closeloop.yaml:23:23: bad duration 'soon'", id="not-a-duration"),
        pytest.param(
            "{every: 0s}",
            "closeloop.yaml:23:23: every: 0s is out of range; a schedule runs every 5s to 31d",
            id="every-zero",
        ),
    ],
)
def test_refuses_an_invalid_config_with_file_line_col(
    make_config: ConfigFactory, tmp_path: Path, cli: list[str], schedule: str, problem: str
) -> None:
    config = make_config(schedule=schedule)
    result = subprocess.run(  # noqa: S603 - our own CLI, fixed arguments
        [*cli, "run", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=30,
        env={"CLOSELOOP_HTTP_PORT": "0", "CLOSELOOP_STATE_DIR": str(tmp_path / "state"), "PATH": "/usr/bin:/bin"},
        check=False,
    )
    assert result.returncode == 2
    assert problem in result.stderr
    assert "did not start" in result.stderr


def test_refuses_a_state_store_in_use(
    make_config: ConfigFactory, tmp_path: Path, daemon_factory: DaemonFactory, cli: list[str]
) -> None:
    config = make_config()
    daemon_factory(config)
    result = subprocess.run(  # noqa: S603 - our own CLI, fixed arguments
        [*cli, "run", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=30,
        env={"CLOSELOOP_HTTP_PORT": "0", "CLOSELOOP_STATE_DIR": str(tmp_path / "state"), "PATH": "/usr/bin:/bin"},
        check=False,
    )
    assert result.returncode == 2
    assert "in use by another closeloop instance" in result.stderr
