"""State store locations: a SQLite file path or a PostgreSQL URL, told apart and printed without the password."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import SplitResult, unquote, urlsplit, urlunsplit

from closeloop.settings import Settings

SCHEMES = ("postgresql", "postgres")
"""URL schemes that select the PostgreSQL store (libpq accepts both)."""

MASK = "***"
_QUERY_PASSWORD = re.compile(r"(?i)((?:^|&)password=)[^&]*")


def is_postgres_url(target: str | Path) -> bool:
    """Whether ``target`` names a PostgreSQL database rather than a SQLite file."""
    return isinstance(target, str) and target.split("://", 1)[0].lower() in SCHEMES and "://" in target


def _parts(url: str) -> SplitResult:
    return urlsplit(url)


def password_of(url: str) -> str | None:
    """The password in ``url``, decoded, or None when it has none (e.g. it comes from PGPASSWORD or .pgpass)."""
    try:
        parts = _parts(url)
    except ValueError:
        return None
    if parts.password is not None:
        return unquote(parts.password)
    found = _QUERY_PASSWORD.search(parts.query)
    return None if found is None else unquote(parts.query[found.end(1) :].split("&", 1)[0])


def redact(url: str) -> str:
    """``url`` with its password (if any) replaced by ``***``, fit for messages, logs and status output."""
    try:
        parts = _parts(url)
        netloc = parts.netloc
        if parts.password is not None:
            userinfo, _, hostport = netloc.rpartition("@")
            netloc = f"{userinfo.split(':', 1)[0]}:{MASK}@{hostport}"
    except ValueError:
        # An unparsable URL is printed as its scheme only: it might hold a password anywhere.
        return url.split("://", 1)[0] + "://" + MASK
    # libpq also takes the password as a query parameter.
    query = _QUERY_PASSWORD.sub(rf"\g<1>{MASK}", parts.query)
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def state_url_problem(settings: Settings) -> str | None:
    """Why $CLOSELOOP_STATE_URL cannot be used (the URL itself is never echoed: it may hold a password)."""
    if settings.state_url is None or is_postgres_url(settings.state_url.get_secret_value()):
        return None
    return (
        "CLOSELOOP_STATE_URL must be a PostgreSQL URL, postgresql://user@host:5432/database; unset it to use state.path"
    )
