"""G16: a full sync at debug level leaks no token, client secret or refresh token into logs, errors or the store."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from closeloop.logs import setup_logging
from closeloop.sandbox.kit import SandboxBase
from tests.reliability.kit import SF_SECRET, in_process, seeded

HS_CLIENT, HS_SECRET, HS_REFRESH = "closeloop-sandbox-client", "closeloop-sandbox-secret", "na1-sandbox-refresh-1"
OAUTH = f"client_id: {HS_CLIENT}, client_secret: {HS_SECRET}, refresh_token: {HS_REFRESH}"
FAULTS = {"fault_500": 0.05, "fault_partial": 0.02}


@pytest.fixture
def debug_log() -> Iterator[io.StringIO]:
    """Everything logged at DEBUG, as JSON lines, into a buffer; the root logger restored afterwards."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    stream = io.StringIO()
    setup_logging("DEBUG", "json", stream=stream)
    try:
        yield stream
    finally:
        root.handlers[:], root.level = handlers, level


def _secrets(*boxes: SandboxBase) -> set[str]:
    issued = {token for box in boxes for token in box.tokens.issued}
    assert len(issued) >= 3, "both systems authenticated through OAuth and HubSpot refreshed once"
    return {SF_SECRET, HS_SECRET, HS_REFRESH, *issued}


def _leaks(secrets: set[str], where: str, text: str | bytes) -> list[str]:
    found = []
    for secret in secrets:
        needle: str | bytes = secret.encode() if isinstance(text, bytes) else secret
        if needle in text:  # type: ignore[operator]
            found.append(f"{secret[:6]}... in {where}")
    return found


async def test_debug_sync_with_errors_leaks_no_secret(tmp_path: Path, debug_log: io.StringIO) -> None:
    crm, mkt = seeded(300, 30)
    for box in (crm, mkt):
        box.knobs.update(FAULTS)
    async with in_process(tmp_path, crm, mkt, "backoff_base_seconds: 0.01", mkt_auth=OAUTH) as (engine, store):
        for cycle in range(3):
            outcome = await engine.sync("rel")
            if cycle == 0:
                mkt.expire_tokens()  # a refresh mid-run puts the refresh token on the wire again
        errors = [q.reason for q in store.list_quarantine()] + [str(outcome.error or "")]
    secrets = _secrets(crm, mkt)
    leaks = _leaks(secrets, "logs", debug_log.getvalue())
    leaks += _leaks(secrets, "error messages", "\n".join(errors))
    for suffix in ("", "-wal"):
        path = tmp_path / f"s.db{suffix}"
        if path.exists():
            leaks += _leaks(secrets, path.name, path.read_bytes())
    assert '"level": "DEBUG"' in debug_log.getvalue(), "debug logging was on"
    assert not leaks, leaks
