"""Readiness on a fake clock: failing runs count only once they have failed for longer than the threshold."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from closeloop.daemon.readiness import ConnectionHealth, check_readiness, connection_health, store_problem
from closeloop.engine.failures import FailureKind
from closeloop.store import RunStatus, Store

START = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
THRESHOLD = timedelta(minutes=15)


def ready(health: list[ConnectionHealth], *, minutes_later: float, store: str | None = None) -> bool:
    now = START + timedelta(minutes=minutes_later)
    return check_readiness(health, store_problem=store, now=now, started_at=START, threshold=THRESHOLD).ready


@pytest.mark.parametrize(
    ("health", "minutes_later", "expected"),
    [
        pytest.param([], 0, True, id="no-connections"),
        pytest.param([ConnectionHealth("c", None, None)], 60, True, id="never-ran-yet"),
        pytest.param([ConnectionHealth("c", RunStatus.OK, START)], 600, True, id="last-run-ok"),
        pytest.param([ConnectionHealth("c", RunStatus.QUARANTINED, START)], 600, True, id="quarantine-is-not-failure"),
        pytest.param([ConnectionHealth("c", RunStatus.FAILED, None)], 14, True, id="failing-within-threshold"),
        pytest.param([ConnectionHealth("c", RunStatus.FAILED, None)], 16, False, id="failing-past-threshold"),
        pytest.param(
            [ConnectionHealth("c", RunStatus.FAILED, START + timedelta(minutes=10))], 20, True, id="recent-success"
        ),
        pytest.param(
            [ConnectionHealth("c", RunStatus.FAILED, START - timedelta(days=2))], 5, True, id="old-success-restart"
        ),
        pytest.param(
            [ConnectionHealth("a", RunStatus.OK, START), ConnectionHealth("b", RunStatus.FAILED, None)],
            30,
            False,
            id="one-of-two-failing",
        ),
    ],
)
def test_readiness_threshold(health: list[ConnectionHealth], minutes_later: float, expected: bool) -> None:
    assert ready(health, minutes_later=minutes_later) is expected


@pytest.mark.parametrize(
    ("kind", "ready_at_once"),
    [
        pytest.param(FailureKind.AUTH, False, id="credentials-refused"),
        pytest.param(FailureKind.CONFIG, False, id="mapped-field-missing"),
        pytest.param(FailureKind.TLS, False, id="tls"),
        pytest.param(FailureKind.VENDOR, False, id="vendor-4xx"),
        pytest.param(FailureKind.BUG, False, id="bug"),
        pytest.param(FailureKind.UNREACHABLE, True, id="unreachable-may-pass"),
        pytest.param(FailureKind.TRANSIENT, True, id="5xx-may-pass"),
        pytest.param(FailureKind.BUDGET, True, id="budget-recovers"),
    ],
)
def test_a_failure_that_stays_until_someone_acts_is_unready_at_once(kind: FailureKind, ready_at_once: bool) -> None:
    health = [ConnectionHealth("c", RunStatus.FAILED, START, kind, "HTTP 401: invalid token")]
    result = check_readiness(health, store_problem=None, now=START, started_at=START, threshold=THRESHOLD)
    assert result.ready is ready_at_once
    if not ready_at_once:
        assert result.problems == [f"connection c: last run failed ({kind.value}): HTTP 401: invalid token"]
    assert not ready(health, minutes_later=16)  # every failure counts once it outlasts the threshold


def test_unwritable_store_is_not_ready_and_says_why() -> None:
    result = check_readiness(
        [], store_problem="/var/lib/closeloop is not writable", now=START, started_at=START, threshold=THRESHOLD
    )
    assert not result.ready
    assert result.problems == ["state store: /var/lib/closeloop is not writable"]


def test_connection_health_reads_the_run_history(tmp_path: Path) -> None:
    clock = [START]
    with Store.open(tmp_path / "s.db", clock=lambda: clock[0]) as store:
        ok = store.start_run("c")
        store.finish_run(ok, RunStatus.OK, {}, {})
        clock[0] = START + timedelta(minutes=5)
        failed = store.start_run("c")
        store.finish_run(failed, RunStatus.FAILED, {}, {}, "Unreachable: down", "unreachable")
        (health,) = connection_health(store, ["c"])
    assert health.last_status is RunStatus.FAILED
    assert health.last_success_at == START
    assert (health.failure, health.error) == (FailureKind.UNREACHABLE, "Unreachable: down")


def test_store_problem_of_a_writable_folder_is_none(tmp_path: Path) -> None:
    assert store_problem(tmp_path / "s.db") is None
