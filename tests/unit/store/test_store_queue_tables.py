"""Outbox, quarantine and runs."""

from __future__ import annotations

import pytest

from closeloop.model import WriteOp
from closeloop.store import OutboxItem, QuarantineStatus, RunStatus, Store
from closeloop.testing.clock import FakeClock

from .conftest import Backend


def _item(n: int, *, system: str = "mkt", connection: str = "c1") -> OutboxItem:
    return OutboxItem(connection, system, "lead", "contact", f"g{n}", WriteOp.UPDATE, native_id=str(n))


def _quarantine(store: Store, native_id: str | None = "1", golden_id: str | None = None, code: str = "INVALID") -> int:
    entry = store.quarantine(
        "c1",
        "crm",
        "contact",
        "contact",
        code=code,
        reason="bad email",
        native_id=native_id,
        golden_id=golden_id,
    )
    return entry.id


# -- outbox -------------------------------------------------------------------------------------------------


def test_due_outbox_is_ordered_by_id_and_limited(store: Store) -> None:
    ids = store.enqueue([_item(n) for n in range(5)])
    due = store.due_outbox("c1", "mkt", "lead", limit=3)
    assert [e.id for e in due] == ids[:3]
    assert due[0].item == _item(0)
    assert due[0].attempts == 0


def test_due_outbox_keeps_systems_and_connections_apart(store: Store) -> None:
    store.enqueue([_item(1), _item(2, system="crm"), _item(3, connection="c2")])
    assert [e.item.golden_id for e in store.due_outbox("c1", "mkt", "lead", limit=10)] == ["g1"]


def test_retry_later_holds_an_item_back_until_its_time(store: Store, clock: FakeClock) -> None:
    first, second = store.enqueue([_item(1), _item(2)])
    store.outbox_retry_later(first, clock.now.replace(minute=45), "503 Service Unavailable")
    assert [e.id for e in store.due_outbox("c1", "mkt", "lead", limit=10)] == [second]
    later = store.due_outbox("c1", "mkt", "lead", limit=10, now=clock.now.replace(minute=45))
    assert [e.id for e in later] == [first, second]
    assert (later[0].attempts, later[0].last_error) == (1, "503 Service Unavailable")


def test_outbox_done_removes_items_and_depth_counts_the_rest(store: Store) -> None:
    ids = store.enqueue([_item(1), _item(2), _item(3, connection="c2")])
    assert store.outbox_depth() == 3
    assert store.outbox_done(ids[:2]) == 2
    assert store.outbox_depth() == 1
    assert store.outbox_depth("c1") == 0
    assert store.outbox_depth("c2") == 1


def test_upsert_item_keeps_its_key(store: Store) -> None:
    item = OutboxItem("c1", "mkt", "lead", "contact", "g1", WriteOp.UPSERT, upsert_key="email")
    store.enqueue([item])
    assert store.due_outbox("c1", "mkt", "lead", limit=1)[0].item == item


# -- quarantine ---------------------------------------------------------------------------------------------


def test_quarantining_a_record_again_bumps_attempts_and_last_seen(store: Store, clock: FakeClock) -> None:
    first_seen = clock.now
    first = _quarantine(store)
    last_seen = clock.advance(hours=1)
    again = store.quarantine("c1", "crm", "contact", "contact", code="DUP", reason="duplicate", native_id="1")
    assert again.id == first
    assert (again.attempts, again.first_seen, again.last_seen) == (2, first_seen, last_seen)
    assert (again.code, again.reason) == ("DUP", "duplicate")
    assert len(store.list_quarantine()) == 1


def test_records_without_native_id_are_keyed_by_golden_id(store: Store) -> None:
    a = _quarantine(store, native_id=None, golden_id="g1")
    b = _quarantine(store, native_id=None, golden_id="g2")
    assert a != b
    assert _quarantine(store, native_id=None, golden_id="g1") == a


def test_quarantine_needs_a_record_id(store: Store) -> None:
    with pytest.raises(ValueError, match="native id or a golden id"):
        _quarantine(store, native_id=None)


def test_retry_request_then_a_new_failure_reopens_the_entry(store: Store) -> None:
    entry = _quarantine(store)
    assert store.mark_retry(entry) == 1
    assert [e.status for e in store.list_quarantine()] == [QuarantineStatus.RETRY]
    _quarantine(store)
    assert [(e.status, e.attempts) for e in store.list_quarantine()] == [(QuarantineStatus.OPEN, 2)]


def test_mark_retry_all_only_touches_open_entries(store: Store) -> None:
    _quarantine(store, native_id="1")
    _quarantine(store, native_id="2")
    store.ignore_quarantine(_quarantine(store, native_id="3"))
    assert store.mark_retry("all") == 2
    assert len(store.list_quarantine(QuarantineStatus.RETRY)) == 2
    assert len(store.list_quarantine(QuarantineStatus.IGNORED)) == 1


def test_ignored_entry_stays_ignored_when_it_fails_again(store: Store) -> None:
    store.ignore_quarantine(_quarantine(store))
    _quarantine(store)
    assert [(e.status, e.attempts) for e in store.list_quarantine()] == [(QuarantineStatus.IGNORED, 2)]


def test_resolved_entry_is_history_and_a_new_failure_opens_a_new_one(store: Store) -> None:
    first = _quarantine(store)
    assert store.resolve_quarantine("c1", "crm", "contact", native_id="1") == 1
    second = _quarantine(store)
    assert second != first
    assert [e.status for e in store.list_quarantine()] == [QuarantineStatus.RESOLVED, QuarantineStatus.OPEN]
    live = store.list_quarantine([QuarantineStatus.OPEN, QuarantineStatus.RETRY], connection="c1")
    assert [e.id for e in live] == [second]


def test_quarantine_keeps_the_payload(store: Store) -> None:
    store.quarantine(
        "c1",
        "crm",
        "contact",
        "contact",
        code="X",
        reason="r",
        native_id="1",
        payload={"n": 1, "tags": ["a"]},
    )
    assert store.list_quarantine()[0].payload == {"n": 1, "tags": ["a"]}


# -- runs ---------------------------------------------------------------------------------------------------


def test_finished_run_keeps_its_counts_and_api_calls(store: Store, clock: FakeClock) -> None:
    run_id = store.start_run("c1")
    clock.advance(seconds=30)
    store.finish_run(run_id, RunStatus.QUARANTINED, {"read": 10, "written": 2}, {"crm": 4, "mkt": 3}, "1 quarantined")
    run = store.last_run("c1")
    assert run is not None
    assert (run.status, dict(run.counts), dict(run.api_calls), run.error) == (
        RunStatus.QUARANTINED,
        {"read": 10, "written": 2},
        {"crm": 4, "mkt": 3},
        "1 quarantined",
    )
    assert run.finished_at == clock.now


def test_recent_runs_newest_first_and_last_run_by_status(store: Store) -> None:
    ok = store.start_run("c1")
    store.finish_run(ok, RunStatus.OK, {}, {})
    failed = store.start_run("c1")
    store.finish_run(failed, RunStatus.FAILED, {}, {}, "boom")
    other = store.start_run("c2")
    assert [r.id for r in store.recent_runs(10)] == [other, failed, ok]
    assert [r.id for r in store.recent_runs(10, connection="c1")] == [failed, ok]
    last_ok = store.last_run("c1", RunStatus.OK)
    assert last_ok is not None
    assert last_ok.id == ok


def test_finishing_a_run_as_running_or_an_unknown_run_fails(store: Store) -> None:
    with pytest.raises(ValueError, match="running"):
        store.finish_run(store.start_run("c1"), RunStatus.RUNNING, {}, {})
    with pytest.raises(KeyError):
        store.finish_run(999, RunStatus.OK, {}, {})


def test_runs_left_running_by_a_crash_become_interrupted_on_open(backend: Backend, clock: FakeClock) -> None:
    with backend.open(clock=clock) as store:
        done = store.start_run("c1")
        store.finish_run(done, RunStatus.OK, {}, {})
        crashed = store.start_run("c1")
    with backend.open(clock=clock) as store:
        assert {r.id: r.status for r in store.recent_runs()} == {
            done: RunStatus.OK,
            crashed: RunStatus.INTERRUPTED,
        }


def test_a_reader_can_open_without_interrupting_running_runs(backend: Backend) -> None:
    with backend.open() as daemon:
        run_id = daemon.start_run("c1")
        with backend.open(interrupt_running=False) as reader:
            last = reader.last_run("c1")
            assert last is not None
            assert (last.id, last.status) == (run_id, RunStatus.RUNNING)


def test_due_outbox_walks_past_after_id(store: Store) -> None:
    ids = store.enqueue([OutboxItem("c1", "mkt", "lead", "contact", f"g{i}", WriteOp.UPDATE) for i in range(5)])
    first = store.due_outbox("c1", "mkt", "lead", limit=2)
    rest = store.due_outbox("c1", "mkt", "lead", limit=10, after_id=first[-1].id)
    assert [e.id for e in first + rest] == ids


def test_due_outbox_reads_through_the_id_ordered_index(store: Store, backend: Backend) -> None:
    if backend.name == "postgres":
        pytest.skip("EXPLAIN QUERY PLAN is SQLite's; PostgreSQL's planner picks by table statistics")
    plan = store._a.rows(
        "EXPLAIN QUERY PLAN SELECT * FROM outbox WHERE connection = ? AND system = ? AND object = ? AND id > ?"
        " AND next_attempt_at <= ? ORDER BY id LIMIT ?",
        ("c", "s", "o", 0, "", 1),
    )
    details = " ".join(str(row[3]) for row in plan)
    assert "outbox_in_order" in details
    assert "TEMP B-TREE" not in details  # no sort of the whole due outbox per window
