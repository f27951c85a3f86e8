"""G4/G5/G17: under injected 5xx, 429, timeouts and partial batch failures the sync converges and loses nothing."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from tests.reliability.kit import ShiftedClock, converge, in_process, seeded, state_of

FAULTS = {"fault_500": 0.05, "fault_502": 0.05, "fault_429": 0.05, "fault_timeout": 0.02, "fault_partial": 0.01}
FAST = (
    "timeout_seconds: 0.3, backoff_base_seconds: 0.01, backoff_max_seconds: 0.05, max_attempts: 10, "
    "requests_per_window: 100, window_seconds: 1"
)


async def _faulty_sync(tmp: Path, contacts: int) -> tuple[dict, int]:
    crm, mkt = seeded(contacts, contacts // 10)
    for box in (crm, mkt):
        box.knobs.update({**FAULTS, "timeout_sleep_s": 1.0})
    mkt.knobs.update({"enforce_limits": True, "requests_per_window": 100, "window_s": 1.0})
    mkt.knobs.bucket_limits = {"search": (100, 1.0)}
    clock = ShiftedClock()
    async with in_process(tmp, crm, mkt, FAST, clock) as (engine, store):
        for _ in range(15):
            before = crm.stats.records_written + mkt.stats.records_written
            outcome = await engine.sync("rel")
            clock.offset += timedelta(hours=2)  # every held-back write is due next cycle
            store.mark_retry("all")  # partial failures are permanent per record: an admin retries them
            quiet = crm.stats.records_written + mkt.stats.records_written == before
            if quiet and outcome.status.value == "ok" and not store.outbox_depth():
                break
        for box in (crm, mkt):
            box.knobs.update(dict.fromkeys(FAULTS, 0.0))
        await converge(engine, crm, mkt)
        faults = sum(sum(box.stats.faults.values()) for box in (crm, mkt))
        assert faults > 0
        return state_of(crm, mkt), mkt.stats.violations + crm.stats.violations


async def _clean_sync(tmp: Path, contacts: int) -> dict:
    crm, mkt = seeded(contacts, contacts // 10)
    async with in_process(tmp, crm, mkt) as (engine, _store):
        await converge(engine, crm, mkt)
    return state_of(crm, mkt)


@pytest.mark.parametrize(
    "contacts", [pytest.param(400, id="400"), pytest.param(5_000, id="5k", marks=pytest.mark.slow)]
)
async def test_faults_converge_to_the_fault_free_state(tmp_path: Path, contacts: int) -> None:
    reference = await _clean_sync(tmp_path / "clean", contacts)
    faulty, violations = await _faulty_sync(tmp_path / "faulty", contacts)
    assert violations == 0
    for part, rows in reference.items():
        lost, extra = sorted(set(rows) - set(faulty[part])), sorted(set(faulty[part]) - set(rows))
        assert (lost, extra) == ([], []), f"{part}: lost {lost[:3]}, extra {extra[:3]}"
