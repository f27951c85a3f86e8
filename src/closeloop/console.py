"""The console that commands print to: the terminal's width on a terminal, never cut when piped or redirected."""

from __future__ import annotations

import sys
from typing import TextIO

from rich.console import Console

PIPED_WIDTH = 1000
"""Wide enough that no table of ours wraps: a script reading a pipe wants whole rows, not an 80-column guess."""


def output_console(file: TextIO | None = None) -> Console:
    """A rich console on ``file`` (stdout by default) that keeps tables whole when it is not a terminal."""
    stream = file or sys.stdout
    if stream.isatty():
        return Console(file=file, soft_wrap=True)
    return Console(file=file, soft_wrap=True, width=PIPED_WIDTH)
