"""``closeloop run``: the daemon. Refuses to start on an invalid config or a state store in use; the parts are the
modules beside this one."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from pathlib import Path

from closeloop.config.loader import load_config
from closeloop.config.problems import ConfigError
from closeloop.daemon.endpoints import webhook_secrets
from closeloop.daemon.lifecycle import Daemon, bind
from closeloop.daemon.replicas import leases_for
from closeloop.daemon.settings import DaemonSettings
from closeloop.exitcodes import EXIT_OK, EXIT_USAGE
from closeloop.http import register_secret
from closeloop.logs import setup_logging
from closeloop.state_url import password_of, state_url_problem
from closeloop.store import open_state_store
from closeloop.store.db import StoreError
from closeloop.store.lock import StateLock, StoreLocked

log = logging.getLogger("closeloop.daemon")


def run_command(args: argparse.Namespace) -> int:
    """Run the daemon until SIGTERM/SIGINT; exit 0 after a graceful stop, 2 when it cannot start."""
    settings = DaemonSettings()
    # The daemon's log is its output: JSON lines on stdout for the container runtime to collect.
    setup_logging(settings.log_level, settings.log_format, stream=sys.stdout)
    if logging.getLogger().level > logging.DEBUG:
        # APScheduler and uvicorn narrate every job and start-up step; the daemon logs what matters itself.
        for name in ("apscheduler", "uvicorn.error"):
            logging.getLogger(name).setLevel(logging.WARNING)
    for webhook_secret in webhook_secrets().values():
        register_secret(webhook_secret.get_secret_value())
    config_path = args.config if getattr(args, "config", None) else settings.config
    try:
        config = load_config(config_path)
    except ConfigError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        print(f"{len(exc.problems)} problem(s); closeloop did not start", file=sys.stderr)
        return EXIT_USAGE
    for secret in config.secrets():
        register_secret(secret)
    url_problem = state_url_problem(settings)
    if url_problem is not None:
        print(f"closeloop did not start: {url_problem}", file=sys.stderr)
        return EXIT_USAGE
    if settings.state_url is not None:
        register_secret(password_of(settings.state_url.get_secret_value()))
    target = config.state.target(settings.state_dir, settings.state_url)
    db_path = target if isinstance(target, Path) else None
    try:
        if db_path is not None:
            db_path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        sock = bind(settings.http_host, settings.http_port)
    except OSError as exc:
        print(f"closeloop did not start: {exc}", file=sys.stderr)
        return EXIT_USAGE
    # SQLite: one writer, by the file lock. PostgreSQL: replicas, each running only the connections it leases.
    lock = StateLock(db_path) if db_path is not None else None
    try:
        # The lock comes before opening the store: opening marks 'running' runs as interrupted, which
        # would be wrong while another instance is running them.
        if lock is not None:
            lock.acquire()
    except (StoreLocked, StoreError) as exc:
        sock.close()
        print(f"closeloop did not start: {exc}", file=sys.stderr)
        return EXIT_USAGE
    try:
        # On PostgreSQL other replicas' runs are live: a lease taker interrupts a dead holder's run instead.
        with open_state_store(target, interrupt_running=lock is not None) as store:
            leases = leases_for(target, settings.replica)
            return asyncio.run(Daemon(settings, config, store, db_path, leases=leases).serve(sock))
    except StoreError as exc:
        sock.close()
        print(f"closeloop did not start: {exc}", file=sys.stderr)
        return EXIT_USAGE
    finally:
        if lock is not None:
            lock.release()


__all__ = ["EXIT_OK", "run_command"]
