"""The Salesforce connector wired in-process to a seeded sandbox."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from closeloop_connectors.salesforce import SalesforceConnector, SalesforceSettings
from closeloop_connectors.salesforce.sandbox import (
    JWT_CONSUMER_KEY,
    JWT_USERNAME,
    SalesforceSandbox,
    create_sandbox,
    sandbox_jwt_key,
)

from closeloop.connector import ConnectorContext
from closeloop.model import Cursor, NativeRecord

MakeConnector = Callable[..., SalesforceConnector]


@pytest.fixture
def sandbox() -> SalesforceSandbox:
    """30 contacts, 6 leads, 8 opportunities with their contact roles."""
    return create_sandbox(seed=11, people=30, deals=8, leads=6)


@pytest.fixture
async def make_connector(sandbox: SalesforceSandbox) -> AsyncIterator[MakeConnector]:
    """Connectors on the JWT bearer flow with quick retries; all closed after the test."""
    made: list[SalesforceConnector] = []

    def make(**overrides: Any) -> SalesforceConnector:
        private, _ = sandbox_jwt_key()
        values: dict[str, Any] = {
            "client_id": JWT_CONSUMER_KEY,
            "username": JWT_USERNAME,
            "private_key": private.decode(),
            "auth_url": sandbox.base_url,
            "backoff_base_seconds": 0.01,
            "backoff_max_seconds": 0.02,
            **overrides,
        }
        context = ConnectorContext(
            system="salesforce", settings=SalesforceSettings(**values), transport=httpx.ASGITransport(app=sandbox)
        )
        made.append(SalesforceConnector(context))
        return made[-1]

    yield make
    for conn in made:
        await conn.aclose()


@pytest.fixture
def connector(make_connector: MakeConnector) -> SalesforceConnector:
    """The default connector."""
    return make_connector()


async def read_all(connector: SalesforceConnector, obj: str, since: Cursor | None = None) -> list[NativeRecord]:
    """Every record of the change stream after ``since``."""
    return [r async for page in connector.read_changes(obj, since) for r in page.records]
