"""Why a run failed, as a closed set of kinds: what ops sees in the run history, metrics, /readyz and exit codes."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from closeloop.config.problems import ConfigError
from closeloop.engine.setup import SetupError
from closeloop.exitcodes import EXIT_INTERNAL, EXIT_UNREACHABLE, EXIT_USAGE
from closeloop.http.errors import (
    AuthError,
    BudgetExhausted,
    HttpError,
    HttpLayerError,
    TlsVerificationFailed,
    TransientError,
    Unreachable,
)
from closeloop.store.db import StoreUnavailable


class FailureKind(enum.StrEnum):
    """What made a run fail; stored with the run and exported as a metric label."""

    AUTH = "auth"
    """The vendor refused the credentials, even after a token refresh."""
    CONFIG = "config"
    """The configuration does not fit the vendor (a mapped field it does not have, a read-only field written, a field
    closeloop owns that the connector cannot create)."""
    TLS = "tls"
    """The vendor's TLS certificate did not verify (wrong host, private CA without a bundle)."""
    UNREACHABLE = "unreachable"
    """The host could not be reached through every retry."""
    TRANSIENT = "transient"
    """5xx, 429 or timeouts persisted through every retry."""
    BUDGET = "budget"
    """closeloop's daily API budget for a system is spent; runs resume when it recovers."""
    VENDOR = "vendor"
    """The vendor refused a request with a 4xx that retrying cannot fix."""
    BUG = "bug"
    """An error no vendor answer explains: a bug in closeloop or a connector."""

    @property
    def exit_code(self) -> int:
        """The exit code of a command whose run failed this way."""
        if self in (FailureKind.AUTH, FailureKind.CONFIG):
            return EXIT_USAGE
        return EXIT_INTERNAL if self is FailureKind.BUG else EXIT_UNREACHABLE

    @property
    def lasting(self) -> bool:
        """True when the failure stays until someone acts (readiness drops at once); False when it may pass."""
        return self not in (FailureKind.UNREACHABLE, FailureKind.TRANSIENT, FailureKind.BUDGET)


@dataclass(frozen=True)
class Failure:
    """A classified failure: its kind and one line saying what happened."""

    kind: FailureKind
    message: str
    details: tuple[str, ...] = ()
    """One line per problem where there are several (a configuration's, each with its file:line:col)."""


_KINDS: tuple[tuple[type[BaseException], FailureKind], ...] = (
    (AuthError, FailureKind.AUTH),
    (ConfigError, FailureKind.CONFIG),
    (SetupError, FailureKind.CONFIG),
    (TlsVerificationFailed, FailureKind.TLS),
    (Unreachable, FailureKind.UNREACHABLE),
    (TransientError, FailureKind.TRANSIENT),
    (BudgetExhausted, FailureKind.BUDGET),
    (HttpError, FailureKind.VENDOR),
    (HttpLayerError, FailureKind.TRANSIENT),
    (StoreUnavailable, FailureKind.UNREACHABLE),
)


def classify(exc: Exception) -> Failure:
    """The kind of ``exc`` (the first matching entry of the table above) and a one-line message."""
    kind = next((kind for cls, kind in _KINDS if isinstance(exc, cls)), FailureKind.BUG)
    details = tuple(str(problem) for problem in exc.problems) if isinstance(exc, ConfigError) else ()
    text = "; ".join(details) or " ".join(str(exc).split()) or "no message"
    if kind is FailureKind.BUG:
        text = f"{type(exc).__name__}: {text}"
    system = getattr(exc, "system", None)
    if isinstance(system, str) and not text.startswith(system):
        text = f"{system}: {text}"  # which of the connection's systems refused, for the run history
    return Failure(kind, text[:4000], details)
