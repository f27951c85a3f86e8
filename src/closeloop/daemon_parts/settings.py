"""The daemon's own ``CLOSELOOP_*`` settings: grace period, readiness threshold, reload polling, webhook secrets."""

from __future__ import annotations

from pydantic import Field, SecretStr

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
    webhook_public_url: str | None = Field(
        default=None,
        description="The public base URL webhooks are sent to (e.g. https://sync.example.com) when a proxy "
        "rewrites it; HubSpot signs the URL it called.",
    )
    webhook_hubspot_secret: SecretStr | None = Field(default=None, description="HubSpot app secret (signature v3).")
    webhook_zoho_secret: SecretStr | None = Field(default=None, description="Zoho notification channel token.")
    webhook_marketo_secret: SecretStr | None = Field(default=None, description="Marketo webhook shared secret.")
    webhook_salesforce_secret: SecretStr | None = Field(
        default=None, description="Salesforce outbound message shared secret (in the URL or a header)."
    )

    def webhook_secrets(self) -> dict[str, SecretStr]:
        """The configured webhook secrets by connector name."""
        found: dict[str, SecretStr] = {}
        for name, value in vars(self).items():
            secret = isinstance(value, SecretStr) and bool(value.get_secret_value())
            if secret and name.startswith("webhook_") and name.endswith("_secret"):
                found[name.removeprefix("webhook_").removesuffix("_secret")] = value
        return found
