"""Acme's settings: closeloop's common ones (base URL, rate and budget overrides) and an API key."""

from __future__ import annotations

from closeloop.connector import SystemSettings
from pydantic import Field, SecretStr


class AcmeSettings(SystemSettings):
    """An Acme system entry of closeloop's configuration."""

    api_key: SecretStr = Field(description="Acme API key, sent as a bearer token.")
