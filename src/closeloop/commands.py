"""The handlers behind each CLI command: load what they need, do one thing, return an exit code."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from closeloop.config.commands import schema_command, validate_command
from closeloop.config.loader import load_config
from closeloop.config.models import LoadedConfig
from closeloop.config.problems import ConfigError
from closeloop.exitcodes import EXIT_OK, EXIT_USAGE
from closeloop.http.redact import register_secret
from closeloop.logs import setup_logging
from closeloop.settings import Settings
from closeloop.store import AnyStore, open_state_store
from closeloop.store.db import StoreError
from closeloop.store.lock import StateLock, StoreLocked
from closeloop.store.opening import migrate_store
from closeloop.store.url import is_postgres_url, password_of
from closeloop.store.url import redact as redact_url

if TYPE_CHECKING:
    from closeloop.store.postgres import PgWriterLock

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
    url_problem = state_url_problem(settings)
    if url_problem is not None:
        print(url_problem, file=sys.stderr)
        return None
    if settings.state_url is not None:
        register_secret(password_of(settings.state_url.get_secret_value()))
    return config


def state_url_problem(settings: Settings) -> str | None:
    """Why $CLOSELOOP_STATE_URL cannot be used (the URL itself is never echoed: it may hold a password)."""
    if settings.state_url is None or is_postgres_url(settings.state_url.get_secret_value()):
        return None
    return (
        "CLOSELOOP_STATE_URL must be a PostgreSQL URL, postgresql://user@host:5432/database; unset it to use state.path"
    )


class NoStore(Exception):
    """A command that only reads found no state store where the configuration points."""


def state_path(config: LoadedConfig) -> Path:
    """The state store's file: the config's ``state.path``, inside $CLOSELOOP_STATE_DIR when set."""
    return config.state.resolve(_settings().state_dir)


def state_target(config: LoadedConfig) -> str | Path:
    """The state store: $CLOSELOOP_STATE_URL, else the config's ``state.url``, else its SQLite file (state_path)."""
    settings = _settings()
    return config.state.target(settings.state_dir, settings.state_url)


def open_store(config: LoadedConfig, *, create: bool = True, interrupt: bool = True) -> AnyStore:
    """The state store the configuration names. Commands that only read pass ``create=False`` (no store is made
    where none is: :class:`NoStore`); those that run nothing pass ``interrupt=False``, leaving a running daemon's
    runs alone."""
    target = state_target(config)
    if isinstance(target, Path):
        if not create and not target.exists():
            raise NoStore(
                f"no state store at {target}: no sync has run with this configuration yet, "
                "or state.path / CLOSELOOP_STATE_DIR points elsewhere"
            )
        # The store holds customer data: its folder is the owner's alone (the file itself is created 0600).
        target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    return open_state_store(target, interrupt_running=interrupt, create=create)


@contextmanager
def _writer(config: LoadedConfig) -> Iterator[AnyStore]:
    """The store with its writer's lock: the daemon and every syncing command take the same one."""
    target = state_target(config)
    lock: StateLock | PgWriterLock
    if isinstance(target, Path):
        target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        lock = StateLock(target)
    else:
        from closeloop.store.postgres import PgWriterLock

        lock = PgWriterLock(target)
    # The lock comes before opening: opening marks 'running' runs interrupted.
    with lock, open_store(config) as store:
        yield store


def migrate(args: argparse.Namespace) -> int:
    """Bring the state store to this closeloop's schema (creating it if need be) and say what was applied."""
    config = load(args)
    if config is None:
        return EXIT_USAGE
    target = state_target(config)
    where = str(target) if isinstance(target, Path) else redact_url(target)
    try:
        if isinstance(target, Path):
            target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        applied = migrate_store(target)
    except (StoreError, OSError) as exc:
        print(f"closeloop migrate: {exc}", file=sys.stderr)
        return EXIT_USAGE
    for version, name in applied.steps:
        print(f"applied migration {version}: {name}")
    if applied.steps:
        print(f"{where}: schema version {applied.before} -> {applied.after}")
    else:
        print(f"{where}: schema version {applied.after}, up to date; nothing applied")
    return EXIT_OK


def _with_engine(args: argparse.Namespace, work: Callable[..., Awaitable[int]], *, writes: bool = True) -> int:
    config = load(args)
    if config is None:
        return EXIT_USAGE
    from closeloop.engine.runtime import Engine

    names = _connections(config, args.connection)
    if names is None:
        return EXIT_USAGE

    async def go(store: AnyStore) -> int:
        async with Engine(config, store) as engine:
            return await work(engine, names)

    try:
        if writes:
            with _writer(config) as store:
                return asyncio.run(go(store))
        with open_store(config, interrupt=False) as store:  # a plan before the first sync starts a store
            return asyncio.run(go(store))
    except StoreLocked as exc:
        print(f"closeloop {args.command}: {exc}, or ask it for a run: POST /connections/NAME/sync", file=sys.stderr)
        return EXIT_USAGE
    except (NoStore, StoreError, OSError) as exc:
        print(f"closeloop {args.command}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except ConfigError as exc:  # a plan whose mapped fields do not fit the vendors' describe
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        return EXIT_USAGE


def _connections(config: LoadedConfig, name: str | None) -> list[str] | None:
    """The connections a command works on; None (after saying why) for an unknown name."""
    names = [c.name for c in config.connections]
    if name is not None and name not in names:
        print(f"unknown connection {name!r}; configured: {', '.join(names)}", file=sys.stderr)
        return None
    return [name] if name else names


def sync(args: argparse.Namespace) -> int:
    """One cycle of each (or one) connection; the worst run's exit code (see closeloop.exitcodes)."""
    from closeloop.engine.runtime import Engine
    from closeloop.report_cli import print_run, sync_progress

    async def work(engine: Engine, names: list[str]) -> int:
        worst = EXIT_OK
        for name in names:
            with sync_progress(name) as on_count:
                outcome = await engine.sync(name, on_count=on_count)
            print_run(name, outcome)
            worst = max(worst, outcome.exit_code)
        return worst

    return _with_engine(args, work)


def plan(args: argparse.Namespace) -> int:
    """Print the writes a sync would make, per system, with field diffs and counts."""
    from closeloop.engine.runtime import Engine
    from closeloop.report_cli import print_plan

    async def work(engine: Engine, names: list[str]) -> int:
        for name in names:
            print_plan(name, await engine.plan(name))
        return EXIT_OK

    # A plan writes nothing: it needs no lock and leaves a running daemon's runs alone.
    return _with_engine(args, work, writes=False)


def validate(args: argparse.Namespace) -> int:
    """Exit 0 on a valid configuration, or 2 with one file:line:col message per problem."""
    if args.online:
        from closeloop.engine.online import validate_online

        return validate_online(config_path(args))
    return validate_command(config_path(args))


def schema(args: argparse.Namespace) -> int:
    """Print the JSON Schema of both file kinds."""
    return schema_command()


def _reading(args: argparse.Namespace, work: Callable[[LoadedConfig, AnyStore], int]) -> int:
    """Run ``work`` on the existing state store, opened without disturbing a running daemon."""
    config = load(args)
    if config is None:
        return EXIT_USAGE
    try:
        with open_store(config, create=False, interrupt=False) as store:
            return work(config, store)
    except (NoStore, StoreError) as exc:
        print(f"closeloop {args.command}: {exc}", file=sys.stderr)
        return EXIT_USAGE


def status(args: argparse.Namespace) -> int:
    """Connections with their cursors and outbox depth, and the latest runs."""
    from closeloop.report_cli import print_status

    def work(config: LoadedConfig, store: AnyStore) -> int:
        print_status(config, store)
        return EXIT_OK

    return _reading(args, work)


def errors(args: argparse.Namespace) -> int:
    """List quarantined records; --retry ID|all queues a retry, --ignore ID silences one."""
    from closeloop.report_cli import print_errors

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

    return _reading(args, work)


def report(args: argparse.Namespace) -> int:
    """The closed-loop report."""
    from closeloop.loop.command import report_command

    return _reading(args, lambda config, store: report_command(config, store, args))


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
