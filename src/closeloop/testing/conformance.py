"""The connector conformance kit: what every closeloop connector must do against its vendor's sandbox.

A connector author runs it from the connector's own repository, under pytest with pytest-asyncio::

    # tests/test_conformance.py
    from closeloop.testing.conformance import conformance_suite
    from closeloop_acme.testing import TARGET      # a closeloop.sandbox.ConformanceTarget

    TestAcmeConformance = conformance_suite(TARGET)

The suite builds the connector through the installed plugin (entry point group ``closeloop.connectors``), wires it
in-process to a sandbox the :class:`Target` makes (a :class:`closeloop.sandbox.SandboxBase`), and checks: full and
incremental reads in (modified_at, id) order as :class:`closeloop.model.Cursor` defines it, equal timestamps
across page boundaries (resuming from each page's cursor, as the engine stores it, reads exactly the rest), a
record edited while the stream is paged, the lookback, read after write, idempotent
upserts, one bad record in a batch, a 429 storm, the limiter tuned to the sandbox with zero violations, token
expiry mid-run, deletions, merges, deal stages and associations. Checks a vendor cannot have (no merge, a static
token, no deals) are skipped with the reason, as the target declares.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar, Protocol

import httpx
import pytest
import pytest_asyncio

from closeloop.connector import Connector, ConnectorContext, registry
from closeloop.model import (
    Association,
    Cursor,
    NativeRecord,
    Page,
    WriteOp,
    WriteRequest,
    advance,
    record_key,
    records_after,
)
from closeloop.sandbox.kit import SandboxBase

__all__ = ["ConformanceSuite", "Target", "build_connector", "conformance_suite", "read_all", "read_pages"]

PEOPLE = 25
"""People each sandbox is seeded with."""
SEED = 7


class Target(Protocol):
    """One connector under test: how to build its sandbox and settings, and what its records look like.

    :class:`closeloop.sandbox.ConformanceTarget` is a ready-made one.
    """

    @property
    def vendor(self) -> str:
        """The plugin's name under the ``closeloop.connectors`` entry point group."""
        ...

    @property
    def contact_object(self) -> str:
        """The native object holding people."""
        ...

    @property
    def email_field(self) -> str:
        """That object's email field: the search and upsert key."""
        ...

    @property
    def make_sandbox(self) -> Callable[[int, int], SandboxBase]:
        """(seed, people) -> a sandbox seeded with that many people."""
        ...

    @property
    def settings(self) -> Callable[[SandboxBase], dict[str, Any]]:
        """The plugin's settings pointing at a sandbox."""
        ...

    @property
    def new_fields(self) -> Callable[[int], dict[str, Any]]:
        """Native fields of a valid new person number i (unique email)."""
        ...

    @property
    def deal_object(self) -> str | None:
        """The native deal object, None when the vendor has no deals."""
        ...

    @property
    def new_deal_fields(self) -> Callable[[int], dict[str, Any]] | None:
        """Native fields of a valid new deal number i."""
        ...

    @property
    def supports_merge(self) -> bool:
        """Whether the vendor merges records (the merge check is skipped otherwise)."""
        ...

    @property
    def token_expires(self) -> bool:
        """Whether the credential expires (the token-expiry check is skipped for a static token)."""
        ...


def build_connector(target: Target, sandbox: SandboxBase, **overrides: Any) -> Connector:
    """A connector of ``target``, from the installed plugin, wired in-process to ``sandbox``."""
    plugin = registry().get(target.vendor)
    settings = plugin.settings_model(**{**target.settings(sandbox), **overrides})
    context = ConnectorContext(
        system=f"{target.vendor}-under-test", settings=settings, transport=httpx.ASGITransport(app=sandbox)
    )
    return registry().create(target.vendor, context)


async def read_all(connector: Connector, obj: str, since: Cursor | None = None) -> list[NativeRecord]:
    """Every record of the change stream after ``since``."""
    records: list[NativeRecord] = []
    async for page in connector.read_changes(obj, since):
        records.extend(page.records)
    return records


async def read_pages(connector: Connector, obj: str, since: Cursor | None = None) -> list[Page]:
    """The change stream after ``since``, page by page (empty pages left out)."""
    return [page async for page in connector.read_changes(obj, since) if page.records]


def assert_ordered_once(records: Sequence[NativeRecord]) -> None:
    """Records come in (modified_at, id) order (:func:`closeloop.model.record_key`: ids as numbers), each once."""
    keys = [record_key(r) for r in records]
    assert keys == sorted(keys), "pages must be ordered by (modified_at, id), ids compared as closeloop.model does"
    assert len({r.id for r in records}) == len(records), "a record came twice"


def assert_ordered_key(records: Sequence[NativeRecord]) -> None:
    """Records come in (modified_at, id) order; one may come twice (a version it had, then a later one)."""
    keys = [record_key(r) for r in records]
    assert keys == sorted(keys), "pages must be ordered by (modified_at, id), ids compared as closeloop.model does"


def assert_resumes_at_every_page(pages: Sequence[Page], resumed: Sequence[Sequence[NativeRecord]]) -> None:
    """Read again from the cursor the engine stores after each page, the stream hands out exactly the rest."""
    cursor: Cursor | None = None
    records = [r for page in pages for r in page.records]
    for n, page in enumerate(pages[:-1]):
        cursor = advance(cursor, page.records)
        assert cursor == page.last
        rest = records[sum(len(p.records) for p in pages[: n + 1]) :]
        assert [r.id for r in resumed[n]] == [r.id for r in rest], f"resumed after page {n + 1} of {len(pages)}"


def upsert(target: Target, i: int, **extra: Any) -> WriteRequest:
    """An upsert of new person number i, keyed by email."""
    fields = {**target.new_fields(i), **extra}
    return WriteRequest(ref=f"r{i}", op=WriteOp.UPSERT, fields=fields, upsert_key=target.email_field)


MakeConnector = Callable[..., Connector]


@pytest.mark.asyncio
class ConformanceSuite:
    """The checks; :func:`conformance_suite` makes a collectable test class of them for some targets."""

    targets: ClassVar[Sequence[Target]] = ()

    @pytest.fixture
    def sandbox(self, target: Target) -> SandboxBase:
        """A sandbox seeded with 25 people, limits enforced as the vendor does."""
        return target.make_sandbox(SEED, PEOPLE)

    @pytest.fixture
    def make_connector(self, target: Target) -> MakeConnector:
        """Builds more connectors of the target over a sandbox (other settings, e.g. a small page size)."""
        return lambda sandbox, **overrides: build_connector(target, sandbox, **overrides)

    @pytest_asyncio.fixture
    async def connector(self, target: Target, sandbox: SandboxBase) -> AsyncIterator[Connector]:
        """The target's connector with quick retries, talking to the sandbox in-process."""
        conn = build_connector(target, sandbox, backoff_base_seconds=0.01, backoff_max_seconds=0.05)
        yield conn
        await conn.aclose()

    async def test_full_read_returns_every_record(
        self, target: Target, sandbox: SandboxBase, connector: Connector
    ) -> None:
        records = await read_all(connector, target.contact_object)
        live = [r for r in records if not r.deleted]
        assert len(live) == len(sandbox.table(target.contact_object))
        assert_ordered_once(records)
        assert all(r.modified_at.tzinfo is UTC or r.modified_at.utcoffset() == timedelta(0) for r in records)

    async def test_incremental_read_returns_only_later_records(self, target: Target, connector: Connector) -> None:
        records = await read_all(connector, target.contact_object)
        middle = records[len(records) // 2]
        later = await read_all(connector, target.contact_object, middle.position)
        assert [r.id for r in later] == [r.id for r in records[len(records) // 2 + 1 :]]

    async def test_equal_timestamps_across_page_boundary(
        self, target: Target, sandbox: SandboxBase, make_connector: MakeConnector
    ) -> None:
        connector = make_connector(sandbox, page_size=10)
        table = sandbox.table(target.contact_object)
        ids = [row.id for row in table.live()]
        stamp = datetime(2026, 3, 31, 23, 59, 59, tzinfo=UTC)
        table.restamp(ids, stamp)
        try:
            pages = await read_pages(connector, target.contact_object, Cursor(stamp - timedelta(seconds=1)))
            records = [r for page in pages for r in page.records]
            assert sorted(r.id for r in records) == sorted(ids)
            assert_ordered_once(records)
            assert len(pages) > 1, "25 records at one moment, 10 a page: the boundaries fall inside the moment"
            resumed = [await read_all(connector, target.contact_object, page.last) for page in pages[:-1]]
            assert_resumes_at_every_page(pages, resumed)
            middle = await read_all(connector, target.contact_object, records[12].position)
            assert [r.id for r in middle] == [r.id for r in records[13:]]
        finally:
            await connector.aclose()

    async def test_record_modified_during_paging_is_not_lost(
        self, target: Target, sandbox: SandboxBase, make_connector: MakeConnector
    ) -> None:
        """A record edited while the stream is paged comes (again) later: in that stream or from its last cursor."""
        connector = make_connector(sandbox, page_size=5)
        table = sandbox.table(target.contact_object)
        field = next(k for k in target.new_fields(0) if k != target.email_field)
        later = max(row.modified_at for row in table.rows.values()) + timedelta(seconds=2)
        try:
            pages: list[Page] = []
            edited: list[str] = []
            async for page in connector.read_changes(target.contact_object, None):
                pages.append(page)
                if len(pages) == 1:  # one record handed out already, one not yet
                    unread = [r for r in table.live() if r.id not in {x.id for x in page.records}]
                    edited = [page.records[0].id, unread[-1].id]
                    for n, row_id in enumerate(edited):
                        table.update(row_id, {field: f"edited while paging {n}"}, at=later)
            records = [r for p in pages for r in p.records]
            assert_ordered_key(records)
            last = advance(None, records)
            tail = await read_all(connector, target.contact_object, last)
            seen = [*records, *tail]
            assert {r.id for r in seen} >= {row.id for row in table.live()}, "a record was lost"
            for row_id in edited:
                newest = max((r for r in seen if r.id == row_id), key=record_key)
                assert newest.modified_at == table.rows[row_id].modified_at, f"{row_id}'s edit was not read"
            again = await read_all(connector, target.contact_object, advance(last, tail))
            assert again == [], "the stream moved past every record it handed out"
        finally:
            await connector.aclose()

    async def test_lookback_reads_the_window_again_and_no_lookback_nothing(
        self, target: Target, connector: Connector
    ) -> None:
        records = await read_all(connector, target.contact_object)
        moments = sorted({r.modified_at for r in records})
        assert len(moments) > 2
        cursor = max((r for r in records if r.modified_at == moments[-2]), key=record_key).position
        window = moments[-2] - moments[1]
        again = await read_all(connector, target.contact_object, cursor.lookback(window))
        assert [r.id for r in again] == [r.id for r in records_after(Cursor(moments[1]), records)]
        assert any(r.modified_at == moments[1] for r in again), "the window's first moment comes again whole"
        exact = await read_all(connector, target.contact_object, cursor.lookback(timedelta(0)))
        assert [r.id for r in exact] == [r.id for r in records_after(cursor, records)]

    async def test_read_after_write(self, target: Target, connector: Connector) -> None:
        start = await read_all(connector, target.contact_object)
        results = await connector.write(target.contact_object, [upsert(target, 9001), upsert(target, 9002)])
        assert [r.ref for r in results] == ["r9001", "r9002"]
        assert all(r.ok and r.native_id for r in results), results
        ids = [r.native_id for r in results if r.native_id]
        fetched = await connector.read(target.contact_object, ids)
        assert sorted(r.id for r in fetched) == sorted(ids)
        later = await read_all(connector, target.contact_object, start[-1].position)
        assert set(ids) <= {r.id for r in later}

    async def test_upsert_twice_creates_once(self, target: Target, sandbox: SandboxBase, connector: Connector) -> None:
        before = len(sandbox.table(target.contact_object))
        first = await connector.write(target.contact_object, [upsert(target, 9100)])
        again = await connector.write(target.contact_object, [upsert(target, 9100)])
        assert first[0].native_id == again[0].native_id
        assert len(sandbox.table(target.contact_object)) == before + 1

    async def test_batch_with_one_bad_record(self, target: Target, sandbox: SandboxBase, connector: Connector) -> None:
        sandbox.knobs.reject_values = ["REJECT-ME"]
        batch = [upsert(target, 9200 + i) for i in range(9)]
        bad_field = next(k for k in target.new_fields(0) if k != target.email_field)
        batch.insert(4, upsert(target, 9299, **{bad_field: "REJECT-ME"}))
        results = await connector.write(target.contact_object, batch)
        assert [r.ref for r in results] == [w.ref for w in batch]
        failed = [r for r in results if not r.ok]
        assert [r.ref for r in failed] == ["r9299"]
        assert failed[0].error is not None
        assert failed[0].error.message
        assert not failed[0].error.retryable
        assert sum(1 for r in results if r.ok) == 9

    async def test_search_by_email(self, target: Target, sandbox: SandboxBase, connector: Connector) -> None:
        rows = list(sandbox.table(target.contact_object).live())[:3]
        emails = [row.fields[target.email_field] for row in rows]
        found = await connector.search(target.contact_object, target.email_field, [e.upper() for e in emails])
        assert sorted(r.id for r in found) == sorted(row.id for row in rows)

    async def test_describe_reports_fields(self, target: Target, connector: Connector) -> None:
        schema = await connector.describe(target.contact_object)
        assert target.email_field in schema.fields

    async def test_429_storm_loses_nothing(self, target: Target, sandbox: SandboxBase, connector: Connector) -> None:
        sandbox.knobs.fault_429 = 0.3
        records = await read_all(connector, target.contact_object)
        results = await connector.write(target.contact_object, [upsert(target, 9300 + i) for i in range(5)])
        sandbox.knobs.fault_429 = 0.0
        assert len([r for r in records if not r.deleted]) >= PEOPLE
        assert all(r.ok for r in results)
        assert sandbox.stats.faults["429"] > 0

    async def test_limiter_tuned_to_sandbox_has_no_violations(
        self, target: Target, sandbox: SandboxBase, make_connector: MakeConnector
    ) -> None:
        sandbox.knobs.requests_per_window, sandbox.knobs.window_s = 8, 0.5
        sandbox.knobs.bucket_limits = {}
        connector = make_connector(sandbox, requests_per_window=8, window_seconds=0.5, page_size=2)
        try:
            assert len(await read_all(connector, target.contact_object)) >= PEOPLE
            assert sandbox.stats.violations == 0
        finally:
            await connector.aclose()

    async def test_token_expiry_mid_run(
        self, target: Target, sandbox: SandboxBase, make_connector: MakeConnector
    ) -> None:
        if not target.token_expires:
            pytest.skip(f"{target.vendor} uses a static token that never expires")
        connector = make_connector(sandbox, page_size=5)
        try:
            records: list[NativeRecord] = []
            async for page in connector.read_changes(target.contact_object, None):
                records.extend(page.records)
                sandbox.expire_tokens()
            assert len([r for r in records if not r.deleted]) == PEOPLE
        finally:
            await connector.aclose()

    async def test_deletion_is_visible(self, target: Target, sandbox: SandboxBase, connector: Connector) -> None:
        start = await read_all(connector, target.contact_object)
        victim = start[3]
        sandbox.table(target.contact_object).delete(victim.id)
        later = await read_all(connector, target.contact_object, start[-1].position)
        assert [(r.id, r.deleted) for r in later] == [(victim.id, True)]

    async def test_merge_is_visible(self, target: Target, sandbox: SandboxBase, connector: Connector) -> None:
        if not target.supports_merge:
            pytest.skip(f"{target.vendor} has no merge")
        start = await read_all(connector, target.contact_object)
        loser, winner = start[1], start[2]
        sandbox.table(target.contact_object).merge(loser.id, winner.id)
        later = {r.id: r for r in await read_all(connector, target.contact_object, start[-1].position)}
        assert later[loser.id].deleted
        assert later[loser.id].merged_into == winner.id
        assert not later[winner.id].deleted

    async def test_deal_stages_and_associations(self, target: Target, connector: Connector) -> None:
        if target.deal_object is None or target.new_deal_fields is None:
            pytest.skip(f"{target.vendor} has no deals")
        schema = await connector.describe(target.deal_object)
        assert schema.won_stages(), "deal stage metadata must say which stages are won"
        contact = (await read_all(connector, target.contact_object))[0]
        deal = WriteRequest(ref="d1", op=WriteOp.CREATE, fields=target.new_deal_fields(1))
        created = await connector.write(target.deal_object, [deal])
        assert created[0].ok, created[0].error
        deal_id = created[0].native_id
        assert deal_id
        linked = await connector.associate(target.deal_object, [Association(deal_id, contact.id)])
        assert all(r.ok for r in linked), linked
        links = await connector.associations(target.deal_object, [deal_id])
        assert (deal_id, contact.id) in {(a.from_id, a.to_id) for a in links}


def conformance_suite(*targets: Target) -> type[ConformanceSuite]:
    """A test class running every check once per target; bind it to a ``Test*`` name so pytest collects it."""
    if not targets:
        raise ValueError("conformance_suite needs at least one target")

    class Suite(ConformanceSuite):
        @pytest.fixture(params=targets, ids=[t.vendor for t in targets])
        def target(self, request: pytest.FixtureRequest) -> Target:
            """Each target in turn."""
            param: Target = request.param
            return param

    Suite.targets = targets
    return Suite
