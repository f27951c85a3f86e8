"""``closeloop demo``: Salesforce and HubSpot sandboxes on 127.0.0.1, the initial sync, a deal won, the report.

Everything runs against real HTTP on loopback with the shipped ``config/sandbox.yaml`` and mappings, and
everything the demo starts is stopped before it returns.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from closeloop.config.loader import load_config
from closeloop.config.models import LoadedConfig
from closeloop.engine.runtime import Engine, RunOutcome
from closeloop.model import WriteOp, WriteRequest
from closeloop.sandbox.cli import build_sandboxes
from closeloop.sandbox.kit import SandboxBase
from closeloop.sandbox.serve import serving
from closeloop.store import Store

console = Console()
CONNECTION = "crm-marketing"
SEED = 1


def _config_file() -> Path:
    """config/sandbox.yaml of the working tree (or of the installed package's source tree)."""
    for base in (Path.cwd(), Path(__file__).resolve().parents[2]):
        candidate = base / "config" / "sandbox.yaml"
        if candidate.exists():
            return candidate
    raise SystemExit("config/sandbox.yaml not found: run the demo from the closeloop source tree")


def _load(urls: dict[str, str]) -> LoadedConfig:
    environ = {
        "SF_BASE_URL": urls["salesforce"],
        "SF_AUTH_URL": urls["salesforce"],
        "HUBSPOT_BASE_URL": urls["hubspot"],
        "HUBSPOT_TOKEN": f"pat-na1-sandbox-{SEED}",
    }
    return load_config(_config_file(), environ=environ)


@contextmanager
def _progress(total: int) -> Iterator[Progress]:
    columns = (
        TextColumn("[bold]initial sync"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("records read"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console, transient=False) as progress:
        yield progress


async def _initial_sync(engine: Engine, total: int) -> RunOutcome:
    with _progress(total) as progress:
        task = progress.add_task("sync", total=total)

        def tick(what: str, n: int) -> None:
            if what == "read":
                progress.advance(task, n)

        outcome = await engine.sync(CONNECTION, on_count=tick)
        progress.update(task, completed=total)
    return outcome


def _show(outcome: RunOutcome, title: str) -> None:
    counts = {k: v for k, v in sorted(outcome.counts.items()) if ":" not in k and k != "skipped"}
    calls = ", ".join(f"{system} {n}" for system, n in sorted(outcome.api_calls.items()))
    console.print(
        f"[bold]{title}[/bold]: {outcome.status.value} — "
        + ", ".join(f"{k} {v}" for k, v in counts.items())
        + f"; API calls: {calls}"
    )


async def _win_a_deal(engine: Engine, crm: SandboxBase) -> str | None:
    """Close an open opportunity that has contacts, through the Salesforce API, as a sales rep would."""
    roles = {row.fields.get("OpportunityId") for row in crm.table("OpportunityContactRole").live()}
    for row in crm.table("Opportunity").live():
        if row.id in roles and not row.fields.get("IsClosed"):
            request = WriteRequest("win", WriteOp.UPDATE, {"StageName": "Closed Won"}, native_id=row.id)
            (result,) = await engine.connector("crm").write("Opportunity", [request])
            if result.ok:
                console.print(
                    f"closed [bold]{row.fields.get('Name')}[/bold] "
                    f"({row.fields.get('Amount')} {row.fields.get('CurrencyIsoCode', 'USD')}) as Closed Won"
                )
                return row.id
    return None


async def _revenue_on_marketing_contacts(engine: Engine, store: Store, deal_id: str) -> None:
    link = store.get_link("crm", "Opportunity", deal_id)
    if link is None:
        return
    for credit in store.deal_contacts(link.golden_id):
        marketing = [lk for lk in store.links_of(credit.contact_golden_id) if lk.system == "marketing"]
        for lk in marketing:
            (record,) = await engine.connector("marketing").read(lk.object, [lk.native_id])
            console.print(
                f"  HubSpot contact {record.fields.get('email')}: closeloop_revenue = "
                f"[bold green]{record.fields.get('closeloop_revenue')}[/bold green], "
                f"won deals = {record.fields.get('closeloop_won_deals')}"
            )


async def run_demo(people: int, out: Path) -> int:
    """The demo, start to finish."""
    sandboxes = build_sandboxes(["hubspot", "salesforce"], seed=SEED, people=people, deals=people // 8)
    sandboxes = [(name, sb) for name, sb in sandboxes]
    total = sum(len(table) for _, sb in sandboxes for table in sb.tables.values())
    async with serving(sandboxes, port_base=0) as served:
        urls = {item.name: item.base_url for item in served}
        for item in served:
            console.print(f"sandbox [bold]{item.name}[/bold] at {item.base_url}")
        config = _load(urls)
        with tempfile.TemporaryDirectory(prefix="closeloop-demo-") as tmp, Store.open(Path(tmp) / "demo.db") as store:
            async with Engine(config, store) as engine:
                started = time.monotonic()
                _show(await _initial_sync(engine, total), "initial sync")
                _show(await engine.sync(CONNECTION), "second cycle (echoes of our writes)")
                _show(await engine.sync(CONNECTION), "third cycle (quiet)")
                crm = dict(sandboxes)["salesforce"]
                deal = await _win_a_deal(engine, crm)
                _show(await engine.sync(CONNECTION), "cycle after the win")
                if deal:
                    await _revenue_on_marketing_contacts(engine, store, deal)
                _report(config, store, out)
                console.print(f"demo finished in {time.monotonic() - started:.1f} s")
    return 0


def _report(config: LoadedConfig, store: Store, out: Path) -> None:
    from closeloop.loop.command import report_command

    for fmt, target in (("table", None), ("html", out)):
        args = argparse.Namespace(model="all", format=fmt, out=target, since="2025-01-01", until=None, spend=None)
        report_command(config, store, args)


def demo_command(args: argparse.Namespace) -> int:
    """Entry point of ``closeloop demo``."""
    return asyncio.run(run_demo(args.people, args.out))
