"""Store.transaction(): all or nothing, nested blocks join the outer one, other threads wait."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

import pytest

from closeloop.model import Cursor, WriteOp
from closeloop.store import OutboxItem, Store

from .conftest import INTEGRITY_ERRORS, Backend

T0 = datetime(2026, 1, 5, 9, 30, tzinfo=UTC)


class Boom(Exception):
    pass


def _write_a_cycle(store: Store, golden_id: str) -> None:
    store.put_golden(golden_id, "contact", {"email": f"{golden_id}@example.com"})
    store.put_link("crm", "contact", golden_id, golden_id, "contact")
    store.enqueue([OutboxItem("c1", "mkt", "lead", "contact", golden_id, WriteOp.UPDATE, native_id="9")])
    store.set_cursor("c1", "crm", "contact", Cursor(T0, golden_id))


def _cycles_then_fail(store: Store, *golden_ids: str) -> None:
    with store.transaction():
        for golden_id in golden_ids:
            _write_a_cycle(store, golden_id)
        raise Boom


def test_failing_transaction_leaves_nothing_behind(store: Store, backend: Backend) -> None:
    with pytest.raises(Boom):
        _cycles_then_fail(store, "g1", "g2")
    for table in ("golden", "links", "outbox", "cursors"):
        assert backend.count(table) == 0
    assert store.get_golden("g1") is None
    assert store.get_cursor("c1", "crm", "contact") is None


def test_committed_transaction_is_visible_to_other_connections(store: Store, backend: Backend) -> None:
    with store.transaction():
        _write_a_cycle(store, "g1")
    assert [backend.count(t) for t in ("golden", "links", "outbox", "cursors")] == [1, 1, 1, 1]


def test_nested_transaction_commits_only_with_the_outer_one(store: Store, backend: Backend) -> None:
    with store.transaction():
        with store.transaction():
            _write_a_cycle(store, "g1")
        assert backend.count("golden") == 0
    assert backend.count("golden") == 1


def test_outer_failure_undoes_a_finished_nested_block(store: Store, backend: Backend) -> None:
    def nested_then_fail() -> None:
        with store.transaction():
            with store.transaction():
                _write_a_cycle(store, "g1")
            raise Boom

    with pytest.raises(Boom):
        nested_then_fail()
    assert backend.count("golden") == 0


def test_inner_failure_undoes_only_the_inner_block(store: Store) -> None:
    def inner_fails() -> None:
        with store.transaction():
            store.put_golden("dropped", "contact", {})
            raise Boom

    with store.transaction():
        store.put_golden("kept", "contact", {})
        with pytest.raises(Boom):
            inner_fails()
    assert store.get_golden("kept") is not None
    assert store.get_golden("dropped") is None


def test_commit_time_foreign_key_failure_rolls_everything_back(store: Store) -> None:
    def golden_and_dangling_link() -> None:
        with store.transaction():
            store.put_golden("g1", "contact", {})
            store.put_link("crm", "contact", "1", "no-such-golden", "contact")

    with pytest.raises(INTEGRITY_ERRORS):
        golden_and_dangling_link()
    assert store.get_golden("g1") is None
    assert store.get_link("crm", "contact", "1") is None


def test_store_is_usable_after_a_failed_transaction(store: Store) -> None:
    with pytest.raises(Boom):
        _cycles_then_fail(store, "g1")
    store.put_golden("g2", "contact", {})
    assert store.get_golden("g2") is not None


def test_another_thread_waits_for_the_commit_instead_of_joining(store: Store) -> None:
    inside = threading.Event()
    seen: list[bool] = []
    blocked: list[bool] = []

    def reader() -> None:
        inside.wait()
        # Blocks until the main thread's transaction ends, then sees its result.
        seen.append(store.get_golden("g1") is not None)

    def write_while_the_reader_waits() -> None:
        with store.transaction():
            store.put_golden("g1", "contact", {})
            inside.set()
            thread.join(timeout=0.2)
            blocked.append(thread.is_alive())
            raise Boom

    thread = threading.Thread(target=reader)
    thread.start()
    with pytest.raises(Boom):
        write_while_the_reader_waits()
    thread.join(timeout=5)
    assert blocked == [True]
    assert seen == [False]


def test_store_methods_inside_a_transaction_take_no_savepoints(store: Store, backend: Backend) -> None:
    statements = backend.trace(store)
    with store.transaction():
        _write_a_cycle(store, "g1")
    assert not [s for s in statements if s.upper().startswith(("SAVEPOINT", "RELEASE"))]
    assert backend.count("golden") == 1


def test_a_store_method_alone_is_still_its_own_transaction(store: Store, backend: Backend) -> None:
    store.put_golden("g1", "contact", {"email": "a@x"})
    assert backend.count("golden") == 1
