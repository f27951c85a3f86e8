"""``validate`` (offline, and ``--online`` against the vendors' describe) and ``schema``: functions returning exit
codes."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TextIO

import httpx

from closeloop.cli import common
from closeloop.config.loader import check_config
from closeloop.config.models import LoadedConfig
from closeloop.config.problems import ConfigProblem
from closeloop.config.schema import build_schemas, render
from closeloop.connector import Registry
from closeloop.exitcodes import EXIT_OK, EXIT_USAGE
from closeloop.http.redact import register_secret


def validate_command(
    config_path: Path,
    registry: Registry | None = None,
    environ: Mapping[str, str] | None = None,
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> int:
    """Check a configuration and its mappings: 0 with a one-line summary, or 2 with file:line:col messages."""
    config = checked(config_path, registry, environ, err or sys.stderr)
    if config is None:
        return EXIT_USAGE
    print(summary(config), file=out or sys.stdout)
    return EXIT_OK


def checked(
    config_path: Path, registry: Registry | None, environ: Mapping[str, str] | None, err: TextIO
) -> LoadedConfig | None:
    """The valid configuration, or None once its problems are printed to ``err``."""
    try:
        config, problems = check_config(config_path, registry, environ)
    except Exception as exc:  # an admin gets a message and exit 2, never a traceback; the cause is named
        print(f"{config_path}: internal error while checking the configuration: {type(exc).__name__}", file=err)
        return None
    if config is None:
        print_problems(config_path, problems, err)
    return config


def print_problems(config_path: Path, problems: Sequence[ConfigProblem], err: TextIO) -> int:
    """Print one ``file:line:col: message`` line per problem and a count; return the exit code 2."""
    for problem in problems:
        print(problem, file=err)
    count = len(problems)
    print(f"{config_path}: {count} problem{'s' if count != 1 else ''}; nothing was synced", file=err)
    return EXIT_USAGE


def summary(config: LoadedConfig) -> str:
    """One line describing a valid configuration."""
    systems = ", ".join(f"{name} ({system.connector})" for name, system in config.systems.items())
    connections = "; ".join(
        f"{c.name}: {' <-> '.join(c.systems)} [{', '.join(m.entity.value for m in c.mappings)}]"
        for c in config.connections
    )
    fields = sum(len(m.fields) for c in config.connections for m in c.mappings)
    return f"{config.path}: ok - systems {systems}; connections {connections}; {fields} fields mapped"


def schema_command(out: TextIO | None = None) -> int:
    """Print one JSON document holding the schema of both files: ``{"closeloop": ..., "mapping": ...}``."""
    (out or sys.stdout).write(render(dict(build_schemas())))
    return EXIT_OK


def validate(args: argparse.Namespace) -> int:
    """Exit 0 on a valid configuration, or 2 with one file:line:col message per problem (3: a vendor unreachable)."""
    if args.online:
        return validate_online(common.config_path(args))
    return validate_command(common.config_path(args))


def schema(args: argparse.Namespace) -> int:
    """Print the JSON Schema of both file kinds."""
    return schema_command()


def validate_online(
    config_path: Path,
    registry: Registry | None = None,
    environ: Mapping[str, str] | None = None,
    transports: Mapping[str, httpx.AsyncBaseTransport] | None = None,
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> int:
    """0 when the configuration is valid and every mapped field fits the vendors' describe; else 2 (3: unreachable)."""
    from closeloop.engine.online import DescribeFailed, online_problems  # the engine only when going online

    out, err = out or sys.stdout, err or sys.stderr
    config = checked(config_path, registry, environ, err)
    if config is None:
        return EXIT_USAGE
    for secret in config.secrets():
        register_secret(secret)
    try:
        found = asyncio.run(online_problems(config, transports or {}))
    except DescribeFailed as exc:
        print(f"{config_path}: {exc}", file=err)
        return exc.exit_code
    if found:
        return print_problems(config_path, found, err)
    print(f"{summary(config)}; every mapped field fits the vendors' describe", file=out)
    return EXIT_OK
