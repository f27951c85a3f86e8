"""Prometheus metrics on a registry of our own: runs, records, API calls, 429s, budget, outbox, durations."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import datetime

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from closeloop.engine.runtime import RunOutcome

RUN_BUCKETS = (0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600)
"""Run durations range from an idle cycle (sub-second) to a first full read (an hour)."""


class _Live(Collector):
    """Values read at scrape time: outbox depth per connection and API budget left per system."""

    def __init__(self, outbox: Callable[[], Mapping[str, int]], budget: Callable[[], Mapping[str, int]]) -> None:
        self._outbox = outbox
        self._budget = budget

    def collect(self) -> Iterable[Metric]:
        """Yield the gauges computed now."""
        depth = GaugeMetricFamily(
            "closeloop_outbox_depth", "Writes queued in the outbox, per connection.", labels=["connection"]
        )
        for connection, value in sorted(self._outbox().items()):
            depth.add_metric([connection], value)
        budget = GaugeMetricFamily(
            "closeloop_api_budget_remaining",
            "API calls left in the daily budget (reserve excluded), per system.",
            labels=["system"],
        )
        for system, value in sorted(self._budget().items()):
            budget.add_metric([system], value)
        yield depth
        yield budget


class DaemonMetrics:
    """Every metric the daemon exports, registered on ``self.registry`` (never the global registry)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.runs = Counter("closeloop_runs", "Sync runs by outcome.", ["connection", "status"], registry=r)
        self.failures = Counter(
            "closeloop_run_failures",
            "Failed sync runs by kind (auth, config, tls, unreachable, transient, budget, vendor, bug).",
            ["connection", "kind"],
            registry=r,
        )
        self.records = Counter(
            "closeloop_records",
            "Records by action (read, created, updated, quarantined...) per system.",
            ["connection", "system", "action"],
            registry=r,
        )
        self.api_calls = Counter("closeloop_api_calls", "API calls per system.", ["system"], registry=r)
        self.rate_limited = Counter(
            "closeloop_api_rate_limited", "API calls answered 429 per system.", ["system"], registry=r
        )
        self.duration = Histogram(
            "closeloop_run_duration_seconds", "Duration of sync runs.", ["connection"], buckets=RUN_BUCKETS, registry=r
        )
        self.last_success = Gauge(
            "closeloop_last_success_timestamp_seconds",
            "When the last successful run of a connection finished (Unix time).",
            ["connection"],
            registry=r,
        )
        self.webhooks = Counter(
            "closeloop_webhooks", "Webhooks received, by source and result.", ["source", "result"], registry=r
        )
        self.reloads = Counter("closeloop_config_reloads", "Configuration reloads by result.", ["result"], registry=r)
        self.sla_breaches = Gauge(
            "closeloop_sla_breaches",
            "MQLs past their follow-up SLA without follow-up, at the end of the connection's last run.",
            ["connection"],
            registry=r,
        )

    def watch(self, outbox: Callable[[], Mapping[str, int]], budget: Callable[[], Mapping[str, int]]) -> None:
        """Register the gauges read at scrape time."""
        self.registry.register(_Live(outbox, budget))

    def observe_run(self, connection: str, outcome: RunOutcome, seconds: float, finished_at: datetime) -> None:
        """Count one finished run."""
        self.runs.labels(connection, outcome.status.value).inc()
        if outcome.failure is not None:
            self.failures.labels(connection, outcome.failure.value).inc()
        self.duration.labels(connection).observe(seconds)
        for key, value in outcome.counts.items():
            # Keys are "<action>" (whole run) or "<action>:<system>"; only the per-system ones are exported,
            # so a sum over systems is not counted twice.
            action, _, system = key.partition(":")
            if system:
                self.records.labels(connection, system, action).inc(value)
        for key, value in outcome.api_calls.items():
            system, _, code = key.partition(":")
            if not code:
                self.api_calls.labels(system).inc(value)
            elif code == "429":
                self.rate_limited.labels(system).inc(value)
        if outcome.status.value in ("ok", "quarantined"):
            self.last_success.labels(connection).set(finished_at.timestamp())
