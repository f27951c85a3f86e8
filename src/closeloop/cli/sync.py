"""``sync``, ``plan``, ``status`` and ``errors``: the commands that run connections or read their state."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from closeloop.cli.common import reading, with_engine
from closeloop.config.models import LoadedConfig
from closeloop.exitcodes import EXIT_OK, EXIT_USAGE
from closeloop.store import AnyStore

if TYPE_CHECKING:  # the engine is imported when a command starts it, not when the CLI loads
    from closeloop.engine.runtime import Engine


def sync(args: argparse.Namespace) -> int:
    """One cycle of each (or one) connection; the worst run's exit code (see closeloop.exitcodes)."""
    from closeloop.cli.output import print_run, sync_progress

    async def work(engine: Engine, names: list[str]) -> int:
        worst = EXIT_OK
        for name in names:
            with sync_progress(name) as on_count:
                outcome = await engine.sync(name, on_count=on_count)
            print_run(name, outcome)
            worst = max(worst, outcome.exit_code)
        return worst

    return with_engine(args, work)


def plan(args: argparse.Namespace) -> int:
    """Print the writes a sync would make, per system, with field diffs and counts."""
    from closeloop.cli.output import print_plan

    async def work(engine: Engine, names: list[str]) -> int:
        for name in names:
            print_plan(name, await engine.plan(name))
        return EXIT_OK

    # A plan writes nothing: it needs no lock and leaves a running daemon's runs alone.
    return with_engine(args, work, writes=False)


def status(args: argparse.Namespace) -> int:
    """Connections with their cursors and outbox depth, and the latest runs."""
    from closeloop.cli.output import print_status

    def work(config: LoadedConfig, store: AnyStore) -> int:
        print_status(config, store)
        return EXIT_OK

    return reading(args, work)


def errors(args: argparse.Namespace) -> int:
    """List quarantined records; --retry ID|all queues a retry, --ignore ID silences one."""
    from closeloop.cli.output import print_errors

    def work(config: LoadedConfig, store: AnyStore) -> int:
        if args.retry is not None:
            count = store.mark_retry(args.retry)
            print(f"{count} record(s) will be retried by the next sync")
            return EXIT_OK if count else EXIT_USAGE
        if args.ignore is not None:
            ok = store.ignore_quarantine(args.ignore)
            print(f"record {args.ignore} ignored" if ok else f"no open record {args.ignore}")
            return EXIT_OK if ok else EXIT_USAGE
        print_errors(store, include_closed=args.all)
        return EXIT_OK

    return reading(args, work)
