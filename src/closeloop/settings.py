"""Process settings from ``CLOSELOOP_*`` environment variables (the YAML configuration holds the rest)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]


class Settings(BaseSettings):
    """How this process runs: logging, state directory, HTTP endpoint and which config file to load."""

    model_config = SettingsConfigDict(env_prefix="CLOSELOOP_", extra="ignore", frozen=True)

    log_level: LogLevel = Field(default="INFO", description="Minimum level of log records.")
    log_format: Literal["json", "text", "auto"] = Field(
        default="auto", description="json for containers, text for people; auto picks text on a terminal."
    )
    state_dir: Path | None = Field(
        default=None,
        description="Directory of the state store; overrides the folder of state.path in the config.",
    )
    state_url: SecretStr | None = Field(
        default=None,
        description="PostgreSQL state store URL (postgresql://...); overrides state.url and state.path in the config.",
    )
    http_port: int = Field(default=8080, ge=0, le=65535, description="Port of /healthz, /readyz and /metrics.")
    http_host: str = Field(default="127.0.0.1", description="Address the HTTP endpoints listen on.")
    config: Path = Field(default=Path("config/closeloop.yaml"), description="The YAML configuration file.")

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @field_validator("log_format", mode="before")
    @classmethod
    def _lower(cls, value: object) -> object:
        return value.lower() if isinstance(value, str) else value
