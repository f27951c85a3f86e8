"""The handlers behind each CLI command: load what they need, do one thing, return an exit code."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

from closeloop.cli import EXIT_OK, EXIT_UNREACHABLE, EXIT_USAGE
from closeloop.config.commands import schema_command, validate_command
from closeloop.config.loader import load_config
from closeloop.config.models import LoadedConfig
from closeloop.config.problems import ConfigError
from closeloop.http.errors import Unreachable
from closeloop.http.redact import register_secret
from closeloop.logs import setup_logging
from closeloop.settings import Settings
from closeloop.store import Store

log = logging.getLogger("closeloop")


def _settings() -> Settings:
    return Settings()


def config_path(args: argparse.Namespace) -> Path:
    """The config file: --config, else $CLOSELOOP_CONFIG, else config/closeloop.yaml."""
    return Path(args.config) if getattr(args, "config", None) else Path(_settings().config)


def load(args: argparse.Namespace) -> LoadedConfig | None:
    """Load and validate the configuration, printing problems (file:line:col) on failure."""
    settings = _settings()
    setup_logging(settings.log_level, settings.log_format)
    try:
        config = load_config(config_path(args))
    except ConfigError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        print(f"{len(exc.problems)} problem(s); nothing was synced", file=sys.stderr)
        return None
    for secret in config.secrets():
        register_secret(secret)
    return config


def open_store(config: LoadedConfig, *, read_only: bool = False) -> Store:
    """The state store the configuration names (inside $CLOSELOOP_STATE_DIR when set)."""
    path = config.state.resolve(_settings().state_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    return Store.open(path, interrupt_running=not read_only)


def _with_engine(args: argparse.Namespace, work: Callable[..., Awaitable[int]]) -> int:
    config = load(args)
    if config is None:
        return EXIT_USAGE
    from closeloop.engine.runtime import Engine

    store = open_store(config)

    async def go() -> int:
        async with Engine(config, store) as engine:
            return await work(engine, config)

    try:
        return asyncio.run(go())
    except Unreachable as exc:
        print(f"cannot reach a system: {exc}", file=sys.stderr)
        return EXIT_UNREACHABLE
    except ConfigError as exc:  # mapped fields that do not fit the vendors' describe: the run refused to start
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        return EXIT_USAGE
    finally:
        store.close()


def _connections(config: LoadedConfig, name: str | None) -> list[str]:
    names = [c.name for c in config.connections]
    if name is not None and name not in names:
        raise SystemExit(f"unknown connection {name!r}; configured: {', '.join(names)}")
    return [name] if name else names


def sync(args: argparse.Namespace) -> int:
    """One cycle of each (or one) connection; exit 1 when records were quarantined, 3 when unreachable."""
    from closeloop.report_cli import print_run

    async def work(engine: object, config: LoadedConfig) -> int:
        from closeloop.engine.runtime import Engine

        assert isinstance(engine, Engine)
        worst = EXIT_OK
        for name in _connections(config, args.connection):
            outcome = await engine.sync(name)
            print_run(name, outcome)
            worst = max(worst, outcome.exit_code)
        return worst

    return _with_engine(args, work)


def plan(args: argparse.Namespace) -> int:
    """Print the writes a sync would make, per system, with field diffs and counts."""
    from closeloop.report_cli import print_plan

    async def work(engine: object, config: LoadedConfig) -> int:
        from closeloop.engine.runtime import Engine

        assert isinstance(engine, Engine)
        for name in _connections(config, args.connection):
            print_plan(name, await engine.plan(name))
        return EXIT_OK

    return _with_engine(args, work)


def validate(args: argparse.Namespace) -> int:
    """Exit 0 on a valid configuration, or 2 with one file:line:col message per problem."""
    if args.online:
        from closeloop.engine.online import validate_online

        return validate_online(config_path(args))
    return validate_command(config_path(args))


def schema(args: argparse.Namespace) -> int:
    """Print the JSON Schema of both file kinds."""
    return schema_command()


def status(args: argparse.Namespace) -> int:
    """Connections with their cursors and outbox depth, and the latest runs."""
    from closeloop.report_cli import print_status

    config = load(args)
    if config is None:
        return EXIT_USAGE
    with open_store(config, read_only=True) as store:
        print_status(config, store)
    return EXIT_OK


def errors(args: argparse.Namespace) -> int:
    """List quarantined records; --retry ID|all queues a retry, --ignore ID silences one."""
    from closeloop.report_cli import print_errors

    config = load(args)
    if config is None:
        return EXIT_USAGE
    with open_store(config, read_only=True) as store:
        if args.retry:
            target: int | str = "all" if args.retry == "all" else int(args.retry)
            count = store.mark_retry(target)  # type: ignore[arg-type]
            print(f"{count} record(s) will be retried by the next sync")
            return EXIT_OK if count else EXIT_USAGE
        if args.ignore is not None:
            ok = store.ignore_quarantine(args.ignore)
            print(f"record {args.ignore} ignored" if ok else f"no open record {args.ignore}")
            return EXIT_OK if ok else EXIT_USAGE
        print_errors(store, include_closed=args.all)
    return EXIT_OK


def report(args: argparse.Namespace) -> int:
    """The closed-loop report."""
    from closeloop.loop.command import report_command

    config = load(args)
    if config is None:
        return EXIT_USAGE
    with open_store(config, read_only=True) as store:
        return report_command(config, store, args)


def sandbox(args: argparse.Namespace) -> int:
    """Serve the vendor emulators on 127.0.0.1 until SIGINT/SIGTERM."""
    from closeloop.sandbox.cli import sandbox_command

    return sandbox_command(args)


def demo(args: argparse.Namespace) -> int:
    """The end-to-end demo on the local sandboxes."""
    from closeloop.demo import demo_command

    return demo_command(args)


def run(args: argparse.Namespace) -> int:
    """The daemon."""
    from closeloop.daemon import run_command

    return run_command(args)
