"""Settings of an Account Engagement (Pardot) business unit: its host, its id, and the Salesforce OAuth grant."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr, model_validator

from closeloop.connector import SystemSettings

HOSTS = {"production": "https://pi.pardot.com", "demo": "https://pi.demo.pardot.com"}
LOGIN_URL = "https://login.salesforce.com"
DAILY_CALLS = {"growth": 25_000, "plus": 50_000, "advanced": 100_000, "premium": 100_000}


class PardotSettings(SystemSettings):
    """One business unit, reached with a Salesforce connected app that has the ``pardot_api`` scope."""

    business_unit_id: str = Field(
        pattern=r"^0Uv[0-9A-Za-z]{12}([0-9A-Za-z]{3})?$",
        description="The business unit id (0Uv..., Setup > Account Engagement > Business Unit Setup).",
    )
    environment: Literal["production", "demo"] = Field(
        default="production",
        description="production: pi.pardot.com; demo: pi.demo.pardot.com (Developer orgs and Salesforce sandboxes).",
    )
    auth_flow: Literal["client_credentials", "refresh_token"] = Field(
        default="client_credentials",
        description="client_credentials (a run-as user; needs auth_url = the org's My Domain) or refresh_token.",
    )
    client_id: str = Field(description="The connected app's consumer key.")
    client_secret: SecretStr = Field(description="The connected app's consumer secret.")
    refresh_token: SecretStr | None = Field(default=None, description="refresh_token flow: the user's token.")
    edition: Literal["growth", "plus", "advanced", "premium"] = Field(
        default="growth", description="The edition, which sets the daily API calls (25,000 / 50,000 / 100,000)."
    )
    prospect_fields: list[str] | None = Field(
        default=None, description="Prospect fields to read; default: the standard fields and every custom field."
    )
    activity_types: list[int] = Field(
        default=[1, 2, 4], description="Visitor activity types read as touchpoints: 1 click, 2 page view, 4 form."
    )

    @model_validator(mode="after")
    def _flow_has_its_credentials(self) -> PardotSettings:
        if self.auth_flow == "refresh_token" and self.refresh_token is None:
            raise ValueError("auth_flow refresh_token needs refresh_token")
        if self.auth_flow == "client_credentials" and not self.auth_url:
            # login.salesforce.com refuses this flow; it runs on the org's My Domain host.
            raise ValueError("auth_flow client_credentials needs auth_url (the org's My Domain URL)")
        return self

    @property
    def api_url(self) -> str:
        """The v5 host: ``base_url`` when set, else the environment's."""
        return (self.base_url or HOSTS[self.environment]).rstrip("/")

    @property
    def login_url(self) -> str:
        """Where tokens come from: ``auth_url``, else login.salesforce.com."""
        return (self.auth_url or LOGIN_URL).rstrip("/")
