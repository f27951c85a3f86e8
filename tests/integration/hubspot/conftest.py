"""Fixtures for HubSpot tests that run the connector against the in-process sandbox."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from closeloop_connectors.hubspot.testing import BASE, client, connect, fast_search


@pytest.fixture
def hubspot() -> SimpleNamespace:
    """The helpers of closeloop_connectors.hubspot.testing, for test modules (conftests are not importable here)."""
    return SimpleNamespace(connect=connect, client=client, fast_search=fast_search, base=BASE)
