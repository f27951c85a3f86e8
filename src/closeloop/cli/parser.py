"""The command line's arguments: the contract that docs, tests and ops scripts rely on (argparse only, so
``closeloop --help`` loads nothing else)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Literal

from closeloop import __version__
from closeloop.exitcodes import EXIT_CODES_TEXT


def _config_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config",
        type=Path,
        default=None,
        help="configuration file (default: $CLOSELOOP_CONFIG or config/closeloop.yaml)",
    )


def _connection_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--connection", default=None, help="only this connection (default: all)")


def _retry_target(text: str) -> int | Literal["all"]:
    """An entry id or ``all``: anything else is a usage error (exit 2) before any store is opened."""
    if text == "all":
        return "all"
    if text.isdigit():
        return int(text)
    raise argparse.ArgumentTypeError(f"{text!r} is neither an entry id (see `closeloop errors`) nor 'all'")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every command."""
    parser = argparse.ArgumentParser(
        prog="closeloop",
        description="Two-way CRM <-> marketing-automation sync that closes the loop from source to revenue.",
        epilog=EXIT_CODES_TEXT,
    )
    parser.add_argument("--version", action="version", version=f"closeloop {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    run = commands.add_parser("run", help="the daemon: scheduled syncs, health, metrics and webhooks")
    _config_arg(run)

    sync = commands.add_parser("sync", help="sync now")
    _config_arg(sync)
    _connection_arg(sync)
    sync.add_argument("--once", action="store_true", help="one cycle per connection, then exit (the default)")

    plan = commands.add_parser("plan", help="dry run: the writes a sync would make")
    _config_arg(plan)
    _connection_arg(plan)

    validate = commands.add_parser("validate", help="check the configuration and mappings")
    _config_arg(validate)
    validate.add_argument(
        "--online", action="store_true", help="also check every mapped field against the vendors' describe"
    )

    migrate = commands.add_parser(
        "migrate", help="bring the state store (SQLite file or PostgreSQL schema) to this version's schema"
    )
    _config_arg(migrate)

    status = commands.add_parser("status", help="connections, cursors, outbox and the latest runs")
    _config_arg(status)

    errors = commands.add_parser("errors", help="quarantined records, with retry and ignore")
    _config_arg(errors)
    errors.add_argument(
        "--retry", metavar="ID|all", type=_retry_target, help="retry one quarantined record, or all of them"
    )
    errors.add_argument("--ignore", metavar="ID", type=int, help="stop reporting one quarantined record")
    errors.add_argument("--all", action="store_true", help="include ignored and resolved entries")

    report = commands.add_parser("report", help="the closed-loop report: funnel, revenue by source and campaign")
    _config_arg(report)
    report.add_argument(
        "--model",
        default="all",
        help="attribution model (first_touch, last_touch, linear, "
        "u_shaped, w_shaped, full_path, time_decay) or all (default)",
    )
    report.add_argument("--format", choices=["table", "csv", "json", "html"], default="table")
    report.add_argument("--out", type=Path, help="write to this file instead of standard output")
    report.add_argument("--since", help="period start, YYYY-MM-DD (default: 12 months ago)")
    report.add_argument("--until", help="period end, YYYY-MM-DD (default: today)")
    report.add_argument("--spend", type=Path, help="CSV of spend: period,channel,campaign,amount")
    report.add_argument(
        "--by", choices=["month", "quarter"], default="month", help="revenue over time by month (default) or quarter"
    )
    report.add_argument(
        "--detail", action="store_true", help="list each deal with its touches and every model's credit to each"
    )

    sandbox = commands.add_parser("sandbox", help="serve the vendor emulators on 127.0.0.1")
    sandbox.add_argument(
        "--vendor",
        action="append",
        dest="vendors",
        metavar="NAME",
        help="a vendor to serve (repeat; default: all installed)",
    )
    sandbox.add_argument("--seed", type=int, default=1, help="seed of the generated data (default 1)")
    sandbox.add_argument("--people", type=int, default=200, help="people seeded per vendor (default 200)")
    sandbox.add_argument("--deals", type=int, default=40, help="deals seeded per CRM (default 40)")
    sandbox.add_argument("--port-base", type=int, default=8701, help="first port (default 8701; 0 = any free)")
    sandbox.add_argument("--tls", action="store_true", help="serve https with a generated self-signed certificate")

    demo = commands.add_parser("demo", help="sandboxes + seeded data + sync + a won deal + the report")
    demo.add_argument("--out", type=Path, default=Path("closeloop-demo-report.html"), help="the HTML report")
    demo.add_argument("--people", type=int, default=400, help="people seeded per sandbox (default 400)")
    demo.add_argument(
        "--marketing",
        metavar="NAME",
        help="the marketing system's connector: runs config/sandbox-NAME.yaml (default: config/sandbox.yaml)",
    )

    commands.add_parser("schema", help="JSON Schema of the configuration and mapping files, for editors")
    return parser
