"""The vendor floor under benchmark 1: what the first cycle's API work costs with no sync engine at all.

Over the same in-process sandboxes as ``bench.throughput``, a client built on the same connectors does the least an
initial two-way sync must: read every page of both sides' contacts and of the opportunities, read the contacts'
touchpoints, create each side's missing people on the other in full batches (five fields each; to Salesforce only the
qualified ones, as the contact mapping's create rule says), create the deals in
HubSpot and associate them with their contacts. No mapping, no merge, no state store. Its wall time bounds from below
what any engine can reach here, because the sandboxes serve each call on the same core as the client.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from bench.harness import Population, Timer, bench_engine, parser, report, seed_sandboxes, settle_heap
from closeloop.connector import Connector
from closeloop.model import Association, NativeRecord, WriteOp, WriteRequest

TARGET = 10_000.0
PEOPLE = {"Email": "email", "FirstName": "firstname", "LastName": "lastname", "Phone": "phone", "Title": "jobtitle"}
QUALIFIED = {"marketingqualifiedlead", "salesqualifiedlead", "opportunity", "customer"}  # the create rule to crm
DEAL = {"Name": "dealname", "Amount": "amount", "CloseDate": "closedate"}


async def read_all(connector: Connector, obj: str, *, touched: list[object] | None = None) -> list[NativeRecord]:
    """Every record of ``obj``'s change stream from the beginning; each page's touchpoints into ``touched``."""
    records: list[NativeRecord] = []
    async for page in connector.read_changes(obj, None):
        records.extend(page.records)
        if touched is not None:
            touched.extend(await connector.touchpoints(obj, [r.id for r in page.records], None))
    return records


async def create_all(connector: Connector, obj: str, rows: Sequence[dict[str, object]]) -> list[str]:
    """Create ``rows`` in full batches; the new native ids, in order."""
    size = connector.limits(obj).max_write_batch
    made: list[str] = []
    for start in range(0, len(rows), size):
        batch = [WriteRequest(str(start + i), WriteOp.CREATE, row) for i, row in enumerate(rows[start : start + size])]
        made.extend(result.native_id or "" for result in await connector.write(obj, batch))
    return made


def carried(record: NativeRecord, names: dict[str, str], *, reverse: bool = False) -> dict[str, object]:
    """The record's fields renamed for the other side, blanks left out."""
    pairs = ((theirs, ours) if reverse else (ours, theirs) for ours, theirs in names.items())
    return {to: record.fields[src] for src, to in pairs if record.fields.get(src) not in (None, "")}


async def floor(crm: Connector, mkt: Connector) -> dict[str, int]:
    """Do the first cycle's vendor work; what was read and written."""
    people = await read_all(crm, "Contact")
    touches: list[object] = []
    contacts = await read_all(mkt, "contacts", touched=touches)
    opportunities = await read_all(crm, "Opportunity")
    in_mkt = {str(c.fields.get("email", "")).lower() for c in contacts}
    in_crm = {str(p.fields.get("Email", "")).lower() for p in people}
    to_mkt = [carried(p, PEOPLE) for p in people if str(p.fields.get("Email", "")).lower() not in in_mkt]
    to_crm = [
        carried(c, PEOPLE, reverse=True)
        for c in contacts
        if str(c.fields.get("email", "")).lower() not in in_crm and c.fields.get("lifecyclestage") in QUALIFIED
    ]
    made_mkt = await create_all(mkt, "contacts", to_mkt)
    made_crm = await create_all(crm, "Contact", to_crm)
    deals = await create_all(mkt, "deals", [carried(o, DEAL) for o in opportunities])
    contact_ids = [c.id for c in contacts] + made_mkt
    links = [Association(deal, contact_ids[i % len(contact_ids)]) for i, deal in enumerate(deals) if deal]
    size = mkt.limits("deals").max_write_batch
    for start in range(0, len(links), size):
        await mkt.associate("deals", links[start : start + size])
    return {
        "read": len(people) + len(contacts) + len(opportunities),
        "touchpoints": len(touches),
        "created": len(made_mkt) + len(made_crm) + len(deals),
        "associated": len(links),
    }


async def measure(contacts: int) -> dict[str, object]:
    """Seed as ``bench.throughput`` does, then time the engine-free client."""
    population = Population(contacts, contacts // 10)
    crm, mkt = seed_sandboxes(population)
    settle_heap()
    async with bench_engine(crm, mkt) as bench:
        timer = Timer()
        done = await floor(bench.engine.connector("crm"), bench.engine.connector("marketing"))
        seconds = timer.stop()
        calls = bench.calls()
    return {
        "contacts": contacts,
        "records": population.records,
        "seconds": round(seconds, 2),
        "records_per_second_ceiling": round(population.records / seconds, 1),
        "done": done,
        "api_calls": {system: sum(by.values()) for system, by in calls.items()},
    }


def main(argv: list[str] | None = None) -> None:
    """Run the floor at each N asked for (default 10,000 and 100,000)."""
    cli = parser(__doc__ or "")
    cli.add_argument("-n", "--contacts", type=int, nargs="+", default=[10_000, 100_000], help="distinct contacts")
    args = cli.parse_args(argv)
    runs = [asyncio.run(measure(n)) for n in args.contacts]
    rows: list[tuple[str, str, str, bool | None]] = []
    for n, figures in zip(args.contacts, runs, strict=True):
        ceiling = float(figures["records_per_second_ceiling"])  # type: ignore[arg-type]
        rows.append((f"vendor floor, s (N={n:,})", str(figures["seconds"]), "-", None))
        rows.append((f"records/s ceiling (N={n:,})", f"{ceiling:,.0f}", f">= {TARGET:,.0f}", ceiling >= TARGET))
    report("floor", "first-cycle API work with no engine, in-process sandboxes", {"runs": runs}, rows)


if __name__ == "__main__":
    main()
