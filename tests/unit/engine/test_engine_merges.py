"""Which contact a merged-away contact ends up in when a page reports merges of merges."""

from __future__ import annotations

import pytest

from closeloop.engine.merges import final_winner


@pytest.mark.parametrize(
    ("merged", "loser", "expected"),
    [
        pytest.param({"a": "b"}, "a", "b", id="one-merge"),
        pytest.param({"a": "b", "b": "c"}, "a", "c", id="a-into-b-then-b-into-c"),
        pytest.param({"a": "b", "b": "a"}, "a", "a", id="a-cycle-stops"),
    ],
)
def test_final_winner_follows_merges_of_merges(merged: dict[str, str], loser: str, expected: str) -> None:
    assert final_winner(merged, loser) == expected
