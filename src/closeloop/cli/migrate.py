"""``closeloop migrate``: bring the state store (SQLite file or PostgreSQL schema) to this version's schema."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from closeloop.cli.common import load, state_target
from closeloop.exitcodes import EXIT_OK, EXIT_USAGE
from closeloop.state_url import redact as redact_url
from closeloop.store.db import StoreError
from closeloop.store.opening import migrate_store


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
