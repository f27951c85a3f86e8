"""Settings of a HubSpot portal: a private-app token, or an OAuth app's refresh token."""

from __future__ import annotations

from pydantic import Field, SecretStr, model_validator

from closeloop.connector import SystemSettings

API_URL = "https://api.hubapi.com"


class HubSpotSettings(SystemSettings):
    """A HubSpot portal reached with a private-app token or with OAuth (client id, secret, refresh token)."""

    access_token: SecretStr | None = Field(default=None, description="Private-app access token (pat-...).")
    client_id: str | None = Field(default=None, description="OAuth app client id (with a refresh token).")
    client_secret: SecretStr | None = Field(default=None, description="OAuth app client secret.")
    refresh_token: SecretStr | None = Field(default=None, description="OAuth refresh token of the portal.")
    properties: dict[str, list[str]] | None = Field(
        default=None,
        description="Properties to read per object (contacts, deals); default: every property the portal has.",
    )
    search_requests_per_window: int | None = Field(
        default=None, ge=1, description="Override the search endpoints' own rate (default 4 per second)."
    )
    search_window_seconds: float | None = Field(default=None, gt=0, description="Window of that rate.")
    archived_check_seconds: float = Field(
        default=900,
        ge=0,
        description=(
            "Read each object's archived records (deletions, merges) at most this often (default 900 = 15 minutes; "
            "0 = every cycle). HubSpot cannot search them, so each check reads the whole archived list (100 per "
            "call, 90 days of deletions). A deletion or merge is never missed, only seen up to this much later; "
            "the first check after a start reads the whole list. Use 0 when several connections share this system "
            "(a check's findings go to the connection whose cycle ran it)."
        ),
    )

    @model_validator(mode="after")
    def _one_credential(self) -> HubSpotSettings:
        oauth = (self.client_id, self.client_secret, self.refresh_token)
        if self.access_token is None and not all(oauth):
            raise ValueError("set access_token (private app) or client_id, client_secret and refresh_token")
        return self

    @property
    def api_url(self) -> str:
        """The API host: ``base_url`` when set, else api.hubapi.com."""
        return (self.base_url or API_URL).rstrip("/")

    @property
    def oauth_url(self) -> str:
        """The host of ``/oauth/v1/token``: ``auth_url`` when set, else the API host."""
        return (self.auth_url or self.api_url).rstrip("/")
