"""Dispatch: parse the arguments, run the command's handler, turn anything unexpected into exit code 4."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Callable, Sequence

from closeloop.cli.parser import build_parser
from closeloop.exitcodes import EXIT_INTERNAL, EXIT_INTERRUPTED, EXIT_USAGE

Handler = Callable[[argparse.Namespace], int]

HANDLERS = {
    "run": ("closeloop.daemon.run", "run_command"),
    "sync": ("closeloop.cli.sync", "sync"),
    "plan": ("closeloop.cli.sync", "plan"),
    "status": ("closeloop.cli.sync", "status"),
    "errors": ("closeloop.cli.sync", "errors"),
    "validate": ("closeloop.cli.config", "validate"),
    "migrate": ("closeloop.cli.migrate", "migrate"),
    "schema": ("closeloop.cli.config", "schema"),
    "report": ("closeloop.cli.report", "report"),
    "sandbox": ("closeloop.cli.sandbox", "sandbox_command"),
    "demo": ("closeloop.cli.demo", "demo_command"),
}
"""Command -> (module, function). Modules are imported on use: `closeloop --help` and `validate` must not pay for
the engine, uvicorn or rich, and the daemon's process must never load the sandboxes."""


def handler(command: str) -> Handler:
    """The function that runs ``command``."""
    module, name = HANDLERS[command]
    found: Handler = getattr(importlib.import_module(module), name)
    return found


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``closeloop`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    try:
        return handler(args.command)(args)
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except Exception as exc:  # the last net: a bug gets one line here, its traceback only at DEBUG
        logging.getLogger("closeloop").debug("internal error", exc_info=exc)
        print(f"closeloop {args.command}: internal error: {type(exc).__name__}: {exc}", file=sys.stderr)
        print("(set CLOSELOOP_LOG_LEVEL=DEBUG for the details)", file=sys.stderr)
        return EXIT_INTERNAL
