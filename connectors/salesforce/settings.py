"""Settings of a Salesforce system: OAuth JWT bearer (default) or client credentials, API version."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, model_validator

from closeloop.connector import SystemSettings

LOGIN_URL = "https://login.salesforce.com"


class SalesforceSettings(SystemSettings):
    """How closeloop reaches one Salesforce org."""

    auth_flow: Literal["jwt_bearer", "client_credentials"] = Field(
        default="jwt_bearer", description="OAuth flow: JWT bearer (server-to-server) or client credentials."
    )
    client_id: str = Field(description="The connected app's consumer key.")
    username: str | None = Field(default=None, description="JWT bearer: the integration user (sub claim).")
    private_key: SecretStr | None = Field(default=None, description="JWT bearer: the RSA private key, PEM.")
    private_key_file: Path | None = Field(default=None, description="JWT bearer: a file holding the PEM key.")
    client_secret: SecretStr | None = Field(default=None, description="Client credentials: consumer secret.")
    audience: str = Field(
        default=LOGIN_URL, description="JWT aud claim: https://login.salesforce.com, or test. for sandboxes."
    )
    api_version: str = Field(default="60.0", pattern=r"^\d{2,3}\.\d$", description="REST API version.")

    @model_validator(mode="after")
    def _flow_has_its_credentials(self) -> SalesforceSettings:
        if self.auth_flow == "jwt_bearer":
            if not self.username:
                raise ValueError("auth_flow jwt_bearer needs username")
            if self.private_key is None and self.private_key_file is None:
                raise ValueError("auth_flow jwt_bearer needs private_key or private_key_file")
        if self.auth_flow == "client_credentials":
            if self.client_secret is None:
                raise ValueError("auth_flow client_credentials needs client_secret")
            if not self.auth_url:
                # login.salesforce.com refuses this flow; it runs on the org's My Domain host.
                raise ValueError("auth_flow client_credentials needs auth_url (the org's My Domain URL)")
        return self

    @property
    def login_url(self) -> str:
        """Where tokens come from: the auth_url override, else login.salesforce.com."""
        return (self.auth_url or LOGIN_URL).rstrip("/")

    def signing_key(self) -> str:
        """The JWT signing key (PEM text), from the setting or its file."""
        if self.private_key is not None:
            return self.private_key.get_secret_value()
        assert self.private_key_file is not None  # the validator guarantees one of them
        return self.private_key_file.read_text()

    def secrets(self) -> list[str]:
        """Secrets for log redaction, the key file's content included."""
        found = super().secrets()
        if self.private_key_file is not None and self.private_key_file.exists():
            found.append(self.private_key_file.read_text())
        return found
