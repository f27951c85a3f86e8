"""G1/G15: kill -9 a ``closeloop sync --once`` at random points, restart it, and end where an uninterrupted run ends."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.reliability.kit import REPO, config_text, converge, in_process, seeded, served, state_of

CLI = [sys.executable, "-m", "closeloop.cli", "sync", "--once", "--config"]
MAX_CYCLES = 6


def _sync(config: Path, *, kill_after: float | None = None) -> tuple[int, float]:
    """One ``closeloop sync --once`` in a child process, SIGKILLed after ``kill_after`` seconds if given."""
    started = time.monotonic()
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    child = subprocess.Popen([*CLI, str(config)], cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)  # noqa: S603
    try:
        try:
            child.wait(timeout=kill_after if kill_after is not None else 600)
        except subprocess.TimeoutExpired:
            child.send_signal(signal.SIGKILL)
            child.wait(timeout=30)
            return -9, time.monotonic() - started
        assert child.stderr is not None
        assert child.returncode in (0, 1), child.stderr.read().decode()[-2000:]
        return child.returncode, time.monotonic() - started
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(timeout=30)
        if child.stderr is not None:
            child.stderr.close()


def _converge(config: Path, written: Callable[[], int]) -> None:
    """Sync until a cycle writes nothing."""
    for _ in range(MAX_CYCLES):
        before = written()
        _sync(config)
        if written() == before:
            return
    raise AssertionError("no quiet cycle")


def _run(tmp: Path, contacts: int, kills: int, rng: random.Random, span: float) -> tuple[dict, Path]:
    tmp.mkdir()
    crm, mkt = seeded(contacts, contacts // 10)
    with served(crm, mkt) as box:
        config = tmp / "closeloop.yaml"
        config.write_text(config_text(box.crm_url, box.mkt_url, tmp / "state.db", "timeout_seconds: 20"))
        for _ in range(kills):
            _sync(config, kill_after=rng.uniform(0.5, span))
        _converge(config, lambda: crm.stats.records_written + mkt.stats.records_written)
        return state_of(crm, mkt), tmp / "state.db"


async def _reference(tmp: Path, contacts: int) -> dict:
    """The same sync uninterrupted, in-process (same engine, same sandboxes, no HTTP)."""
    crm, mkt = seeded(contacts, contacts // 10)
    async with in_process(tmp, crm, mkt) as (engine, _store):
        await converge(engine, crm, mkt)
    return state_of(crm, mkt)


def _no_duplicates(state: dict) -> None:
    for side in ("crm contacts", "mkt contacts"):
        emails = [row[0] for row in state[side]]
        assert len(emails) == len(set(emails)), f"duplicate {side}"


@pytest.mark.parametrize(
    ("contacts", "kills"),
    [
        pytest.param(2_000, 3, id="2k-records-3-kills"),
        pytest.param(20_000, 20, id="20k-records-20-kills", marks=pytest.mark.slow),
    ],
)
def test_sigkill_at_random_points_loses_and_duplicates_nothing(tmp_path: Path, contacts: int, kills: int) -> None:
    reference = asyncio.run(_reference(tmp_path / "reference", contacts))
    span = 1.0 + contacts / 500  # about one uncut initial cycle of the CLI on this machine (startup included)
    seed = int(os.environ.get("RELIABILITY_SEED", "20260"))
    killed, store = _run(tmp_path / "killed", contacts, kills, random.Random(seed), span)
    _no_duplicates(killed)
    for part, rows in reference.items():
        lost, extra = sorted(set(rows) - set(killed[part])), sorted(set(killed[part]) - set(rows))
        assert (lost, extra) == ([], []), f"{part} differ (RELIABILITY_SEED={seed}): {lost[:5]} vs {extra[:5]}"
    with sqlite3.connect(store) as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
