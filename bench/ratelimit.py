"""Benchmark 4, rate-limit ceiling: records/s of a bulk cycle under HubSpot's and Salesforce's limits, vs the bound.

The sandboxes enforce HubSpot's real limits, 100 requests in any 10 s plus 5 search requests in any 1 s (search
calls count in both), and Salesforce answers every call after 50 ms. The store is converged and steady; then one
cycle carries a bulk change: ``--crm-changed`` contacts edited in Salesforce, to be written to HubSpot in
batches of 100, and ``--mkt-changed`` other contacts edited in HubSpot, read there with search pages of 200 and
written to Salesforce in collections of 200. Both clients are configured with the vendors' limits.

The limit-bound maximum comes from the FEWEST calls the workload needs, not from the calls the engine made, and
it counts every call the vendor counts, as ``bench.frugality.minimum_calls`` does: pages read (HubSpot:
ceil(hubspot changes / 200) search pages + 1 for deals; Salesforce: ceil(salesforce changes / 2,000) query pages
+ 1 each for Lead and Opportunity + 1 for the campaign-member touch stream), the touches the changed people bring
(HubSpot's form submissions: one contacts v1 batch read per 100 contacts of each search page, the only API that
lists them), and batches written (ceil(n / 100) to HubSpot, ceil(n / 200) to Salesforce), each with the
lost-update guard's batch re-read of its records just before it is sent (HubSpot has no conditional update; a
Salesforce collection of 200 is re-read by one query; see "No lost update" in the README). HubSpot counts those
re-reads in the same 100-per-10-s window as the writes. The engine reads both sides before it writes (a record
changed on both sides is merged before anything goes out), so the bound is the read phase's least time plus the
write phase's, each the slower of HubSpot (every call started as soon as its windows allow, a full window's burst
at once) and Salesforce (50 ms per call; a query's pages one after another, other calls 25 at a time): see
``bench.ratebound``. It also prints the fraction of the bound of pages and writes alone (the bound before the
re-reads and touch reads were counted), for comparison with earlier figures.

Besides the fraction it prints where the time went: the calls made against the fewest and the bound for the
calls made; the cycle's wall time, per phase, split into this process's CPU time (engine and in-process
sandboxes), time it was ready to run while other processes held the CPUs (a shared machine), and idle time
(waiting for the limits and the latency); and a replay of the workload's fewest HubSpot calls through
closeloop's HTTP client alone, no engine, which shows how close the client-side limiter itself runs to the limit.
The edited records are all linked on both sides, and none is edited on both. Before the measured cycle the
sandboxes' records are moved out of reach of Python's cycle collector (``bench.harness.settle_heap``).
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from itertools import islice
from math import ceil
from pathlib import Path
from typing import Any

import httpx
from closeloop_connectors.hubspot.api import classify_hubspot, hubspot_limits, millis, read_usage
from closeloop_connectors.hubspot.forms import SUBMISSIONS_PATH
from closeloop_connectors.hubspot.settings import HubSpotSettings

from bench.frugality import FORM_BATCH, MAX_PAGE, MAX_WRITE, touch_reads
from bench.harness import HUBSPOT_TOKEN, Bench, config_text, parser, report, settle_heap
from bench.ratebound import Limits, PhaseBound, PhaseCalls, bound
from bench.steady import steady
from closeloop.config.loader import load_config
from closeloop.connector import ConnectorContext
from closeloop.engine.runtime import Engine
from closeloop.http import BearerAuth, build_http

TARGET = 0.90
LIMITS = Limits()
HUBSPOT_LIMITS = (
    f"requests_per_window: {LIMITS.hubspot_window[0]}, window_seconds: {LIMITS.hubspot_window[1]}, "
    f"search_requests_per_window: {LIMITS.hubspot_search[0]}, search_window_seconds: {LIMITS.hubspot_search[1]}"
)
CONFIG = config_text(crm_extra="max_concurrency: 25", mkt_extra=HUBSPOT_LIMITS)
WRITE_PATHS = ("/batch/create", "/batch/update", "/batch/upsert", "/batch/archive", "/batch/associate/default")


@dataclass(frozen=True)
class Moment:
    """Wall time, this process's CPU time, and its time ready to run while other processes held the CPUs."""

    wall: float
    cpu: float
    queued: float

    @classmethod
    def now(cls) -> Moment:
        """The three clocks now."""
        return cls(time.perf_counter(), time.process_time(), runqueue_seconds())

    def until(self, later: Moment) -> dict[str, float]:
        """Where the time between this moment and ``later`` went; ``waiting`` is idle time (limits, latency)."""
        wall, cpu, queued = later.wall - self.wall, later.cpu - self.cpu, later.queued - self.queued
        return {
            "wall": round(wall, 2),
            "cpu": round(cpu, 2),
            "other_processes": round(queued, 2),
            "waiting": round(wall - cpu - queued, 2),
        }


def runqueue_seconds() -> float:
    """Seconds this process's main thread spent ready to run while other processes held the CPUs (0 where the
    kernel does not say): on a shared machine, time lost to contention rather than to the limits."""
    try:
        return int(Path("/proc/self/schedstat").read_text().split()[1]) / 1e9
    except (OSError, IndexError, ValueError):
        return 0.0


@dataclass(frozen=True)
class Call:
    """One API call as the transport saw it."""

    system: str
    method: str
    path: str
    started: Moment
    end: float

    @property
    def writes(self) -> bool:
        """A write (HubSpot batch create/update/upsert/archive/associate; Salesforce DML)."""
        if self.system == "hubspot":
            return self.path.endswith(WRITE_PATHS)
        return self.method in ("POST", "PATCH", "DELETE")

    @property
    def search(self) -> bool:
        """A HubSpot search call (its own, slower bucket)."""
        return self.system == "hubspot" and self.path.endswith("/search")

    @property
    def start(self) -> float:
        """Wall time of the call's start."""
        return self.started.wall


@dataclass
class Timeline:
    """ASGI wrappers recording when each call started and ended."""

    calls: list[Call] = field(default_factory=list)

    def wrap(self, system: str, app: Any) -> Any:
        """``app`` with every HTTP call recorded under ``system``."""

        async def recorded(scope: Any, receive: Any, send: Any) -> None:
            if scope["type"] != "http":
                await app(scope, receive, send)
                return
            started = Moment.now()
            try:
                await app(scope, receive, send)
            finally:
                self.calls.append(Call(system, scope["method"], scope["path"], started, time.perf_counter()))

        return recorded


@dataclass
class Progress:
    """Prints how long each stage of the run took."""

    mark: float = field(default_factory=time.perf_counter)

    def done(self, stage: str) -> None:
        """Print the time since the previous stage ended."""
        now = time.perf_counter()
        print(f"  ({stage}: {now - self.mark:.0f} s)", flush=True)
        self.mark = now


def minimal_phases(crm_changed: int, mkt_changed: int, *, guarded: bool = True) -> list[PhaseCalls]:
    """The fewest calls of the cycle, by phase: every page read and the touches it brings, then every batch
    written, each after its re-read (``guarded``; without it, pages and writes alone: the bound before the
    lost-update guard and the touch reads were counted)."""
    per_write = 2 if guarded else 1
    return [
        PhaseCalls(
            "read",
            hubspot_search=max(1, ceil(mkt_changed / MAX_PAGE["hubspot"])) + 1,
            hubspot_other=touch_reads(mkt_changed, "hubspot") if guarded else 0,
            salesforce_sequential=max(1, ceil(crm_changed / MAX_PAGE["salesforce"])),
            salesforce_concurrent=2 + (touch_reads(crm_changed, "salesforce") if guarded else 0),
        ),
        PhaseCalls(
            "write",
            hubspot_other=ceil(crm_changed / MAX_WRITE["hubspot"]) * per_write,
            salesforce_concurrent=ceil(mkt_changed / MAX_WRITE["salesforce"]) * per_write,
        ),
    ]


def phases_made(calls: Sequence[Call]) -> list[PhaseCalls]:
    """The calls actually made, split at the first write: Salesforce reads counted as one chain (the engine
    pulls one object after the other), its writes as concurrent."""
    first_write = min((c.start for c in calls if c.writes), default=float("inf"))
    phases = []
    for name, part in (
        ("read", [c for c in calls if c.start < first_write]),
        ("write", [c for c in calls if c.start >= first_write]),
    ):
        hubspot = [c for c in part if c.system == "hubspot"]
        salesforce = [c for c in part if c.system == "salesforce"]
        phases.append(
            PhaseCalls(
                name,
                hubspot_search=sum(c.search for c in hubspot),
                hubspot_other=sum(not c.search for c in hubspot),
                salesforce_sequential=sum(not c.writes for c in salesforce) if name == "read" else 0,
                salesforce_concurrent=len(salesforce) if name == "write" else 0,
            )
        )
    return phases


def edit_disjoint(bench: Bench, crm_count: int, mkt_count: int, tag: str) -> None:
    """Edit ``crm_count`` linked contacts in Salesforce and ``mkt_count`` OTHER linked contacts in HubSpot."""
    with sqlite3.connect(Path(bench.workdir) / "state.db") as db:
        query = "SELECT golden_id, native_id FROM links WHERE system = ? AND object = ? ORDER BY golden_id"
        crm = db.execute(query, ["crm", "Contact"]).fetchall()
        mkt = dict(db.execute(query, ["marketing", "contacts"]).fetchall())
    pairs = [(crm_id, mkt[golden]) for golden, crm_id in crm if golden in mkt]
    if len(pairs) < crm_count + mkt_count:
        raise SystemExit(f"only {len(pairs)} linked contacts: raise --contacts or lower the changes")
    for crm_id, _ in pairs[:crm_count]:
        bench.crm.table("Contact").update(crm_id, {"FirstName": f"{tag}{crm_id[-5:]}"})
    for _, mkt_id in pairs[crm_count : crm_count + mkt_count]:
        bench.mkt.table("contacts").update(mkt_id, {"lastname": f"{tag}{mkt_id[-5:]}"})


def enforce(bench: Bench) -> None:
    """Switch the sandboxes' limits on: HubSpot's windows, Salesforce's latency (its concurrency cap is always on)."""
    bench.mkt.knobs.update(
        {
            "enforce_limits": True,
            "requests_per_window": LIMITS.hubspot_window[0],
            "window_s": LIMITS.hubspot_window[1],
            "bucket_limits": {"search": LIMITS.hubspot_search},
        }
    )
    bench.crm.knobs.update({"enforce_limits": True, "latency_s": LIMITS.salesforce_latency})


async def replay(bench: Bench, phases: list[PhaseCalls], since: datetime, batches: int) -> dict[str, Any]:
    """The workload's minimal HubSpot calls through closeloop's HTTP client with the connector's limits, no engine:
    search pages one after another (records modified since ``since``, 200 a page), each followed by the form
    submission reads of its contacts (100 a call, as many as ``phases`` counts), then ``batches`` 100-record batch
    updates all at once, each after the batch read of its records (the client's concurrency cap and windows hold
    them back)."""
    settings = HubSpotSettings.model_validate(
        {
            "base_url": "http://marketing.test",
            "access_token": HUBSPOT_TOKEN,
            "requests_per_window": LIMITS.hubspot_window[0],
            "window_seconds": LIMITS.hubspot_window[1],
            "search_requests_per_window": LIMITS.hubspot_search[0],
            "search_window_seconds": LIMITS.hubspot_search[1],
        }
    )
    context = ConnectorContext(system="marketing", settings=settings, transport=httpx.ASGITransport(app=bench.mkt))
    http = build_http(
        context,
        base_url=settings.api_url,
        auth=BearerAuth(HUBSPOT_TOKEN),
        limits=hubspot_limits(settings),
        classifier=classify_hubspot,
        observe_headers=read_usage,
    )
    batch = MAX_WRITE["hubspot"]
    ids = [row.id for row in islice(bench.mkt.table("contacts").live(), batches * batch)]
    modified = {"propertyName": "lastmodifieddate", "operator": "GTE", "value": millis(since)}
    last_id, form_reads = "0", phases[0].hubspot_other
    started = Moment.now()
    try:
        for _ in range(phases[0].hubspot_search):  # keyset pages by id, as the connector walks one instant
            body = {
                "filterGroups": [{"filters": [modified, {"propertyName": "hs_object_id", "operator": "GT",
                                                         "value": last_id}]}],
                "sorts": [{"propertyName": "hs_object_id", "direction": "ASCENDING"}],
                "properties": ["email", "firstname", "lastname", "lastmodifieddate"],
                "limit": MAX_PAGE["hubspot"],
            }  # fmt: skip
            answer = await http.post_json("/crm/v3/objects/contacts/search", body, idempotent=True, bucket="search")
            results = answer.get("results") or [{"id": last_id}]
            last_id = str(results[-1]["id"])
            page = [str(r["id"]) for r in answer.get("results") or []]
            for start in range(0, len(page), FORM_BATCH):
                if form_reads > 0:
                    params = {"vid": page[start : start + FORM_BATCH], "formSubmissionMode": "all"}
                    await http.get_json(SUBMISSIONS_PATH, params=params)
                    form_reads -= 1
        read_done = Moment.now()

        async def update(chunk: list[str]) -> None:
            reread = {"inputs": [{"id": i} for i in chunk], "properties": ["email", "firstname", "lastname"]}
            await http.post_json("/crm/v3/objects/contacts/batch/read", reread, idempotent=True)
            inputs = [{"id": i, "properties": {"lastname": f"Replay{i[-5:]}"}} for i in chunk]
            await http.post_json("/crm/v3/objects/contacts/batch/update", {"inputs": inputs}, idempotent=True)

        await asyncio.gather(*(update(ids[i : i + batch]) for i in range(0, len(ids), batch)))
        ended = Moment.now()
    finally:
        await http.aclose()
    return {
        "read_seconds": round(read_done.wall - started.wall, 2),
        "write_seconds": round(ended.wall - read_done.wall, 2),
        "seconds": round(ended.wall - started.wall, 2),
        "time": started.until(ended),
        "rate_limited": http.stats.rate_limited,
        "calls": sum(http.stats.calls.values()),
    }


async def measure(contacts: int, crm_changed: int, mkt_changed: int, *, replay_limiter: bool) -> dict[str, Any]:
    """Converge unthrottled, then time one bulk cycle under the limits (and replay its minimal HubSpot calls)."""
    progress = Progress()
    async with steady(contacts) as (bench, clock):
        progress.done(f"store of {contacts:,} contacts converged")
        timeline = Timeline()
        transports = {
            "crm": httpx.ASGITransport(app=timeline.wrap("salesforce", bench.paths["salesforce"])),
            "marketing": httpx.ASGITransport(app=timeline.wrap("hubspot", bench.paths["hubspot"])),
        }
        (bench.workdir / "limited.yaml").write_text(CONFIG)
        loaded = load_config(bench.workdir / "limited.yaml", environ={})
        async with Engine(loaded, bench.store, transports=transports) as engine:
            await engine.sync("bench")  # warm-up: describes and the first archived sweep, limits not yet enforced
            warmed = time.monotonic()
            progress.done("warm-up cycle of the rate-limited engine")
            since = clock()  # sandbox time: the replay reads what changed in HubSpot from here on
            edit_disjoint(bench, crm_changed, mkt_changed, tag="Bulk")
            enforce(bench)
            progress.done("edits")
            # The client's windows empty, as after any quiet spell: the cycle starts with a full window to spend.
            await asyncio.sleep(max(0.0, warmed + LIMITS.hubspot_window[1] + 0.5 - time.monotonic()))
            bench.reset_stats()
            settle_heap()
            load_before = os.getloadavg()[0]
            timeline.calls.clear()
            begun = Moment.now()
            outcome = await engine.sync("bench")
            ended = Moment.now()
            seconds = ended.wall - begun.wall
            calls = list(timeline.calls)
            violations = {"hubspot": bench.mkt.stats.violations, "salesforce": bench.crm.stats.violations}
            by_endpoint = bench.calls()
            by_path = bench.calls_by_path()
            load_after = os.getloadavg()[0]
        progress.done("measured cycle")
        replayed: dict[str, Any] = {}
        if replay_limiter:
            await asyncio.sleep(LIMITS.hubspot_window[1] + 0.5)  # the sandbox's window empty again
            bench.reset_stats()
            batches = ceil(crm_changed / MAX_WRITE["hubspot"])
            replayed = await replay(bench, minimal_phases(crm_changed, mkt_changed), since, batches)
            replayed["violations"] = bench.mkt.stats.violations
            progress.done("limiter replay")
    progress.done("teardown")
    records = crm_changed + mkt_changed
    fewest = bound(minimal_phases(crm_changed, mkt_changed), LIMITS)
    made = bound(phases_made(calls), LIMITS)
    limit_bound = sum(p.seconds for p in fewest)
    unguarded = sum(p.seconds for p in bound(minimal_phases(crm_changed, mkt_changed, guarded=False), LIMITS))
    counts = dict(outcome.counts)
    carried = counts.get("updated:marketing", 0) + counts.get("updated:crm", 0)
    figures: dict[str, Any] = {
        "contacts": contacts,
        "changed": {"salesforce": crm_changed, "hubspot": mkt_changed},
        "records": records,
        "records_written": carried,
        "seconds": round(seconds, 2),
        "records_per_second": round(records / seconds, 1),
        "bound": _bound_figures(fewest),
        "bound_seconds": round(limit_bound, 2),
        "limit_bound_records_per_second": round(records / limit_bound, 1) if limit_bound else None,
        "fraction_of_bound": round(limit_bound / seconds, 3),
        "pages_and_writes_bound_seconds": round(unguarded, 2),
        "fraction_of_pages_and_writes_bound": round(unguarded / seconds, 3),
        "violations": violations,
        "rate_limited_429": {k: v for k, v in outcome.api_calls.items() if k.endswith(":429")},
        "calls": _call_counts(calls),
        "calls_by_endpoint": by_endpoint,
        "calls_by_path": by_path,
        "bound_for_calls_made": _bound_figures(made),
        "bound_for_calls_made_seconds": round(sum(p.seconds for p in made), 2),
        "time": _where_time_went(calls, begun, ended),
        "calls_timeline": [
            [c.system, c.method, c.path, round(c.start - begun.wall, 3), round(c.end - begun.wall, 3)] for c in calls
        ],
        "load_average": [load_before, load_after],
        "counts": counts,
    }
    if replayed:
        hubspot_only = [round(p.hubspot_seconds, 2) for p in fewest]
        replayed["bound_seconds"] = round(sum(hubspot_only), 2)
        replayed["bound_by_phase"] = hubspot_only
        replayed["fraction_of_bound"] = round(sum(hubspot_only) / replayed["seconds"], 3)
        figures["limiter_replay"] = replayed
    return figures


def _bound_figures(phases: list[PhaseBound]) -> list[dict[str, Any]]:
    return [
        {
            "phase": p.calls.name,
            "hubspot_search_calls": p.calls.hubspot_search,
            "hubspot_other_calls": p.calls.hubspot_other,
            "salesforce_sequential_calls": p.calls.salesforce_sequential,
            "salesforce_concurrent_calls": p.calls.salesforce_concurrent,
            "hubspot_seconds": round(p.hubspot_seconds, 2),
            "salesforce_seconds": round(p.salesforce_seconds, 2),
            "seconds": round(p.seconds, 2),
        }
        for p in phases
    ]


def _call_counts(calls: Sequence[Call]) -> dict[str, int]:
    kinds: Counter[str] = Counter()
    for c in calls:
        kind = "search" if c.search else ("write" if c.writes else "read")
        kinds[f"{c.system} {kind}"] += 1
    return dict(sorted(kinds.items()))


def _where_time_went(calls: Sequence[Call], begun: Moment, ended: Moment) -> dict[str, dict[str, float]]:
    """Wall, CPU, other processes and idle waiting: the whole cycle, and its read and write phases."""
    first_write = min((c.started for c in calls if c.writes), key=lambda m: m.wall, default=ended)
    return {
        "cycle": begun.until(ended),
        "read phase": begun.until(first_write),
        "write phase": first_write.until(ended),
    }


def _searches(paths: dict[str, int]) -> str:
    found = {p.split("/")[-2]: n for p, n in paths.items() if p.endswith("/search")}
    return ", ".join(f"{obj} {n}" for obj, n in sorted(found.items()))


def _breakdown(phases: list[dict[str, Any]]) -> list[str]:
    return [
        f"    {p['phase']:<5}  HubSpot {p['hubspot_search_calls']:>3} search + {p['hubspot_other_calls']:>3} other "
        f"{p['hubspot_seconds']:6.2f} s | Salesforce {p['salesforce_sequential_calls']:>3} in sequence + "
        f"{p['salesforce_concurrent_calls']:>3} concurrent {p['salesforce_seconds']:5.2f} s -> {p['seconds']:6.2f} s"
        for p in phases
    ]


def main(argv: list[str] | None = None) -> None:
    """Run the rate-limit ceiling benchmark."""
    cli = parser(__doc__ or "")
    cli.add_argument("-n", "--contacts", type=int, default=20_000, help="contacts in the store (default 20,000)")
    cli.add_argument("--crm-changed", type=int, default=10_000, help="contacts edited in Salesforce (10,000)")
    cli.add_argument("--mkt-changed", type=int, default=5_000, help="other contacts edited in HubSpot (5,000)")
    cli.add_argument("--no-replay", action="store_true", help="skip the limiter-only replay")
    args = cli.parse_args(argv)
    figures = asyncio.run(measure(args.contacts, args.crm_changed, args.mkt_changed, replay_limiter=not args.no_replay))
    fraction = float(figures["fraction_of_bound"])
    violations = sum(figures["violations"].values())
    rate_limited = sum(figures["rate_limited_429"].values())
    rows: list[tuple[str, str, str, bool | None]] = [
        ("records carried (written / changed)", f"{figures['records_written']} / {figures['records']}", "", None),
        ("limit-bound time for the fewest calls", f"{figures['bound_seconds']:.2f} s", "", None),
        ("records/s limit-bound maximum", str(figures["limit_bound_records_per_second"]), "", None),
        ("records/s achieved", f"{figures['records_per_second']} in {figures['seconds']:.2f} s", "", None),
        ("fraction of the limit-bound maximum", f"{fraction:.1%}", f">= {TARGET:.0%}", fraction >= TARGET),
        (
            "the same against pages and writes alone (no re-reads, no touch reads)",
            f"{float(figures['fraction_of_pages_and_writes_bound']):.1%}",
            "",
            None,
        ),
        ("limit violations counted by the sandboxes", str(violations), "0", violations == 0),
        ("429s seen by the client", str(rate_limited), "0", rate_limited == 0),
    ]
    replayed = figures.get("limiter_replay")
    if replayed:
        rows.append(("limiter alone: fraction of its bound", f"{float(replayed['fraction_of_bound']):.1%}", "", None))
    report(
        "ratelimit",
        f"one bulk cycle over a store of {args.contacts:,} contacts: {args.crm_changed:,} edited in Salesforce, "
        f"{args.mkt_changed:,} others in HubSpot; HubSpot 100 req/10 s + search 5 req/s enforced, Salesforce "
        "50 ms per call",
        figures,
        rows,
    )
    load = figures["load_average"]
    lines = [
        "  the bound: read phase, then write phase, each as long as its slower system (bench/ratebound.py)",
        *_breakdown(figures["bound"]),
        f"  the same for the calls made ({', '.join(f'{k} {v}' for k, v in figures['calls'].items())}; "
        f"HubSpot searches: {_searches(figures['calls_by_path']['hubspot'])})",
        *_breakdown(figures["bound_for_calls_made"]),
        "  where the cycle's time went (wall = CPU of this process + ready while other processes ran + idle):",
        *(
            f"    {name:<12} {t['wall']:6.2f} s = CPU {t['cpu']:6.2f} + other processes {t['other_processes']:5.2f} "
            f"+ waiting for limits and latency {t['waiting']:5.2f}"
            for name, t in figures["time"].items()
        ),
        f"    load average {load[0]:.2f} before, {load[1]:.2f} after",
    ]
    if replayed:
        bounds = replayed["bound_by_phase"]
        lines.append(
            f"  limiter alone (the fewest HubSpot calls through closeloop's HTTP client, no engine): "
            f"{replayed['seconds']:.2f} s vs {replayed['bound_seconds']:.2f} s (read {replayed['read_seconds']:.2f}"
            f" vs {bounds[0]:.2f}, write {replayed['write_seconds']:.2f} vs {bounds[1]:.2f}); "
            f"{replayed['violations']} violations, {replayed['rate_limited']} 429s; CPU {replayed['time']['cpu']:.2f} s"
            f" (client + sandbox), other processes {replayed['time']['other_processes']:.2f} s"
        )
    print("\n".join(lines))


if __name__ == "__main__":
    main()
