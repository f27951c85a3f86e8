"""A fresh PostgreSQL schema per test on the server at 127.0.0.1:5432 (or ``CLOSELOOP_TEST_POSTGRES``).

When no server answers the tests skip, saying so, unless ``CLOSELOOP_TEST_POSTGRES`` is set (CI sets it): then
a missing server is a failure, not a skip.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from urllib.parse import quote

import psycopg
import pytest

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/test"


def server_url() -> str:
    """The test server's URL: ``CLOSELOOP_TEST_POSTGRES`` when it holds one, else the local default."""
    given = os.environ.get("CLOSELOOP_TEST_POSTGRES", "")
    return given if given.startswith("postgres") else DEFAULT_URL


def _reachable(url: str) -> str | None:
    try:
        with psycopg.connect(url, connect_timeout=3):
            return None
    except psycopg.Error as exc:
        return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def with_schema(url: str, schema: str) -> str:
    """``url`` with every session's search_path set to ``schema``."""
    sep = "&" if "?" in url else "?"
    return f"{url}{sep}options={quote(f'-c search_path={schema}')}"


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A URL whose sessions work in a new, empty schema, dropped after the test."""
    url = server_url()
    problem = _reachable(url)
    if problem is not None:
        if os.environ.get("CLOSELOOP_TEST_POSTGRES"):
            pytest.fail(f"CLOSELOOP_TEST_POSTGRES is set but no PostgreSQL answers at {url}: {problem}")
        pytest.skip(f"no PostgreSQL server answers at {url} ({problem}); set CLOSELOOP_TEST_POSTGRES to require one")
    schema = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield with_schema(url, schema)
    finally:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
