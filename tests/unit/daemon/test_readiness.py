"""Readiness on a fake clock: failing runs count only once they have failed for longer than the threshold."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from closeloop.daemon_parts.readiness import ConnectionHealth, check_readiness, connection_health, store_problem
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
        store.finish_run(failed, RunStatus.FAILED, {}, {}, "Unreachable: down")
        (health,) = connection_health(store, ["c"])
    assert health.last_status is RunStatus.FAILED
    assert health.last_success_at == START


def test_store_problem_of_a_writable_folder_is_none(tmp_path: Path) -> None:
    assert store_problem(tmp_path / "s.db") is None
