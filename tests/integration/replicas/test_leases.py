"""Leases on a real PostgreSQL server: exclusion, fair spread, takeover when a replica's session dies."""

from __future__ import annotations

import asyncio
import time

import psycopg
import pytest

from closeloop.store.lease import LeaseHeld, Leases, ReplicaNameInUse, connection_lease

CONNECTIONS = [f"c{i}" for i in range(6)]


async def _replicas(url: str, *names: str) -> list[Leases]:
    replicas = [Leases(url, name) for name in names]
    for replica in replicas:
        await replica.start(CONNECTIONS)
    return replicas


async def _settle(replicas: list[Leases], rounds: int = 4) -> None:
    for _ in range(rounds):
        for replica in replicas:
            await replica.tick()


async def test_each_connection_has_at_most_one_holder_and_the_spread_is_fair(pg_url: str) -> None:
    replicas = await _replicas(pg_url, "a", "b", "c")
    try:
        await _settle(replicas)
        held = [replica.held for replica in replicas]
        assert sorted(c for h in held for c in h) == CONNECTIONS  # each connection exactly once
        assert [len(h) for h in held] == [2, 2, 2]
    finally:
        for replica in replicas:
            await replica.close()


async def test_a_lone_replica_takes_everything_and_gives_up_its_share_when_another_arrives(pg_url: str) -> None:
    (first,) = await _replicas(pg_url, "a")
    try:
        await first.tick()
        assert first.held == set(CONNECTIONS)
        (second,) = await _replicas(pg_url, "b")
        try:
            await _settle([first, second])
            assert len(first.held) == 3
            assert len(second.held) == 3
            assert not first.held & second.held
        finally:
            await second.close()
    finally:
        await first.close()


async def test_a_running_connection_keeps_its_lease_above_the_fair_share(pg_url: str) -> None:
    (first,) = await _replicas(pg_url, "a")
    second: Leases | None = None
    try:
        await first.tick()
        second = Leases(pg_url, "b")
        await second.start(CONNECTIONS)
        tick = await first.tick(running=lambda: CONNECTIONS)
        assert tick.released == ()
        assert first.held == set(CONNECTIONS)
    finally:
        if second is not None:
            await second.close()
        await first.close()


async def test_a_killed_session_frees_its_leases_for_the_others_at_once(pg_url: str) -> None:
    replicas = await _replicas(pg_url, "a", "b", "c")
    try:
        await _settle(replicas)
        victim, survivors = replicas[0], replicas[1:]
        orphaned = victim.held
        # What SIGKILL does to a replica: its session ends without anything released by hand.
        assert victim._conn is not None
        pid = victim._conn.info.backend_pid
        with psycopg.connect(pg_url, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
        started = time.monotonic()
        while orphaned - (survivors[0].held | survivors[1].held):
            for replica in survivors:
                await replica.tick()
            assert time.monotonic() - started < 5, "the orphaned leases were not taken over"
        assert sorted(survivors[0].held | survivors[1].held) == CONNECTIONS
        assert len(survivors[0].held) == len(survivors[1].held) == 3
        # The victim finds its session gone at its next tick and holds nothing any more.
        tick = await victim.tick()
        assert set(tick.lost) == orphaned
        assert victim.held == set()
    finally:
        for replica in replicas:
            await replica.close()


async def test_a_second_replica_with_the_same_name_cannot_start(pg_url: str) -> None:
    (first,) = await _replicas(pg_url, "same")
    try:
        with pytest.raises(ReplicaNameInUse, match="CLOSELOOP_REPLICA"):
            await Leases(pg_url, "same").start(CONNECTIONS)
    finally:
        await first.close()


async def test_wakeups_from_any_replica_become_one_for_the_holder(pg_url: str) -> None:
    replicas = await _replicas(pg_url, "a", "b")
    try:
        await _settle(replicas)
        holder = next(r for r in replicas if r.holds("c0"))
        other = next(r for r in replicas if not r.holds("c0"))
        await asyncio.gather(other.wake("c0", "webhook"), other.wake("c0", "webhook"), holder.wake("c0", "webhook"))
        assert (await other.tick()).woken == ()
        assert (await holder.tick()).woken == ("c0",)
        assert (await holder.tick()).woken == ()
    finally:
        for replica in replicas:
            await replica.close()


async def test_heartbeat_rows_show_leases_per_replica(pg_url: str) -> None:
    replicas = await _replicas(pg_url, "a", "b", "c")
    try:
        await _settle(replicas)
        rows = await replicas[0].replicas()
        assert [(row.name, row.leases) for row in rows] == [("a", 2), ("b", 2), ("c", 2)]
    finally:
        for replica in replicas:
            await replica.close()


async def test_a_cli_sync_and_a_replica_never_hold_one_connection_together(pg_url: str) -> None:
    (replica,) = await _replicas(pg_url, "a")
    try:
        with connection_lease(pg_url, "c0"):  # a `closeloop sync` of c0 is under way
            await replica.tick()
            assert not replica.holds("c0")
            assert replica.held == set(CONNECTIONS) - {"c0"}
        await replica.tick()  # the sync is over: the replica takes c0
        assert replica.holds("c0")
        with pytest.raises(LeaseHeld, match="replica 'a'"), connection_lease(pg_url, "c0"):
            pass
    finally:
        await replica.close()
