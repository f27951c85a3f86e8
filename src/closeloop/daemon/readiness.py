"""Readiness: config in force, state store writable, no connection failing for longer than a threshold."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from closeloop.engine.failures import FailureKind
from closeloop.store import RunStatus
from closeloop.store.api import StateStore


@dataclass(frozen=True)
class ConnectionHealth:
    """What readiness needs to know of one connection's runs."""

    name: str
    last_status: RunStatus | None
    last_success_at: datetime | None
    failure: FailureKind | None = None
    """The kind of the last run's failure, when it failed."""
    error: str | None = None


@dataclass(frozen=True)
class Readiness:
    """The answer of /readyz: ready or not, with the reasons."""

    ready: bool
    problems: list[str] = field(default_factory=list)


def check_readiness(
    connections: Sequence[ConnectionHealth],
    *,
    store_problem: str | None,
    now: datetime,
    started_at: datetime,
    threshold: timedelta,
) -> Readiness:
    """Ready unless the store is unusable or a connection's last run failed: at once for a failure that stays
    until someone acts (credentials, configuration, TLS, a vendor's refusal, a bug), after ``threshold`` for one
    that may pass by itself (unreachable, 5xx/429, budget spent)."""
    problems = [f"state store: {store_problem}"] if store_problem else []
    for health in connections:
        if health.last_status is not RunStatus.FAILED:
            continue
        if health.failure is not None and health.failure.lasting:
            reason = health.error or "no reason"
            problems.append(f"connection {health.name}: last run failed ({health.failure.value}): {reason}")
            continue
        # After a restart the daemon gets the full threshold before an old success counts against it.
        since = max(health.last_success_at or started_at, started_at)
        if now - since > threshold:
            problems.append(
                f"connection {health.name}: failing since {since.isoformat(timespec='seconds')} "
                f"(longer than {int(threshold.total_seconds())}s)"
            )
    return Readiness(ready=not problems, problems=problems)


def connection_health(store: StateStore, names: Sequence[str]) -> list[ConnectionHealth]:
    """Each connection's last run status and last successful run, from the run history."""
    found = []
    for name in names:
        last = store.last_run(name)
        ok = store.last_run(name, RunStatus.OK)
        quarantined = store.last_run(name, RunStatus.QUARANTINED)
        # A run that quarantined some records still completed: it counts as a success here.
        finished = [run.finished_at for run in (ok, quarantined) if run is not None and run.finished_at]
        failure = FailureKind(last.failure) if last is not None and last.failure else None
        found.append(
            ConnectionHealth(
                name,
                last.status if last else None,
                max(finished) if finished else None,
                failure,
                last.error if last else None,
            )
        )
    return found


def store_problem(db_path: Path) -> str | None:
    """Why the state store cannot be written (directory or file not writable, disk full), or None."""
    folder = db_path.parent
    if not os.access(folder, os.W_OK):
        return f"{folder} is not writable"
    if db_path.exists() and not os.access(db_path, os.W_OK):
        return f"{db_path} is not writable"
    stats = os.statvfs(folder)
    if stats.f_bavail * stats.f_frsize < 1 << 20:
        return f"less than 1 MiB free in {folder}"
    return None
