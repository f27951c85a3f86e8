"""What the commands print: a live progress line on a terminal only, whole rows when piped, failures in one line."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from closeloop.cli import output
from closeloop.console import PIPED_WIDTH, output_console
from closeloop.engine.failures import FailureKind
from closeloop.engine.runtime import RunOutcome
from closeloop.store.rows import RunStatus


class Tty(io.StringIO):
    """A stream that says it is a terminal."""

    def isatty(self) -> bool:
        return True


def test_a_piped_console_keeps_tables_whole() -> None:
    assert output_console(io.StringIO()).width == PIPED_WIDTH
    assert output_console(Tty()).width != PIPED_WIDTH


def test_sync_shows_progress_on_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    screen = Tty()
    monkeypatch.setattr(output, "console", Console(file=screen, force_terminal=True, width=100))
    with output.sync_progress("crm-marketing") as tick:
        assert tick is not None
        tick("read", 200)
        tick("read:crm", 200)  # per-system repeats of whole-run counts are not added twice
        tick("created", 3)
    assert "created 3, read 200" in screen.getvalue()  # the last frame, drawn as the display closes


def test_sync_shows_no_progress_when_piped(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(output, "console", Console(file=io.StringIO(), force_terminal=False))
    with output.sync_progress("crm-marketing") as tick:
        assert tick is None


def test_a_failed_run_prints_its_kind_and_reason_and_each_problem_on_stderr(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    out = io.StringIO()
    monkeypatch.setattr(output, "console", Console(file=out, force_terminal=False, width=PIPED_WIDTH))
    outcome = RunOutcome(
        7, RunStatus.FAILED, {}, {}, "a.yaml:3:5: no field 'x'", FailureKind.CONFIG, ("a.yaml:3:5: no field 'x'",)
    )
    output.print_run("crm-marketing", outcome)
    assert "run 7: failed" in out.getvalue()
    assert "failed (config): a.yaml:3:5: no field 'x'" in out.getvalue()
    assert capsys.readouterr().err == "a.yaml:3:5: no field 'x'\n"
