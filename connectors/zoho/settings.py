"""Settings of a Zoho CRM system: OAuth client, refresh token and the data centre that picks the hosts."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr

from closeloop.connector import SystemSettings

DataCentre = Literal["us", "eu", "in", "au", "jp", "cn", "ca", "sa", "uk"]

HOSTS: dict[str, tuple[str, str]] = {
    # data centre: (accounts host, API host). Zoho's multi-DC pages (CRM, Accounts, Bigin) list these;
    # Saudi Arabia's API host comes from the Bigin/Accounts pages only, and the UK pair is unconfirmed.
    "us": ("https://accounts.zoho.com", "https://www.zohoapis.com"),
    "eu": ("https://accounts.zoho.eu", "https://www.zohoapis.eu"),
    "in": ("https://accounts.zoho.in", "https://www.zohoapis.in"),
    "au": ("https://accounts.zoho.com.au", "https://www.zohoapis.com.au"),
    "jp": ("https://accounts.zoho.jp", "https://www.zohoapis.jp"),
    "cn": ("https://accounts.zoho.com.cn", "https://www.zohoapis.com.cn"),
    "ca": ("https://accounts.zohocloud.ca", "https://www.zohoapis.ca"),
    "sa": ("https://accounts.zoho.sa", "https://www.zohoapis.sa"),
    "uk": ("https://accounts.zoho.uk", "https://www.zohoapis.uk"),
}


class ZohoSettings(SystemSettings):
    """A Zoho CRM org reached with a self-client or server-based OAuth client's refresh token."""

    client_id: str = Field(description="OAuth client id from the Zoho API console.")
    client_secret: SecretStr = Field(description="OAuth client secret.")
    refresh_token: SecretStr = Field(description="Long-lived refresh token (offline access).")
    data_centre: DataCentre = Field(
        default="us", description="Where the org lives: picks accounts.zoho.<dc> and www.zohoapis.<dc>."
    )
    contact_roles: bool = Field(
        default=False,
        description="Also read and write deals' Contact Roles (a call per deal) besides Contact_Name.",
    )
    campaign_members: list[Literal["Contacts", "Leads"]] = Field(
        default=["Contacts", "Leads"],
        description="Whose campaign memberships become touches (a call per campaign and module when read); "
        "empty: none are read.",
    )
    campaign_reread_hours: float = Field(
        default=24,
        gt=0,
        description="How often every campaign's members are re-read (finds members added to unedited campaigns); "
        "between re-reads only modified campaigns are.",
    )

    @property
    def accounts_url(self) -> str:
        """The accounts host that refreshes tokens: ``auth_url`` when set, else the data centre's."""
        return (self.auth_url or HOSTS[self.data_centre][0]).rstrip("/")

    @property
    def api_url(self) -> str:
        """The API host until a token names its ``api_domain``: ``base_url``, else the data centre's."""
        return (self.base_url or HOSTS[self.data_centre][1]).rstrip("/")
