"""The daemon's own ``CLOSELOOP_*`` settings: grace period, readiness threshold, reload polling.

Webhook secrets are read per connector from ``CLOSELOOP_WEBHOOK_<NAME>_SECRET`` (see ``closeloop.webhooks``)."""

from __future__ import annotations

from pydantic import Field

from closeloop.settings import Settings


class DaemonSettings(Settings):
    """Everything ``closeloop run`` reads from the environment, on top of the process settings."""

    grace_seconds: float = Field(
        default=30.0, ge=0, description="On SIGTERM/SIGINT, how long the running sync may take to finish."
    )
    ready_failing_seconds: float = Field(
        default=900.0, gt=0, description="/readyz fails once a connection's runs have failed for this long."
    )
    reload_poll_seconds: float = Field(
        default=5.0, ge=0, description="How often config and mapping files are checked for changes (0: never)."
    )
    early_run_gap_seconds: float = Field(
        default=30.0,
        ge=0,
        description="Least time between the end of a connection's run and an early run (webhooks, POST .../sync).",
    )
    replica: str = Field(
        default="",
        description="This replica's name when several share a PostgreSQL store (default: <hostname>-<pid>).",
    )
    lease_tick_seconds: float = Field(
        default=2.0,
        gt=0,
        description="How often a replica heartbeats and rebalances its connection leases (PostgreSQL store).",
    )
    webhook_public_url: str | None = Field(
        default=None,
        description="The public base URL webhooks are sent to (e.g. https://sync.example.com) when a proxy "
        "rewrites it; signing senders sign the URL they called.",
    )
