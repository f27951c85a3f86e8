"""The daemon's side of the lease rule on a real PostgreSQL server: runs only where the lease is held, early runs
passed to the holder, takeover of a dead replica's connection, leases per replica in /metrics."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Awaitable, Callable, Iterator
from datetime import timedelta
from pathlib import Path

import psycopg
import pytest
from prometheus_client import CollectorRegistry

from closeloop.config.loader import load_config
from closeloop.config.models import Connection, Schedule
from closeloop.daemon.lifecycle import Daemon
from closeloop.daemon.replicas import ReplicaGate, leases_for
from closeloop.daemon.scheduler import SyncScheduler
from closeloop.daemon.settings import DaemonSettings
from closeloop.store import MEMORY, RunStatus, Store
from closeloop.store.lease import Leases

REPO = Path(__file__).resolve().parents[3]
CONNECTIONS = ["c0", "c1", "c2", "c3"]
HOURLY = Schedule(every=timedelta(hours=1))


class Replica:
    """A gate on a scheduler whose runs (gated and guarded as the daemon's) only record their connection name."""

    def __init__(self, url: str, name: str, store: Store) -> None:
        self.ran: list[str] = []
        self.scheduler = SyncScheduler(self._run)
        self.registry = CollectorRegistry()
        self.gate = ReplicaGate(
            Leases(url, name), self.scheduler, store, self.registry, schedule_of=lambda _name: HOURLY
        )

    async def _run(self, connection: str) -> None:
        if self.gate.allows(connection):
            async with self.gate.guard(connection):
                self.ran.append(connection)


@pytest.fixture
def store() -> Iterator[Store]:
    with Store.open(MEMORY) as opened:
        yield opened


async def _started(url: str, store: Store, *names: str) -> list[Replica]:
    for connection in CONNECTIONS:  # each ran a moment ago: taking its lease is no reason to run it now
        store.finish_run(store.start_run(connection), RunStatus.OK, {}, {})
    replicas = [Replica(url, name, store) for name in names]
    connections = [
        Connection.model_construct(name=c, schedule=Schedule.model_construct(every=None, cron="0 0 1 1 *"))
        for c in CONNECTIONS
    ]
    for replica in replicas:
        replica.scheduler.start(connections)
        await replica.gate.start(CONNECTIONS)
    for replica in replicas:
        await replica.gate.tick()
    return replicas


async def _stop(replicas: list[Replica]) -> None:
    for replica in replicas:
        replica.scheduler.stop_scheduling()
        replica.scheduler.shutdown()
        await replica.gate.close()


async def until(condition: Callable[[], bool] | Callable[[], Awaitable[bool]], what: str) -> None:
    for _ in range(300):
        result = condition()
        if await result if asyncio.iscoroutine(result) else result:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"timed out waiting for {what}")


async def test_an_early_run_asked_of_a_replica_without_the_lease_runs_on_the_holder(pg_url: str, store: Store) -> None:
    replicas = await _started(pg_url, store, "a", "b")
    try:
        holder = next(r for r in replicas if r.gate.allows("c0"))
        other = next(r for r in replicas if r is not holder)
        assert other.gate.request("c0", "webhook")
        await until(lambda: bool(other.gate._pending) is False, "the wake-up row")
        assert holder.ran == []
        assert (await holder.gate.tick()).woken == ("c0",)
        await until(lambda: holder.ran == ["c0"], "the holder's run")
        assert other.ran == []
    finally:
        await _stop(replicas)


async def test_a_webhook_reaching_every_replica_makes_one_run(pg_url: str, store: Store) -> None:
    replicas = await _started(pg_url, store, "a", "b")
    try:
        holder = next(r for r in replicas if r.gate.allows("c0"))
        other = next(r for r in replicas if r is not holder)
        assert other.gate.request("c0", "webhook")
        await until(lambda: bool(other.gate._pending) is False, "the wake-up row")
        assert holder.gate.request("c0", "webhook")
        await until(lambda: holder.ran == ["c0"], "the holder's run")
        for replica in replicas:
            assert (await replica.gate.tick()).woken == ()  # the run served the other replica's wake-up too
        await asyncio.sleep(0.2)
        assert holder.ran == ["c0"]
        assert other.ran == []
    finally:
        await _stop(replicas)


async def test_a_dead_replicas_connection_is_taken_over_and_its_run_marked_interrupted(
    pg_url: str, store: Store
) -> None:
    replicas = await _started(pg_url, store, "a", "b")
    try:
        victim, survivor = replicas
        orphan = sorted(victim.gate.leases.held)[0]
        dead_run = store.start_run(orphan, replica="a")
        conn = victim.gate.leases._conn
        assert conn is not None
        with psycopg.connect(pg_url, autocommit=True) as admin:  # what SIGKILL does to its session
            admin.execute("SELECT pg_terminate_backend(%s)", (conn.info.backend_pid,))
        # The server ends the session a moment after being asked; the survivor's ticks take the lease then.
        for _ in range(100):
            if orphan in (await survivor.gate.tick()).taken:
                break
            await asyncio.sleep(0.02)
        assert survivor.gate.allows(orphan)
        assert store.recent_runs(1)[0].id == dead_run
        assert store.recent_runs(1)[0].status is RunStatus.INTERRUPTED
        await until(lambda: orphan in survivor.ran, "the resumed run")
        assert survivor.registry.get_sample_value("closeloop_leases_held", {"replica": "b"}) == len(CONNECTIONS)
        await victim.gate.tick()  # the victim finds its session gone: counted, every lease given up
        assert victim.registry.get_sample_value("closeloop_lease_failures_total") == 1
        assert not victim.gate.leases.held
        assert victim.gate.problem is not None
        assert "lease session is lost" in victim.gate.problem
        await victim.gate.tick()  # reconnected: ready again
        assert victim.gate.problem is None
    finally:
        await _stop(replicas)


async def test_metrics_show_leases_held_per_replica(pg_url: str, store: Store) -> None:
    replicas = await _started(pg_url, store, "a", "b")
    try:
        await replicas[0].gate.tick()
        values = {
            name: replicas[0].registry.get_sample_value("closeloop_leases_held", {"replica": name})
            for name in ("a", "b")
        }
        assert values == {"a": 2.0, "b": 2.0}
    finally:
        await _stop(replicas)


@pytest.fixture
def config_path(tmp_path: Path) -> Path:
    shutil.copytree(REPO / "config" / "mappings", tmp_path / "mappings")
    path = tmp_path / "closeloop.yaml"
    shutil.copy(REPO / "config" / "sandbox.yaml", path)
    return path


async def test_a_daemon_skips_the_runs_of_connections_whose_lease_it_does_not_hold(
    pg_url: str, config_path: Path, tmp_path: Path
) -> None:
    config = load_config(config_path)
    name = config.connections[0].name
    with Store.open(tmp_path / "state.db") as store:
        leases = leases_for(pg_url, "solo")
        assert leases is not None
        daemon = Daemon(DaemonSettings(), config, store, tmp_path / "state.db", leases=leases)
        assert daemon.gate is not None
        await leases.start([])  # holds no lease: every connection is someone else's
        try:
            await daemon._sync(name)
            assert store.recent_runs() == []
            assert daemon.engine.replica == "solo"
            assert leases._conn is not None
            with psycopg.connect(pg_url, autocommit=True) as admin:  # the lease session goes away
                admin.execute("SELECT pg_terminate_backend(%s)", (leases._conn.info.backend_pid,))
            await daemon.gate.tick()
            readiness = daemon.readiness()
            assert not readiness.ready
            assert any("lease session is lost" in problem for problem in readiness.problems)
        finally:
            await leases.close()


def test_sqlite_keeps_its_file_lock_and_takes_no_leases(tmp_path: Path) -> None:
    assert leases_for(tmp_path / "state.db", "a") is None


async def test_a_connection_that_never_ran_runs_as_soon_as_its_lease_is_taken(pg_url: str, store: Store) -> None:
    replica = Replica(pg_url, "a", store)
    connections = [
        Connection.model_construct(name=c, schedule=Schedule.model_construct(every=None, cron="0 0 1 1 *"))
        for c in CONNECTIONS
    ]
    replica.scheduler.start(connections)
    await replica.gate.start(CONNECTIONS)
    try:
        assert (await replica.gate.tick()).taken
        await until(lambda: sorted(replica.ran) == CONNECTIONS, "the first runs")
    finally:
        await _stop([replica])
