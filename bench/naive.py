"""Benchmark 6, versus a hand-written script: a record-by-record two-way contact sync against closeloop.

The naive script is what a typical integration script does: list the ids on each side, then for every record read
it (one GET) and write it to the other system (one upsert by email), in plain httpx, one call at a time. Both runs
meet the same seeded sandboxes with 20 ms latency on every call. (closeloop's demo mapping creates HubSpot contacts
in Salesforce only from MQL on, so it writes fewer Salesforce records than the script, which copies everyone.)
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from bench.harness import HUBSPOT_TOKEN, Population, Timer, bench_engine, converge, parser, report, seed_sandboxes
from closeloop.sandbox.kit import SandboxBase

LATENCY_S = 0.02
SF = "/services/data/v60.0"
HS_PROPS = "email,firstname,lastname,phone,jobtitle"
SF_TO_HS = {"Email": "email", "FirstName": "firstname", "LastName": "lastname", "Phone": "phone", "Title": "jobtitle"}


async def _sf_ids(sf: httpx.AsyncClient) -> list[str]:
    ids: list[str] = []
    body = (await sf.get(f"{SF}/query", params={"q": "SELECT Id FROM Contact"})).json()
    while True:
        ids += [r["Id"] for r in body["records"]]
        if body.get("done", True):
            return ids
        body = (await sf.get(body["nextRecordsUrl"])).json()


async def _hs_ids(hs: httpx.AsyncClient) -> list[str]:
    ids: list[str] = []
    params: dict[str, Any] = {"limit": 100}
    while True:
        body = (await hs.get("/crm/v3/objects/contacts", params=params)).json()
        ids += [r["id"] for r in body["results"]]
        after = body.get("paging", {}).get("next", {}).get("after")
        if not after:
            return ids
        params["after"] = after


async def _sf_to_hs(sf: httpx.AsyncClient, hs: httpx.AsyncClient, record_id: str) -> None:
    record = (await sf.get(f"{SF}/sobjects/Contact/{record_id}")).json()
    props = {hs_name: record.get(sf_name) or "" for sf_name, hs_name in SF_TO_HS.items()}
    email = props["email"].lower()
    answer = await hs.patch(
        f"/crm/v3/objects/contacts/{email}", params={"idProperty": "email"}, json={"properties": props}
    )
    if answer.status_code == 404:  # not there yet: create it (a second call only for new records)
        await hs.post("/crm/v3/objects/contacts", json={"properties": props})


async def _hs_to_sf(sf: httpx.AsyncClient, hs: httpx.AsyncClient, record_id: str) -> None:
    record = (await hs.get(f"/crm/v3/objects/contacts/{record_id}", params={"properties": HS_PROPS})).json()
    props = record["properties"]
    fields = {sf_name: props.get(hs_name) or None for sf_name, hs_name in SF_TO_HS.items() if sf_name != "Email"}
    fields["LastName"] = fields["LastName"] or "Unknown"
    await sf.patch(f"{SF}/sobjects/Contact/Email/{props['email']}", json=fields)


async def naive_sync(crm: SandboxBase, mkt: SandboxBase) -> None:
    """The hand-written script: both directions, record by record."""
    async with (
        httpx.AsyncClient(transport=httpx.ASGITransport(app=crm), base_url="http://crm.test") as sf,
        httpx.AsyncClient(transport=httpx.ASGITransport(app=mkt), base_url="http://marketing.test") as hs,
    ):
        token = await sf.post(
            "/services/oauth2/token",
            data={
                "grant_type": "client_credentials",
                "client_id": "closeloop-sandbox",
                "client_secret": "closeloop-sandbox-secret",
            },
        )
        sf.headers["Authorization"] = f"Bearer {token.json()['access_token']}"
        hs.headers["Authorization"] = f"Bearer {HUBSPOT_TOKEN}"
        sf_ids, hs_ids = await _sf_ids(sf), await _hs_ids(hs)
        for record_id in sf_ids:
            await _sf_to_hs(sf, hs, record_id)
        for record_id in hs_ids:
            await _hs_to_sf(sf, hs, record_id)


async def _run(contacts: int, *, naive: bool) -> dict[str, Any]:
    crm, mkt = seed_sandboxes(Population(contacts, 0))
    for box in (crm, mkt):
        box.knobs.latency_s = LATENCY_S
    timer = Timer()
    if naive:
        await naive_sync(crm, mkt)
        cycles = 1
    else:
        async with bench_engine(crm, mkt) as bench:
            cycles = await converge(bench)
    seconds = timer.stop()
    calls = crm.stats.total_calls + mkt.stats.total_calls
    people = {"salesforce": len(crm.table("Contact")), "hubspot": len(mkt.table("contacts"))}
    return {"seconds": round(seconds, 2), "api_calls": calls, "cycles": cycles, "contacts_after": people}


async def measure(contacts: int) -> dict[str, Any]:
    """The naive script and closeloop on identical seeded sandboxes."""
    script = await _run(contacts, naive=True)
    engine = await _run(contacts, naive=False)
    return {
        "contacts": contacts,
        "latency_ms": LATENCY_S * 1000,
        "naive": script,
        "closeloop": engine,
        "time_ratio": round(script["seconds"] / engine["seconds"], 1),
        "calls_ratio": round(script["api_calls"] / engine["api_calls"], 1),
    }


def main(argv: list[str] | None = None) -> None:
    """Run the naive-script comparison."""
    cli = parser(__doc__ or "")
    cli.add_argument(
        "-n", "--contacts", type=int, default=10_000, help="contacts (default 10,000: the script takes ~10 min)"
    )
    args = cli.parse_args(argv)
    figures = asyncio.run(measure(args.contacts))
    report(
        "naive",
        f"two-way sync of {args.contacts} contacts, 20 ms latency per call: hand-written script vs closeloop",
        figures,
        [
            ("wall time, naive / closeloop", f"{figures['time_ratio']}x", "", None),
            ("API calls, naive / closeloop", f"{figures['calls_ratio']}x", "", None),
        ],
    )


if __name__ == "__main__":
    main()
