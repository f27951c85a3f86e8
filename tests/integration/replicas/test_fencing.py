"""Fencing on a real PostgreSQL server: a run whose lease was taken over commits nothing more, even before its
replica's next lease tick notices, and the new holder's run converges with nothing lost or duplicated."""

from __future__ import annotations

import asyncio
from pathlib import Path

import psycopg
import pytest
from prometheus_client import CollectorRegistry

from closeloop.config.loader import load_config
from closeloop.daemon.replicas import ReplicaGate
from closeloop.daemon.scheduler import SyncScheduler
from closeloop.engine.runtime import Engine, RunOutcome
from closeloop.store import RunStatus
from closeloop.store.fence import LeaseLost, fenced
from closeloop.store.lease import LeaseHeld, Leases, connection_lease
from closeloop.store.postgres import PostgresStore
from closeloop.testing.replicas import Pair, config_text, seed_pair, serve_pairs
from tests.reliability.kit import converge, in_process, state_of

REPO = Path(__file__).resolve().parents[3]
CONTACTS = 1500
COUNTED = ("golden", "links", "outbox", "cursors", "golden_keys", "touchpoints")


def _counts(url: str) -> dict[str, int]:
    """Rows per table and the cursors' positions: what a committed page changes."""
    with psycopg.connect(url) as conn:
        counts = {t: int(conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0]) for t in COUNTED}  # type: ignore[index]  # noqa: S608 - fixed table names
        cursors = conn.execute("SELECT string_agg(modified_at || record_id, ',' ORDER BY system, object) FROM cursors")
        counts["cursor positions"] = hash(cursors.fetchone()[0])  # type: ignore[index]
    return counts


async def _take_over_after_first_commit(url: str, victim: Leases, taker: Leases) -> dict[str, int]:
    """Once the victim's run committed a page: end the victim's lease session (as a partition or a dead lease
    session would), let ``taker`` take the lease, and return the store's counts at the moment it holds it."""
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as watcher:
        while True:
            found = await (await watcher.execute("SELECT count(*) FROM links")).fetchone()
            if found is not None and int(found[0]) > 0:
                break
            await asyncio.sleep(0.01)
        assert victim._conn is not None
        await watcher.execute("SELECT pg_terminate_backend(%s)", (victim._conn.info.backend_pid,))
    for _ in range(500):
        await taker.tick()
        if taker.holds("c0"):
            return _counts(url)
        await asyncio.sleep(0.01)
    raise AssertionError("the lease was not taken over")


def _written(pair: Pair) -> int:
    return sum(box.stats.records_written for box in (pair.crm, pair.mkt) if box is not None)


async def _until_quiet(engine: Engine, pair: Pair) -> list[RunOutcome]:
    """Runs of ``c0`` until one writes nothing on either sandbox."""
    outcomes: list[RunOutcome] = []
    for _ in range(6):
        before = _written(pair)
        outcomes.append(await engine.sync("c0"))
        if _written(pair) == before:
            return outcomes
    raise AssertionError("no quiet run in 6")


async def _reference(tmp: Path) -> dict[str, list[tuple[str, ...]]]:
    pair = seed_pair(0, CONTACTS)
    assert pair.crm is not None
    assert pair.mkt is not None
    async with in_process(tmp / "reference", pair.crm, pair.mkt) as (engine, _store):
        await converge(engine, pair.crm, pair.mkt)
    return state_of(pair.crm, pair.mkt)


async def test_a_run_whose_lease_was_taken_over_commits_nothing_more_and_the_new_holder_converges(
    pg_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    reference = await _reference(tmp_path)
    with serve_pairs([seed_pair(0, CONTACTS)]) as served:
        config = tmp_path / "closeloop.yaml"
        config.write_text(config_text(served, REPO / "config" / "mappings", tmp_path, schedule="{every: 1h}"))
        loaded = load_config(config, environ={})
        stale, taker = Leases(pg_url, "stale"), Leases(pg_url, "taker")
        with PostgresStore.open(pg_url) as store_a, PostgresStore.open(pg_url, interrupt_running=False) as store_b:
            gate = ReplicaGate(stale, SyncScheduler(lambda _name: asyncio.sleep(0)), store_a, CollectorRegistry())
            await stale.start(["c0"])
            await stale.tick()
            await taker.start(["c0"])
            assert stale.holds("c0")
            engine_a, engine_b = Engine(loaded, store_a), Engine(loaded, store_b)
            try:
                takeover = asyncio.create_task(_take_over_after_first_commit(pg_url, stale, taker))
                with pytest.raises(LeaseLost, match="taken over"):
                    async with gate.guard("c0"):
                        await engine_a.sync("c0")
                at_takeover = await takeover
                said = [r.getMessage() for r in caplog.records if r.name == "closeloop.engine.runtime"]
                assert "run of c0 stopped: its lease was taken over by another replica" in said
                assert not [m for m in said if "failed" in m]  # a takeover is no failure of the run (no "bug")
                assert stale.holds("c0")  # its tick has not run: only the fence stopped the run
                assert _counts(pg_url) == at_takeover  # the stale run committed nothing after the takeover
                assert at_takeover["links"] > 0

                fence = taker.fence("c0")
                assert fence is not None
                with fenced(fence):
                    assert store_b.interrupt_running_runs("c0") == 1  # what the gate does on a takeover
                    outcomes = await _until_quiet(engine_b, served[0])
            finally:
                await engine_a.aclose()
                await engine_b.aclose()
                await stale.close()
                await taker.close()
        assert {outcome.status for outcome in outcomes} == {RunStatus.OK}
        assert served[0].crm is not None
        assert served[0].mkt is not None
        state = state_of(served[0].crm, served[0].mkt)
    for side in ("crm contacts", "mkt contacts"):
        emails = [row[0] for row in state[side]]
        assert len(emails) == len(set(emails)), f"duplicate {side}"
    for part, rows in reference.items():
        lost, extra = sorted(set(rows) - set(state[part])), sorted(set(state[part]) - set(rows))
        assert (lost, extra) == ([], []), f"{part} differ: {lost[:3]} vs {extra[:3]}"


async def test_a_transaction_outside_the_leases_generation_is_refused(pg_url: str) -> None:
    with PostgresStore.open(pg_url) as store, connection_lease(pg_url, "c0") as fence:
        store.put_golden("kept", "contact", {})  # the fence holds: the write commits
        with psycopg.connect(pg_url, autocommit=True) as admin:  # a takeover writes a new generation
            admin.execute("UPDATE closeloop_leases SET generation = nextval('closeloop_lease_generation')")
        with pytest.raises(LeaseLost):
            store.put_golden("refused", "contact", {})
        assert fence.connection == "c0"
    with PostgresStore.open(pg_url) as store:
        assert store.get_golden("kept") is not None
        assert store.get_golden("refused") is None


def test_a_cli_lease_leaves_no_row_behind_and_is_named_as_a_process_not_a_replica(pg_url: str) -> None:
    with (
        PostgresStore.open(pg_url),
        connection_lease(pg_url, "c0"),
        pytest.raises(LeaseHeld, match="'c0' is being run by another closeloop process"),
        connection_lease(pg_url, "c0"),
    ):
        pass
    with psycopg.connect(pg_url) as conn:
        assert conn.execute("SELECT count(*) FROM closeloop_leases").fetchone() == (0,)
