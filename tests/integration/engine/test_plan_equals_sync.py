"""``plan`` lists exactly the writes ``sync`` then makes: Salesforce and HubSpot sandboxes, the repository's mappings.

Both compute their writes through the drain's own preparation, so a value the target refuses (HubSpot's read-only
original source, a value a restricted picklist does not allow) is left out of both alike. The writes made are
the requests handed to each connector's ``write``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

from closeloop.config.loader import load_config
from closeloop.config.models import Connection
from closeloop.engine.mapper import to_canonical_fields
from closeloop.engine.plan import PlannedWrite
from closeloop.engine.runtime import Engine
from closeloop.model import WriteOp, WriteRequest, WriteResult
from closeloop.store import Store

from .test_fieldcheck_sandboxes import make_setup

Write = tuple[str, str, str, str | None, frozenset[str], frozenset[tuple[str, object]]]
"""(system, object, op, native id, native fields, canonical values) of one write."""


def planned(write: PlannedWrite) -> Write:
    values = frozenset((name, after) for name, (_, after) in write.diff.items())
    return (write.system, write.obj, write.op.value, write.native_id, frozenset(write.fields), values)


def made(connection: Connection, system: str, obj: str, request: WriteRequest) -> Write:
    mapping = next(m for m in connection.mappings if obj in m.objects(system))
    partner = mapping.partner_field(system)
    mapped = {name: value for name, value in request.fields.items() if name != partner}
    values, problems = to_canonical_fields(mapping, system, obj, mapped)
    assert problems == []
    # the partner id is written as it is, beside the mapped fields (see engine/partner.py)
    sent = {**values, partner: request.fields[partner]} if partner in request.fields else values
    canonical = frozenset(sent.items())
    return (system, obj, request.op.value, request.native_id, frozenset(request.fields), canonical)


async def test_plan_lists_exactly_the_writes_sync_makes(tmp_path: Path) -> None:
    setup = make_setup(tmp_path, people=40, deals=8)
    crm, marketing, transports = setup.crm, setup.marketing, setup.transports()
    config = load_config(tmp_path / "closeloop.yaml", environ={})
    connection = config.connections[0]
    writes: list[Write] = []
    with Store.open(tmp_path / "state.db") as store:
        async with Engine(config, store, transports=transports) as engine:
            plan = await engine.plan("crm-marketing")
            assert crm.stats.records_written == marketing.stats.records_written == 0
            for system in connection.systems:
                connector = engine.connector(system)
                connector.write = recording(connection, system, connector.write, writes)  # type: ignore[method-assign]
            await engine.sync("crm-marketing")
    ops = Counter((w[0], w[2]) for w in writes)
    assert {("marketing", "upsert"), ("crm", "upsert"), ("marketing", "update")} <= set(ops), ops
    # the original source is read-only in HubSpot: never written there, so never planned there either
    assert not any(name == "original_source" for w in writes if w[0] == "marketing" for name, _ in w[5])
    assert Counter(planned(p) for p in plan) == Counter(writes)


def recording(
    connection: Connection,
    system: str,
    write: Callable[[str, Sequence[WriteRequest]], Awaitable[list[WriteResult]]],
    into: list[Write],
) -> Callable[[str, Sequence[WriteRequest]], Awaitable[list[WriteResult]]]:
    """``write`` of one connector, each request kept in ``into`` before it is sent."""

    async def wrapped(obj: str, batch: Sequence[WriteRequest]) -> list[WriteResult]:
        into.extend(made(connection, system, obj, request) for request in batch if request.op is not WriteOp.DELETE)
        return await write(obj, batch)

    return wrapped
