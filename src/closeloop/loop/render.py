"""Render a report in one of the output formats, to a file or to the terminal."""

from __future__ import annotations

import enum
import io
from pathlib import Path

from rich.console import Console

from closeloop.console import output_console
from closeloop.loop.render_csv import render_csv
from closeloop.loop.render_html import render_html
from closeloop.loop.render_json import render_json
from closeloop.loop.render_table import render_table
from closeloop.loop.report import Report


class Format(enum.StrEnum):
    """The report output formats."""

    TABLE = "table"
    CSV = "csv"
    JSON = "json"
    HTML = "html"


def render_text(report: Report, fmt: Format | str, *, width: int = 140) -> str:
    """The report as text in ``fmt``; tables come out plain, without colour codes."""
    chosen = Format(fmt)
    if chosen is Format.CSV:
        return render_csv(report)
    if chosen is Format.JSON:
        return render_json(report)
    if chosen is Format.HTML:
        return render_html(report)
    buffer = io.StringIO()
    render_table(report, Console(file=buffer, width=width, color_system=None, force_terminal=False))
    return buffer.getvalue()


def render(report: Report, fmt: Format | str, out: Path | None = None, *, console: Console | None = None) -> str:
    """Write the report in ``fmt`` to ``out``, or to the console when ``out`` is None; return the text.

    The console defaults to stdout's: the terminal's width there, and whole rows (never cut to 80 columns) when
    stdout is a pipe or a file.
    """
    chosen = Format(fmt)
    console = console or output_console()
    if out is None and chosen is Format.TABLE:
        render_table(report, console)
        return render_text(report, chosen)
    text = render_text(report, chosen)
    if out is None:
        console.out(text, end="", highlight=False)
    else:
        out.write_text(text, encoding="utf-8")
    return text
