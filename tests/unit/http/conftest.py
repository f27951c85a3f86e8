"""Fixtures for the HTTP layer: fake time, a test context, and a client factory."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from closeloop.connector import ConnectorContext, SystemSettings
from closeloop.http import Auth, Classifier, HttpClient, RetryPolicy, build_http
from closeloop.model import Limits
from closeloop.testing.clock import FakeClock

BASE = "https://api.example.test"


def limits(**overrides: Any) -> Limits:
    """Generous limits unless a test narrows them."""
    values: dict[str, Any] = {
        "max_write_batch": 100,
        "max_read_batch": 100,
        "page_size": 100,
        "requests_per_window": 10_000,
        "window_seconds": 1.0,
        "max_concurrency": 200,
    }
    values.update(overrides)
    return Limits(**values)


@pytest.fixture
def clock() -> FakeClock:
    """Fake time; sleeps return at once and move it forward."""
    return FakeClock()


@pytest.fixture
async def make_client(clock: FakeClock) -> AsyncIterator[Callable[..., HttpClient]]:
    """Build clients on fake time; every one is closed after the test."""
    made: list[HttpClient] = []

    def make(
        *,
        auth: Auth | None = None,
        classifier: Classifier | None = None,
        settings: SystemSettings | None = None,
        retry: RetryPolicy | None = None,
        system_limits: Limits | None = None,
        headers: dict[str, str] | None = None,
        **context_kwargs: Any,
    ) -> HttpClient:
        context = ConnectorContext(system="crm", settings=settings or SystemSettings(), **context_kwargs)
        client = build_http(
            context,
            base_url=BASE,
            auth=auth,
            limits=system_limits or limits(),
            classifier=classifier,
            retry=retry,
            timing=clock.timing(),
            headers=headers,
        )
        made.append(client)
        return client

    yield make
    for client in made:
        await client.aclose()
