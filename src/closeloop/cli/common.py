"""What the commands share: the configuration loaded and checked, the state store opened, the engine started.

Each command family (:mod:`closeloop.cli.sync`, :mod:`closeloop.cli.report`...) loads what it needs through these
helpers, does one thing and returns an exit code from :mod:`closeloop.exitcodes`."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Awaitable, Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from closeloop.config.loader import load_config
from closeloop.config.models import LoadedConfig
from closeloop.config.problems import ConfigError
from closeloop.exitcodes import EXIT_USAGE
from closeloop.http.redact import register_secret
from closeloop.logs import setup_logging
from closeloop.settings import Settings
from closeloop.state_url import password_of, state_url_problem
from closeloop.store import AnyStore, open_state_store
from closeloop.store.db import StoreError
from closeloop.store.lease_plan import LeaseHeld
from closeloop.store.lock import StateLock, StoreLocked

if TYPE_CHECKING:  # the engine is imported when a command starts it, not when the CLI loads
    from closeloop.engine.runtime import Engine

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
def writer(config: LoadedConfig, names: list[str]) -> Iterator[AnyStore]:
    """The store with its writer's lock: on SQLite the file lock the daemon takes too; on PostgreSQL the leases
    of the connections ``names`` (those replicas take), so a sync never runs a connection a replica is running."""
    target = state_target(config)
    if isinstance(target, Path):
        target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        # The lock comes before opening: opening marks 'running' runs interrupted.
        with StateLock(target), open_store(config) as store:
            yield store
        return
    from closeloop.store.lease import connection_lease

    # Opened (and migrated) first: the lease tables go into a schema that is already a closeloop store.
    with open_store(config, interrupt=False) as store, ExitStack() as leases:
        for name in names:
            leases.enter_context(connection_lease(target, name))
        for name in names:  # a run left 'running' by a dead process that held this lease
            store.interrupt_running_runs(name)
        yield store


EngineWork = Callable[["Engine", list[str]], Awaitable[int]]
"""What a command does with the started engine and the connections it names; returns an exit code."""


def with_engine(args: argparse.Namespace, work: EngineWork, *, writes: bool = True) -> int:
    """Load the configuration, take the writer's lock (``writes``) and open the store, start the engine, run
    ``work``; every expected failure is a message and exit code 2."""
    config = load(args)
    if config is None:
        return EXIT_USAGE
    from closeloop.engine.runtime import Engine

    names = connections(config, args.connection)
    if names is None:
        return EXIT_USAGE

    async def go(store: AnyStore) -> int:
        async with Engine(config, store) as engine:
            return await work(engine, names)

    try:
        if writes:
            with writer(config, names) as store:
                return asyncio.run(go(store))
        with open_store(config, interrupt=False) as store:  # a plan before the first sync starts a store
            return asyncio.run(go(store))
    except StoreLocked as exc:
        print(f"closeloop {args.command}: {exc}, or ask it for a run: POST /connections/NAME/sync", file=sys.stderr)
        return EXIT_USAGE
    except (NoStore, StoreError, OSError) as exc:
        print(f"closeloop {args.command}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except LeaseHeld as exc:
        print(f"closeloop {args.command}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except ConfigError as exc:  # a plan whose mapped fields do not fit the vendors' describe
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        return EXIT_USAGE


def connections(config: LoadedConfig, name: str | None) -> list[str] | None:
    """The connections a command works on; None (after saying why) for an unknown name."""
    names = [c.name for c in config.connections]
    if name is not None and name not in names:
        print(f"unknown connection {name!r}; configured: {', '.join(names)}", file=sys.stderr)
        return None
    return [name] if name else names


def reading(args: argparse.Namespace, work: Callable[[LoadedConfig, AnyStore], int]) -> int:
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
