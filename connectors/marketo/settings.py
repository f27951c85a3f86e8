"""Settings of a Marketo Engage instance: its REST host, and the LaunchPoint custom service's credentials."""

from __future__ import annotations

from pydantic import Field, SecretStr, model_validator

from closeloop.connector import SystemSettings

WATCHED_FIELDS = (
    "email", "firstName", "lastName", "phone", "company", "title", "leadSource", "leadStatus",
    "lifecycleStage", "acquisitionProgramId", "utmSource", "utmMedium", "utmCampaign", "closeloopId",
)  # fmt: skip
"""Lead fields whose Change Data Value activities wake the incremental read (Get Lead Changes needs a list)."""


class MarketoSettings(SystemSettings):
    """A Marketo instance reached with a LaunchPoint custom service (client credentials)."""

    munchkin_id: str | None = Field(
        default=None, description="Munchkin account id (123-ABC-456): picks https://<id>.mktorest.com."
    )
    client_id: str = Field(description="Client id of the LaunchPoint custom service.")
    client_secret: SecretStr = Field(description="Client secret of the LaunchPoint custom service.")
    lead_fields: list[str] | None = Field(
        default=None, description="Lead fields to read; default: every field describe2 lists."
    )
    watched_fields: list[str] = Field(
        default=list(WATCHED_FIELDS),
        description="Fields whose changes the incremental read notices (Get Lead Changes 'fields').",
    )
    scan_start_id: int = Field(default=1, ge=1, description="First lead id of the full read's id scan.")
    scan_gap_batches: int = Field(
        default=20, ge=1, description="The id scan stops after this many empty batches of 300 ids in a row."
    )

    @model_validator(mode="after")
    def _has_a_host(self) -> MarketoSettings:
        # Refused at validate time rather than at the first call: an example config leaves both to the environment.
        if not (self.munchkin_id or self.base_url):
            raise ValueError("set munchkin_id (123-ABC-456, Admin > Munchkin) or base_url (the REST API endpoint)")
        return self

    @property
    def api_url(self) -> str:
        """The REST host: ``base_url`` when set, else the munchkin's."""
        if self.base_url:
            return self.base_url.rstrip("/")
        if not self.munchkin_id:
            raise ValueError("a Marketo system needs munchkin_id or base_url")
        return f"https://{self.munchkin_id}.mktorest.com"

    @property
    def identity_url(self) -> str:
        """The identity host: ``auth_url`` when set, else the REST host (Marketo serves both)."""
        return (self.auth_url or self.api_url).rstrip("/")
