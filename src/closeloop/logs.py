"""Logging setup: JSON lines or text, with the redaction filter on the root handler."""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any, Literal, TextIO

from closeloop.http.redact import LOG_RECORD_ATTRS, RedactingFilter, redact

Format = Literal["json", "text", "auto"]
CONTEXT_FIELDS = ("run_id", "connection", "system", "counts")
"""Extra fields every log line may carry (``log.info(..., extra={"run_id": ...})``)."""


def _timestamp(record: logging.LogRecord) -> str:
    moment = datetime.fromtimestamp(record.created, tz=UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _extras(record: logging.LogRecord) -> dict[str, Any]:
    """Fields passed with ``extra=``, context fields first."""
    extras = {k: v for k, v in vars(record).items() if k not in LOG_RECORD_ATTRS and not k.startswith("_")}
    ordered = {k: extras.pop(k) for k in CONTEXT_FIELDS if k in extras}
    ordered.update(extras)
    return ordered


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ``ts, level, logger, msg``, extra fields, ``exc`` when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        """The record as a JSON line."""
        line: dict[str, Any] = {
            "ts": _timestamp(record),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        line.update(_extras(record))
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            line["exc"] = record.exc_text
        if record.stack_info:
            line["stack"] = record.stack_info
        return redact(json.dumps(line, default=str, ensure_ascii=False))


class TextFormatter(logging.Formatter):
    """``ts LEVEL logger: msg key=value...`` for people at a terminal."""

    def format(self, record: logging.LogRecord) -> str:
        """The record as one readable line (plus its traceback)."""
        fields = " ".join(f"{k}={v}" for k, v in _extras(record).items())
        text = f"{_timestamp(record)} {record.levelname:<7} {record.name}: {record.getMessage()}"
        if fields:
            text = f"{text}  {fields}"
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            text = f"{text}\n{record.exc_text}"
        if record.stack_info:
            text = f"{text}\n{record.stack_info}"
        return redact(text)


def setup_logging(level: int | str = "INFO", fmt: Format = "auto", *, stream: TextIO | None = None) -> logging.Handler:
    """Install one redacting handler on the root logger (replacing one set up before) and return it."""
    stream = stream if stream is not None else sys.stderr
    if fmt == "auto":
        fmt = "text" if stream.isatty() else "json"
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    handler.addFilter(RedactingFilter())
    handler.set_name("closeloop")
    root = logging.getLogger()
    for old in [h for h in root.handlers if h.get_name() == "closeloop"]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper() if isinstance(level, str) else level)
    # httpx logs every request at INFO; keep that noise for debug runs.
    logging.getLogger("httpx").setLevel(logging.DEBUG if root.level <= logging.DEBUG else logging.WARNING)
    return handler
