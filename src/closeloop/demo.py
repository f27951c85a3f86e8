"""``closeloop demo``: the sandboxes of ``config/sandbox.yaml`` on 127.0.0.1, the initial sync, a deal won in the
CRM, the revenue on the marketing system's contacts, the report.

Everything runs against real HTTP on loopback with the shipped configuration and mappings (which systems, which
fields, which stage is won all come from there), and everything the demo starts is stopped before it returns.
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
from closeloop.config.models import Entity, LoadedConfig
from closeloop.config.policies import FromLoop
from closeloop.demo_feedback import reject_a_lead, show_feedback_in_marketing
from closeloop.demo_sla import PAIR, hand_over_mqls, show_clv, show_sla
from closeloop.engine.revenue import STAGE
from closeloop.engine.runtime import Engine, RunOutcome
from closeloop.model import WriteOp, WriteRequest, now_utc
from closeloop.sandbox.cli import build_sandboxes
from closeloop.sandbox.serve import serving
from closeloop.store import Store

console = Console()
CONNECTION = "crm-marketing"
SEED = 1
"""The sandboxes' seed: config/sandbox.yaml's default credentials are those of seed 1."""


def _config_file(marketing: str | None = None) -> Path:
    """config/sandbox.yaml (or sandbox-<marketing>.yaml) of the working tree or the package's source tree."""
    name = f"sandbox-{marketing}.yaml" if marketing else "sandbox.yaml"
    for base in (Path.cwd(), Path(__file__).resolve().parents[2]):
        candidate = base / "config" / name
        if candidate.exists():
            return candidate
    raise SystemExit(f"config/{name} not found: run the demo from the closeloop source tree")


def _load(urls: dict[str, str] | None = None, marketing: str | None = None) -> LoadedConfig:
    """The sandbox configuration, pointed at the served sandboxes by system name (``CRM_BASE_URL``...)."""
    environ = {}
    for system, url in (urls or {}).items():
        environ[f"{system.upper()}_BASE_URL"] = environ[f"{system.upper()}_AUTH_URL"] = url
    return load_config(_config_file(marketing), environ=environ)


def _sides(config: LoadedConfig) -> tuple[str, str]:
    """(CRM system, marketing system) of the demo's connection."""
    connection = config.connection(CONNECTION)
    marketing = connection.marketing_system or connection.systems[1]
    return connection.other(marketing), marketing


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


def _reaches(store: Store, deal_id: str, marketing: str) -> bool:
    """True when a contact credited with the deal is linked in the marketing system (its revenue shows there)."""
    credited = store.deal_contacts(deal_id)
    return any(link.system == marketing for c in credited for link in store.links_of(c.contact_golden_id))


async def _win_a_deal(engine: Engine, store: Store, crm: str, marketing: str) -> str | None:
    """Move an open deal whose contacts are in the marketing system to the CRM's won stage, through its API, as a
    sales rep would."""
    mapping = engine.config.connection(CONNECTION).mapping(Entity.DEAL)
    if mapping is None:
        return None
    connector = engine.connector(crm)
    for obj in mapping.objects(crm):
        stage = mapping.native_field(crm, obj, STAGE)
        won = sorted((await connector.describe(obj)).won_stages())
        if stage is None or not won:
            continue
        for golden in store.goldens(Entity.DEAL, "", 10_000):
            link = next((lk for lk in store.links_of(golden.id) if (lk.system, lk.object) == (crm, obj)), None)
            if link is None or not _reaches(store, golden.id, marketing):
                continue
            (record,) = await connector.read(obj, [link.native_id])
            if record.fields.get(stage) in won:
                continue
            request = WriteRequest("win", WriteOp.UPDATE, {stage: won[0]}, native_id=record.id)
            (result,) = await connector.write(obj, [request])
            if result.ok:
                console.print(
                    f"moved {crm} {obj} [bold]{golden.fields.get('name')}[/bold] "
                    f"({golden.fields.get('amount')} {golden.fields.get('currency') or ''}) to {won[0]!r}"
                )
                return golden.id
    return None


async def _revenue_on_marketing_contacts(engine: Engine, store: Store, deal_id: str, marketing: str) -> None:
    mapping = engine.config.connection(CONNECTION).mapping(Entity.CONTACT)
    if mapping is None:
        return
    for credit in store.deal_contacts(deal_id):
        for link in store.links_of(credit.contact_golden_id):
            if link.system != marketing:
                continue
            (record,) = await engine.connector(marketing).read(link.object, [link.native_id])
            shown = {
                native: record.fields.get(native)
                for name, spec in mapping.fields.items()
                if isinstance(spec.policy, FromLoop) and (native := spec.native_field(marketing, link.object))
            }
            email = mapping.native_field(marketing, link.object, "email")
            who = record.fields.get(email) if email else record.id
            console.print(
                f"  {marketing} contact {who}: "
                + ", ".join(f"{k} = [bold green]{v}[/bold green]" for k, v in shown.items())
            )


async def run_demo(people: int, out: Path, marketing_connector: str | None = None) -> int:
    """The demo, start to finish (``marketing_connector`` picks config/sandbox-<name>.yaml)."""
    plain = _load(marketing=marketing_connector)
    crm, marketing = _sides(plain)
    vendors = {system: plain.systems[system].connector for system in (marketing, crm)}
    sandboxes = build_sandboxes(list(vendors.values()), seed=SEED, people=people, deals=people // 8)
    total = sum(len(table) for _, sb in sandboxes for table in sb.tables.values())
    async with serving(sandboxes, port_base=0) as served:
        by_vendor = {item.name: item.base_url for item in served}
        urls = {system: by_vendor[vendor] for system, vendor in vendors.items()}
        for system, url in urls.items():
            console.print(f"sandbox [bold]{vendors[system]}[/bold] ({system}) at {url}")
        config = _load(urls, marketing_connector)
        with tempfile.TemporaryDirectory(prefix="closeloop-demo-") as tmp, Store.open(Path(tmp) / "demo.db") as store:
            async with Engine(config, store) as engine:
                started = time.monotonic()
                if tuple(vendors[s] for s in (crm, marketing)) == PAIR:
                    boxes = [sb for _, sb in sandboxes]
                    await hand_over_mqls(boxes, engine.connector(crm), engine.connector(marketing), now_utc())
                _show(await _initial_sync(engine, total), "initial sync")
                _show(
                    await engine.sync(CONNECTION),
                    "second cycle (echoes of our writes; the partner ids of the records the first cycle created)",
                )
                _show(await engine.sync(CONNECTION), "third cycle (quiet)")
                deal = await _win_a_deal(engine, store, crm, marketing)
                _show(await engine.sync(CONNECTION), "cycle after the win")
                if deal:
                    await _revenue_on_marketing_contacts(engine, store, deal, marketing)
                if await reject_a_lead(engine, crm, marketing, CONNECTION, console):
                    _show(await engine.sync(CONNECTION), "cycle after sales rejected a lead")
                    await show_feedback_in_marketing(engine, marketing, CONNECTION, console)
                _report(config, store, out)
                console.print(f"demo finished in {time.monotonic() - started:.1f} s")
    return 0


def _report(config: LoadedConfig, store: Store, out: Path) -> None:
    from closeloop.loop.command import assemble, report_command, request_of

    for fmt, target in (("table", None), ("html", out)):
        args = argparse.Namespace(model="all", format=fmt, out=target, since="2025-01-01", until=None, spend=None)
        report_command(config, store, args)
    now = now_utc()
    report = assemble(config, store, request_of(args, now.date()), now)
    show_sla(report, console)
    show_clv(report, console)


def demo_command(args: argparse.Namespace) -> int:
    """Entry point of ``closeloop demo``."""
    return asyncio.run(run_demo(args.people, args.out, getattr(args, "marketing", None)))
