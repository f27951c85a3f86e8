"""Fixtures every test directory may use: a PostgreSQL server and a fresh schema on it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from closeloop.state_url import redact
from closeloop.testing.postgres import ENV, fresh_schema, required, server_url, unreachable


@pytest.fixture(scope="session")
def postgres_server() -> str:
    """The test PostgreSQL server's URL; skips (saying why) when none answers, unless CLOSELOOP_TEST_POSTGRES is set."""
    url = server_url()
    problem = unreachable(url)
    if problem is not None:
        if required():
            pytest.fail(f"{ENV} is set but the server {redact(url)} does not answer: {problem}")
        pytest.skip(f"no PostgreSQL server answers at {redact(url)} ({problem}); set {ENV} to require one")
    return url


@pytest.fixture
def postgres_url(postgres_server: str) -> Iterator[str]:
    """A URL of a fresh, empty schema on the test server, dropped after the test."""
    with fresh_schema(postgres_server) as url:
        yield url
