"""The collector's thresholds are raised for a sync and come back when the last overlapping sync ends."""

from __future__ import annotations

import gc

import pytest

from closeloop.engine.gctune import SYNC_THRESHOLDS, collector_tuned


@pytest.fixture(autouse=True)
def _defaults() -> object:
    before = gc.get_threshold()
    gc.set_threshold(700, 10, 10)
    yield
    gc.set_threshold(*before)


def test_thresholds_raised_inside_and_restored_after() -> None:
    with collector_tuned():
        assert gc.get_threshold() == SYNC_THRESHOLDS
    assert gc.get_threshold() == (700, 10, 10)


def test_restored_after_a_failure() -> None:
    with pytest.raises(RuntimeError), collector_tuned():
        raise RuntimeError("boom")
    assert gc.get_threshold() == (700, 10, 10)


def test_overlapping_blocks_restore_the_thresholds_found_first() -> None:
    first, second = collector_tuned(), collector_tuned()
    first.__enter__()
    second.__enter__()
    first.__exit__(None, None, None)
    assert gc.get_threshold() == SYNC_THRESHOLDS  # the second sync still runs
    second.__exit__(None, None, None)
    assert gc.get_threshold() == (700, 10, 10)


def test_a_higher_threshold_set_by_the_operator_is_never_lowered() -> None:
    gc.set_threshold(100_000, 10, 10)
    with collector_tuned():
        assert gc.get_threshold()[0] == 100_000
    assert gc.get_threshold() == (100_000, 10, 10)
