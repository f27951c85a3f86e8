"""What every benchmark shares: seeded HubSpot and Salesforce sandboxes, a config pointing at them, an engine."""

from __future__ import annotations

import argparse
import gc
import json
import platform
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from closeloop.config.loader import load_config
from closeloop.connector import registry
from closeloop.engine.runtime import Engine
from closeloop.model import now_utc
from closeloop.sandbox.kit import SandboxBase
from closeloop.store import Store

REPO = Path(__file__).resolve().parents[1]
MAPPINGS = REPO / "config" / "mappings"
RESULTS = Path(__file__).resolve().parent / "results"
SEED = 1
HUBSPOT_TOKEN = f"pat-na1-sandbox-{SEED}"
UNLIMITED = "requests_per_window: 1000000, window_seconds: 1"
UNLIMITED_HUBSPOT = f"{UNLIMITED}, search_requests_per_window: 1000000, search_window_seconds: 1"


@dataclass(frozen=True)
class Population:
    """How many seeded records each sandbox holds: N distinct contacts, 20% of them on both sides."""

    contacts: int
    deals: int

    @property
    def crm_people(self) -> int:
        """Salesforce holds the first 60% of the people."""
        return self.contacts * 6 // 10

    @property
    def mkt_offset(self) -> int:
        """HubSpot holds the last 60%: the middle 20% are on both sides and match by email."""
        return self.contacts - self.crm_people

    @property
    def records(self) -> int:
        """Distinct records a full sync makes agree: contacts plus deals."""
        return self.contacts + self.deals


def config_text(*, crm_extra: str = UNLIMITED, mkt_extra: str = UNLIMITED_HUBSPOT, timeout: float = 30.0) -> str:
    """A closeloop.yaml for the repo's contact and deal mappings, both systems on sandbox hosts."""
    return f"""
systems:
  crm:
    connector: salesforce
    settings: {{base_url: 'http://crm.test', auth_url: 'http://crm.test', auth_flow: client_credentials,
      client_id: closeloop-sandbox, client_secret: closeloop-sandbox-secret, timeout_seconds: {timeout},
      {crm_extra}}}
  marketing:
    connector: hubspot
    settings: {{base_url: 'http://marketing.test', access_token: {HUBSPOT_TOKEN}, timeout_seconds: {timeout},
      {mkt_extra}}}
connections:
  - name: bench
    systems: [crm, marketing]
    mappings: [{MAPPINGS / "contacts.yaml"}, {MAPPINGS / "deals.yaml"}]
    lookback: 1m
    marketing_system: marketing
loop: {{base_currency: USD, rates: {{EUR: "1.08", GBP: "1.27"}}}}
"""


@dataclass
class ShiftedClock:
    """Real time plus an offset both sandboxes share, so a bench can step past the engine's lookback window."""

    offset: timedelta = timedelta(0)

    def __call__(self) -> datetime:
        return now_utc() + self.offset

    def advance(self, by: timedelta) -> None:
        """Move sandbox time forward."""
        self.offset += by


def seed_sandboxes(population: Population, clock: ShiftedClock | None = None) -> tuple[SandboxBase, SandboxBase]:
    """A Salesforce org and a HubSpot portal seeded for ``population``, with rate limits off."""
    installed = registry()
    crm = installed.get("salesforce").sandbox(  # type: ignore[misc]
        seed=SEED, people=population.crm_people, deals=population.deals, offset=0, clock=clock
    )
    mkt = installed.get("hubspot").sandbox(  # type: ignore[misc]
        seed=SEED, people=population.crm_people, deals=0, offset=population.mkt_offset, clock=clock
    )
    crm.base_url, mkt.base_url = "http://crm.test", "http://marketing.test"
    for box in (crm, mkt):
        box.knobs.enforce_limits = False
    return crm, mkt


def settle_heap() -> None:
    """Move every object alive now (the seeded sandboxes above all) out of reach of Python's cycle collector.

    The in-process sandboxes stand in for vendors' servers, whose records live in another process. Left tracked,
    every full collection during a measured sync walks them all: at 20,000 records about a tenth of a cycle's CPU,
    a cost no deployment pays. Objects made later (the sync's own, and records the sync creates in the sandboxes)
    stay tracked as usual.
    """
    gc.collect()
    gc.freeze()


@dataclass
class PathCounter:
    """An ASGI wrapper counting calls per concrete path (the sandbox's own stats group by route template)."""

    app: SandboxBase
    calls: Counter[str] = field(default_factory=Counter)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            self.calls[f"{scope['method']} {scope['path']}"] += 1
        await self.app(scope, receive, send)


@dataclass
class Bench:
    """Two sandboxes, a state store and an engine syncing connection ``bench``."""

    crm: SandboxBase
    mkt: SandboxBase
    engine: Engine
    store: Store
    workdir: Path
    paths: dict[str, PathCounter]

    def reset_stats(self) -> None:
        """Zero both sandboxes' counters."""
        self.crm.stats.reset()
        self.mkt.stats.reset()
        for counter in self.paths.values():
            counter.calls.clear()

    def calls_by_path(self) -> dict[str, dict[str, int]]:
        """Calls per concrete path since the last reset."""
        return {system: dict(counter.calls) for system, counter in self.paths.items()}

    def calls(self) -> dict[str, dict[str, int]]:
        """Calls per endpoint served by each sandbox since the last reset."""
        return {"salesforce": dict(self.crm.stats.calls), "hubspot": dict(self.mkt.stats.calls)}


@asynccontextmanager
async def bench_engine(
    crm: SandboxBase, mkt: SandboxBase, *, config: str | None = None, workdir: Path | None = None
) -> AsyncIterator[Bench]:
    """An engine over in-process sandboxes, its store in a temporary directory."""
    with tempfile.TemporaryDirectory(prefix="closeloop-bench-") as tmp:
        where = workdir or Path(tmp)
        (where / "closeloop.yaml").write_text(config or config_text())
        loaded = load_config(where / "closeloop.yaml", environ={})
        store = Store.open(where / "state.db")
        paths = {"salesforce": PathCounter(crm), "hubspot": PathCounter(mkt)}
        transports = {
            "crm": httpx.ASGITransport(app=paths["salesforce"]),
            "marketing": httpx.ASGITransport(app=paths["hubspot"]),
        }
        engine = Engine(loaded, store, transports=transports)
        try:
            yield Bench(crm, mkt, engine, store, where, paths)
        finally:
            await engine.aclose()
            store.close()


@dataclass
class Timer:
    """Wall time of a block."""

    started: float = field(default_factory=time.perf_counter)
    seconds: float = 0.0

    def stop(self) -> float:
        """Seconds since start."""
        self.seconds = time.perf_counter() - self.started
        return self.seconds


async def converge(bench: Bench, *, max_cycles: int = 6) -> int:
    """Run cycles until one writes nothing; the number of cycles run."""
    for cycle in range(1, max_cycles + 1):
        written = bench.crm.stats.records_written + bench.mkt.stats.records_written
        await bench.engine.sync("bench")
        if bench.crm.stats.records_written + bench.mkt.stats.records_written == written:
            return cycle
    raise RuntimeError(f"no quiet cycle after {max_cycles} cycles")


def parser(description: str) -> argparse.ArgumentParser:
    """An argument parser whose description is the benchmark's docstring."""
    return argparse.ArgumentParser(description=description)


def report(name: str, measured: str, figures: dict[str, Any], rows: list[tuple[str, str, str, bool | None]]) -> None:
    """Print a benchmark's table (figure, value, target, met) and write everything to bench/results/<name>.json."""
    print(f"\n== {name}: {measured}")
    for label, value, target, met in rows:
        verdict = "" if met is None else ("MET" if met else "NOT MET")
        print(f"  {label:<44} {value:>16}   target {target:<14} {verdict}")
    RESULTS.mkdir(exist_ok=True)
    payload = {
        "benchmark": name,
        "measured": measured,
        "machine": {"python": platform.python_version(), "cpus": _cpus(), "platform": platform.platform()},
        "figures": figures,
        "targets": [{"figure": f, "value": v, "target": t, "met": m} for f, v, t, m in rows],
    }
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(payload, indent=2, default=str) + "\n")
    print(f"  -> {path.relative_to(REPO)}")


def rss_mb() -> float:
    """This process's resident size now, in MB (Linux /proc)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def _cpus() -> int:
    import os

    return len(os.sched_getaffinity(0))
