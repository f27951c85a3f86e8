"""``closeloop report``: read the store for a period, build the closed-loop report, render it."""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from rich.console import Console

from closeloop.config.models import Entity, LoadedConfig
from closeloop.console import output_console
from closeloop.exitcodes import EXIT_OK, EXIT_USAGE
from closeloop.loop.attribution import Model
from closeloop.loop.facts import read_facts
from closeloop.loop.ledger import positions
from closeloop.loop.money import Rates
from closeloop.loop.open_deals import contact_labels, read_deal_book
from closeloop.loop.render import Format, render
from closeloop.loop.report import Report, ReportInput, build_report
from closeloop.loop.sla_facts import read_mqls
from closeloop.loop.spend import SpendFileError, SpendRow, parse_spend_csv
from closeloop.loop.trend import Granularity
from closeloop.model import now_utc
from closeloop.store.api import StateStore

DEFAULT_HTML = Path("closeloop-report.html")
_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")


class ReportUsageError(ValueError):
    """A report argument that cannot be used; the message says which and why."""


@dataclass(frozen=True, slots=True)
class ReportRequest:
    """The report asked for: period [start, end), models, format, output file, spend, buckets and detail."""

    start: datetime
    end: datetime
    models: tuple[Model, ...]
    fmt: Format
    out: Path | None
    spend: tuple[SpendRow, ...]
    by: Granularity = Granularity.MONTH
    detail: bool = False


def parse_models(name: str) -> tuple[Model, ...]:
    """Every model for "all", else the one named."""
    key = name.strip().lower().replace("-", "_")
    if key == "all":
        return tuple(Model)
    if key not in {m.value for m in Model}:
        valid = ", ".join(m.value for m in Model)
        raise ReportUsageError(f"--model {name!r} is not a model; use one of {valid}, or all")
    return (Model(key),)


def parse_day(text: str, option: str) -> date:
    """A YYYY-MM-DD day given to ``option``."""
    try:
        if _DAY.match(text.strip()):
            return date.fromisoformat(text.strip())
    except ValueError:
        pass
    raise ReportUsageError(f"{option} {text!r} is not a date; write it as YYYY-MM-DD")


def year_before(day: date) -> date:
    """The same day twelve months earlier (28 February for a 29th)."""
    return day.replace(year=day.year - 1, day=min(day.day, 28) if day.month == 2 else day.day)


def period(since: str | None, until: str | None, today: date) -> tuple[datetime, datetime]:
    """The period [since, until + 1 day) in UTC; both days included, by default the last 12 months to today."""
    last = parse_day(until, "--until") if until else today
    first = parse_day(since, "--since") if since else year_before(last)
    if first > last:
        raise ReportUsageError(f"--since {first} is after --until {last}")
    start = datetime(first.year, first.month, first.day, tzinfo=UTC)
    return start, datetime(last.year, last.month, last.day, tzinfo=UTC) + timedelta(days=1)


def read_spend(path: Path | None) -> tuple[SpendRow, ...]:
    """Spend rows from the --spend CSV file, if one is given."""
    if path is None:
        return ()
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise ReportUsageError(f"--spend {path}: cannot read it ({exc})") from None
    return tuple(parse_spend_csv(text, name=str(path)))


def request_of(args: argparse.Namespace, today: date) -> ReportRequest:
    """Check the command's arguments; a bad one raises ReportUsageError or SpendFileError."""
    fmt = Format(args.format)
    start, end = period(args.since, args.until, today)
    out = args.out if args.out is not None or fmt is not Format.HTML else DEFAULT_HTML
    # --by and --detail came later than the other options: callers that build arguments by hand may omit them
    by = Granularity(getattr(args, "by", None) or Granularity.MONTH)
    detail = bool(getattr(args, "detail", False))
    return ReportRequest(start, end, parse_models(args.model), fmt, out, read_spend(args.spend), by, detail)


def currency_mapped(config: LoadedConfig) -> bool:
    """True when some deals mapping maps a currency (then a blank one is unknown, not the base currency)."""
    return any(
        mapping.entity == Entity.DEAL and "currency" in mapping.fields
        for connection in config.connections
        for mapping in connection.mappings
    )


def with_pipeline(facts: ReportInput, store: StateStore, config: LoadedConfig) -> ReportInput:
    """The report input with the open deals, their creation times and every deal's name added."""
    rates = Rates(config.loop.base_currency, dict(config.loop.rates))
    book = read_deal_book(store, set(positions(facts.ledger)), rates, currency_mapped=currency_mapped(config))
    return replace(
        facts,
        open_deals=book.open,
        unpriced_open_deals=book.unpriced,
        deal_names=book.names,
        deal_created={**facts.deal_created, **book.created},
    )


def assemble(config: LoadedConfig, store: StateStore, request: ReportRequest, now: datetime) -> Report:
    """The report a request asks for, from the store, as of ``now`` (the SLA's open breaches are those of now)."""
    facts = read_facts(
        store, request.start, request.end, config.loop.base_currency, request.spend, feedback=config.loop.feedback
    )
    facts = with_pipeline(facts, store, config)
    if request.detail:
        credited = [c for p in (*positions(facts.ledger).values(), *facts.open_deals) for c in p.contacts]
        facts = replace(facts, contact_labels=contact_labels(store, credited))
    if config.loop.sla is not None:
        facts = replace(facts, mqls=read_mqls(store, facts.contacts))
    half_life = timedelta(days=config.loop.time_decay_half_life_days)
    return build_report(
        facts,
        request.models,
        half_life=half_life,
        by=request.by,
        detail=request.detail,
        sla=config.loop.sla,
        now=now,
        clv_horizon_days=config.loop.clv_horizon_days,
    )


def report_command(
    config: LoadedConfig,
    store: StateStore,
    args: argparse.Namespace,
    *,
    clock: Callable[[], datetime] = now_utc,
    console: Console | None = None,
) -> int:
    """Print or write the closed-loop report; 2 with a message for a bad model, date or spend file."""
    try:
        request = request_of(args, clock().astimezone(UTC).date())
    except (ReportUsageError, SpendFileError) as exc:
        print(f"closeloop report: {exc}", file=sys.stderr)
        return EXIT_USAGE
    report = assemble(config, store, request, clock())
    try:
        render(report, request.fmt, request.out, console=console or output_console())
    except OSError as exc:  # --out in a missing or read-only folder
        print(f"closeloop report: cannot write {request.out}: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_USAGE
    if request.out is not None:
        print(f"report written to {request.out}")
    return EXIT_OK
