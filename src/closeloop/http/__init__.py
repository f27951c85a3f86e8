"""The one HTTP layer every connector uses: budget, auth, deadline, classification, retries, redaction."""

from closeloop.http.auth import Auth, BearerAuth, RefreshingAuth, Token
from closeloop.http.classify import DEFAULT_TABLE, Action, Classifier, by_status, chain, classify
from closeloop.http.client import HttpClient, UsageReader, build_http, decode_json
from closeloop.http.errors import (
    AuthError,
    BudgetExhausted,
    HttpError,
    HttpLayerError,
    TlsVerificationFailed,
    TransientError,
    Unreachable,
)
from closeloop.http.limiter import DEFAULT_BUCKET, DailyBudget, RateLimiter, Usage, Window
from closeloop.http.redact import RedactingFilter, redact, register_secret
from closeloop.http.retry import RetryPolicy, parse_retry_after
from closeloop.http.stats import HttpStats, StatsSnapshot
from closeloop.http.timing import Timing

__all__ = [
    "DEFAULT_BUCKET",
    "DEFAULT_TABLE",
    "Action",
    "Auth",
    "AuthError",
    "BearerAuth",
    "BudgetExhausted",
    "Classifier",
    "DailyBudget",
    "HttpClient",
    "HttpError",
    "HttpLayerError",
    "HttpStats",
    "RateLimiter",
    "RedactingFilter",
    "RefreshingAuth",
    "RetryPolicy",
    "StatsSnapshot",
    "Timing",
    "TlsVerificationFailed",
    "Token",
    "TransientError",
    "Unreachable",
    "Usage",
    "UsageReader",
    "Window",
    "build_http",
    "by_status",
    "chain",
    "classify",
    "decode_json",
    "parse_retry_after",
    "redact",
    "register_secret",
]
