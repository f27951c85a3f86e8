"""Three ``closeloop run`` processes on one PostgreSQL store, six connections (each its own pair of sandboxes);
one daemon is killed with SIGKILL in the middle of a run.

What must hold: no connection ever has two runs at once (the run history says so), the dead daemon's connections
are taken over and resumed, every connection converges, and each pair of sandboxes ends exactly where one
uninterrupted sync ends (nothing lost, nothing duplicated). The test prints the lease-takeover time.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import psycopg
import pytest

from closeloop.model import parse_utc
from closeloop.testing.replicas import Pair, RunSpan, config_text, overlapping_runs, seed_pair, serve_pairs
from tests.reliability.kit import converge, in_process, state_of

pytest.importorskip("closeloop.store.postgres", reason="needs the PostgreSQL state store (closeloop.store.postgres)")

REPO = Path(__file__).resolve().parents[3]
CONNECTIONS = 6
LATENCY_S = 0.03


class DaemonProcess:
    """A ``closeloop run`` on the shared store, its JSON log written to ``<replica>.log`` beside the config."""

    def __init__(self, config: Path, url: str, replica: str) -> None:
        env = {
            **os.environ,
            "CLOSELOOP_STATE_URL": url,
            "CLOSELOOP_REPLICA": replica,
            "CLOSELOOP_LEASE_TICK_SECONDS": "0.5",
            "CLOSELOOP_HTTP_PORT": "0",
            "CLOSELOOP_LOG_FORMAT": "json",
            "CLOSELOOP_RELOAD_POLL_SECONDS": "0",
            "CLOSELOOP_EARLY_RUN_GAP_SECONDS": "0",
        }
        self.replica = replica
        self.log = config.parent / f"{replica}.log"
        with self.log.open("w") as out:
            self.process = subprocess.Popen(  # noqa: S603 - our own CLI, fixed arguments
                [sys.executable, "-m", "closeloop.cli", "run", "--config", str(config)],
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=config.parent,
            )

    def tail(self) -> str:
        """The last lines of its log, for a failure's message."""
        return "\n".join(self.log.read_text().splitlines()[-5:])

    def stop(self) -> None:
        """SIGTERM, then SIGKILL if it lingers."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)


def _runs(url: str) -> list[RunSpan]:
    with psycopg.connect(url) as conn:
        try:
            rows = conn.execute("SELECT connection, replica, started_at, finished_at, status FROM runs").fetchall()
        except (psycopg.errors.UndefinedTable, psycopg.errors.UndefinedColumn):  # not migrated yet
            return []
    return [RunSpan(str(c), r, parse_utc(str(s)), parse_utc(str(f)) if f else None, str(st)) for c, r, s, f, st in rows]


def _written(pairs: list[Pair]) -> int:
    return sum(box.stats.records_written for pair in pairs for box in (pair.crm, pair.mkt) if box is not None)


def _converged(url: str, pairs: list[Pair], timeout: float) -> None:
    """Wait until every connection ran once more, from start to end, without a write anywhere."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        written, since = _written(pairs), datetime.now().astimezone()
        while time.monotonic() < deadline:
            done = {r.connection for r in _runs(url) if r.started_at > since and r.finished_at is not None}
            if len(done) == CONNECTIONS:
                break
            time.sleep(0.5)
        if _written(pairs) == written and len(done) == CONNECTIONS:
            return
    raise AssertionError("the connections did not converge")


async def _reference(tmp: Path, index: int, contacts: int) -> dict[str, list[tuple[str, ...]]]:
    pair = seed_pair(index, contacts)
    assert pair.crm is not None
    assert pair.mkt is not None
    async with in_process(tmp / f"ref-{index}", pair.crm, pair.mkt) as (engine, _store):
        await converge(engine, pair.crm, pair.mkt)
    return state_of(pair.crm, pair.mkt)


def _kill_mid_run(victim: DaemonProcess, url: str) -> float:
    """SIGKILL ``victim`` a moment into a run it has recorded as running; the kill time (epoch seconds)."""
    deadline = time.monotonic() + 60
    while not any(r.replica == victim.replica and r.finished_at is None for r in _runs(url)):
        assert time.monotonic() < deadline, f"{victim.replica} started no run"
        assert victim.process.poll() is None, f"{victim.replica} exited: {victim.tail()}"
        time.sleep(0.05)
    time.sleep(0.2)
    victim.process.send_signal(signal.SIGKILL)
    victim.process.wait(timeout=10)
    return time.time()


@pytest.mark.parametrize(
    "contacts",
    [
        pytest.param(20, id="20-contacts-per-pair"),
        pytest.param(1000, id="1000-contacts-per-pair", marks=pytest.mark.slow),
    ],
)
def test_three_daemons_one_killed_mid_run_lose_nothing_and_never_overlap(
    pg_url: str, tmp_path: Path, contacts: int
) -> None:
    references = [asyncio.run(_reference(tmp_path, i, contacts)) for i in range(CONNECTIONS)]
    pairs = [seed_pair(i, contacts, latency_s=LATENCY_S) for i in range(CONNECTIONS)]
    with serve_pairs(pairs) as served:
        config = tmp_path / "closeloop.yaml"
        config.write_text(
            config_text(served, REPO / "config" / "mappings", tmp_path, schedule="{every: 5s, jitter: 1s}")
        )
        daemons = [DaemonProcess(config, pg_url, f"r{i}") for i in range(3)]
        try:
            killed_at = _kill_mid_run(daemons[0], pg_url)
            _converged(pg_url, served, timeout=120)
            runs = _runs(pg_url)
        finally:
            for daemon in daemons:
                daemon.stop()
        states = [state_of(pair.crm, pair.mkt) for pair in served if pair.crm is not None and pair.mkt is not None]

    assert overlapping_runs(runs) == []
    assert {run.replica for run in runs} == {"r0", "r1", "r2"}  # the work was spread, the dead one included
    orphaned = {run.connection for run in runs if run.replica == "r0" and run.status == "interrupted"}
    assert orphaned, "the kill hit no run"
    takeovers = []
    for connection in orphaned:
        after = [r.started_at.timestamp() for r in runs if r.connection == connection and r.replica != "r0"]
        resumed = min(t for t in after if t >= killed_at)
        takeovers.append(resumed - killed_at)
    print(f"\nlease takeover after SIGKILL: {max(takeovers):.2f} s (connections {sorted(orphaned)})")
    assert max(takeovers) < 10
    for index, (state, reference) in enumerate(zip(states, references, strict=True)):
        for side in ("crm contacts", "mkt contacts"):
            emails = [row[0] for row in state[side]]
            assert len(emails) == len(set(emails)), f"pair {index}: duplicate {side}"
        for part, rows in reference.items():
            lost, extra = sorted(set(rows) - set(state[part])), sorted(set(state[part]) - set(rows))
            assert (lost, extra) == ([], []), f"pair {index}: {part} differ: {lost[:3]} vs {extra[:3]}"
