"""Per-client call counts: calls per endpoint, 429s, retries, re-authentications and errors."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

_VERSION = re.compile(r"^v\d+(\.\d+)?$")


def endpoint_label(method: str, url: httpx.URL) -> str:
    """``METHOD /path`` with id-like segments (any with a digit or ``@``, except versions) as ``{id}``."""
    segments = [
        "{id}" if (any(ch.isdigit() for ch in seg) or "@" in seg) and not _VERSION.match(seg) else seg
        for seg in url.path.split("/")
    ]
    return f"{method.upper()} {'/'.join(segments) or '/'}"


@dataclass(frozen=True)
class StatsSnapshot:
    """A copy of the counts at one moment."""

    calls: Mapping[str, int] = field(default_factory=dict)
    rate_limited: int = 0
    retries: int = 0
    reauths: int = 0
    errors: int = 0

    def as_dict(self) -> dict[str, Any]:
        """The snapshot as plain data, for JSON logs and metrics."""
        return {
            "calls": dict(self.calls),
            "rate_limited": self.rate_limited,
            "retries": self.retries,
            "reauths": self.reauths,
            "errors": self.errors,
        }


class HttpStats:
    """Mutable counters one client updates; read them with :meth:`snapshot`."""

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()
        self.rate_limited = 0
        self.retries = 0
        self.reauths = 0
        self.errors = 0

    def snapshot(self) -> StatsSnapshot:
        """The current counts."""
        return StatsSnapshot(
            calls=dict(self.calls),
            rate_limited=self.rate_limited,
            retries=self.retries,
            reauths=self.reauths,
            errors=self.errors,
        )
