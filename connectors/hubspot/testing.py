"""Helpers for tests that run the HubSpot connector against its in-process sandbox (shared by the test suites)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import httpx

from closeloop.connector import ConnectorContext

from .adapter import HubSpotConnector, create
from .sandbox import HubSpotSandbox
from .settings import HubSpotSettings

BASE = "http://hubspot.sandbox"


def connect(
    sandbox: HubSpotSandbox,
    *,
    clock: Callable[[], datetime] | None = None,
    on_response: Callable[[str, httpx.Response], None] | None = None,
    **overrides: Any,
) -> HubSpotConnector:
    """A connector wired in-process to ``sandbox`` (private-app token unless OAuth settings are given)."""
    values: dict[str, Any] = {
        "base_url": BASE,
        "access_token": sandbox.private_app_token,
        "backoff_base_seconds": 0.01,
        "backoff_max_seconds": 0.05,
    }
    settings = HubSpotSettings(**{**values, **overrides})
    context = ConnectorContext(
        "hubspot-test", settings, transport=httpx.ASGITransport(app=sandbox), clock=clock, on_response=on_response
    )
    return create(context)


def client(sandbox: HubSpotSandbox, token: str | None = None) -> httpx.AsyncClient:
    """A plain HTTP client on the sandbox, authenticated with its private-app token."""
    headers = {"Authorization": f"Bearer {token or sandbox.private_app_token}"}
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=sandbox), base_url=BASE, headers=headers)


def fast_search(sandbox: HubSpotSandbox) -> dict[str, Any]:
    """Raise the sandbox's search rate for bulk tests; returns the matching connector overrides."""
    sandbox.knobs.bucket_limits = {"search": (200, 1.0)}
    sandbox.knobs.requests_per_window = 2000
    return {"search_requests_per_window": 200, "requests_per_window": 2000, "page_size": 200}
