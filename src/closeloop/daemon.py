"""``closeloop run``: the daemon. Refuses to start on an invalid config or a state store in use; see daemon_parts."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys

from closeloop.config.loader import load_config
from closeloop.config.problems import ConfigError
from closeloop.daemon_parts.endpoints import webhook_secrets
from closeloop.daemon_parts.lifecycle import Daemon, bind
from closeloop.daemon_parts.replicas import leases_for
from closeloop.daemon_parts.settings import DaemonSettings
from closeloop.exitcodes import EXIT_OK, EXIT_USAGE
from closeloop.http import register_secret
from closeloop.logs import setup_logging
from closeloop.store import Store
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
    db_path = config.state.resolve(settings.state_dir)
    try:
        db_path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        sock = bind(settings.http_host, settings.http_port)
    except OSError as exc:
        print(f"closeloop did not start: {exc}", file=sys.stderr)
        return EXIT_USAGE
    lock = StateLock(db_path)
    try:
        # The lock comes before opening the store: opening marks 'running' runs as interrupted, which
        # would be wrong while another instance is running them.
        lock.acquire()
    except StoreLocked as exc:
        sock.close()
        print(f"closeloop did not start: {exc}", file=sys.stderr)
        return EXIT_USAGE
    try:
        with Store.open(db_path) as store:
            # Replicas on a PostgreSQL store take leases per connection; SQLite's file lock keeps one writer.
            leases = leases_for(db_path, settings.replica)
            return asyncio.run(Daemon(settings, config, store, db_path, leases=leases).serve(sock))
    finally:
        lock.release()


__all__ = ["EXIT_OK", "run_command"]
