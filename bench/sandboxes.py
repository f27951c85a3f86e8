"""The sandboxes alone: seeding time and memory, and records/s of each endpoint the engine uses, for N contacts.

Each (vendor, N) runs in a child process (``--child``) so its resident size is its own. Requests go through
``httpx.ASGITransport`` like the benchmarks' engine, so JSON on both sides is counted; the engine is not involved.
``python -m bench.sandboxes -n 10000 -n 100000 [--vendor hubspot|salesforce]``.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Coroutine
from datetime import UTC, datetime
from typing import Any

import httpx

from bench.harness import REPO, RESULTS, SEED, parser, rss_mb
from closeloop.connector import registry

WRITES = 10_000
"""Records written (and read by id) per write endpoint: enough for a rate, few enough to leave N unchanged."""
IN_VALUES = 100


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


class Meter:
    """Records/s per endpoint."""

    def __init__(self) -> None:
        self.figures: dict[str, dict[str, float]] = {}

    async def time(self, label: str, work: Callable[[], Awaitable[int]]) -> None:
        """Run ``work`` (it returns the records it moved) and keep its rate."""
        gc.collect()
        started = time.perf_counter()
        records = await work()
        seconds = time.perf_counter() - started
        self.figures[label] = {"records": records, "seconds": round(seconds, 3), "per_s": round(records / seconds)}


# -- HubSpot -------------------------------------------------------------------------------------------
async def hubspot(n: int, meter: Meter) -> dict[str, Any]:
    """Seed a portal with ``n`` contacts and drive its search, list and batch endpoints."""
    box = registry().get("hubspot").sandbox(seed=SEED, people=n)  # type: ignore[misc]
    box.knobs.enforce_limits = False
    headers = {"authorization": f"Bearer {box.private_app_token}"}
    transport = httpx.ASGITransport(app=box)
    async with httpx.AsyncClient(transport=transport, base_url="http://hubspot.test", headers=headers) as http:

        async def search(filters: list[dict[str, Any]], sort: str, after: str | None = None) -> dict[str, Any]:
            body: dict[str, Any] = {
                "filterGroups": [{"filters": filters}] if filters else [],
                "sorts": [{"propertyName": sort, "direction": "ASCENDING"}],
                "properties": ["email", "firstname", "lastname", "lastmodifieddate"],
                "limit": 200,
            }
            if after:
                body["after"] = after
            answer = await http.post("/crm/v3/objects/contacts/search", json=body)
            answer.raise_for_status()
            return dict(answer.json())

        async def change_stream() -> int:
            # The connector's keyset paging: GTE the newest instant of the last page, by id within one instant.
            seen: set[str] = set()
            bound: dict[str, Any] | None = None
            while True:
                page = await search([bound] if bound else [], "lastmodifieddate")
                results = page["results"]
                seen.update(r["id"] for r in results)
                if not page.get("paging"):
                    return len(seen)
                newest = max(r["properties"]["lastmodifieddate"] for r in results)
                stamp = _ms(datetime.fromisoformat(newest.replace("Z", "+00:00")))
                if all(r["properties"]["lastmodifieddate"] == newest for r in results):
                    seen.update(await instant(stamp))
                    bound = {"propertyName": "lastmodifieddate", "operator": "GT", "value": str(stamp)}
                else:
                    bound = {"propertyName": "lastmodifieddate", "operator": "GTE", "value": str(stamp)}

        async def instant(stamp: int) -> set[str]:
            ids: set[str] = set()
            last = ""
            while True:
                filters = [{"propertyName": "lastmodifieddate", "operator": "EQ", "value": str(stamp)}]
                if last:
                    filters.append({"propertyName": "hs_object_id", "operator": "GT", "value": last})
                page = await search(filters, "hs_object_id")
                ids.update(r["id"] for r in page["results"])
                if not page["results"] or not page.get("paging"):
                    return ids
                last = page["results"][-1]["id"]

        await meter.time("hubspot search: change stream (GTE, by modified)", change_stream)
        table = box.table("contacts")
        ids = [row.id for row in table.live()]
        mass = datetime(2026, 6, 30, tzinfo=UTC)
        table.restamp(ids[: min(n, 20_000)], mass)
        await meter.time("hubspot search: one instant (EQ, by id)", lambda: _count(instant(_ms(mass))))

        async def by_email() -> int:
            emails = [table.rows[i].fields["email"] for i in ids[: min(n, 2_000)]]
            found = 0
            for start in range(0, len(emails), IN_VALUES):
                condition = {"propertyName": "email", "operator": "IN", "values": emails[start : start + IN_VALUES]}
                found += len((await search([condition], "hs_object_id"))["results"])
            return found

        await meter.time("hubspot search: email IN (100 values)", by_email)

        async def listing() -> int:
            found, after = 0, ""
            for _ in range(20):
                params = {"limit": "100", **({"after": after} if after else {})}
                page = (await http.get("/crm/v3/objects/contacts", params=params)).json()
                found += len(page["results"])
                after = page.get("paging", {}).get("next", {}).get("after", "")
            return found

        await meter.time("hubspot list: GET objects (20 pages of 100)", listing)

        async def batches(action: str, inputs: Callable[[int], list[dict[str, Any]]]) -> int:
            done = 0
            for start in range(0, min(n, WRITES), 100):
                answer = await http.post(f"/crm/v3/objects/contacts/batch/{action}", json={"inputs": inputs(start)})
                answer.raise_for_status()
                done += len(answer.json()["results"])
            return done

        def created(start: int) -> list[dict[str, Any]]:
            return [
                {"properties": {"email": f"bench.{i}@example.com", "firstname": "Bench"}}
                for i in range(start, start + 100)
            ]

        def updated(start: int) -> list[dict[str, Any]]:
            return [{"id": i, "properties": {"jobtitle": "Benchmarker"}} for i in ids[start : start + 100]]

        def upserted(start: int) -> list[dict[str, Any]]:
            return [
                {"id": f"bench.{i}@example.com", "idProperty": "email", "properties": {"lastname": "Upserted"}}
                for i in range(start, start + 100)
            ]

        def read(start: int) -> list[dict[str, Any]]:
            return [{"id": i} for i in ids[start : start + 100]]

        await meter.time("hubspot batch/create (100)", lambda: batches("create", created))
        await meter.time("hubspot batch/update (100)", lambda: batches("update", updated))
        await meter.time("hubspot batch/upsert by email (100)", lambda: batches("upsert", upserted))
        await meter.time("hubspot batch/read (100)", lambda: batches("read", read))
    return {}


async def _count(found: Awaitable[set[str]]) -> int:
    return len(await found)


# -- Salesforce ----------------------------------------------------------------------------------------
async def salesforce(n: int, meter: Meter) -> dict[str, Any]:
    """Seed an org with ``n`` contacts and drive its query and collection endpoints."""
    box = registry().get("salesforce").sandbox(seed=SEED, people=n)  # type: ignore[misc]
    box.knobs.enforce_limits = False
    token = box.tokens.issue(7200)
    api = "/services/data/v60.0"
    transport = httpx.ASGITransport(app=box)
    headers = {"authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(transport=transport, base_url="http://salesforce.test", headers=headers) as http:
        fields = "Id, Email, FirstName, LastName, SystemModstamp, IsDeleted"

        async def query(soql: str, resource: str = "query") -> list[dict[str, Any]]:
            answer = await http.get(f"{api}/{resource}", params={"q": soql})
            answer.raise_for_status()
            page = answer.json()
            records = list(page["records"])
            while not page["done"]:
                page = (await http.get(str(page["nextRecordsUrl"]))).json()
                records.extend(page["records"])
            return records

        async def changes() -> int:
            since = "2000-01-01T00:00:00.000Z"
            soql = f"SELECT {fields} FROM Contact WHERE SystemModstamp >= {since} ORDER BY SystemModstamp, Id"  # noqa: S608 - constants
            return len(await query(soql, "queryAll"))

        await meter.time("salesforce queryAll: changes (by SystemModstamp, Id)", changes)
        table = box.table("Contact")
        rows = list(table.live())
        ids = [row.id for row in rows]

        async def by_ids() -> int:
            found = 0
            for start in range(0, min(n, WRITES), 300):
                quoted = ", ".join(f"'{i}'" for i in ids[start : start + 300])
                found += len(await query(f"SELECT {fields} FROM Contact WHERE Id IN ({quoted})"))  # noqa: S608 - seeded ids
            return found

        async def by_emails() -> int:
            found = 0
            for start in range(0, min(n, WRITES), 300):
                quoted = ", ".join(f"'{r.fields['Email']}'" for r in rows[start : start + 300])
                found += len(await query(f"SELECT {fields} FROM Contact WHERE Email IN ({quoted})"))  # noqa: S608 - seeded emails
            return found

        await meter.time("salesforce query: Id IN (300)", by_ids)
        await meter.time("salesforce query: Email IN (300)", by_emails)

        async def collection(method: str, path: str, records: Callable[[int], list[dict[str, Any]]]) -> int:
            done = 0
            for start in range(0, min(n, WRITES), 200):
                body = {"allOrNone": False, "records": records(start)}
                answer = await http.request(method, f"{api}/{path}", json=body)
                answer.raise_for_status()
                done += sum(1 for result in answer.json() if result["success"])
            return done

        def create(start: int) -> list[dict[str, Any]]:
            return [
                {"attributes": {"type": "Contact"}, "LastName": "Bench", "Email": f"bench.{i}@example.com"}
                for i in range(start, start + 200)
            ]

        def update(start: int) -> list[dict[str, Any]]:
            return [
                {"attributes": {"type": "Contact"}, "Id": i, "Title": "Benchmarker"} for i in ids[start : start + 200]
            ]

        def upsert(start: int) -> list[dict[str, Any]]:
            return [
                {"attributes": {"type": "Contact"}, "Closeloop_Id__c": f"bench-{i}", "LastName": "Upserted"}
                for i in range(start, start + 200)
            ]

        await meter.time(
            "salesforce composite POST create (200)", lambda: collection("POST", "composite/sobjects", create)
        )
        await meter.time(
            "salesforce composite PATCH update (200)", lambda: collection("PATCH", "composite/sobjects", update)
        )
        key = {"FullName": "Contact.Closeloop_Id__c", "Metadata": {"type": "Text", "length": 64, "externalId": True}}
        (await http.post(f"{api}/tooling/sobjects/CustomField", json=key)).raise_for_status()
        await meter.time(
            "salesforce composite PATCH upsert by external id (200)",
            lambda: collection("PATCH", "composite/sobjects/Contact/Closeloop_Id__c", upsert),
        )

        async def retrieve() -> int:
            found = 0
            for start in range(0, min(n, WRITES), 200):
                body = {"ids": ids[start : start + 200], "fields": ["Id", "Email", "LastName"]}
                answer = await http.post(f"{api}/composite/sobjects/Contact", json=body)
                found += sum(1 for record in answer.json() if record)
            return found

        await meter.time("salesforce composite retrieve (200)", retrieve)
    return {}


VENDORS: dict[str, Callable[[int, Meter], Coroutine[Any, Any, dict[str, Any]]]] = {
    "hubspot": hubspot,
    "salesforce": salesforce,
}


def child(vendor: str, n: int) -> dict[str, Any]:
    """In the child: seed (timed, resident size measured), then every endpoint."""
    meter = Meter()
    factory = registry().get(vendor).sandbox
    gc.collect()
    before = rss_mb()
    started = time.perf_counter()
    seeded = factory(seed=SEED, people=n)  # type: ignore[misc]
    seconds = time.perf_counter() - started
    gc.collect()
    grown = rss_mb() - before
    del seeded
    gc.collect()
    seeding = {"seconds": round(seconds, 2), "per_s": round(n / seconds), "bytes_per_record": round(grown * 2**20 / n)}
    asyncio.run(VENDORS[vendor](n, meter))
    return {"seeding": seeding, "endpoints": meter.figures}


def main(argv: list[str] | None = None) -> None:
    """Run each (vendor, N) in a child process and print one table."""
    cli = parser(__doc__ or "")
    cli.add_argument(
        "-n", "--contacts", type=int, action="append", help="contacts seeded (repeatable; 10,000 and 100,000)"
    )
    cli.add_argument("--vendor", choices=sorted(VENDORS), action="append", help="one vendor (repeatable; both)")
    cli.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = cli.parse_args(argv)
    sizes = args.contacts or [10_000, 100_000]
    vendors = args.vendor or sorted(VENDORS)
    if args.child:
        print(json.dumps(child(vendors[0], sizes[0])))
        return
    figures: dict[str, Any] = {}
    for vendor in vendors:
        for n in sizes:
            command = [sys.executable, "-m", "bench.sandboxes", "--child", "--vendor", vendor, "-n", str(n)]
            done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, check=True)  # noqa: S603
            result = json.loads(done.stdout.strip().splitlines()[-1])
            figures[f"{vendor}/{n}"] = result
            seeding = result["seeding"]
            print(f"\n{vendor}, N={n:,}: seeded in {seeding['seconds']} s ({seeding['per_s']:,} records/s), "
                  f"{seeding['bytes_per_record']:,} bytes/record resident")  # fmt: skip
            for label, figure in result["endpoints"].items():
                print(
                    f"  {label:<58} {figure['per_s']:>10,} records/s  ({figure['records']:,} in {figure['seconds']} s)"
                )
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "sandboxes.json").write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
