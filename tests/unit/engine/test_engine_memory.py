"""Memory that stays flat in the number of records a cycle touches: the set of touched deals, associations."""

from __future__ import annotations

import tracemalloc

import pytest

from closeloop.engine.context import IdSet


def _ids(n: int, prefix: str = "g") -> list[str]:
    return [f"{prefix}{i:06d}" for i in range(n)]


def test_id_set_is_a_set_iterated_in_order(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(IdSet, "BUFFER", 3)
    ids = IdSet()
    assert list(ids) == []
    assert len(ids) == 0
    assert "g000001" not in ids
    ids.update(reversed(_ids(10)))
    ids.add("g000004")
    ids.update(["g000004", "g000009"])
    assert len(ids) == 10
    assert "g000001" in ids
    assert "g000010" not in ids
    assert 7 not in ids
    assert list(ids) == _ids(10)
    ids.close()
    assert list(ids) == []
    assert len(ids) == 0


def test_id_set_iteration_takes_ids_added_meanwhile_that_sort_later(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(IdSet, "BUFFER", 2)
    ids = IdSet()
    ids.update(["b", "d"])
    seen = []
    for item in ids:
        seen.append(item)
        if item == "b":
            ids.update(["a", "c", "e"])  # "a" and "c" sort before the end of the batch being handed out
    assert seen == ["b", "d", "e"]
    assert list(ids) == ["a", "b", "c", "d", "e"]
    ids.close()


def test_id_set_keeps_ids_out_of_python_memory() -> None:
    ids = IdSet()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        ids.update(f"{i:012x}{i * 7919:020x}" for i in range(50_000))
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert len(ids) == 50_000
    # a Python set of these 50,000 ids takes about 6 MB; the buffer holds at most IdSet.BUFFER of them
    assert held < 1_000_000
    ids.close()
