"""Logging setup: JSON lines with context fields, text on a terminal, redaction on the root handler."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from closeloop.http import register_secret
from closeloop.logs import setup_logging


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture(autouse=True)
def restore_root_logger() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def test_json_lines_parse_and_carry_context_fields() -> None:
    stream = io.StringIO()
    setup_logging("INFO", "json", stream=stream)
    logging.getLogger("closeloop.test").info(
        "cycle done in %d s",
        3,
        extra={"run_id": "r1", "connection": "crm-mkt", "system": "crm", "counts": {"w": 2}},
    )
    line = json.loads(stream.getvalue().strip())
    assert line["level"] == "INFO"
    assert line["logger"] == "closeloop.test"
    assert line["msg"] == "cycle done in 3 s"
    assert line["ts"].endswith("Z")
    assert (line["run_id"], line["connection"], line["system"], line["counts"]) == (
        "r1",
        "crm-mkt",
        "crm",
        {"w": 2},
    )


def test_auto_format_is_json_off_a_terminal_and_text_on_one() -> None:
    piped = io.StringIO()
    setup_logging("INFO", "auto", stream=piped)
    logging.getLogger("t").warning("hello", extra={"system": "crm"})
    assert json.loads(piped.getvalue())["msg"] == "hello"

    terminal = Terminal()
    setup_logging("INFO", "auto", stream=terminal)
    logging.getLogger("t").warning("hello", extra={"system": "crm"})
    assert "WARNING" in terminal.getvalue()
    assert "hello" in terminal.getvalue()
    assert "system=crm" in terminal.getvalue()


def test_setting_up_twice_keeps_one_handler() -> None:
    first = setup_logging("INFO", "json", stream=io.StringIO())
    second = setup_logging("DEBUG", "json", stream=io.StringIO())
    root = logging.getLogger()
    assert second in root.handlers
    assert first not in root.handlers
    assert root.level == logging.DEBUG


@pytest.mark.parametrize("fmt", ["json", "text"])
def test_secrets_never_reach_the_output(fmt: str) -> None:
    register_secret("logs-secret-value-1")
    stream = io.StringIO()
    setup_logging("DEBUG", fmt, stream=stream)  # type: ignore[arg-type]
    log = logging.getLogger("closeloop.test")
    log.debug("headers %s", {"Authorization": "Bearer logs-bearer-token-2"})
    log.info("secret %s", "logs-secret-value-1", extra={"connection": "logs-secret-value-1"})
    log.info("GET /token?client_secret=logs-client-secret-3")
    try:
        raise RuntimeError("refresh_token=logs-refresh-4 rejected")
    except RuntimeError:
        log.exception("refresh failed")
    output = stream.getvalue()
    for leaked in ("logs-secret-value-1", "logs-bearer-token-2", "logs-client-secret-3", "logs-refresh-4"):
        assert leaked not in output
    assert "RuntimeError" in output
    if fmt == "json":
        assert all(json.loads(line) for line in output.splitlines() if line.startswith("{"))
