"""A PostgreSQL server for tests: where it is, whether it answers, and a fresh schema per test, dropped after.

``CLOSELOOP_TEST_POSTGRES`` names the server (CI sets it); unset, the tests try the default below and skip, saying
why, when nothing answers there. Set, a server that does not answer is a failure, not a skip.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import quote, urlsplit, urlunsplit

import psycopg

ENV = "CLOSELOOP_TEST_POSTGRES"
DEFAULT_URL = "postgresql://root@127.0.0.1:5432/test"


def server_url() -> str:
    """The test server: ``$CLOSELOOP_TEST_POSTGRES``, else the local default."""
    return os.environ.get(ENV) or DEFAULT_URL


def required() -> bool:
    """Whether the environment demands the PostgreSQL tests run (so a dead server fails them)."""
    return bool(os.environ.get(ENV))


def unreachable(url: str) -> str | None:
    """None when the server at ``url`` answers a query, else why not (one line)."""
    try:
        with psycopg.connect(url, connect_timeout=3, autocommit=True) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as exc:
        return (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    return None


def with_search_path(url: str, schema: str) -> str:
    """``url`` whose sessions put their tables in ``schema`` (libpq's ``options``, so subprocesses can use it)."""
    parts = urlsplit(url)
    if "options=" in parts.query:
        raise ValueError("the server URL already sets options=; give one without")
    option = "options=" + quote(f"-csearch_path={schema}", safe="")
    query = f"{parts.query}&{option}" if parts.query else option
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, parts.fragment))


@contextmanager
def fresh_schema(url: str) -> Iterator[str]:
    """A new empty schema ``t_<random>`` on the server at ``url``; yields a URL that uses it; drops it after."""
    name = f"t_{secrets.token_hex(6)}"
    with psycopg.connect(url, autocommit=True) as admin:
        admin.execute(f'CREATE SCHEMA "{name}"')
    try:
        yield with_search_path(url, name)
    finally:
        with psycopg.connect(url, autocommit=True) as admin:
            admin.execute(f'DROP SCHEMA "{name}" CASCADE')
