"""Replicas sharing a PostgreSQL store: the daemon runs a connection only while it holds its lease.

The gate sits between the scheduler and the engine. Every replica schedules every connection; a run fires only
where the lease is held. A lease tick every few seconds heartbeats, moves leases towards the fair share, turns
wake-up rows into early runs, and, when a lease was taken from a dead replica, marks that replica's unfinished run
interrupted and asks for a run at once: it resumes from the outbox and the cursors the dead run last committed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import datetime
from pathlib import Path

import psycopg
from prometheus_client import CollectorRegistry, Counter, Gauge

from closeloop.config.models import Schedule
from closeloop.daemon.scheduler import SyncScheduler
from closeloop.model import now_utc
from closeloop.store.api import StateStore
from closeloop.store.fence import LeaseLost, fenced
from closeloop.store.lease import Leases, ReplicaNameInUse, Tick
from closeloop.store.lease_plan import replica_name

log = logging.getLogger("closeloop.daemon")


class ReplicaGate:
    """One replica's side of the lease rule, wired to the daemon's scheduler, store and metrics."""

    def __init__(
        self,
        leases: Leases,
        scheduler: SyncScheduler,
        store: StateStore,
        registry: CollectorRegistry,
        *,
        tick_seconds: float = 2.0,
        schedule_of: Callable[[str], Schedule | None] = lambda _name: None,
        clock: Callable[[], datetime] = now_utc,
    ) -> None:
        self.leases = leases
        self.schedule_of = schedule_of
        self.clock = clock
        self.scheduler = scheduler
        self.store = store
        self.tick_seconds = tick_seconds
        self.held = Gauge(
            "closeloop_leases_held",
            "Connection leases held, per live replica (from the replicas' heartbeat rows).",
            ["replica"],
            registry=registry,
        )
        self.lease_failures = Counter(
            "closeloop_lease_failures",
            "Lease ticks that failed or found the lease session gone (every lease of this replica given up).",
            registry=registry,
        )
        self.problem: str | None = None
        """Why this replica cannot hold leases now (its lease session is lost), for /readyz; None when it can."""
        self._shown: set[str] = set()
        self._runs: dict[str, asyncio.Task[object]] = {}
        self._pending: set[asyncio.Task[None]] = set()

    @property
    def replica(self) -> str:
        """This replica's name."""
        return self.leases.replica

    def allows(self, connection: str) -> bool:
        """Whether this replica may run ``connection`` now."""
        return self.leases.holds(connection)

    @contextlib.asynccontextmanager
    async def guard(self, connection: str) -> AsyncIterator[None]:
        """Mark the current task as ``connection``'s run, so losing the lease mid-run interrupts it.

        The run serves every early run asked before it started, here or on another replica: their wake-up rows
        go, so a webhook that reached every replica makes one run, not one more per replica. The block is fenced
        (``closeloop.store.fence``): once another replica has taken the lease, the run's next transaction fails
        with ``LeaseLost`` instead of committing, even before this replica's next tick notices the loss.
        """
        task = asyncio.current_task()
        assert task is not None
        fence = self.leases.fence(connection)
        if fence is None:
            raise LeaseLost(f"this replica does not hold the lease of {connection!r}: the run does not start")
        self._runs[connection] = task
        try:
            try:
                await self.leases.clear_wakeups(connection)
            except psycopg.Error as exc:  # at worst one extra run later; the run itself goes ahead
                log.warning("wake-ups of %s not cleared: %s", connection, exc)
            with fenced(fence):
                yield
        finally:
            self._runs.pop(connection, None)

    def request(self, connection: str, reason: str) -> bool:
        """An early run of ``connection``: here when this replica holds the lease, else by the holder's wake-up row."""
        if connection not in self.scheduler.connections:
            return False
        if self.leases.holds(connection):
            return self.scheduler.request(connection, reason)
        task = asyncio.ensure_future(self._wake(connection, reason))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)
        return True

    async def _wake(self, connection: str, reason: str) -> None:
        try:
            await self.leases.wake(connection, reason)
            log.info("early run of %s passed to its lease holder (%s)", connection, reason)
        except Exception as exc:  # the schedule still runs the connection; the early run is what is lost
            log.error("early run of %s could not be passed to its lease holder: %s", connection, exc)

    def want(self, connections: Sequence[str]) -> None:
        """The configured connections changed (a reload)."""
        self.leases.want(connections)

    async def start(self, connections: Sequence[str]) -> None:
        """Open the lease session and announce this replica; leases come at the first tick, one tick later, so
        replicas started together see each other before any takes its share."""
        await self.leases.start(connections)

    async def start_or_say_why(self, connections: Sequence[str]) -> str | None:
        """``start``, or why this replica cannot start (a name in use, no server): None when started."""
        try:
            await self.start(connections)
        except ReplicaNameInUse as exc:
            return str(exc)
        except psycopg.Error as exc:
            return f"the lease session on the PostgreSQL store could not be opened: {type(exc).__name__}: {exc}"
        return None

    async def tick(self) -> Tick:
        """One lease tick, acted upon."""
        tick = await self.leases.tick(running=self._runs.keys)
        if tick.session_lost:
            self.lease_failures.inc()
            self.problem = "the lease session is lost: this replica runs no connection until it is back"
        else:
            self.problem = None
        for connection in tick.lost:
            run = self._runs.get(connection)
            if run is not None:
                log.error("lease of %s lost mid-run; interrupting the run", connection)
                run.cancel()
        for connection in tick.taken:
            # The previous holder's run, if it left one 'running', died with it: mark it and resume now.
            # Called on the event loop like every other store call: the store is not shared across threads here.
            if self.store.interrupt_running_runs(connection):
                log.warning("took over %s from a replica that died mid-run; resuming from its last commit", connection)
                self.scheduler.request(connection, "lease taken over")
                continue
            last = self.store.last_run(connection)
            if due_on_takeover(self.schedule_of(connection), last.started_at if last else None, self.clock()):
                self.scheduler.request(connection, "due when its lease was taken")
        for connection in tick.woken:
            self.scheduler.request(connection, "asked by another replica")
        await self._show()
        return tick

    async def _show(self) -> None:
        rows = await self.leases.replicas()
        names = {row.name for row in rows}
        for row in rows:
            self.held.labels(row.name).set(row.leases)
        self.held.labels(self.replica).set(len(self.leases.held))
        for gone in self._shown - names - {self.replica}:
            self.held.remove(gone)
        self._shown = names | {self.replica}

    async def run(self) -> None:
        """Tick until cancelled; a failing tick is logged and retried, never fatal."""
        while True:
            await asyncio.sleep(self.tick_seconds)
            try:
                await self.tick()
            except Exception as exc:  # e.g. the server restarting; the next tick reconnects
                self.lease_failures.inc()
                self.problem = f"lease tick failed ({type(exc).__name__}); retried every tick"
                log.error("lease tick failed: %s: %s", type(exc).__name__, exc)

    async def close(self) -> None:
        """Give the leases up (a graceful stop hands the connections over at once)."""
        await self.leases.close()


def leases_for(target: str | Path, replica: str) -> Leases | None:
    """Leases when ``target`` is a PostgreSQL store's URL; None for SQLite, whose file lock keeps one writer."""
    if isinstance(target, str) and target.startswith(("postgresql://", "postgres://")):
        return Leases(target, replica or replica_name())
    return None


def due_on_takeover(schedule: Schedule | None, last_started: datetime | None, now: datetime) -> bool:
    """Whether a connection whose lease just came here runs at once rather than at its next fire.

    Every replica fires every connection on its own schedule and only the holder runs it, so a fire that came while
    the lease was moving ran nowhere. A connection that never ran, or whose interval has passed since its last run
    started, is due now; a cron connection waits for its next time (a missed cron fire is not made up here).
    """
    if last_started is None:
        return True
    if schedule is None or schedule.every is None:
        return False
    return now - last_started >= schedule.every
