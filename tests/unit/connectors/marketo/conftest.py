"""A Marketo connector on a mocked network (respx): request shapes and quirks, no sandbox."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
import respx
from closeloop_connectors.marketo.adapter import MarketoConnector
from closeloop_connectors.marketo.settings import MarketoSettings

from closeloop.connector import ConnectorContext

BASE = "https://123-ABC-456.mktorest.com"
SECRET = "s3cr3t-client-secret"


@pytest.fixture
def client_secret() -> str:
    """The client secret every test connector uses."""
    return SECRET


@pytest.fixture
def mock() -> respx.MockRouter:
    """A respx router on the instance's host that fails the test when a registered route was never called."""
    with respx.mock(base_url=BASE, assert_all_called=True) as router:
        yield router


@pytest.fixture
def identity(mock: respx.MockRouter) -> respx.Route:
    """The token endpoint, handing out token-1, token-2... for 3600 s."""
    tokens = iter(f"token-{n}:ab" for n in range(1, 100))
    return mock.post("/identity/oauth/token").mock(
        side_effect=lambda request: httpx.Response(
            200, json={"access_token": next(tokens), "token_type": "bearer", "expires_in": 3600, "scope": "x"}
        )
    )


@pytest.fixture
async def make_connector() -> AsyncIterator[Callable[..., MarketoConnector]]:
    """Build connectors with quick retries; all are closed after the test."""
    made: list[MarketoConnector] = []

    def build(**overrides: Any) -> MarketoConnector:
        values: dict[str, Any] = {
            "munchkin_id": "123-ABC-456",
            "client_id": "client-id",
            "client_secret": SECRET,
            "backoff_base_seconds": 0.001,
            "backoff_max_seconds": 0.002,
            "lead_fields": ["email", "firstName"],
        }
        values.update(overrides)
        connector = MarketoConnector(ConnectorContext(system="marketo-test", settings=MarketoSettings(**values)))
        made.append(connector)
        return connector

    yield build
    for connector in made:
        await connector.aclose()


@pytest.fixture
def connector(make_connector: Callable[..., MarketoConnector]) -> MarketoConnector:
    """The default connector."""
    return make_connector()
