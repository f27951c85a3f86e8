"""Metric names and labels as Prometheus scrapes them, from a registry of our own."""

from __future__ import annotations

from datetime import UTC, datetime

from prometheus_client import REGISTRY, generate_latest

from closeloop.daemon.metrics import DaemonMetrics
from closeloop.engine.failures import FailureKind
from closeloop.engine.runtime import RunOutcome
from closeloop.store import RunStatus

FINISHED = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def scrape(metrics: DaemonMetrics) -> str:
    return generate_latest(metrics.registry).decode()


def test_a_run_is_exported_per_system_and_action() -> None:
    metrics = DaemonMetrics()
    metrics.watch(lambda: {"crm-marketing": 3}, lambda: {"crm": 900})
    outcome = RunOutcome(
        1,
        RunStatus.OK,
        counts={"read": 10, "read:crm": 6, "read:marketing": 4, "created:marketing": 2, "quarantined:crm": 1},
        api_calls={"crm": 5, "marketing": 7, "marketing:429": 2},
    )
    metrics.observe_run("crm-marketing", outcome, 1.5, FINISHED)
    text = scrape(metrics)
    expected = [
        'closeloop_runs_total{connection="crm-marketing",status="ok"} 1.0',
        'closeloop_records_total{action="read",connection="crm-marketing",system="crm"} 6.0',
        'closeloop_records_total{action="created",connection="crm-marketing",system="marketing"} 2.0',
        'closeloop_records_total{action="quarantined",connection="crm-marketing",system="crm"} 1.0',
        'closeloop_api_calls_total{system="marketing"} 7.0',
        'closeloop_api_rate_limited_total{system="marketing"} 2.0',
        'closeloop_run_duration_seconds_count{connection="crm-marketing"} 1.0',
        'closeloop_outbox_depth{connection="crm-marketing"} 3.0',
        'closeloop_api_budget_remaining{system="crm"} 900.0',
    ]
    for line in expected:
        assert line in text, line
    assert 'action="read",connection="crm-marketing",system=""' not in text  # totals are not counted twice
    last = 'closeloop_last_success_timestamp_seconds{connection="crm-marketing"} '
    (value,) = [line.removeprefix(last) for line in text.splitlines() if line.startswith(last)]
    assert float(value) == FINISHED.timestamp()


def test_a_failed_run_leaves_last_success_alone() -> None:
    metrics = DaemonMetrics()
    metrics.observe_run("c", RunOutcome(1, RunStatus.FAILED, {}, {}, "Unreachable"), 0.2, FINISHED)
    text = scrape(metrics)
    assert 'closeloop_runs_total{connection="c",status="failed"} 1.0' in text
    assert "closeloop_last_success_timestamp_seconds{" not in text


def test_a_failed_run_is_counted_by_its_kind() -> None:
    metrics = DaemonMetrics()
    failed = RunOutcome(1, RunStatus.FAILED, {}, {}, "HTTP 401: invalid token", FailureKind.AUTH)
    metrics.observe_run("c", failed, 0.2, FINISHED)
    assert 'closeloop_run_failures_total{connection="c",kind="auth"} 1.0' in scrape(metrics)


def test_metrics_stay_off_the_global_registry() -> None:
    DaemonMetrics()
    DaemonMetrics()  # a second instance would clash on the global registry
    assert "closeloop_runs_total" not in generate_latest(REGISTRY).decode()
