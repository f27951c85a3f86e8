"""Which contact a merged-away contact ends up in when a page reports merges of merges; whose touches a page asks."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from closeloop.engine.merges import final_winner
from closeloop.engine.touch import touch_subjects


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


class _Streaming:
    """A connector that streams its touches (only the method the check looks for)."""

    def touch_changes(self, since: object) -> object:
        raise NotImplementedError


@pytest.mark.parametrize(
    ("connector", "expected"),
    [pytest.param(object(), ["p1", "p2"], id="no-stream-every-fresh-person"),
     pytest.param(_Streaming(), ["p2"], id="stream-only-arriving-people")],
)  # fmt: skip
def test_touches_are_asked_of_arriving_people_only_where_a_stream_brings_the_rest(
    connector: object, expected: list[str]
) -> None:
    store = SimpleNamespace(find_links=lambda system, obj, ids: {"p1": object()})
    ctx = SimpleNamespace(connectors={"crm": connector}, store=store)
    assert touch_subjects(ctx, "crm", "Contact", ["p1", "p2"]) == expected  # type: ignore[arg-type]
