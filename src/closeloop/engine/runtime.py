"""The engine as the CLI and the daemon use it: connectors built from config, cycles run with a run history."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import httpx

from closeloop.config.models import Connection, LoadedConfig
from closeloop.connector import Connector, ConnectorContext
from closeloop.engine.context import CycleContext
from closeloop.engine.cycle import run_cycle
from closeloop.engine.failures import FailureKind, classify
from closeloop.engine.gctune import collector_tuned
from closeloop.engine.owners import Directory
from closeloop.engine.plan import PlannedWrite, planned_writes
from closeloop.exitcodes import EXIT_INTERRUPTED, EXIT_OK, EXIT_QUARANTINED
from closeloop.model import ObjectSchema, now_utc
from closeloop.store.api import StateStore
from closeloop.store.fence import LeaseLost
from closeloop.store.rows import QuarantineStatus, RunStatus

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunOutcome:
    """How one sync run ended."""

    run_id: int
    status: RunStatus
    counts: Mapping[str, int]
    api_calls: Mapping[str, int]
    error: str | None = None
    failure: FailureKind | None = None
    details: tuple[str, ...] = ()
    """The failure's problems one a line, where it has several (file:line:col of each mapped field)."""

    @property
    def exit_code(self) -> int:
        """0 ok, 1 ran with quarantined records; a failed run's code is its failure kind's (see exitcodes)."""
        if self.status is RunStatus.FAILED:
            return (self.failure or FailureKind.BUG).exit_code
        if self.status is RunStatus.INTERRUPTED:
            return EXIT_INTERRUPTED
        return EXIT_QUARANTINED if self.status is RunStatus.QUARANTINED else EXIT_OK


@dataclass
class Engine:
    """Runs cycles of the configured connections against one state store."""

    config: LoadedConfig
    store: StateStore
    transports: Mapping[str, httpx.AsyncBaseTransport] = field(default_factory=dict)
    """In-process transports by system name (sandboxes mounted with httpx.ASGITransport)."""
    clock: Callable[[], datetime] = now_utc
    replica: str | None = None
    """The replica's name recorded with each run when several replicas share the store."""
    api_calls: Counter[str] = field(default_factory=Counter)
    _connectors: dict[str, Connector] = field(default_factory=dict)
    _schemas: dict[tuple[str, str], ObjectSchema] = field(default_factory=dict)
    _owners: dict[str, Directory] = field(default_factory=dict)

    def connector(self, system: str) -> Connector:
        """The connector of a configured system, created once."""
        if system not in self._connectors:
            settings = self.config.systems[system].settings
            context = ConnectorContext(
                system=system,
                settings=settings,
                transport=self.transports.get(system),
                clock=self.clock,
                on_response=self._count_call,
            )
            self._connectors[system] = self.config.registry.create(self.config.systems[system].connector, context)
        return self._connectors[system]

    def _count_call(self, system: str, response: httpx.Response) -> None:
        self.api_calls[system] += 1
        if response.status_code == 429:
            self.api_calls[f"{system}:429"] += 1

    def context(self, connection: Connection, *, dry_run: bool = False) -> CycleContext:
        """A fresh cycle context for ``connection``; describes are cached across cycles."""
        connectors = {system: self.connector(system) for system in connection.systems}
        return CycleContext(
            self.store,
            connection,
            connectors,
            self.config.loop,
            self.clock,
            schemas=self._schemas,
            owners=self._owners,
            dry_run=dry_run,
        )

    async def sync(self, name: str, *, on_count: Callable[[str, int], None] | None = None) -> RunOutcome:
        """Run one cycle of connection ``name`` and record it in the run history."""
        ctx = self.context(self.config.connection(name))
        ctx.on_count = on_count
        try:
            return await self._run(name, ctx)
        finally:
            ctx.close()

    async def _run(self, name: str, ctx: CycleContext) -> RunOutcome:
        """One cycle in ``ctx``, recorded in the run history; every failure is recorded, never raised."""
        before = Counter(self.api_calls)
        run_id = self.store.start_run(name, replica=self.replica)
        extra = {"connection": name, "run_id": run_id}
        error: str | None = None
        failure: FailureKind | None = None
        details: tuple[str, ...] = ()
        try:
            with collector_tuned():
                await run_cycle(ctx)
            quarantined = self.store.list_quarantine(QuarantineStatus.OPEN, connection=name)
            status = RunStatus.QUARANTINED if quarantined else RunStatus.OK
        except LeaseLost:  # another replica holds the connection now: not this run's failure, and nothing to record
            log.warning("run of %s stopped: its lease was taken over by another replica", name, extra=extra)
            raise
        except Exception as exc:
            found = classify(exc)
            status, failure, error, details = RunStatus.FAILED, found.kind, found.message, found.details
            log.error("run of %s failed (%s): %s", name, failure.value, error, extra={**extra, "failure": failure})
            # The details of a bug are for its report, not for the operator's console.
            log.debug("run of %s: the failure in full", name, exc_info=exc, extra=extra)
        except BaseException as exc:  # cancelled (a stop signal) or interrupted: recorded, then passed on
            self.store.finish_run(
                run_id,
                RunStatus.INTERRUPTED,
                dict(ctx.counts),
                self._calls_since(before),
                f"{type(exc).__name__}: {exc}".rstrip(": "),
            )
            raise
        calls = self._calls_since(before)
        self.store.finish_run(run_id, status, dict(ctx.counts), calls, error, failure.value if failure else None)
        log.info(
            "run of %s: %s",
            name,
            status.value,
            extra={**extra, "counts": dict(ctx.counts), "api_calls": calls},
        )
        return RunOutcome(run_id, status, dict(ctx.counts), calls, error, failure, details)

    def _calls_since(self, before: Counter[str]) -> dict[str, int]:
        return {k: v - before.get(k, 0) for k, v in self.api_calls.items() if v - before.get(k, 0)}

    async def plan(self, name: str) -> list[PlannedWrite]:
        """The writes a cycle of ``name`` would make, without writing and without advancing cursors."""
        ctx = self.context(self.config.connection(name), dry_run=True)
        try:
            return await planned_writes(ctx)
        finally:
            ctx.close()

    async def aclose(self) -> None:
        """Close every connector's HTTP client."""
        for connector in self._connectors.values():
            await connector.aclose()
        self._connectors.clear()

    async def __aenter__(self) -> Engine:
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.aclose()
