"""RecordTable: its live and deleted (modified, id) indexes agree with a sort of every row, whatever the writes."""

from __future__ import annotations

import random
import sys
from datetime import UTC, datetime, timedelta

import pytest

from closeloop.model import Cursor
from closeloop.sandbox import RecordTable, SandboxClock, sequential_ids

START = datetime(2026, 2, 1, tzinfo=UTC)
MOMENTS = [START + timedelta(seconds=s) for s in range(0, 40, 4)]


def table() -> RecordTable:
    return RecordTable("things", SandboxClock(lambda: START), sequential_ids("t", width=4), unique=("code",))


def churned(seed: int) -> RecordTable:
    """A table after a random mix of inserts, updates, deletes, merges and restamps on few instants."""
    rng = random.Random(seed)
    things = table()
    for number in range(300):
        things.insert({"code": f"C{number}", "name": f"n{number % 7}"}, at=rng.choice(MOMENTS))
    ids = list(things.rows)
    for _ in range(400):
        live = [i for i in ids if things.get(i) is not None]
        action = rng.random()
        if action < 0.4:
            things.update(rng.choice(live), {"name": f"u{rng.randint(0, 9)}"}, at=rng.choice(MOMENTS))
        elif action < 0.6:
            things.delete(rng.choice(live), at=rng.choice(MOMENTS))
        elif action < 0.7:
            loser, winner = rng.sample(live, 2)
            things.merge(loser, winner, at=rng.choice(MOMENTS))
        else:
            things.restamp(rng.sample(live, 20), rng.choice(MOMENTS))
    return things


def in_order(things: RecordTable, *, deleted: bool | None) -> list[str]:
    rows = [r for r in things.rows.values() if deleted is None or r.deleted == deleted]
    return [r.id for r in sorted(rows, key=lambda r: (r.modified_at, r.id))]


@pytest.mark.parametrize("seed", range(5))
def test_the_indexes_follow_every_write(seed: int) -> None:
    things = churned(seed)
    assert [r.id for r in things.changed_after(None)] == in_order(things, deleted=False)
    assert [r.id for r in things.changed_after(None, include_deleted=True)] == in_order(things, deleted=None)
    assert [r.id for r in things.deleted()] == in_order(things, deleted=True)
    assert len(things) == things.live_count() == len(in_order(things, deleted=False))
    cursor = Cursor(MOMENTS[4], sorted(things.rows)[150])
    after = [i for i in in_order(things, deleted=None) if (things.rows[i].modified_at, i) > (MOMENTS[4], cursor.id)]
    assert [r.id for r in things.changed_after(cursor, include_deleted=True)] == after


@pytest.mark.parametrize("seed", range(3))
def test_live_positions_count_and_slice_like_a_sort(seed: int) -> None:
    things = churned(seed)
    live = in_order(things, deleted=False)
    for moment in [START - timedelta(seconds=1), *MOMENTS, START + timedelta(seconds=2), START + timedelta(days=1)]:
        at_or_after = sum(1 for i in live if things.rows[i].modified_at < moment)
        after = sum(1 for i in live if things.rows[i].modified_at <= moment)
        assert things.live_position(moment, after=False) == at_or_after
        assert things.live_position(moment, after=True) == after
    assert [r.id for r in things.live_rows(10, 25)] == live[10:25]
    assert things.live_key(7) == (things.rows[live[7]].modified_at, live[7])


def test_a_merge_winner_takes_the_losers_unique_value() -> None:
    things = table()
    winner = things.insert({"name": "w"})
    loser = things.insert({"name": "l", "code": "X1"})
    things.merge(loser.id, winner.id)
    found = things.find("code", "x1")
    assert found is not None
    assert found.id == winner.id
    assert things.conflicts({"code": "X1"}) == "code"


def test_rows_fields_are_plain_dicts_that_share_their_keys() -> None:
    things = table()
    rows = [things.insert({"code": f"C{n}", "name": "n", "extra": n}) for n in range(3)]
    assert type(rows[0].fields) is dict
    assert rows[0].fields == {"code": "C0", "name": "n", "extra": 0}
    rows[1].fields.pop("name")
    rows[1].fields["late"] = True
    assert rows[1].fields == {"code": "C1", "extra": 1, "late": True}
    assert list(rows[1].fields) == ["code", "extra", "late"]
    if sys.implementation.name == "cpython":
        wide = [things.insert({f"field{k}": k for k in range(20)}) for _ in range(3)]
        assert sys.getsizeof(wide[2].fields) < sys.getsizeof(dict(wide[2].fields))
